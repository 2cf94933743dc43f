"""`prescaler mock-vllm` (also `python -m scaler.loadtest.mock_vllm`): a mock vLLM to load-test against.

An OpenAI-compatible server (`/v1/completions`, `/v1/chat/completions`, `/v1/models`) with vLLM's
`/metrics` and `/health` on one port, like vLLM's own. See `scaler.loadtest.engine` for what it models.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence

from prometheus_client import CollectorRegistry

from scaler.loadtest import httpd
from scaler.loadtest.engine import MockConfig, MockVllm
from scaler.units import parse_duration_s

STANDALONE_PROG = "python -m scaler.loadtest.mock_vllm"
DEFAULT_PORT = 8000
"""vLLM's default port."""


HELP = "serve a mock vLLM (OpenAI API, vLLM's metric names) to load-test against"
DESCRIPTION = (
    "A mock vLLM: OpenAI-compatible completions served through a fixed number of slots, with vLLM's "
    "metric names on /metrics. See deploy/loadtest and docs/end-to-end.md."
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `prescaler mock-vllm`; its `func` is `run`."""
    parser = subparsers.add_parser("mock-vllm", help=HELP, description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The mock's flags; `prog` is kept for its messages."""
    parser.set_defaults(prog=parser.prog)
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default %(default)s)")
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help="port to listen on, 0 for any (default %(default)s)"
    )
    parser.add_argument(
        "--slots",
        type=_slots,
        default=4,
        help="requests in service at once, like vLLM's --max-num-seqs; later ones wait (default %(default)s)",
    )
    parser.add_argument(
        "--service-time",
        type=_duration,
        default=1.0,
        metavar="DURATION",
        help="time each request holds its slot, e.g. 800ms or 2s (default 1s)",
    )
    parser.add_argument(
        "--time-per-token",
        type=_duration,
        default=0.0,
        metavar="DURATION",
        help="added to the service time per generated token (max_tokens), e.g. 20ms (default 0)",
    )
    parser.add_argument(
        "--model", type=_model, default="mock-llm", help="model name served (default %(default)s)"
    )
    parser.add_argument(
        "--grace",
        type=_duration,
        default=10.0,
        metavar="DURATION",
        help="on SIGTERM or Ctrl-C, time requests in flight get to finish; new ones are answered 503 "
        "(default 10s)",
    )


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Serve with the parsed flags until SIGTERM or SIGINT; 1 with one line if it cannot listen."""
    config = MockConfig(
        slots=args.slots,
        service_time_s=args.service_time,
        time_per_token_s=args.time_per_token,
        model=args.model,
    )
    try:
        asyncio.run(serve(config, args.host, args.port, grace_s=args.grace, on_ready=_announce))
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        print(
            f"{args.prog}: cannot listen on {args.host}:{args.port} (--host, --port): {why}", file=sys.stderr
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scaler.loadtest.mock_vllm`: the same flags without the `prescaler` command."""
    parser = argparse.ArgumentParser(prog=STANDALONE_PROG, description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv), os.environ)


async def serve(
    config: MockConfig,
    host: str,
    port: int,
    *,
    grace_s: float,
    on_ready: Callable[[MockConfig, str, int], None],
) -> None:
    """Serve until SIGTERM or SIGINT, then drain for up to `grace_s`; `on_ready(config, host, port)`
    once listening."""
    mock = MockVllm(config, registry=CollectorRegistry())
    async with httpd.HttpServer(mock.handle) as server:
        bound = await server.start(host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        on_ready(config, host, bound)
        await stop.wait()
        await server.aclose(grace_s)
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError):
            loop.remove_signal_handler(signum)


def _announce(config: MockConfig, host: str, port: int) -> None:
    per_token = f" + {config.time_per_token_s:g}s per token" if config.time_per_token_s else ""
    print(
        f"mock vLLM serving `{config.model}` on http://{host}:{port}: {config.slots} slots, "
        f"{config.service_time_s:g}s per request{per_token}\n"
        "  POST /v1/completions /v1/chat/completions; GET /v1/models /metrics /health\n"
        "Stop with Ctrl-C (requests in flight get --grace to finish).",
        flush=True,
    )


def _slots(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}`: expected a whole number of slots, at least 1")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"`{text}`: expected a port number from 0 to 65535")
    return int(text)


def _duration(text: str) -> float:
    if text.strip() in ("0", "0s"):
        return 0.0
    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"`{text}`: {exc} (or 0)") from None


def _model(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a non-empty model name")
    return text.strip()


if __name__ == "__main__":
    sys.exit(main())
