"""Wire a run together: trace -> demand -> (policy -> KEDA/HPA -> cluster) per tick -> Outcome. Pure.

Within a tick starting at t: the HPA syncs (every `hpa_sync_s`), then KEDA polls (every
`polling_interval_s`), both reading `policy.metric(t)`; the Deployment is rescaled; the cluster serves
the tick's arrivals; the policy observes the signals at t + tick. The first sync and poll come one
period after the start, once the policy has observed something.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from scaler.sim.autoscaler import Autoscaler, ScalingConfig
from scaler.sim.cluster import Cluster, ClusterConfig
from scaler.sim.demand import rates_per_tick, sample_arrivals
from scaler.sim.interface import Policy, PolicyFactory, Scenario, Signals
from scaler.sim.outcomes import MINUTE_S, Outcome, against_reference, summarize
from scaler.traces import Trace

DEFAULT_TICK_S = 5.0


def _ticks_per(period_s: float, tick_s: float, name: str) -> int:
    ticks = round(period_s / tick_s)
    if ticks < 1 or not math.isclose(ticks * tick_s, period_s, rel_tol=1e-9):
        raise ValueError(f"{name} ({period_s} s) must be a whole number of ticks of {tick_s} s")
    return ticks


def prepare(
    trace: Trace,
    cluster: ClusterConfig,
    scaling: ScalingConfig,
    *,
    seed: int = 0,
    tick_s: float = DEFAULT_TICK_S,
    poisson: bool = True,
) -> Scenario:
    """The fixed inputs of a run: `trace` (requests/s) resampled to `tick_s` and sampled with `seed`."""
    for period_s, name in (
        (MINUTE_S, "a minute"),
        (scaling.hpa_sync_s, "hpa_sync_s"),
        (scaling.polling_interval_s, "polling_interval_s"),
    ):
        _ticks_per(period_s, tick_s, name)
    arrivals = sample_arrivals(rates_per_tick(trace, tick_s), tick_s, seed, poisson=poisson)
    return Scenario(float(trace.at_s[0]), tick_s, arrivals, cluster, scaling)


def _initial_replicas(scenario: Scenario) -> int:
    cluster, scaling = scenario.cluster, scenario.scaling
    if cluster.initial_replicas is not None:
        return cluster.initial_replicas
    first = float(scenario.arrivals[0]) / (cluster.capacity_rps * scenario.tick_s)
    return min(max(math.ceil(first - 1e-9), scaling.min_replica_count), scaling.max_replica_count)


def run_policy(scenario: Scenario, name: str, policy: Policy) -> Outcome:
    """Simulate one policy on `scenario`."""
    dt, start_s, scaling = scenario.tick_s, scenario.start_s, scenario.scaling
    arrivals = scenario.arrivals.tolist()
    replicas = _initial_replicas(scenario)
    cluster = Cluster(scenario.cluster, dt, len(arrivals), replicas)
    autoscaler = Autoscaler(scaling, replicas, start_s)
    hpa_every = _ticks_per(scaling.hpa_sync_s, dt, "hpa_sync_s")
    keda_every = _ticks_per(scaling.polling_interval_s, dt, "polling_interval_s")
    target = policy.target
    if not target >= 0.001:
        raise ValueError(f"policy {name}: target is {target}; it must be at least 0.001 (KEDA's precision)")
    scale_events = 0
    for tick, arriving in enumerate(arrivals):
        now_s = start_s + tick * dt
        hpa, keda = tick % hpa_every == 0, tick % keda_every == 0
        if tick and (hpa or keda):
            answer = policy.metric(now_s)
            current = cluster.replicas
            desired = autoscaler.hpa_sync(now_s, answer.value, target, current) if hpa else current
            if keda:
                desired = autoscaler.keda_poll(now_s, answer.active, desired)
            if desired != current:
                cluster.scale(tick, desired)
                scale_events += 1
        cluster.step(tick, arriving)
        replicas = cluster.replicas
        policy.observe(
            Signals(
                at_s=start_s + (tick + 1) * dt,
                in_flight=cluster.in_flight,
                waiting=cluster.waiting,
                arrival_rate=cluster.arrival_rate,
                ready_replicas=cluster.ready,
                desired_replicas=replicas,
                current_replicas=replicas,
            )
        )
    return summarize(name, cluster.log(), scale_events, scenario.cluster, start_s=start_s, tick_s=dt)


def simulate(
    trace: Trace,
    policies: Mapping[str, PolicyFactory],
    cluster: ClusterConfig,
    scaling: ScalingConfig,
    *,
    seed: int = 0,
    tick_s: float = DEFAULT_TICK_S,
    poisson: bool = True,
    reference: str | None = "oracle",
) -> dict[str, Outcome]:
    """Run every policy on the same sampled demand; over-provisioning is relative to `reference`."""
    inputs = prepare(trace, cluster, scaling, seed=seed, tick_s=tick_s, poisson=poisson)
    outcomes = {name: run_policy(inputs, name, make(inputs)) for name, make in policies.items()}
    return against_reference(outcomes, reference)
