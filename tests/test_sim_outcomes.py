"""Outcomes from a hand-made per-tick log (scaler.sim.outcomes)."""

from __future__ import annotations

import numpy as np
import pytest

from scaler.sim.cluster import ClusterLog
from scaler.sim.outcomes import Outcome, against_reference, summarize
from scaler.sim.service import ClusterConfig

CLUSTER = ClusterConfig(concurrency=10, service_time_s=1.0, slo_s=2.0, usd_per_gpu_hour=4.0)


def _log(
    edge_wait_s: list[float], admitted: float = 10.0, dropped: float = 0.0, replicas: int = 2
) -> ClusterLog:
    ticks = len(edge_wait_s) - 1
    return ClusterLog(
        offered=np.full(ticks, admitted + dropped),
        admitted=np.full(ticks, admitted),
        dropped=np.full(ticks, dropped),
        timed_out=np.zeros(ticks),
        edge_wait_s=np.asarray(edge_wait_s, dtype=np.float64),
        provisioned=np.full(ticks, replicas, dtype=np.int64),
        ready=np.full(ticks, replicas, dtype=np.int64),
        in_flight=np.zeros(ticks),
        billed_gpus=np.full(ticks, replicas, dtype=np.int64),
        nodes=np.zeros(ticks, dtype=np.int64),
    )


def _summary(log: ClusterLog) -> Outcome:
    return summarize("p", log, scale_events=3, cluster=CLUSTER, start_s=100.0, tick_s=5.0)


def test_waits_spread_evenly_between_cohort_edges() -> None:
    # Every cohort waits uniformly 0..10 s: 90 % wait over the 1 s budget; the 99th percentile is 9.9 s.
    outcome = _summary(_log([0.0, 10.0] * 12 + [0.0]))
    assert outcome.minutes.over_slo.tolist() == pytest.approx([0.9, 0.9])
    assert outcome.minutes.quantile_latency_s.tolist() == pytest.approx([1.0 + 9.9, 1.0 + 9.9])
    assert outcome.slo_violation_minutes == 2
    assert outcome.over_slo_fraction == pytest.approx(0.9)


def test_a_minute_is_violating_only_above_one_percent_late() -> None:
    # Edge 3 waits 100 s: cohorts 2 and 3 (2 of minute 0's 12) wait 0..100 s, 99 % of them late.
    # Edge 15 waits 1.05 s: 2 cohorts of minute 1 are late for 0.05 / 1.05 of them: 0.79 %, fine.
    waits = [0.0] * 25
    waits[3], waits[15] = 100.0, 1.05
    outcome = _summary(_log(waits))
    assert outcome.minutes.over_slo[0] == pytest.approx(2 * 0.99 / 12)
    assert outcome.minutes.over_slo[1] == pytest.approx(2 * (0.05 / 1.05) / 12, rel=1e-4)
    assert outcome.slo_violation_minutes == 1
    assert 1.0 < outcome.minutes.quantile_latency_s[1] < 2.0


def test_dropped_requests_are_late_and_a_minute_of_drops_has_no_finite_quantile() -> None:
    outcome = _summary(_log([0.0] * 13, admitted=9.0, dropped=1.0))
    assert outcome.dropped == pytest.approx(12.0)
    assert outcome.over_slo_fraction == pytest.approx(0.1)
    assert outcome.minutes.quantile_latency_s[0] == np.inf


def test_cost_counts_every_provisioned_replica_second() -> None:
    outcome = _summary(_log([0.0] * 721, replicas=3))  # one hour
    assert outcome.replica_s == 3 * 3600
    assert outcome.gpu_hours == pytest.approx(3.0) and outcome.cost_usd == pytest.approx(12.0)
    assert outcome.scale_events == 3 and outcome.minutes.at_s[:2].tolist() == [100.0, 160.0]


def test_over_provisioning_is_relative_to_the_reference() -> None:
    lean, fat = _summary(_log([0.0] * 13, replicas=2)), _summary(_log([0.0] * 13, replicas=3))
    both = against_reference({"oracle": lean, "reactive": fat}, "oracle")
    assert both["oracle"].over_provisioning == 0.0
    assert both["reactive"].over_provisioning == pytest.approx(0.5)
    assert against_reference({"reactive": fat}, "oracle")["reactive"].over_provisioning is None
