"""The `prescaler` command (also `python -m scaler`): serve, call, and the offline tools.

Start-up is kept short: the subcommands are listed in `COMMANDS` by name, and only the module of the
one that runs is imported (the forecasting and plotting libraries take seconds to import, and
`prescaler --help`, `--version` or `call` need none of them). To add a subcommand, add one
`Command` line naming the function that registers its parser; that module must keep its own heavy
imports inside the function that runs the command.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from scaler import __version__, settings

if TYPE_CHECKING:
    from scaler.server.app import Ports

logger = logging.getLogger(__name__)

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Command(NamedTuple):
    """One subcommand, registered lazily."""

    name: str
    register: str
    """`module:function` that adds the subcommand's parser to the subparsers (entry-point syntax)."""
    help: str
    """The line `prescaler --help` shows for it."""


COMMANDS: tuple[Command, ...] = (
    Command("serve", "scaler.cli:add_serve_parser", "run the ExternalScaler gRPC service KEDA calls"),
    Command("call", "scaler.call:add_parser", "call a running scaler as KEDA would and print the answer"),
    Command(
        "gpu-exporter", "scaler.gpu.cli:add_parser", "export GPU SM activity (NVML GPM) as Prometheus metrics"
    ),
    Command(
        "backtest",
        "scaler.backtest_cli:add_parser",
        "score the forecaster on a trace with a rolling-origin backtest",
    ),
    Command(
        "simulate",
        "scaler.simulate_cli:add_parser",
        "replay a load trace through the what-if simulator: predictive vs reactive vs oracle",
    ),
    Command(
        "plan",
        "scaler.plan_cli:add_parser",
        "capacity planning: GPUs per hour, a procurement mix and dollars from a service's history",
    ),
    Command(
        "mock-vllm",
        "scaler.loadtest.mock_vllm:add_parser",
        "serve a mock vLLM (OpenAI API, vLLM's metric names) to load-test against",
    ),
)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure_logging(log_format: str, level: str) -> None:
    """Logging is set up here, in the entry point, and nowhere else."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # httpx logs every request at INFO: a line per Prometheus poll, or beside `call`'s answer.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


def example_metadata(replay_dir: Path) -> str | None:
    """The `call` example for a scaler replaying from `replay_dir`: the bundled example trace when it
    is there, else the first trace found there; None when the directory holds none."""
    from scaler.call import EXAMPLE_METADATA, EXAMPLE_TRACE

    if (replay_dir / EXAMPLE_TRACE).is_file():
        return EXAMPLE_METADATA
    traces = sorted(p.name for p in replay_dir.glob("*.csv") if p.is_file() and "," not in p.name)
    if not traces:
        return None
    return EXAMPLE_METADATA.replace(EXAMPLE_TRACE, traces[0])


def _announce(config: settings.Settings) -> Callable[[Ports], None]:
    def on_ready(ports: Ports) -> None:
        shown = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
        tls = "TLS" if config.tls_cert else "plaintext"
        if config.tls_client_ca:
            tls = "mutual TLS"
        lines = [
            f"prescaler {__version__} listening",
            f"  gRPC  {config.host}:{ports.grpc} ({tls}): externalscaler.ExternalScaler, grpc.health.v1, "
            "reflection",
            f"  HTTP  {config.host}:{ports.http}: /metrics /healthz /targets",
            f"  replay traces from {config.replay_dir}",
        ]
        metadata = example_metadata(config.replay_dir)
        if metadata is None:
            lines.append(f"No .csv trace in {config.replay_dir}: point a trigger at Prometheus, or add one.")
        else:
            pairs = dict(p.split("=", 1) for p in metadata.split(","))
            ref = {"name": "example", "namespace": "default", "scalerMetadata": pairs}
            request = json.dumps({"scaledObjectRef": ref, "metricName": "prescaler"})
            http = "" if ports.http == 8080 else f" --http-address {shown}:{ports.http}"
            lines += [
                "Try it from another terminal (a replay trace needs no Prometheus):",
                f"  .venv/bin/prescaler call all --address {shown}:{ports.grpc}{http} --metadata {metadata}",
                f"  grpcurl -plaintext -d '{request}' {shown}:{ports.grpc} externalscaler.ExternalScaler/GetMetrics",
            ]
        lines.append("Stop with Ctrl-C (SIGTERM drains gracefully).")
        print("\n".join(lines), flush=True)

    return on_ready


def _serve(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        config = settings.from_args(args, environ)
    except settings.SettingsError as exc:
        print(f"prescaler serve: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_format, config.log_level)
    import asyncio

    from scaler import cgroup
    from scaler.server.app import App, PortInUse

    limits = cgroup.read_limits()
    logger.info(
        "forecast workers: %d (%s)",
        config.forecast_workers,
        cgroup.explain(limits, config.forecast_workers),
    )
    app = App(config)
    try:
        asyncio.run(app.serve(on_ready=_announce(config)))
    except PortInUse as exc:
        flag = "--grpc-port" if exc.kind == "grpc" else "--metrics-port"
        print(
            f"prescaler serve: {flag} {exc.port}: cannot listen on {exc.address}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        print(f"prescaler serve: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


def add_serve_parser(subparsers: Subparsers) -> None:
    serve = subparsers.add_parser(
        "serve",
        help=COMMANDS[0].help,
        description="Serve KEDA's ExternalScaler gRPC protocol, with /metrics, /healthz and /targets on "
        "the HTTP port.",
    )
    settings.add_arguments(serve)
    serve.set_defaults(func=_serve)


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line: the first word that is not an option (the top-level
    options take no value)."""
    for word in argv:
        if not word.startswith("-"):
            return word
    return None


def _register(command: Command, subparsers: Subparsers) -> None:
    module, _, function = command.register.partition(":")
    getattr(importlib.import_module(module), function)(subparsers)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the subcommand it names is fully registered (None: all are)."""
    parser = argparse.ArgumentParser(
        prog="prescaler",
        description="KEDA external scaler that scales GPU inference services before demand arrives.",
    )
    parser.add_argument("--version", action="version", version=f"prescaler {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = None if argv is None else _chosen(argv)
    for command in COMMANDS:
        if argv is None or command.name == chosen:
            _register(command, subparsers)
        else:
            subparsers.add_parser(command.name, help=command.help)
    return parser


def _unrecognized(parser: argparse.ArgumentParser, command: str, unknown: list[str]) -> None:
    """Exit as argparse does, but with the subcommand's usage and the nearest flag it has, since a
    misspelled flag is what an unknown word after a subcommand usually is."""
    sub = next(
        action.choices[command]
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction) and command in action.choices
    )
    flags = [flag for action in sub._actions for flag in action.option_strings]
    hints = []
    for word in unknown:
        near = difflib.get_close_matches(word.split("=", 1)[0], flags, n=1)
        if word.startswith("-") and near:
            hints.append(f"{word}: did you mean {near[0]}?")
    sub.error("; ".join([f"unrecognized arguments: {' '.join(unknown)}", *hints]))


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(words)
        args, unknown = parser.parse_known_args(words)
        if unknown:
            _unrecognized(parser, args.command, unknown)
        if args.command != "serve":
            configure_logging("plain", "INFO")
        code = int(args.func(args, os.environ if environ is None else environ))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`prescaler call all | head -3`): stop quietly, as other command-line
        # tools do, and keep the interpreter's own flush at exit from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code
