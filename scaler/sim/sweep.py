"""Reactive scaling's cost/SLO curve over its only knob, and a reading of it at a given cost. Pure.

A predictive policy is fairly judged against reactive at the same GPU-hours: sweep reactive's
target, then read the curve at the predictive run's GPU-hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from scaler.sim.autoscaler import ScalingConfig
from scaler.sim.cluster import ClusterConfig
from scaler.sim.policies import reactive
from scaler.sim.run import DEFAULT_TICK_S, prepare, run_policy
from scaler.traces import Trace


class SweepPoint(NamedTuple):
    """Reactive at one target."""

    target: float
    gpu_hours: float
    slo_violation_minutes: int


class AtGpuHours(NamedTuple):
    """The sweep read at `gpu_hours`, linearly interpolated between its neighbours."""

    gpu_hours: float
    slo_violation_minutes: float
    target: float
    inside: bool
    """False when `gpu_hours` is outside the sweep: the values are those of the nearest end."""


def sweep_reactive(
    trace: Trace,
    targets: Iterable[float],
    cluster: ClusterConfig,
    scaling: ScalingConfig,
    *,
    seed: int = 0,
    tick_s: float = DEFAULT_TICK_S,
    poisson: bool = True,
) -> list[SweepPoint]:
    """Reactive's (gpu_hours, SLO-violating minutes) at each target, on one sampled demand."""
    inputs = prepare(trace, cluster, scaling, seed=seed, tick_s=tick_s, poisson=poisson)
    points = []
    for target in targets:
        outcome = run_policy(inputs, f"reactive@{target:g}", reactive(target)(inputs))
        points.append(SweepPoint(target, outcome.gpu_hours, outcome.slo_violation_minutes))
    return points


def at_equal_gpu_hours(sweep: Sequence[SweepPoint], gpu_hours: float) -> AtGpuHours:
    """Reactive's SLO-violating minutes (and target) at `gpu_hours`, on the sweep sorted by GPU-hours."""
    if not sweep:
        raise ValueError("the sweep is empty; run sweep_reactive over at least one target")
    ordered = sorted(sweep, key=lambda point: (point.gpu_hours, point.target))
    hours = np.array([point.gpu_hours for point in ordered])
    minutes = np.array([float(point.slo_violation_minutes) for point in ordered])
    targets = np.array([point.target for point in ordered])
    inside = bool(hours[0] <= gpu_hours <= hours[-1])
    return AtGpuHours(
        gpu_hours=gpu_hours,
        slo_violation_minutes=float(np.interp(gpu_hours, hours, minutes)),
        target=float(np.interp(gpu_hours, hours, targets)),
        inside=inside,
    )
