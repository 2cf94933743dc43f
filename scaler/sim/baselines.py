"""The baselines prescaler's predictive policy is judged against, besides reactive and the oracle. Pure.

Each sees the service only through the metric pipeline (`scaler.sim.interface.PipelineConfig`):

- `ReactiveRate`: KEDA's Prometheus scaler on `sum(rate(requests_total[1m]))`, with a target in
  requests/s per replica.
- `NoForecast`: prescaler's own pipeline with the forecast term removed (the ablation): the observed
  `rate()` x the measured time in service, plus the Poisson spread of the requests in service
  (`scaler.leadtime.in_flight_bound` with a flat "forecast"), the in-flight floor and `replicasQuery`
  (`scaler.policy.decide`), exactly as predictive builds its value.
- `CraneDSP`: Crane EHPA's DSP predictor: the in-flight history at one sample a minute, its daily
  (or, with two weeks, weekly) period found by FFT, the spectrum's strongest components kept and
  extended periodically; the value is the largest prediction over `predictionWindowSeconds` x
  (1 + marginFraction), and, as EHPA keeps the original metric in the HPA beside the predicted one,
  never below the observed in-flight count.
- `AwsStyle`: AWS predictive scaling: an hourly forecast (the mean of the same hour over the past
  days) raises a capacity floor, forecast load / target x (1 + buffer) for the hour ahead; scale-in
  is left to reactive target tracking, so the forecast only ever raises.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt

from forecasting.base import DAY_S
from scaler.leadtime import LeadBound
from scaler.sim.interface import Metric, Signals
from scaler.sim.predictive import Predictive
from scaler.trigger import TriggerConfig

FloatArray = npt.NDArray[np.float64]
MINUTE_S = 60.0
HOUR_S = 3600.0
WEEK_S = 7 * DAY_S


class ReactiveRate:
    """value = the observed `rate()` of arrivals (requests/s); target = requests/s per replica."""

    def __init__(self, target: float, *, activation_threshold: float = 0.0) -> None:
        if not target > 0:
            raise ValueError(f"target ({target}) must be > 0")
        self.target = target
        self.activation_threshold = activation_threshold
        self._rate = 0.0

    def observe(self, signals: Signals) -> None:
        """Keep the latest scraped rate."""
        self._rate = signals.arrival_rate

    def metric(self, now_s: float) -> Metric:
        """The latest rate."""
        seen = self._rate if math.isfinite(self._rate) and self._rate > 0 else 0.0
        return Metric(seen, seen > self.activation_threshold)


class NoForecast(Predictive):
    """`Predictive` serving its no_forecast pipeline: the rate observed now, nothing fitted."""

    SERVES_ALONE = True

    def __init__(self, config: TriggerConfig, **kwargs: Any) -> None:
        super().__init__(dataclasses.replace(config, pipeline="no_forecast"), **kwargs)

    def _maybe_refit(self, now_s: float) -> None:
        self._fitted = True

    def _lead_bound(self, now_s: float) -> LeadBound | None:
        return None


class _MinuteHistory:
    """A series averaged per minute from scrapes (Crane and AWS sample their history so)."""

    def __init__(self, start_s: float, span_s: float) -> None:
        self._start_s = start_s
        self._minutes: deque[float] = deque(maxlen=max(2, round(span_s / MINUTE_S)))
        self._sum, self._count, self._minute = 0.0, 0, 0
        self.last_minute_s = start_s

    def seed(self, values: FloatArray) -> None:
        """Per-minute values before the start (the past)."""
        self._minutes.extend(float(v) for v in values)

    def add(self, at_s: float, value: float) -> None:
        minute = math.floor((at_s - self._start_s - 1e-9) / MINUTE_S)
        if minute != self._minute and self._count:
            self._minutes.append(self._sum / self._count)
            self._sum, self._count = 0.0, 0
        self._minute = minute
        self._sum += value if math.isfinite(value) else 0.0
        self._count += 1
        self.last_minute_s = self._start_s + minute * MINUTE_S

    def values(self) -> FloatArray:
        return np.asarray(self._minutes, dtype=np.float64)


def dsp_prediction(history: FloatArray, *, components: int, ahead: int) -> FloatArray | None:
    """Crane's FFT estimator: the period (a day, or a week with two weeks of minutes) whose whole
    periods fill `history` (per-minute samples); the `components` strongest frequencies of those
    periods kept; the reconstruction extended `ahead` minutes past the end. None with under two
    days, or when the daily component carries less than a tenth of the variance."""
    day = round(DAY_S / MINUTE_S)
    period = round(WEEK_S / MINUTE_S) if history.size >= 2 * round(WEEK_S / MINUTE_S) else day
    cycles = history.size // period
    if cycles < 2:
        return None
    recent = history[-cycles * period :]
    spectrum = np.fft.rfft(recent)
    power = np.abs(spectrum) ** 2
    total = float(power[1:].sum())
    daily = cycles * (period // day)
    if total <= 0 or power[daily] < 0.1 * total / 2:
        return None
    keep = np.zeros_like(spectrum)
    keep[0] = spectrum[0]
    # Only frequencies that are whole multiples of one period repeat exactly; keep the strongest.
    periodic = np.arange(cycles, spectrum.size, cycles)
    strongest = periodic[np.argsort(power[periodic])[::-1][:components]]
    keep[strongest] = spectrum[strongest]
    shape = np.fft.irfft(keep, n=recent.size)[-period:]
    future = np.arange(1, ahead + 1)
    result: FloatArray = np.maximum(shape[(future - 1) % period], 0.0)
    return result


class CraneDSP:
    """Crane EHPA's DSP prediction beside the original metric (in-flight); see the module docstring."""

    def __init__(
        self,
        target: float,
        *,
        start_s: float,
        past_in_flight: FloatArray | None = None,
        prediction_window_s: float = HOUR_S,
        margin_fraction: float = 0.05,
        components: int = 20,
        history_s: float = 14 * DAY_S,
        update_interval_s: float = HOUR_S,
    ) -> None:
        if not (target > 0 and margin_fraction >= 0 and prediction_window_s > 0):
            raise ValueError("CraneDSP: target and predictionWindowSeconds must be > 0, marginFraction >= 0")
        self.target = target
        self._margin = margin_fraction
        self._window = max(1, round(prediction_window_s / MINUTE_S))
        self._components = components
        self._every_s = update_interval_s
        self._history = _MinuteHistory(start_s, history_s)
        if past_in_flight is not None:
            self._history.seed(past_in_flight)
        self._start_s = start_s
        self._next_s = -math.inf
        self._path: FloatArray | None = None
        self._path_start_s = start_s
        self._in_flight = 0.0

    def observe(self, signals: Signals) -> None:
        """Sample in-flight; re-predict every `update_interval_s`."""
        self._in_flight = signals.in_flight
        self._history.add(signals.at_s, signals.in_flight)
        if signals.at_s >= self._next_s:
            self._next_s = signals.at_s + self._every_s
            ahead = round((self._every_s + HOUR_S) / MINUTE_S) + self._window
            self._path = dsp_prediction(self._history.values(), components=self._components, ahead=ahead)
            self._path_start_s = self._history.last_minute_s

    def metric(self, now_s: float) -> Metric:
        """max(observed in-flight, the largest prediction over the window x (1 + margin))."""
        seen = self._in_flight if math.isfinite(self._in_flight) and self._in_flight > 0 else 0.0
        value = seen
        path = self._path
        if path is not None:
            first = max(0, math.floor((now_s - self._path_start_s) / MINUTE_S))
            ahead = path[first : first + self._window]
            if ahead.size:
                value = max(value, float(ahead.max()) * (1 + self._margin))
        return Metric(value, value > 0)


