"""The ExternalScaler service: thin translators between KEDA's messages and the registry.

Handlers read cached decisions only; the one wait is a target's very first read, bounded by the
RPC's deadline. Every RPC runs under a server-side deadline (KEDA's polling path sets none), and
every PrescalerError becomes its status code through `errors.status_code`, in `_guard` alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import grpc

from scaler._generated import externalscaler_pb2 as pb
from scaler._generated import externalscaler_pb2_grpc as pb_grpc
from scaler.errors import NotReady, PrescalerError, status_name
from scaler.refresher import Refresher
from scaler.registry import Registry
from scaler.settings import Settings
from scaler.telemetry import Telemetry
from scaler.trigger import TriggerConfig

logger = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]
INT64_MAX = 2**63 - 1
MAX_VALUE = 9.2e15
"""Largest value sent: KEDA turns it into int64 thousandths (a milli-quantity), which overflows past it."""
# Answer "warming up" this long before the deadline rather than let the deadline cut the call.
_MARGIN_S = 0.05


MAX_DETAILS_BYTES = 4096
"""Longest status message sent, as gRPC writes it (`grpc-message`, percent-encoded): well under the
8 KiB of response headers a grpcio (C core) client accepts by default, past which the caller gets
RESOURCE_EXHAUSTED instead of the error."""


def status_code(exc: PrescalerError) -> grpc.StatusCode:
    """The status an error is answered with (the mapping itself is `errors.status_name`)."""
    return grpc.StatusCode[status_name(exc)]


def details(exc: PrescalerError) -> str:
    """The status message of an error: its text, cut where gRPC's encoding of it passes
    MAX_DETAILS_BYTES (a byte outside printable ASCII, and `%`, take three)."""
    text = str(exc)
    size = 0
    for at, char in enumerate(text):
        size += 1 if " " <= char <= "~" and char != "%" else 3 * len(char.encode("utf-8"))
        if size > MAX_DETAILS_BYTES - 40:
            return f"{text[:at]}... ({len(text) - at:,} more characters)"
    return text


def metric_spec(config: TriggerConfig) -> pb.MetricSpec:
    """The spec KEDA hands the HPA: target = one replica's share; both fields filled."""
    return pb.MetricSpec(
        metricName=config.metric_name,
        targetSize=max(1, round(config.threshold)),
        targetSizeFloat=config.threshold,
    )


def metric_value(name: str, value: float) -> pb.MetricValue:
    """One MetricValue with both the float field and the deprecated int field filled."""
    safe = min(MAX_VALUE, value) if math.isfinite(value) and value > 0 else 0.0
    return pb.MetricValue(metricName=name, metricValue=round(safe), metricValueFloat=safe)


class ExternalScalerService(pb_grpc.ExternalScalerServicer):
    """KEDA's ExternalScaler service over the registry."""

    def __init__(self, registry: Registry, settings: Settings, telemetry: Telemetry) -> None:
        self._registry = registry
        self._settings = settings
        self._telemetry = telemetry
        self._stopping = asyncio.Event()

    def stop_streams(self) -> None:
        """End open streams cleanly (KEDA reconnects, to another replica during a rollout)."""
        self._stopping.set()

    def _budget_s(self, context: Context) -> float:
        remaining = context.time_remaining()
        budget = self._settings.rpc_deadline_s
        return budget if remaining is None else max(0.0, min(budget, remaining))

    @contextlib.asynccontextmanager
    async def _guard(self, context: Context) -> AsyncIterator[float]:
        """Yields the time the handler may wait (the server-side deadline, or the caller's if sooner)
        and turns errors into statuses. The only await in a unary handler is a new target's first
        read, which Registry.decision bounds by that time, so a warm call needs no timer of its own."""
        try:
            yield max(0.0, self._budget_s(context) - _MARGIN_S)
        except PrescalerError as exc:
            await context.abort(status_code(exc), details(exc))
        except Exception:
            # No input may end in UNKNOWN: a bug is INTERNAL, with its traceback in the log only.
            logger.exception("%s failed unexpectedly", type(self).__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error in prescaler; see its log")

    async def IsActive(self, request: pb.ScaledObjectRef, context: Context) -> pb.IsActiveResponse:
        async with self._guard(context) as wait_s:
            decision = await self._registry.decision(
                request.namespace, request.name, request.scalerMetadata, wait_s
            )
            return pb.IsActiveResponse(result=decision.active)
        raise AssertionError("unreachable: _guard aborts on error")

    async def GetMetricSpec(self, request: pb.ScaledObjectRef, context: Context) -> pb.GetMetricSpecResponse:
        async with self._guard(context):
            refresher = self._registry.track(request.namespace, request.name, request.scalerMetadata)
            return pb.GetMetricSpecResponse(metricSpecs=[metric_spec(refresher.config)])
        raise AssertionError("unreachable: _guard aborts on error")

    async def GetMetrics(self, request: pb.GetMetricsRequest, context: Context) -> pb.GetMetricsResponse:
        ref = request.scaledObjectRef
        async with self._guard(context) as wait_s:
            refresher = self._registry.track(ref.namespace, ref.name, ref.scalerMetadata)
            decision = await self._registry.answer(refresher, wait_s)
            name = request.metricName or refresher.config.metric_name
            return pb.GetMetricsResponse(metricValues=[metric_value(name, decision.value)])
        raise AssertionError("unreachable: _guard aborts on error")

    async def StreamIsActive(
        self, request: pb.ScaledObjectRef, context: Context
    ) -> AsyncIterator[pb.IsActiveResponse]:
        """Send the current state at once, then each change; end with the error when the value is lost."""
        gauge = self._telemetry.streams_open.labels("StreamIsActive")
        gauge.inc()
        try:
            async with self._leased(request, context) as refresher:
                await refresher.first_attempt()
                sent: bool | None = None
                while not self._stopping.is_set():
                    try:
                        active = refresher.current().active
                    except NotReady as exc:
                        if refresher.decision is None and sent is None:
                            await self._next_refresh(refresher)
                            continue
                        await context.abort(status_code(exc), details(exc))
                    except PrescalerError as exc:
                        await context.abort(status_code(exc), details(exc))
                    if active != sent:
                        yield pb.IsActiveResponse(result=active)
                        sent = active
                    await self._next_refresh(refresher)
        finally:
            gauge.dec()

    async def StreamMetricSpec(
        self, request: pb.ScaledObjectRef, context: Context
    ) -> AsyncIterator[pb.GetMetricSpecResponse]:
        """Send the spec at once; it only changes with the metadata, which opens a new stream."""
        gauge = self._telemetry.streams_open.labels("StreamMetricSpec")
        gauge.inc()
        try:
            async with self._leased(request, context) as refresher:
                yield pb.GetMetricSpecResponse(metricSpecs=[metric_spec(refresher.config)])
                await self._stopping.wait()
        finally:
            gauge.dec()

    @contextlib.asynccontextmanager
    async def _leased(self, request: pb.ScaledObjectRef, context: Context) -> AsyncIterator[Refresher]:
        try:
            lease = self._registry.leased(request.namespace, request.name, request.scalerMetadata)
            refresher = await lease.__aenter__()
        except PrescalerError as exc:
            await context.abort(status_code(exc), details(exc))
        try:
            yield refresher
        finally:
            await lease.__aexit__(None, None, None)

    async def _next_refresh(self, refresher: Refresher) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        refreshed = asyncio.ensure_future(refresher.refreshed())
        try:
            await asyncio.wait((stop, refreshed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            refreshed.cancel()
