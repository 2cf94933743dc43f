"""The `prescaler` command (also `python -m scaler`): serve, call, and the offline tools."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from scaler import __version__, backtest_cli, call, settings, simulate_cli
from scaler.gpu import cli as gpu_cli
from scaler.server.app import App, Ports


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


def _announce(config: settings.Settings) -> Callable[[Ports], None]:
    def on_ready(ports: Ports) -> None:
        shown = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
        tls = "TLS" if config.tls_cert else "plaintext"
        if config.tls_client_ca:
            tls = "mutual TLS"
        metadata = call.EXAMPLE_METADATA
        ref = {
            "name": "example",
            "namespace": "default",
            "scalerMetadata": dict(p.split("=") for p in metadata.split(",")),
        }
        print(
            f"prescaler {__version__} listening\n"
            f"  gRPC  {config.host}:{ports.grpc} ({tls}): externalscaler.ExternalScaler, grpc.health.v1, reflection\n"
            f"  HTTP  {config.host}:{ports.http}: /metrics /healthz\n"
            f"  replay traces from {config.replay_dir}\n"
            "Try it from another terminal (the embedded replay trace needs no Prometheus):\n"
            f"  .venv/bin/prescaler call all --address {shown}:{ports.grpc} --metadata {metadata}\n"
            f"  grpcurl -plaintext -d '{json.dumps({'scaledObjectRef': ref, 'metricName': 'prescaler'})}' "
            f"{shown}:{ports.grpc} externalscaler.ExternalScaler/GetMetrics\n"
            "Stop with Ctrl-C (SIGTERM drains gracefully).",
            flush=True,
        )

    return on_ready


def _serve(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        config = settings.from_args(args, environ)
    except settings.SettingsError as exc:
        print(f"prescaler serve: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_format, config.log_level)
    app = App(config)
    try:
        asyncio.run(app.serve(on_ready=_announce(config)))
    except OSError as exc:
        print(f"prescaler serve: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prescaler",
        description="KEDA external scaler that scales GPU inference services before demand arrives.",
    )
    parser.add_argument("--version", action="version", version=f"prescaler {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    serve = subparsers.add_parser("serve", help="run the ExternalScaler gRPC service KEDA calls")
    settings.add_arguments(serve)
    serve.set_defaults(func=_serve)
    call.add_parser(subparsers)
    gpu_cli.add_parser(subparsers)
    backtest_cli.add_parser(subparsers)
    simulate_cli.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        configure_logging("plain", "INFO")
    return int(args.func(args, os.environ if environ is None else environ))
