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
    RETRY_S,
    RISE_EVERY_S,
    LeadBound,
    RiseMargin,
    flat_in_flight,
    in_flight_bound,
    min_rise_windows,
    rise_over_lead,
    sliding_max,
)
from scaler.sim.baselines import NoForecast
from scaler.sim.interface import Signals
from scaler.sim.trigger_settings import trigger_config
from scaler.sources.replay import ReplaySource
from scaler.traces import Trace
from tests.servers import DAY, EPOCH, FakeClock, side_query_refresher, walk
from tests.strategies import series_with_gaps


def _by_hand(values: list[float], lead: int, quantile: float, min_windows: int) -> float | None:
    rises = []
    for t in range(max(0, len(values) - lead)):  # the windows that lie wholly within the series
        now = values[t]
        ahead = [v for v in values[t + 1 : t + 1 + lead] if math.isfinite(v)]
        if math.isfinite(now) and ahead:
            rises.append(max(ahead) - now)
    if len(rises) < min_windows:
        return None
    return max(0.0, float(np.quantile(rises, quantile)))


@settings(max_examples=200, deadline=None)
@given(series_with_gaps(), st.integers(1, 40), st.sampled_from([0.5, 0.9, 0.99]), st.integers(1, 30))
def test_the_rise_is_the_quantile_of_each_windows_peak_less_its_start(
    values: list[float], lead: int, quantile: float, min_windows: int
) -> None:
    found = rise_over_lead(np.array(values), lead, quantile, min_windows)
    expected = _by_hand(values, lead, quantile, min_windows)
    assert (found is None) == (expected is None)
    if expected is not None:
        assert found == pytest.approx(expected)


@settings(max_examples=200, deadline=None)
@given(series_with_gaps(), st.integers(1, 70))
def test_the_sliding_maximum_is_the_largest_finite_value_of_each_run(values: list[float], width: int) -> None:
    array = np.array(values)
    found = sliding_max(array, width) if width <= array.size else None
    for start in range(array.size - width + 1 if found is not None else 0):
        run = [v for v in values[start : start + width] if math.isfinite(v)]
        assert found is not None
        assert (found[start] == max(run)) if run else math.isnan(found[start])
    if found is not None:
        assert found.size == array.size - width + 1


def test_a_ramp_rises_by_its_slope_over_the_lead_and_a_fall_not_at_all() -> None:
    ramp = np.arange(1000.0) * 0.5
    needed = min_rise_windows(15.0)
    assert needed == 240  # an hour of windows at a 15 s step
    assert min_rise_windows(300.0) == 12 and min_rise_windows(3600.0) == 12
    assert rise_over_lead(ramp, 40, 0.9, needed) == pytest.approx(20.0)
    assert rise_over_lead(ramp[::-1].copy(), 40, 0.9, needed) == 0.0
    assert rise_over_lead(ramp[: needed + 39], 40, 0.9, needed) is None  # one window short
    assert rise_over_lead(ramp[: needed + 40], 40, 0.9, needed) == pytest.approx(20.0)
    assert rise_over_lead(np.full(500, math.nan), 40, 0.9, needed) is None
    assert rise_over_lead(np.array([0.0, 0.0, math.nan]), 4, 0.5, 1) is None  # shorter than one window


def test_no_forecasts_bound_adds_the_rise_in_flight_in_quadrature_with_the_poisson_spread() -> None:
    mean, bound = flat_in_flight(10.0, 2.0, 0.9, rise=3.0)
    assert mean == 20.0
    assert bound == pytest.approx(20.0 + math.hypot(6.0, 1.2815516 * math.sqrt(20.0)))
    assert flat_in_flight(10.0, 2.0, 0.9, rise=-1.0) == flat_in_flight(10.0, 2.0, 0.9)
    # The same float as a flat forecast whose band is the rise.
    lead = LeadBound(13.0, 10.0, "m", "", np.array([10.0]), np.array([13.0]), 0.9)
    assert bound == pytest.approx(in_flight_bound(lead, 2.0))


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


async def test_a_live_target_serves_no_forecast_with_the_rise_of_its_bootstrapped_rates(
    trace_dir: Path,
) -> None:
    """The refresher's no_forecast bound is the newest rate held with the band taken on the rate
    history the bootstrap loaded (not 5 minutes later), and `/targets` shows the band."""
    clock = FakeClock()
    meta = {
        "leadTime": "30m",
        "rateQuery": "sum(rate(requests_total[1m]))",
        "serviceTime": "2s",
        "pipeline": "no_forecast",
    }
    rates = ReplaySource(trace_dir / "diurnal.csv", clock=clock)
    refresher, _ = side_query_refresher(trace_dir, clock, meta, rate_source=rates)
    try:
        seen = await walk(refresher, clock, EPOCH + 8 * DAY + 6 * 3600, 1)
        predictor = refresher.predictor
        assert predictor is not None and predictor.rise is not None and predictor.rise > 0.0
        served = refresher.describe()["served_bound"]
        assert served["no_forecast_rise_rps"] == round(predictor.rise, 6)
        _, bound = flat_in_flight(predictor.demand_history.latest(), 2.0, 0.9, predictor.rise)
        assert seen[0][2] == pytest.approx(bound)  # no window scored yet: the correction's scale is 1
        assert bound > flat_in_flight(predictor.demand_history.latest(), 2.0, 0.9)[1]
    finally:
        await refresher.aclose()


def test_the_simulated_no_forecast_serves_the_rise_of_a_days_rates_when_history_is_shorter() -> None:
    """`history` of 10 hours: the band is taken over the simulator's own day of rates (what the live
    target keeps), and what is served is the newest rate held with it."""
    start, step = 1_700_000_000.0, 15.0
    at = start - 10 * 3600 + np.arange(0.0, 10 * 3600, step)
    past = Trace("ramp", at, 10.0 + 0.01 * (at - at[0]) / step, step)  # 0.01 req/s more every step
    config = trigger_config(
        threshold=10.0, lead_time_s=600.0, service_time_s=2.0, replicas_known=False, history_s=10 * 3600
    )
    policy = NoForecast(config, past=past, start_s=start)
    rate = float(past.values[-1]) + 0.01
    policy.observe(Signals(start, 1.0, 0.0, rate, 1, 1, 1))
    assert policy.rise == pytest.approx(0.01 * 40)  # a 600 s lead is 40 steps
    _, bound = flat_in_flight(rate, 2.0, 0.9, 0.4)
    assert policy.decisions[-1].value == pytest.approx(bound)
