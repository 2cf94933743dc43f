"""One target's background loop: source -> history -> policy -> cached Decision.

The gRPC handlers never read a source: they read `Refresher.current()`, which is O(1). Each loop
iteration samples the signal, appends it to the target's history, and replaces the cached decision.
A failed read keeps the previous decision (it ages, and `current()` refuses it once it is older
than max age) and records the error, which is what KEDA sees when no fresh value is left. The
side queries (`scaler.side_queries`: replicas, ready replicas, the SLO's violating share) only refine
a value: when one cannot be read, the decision is made without it and the error is logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from scaler.choice import CANDIDATES
from scaler.errors import PrescalerError, QueryShapeError, SourceError, StaleValue, WarmingUp
from scaler.forecast_pool import ForecastPool
from scaler.history import History
from scaler.leadtime import SAMPLES_SPAN_S
from scaler.policy import Decision, decide
from scaler.predictor import Bound, Predictor
from scaler.readiness import ReadinessTracker, lead_time_used
from scaler.side_queries import SideQueries
from scaler.sources.base import Source
from scaler.target_view import describe_lead, describe_served, finite
from scaler.telemetry import Telemetry
from scaler.trigger import TriggerConfig
from scaler.units import format_duration

logger = logging.getLogger(__name__)


class TargetKey(NamedTuple):
    """Identity of one trigger of one ScaledObject: KEDA may send several triggers per object."""

    namespace: str
    name: str
    digest: str
    """Hash of the trigger's metadata map."""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}#{self.digest[:8]}"


class _TargetLog(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: str, kwargs: object) -> tuple[str, object]:  # type: ignore[override]
        return f"[{self.extra['target'] if self.extra else '?'}] {msg}", kwargs