class AwsStyle(Predictive):
    """An hourly forecast as a floor under reactive in-flight scaling; see the module docstring."""

    buffer = 0.1
    """The capacity buffer over the forecast (AWS predictive scaling's `MaxCapacityBuffer` idea)."""

    def _maybe_refit(self, now_s: float) -> None:
        self._fitted = True

    _hour: float = math.nan
    _forecast: float | None = None

    def _bound(self, now_s: float) -> float | None:
        scale = self._service_time()
        if scale is None:
            return None
        # The hour ahead (the one the lead time reaches into): the mean of the same hour on past
        # days, forecast once per hour as AWS does.
        hour_start = math.floor((now_s + self.config.lead_time_s) / HOUR_S) * HOUR_S
        if hour_start != self._hour:
            self._hour, self._forecast = hour_start, self._hourly(hour_start)
        if self._forecast is None:
            return None
        return self._forecast * scale * (1 + self.buffer)

    def _hourly(self, hour_start: float) -> float | None:
        at_s, rates = self._rates.window()
        same: list[float] = []
        for back in range(1, 15):
            start = hour_start - back * DAY_S
            inside = (at_s >= start) & (at_s < start + HOUR_S) & np.isfinite(rates)
            if inside.any():
                same.append(float(rates[inside].mean()))
        return float(np.mean(same)) if same else None
