"""The scaler process: grpc.aio server (ExternalScaler, health, reflection, optional TLS), the HTTP
port, background eviction, and graceful shutdown.

Shutdown (SIGTERM): health goes NOT_SERVING and /healthz 503, open streams end cleanly, in-flight
RPCs get `grace_s` to finish, then refreshers and sources are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
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
from scaler.server.http import HttpServer
from scaler.settings import Settings
from scaler.sources.base import Source
from scaler.sources.catalog import open_source
from scaler.telemetry import LatencyInterceptor, Telemetry
from scaler.trigger import TriggerConfig

logger = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ExternalScaler"].full_name


class Ports(NamedTuple):
    grpc: int
    http: int


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS (and mutual TLS with a client CA) from PEM files, or None for plaintext."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    key, cert = settings.tls_key.read_bytes(), settings.tls_cert.read_bytes()
    client_ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


class App:
    """One prescaler server; `start()` then `stop()`, or `serve()` until SIGTERM/SIGINT."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: CollectorRegistry | None = None,
        source_factory: Callable[[TriggerConfig, Settings], Source] = open_source,
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
        self._http = HttpServer(self.metrics, healthy=lambda: self._serving)
        self._server: grpc.aio.Server | None = None
        self._evictions: asyncio.Task[None] | None = None

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
        address = f"{self.settings.host}:{self.settings.grpc_port}"
        credentials = server_credentials(self.settings)
        if credentials is None:
            grpc_port = server.add_insecure_port(address)
        else:
            grpc_port = server.add_secure_port(address, credentials)
        await server.start()
        http_port = await self._http.start(self.settings.host, self.settings.metrics_port)
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._serving = True
        self._evictions = asyncio.create_task(self.registry.run_evictions(), name="evictions")
        return Ports(grpc_port, http_port)

    async def stop(self) -> None:
        """Graceful shutdown: NOT_SERVING, end streams, drain in-flight RPCs, close everything."""
        self._serving = False
        await self.health.enter_graceful_shutdown()
        self.service.stop_streams()
        if self._server is not None:
            await self._server.stop(self.settings.grace_s)
        if self._evictions is not None:
            self._evictions.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._evictions
        await self.registry.aclose()
        self.pool.close()
        await self._http.stop()

    async def serve(self, on_ready: Callable[[Ports], None] | None = None) -> None:
        """Run until SIGTERM or SIGINT, then shut down gracefully."""
        ports = await self.start()
        if on_ready is not None:
            on_ready(ports)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
            logger.info("shutting down: health NOT_SERVING, draining for up to %ss", self.settings.grace_s)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()
