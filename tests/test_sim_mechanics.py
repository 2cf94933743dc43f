"""Each mechanic of the simulator on a case small enough to work out by hand (scaler.sim)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from scaler.sim import (
    ClusterConfig,
    Metric,
    PipelineConfig,
    ScalingConfig,
    Scenario,
    Signals,
    prepare,
    run_policy,
)
from scaler.sim.cluster import Cluster
from scaler.sim.trigger_settings import PredictiveSettings
from scaler.traces import Trace

# One replica: 10 slots x 1 s per request = 10 requests/s, 50 per 5-s tick.
FIXED = ClusterConfig(concurrency=10, service_time_s=1.0, startup_delay_s=10.0, startup_p95_s=10.0, slo_s=2.0)


def trace_of(*segments: tuple[float, float], step_s: float = 5.0) -> Trace:
    values = np.concatenate([np.full(round(duration / step_s), rate) for duration, rate in segments])
    return Trace("test", step_s * np.arange(values.size, dtype=np.float64), values, step_s)


class Recorder:
    """A policy answering a fixed value (target 1) and keeping every scrape it sees."""

    target = 1.0

    def __init__(self, value: float) -> None:
        self.value = value
        self.seen: list[Signals] = []

    def observe(self, signals: Signals) -> None:
        self.seen.append(signals)

    def metric(self, now_s: float) -> Metric:
        return Metric(self.value, self.value > 0)


# --- start-up delays ---------------------------------------------------------------------------


def test_start_up_is_lognormal_with_the_given_median_and_95th_percentile() -> None:
    config = dataclasses.replace(FIXED, startup_delay_s=100.0, startup_p95_s=200.0)
    assert config.startup_sigma == pytest.approx(math.log(2) / 1.6448536, rel=1e-6)
    cluster = Cluster(config, tick_s=1.0, ticks=1, replicas=0, seed=7)
    cluster.scale(0, 4000)
    delays = np.asarray(cluster._starting, dtype=np.float64)  # ready ticks = delays at 1-s ticks
    assert np.median(delays) == pytest.approx(100.0, rel=0.05)
    assert np.percentile(delays, 95) == pytest.approx(200.0, rel=0.05)


def test_start_up_defaults_to_a_p95_of_one_and_a_half_medians_and_can_be_fixed() -> None:
    assert ClusterConfig(startup_delay_s=120.0).startup_p95 == 180.0
    cluster = Cluster(FIXED, tick_s=5.0, ticks=1, replicas=0, seed=1)
    cluster.scale(0, 3)
    assert cluster._starting == [2, 2, 2]  # 10 s at 5-s ticks, for every replica
    with pytest.raises(ValueError, match=r"startup_p95_s is 5\.0; it must be at least the median"):
        ClusterConfig(startup_delay_s=10.0, startup_p95_s=5.0)


def test_every_policy_meets_the_same_start_up_delays_in_the_same_order() -> None:
    config = dataclasses.replace(FIXED, startup_delay_s=60.0, startup_p95_s=120.0)
    first, second = (Cluster(config, tick_s=5.0, ticks=1, replicas=0, seed=3) for _ in range(2))
    first.scale(0, 5)
    second.scale(0, 2)
    second.scale(0, 5)
    assert first._starting == second._starting


# --- the metric pipeline -----------------------------------------------------------------------


def test_rate_is_the_counter_increase_over_the_scrapes_of_the_last_minute() -> None:
    # 0 requests/s for 60 s, then 10/s. Scrapes every 15 s; rate()[1m] at t=75 spans the scrapes at
    # 30, 45, 60 and 75 s: (150 - 0) / 45 s; at t=120, all within the load: (1200 - 750) / 45 s = 10.
    recorder = Recorder(1.0)
    scenario = prepare(trace_of((60, 0.0), (120, 10.0)), FIXED, ScalingConfig(), poisson=False)
    run_policy(scenario, "recorder", recorder)
    by_time = {s.at_s: s for s in recorder.seen}
    assert sorted(by_time) == [15.0 * k for k in range(1, 13)]
    assert by_time[60.0].arrival_rate == 0.0
    assert by_time[75.0].arrival_rate == pytest.approx(150 / 45)
    assert by_time[90.0].arrival_rate == pytest.approx(300 / 45)
    assert by_time[120.0].arrival_rate == pytest.approx(10.0)


def test_replicas_reach_a_policy_one_scrape_late() -> None:
    # Asked for 3 from the first HPA sync (t=15 s); the scrape at 15 s still shows 1, the one at 30 s
    # shows 3 (kube-state-metrics is itself scraped).
    config = dataclasses.replace(FIXED, initial_replicas=1)
    recorder = Recorder(3.0)
    scenario = prepare(trace_of((60, 1.0)), config, ScalingConfig(), poisson=False)
    outcome = run_policy(scenario, "recorder", recorder)
    assert outcome.ticks.provisioned[3] == 3  # from tick 3 (t=15 s)
    assert [s.desired_replicas for s in recorder.seen[:3]] == [1, 1, 3]
    # Ready 10 s after t=15 (at t=25): in the counts of the 30 s scrape, shown at the 45 s one.
    assert [s.ready_replicas for s in recorder.seen[:3]] == [1, 1, 3]


def test_without_lag_and_with_a_30_s_scrape_a_policy_sees_fewer_fresher_scrapes() -> None:
    pipeline = PipelineConfig(scrape_interval_s=30.0, rate_window_s=60.0, replicas_lag_scrapes=0)
    recorder = Recorder(2.0)
    scenario = prepare(trace_of((120, 1.0)), FIXED, ScalingConfig(), poisson=False, pipeline=pipeline)
    run_policy(scenario, "recorder", recorder)
    assert [s.at_s for s in recorder.seen] == [30.0, 60.0, 90.0, 120.0]
    assert recorder.seen[0].desired_replicas == 2  # scaled at t=15, seen at once at t=30
    with pytest.raises(ValueError, match="rate_window_s"):
        PipelineConfig(scrape_interval_s=15.0, rate_window_s=20.0)


# --- bounded waiting ---------------------------------------------------------------------------


def test_requests_waiting_past_the_client_timeout_are_dropped() -> None:
    # No replica: the 50 requests of tick 0 give up at the start of tick 6 (30 s, the timeout).
    cluster = Cluster(FIXED, tick_s=5.0, ticks=8, replicas=0)
    cluster.step(0, 50.0)
    for tick in range(1, 6):
        cluster.step(tick, 0.0)
        assert cluster.waiting == 50.0
    cluster.step(6, 0.0)
    log = cluster.log()
    assert cluster.waiting == 0.0
    assert log.dropped[0] == log.timed_out[0] == 50.0 and log.admitted[0] == 0.0
    assert log.edge_wait_s[0] == 30.0


def test_without_a_timeout_the_same_requests_wait_until_served() -> None:
    patient = dataclasses.replace(FIXED, client_timeout_s=None)
    cluster = Cluster(patient, tick_s=5.0, ticks=10, replicas=0)
    cluster.step(0, 50.0)
    for tick in range(1, 8):
        cluster.step(tick, 0.0)
    cluster.scale(8, 1)  # ready at tick 10 (10 s)
    assert cluster.waiting == 50.0 and cluster.log().dropped.sum() == 0.0


def test_dropped_requests_count_as_violations() -> None:
    config = dataclasses.replace(FIXED, initial_replicas=0)
    scenario = prepare(trace_of((60, 10.0)), config, ScalingConfig(min_replica_count=0), poisson=False)
    outcome = run_policy(scenario, "never", Recorder(0.0))  # never active: nobody serves
    assert outcome.dropped == outcome.timed_out > 0
    assert outcome.slo_violation_minutes == 1 and outcome.over_slo_fraction > 0.4


# --- KEDA fallback -------------------------------------------------------------------------------


def test_the_fallback_applies_from_the_third_failed_read() -> None:
    # The scaler is down from t=300 s. Reads (HPA syncs and KEDA polls) at 300, 315, 330 fail; from the
    # third, the HPA gets fallback.replicas x target: from 2 to min(6, max(2 x 2, 4)) = 4 at t=330,
    # then 6 at t=345 (legacy scale-up limit).
    config = dataclasses.replace(FIXED, initial_replicas=2)
    with_fallback = ScalingConfig(fallback_replicas=6)
    outcomes = {}
    for name, scaling in (("fallback", with_fallback), ("none", ScalingConfig())):
        scenario = prepare(trace_of((900, 1.0)), config, scaling, poisson=False, outages=((300.0, 900.0),))
        outcomes[name] = run_policy(scenario, name, Recorder(2.0)).ticks.provisioned
    at = outcomes["fallback"]
    assert at[65] == 2 and at[66] == 4 and at[69] == 6  # ticks of t=325, 330, 345
    assert set(outcomes["none"].tolist()) == {2}  # without `fallback` the HPA keeps the replicas


# --- GPU nodes -----------------------------------------------------------------------------------


def test_new_replicas_wait_for_a_node_and_gpu_hours_are_billed_per_node() -> None:
    # 4 GPUs per node, 1 per replica; node start-up 60 s, replica start-up 10 s, unneeded after 600 s.
    config = dataclasses.replace(FIXED, gpus_per_node=4, node_startup_s=60.0)
    cluster = Cluster(config, tick_s=5.0, ticks=200, replicas=4)
    assert cluster.nodes == 1
    cluster.scale(0, 6)  # 2 pending: a second node, ready at tick 12; the replicas at tick 14
    for tick in range(0, 20):
        cluster.step(tick, 0.0)
    log = cluster.log()
    assert log.ready[:14].tolist() == [4] * 14 and log.ready[14] == 6
    assert set(log.billed_gpus[:20].tolist()) == {8} and set(log.provisioned[:20].tolist()) == {6}
    cluster.scale(20, 4)  # the second node is unneeded from tick 20 and removed 600 s later
    for tick in range(20, 200):
        cluster.step(tick, 0.0)
    billed = cluster.log().billed_gpus
    assert billed[139] == 8 and billed[140] == 4 and cluster.nodes == 1


def test_without_nodes_gpu_hours_are_billed_per_replica() -> None:
    config = dataclasses.replace(FIXED, gpus_per_replica=2)
    cluster = Cluster(config, tick_s=5.0, ticks=2, replicas=3)
    cluster.step(0, 0.0)
    assert cluster.log().billed_gpus[0] == 6 and cluster.nodes == 0


# --- predictive measures its service time ----------------------------------------------------------


def test_predictive_measures_its_service_time_by_default() -> None:
    scenario = Scenario(0.0, 5.0, np.zeros(10), FIXED, ScalingConfig())
    assert PredictiveSettings().trigger(scenario).service_time_s is None
    assert PredictiveSettings(measure_service_time=False).trigger(scenario).service_time_s == 1.0
