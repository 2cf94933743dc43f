"""The scaler process: grpc.aio server (ExternalScaler, health, reflection, optional TLS), the HTTP
port, background eviction, and graceful shutdown.

Shutdown (SIGTERM): health goes NOT_SERVING and /healthz 503 while every RPC is still answered for
`drain_s` (probes and load balancers see it and move away), then new RPCs are refused, open streams
end cleanly, in-flight RPCs get `grace_s` to finish, running fits are abandoned with their worker
processes, and refreshers and sources are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import signal
import socket
import time
from collections.abc import Callable
from typing import NamedTuple

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from scaler._generated import externalscaler_pb2 as pb
from scaler._generated import externalscaler_pb2_grpc as pb_grpc
from scaler.forecast_pool import ForecastPool
from scaler.registry import Registry
from scaler.server.handlers import ExternalScalerService
from scaler.server.heap import HeapSettler, PauseRecorder, defer_full_collections
from scaler.server.http import HttpServer
from scaler.settings import Settings
from scaler.sources.catalog import SourceFactory
from scaler.telemetry import LatencyInterceptor, Telemetry

logger = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ExternalScaler"].full_name


class Ports(NamedTuple):
    grpc: int
    http: int


class PortInUse(OSError):
    """A port another process listens on; `kind` is `grpc` or `http`."""

    def __init__(self, kind: str, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, "address already in use")
        self.kind, self.port, self.address = kind, port, f"{host}:{port}"


def check_free(kind: str, host: str, port: int) -> None:
    """Raise PortInUse when something listens on (host, port) already; gRPC's own bind failure says
    only "Failed to bind" (and logs a C-level line), so the port is tried here first."""
    if port == 0:
        return
    try:
        family, kind_, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        return  # the server reports an unknown host itself
    with socket.socket(family, kind_, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(kind, host, port) from exc
            raise


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS (and mutual TLS with a client CA) from PEM files, or None for plaintext."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    key, cert = settings.tls_key.read_bytes(), settings.tls_cert.read_bytes()
    client_ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


LOOP_TICK_S = 0.1


async def watch_loop(
    telemetry: Telemetry, tick_s: float = LOOP_TICK_S, pauses: PauseRecorder | None = None
) -> None:
    """Measure, every `tick_s`, how late the event loop runs a due timer (`prescaler_event_loop_lag_seconds`),
    and move the collector pauses timed meanwhile into `prescaler_gc_pause_seconds`."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(tick_s)
        telemetry.loop_lag.observe(max(0.0, time.perf_counter() - started - tick_s))
        if pauses is not None:
            pauses.drain()


class App:
    """One prescaler server; `start()` then `stop()`, or `serve()` until SIGTERM/SIGINT."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: CollectorRegistry | None = None,
        source_factory: SourceFactory | None = None,
        pool: ForecastPool | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else CollectorRegistry()
        self.telemetry = Telemetry(self.metrics)
        self.pool = pool if pool is not None else ForecastPool(settings.forecast_workers)
        self.registry = Registry(
            settings, self.telemetry, source_factory=source_factory, pool=self.pool, wall=wall
        )
        self.service = ExternalScalerService(self.registry, settings, self.telemetry)
        self.health = HealthServicer()
        self._serving = False
        self._http = HttpServer(
            self.metrics,
            healthy=lambda: self._serving,
            targets=self.registry.describe,
            series=self.telemetry.targets,
        )
        self._server: grpc.aio.Server | None = None
        self._evictions: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._settler: asyncio.Task[None] | None = None
        self._pauses = PauseRecorder(self.telemetry.gc_pause)

    async def start(self) -> Ports:
        """Bind both ports and start serving; returns the bound ports."""
        # Created here, inside the running event loop the server must belong to.
        self._server = server = grpc.aio.server(
            interceptors=[LatencyInterceptor(self.telemetry)], options=[("grpc.so_reuseport", 0)]
        )
        pb_grpc.add_ExternalScalerServicer_to_server(self.service, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        host = self.settings.host
        address = f"{host}:{self.settings.grpc_port}"
        credentials = server_credentials(self.settings)
        check_free("grpc", host, self.settings.grpc_port)
        check_free("http", host, self.settings.metrics_port)
        try:
            if credentials is None:
                grpc_port = server.add_insecure_port(address)
            else:
                grpc_port = server.add_secure_port(address, credentials)
        except RuntimeError as exc:  # grpc's "Failed to bind to address ..."
            raise PortInUse("grpc", host, self.settings.grpc_port) from exc
        await server.start()
        try:
            http_port = await self._http.start(host, self.settings.metrics_port)
        except OSError as exc:
            # Stopped here, inside the loop: left running it fails later with "Event loop is closed".
            await server.stop(None)
            self._server = None
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse("http", host, self.settings.metrics_port) from exc
            raise
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._serving = True
        self._evictions = asyncio.create_task(self.registry.run_evictions(), name="evictions")
        self._watch = asyncio.create_task(watch_loop(self.telemetry, pauses=self._pauses), name="loop lag")
        self._pauses.install()
        return Ports(grpc_port, http_port)

    async def stop(self) -> None:
        """Graceful shutdown: NOT_SERVING for `drain_s` while RPCs are still answered, then new RPCs
        are refused, streams end, in-flight RPCs get `grace_s`; fits are cancelled, workers stopped."""
        self._serving = False
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._server is not None and self.settings.drain_s > 0:
            logger.debug("health NOT_SERVING; still answering for %ss", self.settings.drain_s)
            await asyncio.sleep(self.settings.drain_s)
        await self.health.enter_graceful_shutdown()
        self.service.stop_streams()
        if self._server is not None:
            await self._server.stop(self.settings.grace_s)
        if self._watch is not None:
            self._watch.cancel()
        if self._settler is not None:
            self._settler.cancel()
        self._pauses.remove()
        if self._evictions is not None:
            self._evictions.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._evictions
        # Workers first: a running fit is abandoned with its process instead of delaying the exit.
        self.pool.close()
        await self.registry.aclose()
        await self._http.stop()

    async def serve(self, on_ready: Callable[[Ports], None] | None = None) -> None:
        """Run until SIGTERM or SIGINT, then shut down gracefully."""
        # What is alive now lives as long as the process (modules, classes, the libraries: ~200,000
        # objects): out of the collector's reach, a full collection scans only what targets hold.
        gc.collect()
        gc.freeze()
        # Targets' own long-lived objects are frozen the same way once they settle, and full
        # collections run on a schedule rather than on allocation pressure (scaler.server.heap).
        thresholds = defer_full_collections()
        try:
            await self._serve(on_ready)
        finally:
            gc.set_threshold(*thresholds)

    async def _serve(self, on_ready: Callable[[Ports], None] | None) -> None:
        ports = await self.start()
        registry = self.registry
        self._settler = asyncio.create_task(
            HeapSettler().run(lambda: (registry.created_total, registry.dropped_total, len(registry))),
            name="heap settler",
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            if on_ready is not None:
                on_ready(ports)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            logger.info(
                "shutting down: %ss of NOT_SERVING while answering (--drain), then up to %ss for calls in flight",
                self.settings.drain_s,
                self.settings.grace_s,
            )
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()
