"""A load trace as the simulator's demand: on a step, split into the policies' past and the window,
rescaled to the cluster, resampled to the tick, and sampled. Pure.

A trace value is the mean arrival rate (requests/s) from its timestamp to the next one (the last one
holds for `step_s`), so resampling to any tick keeps the number of requests.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from forecasting.base import DAY_S
from scaler.sim.service import ClusterConfig
from scaler.traces import Trace, TraceError, regrid

FloatArray = npt.NDArray[np.float64]


def _checked(trace: Trace) -> FloatArray:
    values = np.asarray(trace.values, dtype=np.float64)
    if values.size == 0:
        raise ValueError(f"trace {trace.name} holds no values")
    missing = int(np.count_nonzero(~np.isfinite(values)))
    if missing:
        raise ValueError(
            f"trace {trace.name}: {missing} of {values.size} values are missing or infinite; "
            "fill them (for example with 0) before simulating"
        )
    if values.min() < 0:
        raise ValueError(f"trace {trace.name}: has a negative rate ({values.min()}); rates must be >= 0")
    return values


def rates_per_tick(trace: Trace, tick_s: float) -> FloatArray:
    """Mean requests/s in each tick from the trace's first timestamp; a partial last tick is left out."""
    values = _checked(trace)
    if not tick_s > 0:
        raise ValueError(f"tick_s is {tick_s}; it must be > 0")
    knots = np.append(trace.at_s, trace.at_s[-1] + trace.step_s).astype(np.float64)
    spans = np.diff(knots)
    if (spans <= 0).any():
        raise ValueError(f"trace {trace.name}: timestamps must be strictly increasing")
    requests = np.concatenate([[0.0], np.cumsum(values * spans)])
    ticks = math.floor((knots[-1] - knots[0]) / tick_s + 1e-9)
    if ticks < 1:
        raise ValueError(
            f"trace {trace.name} spans {knots[-1] - knots[0]} s, less than one tick ({tick_s} s)"
        )
    edges = knots[0] + tick_s * np.arange(ticks + 1, dtype=np.float64)
    rates: FloatArray = np.diff(np.interp(edges, knots, requests)) / tick_s
    return rates


def sample_arrivals(rates_rps: FloatArray, tick_s: float, seed: int, *, poisson: bool = True) -> FloatArray:
    """Requests arriving in each tick: Poisson draws with mean rate * tick (the same for the same
    seed), or exactly rate * tick (fluid) when `poisson` is False."""
    means = np.asarray(rates_rps, dtype=np.float64) * tick_s
    if not poisson:
        return means
    return np.random.default_rng(seed).poisson(means).astype(np.float64)


def rescale_to_peak(trace: Trace, peak_replicas: float, capacity_per_replica: float) -> Trace:
    """`trace` scaled so that its peak is `peak_replicas` replicas' worth of `capacity_per_replica` (req/s)."""
    values = _checked(trace)
    return trace._replace(values=values * _peak_factor(trace, peak_replicas, capacity_per_replica))


def _peak_factor(trace: Trace, peak_replicas: float, capacity_per_replica: float) -> float:
    """What scales `trace` so that its peak is `peak_replicas` replicas' worth of `capacity_per_replica`."""
    peak = float(np.max(trace.values))
    if not peak > 0:
        raise TraceError(f"trace {trace.name} is all zero; there is no peak to rescale")
    if not (peak_replicas > 0 and capacity_per_replica > 0):
        raise ValueError(
            f"peak_replicas ({peak_replicas}) and capacity_per_replica ({capacity_per_replica}) must be > 0"
        )
    return peak_replicas * capacity_per_replica / peak


def demand_at_step(trace: Trace, step_s: float) -> Trace:
    """`trace` as demand on a grid of `step_s`: finer traces averaged per step, coarser ones
    interpolated linearly through the centres of their steps (a load does not jump at the edges of a
    monitoring bin); missing values are interpolated, and missing ends dropped."""
    known = np.isfinite(trace.values)
    if not known.any():
        raise TraceError(f"trace {trace.name}: holds no finite values")
    source = Trace(trace.name, trace.at_s[known], trace.values[known], trace.step_s)
    if source.step_s < step_s:
        binned = regrid(source, step_s)
        kept = np.isfinite(binned.values)
        source = Trace(trace.name, binned.at_s[kept], binned.values[kept], step_s)
    start_s, end_s = float(source.at_s[0]), float(source.at_s[-1]) + source.step_s
    grid = start_s + step_s * np.arange(math.floor((end_s - start_s) / step_s + 1e-9), dtype=np.float64)
    centres = source.at_s + source.step_s / 2
    values = np.interp(grid + step_s / 2, centres, source.values)
    return Trace(trace.name, grid, np.maximum(values, 0.0), step_s)


def split(trace: Trace, *, history_s: float, days: float | None) -> tuple[Trace, Trace]:
    """(the `history_s` before the window, the window): the window starts `history_s` after the
    trace's start and lasts `days` (None: to the trace's end)."""
    start_s = float(trace.at_s[0]) + history_s
    end_s = float(trace.at_s[-1]) + trace.step_s if days is None else start_s + days * DAY_S
    inside = (trace.at_s >= start_s) & (trace.at_s < end_s)
    if not inside.any():
        span_days = (trace.at_s[-1] + trace.step_s - trace.at_s[0]) / DAY_S
        raise TraceError(
            f"trace {trace.name} spans {span_days:.2f} days; nothing is left to simulate after a "
            f"history of {history_s / DAY_S:g} days (shorten --history)"
        )
    before = trace.at_s < start_s
    past = Trace(trace.name, trace.at_s[before], trace.values[before], trace.step_s)
    return past, Trace(trace.name, trace.at_s[inside], trace.values[inside], trace.step_s)


def rescaled(
    past: Trace, window: Trace, *, peak_replicas: float, cluster: ClusterConfig
) -> tuple[Trace, Trace]:
    """Both parts scaled by the factor that makes the window's peak `peak_replicas` replicas' worth."""
    factor = _peak_factor(window, peak_replicas, cluster.capacity_rps)
    return past._replace(values=past.values * factor), window._replace(values=window.values * factor)
