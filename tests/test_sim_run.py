"""Closed-loop runs on hand-computable traces (scaler.sim.run, policies, outcomes)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scaler.policy import Decision, decide
from scaler.sim import (
    ClusterConfig,
    Oracle,
    Outcome,
    Reactive,
    ScalingConfig,
    Scenario,
    Signals,
    baselines,
    oracle,
    prepare,
    reactive,
    run_policy,
    simulate,
)
from scaler.traces import Trace
from scaler.trigger import TriggerConfig

# One replica: 10 slots x 1 s per request = 10 requests/s. SLO 2 s: a request may wait 1 s.
CLUSTER = ClusterConfig(
    concurrency=10, service_time_s=1.0, startup_delay_s=60.0, startup_p95_s=60.0, slo_s=2.0
)
SCALING = ScalingConfig(behavior=True)


def trace_of(*segments: tuple[float, float], step_s: float = 5.0) -> Trace:
    """A trace of (duration_s, requests/s) segments, starting at t=0."""
    values = np.concatenate([np.full(round(duration / step_s), rate) for duration, rate in segments])
    return Trace("test", step_s * np.arange(values.size, dtype=np.float64), values, step_s)


def violating_minutes(outcome: Outcome) -> list[int]:
    return np.flatnonzero(outcome.minutes.over_slo > 0.01).tolist()


def test_a_step_up_costs_reactive_a_known_window_and_the_oracle_nothing() -> None:
    # 10/s (1 replica's worth) for 10 min, then 20/s. Reactive first sees the queue at the HPA sync at
    # t=615 and asks for 5 replicas (scale-up limit), ready at t=675; 10 more are ready at t=690, and
    # the queue is gone before t=695. Requests from t=600 to ~t=690 wait > 1 s: minutes 10 and 11.
    # Without a client timeout (with it, the requests waiting over 30 s would be dropped instead).
    trace = trace_of((600, 10.0), (600, 20.0))
    patient = dataclasses.replace(CLUSTER, client_timeout_s=None)
    outcomes = simulate(trace, baselines(target=10.0), patient, SCALING, poisson=False)
    late = outcomes["reactive"]
    assert violating_minutes(late) == [10, 11]
    assert late.minutes.over_slo[10] == pytest.approx(59 / 60)  # all but the arrivals of t=600-601
    # By hand, arrivals in (601 s, 692.5 s) wait > 1 s: 91.5 s x 20/s of 18,000 requests; the cohorts'
    # linear waits put the end of the window up to one tick off.
    assert late.over_slo_fraction == pytest.approx(91.5 * 20 / 18_000, rel=0.02)
    assert late.minutes.quantile_latency_s[10] > 30
    # 30 % headroom holds 2 replicas from the first sync, enough for 20/s: no violation, more cost.
    assert outcomes["fixed_buffer"].slo_violation_minutes == 0
    assert outcomes["fixed_buffer"].replica_s > 1.5 * (540 + 660 * 2)
    # The oracle asks for 2 at the sync at t=540 (600 - 60 s start-up is within its look-ahead),
    # ready exactly when the step comes: nothing waits. 540 s x 1 + 660 s x 2 replicas.
    best = outcomes["oracle"]
    assert best.slo_violation_minutes == 0 and best.over_slo_fraction == 0.0
    assert best.replica_s == 540 + 660 * 2
    assert best.scale_events == 1 and best.over_provisioning == 0.0
    assert outcomes["reactive"].over_provisioning is not None and outcomes["reactive"].over_provisioning > 1


def test_a_longer_start_up_delay_widens_reactive_window() -> None:
    trace = trace_of((600, 10.0), (900, 20.0))
    slow = dataclasses.replace(CLUSTER, startup_delay_s=180.0, startup_p95_s=180.0)
    outcomes = simulate(trace, {"reactive": reactive(10.0), "oracle": oracle()}, slow, SCALING, poisson=False)
    # First new replicas ready at t = 615 + 180 = 795, the queue gone a little later (minute 13).
    assert violating_minutes(outcomes["reactive"]) == [10, 11, 12, 13]
    assert outcomes["oracle"].slo_violation_minutes == 0


def test_constant_demand_at_capacity_never_violates_and_bills_replicas_times_hours() -> None:
    cluster = dataclasses.replace(CLUSTER, gpus_per_replica=2, usd_per_gpu_hour=2.5)
    trace = trace_of((3600, 30.0))
    outcome = simulate(trace, {"reactive": reactive(10.0)}, cluster, SCALING, poisson=False)["reactive"]
    assert outcome.slo_violation_minutes == 0 and outcome.over_slo_fraction == 0.0
    assert outcome.gpu_hours == pytest.approx(3 * 1.0 * 2)
    assert outcome.cost_usd == pytest.approx(15.0)
    assert outcome.requests == pytest.approx(30.0 * 3600)
    assert outcome.scale_events == 0 and outcome.dropped == 0.0
    assert outcome.over_provisioning is None  # no oracle ran
    assert np.allclose(outcome.minutes.quantile_latency_s, 1.0)
    assert outcome.minutes.at_s.size == 60 and outcome.ticks.at_s.size == 720


def test_activation_from_zero_then_the_hpa_takes_over() -> None:
    cluster = dataclasses.replace(CLUSTER, startup_delay_s=10.0, startup_p95_s=10.0, initial_replicas=0)
    trace = trace_of((10, 0.0), (290, 2.0))
    outcome = simulate(trace, {"reactive": reactive(1.0)}, cluster, SCALING, poisson=False)["reactive"]
    provisioned = outcome.ticks.provisioned
    # Load from t=10 queues (nobody serves); KEDA's poll at t=30 (tick 6) activates 1 replica; the
    # HPA's next sync, t=45 (tick 9), scales on the queue (max(1 + 4, 2 x 1) = 5 at most).
    assert provisioned[:6].tolist() == [0] * 6
    assert provisioned[6:9].tolist() == [1, 1, 1]
    assert provisioned[9] == 5
    assert outcome.ticks.ready[8] == 1  # ready 10 s after t=30


def test_cooldown_returns_to_min_replica_count_zero() -> None:
    cluster = dataclasses.replace(CLUSTER, startup_delay_s=0.0, startup_p95_s=0.0, initial_replicas=1)
    trace = trace_of((60, 1.0), (600, 0.0))
    outcome = simulate(trace, {"reactive": reactive(1.0)}, cluster, SCALING, poisson=False)["reactive"]
    provisioned = outcome.ticks.provisioned
    # Last active at the poll at t=60 (in-flight 1 at the end of the load); inactive for more than
    # cooldownPeriod (300 s) first at the poll at t=390 (tick 78). The HPA alone keeps 1.
    assert set(provisioned[:78].tolist()) == {1}
    assert set(provisioned[78:].tolist()) == {0}


def test_a_seed_fixes_the_run_and_another_seed_changes_it() -> None:
    trace = trace_of((1200, 8.0), (1200, 25.0), (1200, 4.0))
    first = simulate(trace, baselines(target=8.0), CLUSTER, SCALING, seed=7)
    again = simulate(trace, baselines(target=8.0), CLUSTER, SCALING, seed=7)
    other = simulate(trace, baselines(target=8.0), CLUSTER, SCALING, seed=8)
    for name, outcome in first.items():
        twin = again[name]
        assert (outcome.gpu_hours, outcome.slo_violation_minutes, outcome.over_slo_fraction) == (
            twin.gpu_hours,
            twin.slo_violation_minutes,
            twin.over_slo_fraction,
        )
        assert np.array_equal(outcome.ticks.in_flight, twin.ticks.in_flight)
    assert not np.array_equal(first["reactive"].ticks.demand_rps, other["reactive"].ticks.demand_rps)


def test_the_oracle_sees_past_the_hpa_tolerance() -> None:
    # 20 -> 21 replicas' worth is within the 10 % tolerance: value 21 would change nothing.
    trace = trace_of((600, 200.0), (600, 210.0))
    cluster = dataclasses.replace(CLUSTER, startup_delay_s=30.0, startup_p95_s=30.0)
    outcome = simulate(trace, {"oracle": oracle()}, cluster, SCALING, poisson=False)["oracle"]
    assert outcome.slo_violation_minutes == 0
    assert outcome.ticks.provisioned.max() == 23  # the fewest past the tolerance: ceil(20 x 1.1 + 0.001)


def test_the_oracle_starts_early_enough_for_the_scale_up_limit() -> None:
    # 1 -> 20 replicas at once takes three HPA periods (5, 10, 20): the oracle starts three early.
    trace = trace_of((600, 10.0), (600, 200.0))
    outcome = simulate(trace, {"oracle": oracle()}, CLUSTER, SCALING, poisson=False)["oracle"]
    assert outcome.slo_violation_minutes == 0
    assert outcome.ticks.ready[120] == 20


@pytest.mark.parametrize(
    ("max_queue", "peak_replicas"),
    [
        pytest.param(None, 1, id="unbounded: the queue absorbs the burst within the 29 s budget"),
        pytest.param(20, 3, id="20 per replica: 150 arrivals need 3 x (50 served + 20 queued)"),
    ],
)
def test_the_oracle_lets_a_queue_absorb_a_burst_only_as_far_as_it_may(
    max_queue: int | None, peak_replicas: int
) -> None:
    cluster = dataclasses.replace(CLUSTER, slo_s=30.0, max_queue=max_queue)
    trace = trace_of((300, 10.0), (5, 30.0), (295, 10.0))
    outcome = simulate(trace, {"oracle": oracle()}, cluster, SCALING, poisson=False)["oracle"]
    assert outcome.slo_violation_minutes == 0 and outcome.dropped == 0.0
    assert outcome.ticks.provisioned.max() == peak_replicas


class _DecidingPolicy:
    """Answers with the scaler's real decision rule: a `scaler.policy.Decision` is an `Answer`."""

    def __init__(self, threshold: float) -> None:
        self.config = TriggerConfig(threshold=threshold)
        self.target = threshold
        self.latest: Signals | None = None

    def observe(self, signals: Signals) -> None:
        self.latest = signals

    def metric(self, now_s: float) -> Decision:
        assert self.latest is not None and self.latest.at_s == now_s  # only the past, up to now
        return decide(now_s, self.latest.in_flight, self.config)


