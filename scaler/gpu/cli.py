"""`prescaler gpu-exporter`: the Prometheus exporter of GPU SM activity.

The only module of the exporter that sees the environment: `run` gets it as a mapping and reads the
Downward-API variables POD_NAME, POD_NAMESPACE and CONTAINER_NAME (sidecar attribution) from it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

import pynvml
from prometheus_client import CollectorRegistry, start_http_server

from scaler.cli_types import duration
from scaler.gpu.errors import GpuUnavailable
from scaler.gpu.exporter import Exporter
from scaler.gpu.model import Attribution, PodRef, StaticAttribution
from scaler.gpu.nvml_api import Nvml
from scaler.gpu.podresources import DEFAULT_SOCKET, KubeletPodResources

logger = logging.getLogger(__name__)

EXIT_CANNOT_START = 2
"""Exit status when NVML cannot be opened or sees no GPU (without --allow-no-gpu), or sidecar
attribution lacks its Downward-API variables."""
ATTRIBUTIONS = ("auto", "sidecar", "kubelet", "none")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `gpu-exporter` subcommand; its `func` is `run`."""
    parser = subparsers.add_parser(
        "gpu-exporter",
        help="export GPU SM activity (NVML GPM) as Prometheus metrics",
        description="Samples every visible GPU and MIG instance with NVML GPM and serves "
        "prescaler_gpu_* metrics on /metrics.",
    )
    parser.add_argument(
        "--host", default="0.0.0.0", help="address to serve /metrics on (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=9400, help="port to serve /metrics on (default %(default)s)"
    )
    parser.add_argument(
        "--interval",
        type=duration,
        default=1.0,
        metavar="DURATION",
        help="time between samples, also the period SM activity averages over (default 1s)",
    )
    parser.add_argument(
        "--allow-no-gpu",
        action="store_true",
        help="without a driver or GPU, serve only prescaler_gpu_up and prescaler_gpu_errors_total "
        f"instead of exiting with status {EXIT_CANNOT_START}",
    )
    parser.add_argument(
        "--attribution",
        choices=ATTRIBUTIONS,
        default="auto",
        help="how series get pod/namespace/container labels: sidecar (POD_NAME, POD_NAMESPACE, "
        "CONTAINER_NAME from the Downward API), kubelet (pod-resources socket, DaemonSet), none; "
        "auto picks sidecar when POD_NAME is set, else kubelet when the socket exists (default auto)",
    )
    parser.add_argument(
        "--pod-resources-socket",
        default=DEFAULT_SOCKET,
        metavar="PATH",
        help="the kubelet's pod-resources socket (default %(default)s)",
    )
    parser.add_argument(
        "--pod-resources-refresh",
        type=duration,
        default=10.0,
        metavar="DURATION",
        help="how often the device -> pod assignment is re-read (default 10s)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, environ: Mapping[str, str], *, nvml: Nvml = pynvml) -> int:
    """Serve until SIGTERM or SIGINT, then return 0; EXIT_CANNOT_START when it cannot start.

    `environ` is read for the Downward-API variables of sidecar attribution, nothing else.
    """
    try:
        attribution = _attribution(args, environ)
    except ValueError as exc:
        print(f"prescaler gpu-exporter: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    registry = CollectorRegistry()
    exporter = Exporter(
        registry=registry,
        nvml=nvml,
        interval_s=args.interval,
        attribution=attribution,
        attribution_refresh_s=args.pod_resources_refresh,
        allow_no_gpu=args.allow_no_gpu,
    )
    try:
        exporter.start()
    except GpuUnavailable as exc:
        print(f"prescaler gpu-exporter: {exc} (pass --allow-no-gpu to serve anyway)", file=sys.stderr)
        return EXIT_CANNOT_START
    try:
        asyncio.run(_serve(exporter, attribution, registry, host=args.host, port=args.port))
    finally:
        exporter.close()
    return 0


async def _serve(
    exporter: Exporter, attribution: Attribution, registry: CollectorRegistry, *, host: str, port: int
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        # The first sample is in before /metrics opens, so that no scrape finds it empty.
        await exporter.refresh_attribution()
        await asyncio.to_thread(exporter.step)
        server, thread = start_http_server(port, host, registry=registry)
        logger.info("serving /metrics on %s:%d", host, server.server_address[1])
        try:
            await exporter.run(stop)
        finally:
            await asyncio.to_thread(server.shutdown)
            server.server_close()
            thread.join()
    finally:
        if isinstance(attribution, KubeletPodResources):
            await attribution.aclose()
    logger.info("stopped")


def _attribution(args: argparse.Namespace, environ: Mapping[str, str]) -> Attribution:
    mode: str = args.attribution
    if mode == "auto":
        if environ.get("POD_NAME"):
            mode = "sidecar"
        elif Path(args.pod_resources_socket).exists():
            mode = "kubelet"
        else:
            mode = "none"
    logger.info("pod attribution: %s", mode)
    if mode == "kubelet":
        return KubeletPodResources(args.pod_resources_socket)
    if mode == "sidecar":
        missing = [key for key in ("POD_NAME", "POD_NAMESPACE") if not environ.get(key)]
        if missing:
            raise ValueError(
                f"--attribution sidecar needs {' and '.join(missing)} set from the Downward API "
                "(fieldRef metadata.name / metadata.namespace)"
            )
        return StaticAttribution(
            PodRef(environ["POD_NAMESPACE"], environ["POD_NAME"], environ.get("CONTAINER_NAME", ""))
        )
    return StaticAttribution()
