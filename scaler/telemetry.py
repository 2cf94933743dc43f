"""prescaler's own metrics, on an injected CollectorRegistry, and the one RPC latency interceptor."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from scaler.target_series import TargetFamily, TargetSeries

_RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Telemetry:
    """Every metric the scaler exports; one instance per server, on the registry it is given."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.rpc_seconds = Histogram(
            "prescaler_rpc_duration_seconds",
            "Server-side latency of unary ExternalScaler RPCs.",
            ["method", "code"],
            buckets=_RPC_BUCKETS,
            registry=registry,
        )
        self.streams_open = Gauge(
            "prescaler_streams_open", "Open streaming RPCs.", ["method"], registry=registry
        )
        self.tracked_targets = Gauge(
            "prescaler_tracked_targets", "ScaledObject triggers being polled.", registry=registry
        )
        self.samples = Counter(
            "prescaler_samples_total", "Successful reads of a target's signal.", ["source"], registry=registry
        )
        self.source_errors = Counter(
            "prescaler_source_errors_total",
            "Failed reads of a target's signal, by error class.",
            ["source", "error"],
            registry=registry,
        )
        self.replicas_errors = Counter(
            "prescaler_replicas_errors_total",
            "Failed reads of a target's replicasQuery (its values are then not raised past the HPA's "
            "tolerance), by error class.",
            ["error"],
            registry=registry,
        )
        self.ready_errors = Counter(
            "prescaler_ready_errors_total",
            "Failed reads of a target's readyQuery (leadTime: auto; start-ups are then not timed that "
            "step), by error class.",
            ["error"],
            registry=registry,
        )
        self.slo_errors = Counter(
            "prescaler_slo_errors_total",
            "Failed reads of a target's sloQuery (the margin then holds still that step), by error class.",
            ["error"],
            registry=registry,
        )
        self.decisions = Counter(
            "prescaler_decisions_total",
            "Decisions computed, by mode and by which term won.",
            ["mode", "reason"],
            registry=registry,
        )
        # Per target: pre-rendered, as prometheus_client's formatting of ~15,000 series at every
        # scrape would hold the interpreter ~150 ms (scaler.target_series).
        self.target_value = TargetFamily(
            "prescaler_target_value",
            "Per target: the observed load, the value answered, and in predictive/shadow mode the "
            "forecast mean at the lead time and its upper-quantile bound over it "
            "(kind=observed|value|forecast|bound).",
            "kind",
        )
        self.target_active = TargetFamily(
            "prescaler_target_active",
            "Per target: 1 when IsActive answers true.",
        )
        self.forecast_quality = TargetFamily(
            "prescaler_forecast_quality",
            "Per target, rolling over the last day: mase (forecast error / persistence error at the "
            "lead time; < 1 beats reactive) and coverage (share of lead-time windows whose peak stayed "
            "within the provisioned bound; compare with the quantile).",
            "score",
        )
        self.bound_coverage = TargetFamily(
            "prescaler_bound_coverage",
            "Per predictive or shadow target, rolling over the last day: the share of lead-time windows "
            "in which the observed signal stayed at or below the in-flight bound computed at the "
            "window's start, in the trigger's units (the quantity predictive mode sends KEDA); compare "
            "with the trigger's quantile.",
        )
        self.margin = TargetFamily(
            "prescaler_margin_scale",
            "Per predictive or shadow target: how the served bound is corrected online "
            "(scaler.calibration). kind=coverage: the factor on the margin above the forecast mean that "
            "brings prescaler_bound_coverage to the quantile; kind=slo, with sloQuery and errorBudget: "
            "the factor on the whole bound that brings the violating share to the budget.",
            "kind",
        )
        self.pipeline = TargetFamily(
            "prescaler_pipeline",
            "Per predictive or shadow target: 1 for the pipeline whose bound is served (kind=forecast|"
            "no_forecast|reactive; scaler.choice), 0 for the others, and their mean value over the last "
            "day's scored steps as prescaler_pipeline_cost.",
            "kind",
        )
        self.pipeline_cost = TargetFamily(
            "prescaler_pipeline_cost",
            "Per predictive or shadow target and pipeline (kind): the mean value it would have sent over "
            "the last day's scored steps, in the trigger's units (the cost each is chosen on).",
            "kind",
        )
        self.burst_reserve = TargetFamily(
            "prescaler_burst_reserve",
            "Per predictive or shadow target with burstReserve: the reserve held above the served bound "
            "after a burst when the target's bursts cluster (scaler.bursts), in the trigger's units; 0 "
            "between bursts and on traffic without bursts.",
        )
        self.slo_share = TargetFamily(
            "prescaler_slo_violating_share",
            "Per target with sloQuery and errorBudget, over the last day's reads: the mean violating "
            "share sloQuery returned (compare with errorBudget).",
        )
        self.lead_time = TargetFamily(
            "prescaler_lead_time_seconds",
            "Per target with leadTime: auto: the lead time used (kind=used: the measured percentile, or "
            "leadTimeFallback until enough start-ups are timed), and the measured start-ups' p50 and "
            "upper percentile (kind=p50|upper; the percentile is 0.9).",
            "kind",
        )
        self.lead_time_startups = TargetFamily(
            "prescaler_lead_time_startups",
            "Per target with leadTime: auto: start-ups in the measurement window (kind=window), timed "
            "since the target started (timed), replicas ready whose start was unknown (untimed), "
            "cancelled before ready (cancelled), not ready within an hour (stuck).",
            "kind",
        )
        self.targets = TargetSeries(
            registry,
            self.target_value,
            self.target_active,
            self.forecast_quality,
            self.bound_coverage,
            self.margin,
            self.pipeline,
            self.pipeline_cost,
            self.burst_reserve,
            self.slo_share,
            self.lead_time,
            self.lead_time_startups,
        )
        self.refits = Counter(
            "prescaler_refits_total", "Seasonal model refits, by outcome.", ["outcome"], registry=registry
        )
        self.refit_seconds = Histogram(
            "prescaler_refit_duration_seconds",
            "Worker time of one refit (fit + calibration).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=registry,
        )
        self.time_to_first_forecast = Histogram(
            "prescaler_time_to_first_forecast_seconds",
            "From a target's first RPC to its first forecast (history bootstrap included).",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300),
            registry=registry,
        )
        self.evictions = Counter(
            "prescaler_target_evictions_total", "Targets dropped after being idle.", registry=registry
        )
        self.gc_pause = Histogram(
            "prescaler_gc_pause_seconds",
            "Pauses of the cyclic garbage collector, by generation: the whole process (every RPC and "
            "poll) waits while one runs.",
            ["generation"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=registry,
        )
        self.loop_lag = Histogram(
            "prescaler_event_loop_lag_seconds",
            "How late the event loop ran a timer due every 100 ms: what every RPC waits before its "
            "handler starts when the loop is busy or the process is short of CPU.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )

    def forget_target(self, namespace: str, name: str, metric: str) -> None:
        """Remove an evicted target's series so that /metrics does not show a stale value."""
        self.targets.forget((namespace, name, metric))


if TYPE_CHECKING:  # the stubs make it generic; the runtime class is not subscriptable
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class LatencyInterceptor(_Interceptor):
    """Times every unary RPC and labels it with the status code it ended with."""

    def __init__(self, telemetry: Telemetry, clock: Callable[[], float] = time.perf_counter) -> None:
        self._telemetry = telemetry
        self._clock = clock
        self._handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        cached = self._handlers.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        name = method.rsplit("/", 1)[-1]
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._timed(name, cast(Behavior, handler.unary_unary)),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        # One wrapped handler per method, built once: the services do not change after start.
        self._handlers[method] = wrapped
        return wrapped

    def _timed(self, method: str, behavior: Behavior) -> Behavior:
        histogram = self._telemetry.rpc_seconds
        ok = histogram.labels(method, "OK")
        clock = self._clock

        async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = clock()
            try:
                answer = await behavior(request, context)
            except BaseException:
                status = context.code()
                code = status.name if isinstance(status, grpc.StatusCode) else "UNKNOWN"
                histogram.labels(method, code).observe(clock() - start)
                raise
            ok.observe(clock() - start)
            return answer

        return timed
