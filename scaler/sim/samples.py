"""What a simulated predictor knows of the past and of the time in service, sample by sample. Pure.

- `past_rates`: the demand before the simulated window as a range query of `rate()` returns it;
- `bootstrap`: the rate history a `scaler.sim.predictive.Predictive` starts with (built once per sweep);
- `ServiceTime`: Little's law W measured from the in-flight and rate samples, kept up to date per
  sample, the same float as `scaler.leadtime.measured_service_time_s` recomputes from both histories.
"""

from __future__ import annotations

import bisect
import copy
import math
from collections import deque

import numpy as np
import numpy.typing as npt

from scaler.history import History
from scaler.leadtime import MIN_SERVICE_SAMPLES, SERVICE_TIME_PERCENTILE
from scaler.sim.demand import rates_per_tick
from scaler.sim.shared import FitCache, FitKey
from scaler.traces import Trace
from scaler.trigger import TriggerConfig

FloatArray = npt.NDArray[np.float64]


def past_rates(
    past: Trace, *, before_s: float, span_s: float, step_s: float
) -> tuple[FloatArray, FloatArray]:
    """(sample times, requests/s) of `past` on a grid of `step_s`, each sample the mean over the step
    that ends at its time, as a range query of a rate returns it; only samples within `span_s`
    before `before_s` (so nothing from the simulated window leaks in)."""
    rates = rates_per_tick(past, step_s)
    at_s = float(past.at_s[0]) + step_s * np.arange(1, rates.size + 1, dtype=np.float64)
    keep = (at_s <= before_s) & (at_s > before_s - span_s)
    return at_s[keep], rates[keep]


class ServiceTime:
    """`scaler.leadtime.measured_service_time_s` of the in-flight and rate samples a `Predictive` keeps,
    kept up to date sample by sample instead of recomputed from both histories at every step (which
    cost most of a simulated run): the usable in-flight / rate ratios of the newest `span_steps` steps,
    sorted, and their `SERVICE_TIME_PERCENTILE` interpolated as `numpy.percentile` does, so the value
    is the same float. `rate_steps` is the rate history's capacity: with fewer steps than `span_steps`
    the two windows differ in size and, as there, nothing is measured."""

    def __init__(self, span_steps: int, rate_steps: int) -> None:
        self._span = span_steps
        self._comparable = rate_steps >= span_steps
        self._kept: deque[tuple[int, float]] = deque()
        self._sorted: list[float] = []

    def add(self, step: int, in_flight: float, rate: float) -> None:
        """The samples of `step`, newer than every step added before."""
        kept, ordered = self._kept, self._sorted
        while kept and kept[0][0] <= step - self._span:
            del ordered[bisect.bisect_left(ordered, kept.popleft()[1])]
        if math.isfinite(in_flight) and math.isfinite(rate) and rate > 0 and in_flight > 0:
            ratio = in_flight / rate
            kept.append((step, ratio))
            bisect.insort(ordered, ratio)

    def value(self) -> float | None:
        """The measured time in service in s; None with too few usable samples."""
        ordered = self._sorted
        count = len(ordered)
        if not self._comparable or count < MIN_SERVICE_SAMPLES:
            return None
        # numpy's "linear" method, operation for operation.
        virtual = (count - 1) * (SERVICE_TIME_PERCENTILE / 100)
        below = math.floor(virtual)
        gamma = virtual - below
        low, high = ordered[below], ordered[min(below + 1, count - 1)]
        diff = high - low
        return high - diff * (1 - gamma) if gamma >= 0.5 else low + diff * gamma


def bootstrap(past: Trace | None, start_s: float, config: TriggerConfig, fits: FitCache | None) -> History:
    """The rate history at the start: `past`'s rates within `history` before `start_s`, built once
    per sweep (`fits`) and copied for each run."""
    step = config.step_s
    capacity = max(2, math.ceil(config.history_s / step) + 1)
    key: FitKey | None = None
    if past is not None and past.values.size and fits is not None:
        key = (start_s, step, capacity, float(past.at_s[0]), past.values.size, float(past.values.sum()))
        found = fits.histories.get(key)
        if found is not None:
            return copy.deepcopy(found)
    rates = History(step, capacity)
    if past is not None and past.values.size:
        at_s, values = past_rates(past, before_s=start_s, span_s=config.history_s, step_s=step)
        rates.extend(at_s, values)
    if key is not None and fits is not None:
        fits.histories[key] = copy.deepcopy(rates)
    return rates
