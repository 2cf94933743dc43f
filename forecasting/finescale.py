"""Two time scales: the seasonal shape from the coarse model, the level near now from fine samples.

Fitting seasonal models at 15 s steps would cost minutes per target (a day is 5,760 steps), so the
shape is learned at a coarse step (5 min) and the fine series only corrects the level:

1. The coarse path is a curve over time through the centres of the last observed coarse bins and of
   the forecast bins (linear in between).
2. The level correction is the gap between the fine observations of the last `level_window_s` and
   that curve. Before the coarse fit's end the curve is the observed coarse means, so the gap is
   about 0: the coarse model has already seen that load. After it, the gap is the coarse forecast's
   error so far, which a load shift shows within a few fine samples. With `trend`, a line is fitted
   through those gaps: its value at the last sample is the level now (the window's mean lags a ramp
   by half the window), and its slope carries the ramp on for at most one window ahead (a rise that
   has lasted five minutes says little about the next hour).
3. The fine forecast is the curve plus the correction, decayed with half-life `level_half_life_s`
   (a shift seen now says less about load far ahead; the coarse model catches up at its next refit).
4. The upper bound adds, in quadrature, the coarse conformal margin and the fine samples' spread
   around the corrected curve at the same quantile: the first is the error of the coarse bin mean,
   the second the fine sample's deviation from its bin mean, about independent. The coarse margin is
   that of a forecast as far ahead as the bin is from the last anchor: the coarse fit's end, or, with
   `reanchor` and fine samples in the level window, now (the level correction has re-anchored the
   forecast there, whatever the time since the fit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecasting.base import BoolArray, FloatArray
from forecasting.prepare import Series

# Fewest recent fine points a slope is fitted through.
MIN_TREND_POINTS = 4


@dataclass(frozen=True, slots=True)
class CoarsePath:
    """The coarse model's view: observed bin means up to `end_s`, the forecast from there on."""

    step_s: float
    end_s: float
    recent: FloatArray
    mean: FloatArray
    margin: FloatArray
    """The conformal margin of each forecast bin at the quantile asked."""

    @property
    def horizon_end_s(self) -> float:
        return self.end_s + self.mean.size * self.step_s

    def at(self, times_s: FloatArray) -> FloatArray:
        """The path at `times_s` (flat beyond its ends)."""
        values = np.concatenate((self.recent, self.mean))
        first = self.end_s - self.recent.size * self.step_s
        centres = first + self.step_s * (np.arange(values.size) + 0.5)
        return np.asarray(np.interp(times_s, centres, values), dtype=np.float64)

    def margin_after(self, elapsed_s: FloatArray) -> FloatArray:
        """The margin of a forecast `elapsed_s` after its origin (flat beyond the ends)."""
        centres = self.step_s * (np.arange(self.mean.size) + 0.5)
        return np.asarray(np.interp(elapsed_s, centres, self.margin), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class FineForecast:
    mean: FloatArray
    upper: FloatArray
    level: float
    """The level correction at lead 0 (the end of the fine series), in load units."""
    points: int
    """Fine observations that set it."""


@dataclass(frozen=True, slots=True)
class FineLevel:
    """What a fine forecast is before its margins: everything that does not depend on the quantile
    (`fine_level`), so that forecasts of the same path and samples at several quantiles share it."""

    mean: FloatArray
    lead_s: FloatArray
    times: FloatArray
    spread: FloatArray
    """The fine samples' deviations from the local level (`_around_local_level`), sorted."""
    now: float
    points: int
    anchored: bool
    """Fine samples in the level window re-anchor the margins (with `reanchor`)."""


def fine_level(
    path: CoarsePath,
    fine: Series,
    horizon_steps: int,
    *,
    level_window_s: float,
    level_half_life_s: float,
    trend: bool = False,
) -> FineLevel | None:
    """Steps 1-3 of the module docstring for `horizon_steps` fine steps after `fine`; None if the
    coarse path ends before. `path.margin` is not used."""
    lead_s = np.asarray(fine.step_s * (np.arange(horizon_steps) + 0.5), dtype=np.float64)
    times = np.asarray(fine.end_s + lead_s, dtype=np.float64)
    if times.size == 0 or times[-1] > path.horizon_end_s:
        return None
    centres = fine.centres_s()
    gap = fine.values - path.at(centres)
    recent = fine.observed & (centres >= fine.end_s - level_window_s)
    level = float(gap[recent].mean()) if recent.any() else 0.0
    now, slope = level, 0.0
    if trend and int(recent.sum()) >= MIN_TREND_POINTS:
        slope, now = (float(c) for c in np.polyfit(centres[recent] - fine.end_s, gap[recent], 1))
    ahead = now + slope * np.minimum(lead_s, level_window_s)
    mean = np.maximum(path.at(times) + ahead * 0.5 ** (lead_s / level_half_life_s), 0.0)
    spread = np.sort(_around_local_level(gap, fine.observed, max(1, round(level_window_s / fine.step_s))))
    return FineLevel(mean, lead_s, times, spread, now, int(recent.sum()), bool(recent.any()))


def fine_forecast(
    path: CoarsePath,
    fine: Series,
    horizon_steps: int,
    quantile: float,
    *,
    level_window_s: float,
    level_half_life_s: float,
    trend: bool = False,
    reanchor: bool = False,
    level: FineLevel | None = None,
) -> FineForecast | None:
    """The forecast for `horizon_steps` fine steps after `fine`; None if the coarse path ends before.
    `level`: `fine_level` of the same path, samples and settings, if already computed."""
    found = (
        level
        if level is not None
        else fine_level(
            path,
            fine,
            horizon_steps,
            level_window_s=level_window_s,
            level_half_life_s=level_half_life_s,
            trend=trend,
        )
    )
    if found is None:
        return None
    spread, lead_s, times = found.spread, found.lead_s, found.times
    noise = max(sorted_quantile(spread, quantile), 0.0) if spread.size else 0.0
    # The error of a forecast grows with the time since what anchors it: the coarse fit's end, or,
    # once fine samples re-anchor the level, now.
    anchored = reanchor and found.anchored
    elapsed = np.minimum(times - path.end_s, lead_s) if anchored else times - path.end_s
    margin = np.hypot(np.maximum(path.margin_after(elapsed), 0.0), noise)
    return FineForecast(found.mean, found.mean + margin, found.now, found.points)


def sorted_quantile(ordered: FloatArray, quantile: float) -> float:
    """`numpy.quantile(ordered, quantile)` (its default, linear method, operation for operation) of
    values already sorted, without numpy's per-call overhead; NaN if any value is."""
    count = ordered.size
    if math.isnan(ordered[-1]):
        return math.nan
    virtual = (count - 1) * quantile
    if virtual >= count - 1:
        return float(ordered[-1])
    below = math.floor(virtual)
    gamma = virtual - below
    low, high = float(ordered[below]), float(ordered[below + 1])
    diff = high - low
    return high - diff * (1 - gamma) if gamma >= 0.5 else low + diff * gamma


def _around_local_level(gap: FloatArray, observed: BoolArray, window: int) -> FloatArray:
    """The observed gaps minus the mean of the observed gaps in a centred window of `window` steps:
    the fine samples' own noise, without the level's drift over the fine series."""
    kernel = np.ones(min(window, gap.size))
    sums = np.convolve(np.where(observed, gap, 0.0), kernel, mode="same")
    counts = np.convolve(observed.astype(np.float64), kernel, mode="same")
    local = sums / np.maximum(counts, 1.0)
    return np.asarray((gap - local)[observed], dtype=np.float64)
