"""Rolling live-forecast accuracy."""

from __future__ import annotations

import math

import pytest

from scaler.accuracy import RollingAccuracy


def test_scores_arrive_when_the_window_has_passed() -> None:
    accuracy = RollingAccuracy()
    accuracy.forecast(0.0, 60.0, mean=10.0, bound=12.0, now_value=5.0)
    accuracy.actual(30.0, 11.0)
    assert accuracy.evaluations == 0
    accuracy.actual(60.0, 9.0)
    # error |9 - 10| = 1, persistence |9 - 5| = 4; peak 11 <= 12 covered
    assert accuracy.evaluations == 1
    assert accuracy.mase == pytest.approx(0.25)
    assert accuracy.coverage == 1.0


def test_a_peak_above_the_bound_is_not_covered() -> None:
    accuracy = RollingAccuracy()
    accuracy.forecast(0.0, 60.0, mean=10.0, bound=12.0, now_value=10.0)
    accuracy.actual(30.0, 20.0)
    accuracy.actual(60.0, 10.0)
    assert accuracy.coverage == 0.0
    assert math.isnan(accuracy.mase)  # persistence was exact: no scale


def test_the_window_keeps_only_recent_evaluations() -> None:
    accuracy = RollingAccuracy(window=2)
    for t, bound in ((0.0, 0.0), (10.0, 100.0), (20.0, 100.0)):
        accuracy.forecast(t, t + 10.0, mean=1.0, bound=bound, now_value=0.0)
        accuracy.actual(t + 10.0, 1.0)
    assert accuracy.evaluations == 2
    assert accuracy.coverage == 1.0


def test_non_finite_inputs_are_ignored() -> None:
    accuracy = RollingAccuracy()
    accuracy.forecast(0.0, 10.0, mean=math.nan, bound=1.0, now_value=1.0)
    accuracy.actual(10.0, math.inf)
    assert accuracy.evaluations == 0
    assert math.isnan(accuracy.coverage)
