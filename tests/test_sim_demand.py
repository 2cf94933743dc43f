"""A trace as the simulator's demand (scaler.sim.demand)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaler.sim.demand import rates_per_tick, rescale_to_peak, rescaled, sample_arrivals
from scaler.sim.service import ClusterConfig
from scaler.traces import Trace, TraceError


def _trace(values: list[float], step_s: float, start_s: float = 1_000.0) -> Trace:
    at_s = start_s + step_s * np.arange(len(values), dtype=np.float64)
    return Trace("t", at_s, np.asarray(values, dtype=np.float64), step_s)


def test_a_coarse_trace_holds_each_value_for_its_step() -> None:
    rates = rates_per_tick(_trace([1.0, 4.0], step_s=300.0), tick_s=5.0)
    assert rates.size == 120
    assert set(rates[:60].tolist()) == {1.0} and set(rates[60:].tolist()) == {4.0}


def test_a_fine_trace_is_averaged_over_each_tick() -> None:
    rates = rates_per_tick(_trace([0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0], step_s=1.0), tick_s=5.0)
    assert rates.tolist() == [4.0]  # the partial last tick is left out


def test_resampling_keeps_the_number_of_requests() -> None:
    trace = _trace([3.0, 0.5, 7.25, 2.0], step_s=60.0)
    rates = rates_per_tick(trace, tick_s=15.0)
    assert rates.sum() * 15.0 == pytest.approx(float(trace.values.sum()) * 60.0)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param([1.0, math.nan], r"1 of 2 values are missing", id="NaN"),
        pytest.param([1.0, -2.0], r"negative rate \(-2.0\)", id="negative"),
    ],
)
def test_unusable_traces_are_refused_with_the_reason(values: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rates_per_tick(_trace(values, step_s=60.0), tick_s=5.0)


def test_rescale_to_peak_makes_the_peak_need_that_many_replicas() -> None:
    trace = rescale_to_peak(_trace([3.0, 12.0, 6.0], step_s=60.0), peak_replicas=20, capacity_per_replica=4.0)
    assert trace.values.tolist() == pytest.approx([20.0, 80.0, 40.0])
    assert trace.at_s.tolist() == [1000.0, 1060.0, 1120.0]


def test_an_all_zero_trace_has_no_peak() -> None:
    with pytest.raises(ValueError, match="all zero"):
        rescale_to_peak(_trace([0.0, 0.0], step_s=60.0), peak_replicas=2, capacity_per_replica=1.0)


def test_poisson_arrivals_are_fixed_by_the_seed_and_fluid_ones_are_exact() -> None:
    rates = np.full(1000, 3.0)
    first, again = sample_arrivals(rates, 5.0, seed=4), sample_arrivals(rates, 5.0, seed=4)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, sample_arrivals(rates, 5.0, seed=5))
    assert first.mean() == pytest.approx(15.0, rel=0.05)
    assert sample_arrivals(rates, 5.0, seed=4, poisson=False).tolist() == [15.0] * 1000


def test_a_window_of_zeros_is_refused_by_name_and_a_past_is_scaled_with_its_window() -> None:
    cluster = ClusterConfig()
    past, window = _trace([2.0, 4.0], step_s=60.0), _trace([1.0, 8.0], step_s=60.0)
    scaled_past, scaled = rescaled(past, window, peak_replicas=10, cluster=cluster)
    assert float(scaled.values.max()) == pytest.approx(10 * cluster.capacity_rps)
    assert list(scaled_past.values) == pytest.approx(
        [v * 10 * cluster.capacity_rps / 8.0 for v in (2.0, 4.0)]
    )
    with pytest.raises(TraceError, match="all zero"):
        rescaled(past, _trace([0.0, 0.0], step_s=60.0), peak_replicas=10, cluster=cluster)
