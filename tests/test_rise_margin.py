"""no_forecast's margin: how far the rate has risen within a lead time on the target's own history."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.calibration import BoundCalibration
from scaler.history import History
from scaler.leadtime import (
    MIN_RISE_WINDOWS,
    RETRY_S,
    RISE_EVERY_S,
    RiseMargin,
    flat_in_flight,
    rise_over_lead,
)
from scaler.sources.replay import ReplaySource
from tests.servers import DAY, EPOCH, FakeClock, side_query_refresher, walk


def _by_hand(values: list[float], lead: int, quantile: float) -> float | None:
    rises = []
    for t, now in enumerate(values[: len(values) - lead]):
        ahead = [v for v in values[t + 1 : t + 1 + lead] if math.isfinite(v)]
        if math.isfinite(now) and ahead:
            rises.append(max(ahead) - now)
    if len(rises) < MIN_RISE_WINDOWS:
        return None
    return max(0.0, float(np.quantile(rises, quantile)))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(0.0, 1e4), st.just(math.nan)),
        min_size=MIN_RISE_WINDOWS,
        max_size=MIN_RISE_WINDOWS + 80,
    ),
    st.integers(1, 40),
    st.sampled_from([0.5, 0.9, 0.99]),
)
def test_the_rise_is_the_quantile_of_each_windows_peak_less_its_start(
    values: list[float], lead: int, quantile: float
) -> None:
    found = rise_over_lead(np.array(values), lead, quantile)
    expected = _by_hand(values, lead, quantile)
    assert (found is None) == (expected is None)
    if expected is not None:
        assert found == pytest.approx(expected)


def test_a_ramp_rises_by_its_slope_over_the_lead_and_a_fall_not_at_all() -> None:
    ramp = np.arange(1000.0) * 0.5
    assert rise_over_lead(ramp, 40, 0.9) == pytest.approx(20.0)
    assert rise_over_lead(ramp[::-1].copy(), 40, 0.9) == 0.0
    assert rise_over_lead(ramp[: MIN_RISE_WINDOWS + 39], 40, 0.9) is None  # one window short
    assert rise_over_lead(ramp[: MIN_RISE_WINDOWS + 40], 40, 0.9) == pytest.approx(20.0)


def test_no_forecasts_bound_adds_the_rise_in_flight_in_quadrature_with_the_poisson_spread() -> None:
    mean, bound = flat_in_flight(10.0, 2.0, 0.9, rise=3.0)
    assert mean == 20.0
    assert bound == pytest.approx(20.0 + math.hypot(6.0, 1.2815516 * math.sqrt(20.0)))
    assert flat_in_flight(10.0, 2.0, 0.9, rise=-1.0) == flat_in_flight(10.0, 2.0, 0.9)


def test_the_rise_is_recomputed_hourly_when_the_lead_changes_and_retried_while_too_short() -> None:
    rates = History(15.0, 5760)
    for i in range(120):  # 30 minutes: too few windows
        rates.append(i * 15.0, float(i))
    margin = RiseMargin()
    now = 119 * 15.0
    assert margin.update(now, rates, 600.0, 0.9) == 0.0
    for i in range(120, 1200):
        rates.append(i * 15.0, float(i))
    assert margin.update(now + RETRY_S - 1, rates, 600.0, 0.9) == 0.0  # not retried yet
    later = now + RETRY_S
    assert margin.update(later, rates, 600.0, 0.9) == pytest.approx(40.0)  # 1 a step, 40 steps
    for i in range(1200, 1600):
        rates.append(i * 15.0, 2.0 * i)  # steeper: not seen until the hour is up
    assert margin.update(later + RISE_EVERY_S - 1, rates, 600.0, 0.9) == pytest.approx(40.0)
    assert margin.update(later + RISE_EVERY_S, rates, 600.0, 0.9) == pytest.approx(80.0)
    assert margin.update(later + RISE_EVERY_S + 1, rates, 300.0, 0.9) == pytest.approx(40.0)  # new lead


def test_holding_the_rate_with_its_rise_covers_its_lead_windows_and_without_it_does_not() -> None:
    """A daily cycle with hourly surges, 10 minutes ahead, the in-flight load following the rate
    (Little's law): the rate held with only the spread of requests in service misses the surges'
    rises; with the rise its own history shows it covers about the quantile, with no online
    correction (gain 0)."""
    rng = np.random.default_rng(7)
    step, lead, service = 15.0, 600.0, 1.0
    at = np.arange(0.0, 3 * DAY, step)
    rate = (
        200.0 + 150.0 * np.sin(2 * np.pi * at / DAY) + 120.0 * np.maximum(0, np.sin(2 * np.pi * at / 3600.0))
    )
    observed_rate = rng.poisson(rate * 60.0) / 60.0  # as rate(requests_total[1m]) reads it
    in_flight = rate * service
    rates = History(step, 5760)
    margin = RiseMargin()
    plain, risen = BoundCalibration(0.9, window=5760, gain=0.0), BoundCalibration(0.9, window=5760, gain=0.0)
    for t, now in enumerate(at):
        rates.append(now, float(observed_rate[t]))
        plain.actual(now, float(in_flight[t]))
        risen.actual(now, float(in_flight[t]))
        if now < DAY:
            continue
        rise = margin.update(now, rates, lead, 0.9)
        for calibration, margin_rps in ((plain, 0.0), (risen, rise)):
            centre, bound = flat_in_flight(float(observed_rate[t]), service, 0.9, margin_rps)
            calibration.serve(now, now + lead, centre, bound)
    assert margin.value > 0.0
    assert plain.coverage < 0.8
    assert 0.85 <= risen.coverage <= 0.95


async def test_a_live_target_with_a_rate_query_serves_no_forecast_with_its_rise(trace_dir: Path) -> None:
    """The refresher's no_forecast bound carries the rise from the bootstrapped rate history, and
    `/targets` shows it."""
    clock = FakeClock()
    meta = {"leadTime": "30m", "rateQuery": "sum(rate(requests_total[1m]))", "serviceTime": "2s"}
    rates = ReplaySource(trace_dir / "diurnal.csv", clock=clock)
    refresher, _ = side_query_refresher(trace_dir, clock, meta, rate_source=rates)
    try:
        await walk(refresher, clock, EPOCH + 8 * DAY + 6 * 3600, 12)
        served = refresher.describe()["served_bound"]
        assert refresher.predictor is not None
        assert served["no_forecast_rise_rps"] == round(refresher.predictor.rise, 6) > 0.0
        assert served["pipeline_cost"]["no_forecast"] is not None
    finally:
        await refresher.aclose()
