"""The forecast over the pod start-up lead time: the forecasting settings a trigger implies, and the
bound from a fitted Forecaster and recent samples, and no_forecast's margin (`RiseMargin`, which keeps
the value it last computed and when to compute it again). No I/O.

Shared by the live predictor and the simulator, so that what is simulated is what is served.
"""

from __future__ import annotations

import functools
import math
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from forecasting.base import DAY_S, ForecastConfig
from forecasting.forecaster import Forecaster
from forecasting.prepare import Series, prepare
from scaler.choice import Parts
from scaler.history import History
from scaler.trigger import TriggerConfig
from scaler.trigger_values import MAX_LEAD_S

COARSE_STEP_S = 300.0
"""Step the seasonal model is fitted at (a trigger's `step` when that is coarser)."""
RETRY_S = 300.0
"""Wait before retrying a failed refit."""
SAMPLES_SPAN_S = DAY_S
"""Samples kept per target at its step (the time in service is measured over them); the forecaster
asks the source for more history when it needs it, with a range query."""
# Fine samples handed to the forecaster for its level correction.
FINE_WINDOW_S = 1800.0
# Lowest share of in-flight / rate ratios taken as the unqueued time in service (Little's law W).
SERVICE_TIME_PERCENTILE = 25.0
MIN_SERVICE_SAMPLES = 20

FloatArray = npt.NDArray[np.float64]


class LeadBound(NamedTuple):
    """The forecast side of a decision, in the forecast series' units."""

    upper: float | None
    """The upper quantile maximised over the lead time; None without a usable forecast."""
    mean: float
    """The forecast mean at the end of the lead time (NaN without a forecast)."""
    model: str
    reason: str
    means: FloatArray = np.zeros(0)
    """The forecast mean at each step of the lead time (empty without a forecast)."""
    uppers: FloatArray = np.zeros(0)
    """The upper quantile at each step of the lead time."""
    quantile: float = math.nan
    """The quantile asked for."""


def lead_bound(
    forecaster: Forecaster,
    at_s: FloatArray,
    values: FloatArray,
    *,
    step_s: float,
    lead_s: float,
    quantile: float,
) -> LeadBound:
    """Update `forecaster` with the recent fine samples (`at_s` = step start times) and forecast the
    lead time at that step."""
    fine = prepare(at_s + step_s / 2, values, step_s)
    return series_bound(forecaster, fine, step_s=step_s, lead_s=lead_s, quantile=quantile)


def series_bound(
    forecaster: Forecaster, fine: Series, *, step_s: float, lead_s: float, quantile: float
) -> LeadBound:
    """`lead_bound` from the recent samples already prepared at `step_s` (`forecasting.prepare`)."""
    forecaster.update(fine)
    steps = max(1, math.ceil(lead_s / step_s))
    forecast = forecaster.forecast(steps, quantile)
    if forecast.model == "none":
        return LeadBound(None, math.nan, "none", forecast.reason)
    return LeadBound(
        float(np.max(forecast.upper)),
        float(forecast.mean[-1]),
        forecast.model,
        forecast.reason,
        forecast.mean,
        forecast.upper,
        quantile,
    )


def in_flight_bound(lead: LeadBound, service_time_s: float) -> float | None:
    """The upper quantile of requests in flight over the lead time, from a forecast of their arrival
    rate (requests/s) and the time each spends in service (Little's law: mean in flight = rate x W).

    At a given arrival rate the number in service still varies: with Poisson arrivals it is Poisson
    distributed with mean rate x W (the M/G/inf system), so its upper quantile is about
    mean + z sqrt(mean). That spread is independent of the rate forecast's error, so the two margins
    add in quadrature. It matters where few requests are in flight (square-root staffing): at 20 in
    flight the 0.9 quantile is 26, at 2,000 it is 2,057. None without a forecast.
    """
    if lead.upper is None or lead.means.size == 0:
        return None
    mean = np.maximum(lead.means, 0.0) * service_time_s
    forecast_margin = np.maximum(lead.uppers - lead.means, 0.0) * service_time_s
    z = _z(lead.quantile)
    return float(np.max(mean + np.hypot(forecast_margin, z * np.sqrt(mean))))


