"""The value raised past the HPA's tolerance when the replicas are known (scaler.policy.past_tolerance)."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from scaler.policy import decide, past_tolerance
from scaler.sim.autoscaler import hpa_desired
from scaler.trigger import parse_trigger

PREDICTIVE = {"source": "replay", "trace": "t.csv", "threshold": "8", "mode": "predictive"}
CONFIG = parse_trigger(PREDICTIVE)


@pytest.mark.parametrize(
    ("value", "replicas", "expected"),
    [
        pytest.param(84.0, 10, 88.00125, id="10.5 replicas' worth at 10: just past 1.1 x 10 x 8"),
        pytest.param(60.0, 7, 61.60125, id="7.5 at 7: past 7.7, so 8"),
        pytest.param(89.0, 10, 89.0, id="beyond the tolerance already: as is"),
        pytest.param(80.0, 10, 80.0, id="exactly the replicas' worth: no replica needed"),
        pytest.param(70.0, 10, 70.0, id="below: scale-down is left to the HPA"),
        pytest.param(5.0, 0, 5.0, id="at zero replicas activation scales from zero"),
        pytest.param(88.0, 10, 88.00125, id="exactly 1.1: within for Kubernetes 1.33+, so raised"),
        pytest.param(80.0001, 10, 80.0001, id="KEDA sends 80.000: no replica needed"),
        pytest.param(88.0006, 10, 88.00125, id="88.001 rounded but 88.000 truncated: raised"),
    ],
)
def test_past_tolerance_by_hand(value: float, replicas: int, expected: float) -> None:
    assert past_tolerance(value, 8.0, replicas, 0.1) == pytest.approx(expected, abs=1e-9)


def test_the_hpa_then_adds_the_replica_it_ignored() -> None:
    assert hpa_desired(84.0, 8.0, 10, 0.1) == 10  # the tolerance keeps 10 for 10.5 replicas' worth
    assert hpa_desired(past_tolerance(84.0, 8.0, 10, 0.1), 8.0, 10, 0.1) == 12  # 11 is unreachable
    assert hpa_desired(past_tolerance(60.0, 8.0, 7, 0.1), 8.0, 7, 0.1) == 8


def _within(value: float, threshold: float, replicas: int, tolerance: float) -> bool:
    """The HPA's tolerance check on what KEDA sends, both ends included, whether KEDA truncates its
    thousandths (older) or rounds them (newer)."""
    return any(
        abs(milli(value) / (max(milli(threshold), 1) * replicas) - 1.0) <= tolerance + 1e-12
        for milli in (lambda x: int(x * 1000), lambda x: round(x * 1000))
    )


@example(value=3.6664, threshold=3.3333, replicas=1, tolerance=0.1)  # KEDA sends 3.666: 2 replicas' worth
@example(value=88.0, threshold=8.0, replicas=10, tolerance=0.1)  # exactly 1.1
@example(value=0.1875, threshold=0.1875, replicas=1, tolerance=0.0)  # one replica's worth either way
@example(value=80.0, threshold=7.9996, replicas=10, tolerance=0.1)  # more only as older KEDA truncates
@example(value=60.0, threshold=1.0, replicas=59, tolerance=0.1)  # 64.901 would truncate to 64.900
@given(
    value=st.floats(min_value=0.0, max_value=1e6),
    threshold=st.floats(min_value=0.001, max_value=1e3),
    replicas=st.integers(min_value=0, max_value=1000),
    tolerance=st.floats(min_value=0.0, max_value=0.5),
)
def test_the_hpa_gets_at_least_the_replicas_the_value_needs(
    value: float, threshold: float, replicas: int, tolerance: float
) -> None:
    raised = past_tolerance(value, threshold, replicas, tolerance)
    assert raised >= value
    per_replica = max(round(threshold * 1000), 1) / 1000
    needed = math.ceil(round(value * 1000) / round(per_replica * 1000))
    if replicas > 0 and needed > replicas:
        assert not _within(raised, threshold, replicas, tolerance)
        proposed = hpa_desired(raised, per_replica, replicas, tolerance)
        assert proposed >= needed
        # Never more than the tolerance forces: one past ceil(replicas x (1 + tolerance)).
        assert proposed <= max(needed, math.ceil(replicas * (1 + tolerance)) + 1)
    if raised > value:
        assert raised - value <= per_replica * replicas * tolerance + 0.001


def test_decide_raises_only_with_replicas_and_says_so() -> None:
    blind = decide(0.0, 50.0, CONFIG, 84.0)
    assert (blind.value, blind.reason) == (84.0, "forecast")
    known = decide(0.0, 50.0, CONFIG, 84.0, replicas=10)
    assert known.value == pytest.approx(88.00125) and known.reason == "forecast+tolerance"
    observed = decide(0.0, 84.0, CONFIG, None, replicas=10)
    assert observed.reason == "observed+tolerance" and observed.observed == 84.0
    prometheus = {"serverAddress": "http://prometheus:9090", "query": "q", "replicasQuery": "r"}
    loose = parse_trigger({"threshold": "8", "mode": "predictive", **prometheus, "hpaTolerance": "0.02"})
    assert decide(0.0, 50.0, loose, 84.0, replicas=10).value == 84.0  # 1.05 is outside 1 +/- 0.02
