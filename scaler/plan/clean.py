"""The history a plan is fitted on, cleaned of what would mislead a weeks-long forecast. Pure.

    hourly series -> suspect hours (an outage recorded as zeros) made missing
                  -> the last level shift found; the history before it brought to the level after it

- **Suspect hours** are runs of `SUSPECT_RUN_H` hours or more under `SUSPECT_FLOOR` x the median of
  their hour of day: an outage or a broken scrape recorded as (near) zeros inside otherwise busy
  history. A seasonal forecast would repeat them as quiet hours. They are treated as missing, like the
  long gaps `forecasting.prepare` already fills: filled with the value one week earlier (one day, where
  the history has no week before them) and marked unobserved, so that the conformal calibration and the
  backtest leave them out.
- **Level shifts**: the daily means (log, weekday effects removed when the history has three weeks)
  are split where two levels explain them best, every day after the split nearer the new level than
  the old; the split is a shift when the Bayesian information
  criterion prefers two levels to one, both sides hold `SHIFT_MIN_DAYS` days or more and the levels
  differ by `SHIFT_MIN_RATIO` or more. Only the last shift matters to a plan, and only one in the last
  `SHIFT_LOOKBACK_DAYS` days (the forecast's level is the last week's mean, which already holds an older
  one; a holiday week early in the history is not taken for a shift). The history before it is scaled
  by the ratio of the levels, so the models keep its seasonal shape at today's level.

The thresholds were fixed before any closing-loop run (docs/planner.md, "What to expect").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecasting import Series
from scaler.plan.queueing import FloatArray

HOUR_S = 3600.0
DAY_H = 24
WEEK_H = 168
SUSPECT_FLOOR = 0.1
SUSPECT_RUN_H = 2
SHIFT_MIN_DAYS = 3
SHIFT_MIN_RATIO = 0.2
SHIFT_LOOKBACK_DAYS = 14
WEEKDAY_MIN_DAYS = 21


@dataclass(frozen=True, slots=True)
class Shift:
    """A level shift in the history: the level after it over the level before it."""

    at_s: float
    ratio: float


@dataclass(frozen=True, slots=True)
class Cleaned:
    """The series the forecast is fitted on and what cleaning changed."""

    series: Series
    missing_hours: int
    """Hours absent from the input (gaps `forecasting.prepare` filled), already unobserved."""
    suspect_hours: int
    """Hours flagged suspect and treated as missing."""
    suspect_until_s: float | None
    """The end of the last suspect run."""
    shift: Shift | None


def suspect_mask(series: Series, *, floor: float = SUSPECT_FLOOR, run_h: int = SUSPECT_RUN_H) -> np.ndarray:
    """True for hours under `floor` x the median of their hour of day, in runs of `run_h` or more."""
    y = series.values
    of_day = ((series.start_s / HOUR_S + np.arange(y.size)) % DAY_H).astype(np.int64)
    typical = np.array([np.median(y[of_day == h]) if (of_day == h).any() else 0.0 for h in range(DAY_H)])
    low = (y < floor * typical[of_day]) & (typical[of_day] > 0)
    edges = np.diff(np.concatenate(([0], low.astype(np.int8), [0])))
    mask = np.zeros(y.size, dtype=np.bool_)
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if b - a >= run_h:
            mask[a:b] = True
    return mask


def suspect_hours(series: Series) -> tuple[int, float | None]:
    """The count of suspect hours (see `suspect_mask`) and the end of the last run."""
    mask = suspect_mask(series)
    if not mask.any():
        return 0, None
    return int(mask.sum()), series.start_s + float(np.flatnonzero(mask)[-1] + 1) * HOUR_S


def _fill(values: FloatArray, mask: np.ndarray) -> FloatArray:
    """`values` with the `mask`ed hours replaced, in time order, by the value a week (or a day) earlier;
    the hour of day's median of the rest where there is neither."""
    out = values.copy()
    of_day = np.arange(values.size) % DAY_H
    keep = ~mask
    for i in np.flatnonzero(mask):
        if i >= WEEK_H:
            out[i] = out[i - WEEK_H]
        elif i >= DAY_H:
            out[i] = out[i - DAY_H]
        else:
            same = keep & (of_day == of_day[i])
            out[i] = float(np.median(values[same])) if same.any() else 0.0
    return out


def last_shift(series: Series) -> tuple[int, float] | None:
    """(the hour index where the last level shift starts, level after / before), or None."""
    days = len(series) // DAY_H
    if days < 2 * SHIFT_MIN_DAYS:
        return None
    first = len(series) - days * DAY_H  # whole days counted back from the end
    daily = series.values[first:].reshape(days, DAY_H).mean(axis=1)
    top = float(daily.max())
    if top <= 0:
        return None
    x = np.log(np.maximum(daily, 1e-6 * top))
    if days >= WEEKDAY_MIN_DAYS:
        weekday = np.arange(days) % 7
        x = x - np.array([x[weekday == w].mean() for w in range(7)])[weekday]
    best_k, best_rss = 0, math.inf
    for k in range(max(SHIFT_MIN_DAYS, days - SHIFT_LOOKBACK_DAYS), days - SHIFT_MIN_DAYS + 1):
        before, after = x[:k].mean(), x[k:].mean()
        # A new level holds every day since: each is nearer the new level than the old one.
        middle = (before + after) / 2
        if not ((x[k:] > middle).all() if after > before else (x[k:] < middle).all()):
            continue
        rss = float(((x[:k] - before) ** 2).sum() + ((x[k:] - after) ** 2).sum())
        if rss < best_rss:
            best_k, best_rss = k, rss
    rss0 = float(((x - x.mean()) ** 2).sum())
    if best_k == 0 or rss0 <= 0:
        return None
    # BIC: one mean against two means and a change point (two more parameters).
    gain = days * math.log(rss0 / max(best_rss, 1e-12 * rss0))
    ratio = float(math.exp(x[best_k:].mean() - x[:best_k].mean()))
    if gain <= 2 * math.log(days) or abs(math.log(ratio)) < math.log1p(SHIFT_MIN_RATIO):
        return None
    return first + best_k * DAY_H, ratio


def clean(series: Series) -> Cleaned:
    """`series` with suspect hours made missing and the level before its last shift brought to the level after."""
    missing = int((~series.observed).sum())
    mask = suspect_mask(series)
    values = _fill(series.values, mask) if mask.any() else series.values
    observed = series.observed & ~mask
    until = series.start_s + float(np.flatnonzero(mask)[-1] + 1) * HOUR_S if mask.any() else None
    filled = Series(series.start_s, series.step_s, values, observed, series.notes)
    found = last_shift(filled)
    shift = None
    if found is not None:
        at, ratio = found
        values = values.copy()
        values[:at] *= ratio
        filled = Series(series.start_s, series.step_s, values, observed, series.notes)
        shift = Shift(series.start_s + at * HOUR_S, ratio)
    return Cleaned(filled, missing, int(mask.sum()), until, shift)
