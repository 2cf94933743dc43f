"""KEDA + HPA mechanics of the simulator, on hand-computable cases (scaler.sim.autoscaler)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.sim.autoscaler import Autoscaler, ScalingConfig, ScalingPolicy, ScalingRules, hpa_desired


@pytest.mark.parametrize(
    ("value", "target", "current", "expected"),
    [
        pytest.param(10.5, 1.0, 10, 10, id="5% over: within tolerance, no change"),
        pytest.param(9.5, 1.0, 10, 10, id="5% under: within tolerance, no change"),
        pytest.param(12.0, 1.0, 10, 12, id="20% over: scale to ceil(value / target)"),
        pytest.param(8.0, 1.0, 10, 8, id="20% under: scale down"),
        pytest.param(11.0, 1.0, 10, 11, id="exactly 10%: just outside in float64, as in Go"),
        pytest.param(61.0, 8.0, 3, 8, id="AverageValue: ceil(total / per-replica target)"),
        pytest.param(0.0004, 1.0, 2, 0, id="KEDA rounds to 3 decimals"),
        pytest.param(math.nan, 1.0, 2, 0, id="NaN counts as 0"),
        pytest.param(-5.0, 1.0, 2, 0, id="negative counts as 0"),
    ],
)
def test_replica_calculator_for_external_average_value(
    value: float, target: float, current: int, expected: int
) -> None:
    assert hpa_desired(value, target, current, tolerance=0.1) == expected


def test_a_target_below_keda_precision_is_refused() -> None:
    with pytest.raises(ValueError, match=r"target is 0\.0001"):
        hpa_desired(1.0, 0.0001, 1, tolerance=0.1)


def test_with_behavior_scale_up_is_limited_to_max_of_4_pods_and_100_percent_per_15_s() -> None:
    autoscaler = Autoscaler(ScalingConfig(behavior=True), replicas=2, now_s=0.0)
    replicas, seen = 2, []
    for now_s in (15.0, 30.0, 45.0, 60.0):
        replicas = autoscaler.hpa_sync(now_s, value=20.0, target=1.0, current=replicas)
        seen.append(replicas)
    assert seen == [6, 12, 20, 20]


def test_without_behavior_the_legacy_path_allows_max_of_2x_and_4_per_sync() -> None:
    # KEDA without `advanced.horizontalPodAutoscalerConfig.behavior`: scaleUpLimit = max(2 x current, 4).
    autoscaler = Autoscaler(ScalingConfig(), replicas=1, now_s=0.0)
    replicas, seen = 1, []
    for now_s in (15.0, 30.0, 45.0, 60.0):
        replicas = autoscaler.hpa_sync(now_s, value=20.0, target=1.0, current=replicas)
        seen.append(replicas)
    assert seen == [4, 8, 16, 20]


def test_without_behavior_scale_down_keeps_the_largest_recommendation_of_300_s() -> None:
    autoscaler = Autoscaler(ScalingConfig(), replicas=8, now_s=0.0)
    history = {}
    replicas = 8
    for now_s in range(15, 331, 15):
        value = 6.0 if now_s == 60 else 2.0  # one recommendation of 6 at t=60 among 2s
        replicas = autoscaler.hpa_sync(float(now_s), value=value, target=1.0, current=replicas)
        history[now_s] = replicas
    # The initial 8 (t=0) holds through t=285, then the 6 of t=60 until it leaves the window at t=360.
    assert {t for t, r in history.items() if r == 8} == set(range(15, 286, 15))
    assert history[300] == 6 and history[330] == 6


def test_a_60_s_scale_down_window_behavior_drops_after_60_s() -> None:
    window = ScalingRules(60.0, ScalingConfig().scale_down.policies)
    autoscaler = Autoscaler(ScalingConfig(behavior=True, scale_down=window), replicas=6, now_s=0.0)
    seen = [autoscaler.hpa_sync(float(t), value=2.0, target=1.0, current=6) for t in (15, 30, 45, 60)]
    assert seen == [6, 6, 6, 2]  # the initial 6 (t=0) leaves (now - 60, now] at t=60


def test_scale_up_stops_at_max_replica_count() -> None:
    autoscaler = Autoscaler(ScalingConfig(max_replica_count=5), replicas=4, now_s=0.0)
    assert autoscaler.hpa_sync(15.0, value=400.0, target=1.0, current=4) == 5


@pytest.mark.parametrize("behavior", [False, True])
def test_scale_down_waits_for_the_300_s_stabilization_window_then_drops_at_once(behavior: bool) -> None:
    autoscaler = Autoscaler(ScalingConfig(behavior=behavior), replicas=10, now_s=0.0)
    assert autoscaler.hpa_sync(15.0, value=10.0, target=1.0, current=10) == 10
    replicas, history = 10, {}
    for now_s in range(30, 346, 15):  # demand drops to 2 replicas' worth from t=30
        replicas = autoscaler.hpa_sync(float(now_s), value=2.0, target=1.0, current=replicas)
        history[now_s] = replicas
    # The last recommendation of 10 was made at t=15; it leaves the window (now - 300, now] at t=315.
    assert {t for t, r in history.items() if r == 10} == set(range(30, 301, 15))
    assert history[315] == 2 and history[345] == 2


def test_a_user_behavior_replaces_the_defaults() -> None:
    slow_down = ScalingRules(60.0, (ScalingPolicy("Pods", 1, 60.0),))
    config = ScalingConfig(behavior=True, scale_down=slow_down)
    autoscaler = Autoscaler(config, replicas=5, now_s=0.0)
    replicas, history = 5, {}
    for now_s in range(15, 301, 15):
        replicas = autoscaler.hpa_sync(float(now_s), value=1.0, target=1.0, current=replicas)
        history[now_s] = replicas
    # Window: the initial 5 (t=0) counts until t=60; then one pod per 60 s.
    assert [history[t] for t in (15, 45, 60, 75, 105, 120, 180, 240, 300)] == [5, 5, 4, 4, 4, 3, 2, 1, 1]


def test_min_change_select_picks_the_smaller_scale_up() -> None:
    rules = ScalingRules(0.0, (ScalingPolicy("Pods", 4, 15.0), ScalingPolicy("Percent", 100, 15.0)), "Min")
    autoscaler = Autoscaler(ScalingConfig(behavior=True, scale_up=rules), replicas=2, now_s=0.0)
    assert autoscaler.hpa_sync(15.0, value=20.0, target=1.0, current=2) == 4  # min(2 + 4, 2 * 2)


def test_disabled_scale_down_holds_replicas() -> None:
    rules = ScalingRules(0.0, (ScalingPolicy("Percent", 100, 15.0),), "Disabled")
    autoscaler = Autoscaler(ScalingConfig(behavior=True, scale_down=rules), replicas=6, now_s=0.0)
    assert autoscaler.hpa_sync(15.0, value=1.0, target=1.0, current=6) == 6


def test_hpa_does_not_scale_from_zero() -> None:
    autoscaler = Autoscaler(ScalingConfig(), replicas=0, now_s=0.0)
    assert autoscaler.hpa_sync(15.0, value=50.0, target=1.0, current=0) == 0


def test_hpa_scales_down_no_lower_than_one_replica() -> None:
    no_window = ScalingRules(0.0, ScalingConfig().scale_down.policies)
    autoscaler = Autoscaler(ScalingConfig(behavior=True, scale_down=no_window), replicas=3, now_s=0.0)
    assert autoscaler.hpa_sync(15.0, value=0.0, target=1.0, current=3) == 1


@pytest.mark.parametrize(
    ("min_replicas", "expected"),
    [pytest.param(0, 1, id="minReplicaCount 0 -> 1"), pytest.param(3, 3, id="minReplicaCount 3 -> 3")],
)
def test_keda_activates_from_zero_to_max_of_1_and_min(min_replicas: int, expected: int) -> None:
    autoscaler = Autoscaler(ScalingConfig(min_replica_count=min_replicas), replicas=0, now_s=0.0)
    assert autoscaler.keda_poll(30.0, active=True, current=0) == expected


def test_keda_returns_to_zero_after_cooldown_of_inactivity() -> None:
    autoscaler = Autoscaler(ScalingConfig(), replicas=1, now_s=0.0)
    assert autoscaler.keda_poll(30.0, active=True, current=1) == 1
    replicas, history = 1, {}
    for now_s in range(60, 400, 30):
        replicas = autoscaler.keda_poll(float(now_s), active=False, current=replicas)
        history[now_s] = replicas
    # Last active at t=30: inactive for more than 300 s first at t=360.
    assert history[330] == 1 and history[360] == 0


def test_keda_leaves_scale_down_to_the_hpa_when_min_is_above_zero() -> None:
    autoscaler = Autoscaler(ScalingConfig(min_replica_count=2), replicas=4, now_s=0.0)
    assert autoscaler.keda_poll(1000.0, active=False, current=4) == 4
    assert autoscaler.keda_poll(1030.0, active=False, current=1) == 2


def test_invalid_settings_name_every_problem() -> None:
    with pytest.raises(ValueError, match=r"hpa_sync_s is 0.*min_replica_count \(5\)"):
        ScalingConfig(hpa_sync_s=0, min_replica_count=5, max_replica_count=2)


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0, max_value=400, allow_nan=False), min_size=1, max_size=60),
    start=st.integers(min_value=1, max_value=30),
)
def test_every_sync_respects_the_limits_and_the_window(values: list[float], start: int) -> None:
    autoscaler = Autoscaler(ScalingConfig(max_replica_count=50), replicas=start, now_s=0.0)
    replicas, proposals = start, [(0.0, start)]
    for i, value in enumerate(values, start=1):
        now_s = 15.0 * i
        proposals.append((now_s, hpa_desired(value, 2.0, replicas, tolerance=0.1)))
        new = autoscaler.hpa_sync(now_s, value, target=2.0, current=replicas)
        assert 1 <= new <= 50
        assert new <= max(replicas + 4, 2 * replicas)
        if new < replicas:  # never below a recommendation of the last 300 s
            assert new >= max(p for at_s, p in proposals if at_s > now_s - 300.0)
        replicas = new
