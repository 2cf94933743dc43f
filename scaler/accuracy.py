"""Rolling accuracy of a target's live forecasts, scored as the actual load arrives. Pure.

Each step the predictor records what it forecast for `lead` seconds ahead: the mean at that time
and the upper bound it provisioned for over the whole window. When the window has passed:

- the absolute error of the mean is compared with that of persistence (the value at the time the
  forecast was made, carried forward): their ratio over the recent evaluations is the MASE, so
  below 1 means the forecast beats "scale on what you see now";
- the window is *covered* when the highest load seen in it stayed at or below the bound; coverage
  near the configured quantile means the band is calibrated, and 1 - coverage is how often the
  provisioned value was too low.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class _Pending:
    due_s: float
    mean: float
    bound: float
    persistence: float
    peak: float


class RollingAccuracy:
    """MASE against persistence and coverage of the bound, over the last `window` evaluations."""

    def __init__(self, window: int = 288) -> None:
        self._pending: deque[_Pending] = deque()
        self._scores: deque[tuple[float, float, bool]] = deque(maxlen=window)
        self._error_sum = 0.0
        self._naive_sum = 0.0
        self._covered = 0

    def forecast(self, made_s: float, due_s: float, mean: float, bound: float, now_value: float) -> None:
        """Record a forecast made at `made_s` for the window (made_s, due_s]."""
        if all(math.isfinite(v) for v in (mean, bound, now_value)):
            self._pending.append(_Pending(due_s, mean, bound, now_value, -math.inf))

    def actual(self, at_s: float, value: float) -> None:
        """Score every pending forecast with an observation made at `at_s`."""
        if not math.isfinite(value):
            return
        for pending in self._pending:
            pending.peak = max(pending.peak, value)
        while self._pending and self._pending[0].due_s <= at_s:
            done = self._pending.popleft()
            self._add(abs(value - done.mean), abs(value - done.persistence), done.peak <= done.bound)

    def _add(self, error: float, naive: float, covered: bool) -> None:
        if len(self._scores) == self._scores.maxlen:
            old_error, old_naive, old_covered = self._scores[0]
            self._error_sum -= old_error
            self._naive_sum -= old_naive
            self._covered -= int(old_covered)
        self._scores.append((error, naive, covered))
        self._error_sum += error
        self._naive_sum += naive
        self._covered += int(covered)

    @property
    def evaluations(self) -> int:
        return len(self._scores)

    @property
    def mase(self) -> float:
        """Mean absolute error over persistence's; NaN before any evaluation or when persistence is exact."""
        if not self._scores or self._naive_sum <= 0:
            return math.nan
        return self._error_sum / self._naive_sum

    @property
    def coverage(self) -> float:
        """Share of windows whose peak stayed within the bound; NaN before any evaluation."""
        return self._covered / len(self._scores) if self._scores else math.nan
