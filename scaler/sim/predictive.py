"""prescaler's predictive mode under simulation: the live scaler's own code, on the simulated clock.

What runs is what is served: the trigger is parsed by `scaler.trigger.parse_trigger`, the forecasting
settings and the bound over the lead time come from `scaler.leadtime` (`forecast_config`,
`history_bound`), the value from `scaler.policy.decide`.
Only the clock and the data path differ from the live refresher:

- The signals are those the simulated service produced (in-flight, and the arrival rate as
  `rate(requests_total[1m])` would show it), sampled once per trigger `step`, as the refresher does.
  The scaling changes the in-flight signal, so the feedback loop between them is the real one.
- The seasonal model is refitted synchronously every `refitInterval` of simulated time, on the
  `history` before now: the user's past traffic (the factory's `past`, what a Prometheus range query
  returns at start-up) followed by what the simulation itself produced. Nothing after now is seen.
- The arrival rate is forecast, as a trigger with `rateQuery` does, and converted to in-flight units
  by Little's law (in flight = rate x time in service) with `serviceTime`, or with the time in
  service measured from the two signals (`scaler.leadtime.service_time_s`), plus the Poisson spread
  of requests in service (`scaler.leadtime.in_flight_bound`), as the live predictor does.
- With `errorBudget`, `sloQuery` reads `Signals.slo_violating` (the newest minute whose requests have
  all finished: 1 if it violated the SLO) every step, and the margin follows the budget
  (`scaler.calibration.SloControl`), as the live refresher does.
- With `replicasQuery`, each decision sees the Deployment's replicas at its sample and is raised
  past the HPA's tolerance when it needs more (`scaler.policy.past_tolerance`). The count is exact
  and current; live, kube-state-metrics' scrape can be a scrape interval behind a scale event.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt

from forecasting.base import DAY_S
from forecasting.forecaster import Forecaster
from forecasting.prepare import prepare
from scaler.bursts import BURST_BAND, HORIZON_S
from scaler.calibration import GAIN, SLO_GAIN, BoundCalibration, SloControl, learning_minutes
from scaler.choice import Parts, PipelineChoice
from scaler.history import History
from scaler.leadtime import (
    FINE_WINDOW_S,
    RETRY_S,
    SAMPLES_SPAN_S,
    LeadBound,
    RiseMargin,
    coarse_step_s,
    forecast_config,
    history_bound,
    in_flight_parts,
    series_bound,
)
from scaler.policy import Decision, decide
from scaler.readiness import ReadinessTracker, lead_time_used
from scaler.sim.interface import PolicyFactory, Signals
from scaler.sim.samples import ServiceTime, bootstrap
from scaler.sim.shared import FitCache, FitKey
from scaler.sim.trigger_settings import PredictiveSettings
from scaler.traces import Trace
from scaler.trigger import TriggerConfig

FloatArray = npt.NDArray[np.float64]


class Predictive:
    """prescaler in predictive mode on a rate query; `decisions` records each decision made."""

    SERVES_ALONE = False
    """With a named `pipeline`, compute only its bound (`scaler.choice.PipelineChoice`'s `alone`)."""

    def __init__(
        self,
        config: TriggerConfig,
        *,
        past: Trace | None = None,
        start_s: float,
        fits: FitCache | None = None,
        calibration_gain: float = GAIN,
        slo_gain: float = SLO_GAIN,
        burst_settings: tuple[float, float] = (HORIZON_S, BURST_BAND),
    ) -> None:
        if config.mode != "predictive" or config.rate_query is None:
            raise ValueError("Predictive needs a trigger with mode `predictive` and a `rateQuery`")
        self.config = config
        step = config.step_s
        self._rates = bootstrap(past, start_s, config, fits)
        self._service = ServiceTime(max(2, math.ceil(SAMPLES_SPAN_S / step)), self._rates.capacity)
        self._forecaster = Forecaster(
            forecast_config(config),
            levels=None if fits is None else fits.levels,
            members=None if fits is None else fits.members,
        )
        self._fits = fits
        self._fit_key_now: FitKey | None = None
        self._fitted = False
        self._next_fit_s = -math.inf
        self._last_step: int | None = None
        self._latest_in_flight = 0.0
        self._rise = RiseMargin()
        """no_forecast's band: the rate's rise over the lead time on its own history."""
        self._rise_rates = self._rates
        """The rates the band is taken over: a day of them, as the live target keeps, also where
        `history` (what the forecaster is given) is shorter."""
        day_steps = math.ceil(SAMPLES_SPAN_S / step)
        if self._rates.capacity < day_steps:
            self._rise_rates = History(step, day_steps)
            self._rise_rates.extend(*self._rates.window())
        self.readiness = (
            ReadinessTracker(step_s=step, fallback_s=config.lead_time_s) if config.lead_time_auto else None
        )
        """With `leadTime: auto`: the start-ups timed from the replicas asked for and ready."""
        self._lead_s = config.lead_time_s
        day = max(1, round(DAY_S / step))
        self.slo = None
        """With `errorBudget`: the factor that brings the violating minutes to the budget, read from
        `Signals.slo_violating` as `sloQuery` would."""
        if config.error_budget is not None:
            self.slo = SloControl(config.error_budget, window=day, gain=slo_gain)
            calibration_gain = 0.0  # as served: one controller of the margin, not two
        self.choice = PipelineChoice(
            config.quantile,
            window=day,
            pipeline=config.pipeline,
            gain=calibration_gain,
            alone=self.SERVES_ALONE,
            bursts=config.burst_reserve,
            burst_settings=burst_settings,
        )
        """The forecast, no_forecast and reactive bounds, each corrected by its coverage of the
        in-flight signal, and which is served (`scaler.choice`), as the live predictor keeps them."""
        self.decisions: list[Decision] = []
        self.pipelines: Counter[str] = Counter()
        """Steps by the pipeline served (`scaler.choice`)."""
        self.fits: Counter[str] = Counter()
        """Refits by the model that answered after them (`failed` for a refit that raised)."""
        self.reserve_steps = 0
        """Steps whose served bound carried a burst reserve (`scaler.bursts`)."""

    @property
    def target(self) -> float:
        """The trigger's `threshold`: one replica's share of in-flight requests."""
        return self.config.threshold

    def observe(self, signals: Signals) -> None:
        """Sample the signals once per trigger step (the first scrape in it) and decide, as the
        refresher does."""
        self._latest_in_flight = signals.in_flight
        step = math.floor(signals.at_s / self.config.step_s)
        if self._last_step is not None and step <= self._last_step:
            return
        self._last_step = step
        self.choice.actual(signals.at_s, signals.in_flight)
        if self.slo is not None:
            self.slo.observe(signals.slo_violating)  # NaN before a minute is final: no read
        self._rates.append(signals.at_s, signals.arrival_rate)
        if self._rise_rates is not self._rates:
            self._rise_rates.append(signals.at_s, signals.arrival_rate)
        self._service.add(step, signals.in_flight, signals.arrival_rate)
        if self.readiness is not None:
            # As the refresher does: the replicas (`replicasQuery`) and the ready ones (`readyQuery`).
            self.readiness.observe(signals.at_s, signals.current_replicas, signals.ready_replicas)
            measured = lead_time_used(self.readiness.estimate(), self.config.step_s)
            self._lead_s = self.config.lead_time_s if measured is None else measured
        self._maybe_refit(signals.at_s)
        bound = self._bound(signals.at_s)
        replicas = signals.current_replicas if self.config.replicas_query is not None else None
        self.decisions.append(decide(signals.at_s, signals.in_flight, self.config, bound, replicas))

    def metric(self, now_s: float) -> Decision:
        """The newest decision (what GetMetrics returns from the refresher's cache)."""
        if not self.decisions:
            return decide(now_s, self._latest_in_flight, self.config)
        return self.decisions[-1]

    def _maybe_refit(self, now_s: float) -> None:
        if now_s < self._next_fit_s:
            return
        config = self.config
        coarse_s = coarse_step_s(config)
        at_s, values = self._rates.window()
        try:
            coarse = prepare(
                at_s + config.step_s / 2,
                values,
                coarse_s,
                season_steps=self._forecaster.config.season_steps(coarse_s),
            )
            key = self._fit_key(coarse.end_s, coarse.values)
            cache = self._fits
            self._fit_key_now = key
            if cache is not None and key in cache:
                self._forecaster._adapt(coarse)
                cache.get(key, self._forecaster)
            else:
                # No time budget: the simulated clock does not run while fitting, and a budget
                # would make runs depend on the machine.
                self._forecaster.fit(coarse)
                if cache is not None:
                    cache.put(key, self._forecaster)
        except (RuntimeError, ValueError):
            self.fits["failed"] += 1
            self._next_fit_s = now_s + RETRY_S
            return
        self.fits[self._forecaster.model] += 1
        self._fitted = True
        self._next_fit_s = now_s + config.refit_interval_s

    def _fit_key(self, end_s: float, values: FloatArray) -> FitKey:
        """What a fit depends on: the forecasting settings and the coarse history."""
        config = self._forecaster.config
        return (type(self).__name__, repr(config), end_s, values.size, float(np.nansum(values)))

    def _service_time(self) -> float | None:
        """`serviceTime`, or measured from the in-flight and rate samples (Little's law)."""
        scale = self.config.service_time_s
        if scale is None:
            scale = self._service.value()
        return scale

    def _bound(self, now_s: float) -> float | None:
        """Upper bound of in-flight over [now, now + leadTime], from the arrival rate's forecast and W
        (`scaler.leadtime.in_flight_bound`), or from the pipeline `scaler.choice` shows cheaper, its
        margin corrected by its own coverage (`scaler.calibration`), as the live predictor serves it."""
        scale = self._service_time()
        parts: dict[str, Parts | None] = {}
        if scale is not None:
            lead = self._lead_bound(now_s)
            if lead is not None and lead.upper is not None:
                parts["forecast"] = in_flight_parts(lead, scale)
            parts["no_forecast"] = self._rise.parts(
                now_s, self._rise_rates, self._lead_s, scale, self.config.quantile
            )
        factor = 1.0 if self.slo is None else self.slo.factor
        choice = self.choice.serve(now_s, now_s + self._lead_s, self._latest_in_flight, parts, factor)
        self.pipelines[choice.pipeline] += 1
        burst = self.choice.burst(choice.pipeline)
        if burst is not None and burst.value > 0.0:
            self.reserve_steps += 1
        return choice.value

    @property
    def rise(self) -> float | None:
        """no_forecast's band (`scaler.leadtime.RiseMargin`), requests/s; None before it is measured."""
        return self._rise.value

    @property
    def calibration(self) -> BoundCalibration:
        """The served pipeline's calibration (its coverage and margin scale)."""
        return self.choice.calibration(self.choice.serving)

    def _lead_bound(self, now_s: float) -> LeadBound | None:
        """The arrival rate's forecast over the lead time; None before the first fit."""
        if not self._fitted:
            return None
        cache, fit = self._fits, self._fit_key_now
        if cache is None or fit is None:
            return history_bound(self._forecaster, self._rates, self.config, self._lead_s)
        # The fine samples the bound is updated with identify the demand since the fit (their
        # bytes: cheaper than a sum, and exact).
        config = self.config
        at_s, fine = self._rates.window(max(2, round(FINE_WINDOW_S / config.step_s)))
        key = (fit, now_s, config.quantile, self._lead_s, config.step_s, fine.tobytes())
        found = cache.bounds.get(key)
        if found is None:
            found = cache.bounds[key] = series_bound(
                self._forecaster,
                cache.fine(at_s, fine, config.step_s),
                step_s=config.step_s,
                lead_s=self._lead_s,
                quantile=config.quantile,
            )
        return found

    def summary(self, *, calibrated: bool = True) -> dict[str, Any]:
        """What the run did, JSON-ready: refits by model, the share of decisions the forecast set and,
        when the policy calibrates its bound, the bound's coverage, the pipelines served, the error
        budget's factor, and the measured lead time."""
        found: dict[str, Any] = {"fits": dict(self.fits), "forecast_share": self.forecast_share}
        if calibrated:
            coverage = self.calibration.coverage
            found["bound_coverage"] = round(coverage, 4) if math.isfinite(coverage) else None
            found["margin_scale"] = round(self.calibration.scale, 4)
            found["pipeline"] = self.choice.serving
            steps = sum(self.pipelines.values())
            found["pipeline_share"] = {k: round(v / steps, 4) for k, v in sorted(self.pipelines.items())}
            burst = self.choice.burst(self.choice.serving)
            if burst is not None:
                after = burst.share_after
                found["burst_reserve"] = {
                    "bursts": burst.bursts,
                    "share_after_burst": round(after, 4) if math.isfinite(after) else None,
                    "steps_share": round(self.reserve_steps / max(1, steps), 4),
                }
            if self.slo is not None:
                share = self.slo.share
                reads_per_minute = 60.0 / self.config.step_s
                found["error_budget"] = {
                    "budget": self.slo.budget,
                    "factor": round(self.slo.factor, 4),
                    "violating_share_read": round(share, 5) if math.isfinite(share) else None,
                    "learning_minutes": round(
                        learning_minutes(self.slo.factor, self.slo.gain, reads_per_minute), 2
                    ),
                    "held": self.slo.held,
                }
        if self.readiness is not None:
            found["lead_time"] = self.lead_time_json()
        return found

    def lead_time_json(self) -> dict[str, Any]:
        """With `leadTime: auto`: the lead time used at the end, and the start-ups it was measured
        from (NaN as null)."""
        if self.readiness is None:
            return {}
        estimate = self.readiness.estimate()

        def finite(value: float) -> float | None:
            return round(value, 3) if math.isfinite(value) else None

        return {
            "used_s": self._lead_s,
            "measured": estimate.measured,
            "p50_s": finite(estimate.p50_s),
            "upper_s": finite(estimate.upper_s),
            "startups": estimate.startups,
            "cancelled": estimate.cancelled,
        }

    @property
    def forecast_share(self) -> float:
        """Fraction of decisions where the forecast, not the observed value, set the answer."""
        if not self.decisions:
            return 0.0
        return sum(d.reason.startswith("forecast") for d in self.decisions) / len(self.decisions)


def predictive(
    past: Trace | None, settings: PredictiveSettings | None = None, *, fits: FitCache | None = None
) -> PolicyFactory:
    """prescaler's predictive policy, bootstrapped from `past` (the demand before the simulated
    window, in requests/s; only what precedes the scenario's start is used); `fits` shares fits
    between runs on the same demand."""
    chosen = settings or PredictiveSettings()
    return lambda scenario: Predictive(
        chosen.trigger(scenario),
        past=past,
        start_s=scenario.start_s,
        fits=fits,
        calibration_gain=chosen.calibration_gain,
        slo_gain=chosen.slo_gain,
        burst_settings=(chosen.burst_horizon_s, chosen.burst_band),
    )
