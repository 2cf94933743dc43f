"""The plan's hourly forecast: season choice, tiling over the horizon, growth, peaks, suspect hours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forecasting import Series
from scaler.plan.clean import suspect_hours
from scaler.plan.forecast import (
    HistoryError,
    config_for,
    forecast_demand,
    hourly,
    trend_per_month,
)
from scaler.traces import Trace, load_trace

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "nyc_taxi_7w.csv"


def nyc(weeks: float) -> Trace:
    trace = load_trace(FIXTURE)
    rows = int(weeks * 7 * 48)
    return trace._replace(at_s=trace.at_s[:rows], values=trace.values[:rows] / 300)


def test_weekly_season_from_3_3_weeks_daily_below_and_an_error_under_3_3_days() -> None:
    assert config_for(5 * 168).horizon_steps == 168
    assert config_for(560).horizon_steps == 168
    assert config_for(540).horizon_steps == 24
    assert config_for(79).horizon_steps == 24
    with pytest.raises(HistoryError, match="holds 78 hours; a plan needs at least 79"):
        config_for(78)


def test_forecast_repeats_the_week_with_growing_margins_and_applies_growth() -> None:
    series, peak = hourly(nyc(5), 0.95)
    flat = forecast_demand(series, peak, horizon_h=3 * 168, quantile=0.95, members=(), backtest_origins=0)
    assert flat.season_h == 168 and flat.model == "seasonal_naive"
    assert flat.start_s == series.end_s and flat.mean.size == 3 * 168
    assert flat.growth_per_month == 0.0 and "eight weeks" in flat.growth_source
    np.testing.assert_allclose(flat.mean[:168], flat.mean[168:336])
    width = flat.upper / peak[((flat.start_s / 3600 + np.arange(504)) % 24).astype(int)] - flat.mean
    np.testing.assert_allclose(width[168:336], width[:168] * np.sqrt(2), atol=1e-9)
    grown = forecast_demand(
        series, peak, horizon_h=3 * 168, quantile=0.95, members=(), backtest_origins=0, growth_per_month=0.1
    )
    ratio = grown.mean / flat.mean
    assert ratio[0] == pytest.approx(1.1 ** (0.5 / 730)) and ratio[-1] == pytest.approx(1.1 ** (503.5 / 730))
    assert grown.growth_source == "--growth"


def test_backtest_scores_the_forecast_a_week_ahead() -> None:
    series, peak = hourly(nyc(6), 0.95)
    demand = forecast_demand(series, peak, horizon_h=24, quantile=0.9, members=(), backtest_origins=3)
    assert demand.backtest is not None and demand.backtest.origins == 3
    assert 0 < demand.backtest.mase < 1 and 0.7 < demand.backtest.coverage <= 1


def test_peak_factors_measure_the_hours_inside_a_finer_trace() -> None:
    _, peak = hourly(nyc(2), 0.9)
    assert peak.shape == (24,) and (peak >= 1).all() and peak.max() > 1.05
    coarse = nyc(2)
    hourly_trace = Trace("h", coarse.at_s[::2], coarse.values[::2], 3600.0)
    assert (hourly(hourly_trace, 0.9)[1] == 1).all()


def test_suspect_hours_find_an_outage_recorded_as_zeros() -> None:
    series, _ = hourly(nyc(3), 0.9)
    values = series.values.copy()
    values[300:310] = 0.0
    broken = Series(series.start_s, series.step_s, values, series.observed)
    assert suspect_hours(series) == (0, None)
    assert suspect_hours(broken) == (10, series.start_s + 310 * 3600)


def test_trend_needs_eight_weeks() -> None:
    t = np.arange(9 * 168, dtype=np.float64)
    rising = Series(
        0.0,
        3600.0,
        10 * np.exp(t * np.log(1.2) / 730) * (1.5 + np.sin(t * 2 * np.pi / 24)),
        np.ones(t.size, bool),
    )
    assert trend_per_month(rising) == pytest.approx(0.2, abs=0.01)
    assert trend_per_month(rising.window(0, 7 * 168)) is None


def test_the_report_asks_to_check_a_history_with_an_outage() -> None:
    from scaler.plan.core import PlanOptions, plan_trace
    from scaler.plan.profile import load_prices, load_profile
    from scaler.plan.report import report

    root = FIXTURE.parents[2]
    trace = nyc(5)
    values = trace.values.copy()
    values[-200:-150] = 0.0  # a day without data, recorded as zeros
    options = PlanOptions(horizon_h=48, members=(), backtest_origins=0, sim_check=False)
    profile = load_profile(root / "deploy" / "plan" / "profile.example.yaml")
    prices = load_prices(root / "deploy" / "plan" / "prices.example.yaml")
    text = report(plan_trace("outage", trace._replace(values=values), profile, prices, options))
    assert "**Check the history**: 25 hours" in text
    assert "Check the history" not in report(plan_trace("clean", trace, profile, prices, options))


@pytest.mark.parametrize("hours", [80, 100, 150, 170])
def test_short_histories_plan_with_fewer_backtest_origins_or_none(hours: int) -> None:
    series, peak = hourly(nyc(5), 0.9)
    demand = forecast_demand(
        series.window(-hours, None), peak, horizon_h=24, quantile=0.9, members=(), backtest_origins=4
    )
    assert demand.season_h == 24 and demand.mean.size == 24
    assert demand.backtest is None or 1 <= demand.backtest.origins <= 4
