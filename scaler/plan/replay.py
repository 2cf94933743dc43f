"""The plan through the simulator: a fixed replica count, or an hourly schedule, on a load. Pure.

Two uses, both on `scaler.sim`'s public mechanics (queue, KEDA/HPA, start-up):

- `simulated_over_slo`: the share of requests over the SLO at a constant rate and a fixed replica
  count, which checks the queueing model's replica count against the simulator's queue.
- `replay_schedule`: a plan's replicas per hour played as a KEDA trigger would play a schedule
  (the value is the planned count, target 1, asked `lead_s` ahead so that replicas are ready when
  their hour starts), with the HPA's tolerance at 0 so that each planned change is made.

The simulator's service time is deterministic; a profile's `service_time_cv` is not simulated.
"""

from __future__ import annotations

import math

import numpy as np

from scaler.plan.profile import Profile
from scaler.sim import ClusterConfig, Metric, Outcome, ScalingConfig, Signals, prepare, run_policy
from scaler.traces import Trace

HOUR_S = 3600.0
CHECK_TICK_S = 1.0
REPLAY_TICK_S = 5.0


class Schedule:
    """A policy that answers the planned replicas of the hour `lead_s` ahead (or the current hour's,
    when larger), as a cron-like trigger; it observes nothing."""

    target = 1.0

    def __init__(self, replicas: np.ndarray, start_s: float, lead_s: float) -> None:
        self._replicas = np.asarray(replicas, dtype=np.int64)
        self._start_s = start_s
        self._lead_s = lead_s

    def _at(self, at_s: float) -> int:
        hour = int((at_s - self._start_s) // HOUR_S)
        return int(self._replicas[min(max(hour, 0), self._replicas.size - 1)])

    def observe(self, signals: Signals) -> None:
        """A schedule needs no signals."""

    def metric(self, now_s: float) -> Metric:
        """The larger of this hour's and the hour `lead_s` ahead's planned replicas."""
        value = float(max(self._at(now_s), self._at(now_s + self._lead_s)))
        return Metric(value, value > 0)


def cluster_for(profile: Profile, *, initial_replicas: int | None, service_time_s: float) -> ClusterConfig:
    """The simulator's service for `profile` (deterministic service of `service_time_s`)."""
    return ClusterConfig(
        concurrency=profile.slots_per_replica,
        service_time_s=service_time_s,
        startup_delay_s=profile.startup_s,
        slo_s=profile.slo_seconds,
        slo_quantile=profile.slo_quantile,
        gpus_per_replica=profile.gpus_per_replica,
        initial_replicas=initial_replicas,
    )


def simulated_over_slo(
    rate_rps: float,
    replicas: int,
    profile: Profile,
    *,
    service_time_s: float,
    minutes: float = 30.0,
    seed: int = 1,
) -> float:
    """The share of requests slower than the SLO at a constant `rate_rps` on `replicas` replicas."""
    trace = Trace("constant", np.array([0.0]), np.array([rate_rps]), minutes * 60.0)
    cluster = cluster_for(profile, initial_replicas=replicas, service_time_s=service_time_s)
    scaling = ScalingConfig(min_replica_count=replicas, max_replica_count=max(1, replicas), tolerance=0.0)
    scenario = prepare(trace, cluster, scaling, seed=seed, tick_s=CHECK_TICK_S)
    fixed = Schedule(np.array([replicas]), 0.0, 0.0)
    return run_policy(scenario, "fixed", fixed).over_slo_fraction


def simulated_replicas(
    rate_rps: float,
    profile: Profile,
    *,
    service_time_s: float,
    start: int,
    minutes: float = 30.0,
    seed: int = 1,
) -> int:
    """The fewest replicas (searching up from `start`) whose simulated share over the SLO is within
    1 - the SLO quantile."""
    allowed = 1.0 - profile.slo_quantile
    n = max(1, start)
    while (
        simulated_over_slo(rate_rps, n, profile, service_time_s=service_time_s, minutes=minutes, seed=seed)
        > allowed
    ):
        n += 1
    while n > 1 and (
        simulated_over_slo(
            rate_rps, n - 1, profile, service_time_s=service_time_s, minutes=minutes, seed=seed
        )
        <= allowed
    ):
        n -= 1
    return n


def replay_schedule(
    actual: Trace,
    replicas: np.ndarray,
    start_s: float,
    profile: Profile,
    *,
    service_time_s: float,
    seed: int = 1,
) -> Outcome:
    """Play the hourly `replicas` (hour 0 starting at `start_s`) against the `actual` load."""
    planned = np.asarray(replicas, dtype=np.int64)
    lead_s = profile.startup_s + 2 * 30.0
    first = int(planned[0])
    cluster = cluster_for(profile, initial_replicas=first, service_time_s=service_time_s)
    ceiling = max(1, int(planned.max()))
    scaling = ScalingConfig(
        min_replica_count=min(profile.min_replicas, ceiling), max_replica_count=ceiling, tolerance=0.0
    )
    hours = min(planned.size, math.floor((actual.at_s[-1] + actual.step_s - start_s) / HOUR_S + 1e-9))
    if hours < 1:
        raise ValueError(f"the actual load ends before the plan's first hour ({start_s:.0f})")
    keep = (actual.at_s >= start_s) & (actual.at_s < start_s + hours * HOUR_S)
    window = actual._replace(at_s=actual.at_s[keep], values=np.nan_to_num(actual.values[keep], nan=0.0))
    scenario = prepare(window, cluster, scaling, seed=seed, tick_s=REPLAY_TICK_S)
    return run_policy(scenario, "plan", Schedule(planned[:hours], start_s, lead_s))