def flat_in_flight(
    rate: float, service_time_s: float, quantile: float, rise: float = 0.0
) -> tuple[float, float]:
    """The no_forecast pipeline's (centre, bound): `in_flight_centre` and `in_flight_bound` of the rate
    observed now held over the lead time, its band `rise` (requests/s: how far the rate has risen above
    its value within a lead time, `RiseMargin`) added in quadrature to the Poisson spread, as the
    forecast's band is; without arrays."""
    mean = max(rate, 0.0) * service_time_s
    return mean, mean + math.hypot(max(rise, 0.0) * service_time_s, _z(quantile) * math.sqrt(mean))


RISE_EVERY_S = 3600.0
"""How often `RiseMargin` recomputes the rise from the history (every `RETRY_S` while it has too little)."""
RISE_SPAN_S = DAY_S
"""The newest history the rise is taken over."""
MIN_RISE_S, MIN_RISE_WINDOWS = 3600.0, 12
"""The rise is taken once there are an hour of lead-time windows in the history, and at least 12."""


def min_rise_windows(step_s: float) -> int:
    """Lead-time windows needed before the rise is taken at a `step_s` step (240 at 15 s)."""
    return max(MIN_RISE_WINDOWS, math.ceil(MIN_RISE_S / step_s))


def sliding_max(values: FloatArray, width: int) -> FloatArray:
    """The largest value of each run of `width` consecutive values (NaN skipped; NaN where all are),
    one per start, by doubling: log2(width) passes over the array, not `width`."""
    spans, span = values, 1
    while 2 * span <= width:
        spans = np.fmax(spans[:-span], spans[span:])
        span *= 2
    # Every run of `width` is covered by the two runs of `span` at its start and at its end.
    return np.fmax(spans[: spans.size - (width - span)], spans[width - span :])


def rise_over_lead(values: FloatArray, lead_steps: int, quantile: float, min_windows: int) -> float | None:
    """The `quantile` of how far the series rose within `lead_steps` steps: over every step t, the
    largest value in (t, t + lead_steps] less the value at t (negative when it only fell; the quantile
    is floored at 0), steps with a NaN left out; None with fewer than `min_windows` such windows."""
    if lead_steps < 1 or values.size <= lead_steps:
        return None
    rises = sliding_max(values[1:], lead_steps) - values[: values.size - lead_steps]
    rises = rises[np.isfinite(rises)]
    if rises.size < max(1, min_windows):
        return None
    return max(0.0, float(np.quantile(rises, quantile)))


class RiseMargin:
    """no_forecast's band, in the rate's units: `rise_over_lead` on the newest `RISE_SPAN_S` of the
    rate's history, so that holding the rate observed now carries the error that holding it has had
    on the target's own traffic. Recomputed every `RISE_EVERY_S`, when the lead time changes, and
    every `RETRY_S` while the history is too short (the band is then the Poisson spread alone)."""

    __slots__ = ("_due_s", "_lead_steps", "value")

    def __init__(self) -> None:
        self.value: float | None = None
        """The rise last computed (requests/s); None before there was history enough."""
        self._due_s = -math.inf
        self._lead_steps = -1

    def update(self, now_s: float, rates: History, lead_s: float, quantile: float) -> float:
        """The band for a decision at `now_s` over `lead_s` (0 while not measured)."""
        step_s = rates.step_s
        lead_steps = max(1, math.ceil(lead_s / step_s))
        if now_s >= self._due_s or lead_steps != self._lead_steps:
            _, values = rates.window(max(lead_steps + 1, round(RISE_SPAN_S / step_s)))
            self.value = rise_over_lead(values, lead_steps, quantile, min_rise_windows(step_s))
            self._due_s = now_s + (RETRY_S if self.value is None else RISE_EVERY_S)
            self._lead_steps = lead_steps
        return 0.0 if self.value is None else self.value

    def parts(
        self, now_s: float, rates: History, lead_s: float, service_time_s: float, quantile: float
    ) -> Parts | None:
        """no_forecast's (centre, bound) in flight at `now_s`: the newest rate held over `lead_s`
        (`flat_in_flight`) with this band; None without a rate."""
        latest = rates.latest()
        if not math.isfinite(latest):
            return None
        rise = self.update(now_s, rates, lead_s, quantile)
        return Parts(*flat_in_flight(max(0.0, latest), service_time_s, quantile, rise))


