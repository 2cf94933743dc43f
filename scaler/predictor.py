"""One target's forecasting: history bootstrap, refits in the worker pool, the bound per step.

Two time scales. The seasonal shape is fitted at a coarse step (5 min) from `history` loaded with a
range query: at the first sight of a target (so a forecast exists within seconds, and a restart
loses nothing Prometheus has) and every `refitInterval` after. The level near now comes from the
fine samples the refresher takes every `step`. The per-step forecast is an interpolation of the
fitted path plus a level correction: microseconds, so it runs inline; fitting runs in a worker.

What is forecast is demand, not a symptom the scaler suppresses: with `rateQuery` the arrival rate
is forecast and converted to the trigger's units by Little's law (in flight = rate x time in
service), since a waiting queue drains once capacity arrives early and would erode its own history;
the bound then includes the Poisson spread of requests in service (`scaler.leadtime.in_flight_bound`).
The margin served is corrected online by the served bound's own coverage (`scaler.calibration`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from forecasting.base import DAY_S
from forecasting.forecaster import Forecaster
from forecasting.prepare import prepare
from scaler.accuracy import RollingAccuracy
from scaler.calibration import GAIN, BoundCalibration, SloControl
from scaler.choice import Parts, PipelineChoice
from scaler.errors import PrescalerError
from scaler.forecast_pool import ForecastPool
from scaler.history import History
from scaler.leadtime import (
    RETRY_S,
    LeadBound,
    RiseMargin,
    coarse_step_s,
    forecast_config,
    history_bound,
    in_flight_parts,
    measured_service_time_s,
)
from scaler.sources.base import Source
from scaler.telemetry import Telemetry
from scaler.trigger import TriggerConfig
from scaler.units import format_duration

logger = logging.getLogger(__name__)


class Bound(NamedTuple):
    """The forecast side of a decision, in the trigger's units."""

    value: float | None
    """Upper quantile maximised over the lead time; None when there is no usable forecast."""
    mean: float
    """Forecast mean at the end of the lead time (NaN without a forecast)."""
    reason: str
    """Which model answered, or why there is no forecast."""


