"""Reactive's target sweep and its reading at equal GPU-hours (scaler.sim.sweep)."""

from __future__ import annotations

import numpy as np
import pytest

from scaler.sim import ClusterConfig, ScalingConfig, SweepPoint, at_equal_gpu_hours, sweep_reactive
from scaler.traces import Trace

SWEEP = [SweepPoint(8.0, 2.0, 50), SweepPoint(2.0, 10.0, 0), SweepPoint(4.0, 5.0, 10)]


def test_reads_the_sweep_between_its_neighbours_by_gpu_hours() -> None:
    reading = at_equal_gpu_hours(SWEEP, 3.5)
    # Between (2.0 h, 50 min, target 8) and (5.0 h, 10 min, target 4), halfway.
    assert reading.slo_violation_minutes == pytest.approx(30.0)
    assert reading.target == pytest.approx(6.0)
    assert reading.inside


@pytest.mark.parametrize(
    ("gpu_hours", "minutes"),
    [pytest.param(1.0, 50.0, id="cheaper than the sweep"), pytest.param(99.0, 0.0, id="dearer")],
)
def test_outside_the_sweep_the_nearest_end_is_flagged(gpu_hours: float, minutes: float) -> None:
    reading = at_equal_gpu_hours(SWEEP, gpu_hours)
    assert reading.slo_violation_minutes == minutes and not reading.inside


def test_an_empty_sweep_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        at_equal_gpu_hours([], 1.0)


def test_a_lower_target_buys_fewer_violations_with_more_gpu_hours() -> None:
    rates = np.concatenate([np.full(12, 10.0), np.full(12, 40.0), np.full(12, 15.0)])  # 5-min steps
    trace = Trace("steps", 300.0 * np.arange(rates.size, dtype=np.float64), rates, 300.0)
    cluster = ClusterConfig(concurrency=10, service_time_s=1.0, startup_delay_s=60.0, slo_s=3.0)
    sweep = sweep_reactive(trace, [2.0, 10.0], cluster, ScalingConfig(), seed=2)
    assert [point.target for point in sweep] == [2.0, 10.0]
    eager, lazy = sweep
    assert eager.gpu_hours > lazy.gpu_hours
    assert eager.slo_violation_minutes < lazy.slo_violation_minutes