def in_flight_parts(lead: LeadBound, service_time_s: float) -> Parts | None:
    """The forecast pipeline's (centre, bound) in flight (`in_flight_centre`, `in_flight_bound`), as
    `scaler.choice` takes them; None without a forecast."""
    upper = in_flight_bound(lead, service_time_s)
    return None if upper is None else Parts(in_flight_centre(lead, service_time_s), upper)


def in_flight_centre(lead: LeadBound, service_time_s: float) -> float:
    """The largest forecast mean in flight over the lead time (rate x W): what `in_flight_bound`
    adds its margin to, and what `scaler.calibration` scales that margin from. NaN without a forecast."""
    if lead.means.size == 0:
        return math.nan
    return float(np.max(np.maximum(lead.means, 0.0))) * service_time_s


@functools.lru_cache(maxsize=64)
def _z(quantile: float) -> float:
    """The standard normal's `quantile` (cached: asked at every decision)."""
    return NormalDist().inv_cdf(quantile)


def history_bound(
    forecaster: Forecaster, history: History, config: TriggerConfig, lead_s: float | None = None
) -> LeadBound:
    """`lead_bound` over the newest `FINE_WINDOW_S` of `history`, with the trigger's step and
    quantile, and its lead time unless `lead_s` (a measured one, `leadTime: auto`) is given."""
    at_s, values = history.window(max(2, round(FINE_WINDOW_S / config.step_s)))
    lead = config.lead_time_s if lead_s is None else lead_s
    return lead_bound(forecaster, at_s, values, step_s=config.step_s, lead_s=lead, quantile=config.quantile)


def service_time_s(in_flight: FloatArray, rate: FloatArray) -> float | None:
    """Little's law W = L / lambda at the least queued times: a low percentile of in-flight / rate
    over aligned samples; None with too few usable samples."""
    if in_flight.size != rate.size:
        return None
    usable = np.isfinite(in_flight) & np.isfinite(rate) & (rate > 0) & (in_flight > 0)
    if int(usable.sum()) < MIN_SERVICE_SAMPLES:
        return None
    return float(np.percentile(in_flight[usable] / rate[usable], SERVICE_TIME_PERCENTILE))


def measured_service_time_s(in_flight: History, rate: History) -> float | None:
    """`service_time_s` from the two histories, aligned on their newest step."""
    _, load = in_flight.window()
    _, arrivals = rate.window(load.size)
    return service_time_s(load, arrivals)


def forecast_config(config: TriggerConfig) -> ForecastConfig:
    """The forecasting settings a trigger implies."""
    coarse = coarse_step_s(config)
    # Cover the refit interval, the lead time, and two failed refits retried before the next works; a
    # measured lead time (`leadTime: auto`) can be anything up to the longest accepted.
    lead_s = MAX_LEAD_S if config.lead_time_auto else config.lead_time_s
    horizon = math.ceil((config.refit_interval_s + lead_s + 2 * RETRY_S) / coarse) + 1
    daily = "daily" in config.seasonality
    return ForecastConfig(
        season_s=DAY_S if daily else coarse,
        weekly="weekly" in config.seasonality,
        horizon_steps=horizon,
        max_history_s=max(config.history_s, coarse * 2),
    )


def coarse_step_s(config: TriggerConfig) -> float:
    return max(COARSE_STEP_S, config.step_s)