class Predictor:
    """Keeps a target's forecaster fitted and turns it into a bound at each step."""

    def __init__(
        self,
        config: TriggerConfig,
        demand: Source,
        demand_history: History,
        pool: ForecastPool,
        telemetry: Telemetry,
        labels: tuple[str, str, str],
        *,
        log: logging.LoggerAdapter[logging.Logger],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.demand = demand
        self.demand_history = demand_history
        self._pool = pool
        self._telemetry = telemetry
        self._labels = labels
        self._log = log
        self._wall = wall
        self._forecaster = Forecaster(forecast_config(config))
        self._fitted = False
        self._fitting: asyncio.Task[None] | None = None
        self._next_fit_s = -math.inf
        self._created_s = time.perf_counter()
        self._announced_model = ""
        self._rise = RiseMargin()
        """no_forecast's margin: the rate's rise over the lead time on the target's own history."""
        self.accuracy = RollingAccuracy(window=max(1, round(DAY_S / config.step_s)))
        """The forecast of the demand series (the rate with `rateQuery`), scored against it."""
        day = max(1, round(DAY_S / config.step_s))
        self.slo = None if config.error_budget is None else SloControl(config.error_budget, window=day)
        """With `sloQuery` and `errorBudget`: the factor that brings the violating share to the budget."""
        self.choice = PipelineChoice(
            config.quantile,
            window=day,
            pipeline=config.pipeline,
            gain=GAIN if self.slo is None else 0.0,
            bursts=config.burst_reserve,
        )
        """The bounds of the forecast, no_forecast and reactive pipelines in the trigger's units, each
        corrected by its own coverage of the observed signal's peak over each lead time
        (`scaler.calibration`), and which of them is served (`scaler.choice`)."""

    @property
    def fitted(self) -> bool:
        return self._fitted

    @property
    def served(self) -> BoundCalibration:
        """The served pipeline's calibration: its coverage is `prescaler_bound_coverage`."""
        return self.choice.calibration(self.choice.serving)

    @property
    def rise(self) -> float | None:
        """no_forecast's band (`scaler.leadtime.RiseMargin`): how far the rate rose within a lead time,
        at the quantile, over its newest day (requests/s); None before an hour of windows."""
        return self._rise.value

    @property
    def model(self) -> str:
        """The model of the last successful fit (`` before the first)."""
        return self._announced_model

    def maybe_refit(self, now_s: float) -> None:
        """Start a refit in the background when one is due and none is running."""
        if self._fitting is None and now_s >= self._next_fit_s:
            self._fitting = asyncio.create_task(self._refit(now_s))

    async def settled(self) -> None:
        """Wait for a running refit to finish (tests and benchmarks drive refits this way)."""
        task = self._fitting
        if task is not None:
            await asyncio.shield(task)

    async def _refit(self, now_s: float) -> None:
        try:
            series = await self.demand.history(now_s - self.config.history_s, now_s, self.config.step_s)
            if not self._fitted:
                # Bootstrap: the fine history starts with what the source already has.
                self.demand_history.extend(series.at_s, series.values)
                self._rise = RiseMargin()  # taken on the history just loaded, at the next step
            step_s = coarse_step_s(self.config)
            season_steps = self._forecaster.config.season_steps(step_s)
            # Up to MAX_HISTORY_POINTS samples: binned in a thread, not on the event loop.
            coarse = await asyncio.to_thread(
                prepare, series.at_s, series.values, step_s, season_steps=season_steps
            )
            outcome = await self._pool.fit(self._forecaster, coarse)
        except (PrescalerError, OSError, RuntimeError, ValueError) as exc:
            self._telemetry.refits.labels("failed").inc()
            self._log.warning("refit failed, retrying in %s: %s", format_duration(RETRY_S), exc)
            self._next_fit_s = now_s + RETRY_S
            return
        finally:
            self._fitting = None
        self._forecaster = outcome.forecaster
        self._telemetry.refits.labels("ok").inc()
        self._telemetry.refit_seconds.observe(outcome.seconds)
        if not self._fitted:
            self._telemetry.time_to_first_forecast.observe(time.perf_counter() - self._created_s)
        self._fitted = True
        self._next_fit_s = now_s + self.config.refit_interval_s
        if outcome.model != self._announced_model:
            self._log.info("forecasting with %s (%s)", outcome.model, outcome.reason)
            self._announced_model = outcome.model

    def bound(self, now_s: float, observed_history: History, lead_s: float | None = None) -> Bound:
        """The bound served for [now, now + leadTime], in the trigger's units: the forecast's, or the
        pipeline `scaler.choice` shows cheaper; `lead_s` is a measured lead time (`leadTime: auto`)
        in place of the configured one."""
        config = self.config
        lead_s = config.lead_time_s if lead_s is None else lead_s
        scale, why = self._units(observed_history)
        parts: dict[str, Parts | None] = {}
        mean, reason = math.nan, "no forecast yet: first fit running"
        if self._fitted:
            lead = history_bound(self._forecaster, self.demand_history, config, lead_s)
            reason = lead.reason if lead.upper is None else why
            if lead.upper is not None and scale is not None:
                self.accuracy.forecast(
                    now_s, now_s + lead_s, lead.mean, lead.upper, self.demand_history.latest()
                )
                parts["forecast"] = self._parts(lead, scale)
                mean, reason = lead.mean * scale, f"{lead.model}{why}"
        if scale is not None and config.rate_query is not None:
            # Recomputed at most hourly (or when the lead time changes): 0.4 ms at a 15 s step, 3 ms at 1 s.
            parts["no_forecast"] = self._rise.parts(
                now_s, self.demand_history, lead_s, scale, config.quantile
            )
        factor = 1.0 if self.slo is None else self.slo.factor
        choice = self.choice.serve(now_s, now_s + lead_s, observed_history.latest(), parts, factor)
        if choice.pipeline != "forecast":
            reason = f"{choice.pipeline} ({choice.why})"
        return Bound(choice.value, mean, reason)

    def _parts(self, lead: LeadBound, scale: float) -> Parts | None:
        """A bound in the trigger's units and the forecast mean's peak under it."""
        if self.config.rate_query is None:
            return (
                None if lead.upper is None else Parts(float(np.max(lead.means)) * scale, lead.upper * scale)
            )
        return in_flight_parts(lead, scale)

    def _units(self, observed_history: History) -> tuple[float | None, str]:
        """Factor from the forecast series' units to the trigger's: 1, or Little's law W."""
        config = self.config
        if config.rate_query is None:
            return 1.0, ""
        if config.service_time_s is not None:
            return config.service_time_s, f" x serviceTime {config.service_time_s:g}s"
        measured = measured_service_time_s(observed_history, self.demand_history)
        if measured is None:
            return None, "no forecast: time in service not measured yet (set `serviceTime`)"
        # No number here: the reason is logged when it changes, and a measured W moves every step.
        return measured, " x measured time in service"

    async def aclose(self) -> None:
        if self._fitting is not None:
            self._fitting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fitting
