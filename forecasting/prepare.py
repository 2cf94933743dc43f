"""Raw samples -> a regular series the models can fit: finite, non-negative, one value per step.

`prepare` applies these rules, in order:

1. Samples with a NaN/Inf timestamp or value are dropped: they become missing steps. So are values
   beyond +-1e15 (`MAX_VALUE`): no load metric reaches that, and the models square values.
2. A counter (`counter=True`) is turned into a per-second rate; a drop means the counter restarted,
   so the previous value is added to every later sample (Prometheus `rate()` semantics).
3. Negative values are clipped to 0: load cannot be negative, and a negative sample is an artefact.
4. Samples are averaged into bins `[start_s + i * step_s, start_s + (i + 1) * step_s)`, the grid aligned
   to multiples of `step_s` in unix time (the same grid as `scaler.traces.regrid`).
5. Gaps of at most `max_interpolate_steps` are interpolated linearly: a few missing scrapes say
   nothing about the shape of load.
6. Longer gaps are filled with the value one season earlier and marked unobserved (`observed` False), so
   that the models keep the whole history and the scores leave the invented points out. Fitting only
   the longest contiguous stretch would instead throw away days of seasonal history for one lost hour.
   A gap longer than a season, or one with less than a season of data before it, cannot be filled
   from a real previous season: the history starts after it (old data before a day-long outage
   usually describes another regime anyway).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from forecasting.base import BoolArray, FloatArray

MAX_VALUE = 1e15


@dataclass(frozen=True, slots=True)
class Series:
    """A regular series: `values[i]` is the mean load over `[start_s + i * step_s, + step_s)`.

    `values` are finite and >= 0; `observed[i]` is False where the value was invented (an
    interpolated or filled gap) and must not be scored. `notes` lists what preparation changed.
    """

    start_s: float
    step_s: float
    values: FloatArray
    observed: BoolArray
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.values.size)

    @property
    def end_s(self) -> float:
        """The end of the last bin: where a forecast from this series starts."""
        return self.start_s + len(self) * self.step_s

    def centres_s(self) -> FloatArray:
        """The middle of each bin, the time its mean value stands for."""
        return self.start_s + self.step_s * (np.arange(len(self), dtype=np.float64) + 0.5)

    def window(self, start: int, stop: int | None) -> Series:
        """Steps `start` to `stop` (Python slice semantics, negative counts from the end)."""
        first, last, _ = slice(start, stop).indices(len(self))
        last = max(first, last)
        return Series(
            self.start_s + first * self.step_s,
            self.step_s,
            self.values[first:last],
            self.observed[first:last],
            self.notes,
        )


def prepare(
    at_s: npt.ArrayLike,
    values: npt.ArrayLike,
    step_s: float,
    *,
    season_steps: int | None = None,
    counter: bool = False,
    max_interpolate_steps: int = 3,
) -> Series:
    """Put samples `(at_s[i], values[i])` (unix seconds, any order) on a regular grid of `step_s`.

    `season_steps` enables seasonal filling of long gaps. Returns an empty series when no sample
    is usable.
    """
    if not (math.isfinite(step_s) and step_s > 0):
        raise ValueError(f"step_s is {step_s}; it must be a finite number of seconds > 0")
    times = np.asarray(at_s, dtype=np.float64).ravel()
    raw = np.asarray(values, dtype=np.float64).ravel()
    if times.size != raw.size:
        raise ValueError(f"at_s has {times.size} points and values has {raw.size}; they must match")
    keep = np.isfinite(times) & (np.abs(raw) <= MAX_VALUE)
    order = np.argsort(times[keep], kind="stable")
    times, raw = times[keep][order], raw[keep][order]
    notes = [f"dropped {int((~keep).sum())} NaN/Inf/huge samples"] if not keep.all() else []
    if counter:
        times, raw, resets = _counter_rate(times, raw)
        if resets:
            notes.append(f"counter restarted {resets} times")
    negative = int((raw < 0).sum())
    if negative:
        notes.append(f"clipped {negative} negative values to 0")
    raw = np.maximum(raw, 0.0)
    if times.size == 0:
        empty = np.zeros(0, dtype=np.float64)
        return Series(0.0, step_s, empty, np.zeros(0, dtype=np.bool_), tuple(notes))
    start_s = math.floor(times[0] / step_s) * step_s
    index = ((times - start_s) // step_s).astype(np.int64)
    count = np.bincount(index)
    total = np.bincount(index, weights=raw)
    grid = np.full(count.size, np.nan)
    grid[count > 0] = total[count > 0] / count[count > 0]
    return _fill_gaps(start_s, step_s, grid, season_steps, max_interpolate_steps, notes)


def _counter_rate(times: FloatArray, raw: FloatArray) -> tuple[FloatArray, FloatArray, int]:
    """Per-second increase between consecutive counter samples, stamped at the later sample."""
    dropped = raw[1:] < raw[:-1]
    offset = np.concatenate(([0.0], np.cumsum(np.where(dropped, raw[:-1], 0.0))))
    total = raw + offset
    elapsed = np.diff(times)
    ok = elapsed > 0
    rate = np.diff(total)[ok] / elapsed[ok]
    return times[1:][ok], rate, int(dropped.sum())


def _missing_runs(missing: BoolArray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _fill_gaps(
    start_s: float,
    step_s: float,
    grid: FloatArray,
    season_steps: int | None,
    max_interpolate_steps: int,
    notes: list[str],
) -> Series:
    runs = _missing_runs(np.isnan(grid))
    season = season_steps if season_steps and season_steps > max_interpolate_steps else None
    cut = 0
    for a, b in runs:
        if b - a <= max_interpolate_steps:
            continue
        if season is None or b - a > season or a - cut < season:
            cut = b
    if cut:
        notes.append(f"dropped the {cut} steps before a gap too long to fill")
    values = grid[cut:].copy()
    observed = ~np.isnan(values)
    filled = interpolated = 0
    for a, b in runs:
        if a < cut:
            continue
        a, b = a - cut, b - cut
        if b - a <= max_interpolate_steps:
            ramp = np.arange(1, b - a + 1) / (b - a + 1)
            values[a:b] = values[a - 1] + ramp * (values[b] - values[a - 1])
            interpolated += 1
        else:
            assert season is not None  # longer gaps were cut above
            for i in range(a, b):
                values[i] = values[i - season]
            filled += b - a
    if interpolated:
        notes.append(f"interpolated {interpolated} short gaps")
    if filled:
        notes.append(f"filled {filled} steps of long gaps from the previous season")
    return Series(start_s + cut * step_s, step_s, values, observed, tuple(notes))
