"""The baseline policies: reactive (KEDA's Prometheus scaler), fixed buffer, and the clairvoyant oracle.

Each is a `Policy`; `reactive`, `fixed_buffer` and `oracle` return the factories `simulate` takes.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from scaler.policy import past_tolerance
from scaler.sim.autoscaler import ScalingConfig, hpa_desired
from scaler.sim.interface import Metric, PolicyFactory, Scenario, Signals
from scaler.sim.service import ClusterConfig

FloatArray = npt.NDArray[np.float64]

# Demand within this fraction of a replica's capacity does not need another replica (float noise).
_SLACK = 1e-9


class Reactive:
    """value = in-flight requests x (1 + buffer), as KEDA's Prometheus scaler answers with the query's
    result; active when the value exceeds `activation_threshold` (strictly, as KEDA does)."""

    def __init__(self, target: float, *, buffer: float = 0.0, activation_threshold: float = 0.0) -> None:
        if not (target > 0 and buffer > -1):
            raise ValueError(f"target ({target}) must be > 0 and buffer ({buffer}) > -1")
        self.target = target
        self.buffer = buffer
        self.activation_threshold = activation_threshold
        self._in_flight = 0.0

    def observe(self, signals: Signals) -> None:
        """Keep the latest in-flight count: the scrape a poll would read."""
        self._in_flight = signals.in_flight

    def metric(self, now_s: float) -> Metric:
        """The latest in-flight count, scaled by the buffer."""
        seen = self._in_flight if math.isfinite(self._in_flight) and self._in_flight > 0 else 0.0
        value = seen * (1 + self.buffer)
        return Metric(value, value > self.activation_threshold)


def _ahead_max(values: FloatArray, window: int) -> FloatArray:
    """max(values[k : k + window]) for every k (the window shrinks at the end)."""
    padded = np.concatenate([values, np.zeros(window - 1, dtype=values.dtype)])
    result: FloatArray = sliding_window_view(padded, window).max(axis=1)
    return result


class Oracle:
    """Knows the demand; asks for the fewest replicas that serve it, given how fast they can come.

    Replicas needed at tick j: the fewest whose capacity (x utilization) starts, within the SLO's wait
    budget w = slo_s - service_time_s, whatever is queued at the tick's end (and hold it within
    `max_queue`), given the queue those fewest left before: a queue may absorb a burst as long as it
    drains in time. (More replicas only
    shorten the queue, so any plan at or above these keeps the waits within w.) At a poll at tick k
    it answers with a plan (target 1, value = replicas, as KEDA's cron scaler does): at least
    the peak need over ticks [k, k + startup + one HPA period) (a replica asked for now is ready at
    k + startup, and the next ask lands one period later), and enough that the HPA's scale-up
    limits can reach the plan of the next period in time. It is active while its plan is above zero
    within one KEDA polling interval, so it wakes the workload ahead of the load. When the HPA's
    tolerance would ignore a needed increase, it asks for just enough more to get past it.
    """

    target = 1.0

    def __init__(
        self,
        arrivals: FloatArray,
        *,
        start_s: float,
        tick_s: float,
        cluster: ClusterConfig,
        scaling: ScalingConfig,
        utilization: float = 1.0,
    ) -> None:
        if not 0 < utilization <= 1:
            raise ValueError(f"utilization is {utilization}; it must be in (0, 1]")
        # Start-ups vary per replica; it plans for the slow ones (their 95th percentile).
        startup = math.ceil(cluster.startup_p95 / tick_s - _SLACK)
        sync = max(1, round(scaling.hpa_sync_s / tick_s))
        needed = _needed(
            np.asarray(arrivals, dtype=np.float64),
            tick_s,
            capacity_rps=cluster.capacity_rps * utilization,
            wait_s=cluster.slo_s - cluster.service_time_s,
            max_queue=cluster.max_queue,
        )
        capped = np.minimum(np.asarray(needed, dtype=np.float64), scaling.max_replica_count)
        self._plan = _ramped([int(n) for n in _ahead_max(capped, startup + sync).tolist()], sync, scaling)
        polling = max(1, round(scaling.polling_interval_s / tick_s))
        self._wake = _ahead_max(np.asarray(self._plan, dtype=np.float64), polling).tolist()
        self._start_s, self._tick_s, self._tolerance = start_s, tick_s, scaling.tolerance
        self._replicas = 0

    @classmethod
    def for_scenario(cls, scenario: Scenario, *, utilization: float = 1.0) -> Oracle:
        """The oracle for one run's realised demand and settings."""
        return cls(
            scenario.arrivals,
            start_s=scenario.start_s,
            tick_s=scenario.tick_s,
            cluster=scenario.cluster,
            scaling=scenario.scaling,
            utilization=utilization,
        )

    def observe(self, signals: Signals) -> None:
        """Keep the Deployment's replicas, to see past the HPA's tolerance."""
        self._replicas = signals.desired_replicas

    def metric(self, now_s: float) -> Metric:
        """Replicas planned for now (target 1)."""
        tick = min(max(0, round((now_s - self._start_s) / self._tick_s)), len(self._plan) - 1)
        planned, current = self._plan[tick], self._replicas
        value = float(planned)
        # Only where this HPA would keep fewer: the plan is exact, and `past_tolerance` also raises a
        # ratio of exactly 1 + tolerance, which the float arithmetic modelled here lets through.
        if current > 0 and hpa_desired(value, self.target, current, self._tolerance) < planned:
            value = past_tolerance(value, self.target, current, self._tolerance)
        return Metric(value, self._wake[tick] > 0)


def _needed(
    arrivals: FloatArray, tick_s: float, *, capacity_rps: float, wait_s: float, max_queue: int | None
) -> list[int]:
    """Per tick, the fewest replicas that leave no more queued than they start within `wait_s` (and
    than `max_queue` each), given the queue those fewest replicas left before: a greedy pass that lets
    a queue absorb bursts."""
    per_tick = capacity_rps * tick_s
    in_time = capacity_rps * (tick_s + wait_s)  # a replica's share of queued + arriving
    room = per_tick + max_queue if max_queue is not None else math.inf
    needed, queued = [], 0.0
    for arriving in arrivals.tolist():
        pending = queued + arriving
        replicas = max(0, math.ceil(max(pending / in_time, pending / room) - _SLACK))
        queued = max(0.0, pending - replicas * per_tick)
        needed.append(replicas)
    return needed


def _ramped(needed: list[int], sync: int, scaling: ScalingConfig) -> list[int]:
    """`needed`, raised so that each HPA period's scale-up limit reaches the next period's value."""

    def reach(replicas: int) -> int:
        if replicas == 0:
            return scaling.hpa_min_replicas  # KEDA's activation
        return scaling.scale_up_reach(replicas)

    # fewest[y]: the fewest replicas from which one period can reach y.
    fewest, replicas = [], 0
    for wanted in range(max(needed, default=0) + 1):
        while reach(replicas) < wanted and replicas < wanted:
            replicas += 1
        fewest.append(replicas)
    plan = list(needed)
    for tick in range(len(plan) - sync - 1, -1, -1):
        plan[tick] = max(plan[tick], fewest[plan[tick + sync]])
    return plan


def reactive(target: float, *, activation_threshold: float = 0.0) -> PolicyFactory:
    """KEDA's Prometheus scaler on in-flight requests; `target` (in-flight per replica) is its only knob."""
    return lambda scenario: Reactive(target, activation_threshold=activation_threshold)


def fixed_buffer(target: float, buffer: float, *, activation_threshold: float = 0.0) -> PolicyFactory:
    """Reactive with the value inflated by `buffer` (0.3 = 30 % headroom)."""
    return lambda scenario: Reactive(target, buffer=buffer, activation_threshold=activation_threshold)


def oracle(*, utilization: float = 1.0) -> PolicyFactory:
    """The clairvoyant lower bound on cost; plans replicas to run at most `utilization` of capacity."""
    return lambda scenario: Oracle.for_scenario(scenario, utilization=utilization)


def baselines(target: float, *, buffer: float = 0.3) -> dict[str, PolicyFactory]:
    """The three baselines under their usual names: `reactive`, `fixed_buffer` and `oracle`."""
    return {"reactive": reactive(target), "fixed_buffer": fixed_buffer(target, buffer), "oracle": oracle()}