def test_a_policy_returning_the_scalers_decision_runs_like_reactive() -> None:
    trace = trace_of((600, 10.0), (600, 20.0), (600, 5.0))
    inputs = prepare(trace, CLUSTER, SCALING, seed=3)
    deciding = run_policy(inputs, "decide", _DecidingPolicy(10.0))
    plain = run_policy(inputs, "reactive", Reactive(10.0))
    assert deciding.gpu_hours == plain.gpu_hours
    assert np.array_equal(deciding.ticks.provisioned, plain.ticks.provisioned)


def test_policies_are_built_fresh_for_each_run_from_the_scenario() -> None:
    seen: list[Scenario] = []

    def build(inputs: Scenario) -> Oracle:
        seen.append(inputs)
        return Oracle.for_scenario(inputs)

    trace = trace_of((300, 10.0))
    simulate(trace, {"a": build, "b": build}, CLUSTER, SCALING, seed=1)
    assert len(seen) == 2 and seen[0] is seen[1]
    assert seen[0].ticks == 60 and seen[0].arrivals.sum() > 0


def test_ticks_that_do_not_divide_the_sync_periods_are_refused() -> None:
    with pytest.raises(ValueError, match=r"hpa_sync_s \(15.0 s\) must be a whole number of ticks of 4.0 s"):
        simulate(trace_of((600, 1.0), step_s=4.0), {}, CLUSTER, ScalingConfig(), tick_s=4.0)
