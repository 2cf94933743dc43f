"""What one simulated run cost and how well it served: GPU-hours, dollars, SLO minutes. Pure.

Latency: a cohort's (one tick's arrivals') waits are spread evenly between the waits at its two edges
(exact for the fluid queue at the edges, linear in between). A dropped request counts as slower than
any SLO. A minute violates the SLO when more than 1 - `slo_quantile` of the requests arriving in it
are slower than `slo_s`, which is the same as its p99 (at slo_quantile 0.99) exceeding `slo_s`.
`summarize` judges every minute after a run; `MinuteJudge` judges each during it, once final, the
same way (the SLO signal a policy observes).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import compress, repeat
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from scaler.sim.cluster import ClusterLog, FloatArray, IntArray
from scaler.sim.service import ClusterConfig

MINUTE_S = 60.0
# Edges closer than this are a cohort of width MIN_SPREAD_S: keeps the latency distribution continuous.
MIN_SPREAD_S = 1e-9
# A latency within this of the SLO meets it: float noise must not decide a request that lands on it.
SLO_GRACE_S = 1e-6
_CHUNK_MINUTES = 2048
# Two sums of the same (up to thousands of) non-negative floats, in any orders, differ by less than this share
# (each is within (n - 1) x 2**-53 of the exact sum): far below the SLO's 1e-9 tolerance.
_SUM_MARGIN = 1e-12

_Waits = TypeVar("_Waits", float, FloatArray)


class MinuteSeries(NamedTuple):
    """Per-minute series for plots; minute m starts at `at_s[m]`."""

    at_s: FloatArray
    demand_rps: FloatArray
    """Mean requests/s arriving."""
    provisioned: FloatArray
    """Mean replicas billed (starting + ready)."""
    ready: FloatArray
    """Mean replicas serving."""
    quantile_latency_s: FloatArray
    """Latency (wait + service) at `slo_quantile` of the minute's arrivals; NaN without arrivals,
    inf when more than 1 - slo_quantile of them were dropped."""
    over_slo: FloatArray
    """Fraction of the minute's arrivals slower than the SLO or dropped."""
    violating: npt.NDArray[np.bool_]
    """Whether the minute violates the SLO (those `Outcome.slo_violation_minutes` counts)."""


class TickSeries(NamedTuple):
    """Per-tick series; tick k starts at `at_s[k]`."""

    at_s: FloatArray
    demand_rps: FloatArray
    provisioned: IntArray
    ready: IntArray
    in_flight: FloatArray


@dataclass(frozen=True, slots=True)
class Outcome:
    """One policy's run."""

    policy: str
    gpu_hours: float
    """GPU-seconds billed / 3600: each replica's GPUs from the request for it to its removal, or,
    with GPU nodes, every node's GPUs from the request for the node to its removal."""
    cost_usd: float
    """gpu_hours x `ClusterConfig.usd_per_gpu_hour`."""
    slo_violation_minutes: int
    """Minutes whose latency at `slo_quantile` exceeds `slo_s`."""
    requests: float
    """Requests that arrived."""
    over_slo_fraction: float
    """Fraction of all requests slower than `slo_s` or dropped."""
    dropped: float
    """Requests turned away by a full queue or given up after the client timeout."""
    timed_out: float
    """Of `dropped`, those that gave up after the client timeout."""
    scale_events: int
    """Changes of the Deployment's replicas."""
    replica_s: float
    """Replica-seconds billed."""
    over_provisioning: float | None
    """replica_s / the reference policy's (the oracle's) - 1; None without a reference."""
    minutes: MinuteSeries
    ticks: TickSeries