class Refresher:
    """Keeps one target's decision fresh; `run()` is its background task."""

    def __init__(
        self,
        key: TargetKey,
        config: TriggerConfig,
        source: Source,
        telemetry: Telemetry,
        *,
        max_age_s: float,
        rate_source: Source | None = None,
        replicas_source: Source | None = None,
        ready_source: Source | None = None,
        slo_source: Source | None = None,
        pool: ForecastPool | None = None,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.key = key
        self.config = config
        self.source = source
        self.rate_source = rate_source
        self.readiness: ReadinessTracker | None = None
        self._lead_s: float | None = None
        """The measured lead time (`leadTime: auto`) used now; None: the configured one."""
        self._logged_lead_s = math.nan
        if config.lead_time_auto:
            if ready_source is None or replicas_source is None:
                raise ValueError("leadTime: auto needs the replicasQuery and readyQuery sources")
            self.readiness = ReadinessTracker(step_s=config.step_s, fallback_s=config.lead_time_s)
        capacity = max(2, math.ceil(SAMPLES_SPAN_S / config.step_s))
        self.history = History(config.step_s, capacity)
        self.rate_history = History(config.step_s, capacity) if rate_source is not None else None
        self.max_age_s = max_age_s
        self._telemetry = telemetry
        self._wall = wall
        self._sleep = sleep
        self._decision: Decision | None = None
        self._error: PrescalerError | None = None
        self._attempted = asyncio.Event()
        # Created when a stream first waits: without streams a step allocates no event.
        self._refreshed: asyncio.Event | None = None
        self._log = _TargetLog(logger, {"target": str(key)})
        self.side = SideQueries(
            {"replicasQuery": replicas_source, "readyQuery": ready_source, "sloQuery": slo_source},
            telemetry,
            self._log,
        )
        self.predictor: Predictor | None = None
        self._bound_reason = ""
        self._logged_pipeline = "forecast"
        self._bound: Bound | None = None
        if config.mode != "reactive":
            if pool is None:
                raise ValueError(f"mode {config.mode} needs a forecast pool")
            self.predictor = Predictor(
                config,
                rate_source or source,
                self.rate_history or self.history,
                pool,
                telemetry,
                (key.namespace, key.name, config.metric_name),
                log=self._log,
                wall=wall,
            )
        # Spread the targets' polls over the step instead of all at its start; the whole key is
        # hashed, since many ScaledObjects share the same trigger metadata.
        spread = hashlib.sha256(f"{key.namespace}/{key.name}/{key.digest}".encode()).digest()
        self._phase_s = int.from_bytes(spread[:4], "big") / 2**32 * config.step_s

    @property
    def decision(self) -> Decision | None:
        """The newest decision, fresh or not."""
        return self._decision

    def current(self) -> Decision:
        """The decision to answer with now; raises when there is no value prescaler can vouch for."""
        decision = self._decision
        if decision is None:
            if self._error is not None:
                raise type(self._error)(str(self._error))
            raise WarmingUp(f"{self.key}: no value yet; the first read of its signal is still running")
        age = self._wall() - decision.at_s
        if age > self.max_age_s:
            cause = f"; last error: {self._error}" if self._error is not None else ""
            raise StaleValue(
                f"{self.key}: newest value is {format_duration(age)} old, over the "
                f"{format_duration(self.max_age_s)} max age{cause}"
            )
        return decision

    def describe(self) -> dict[str, object]:
        """This target for the `/targets` debug view: what is served and why. O(1), JSON-ready."""
        decision, bound, now = self._decision, self._bound, self._wall()
        try:
            served: float | None = self.current().value
            unavailable = None
        except PrescalerError as exc:
            served, unavailable = None, f"{type(exc).__name__}: {exc}"
        return {
            "namespace": self.key.namespace,
            "name": self.key.name,
            "digest": self.key.digest[:12],
            "metric": self.config.metric_name,
            "mode": self.config.mode,
            "source": self.config.source,
            "observed": finite(decision.observed) if decision else None,
            "bound": finite(bound.value) if bound else None,
            "served": served,
            "active": decision.active if decision and unavailable is None else None,
            "reason": decision.reason if decision else None,
            "unavailable": unavailable,
            "model": (self.predictor.model or None) if self.predictor else None,
            "forecast": bound.reason if bound else None,
            "last_error": str(self._error) if self._error is not None else None,
            "replicas_error": self.side.errors.get("replicasQuery"),
            "ready_error": self.side.errors.get("readyQuery"),
            "slo_error": self.side.errors.get("sloQuery"),
            "served_bound": None if self.predictor is None else describe_served(self.predictor, self.config),
            "lead_time": None if self.readiness is None else describe_lead(self.readiness, self._lead_used_s),
            "decision_age_s": round(now - decision.at_s, 3) if decision else None,
            "max_age_s": self.max_age_s,
        }

    async def first_attempt(self) -> None:
        """Wait until the first read has finished, successfully or not."""
        await self._attempted.wait()

    async def refreshed(self) -> None:
        """Wait until the next refresh has finished, successfully or not."""
        if self._refreshed is None:
            self._refreshed = asyncio.Event()
        await self._refreshed.wait()

    async def refresh(self) -> None:
        """One iteration: read the signal and replace the decision (or record why not)."""
        source_kind = self.config.source
        try:
            sample = await self.source.sample()
            rate = await self.rate_source.sample() if self.rate_source is not None else None
        except (SourceError, QueryShapeError) as exc:
            self._failed(exc)
            return
        except Exception as exc:
            # A source bug, or an input no check foresaw: answered as UNAVAILABLE with its class,
            # never as a first read that seems to run forever. Logged with its traceback once.
            if not isinstance(self._error, SourceError) or not str(self._error).endswith(type(exc).__name__):
                self._log.exception("reading the signal failed unexpectedly")
            self._failed(
                SourceError(f"{self.key}: reading the signal failed unexpectedly: {type(exc).__name__}")
            )
            return
        finally:
            self._attempted.set()
        if self._error is not None:
            self._log.info("reading the signal works again")
        self._error = None
        self._telemetry.samples.labels(source_kind).inc()
        self.history.append(sample.at_s, sample.value)
        if rate is not None and self.rate_history is not None:
            self.rate_history.append(rate.at_s, rate.value)
        replicas = await self.side.count("replicasQuery")
        if self.predictor is not None and self.predictor.slo is not None and self.side.has("sloQuery"):
            share = await self.side.value("sloQuery")
            if share is not None:
                self.predictor.slo.observe(share)
        if self.readiness is not None:
            ready = await self.side.count("readyQuery")
            self._measure_lead(sample.at_s, self.readiness, replicas, ready)
        self._record(
            self._decide(sample.at_s, sample.value, rate.value if rate is not None else None, replicas)
        )

    def _failed(self, exc: SourceError | QueryShapeError) -> None:
        self._telemetry.source_errors.labels(self.config.source, type(exc).__name__).inc()
        if self._error is None or str(self._error) != str(exc):
            self._log.warning("reading the signal failed: %s", exc)
        self._error = exc
        self._wake()

    @property
    def _lead_used_s(self) -> float:
        """The lead time in use: the measured one once `leadTime: auto` has one, else the configured."""
        return self.config.lead_time_s if self._lead_s is None else self._lead_s

    def _measure_lead(
        self, at_s: float, readiness: ReadinessTracker, replicas: int | None, ready: int | None
    ) -> None:
        """Time start-ups from this step's counts, and take the lead time they give (`leadTime: auto`)."""
        readiness.observe(at_s, replicas, ready)
        estimate = readiness.estimate()
        self._lead_s = lead_time_used(estimate, self.config.step_s)
        lead_s = self._lead_used_s
        labels = (self.key.namespace, self.key.name, self.config.metric_name)
        family = self._telemetry.lead_time
        family.set(labels, lead_s, "used")
        if estimate.startups:
            family.set(labels, estimate.p50_s, "p50")
            family.set(labels, estimate.upper_s, "upper")
        startups = self._telemetry.lead_time_startups
        for kind in ("timed", "untimed", "cancelled", "stuck"):
            startups.set(labels, getattr(estimate, kind), kind)
        startups.set(labels, estimate.startups, "window")
        if estimate.measured and not abs(lead_s - self._logged_lead_s) < self.config.step_s:
            self._log.info(
                "lead time measured: %s (p%g of %d start-ups; median %s)",
                format_duration(lead_s),
                100 * estimate.quantile,
                estimate.startups,
                format_duration(estimate.p50_s),
            )
            self._logged_lead_s = lead_s

    def _decide(self, at_s: float, observed: float, rate: float | None, replicas: int | None) -> Decision:
        predictor = self.predictor
        if predictor is None:
            return decide(at_s, observed, self.config)
        predictor.accuracy.actual(at_s, observed if rate is None else rate)
        predictor.choice.actual(at_s, observed)
        predictor.maybe_refit(at_s)
        bound = self._bound = predictor.bound(at_s, self.history, self._lead_s)
        self._export_forecast(bound, predictor)
        if bound.reason != self._bound_reason:
            self._log.info("forecast: %s", bound.reason)
            self._bound_reason = bound.reason
        if self.config.mode == "shadow":
            return decide(at_s, observed, self.config)
        return decide(at_s, observed, self.config, bound.value, replicas)

    def _export_forecast(self, bound: Bound, predictor: Predictor) -> None:
        labels = (self.key.namespace, self.key.name, self.config.metric_name)
        values = self._telemetry.target_value
        if bound.value is not None:
            values.set(labels, bound.value, "bound")
            values.set(labels, bound.mean, "forecast")
        quality = self._telemetry.forecast_quality
        if predictor.accuracy.evaluations:
            quality.set(labels, predictor.accuracy.mase, "mase")
            quality.set(labels, predictor.accuracy.coverage, "coverage")
        if predictor.served.evaluations:
            self._telemetry.bound_coverage.set(labels, predictor.served.coverage)
        self._telemetry.margin.set(labels, predictor.served.scale, "coverage")
        choice = predictor.choice
        for name in CANDIDATES:
            self._telemetry.pipeline.set(labels, 1.0 if name == choice.serving else 0.0, name)
            cost = choice.cost(name)
            if math.isfinite(cost):
                self._telemetry.pipeline_cost.set(labels, cost, name)
        burst = choice.burst(choice.serving)
        if burst is not None:
            self._telemetry.burst_reserve.set(labels, burst.value)
        if choice.serving != self._logged_pipeline:
            self._log.info("serving the %s pipeline: %s", choice.serving, choice.serving_why)
            self._logged_pipeline = choice.serving
        if predictor.slo is not None:
            self._telemetry.margin.set(labels, predictor.slo.factor, "slo")
            if predictor.slo.reads:
                self._telemetry.slo_share.set(labels, predictor.slo.share)

    def _record(self, decision: Decision) -> None:
        previous = self._decision
        self._decision = decision
        t = self._telemetry
        t.decisions.labels(self.config.mode, decision.reason).inc()
        labels = (self.key.namespace, self.key.name, self.config.metric_name)
        t.target_value.set(labels, decision.observed, "observed")
        t.target_value.set(labels, decision.value, "value")
        t.target_active.set(labels, 1 if decision.active else 0)
        # Logged when activity or the winning term changes; not when only the tolerance adjustment does.
        if (
            previous is None
            or previous.active != decision.active
            or previous.reason.split("+")[0] != decision.reason.split("+")[0]
        ):
            self._log.info(
                "now %s: value %.3f (%s), activation threshold %.3f",
                "active" if decision.active else "inactive",
                decision.value,
                decision.reason,
                self.config.activation_threshold,
            )
        self._wake()

    def _wake(self) -> None:
        # Wake every stream waiting on this target; each compares and sends only a change.
        event, self._refreshed = self._refreshed, None
        if event is not None:
            event.set()

    async def aclose(self) -> None:
        """Stop background work and close the sources."""
        if self.predictor is not None:
            await self.predictor.aclose()
        await self.source.aclose()
        if self.rate_source is not None:
            await self.rate_source.aclose()
        await self.side.aclose()

    async def run(self) -> None:
        """Refresh every step, aligned to the target's phase within the step, until cancelled."""
        step = self.config.step_s
        while True:
            try:
                await self.refresh()
            except Exception:
                # A bug must not end the loop silently: log it; the decision ages into UNAVAILABLE.
                self._log.exception("refresh failed unexpectedly")
            now = self._wall()
            delay = step - ((now - self._phase_s) % step)
            await self._sleep(delay if delay > 0.001 else step)
