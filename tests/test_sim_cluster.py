"""Replicas, start-up delay and the FIFO queue of the simulated service (scaler.sim.cluster)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.sim.cluster import Cluster
from scaler.sim.service import ClusterConfig

# 10 slots x 1 s per request: one replica serves 10 requests/s, 50 per 5-s tick.
CONFIG = ClusterConfig(
    concurrency=10, service_time_s=1.0, startup_delay_s=12.0, startup_p95_s=12.0, slo_s=2.0
)


def test_demand_exactly_at_capacity_never_waits() -> None:
    cluster = Cluster(CONFIG, tick_s=5.0, ticks=20, replicas=3)
    for tick in range(20):
        cluster.step(tick, 150.0)
    log = cluster.log()
    assert log.edge_wait_s.max() == 0.0
    assert cluster.waiting == 0.0
    assert cluster.in_flight == pytest.approx(30.0)  # every slot busy
    assert cluster.offered_total == pytest.approx(3000.0)


def test_overload_waits_grow_as_the_queue_does() -> None:
    # 20 requests/s into 10/s: the request arriving at t = 5k starts when 10/s has served 100k, at 10k.
    cluster = Cluster(CONFIG, tick_s=5.0, ticks=4, replicas=1)
    for tick in range(4):
        cluster.step(tick, 100.0)
    log = cluster.log()
    assert log.edge_wait_s[:3].tolist() == pytest.approx([0.0, 5.0, 10.0])
    assert cluster.waiting == pytest.approx(200.0)
    assert cluster.in_flight == pytest.approx(210.0)
    # Still queued at the end: the wait counted until the end of the run (lower bound).
    assert log.edge_wait_s[3] == pytest.approx(5.0)


def test_without_ready_replicas_requests_wait_then_drain_at_the_new_capacity() -> None:
    cluster = Cluster(CONFIG, tick_s=5.0, ticks=5, replicas=0)
    cluster.step(0, 50.0)  # nobody serves: all 50 wait
    cluster.scale(1, 2)  # ready 12 s later: from tick 4 (t=20)
    for tick in range(1, 4):
        cluster.step(tick, 0.0)
        assert cluster.waiting == 50.0 and cluster.ready == 0
    cluster.step(4, 0.0)  # 2 x 10/s = 100 per tick: all start at t=20
    assert cluster.ready == 2 and cluster.waiting == 0.0
    assert cluster.log().edge_wait_s[0] == pytest.approx(20.0)


def test_start_up_delay_rounds_up_to_a_tick_and_is_billed() -> None:
    cluster = Cluster(CONFIG, tick_s=5.0, ticks=5, replicas=1)
    cluster.scale(0, 3)
    for tick in range(5):
        cluster.step(tick, 0.0)
    log = cluster.log()
    assert log.provisioned.tolist() == [3, 3, 3, 3, 3]
    assert log.ready.tolist() == [1, 1, 1, 3, 3]  # 12 s -> ready from tick 3 (t=15)


def test_scale_down_removes_starting_replicas_first_newest_first() -> None:
    cluster = Cluster(CONFIG, tick_s=5.0, ticks=6, replicas=2)
    cluster.scale(0, 3)  # ready at tick 3
    cluster.step(0, 0.0)
    cluster.scale(1, 4)  # ready at tick 4
    cluster.step(1, 0.0)
    cluster.scale(2, 3)  # drops the one asked for at tick 1
    for tick in range(2, 6):
        cluster.step(tick, 0.0)
    assert cluster.log().ready.tolist() == [2, 2, 2, 3, 3, 3]
    cluster.scale(6, 1)
    assert cluster.replicas == 1 and cluster.ready == 1


def test_a_full_queue_drops_the_newest_arrivals() -> None:
    config = ClusterConfig(concurrency=10, service_time_s=1.0, slo_s=2.0, max_queue=20)
    cluster = Cluster(config, tick_s=5.0, ticks=2, replicas=1)
    cluster.step(0, 100.0)  # 50 served, 50 left, 20 may wait
    cluster.step(1, 100.0)  # 50 served of the 20 + 100, 20 wait again
    log = cluster.log()
    assert log.dropped.tolist() == [30.0, 50.0]
    assert log.admitted.tolist() == [70.0, 50.0]
    assert cluster.waiting == pytest.approx(20.0)


def test_with_no_replica_ready_one_replicas_worth_may_wait() -> None:
    config = ClusterConfig(concurrency=10, service_time_s=1.0, slo_s=2.0, max_queue=5)
    cluster = Cluster(config, tick_s=5.0, ticks=1, replicas=0)
    cluster.step(0, 8.0)
    assert cluster.waiting == 5.0 and cluster.log().dropped.tolist() == [3.0]


def test_invalid_settings_name_every_problem() -> None:
    with pytest.raises(ValueError, match=r"concurrency is 0.*slo_s \(1\.0\) must exceed service_time_s"):
        ClusterConfig(concurrency=0, service_time_s=2.0, slo_s=1.0)


@settings(max_examples=60, deadline=None)
@given(
    arrivals=st.lists(st.floats(min_value=0, max_value=500), min_size=1, max_size=40),
    replicas=st.lists(st.integers(min_value=0, max_value=6), min_size=40, max_size=40),
    max_queue=st.one_of(st.none(), st.integers(min_value=0, max_value=30)),
)
def test_requests_are_conserved_and_waits_are_non_negative(
    arrivals: list[float], replicas: list[int], max_queue: int | None
) -> None:
    config = ClusterConfig(
        concurrency=4,
        service_time_s=3.0,
        startup_delay_s=7.0,
        slo_s=5.0,
        max_queue=max_queue,
        client_timeout_s=None,
    )
    cluster = Cluster(config, tick_s=5.0, ticks=len(arrivals), replicas=1)
    served = 0.0
    for tick, arriving in enumerate(arrivals):
        cluster.scale(tick, replicas[tick])
        before = cluster.waiting
        cluster.step(tick, arriving)
        served += before + cluster.log().admitted[tick] - cluster.waiting
        assert cluster.waiting >= 0 and cluster.in_flight >= 0
    log = cluster.log()
    assert (log.edge_wait_s >= 0).all()
    assert log.admitted.sum() + log.dropped.sum() == pytest.approx(sum(arrivals))
    assert served + cluster.waiting == pytest.approx(log.admitted.sum(), abs=1e-6)