def _per_minute(values: FloatArray, per_minute: int) -> FloatArray:
    if values.size % per_minute:
        padded = np.zeros(-(-values.size // per_minute) * per_minute)
        padded[: values.size] = values
        values = padded
    summed: FloatArray = values.reshape(-1, per_minute).sum(axis=1)
    return summed


def _spread(near: _Waits, far: _Waits) -> tuple[_Waits, _Waits]:
    """A cohort's waits [lo, hi] from its edges' (hi at least MIN_SPREAD_S above lo): element-wise
    on arrays, or on one cohort's floats with the same float operations (the same results)."""
    if isinstance(near, float) and isinstance(far, float):
        shorter = min(near, far)
        return shorter, max(max(near, far), shorter + MIN_SPREAD_S)
    lo: _Waits = np.minimum(near, far)
    return lo, np.maximum(np.maximum(near, far), lo + MIN_SPREAD_S)


def _over(lo: _Waits, hi: _Waits, wait_s: _Waits | float) -> _Waits:
    """Fraction of a cohort spread evenly on [lo, hi] (hi >= lo + MIN_SPREAD_S) waiting longer than
    wait_s: on arrays, or on one cohort's floats with the same float operations."""
    fraction = (hi - wait_s) / (hi - lo)
    if isinstance(fraction, float):
        return min(max(fraction, 0.0), 1.0)
    clipped: _Waits = np.clip(fraction, 0.0, 1.0)
    return clipped


def _late(admitted: _Waits, dropped: _Waits, lo: _Waits, hi: _Waits, wait_s: float) -> _Waits:
    """A tick's requests (or each tick's) slower than the SLO, whose wait may be `wait_s`, or dropped."""
    return admitted * _over(lo, hi, wait_s) + dropped


def _wait_quantile(
    lo: FloatArray, hi: FloatArray, weight: FloatArray, dropped: FloatArray, q: float
) -> FloatArray:
    """Per row (a minute of cohorts): the wait at quantile q, from the piecewise-linear tail function."""
    points = np.sort(np.concatenate([lo, hi], axis=1), axis=1)
    tail = (weight[:, None, :] * _over(lo[:, None, :], hi[:, None, :], points[:, :, None])).sum(axis=2)
    tail += dropped[:, None]
    allowed = (1 - q) * (weight.sum(axis=1) + dropped)
    reached = tail <= allowed[:, None]
    j = reached.argmax(axis=1)
    rows = np.arange(points.shape[0])
    prev = np.maximum(j - 1, 0)
    t0, t1 = tail[rows, prev], tail[rows, j]
    x0, x1 = points[rows, prev], points[rows, j]
    with np.errstate(invalid="ignore", divide="ignore"):
        between = x0 + np.where(t0 > t1, (t0 - allowed) / (t0 - t1), 0.0) * (x1 - x0)
    result: FloatArray = np.where(j == 0, points[:, 0], between)
    return np.where(reached.any(axis=1), result, np.inf)


def max_wait_s(cluster: ClusterConfig) -> float:
    """The longest wait in the queue that still meets the SLO (`SLO_GRACE_S` included)."""
    return cluster.slo_s - cluster.service_time_s + SLO_GRACE_S


class _Lateness(NamedTuple):
    lo: FloatArray
    """Per tick, the shorter of its two edge waits."""
    hi: FloatArray
    """Per tick, the longer, at least `MIN_SPREAD_S` above `lo`."""
    late: FloatArray
    """Per tick, requests slower than the SLO or dropped."""
    offered_m: FloatArray
    late_m: FloatArray
    violating: npt.NDArray[np.bool_]


def _lateness(
    offered: FloatArray,
    admitted: FloatArray,
    dropped: FloatArray,
    edge_wait_s: FloatArray,
    per_minute: int,
    cluster: ClusterConfig,
) -> _Lateness:
    """Each minute's late requests and verdict: the one computation behind both `summarize` (every
    minute at once) and `MinuteJudge` (one final minute at a time)."""
    lo, hi = _spread(edge_wait_s[:-1], edge_wait_s[1:])
    late = _late(admitted, dropped, lo, hi, max_wait_s(cluster))
    offered_m = _per_minute(offered, per_minute)
    late_m = _per_minute(late, per_minute)
    allowed_m = (1 - cluster.slo_quantile) * offered_m
    violating = (offered_m > 0) & (late_m > allowed_m * (1 + 1e-9))
    return _Lateness(lo, hi, late, offered_m, late_m, violating)


class MinuteJudge:
    """Arrival minutes' SLO verdicts one at a time, during a run, as `summarize` gives them after it.

    It reads the cluster's per-tick records in place (`Cluster.records`) and may judge a minute
    once they are final for it (`Cluster.settled_ticks`). A minute costs a microsecond or a few,
    not `_lateness`'s tens (a simulated day has 1440), from what decides it:

    - a tick's late requests are its drops when both its edges, so all its requests, waited
      within the SLO's wait, and all its requests when both waited past it; only the ticks with an
      edge on either side need `_late` (the same float operations as `_lateness`, tick by tick);
    - any order of summing a minute's non-negative ticks is within `_SUM_MARGIN` of any other, so a
      sum beyond the allowance by more than that decides the verdict as `_lateness`'s sum would;
      a minute within it (none in practice) goes to `_lateness` itself.
    """

    def __init__(
        self,
        cluster: ClusterConfig,
        per_minute: int,
        records: tuple[list[float], list[float], list[float], list[float]],
    ) -> None:
        self._cluster = cluster
        self._per_minute = per_minute
        self._max_wait_s = max_wait_s(cluster)
        allowed = (1 - cluster.slo_quantile) * (1 + 1e-9)
        self._above = allowed * (1 + _SUM_MARGIN) / (1 - _SUM_MARGIN)
        self._below = allowed * (1 - _SUM_MARGIN) / (1 + _SUM_MARGIN)
        self._offered, self._admitted, self._dropped, self._edge_wait_s = records

    def violating(self, minute: int, calm_from: int | None = None) -> float:
        """1.0 if arrival minute `minute` (from the run's start) violated the SLO, else 0.0;
        `calm_from` is the cluster's `Cluster.calm_from`, if known: a minute from it on waited for
        nothing, so it meets the SLO (most minutes of a run, judged at no cost)."""
        start = minute * self._per_minute
        if calm_from is not None and start >= calm_from:
            return 0.0
        stop = start + self._per_minute
        wait_s = self._max_wait_s
        edges = self._edge_wait_s[start : stop + 1]
        dropped = self._dropped[start:stop]
        drops = sum(dropped)
        if not drops and (not sum(edges) or max(edges) + MIN_SPREAD_S <= wait_s):
            return 0.0
        admitted = self._admitted[start:stop]
        offered = sum(self._offered[start:stop])
        above, below = self._above * offered, self._below * offered
        # Per tick, in C (map): both edges past the wait (all late), either past it (maybe some).
        far = edges[1:]
        late = drops + sum(compress(admitted, map(operator.ge, map(min, edges, far), repeat(wait_s))))
        if late > above > 0:
            return 1.0
        reach = map(operator.add, map(max, edges, far), repeat(MIN_SPREAD_S))
        if drops + sum(compress(admitted, map(operator.gt, reach, repeat(wait_s)))) <= below:
            return 0.0
        # The ticks partly late, as `_lateness` counts them (their drops are in `drops`).
        for tick, (near_s, far_s) in enumerate(zip(edges, far, strict=False)):
            lo, hi = _spread(near_s, far_s)
            if lo < wait_s < hi:
                late += _late(admitted[tick], 0.0, lo, hi, wait_s)
        if late > above > 0:
            return 1.0
        if late <= below:
            return 0.0
        # One array for the four lists: conversions cost as much as the arithmetic here.
        ticks = self._per_minute
        records = np.array(self._offered[start:stop] + admitted + dropped + edges, dtype=np.float64)
        result = _lateness(
            records[:ticks],
            records[ticks : 2 * ticks],
            records[2 * ticks : 3 * ticks],
            records[3 * ticks :],
            ticks,
            self._cluster,
        )
        return 1.0 if result.violating[0] else 0.0


def summarize(
    policy: str, log: ClusterLog, scale_events: int, cluster: ClusterConfig, *, start_s: float, tick_s: float
) -> Outcome:
    """The outcome of one run from its per-tick log."""
    per_minute = round(MINUTE_S / tick_s)
    lo, hi, late, offered_m, late_m, violating = _lateness(
        log.offered, log.admitted, log.dropped, log.edge_wait_s, per_minute, cluster
    )
    minutes = offered_m.size
    shape = (minutes, per_minute)
    pad = minutes * per_minute - lo.size
    lo_m, hi_m, weight_m = (np.pad(a, (0, pad)).reshape(shape) for a in (lo, hi, log.admitted))
    hi_m = np.maximum(hi_m, lo_m + MIN_SPREAD_S)
    dropped_m = _per_minute(log.dropped, per_minute)
    wait_q = np.concatenate(
        [
            _wait_quantile(
                lo_m[i : i + _CHUNK_MINUTES],
                hi_m[i : i + _CHUNK_MINUTES],
                weight_m[i : i + _CHUNK_MINUTES],
                dropped_m[i : i + _CHUNK_MINUTES],
                cluster.slo_quantile,
            )
            for i in range(0, minutes, _CHUNK_MINUTES)
        ]
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        over_m = np.where(offered_m > 0, late_m / offered_m, 0.0)
    ticks_m = _per_minute(np.ones(log.offered.size), per_minute)
    at_tick = start_s + tick_s * np.arange(log.offered.size, dtype=np.float64)
    replica_s = float(log.provisioned.sum()) * tick_s
    gpu_hours = float(log.billed_gpus.sum()) * tick_s / 3600.0
    requests = float(log.offered.sum())
    return Outcome(
        policy=policy,
        gpu_hours=gpu_hours,
        cost_usd=gpu_hours * cluster.usd_per_gpu_hour,
        slo_violation_minutes=int(violating.sum()),
        requests=requests,
        over_slo_fraction=float(late.sum()) / requests if requests > 0 else 0.0,
        dropped=float(log.dropped.sum()),
        timed_out=float(log.timed_out.sum()),
        scale_events=scale_events,
        replica_s=replica_s,
        over_provisioning=None,
        minutes=MinuteSeries(
            at_s=start_s + MINUTE_S * np.arange(minutes, dtype=np.float64),
            demand_rps=offered_m / (ticks_m * tick_s),
            provisioned=_per_minute(log.provisioned.astype(np.float64), per_minute) / ticks_m,
            ready=_per_minute(log.ready.astype(np.float64), per_minute) / ticks_m,
            quantile_latency_s=np.where(offered_m > 0, wait_q + cluster.service_time_s, np.nan),
            over_slo=over_m,
            violating=violating,
        ),
        ticks=TickSeries(
            at_s=at_tick,
            demand_rps=log.offered / tick_s,
            provisioned=log.provisioned,
            ready=log.ready,
            in_flight=log.in_flight,
        ),
    )


def against_reference(outcomes: Mapping[str, Outcome], reference: str | None) -> dict[str, Outcome]:
    """`outcomes` with `over_provisioning` filled in relative to the `reference` policy, if it ran."""
    base = outcomes.get(reference) if reference is not None else None
    if base is None or base.replica_s <= 0:
        return dict(outcomes)
    return {
        name: dataclasses.replace(outcome, over_provisioning=outcome.replica_s / base.replica_s - 1)
        for name, outcome in outcomes.items()
    }
