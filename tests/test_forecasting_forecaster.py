"""forecasting.forecaster and finescale: fit coarse, forecast fine, pickle, reselect, fall back."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from forecasting.base import ForecastConfig
from forecasting.finescale import CoarsePath, fine_forecast
from forecasting.forecaster import Forecaster
from forecasting.prepare import Series

COARSE = 3600.0
FINE = 60.0
CONFIG = ForecastConfig(
    horizon_steps=6, calibration_origins=12, level_window_s=600.0, level_half_life_s=1800.0
)


def coarse(days: float, seed: int = 0, start_s: float = 0.0) -> Series:
    rng = np.random.default_rng(seed)
    t = np.arange(int(days * 24))
    values = 60 + 25 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 2, t.size)
    return Series(start_s, COARSE, values, np.ones(t.size, dtype=np.bool_))


def fine_after(fitted: Series, minutes: int, level: float) -> Series:
    """`minutes` of fine samples right after the coarse series, at a constant level."""
    values = np.full(minutes, level)
    return Series(fitted.end_s, FINE, values, np.ones(minutes, dtype=np.bool_))


@pytest.fixture(scope="module")
def fitted() -> tuple[Forecaster, Series]:
    history = coarse(8)
    forecaster = Forecaster(CONFIG)
    forecaster.fit(history)
    return forecaster, history


def test_coarse_forecast_has_the_fitted_step_and_a_calibrated_upper(
    fitted: tuple[Forecaster, Series],
) -> None:
    forecaster, history = fitted
    forecast = forecaster.forecast(6, 0.9)
    assert forecaster.model == "ensemble"
    assert forecast.model == "ensemble"
    assert forecast.step_s == COARSE
    assert forecast.start_s == history.end_s
    assert forecast.mean.shape == forecast.upper.shape == (6,)
    assert (forecast.upper >= forecast.mean).all()
    assert forecast.quantile == 0.9
    assert (forecaster.forecast(6, 0.95).upper >= forecast.upper).all()


def test_horizon_beyond_the_fitted_one_is_refused(fitted: tuple[Forecaster, Series]) -> None:
    forecaster, _ = fitted
    with pytest.raises(ValueError, match="horizon_steps is 7; the fit forecast 6 steps"):
        forecaster.forecast(7)
    with pytest.raises(ValueError, match="it must be >= 1"):
        forecaster.forecast(0)


def test_forecaster_pickles_small_and_forecasts_the_same(fitted: tuple[Forecaster, Series]) -> None:
    forecaster, _ = fitted
    blob = pickle.dumps(forecaster)
    assert len(blob) < 8_000
    copy = pickle.loads(blob)
    np.testing.assert_array_equal(copy.forecast(6).upper, forecaster.forecast(6).upper)
    assert copy.specs == forecaster.specs


def test_fine_forecast_starts_at_the_fine_level_and_returns_to_the_coarse_path(
    fitted: tuple[Forecaster, Series],
) -> None:
    forecaster, history = fitted
    coarse_mean = forecaster.forecast(6).mean
    copy = pickle.loads(pickle.dumps(forecaster))
    copy.update(fine_after(history, 10, coarse_mean[0] + 30.0))
    forecast = copy.forecast(120, 0.9)
    assert forecast.step_s == FINE
    assert forecast.start_s == history.end_s + 600
    assert forecast.mean.shape == (120,)
    times = forecast.start_s + FINE * (np.arange(120) + 0.5)
    gap = forecast.mean - np.interp(times, history.end_s + COARSE * (np.arange(6) + 0.5), coarse_mean)
    assert gap[0] == pytest.approx(30.0, abs=6.0)
    assert gap[-1] < gap[0] / 2  # decayed over 2 h with a 30 min half-life
    assert "fine points" in forecast.reason
    assert (forecast.upper >= forecast.mean).all()


def test_fine_samples_before_the_coarse_end_correct_nothing() -> None:
    path = CoarsePath(COARSE, 7200.0, np.array([10.0, 10.0]), np.full(3, 10.0), np.full(3, 2.0))
    fine = Series(7200.0 - 600, FINE, np.full(10, 10.0), np.ones(10, dtype=np.bool_))
    result = fine_forecast(path, fine, 5, 0.9, level_window_s=600, level_half_life_s=600)
    assert result is not None
    assert result.level == pytest.approx(0.0)
    np.testing.assert_allclose(result.mean, 10.0)
    np.testing.assert_allclose(result.upper, 12.0)  # only the coarse margin: no fine spread


def test_fine_spread_widens_the_upper_bound() -> None:
    path = CoarsePath(COARSE, 7200.0, np.array([10.0]), np.full(3, 10.0), np.full(3, 3.0))
    noisy = 10.0 + np.tile([-4.0, 4.0], 10)
    fine = Series(7200.0, FINE, noisy, np.ones(20, dtype=np.bool_))
    result = fine_forecast(path, fine, 5, 0.9, level_window_s=1200, level_half_life_s=600)
    assert result is not None
    np.testing.assert_allclose(result.upper - result.mean, 5.0, rtol=0.05)  # about hypot(3, 4)


def test_fine_horizon_past_the_coarse_forecast_gives_none(fitted: tuple[Forecaster, Series]) -> None:
    forecaster, history = fitted
    copy = pickle.loads(pickle.dumps(forecaster))
    copy.update(fine_after(history, 5 * 60 + 50, 40.0))  # almost 6 coarse steps later
    forecast = copy.forecast(20)
    assert forecast.model == "none"
    assert "refit" in forecast.reason
    np.testing.assert_allclose(forecast.mean, 40.0)


def test_not_fitted_gives_none_with_zero_load() -> None:
    forecast = Forecaster(CONFIG).forecast(3)
    assert forecast.model == "none"
    assert "not fitted" in forecast.reason
    np.testing.assert_allclose(forecast.upper, 0.0)


def test_short_history_gives_none_holding_the_last_value() -> None:
    forecaster = Forecaster(CONFIG)
    history = coarse(0.5)
    result = forecaster.fit(history)
    assert result.model == "none"
    forecast = forecaster.forecast(3)
    assert forecast.model == "none"
    np.testing.assert_allclose(forecast.mean, history.values[-1])


def test_selection_is_reused_until_it_is_a_day_old() -> None:
    forecaster = Forecaster(CONFIG)
    assert forecaster.fit(coarse(8)).reselected
    assert not forecaster.fit(coarse(8, seed=1, start_s=6 * COARSE)).reselected
    assert forecaster.fit(coarse(8, seed=2, start_s=24 * COARSE)).reselected


def test_empty_history_gives_none_with_zero_load() -> None:
    forecaster = Forecaster(CONFIG)
    assert forecaster.fit(Series(0.0, COARSE, np.zeros(0), np.zeros(0, dtype=np.bool_))).model == "none"
    forecast = forecaster.forecast(2)
    assert (forecast.model, forecast.step_s) == ("none", COARSE)
    np.testing.assert_allclose(forecast.upper, 0.0)


def test_a_trend_carries_a_ramp_on_for_one_window_then_decays() -> None:
    path = CoarsePath(COARSE, 7200.0, np.array([10.0]), np.full(3, 10.0), np.zeros(3))
    ramp = 10.0 + np.arange(10, dtype=np.float64)  # +1 per fine step over the last 10 minutes
    fine = Series(7200.0, FINE, ramp, np.ones(10, dtype=np.bool_))
    flat = fine_forecast(path, fine, 30, 0.9, level_window_s=600, level_half_life_s=math.inf)
    trended = fine_forecast(path, fine, 30, 0.9, level_window_s=600, level_half_life_s=math.inf, trend=True)
    assert flat is not None and trended is not None
    assert flat.level == pytest.approx(4.5)  # the window's mean gap: half a window behind
    np.testing.assert_allclose(flat.mean, 14.5)
    assert trended.level == pytest.approx(9.5)  # the line at the end of the last fine step
    np.testing.assert_allclose(trended.mean[:10], 20.0 + np.arange(10))  # +1 per step ahead
    np.testing.assert_allclose(trended.mean[10:], 29.5)  # the slope stops after one window


def test_a_trend_needs_a_few_points_and_decays_with_the_level() -> None:
    path = CoarsePath(COARSE, 7200.0, np.array([10.0]), np.full(3, 10.0), np.zeros(3))
    two = Series(7200.0, FINE, np.array([10.0, 14.0]), np.ones(2, dtype=np.bool_))
    result = fine_forecast(path, two, 5, 0.9, level_window_s=600, level_half_life_s=math.inf, trend=True)
    assert result is not None
    np.testing.assert_allclose(result.mean, 12.0)  # the mean gap, no slope from two points
    ramp = Series(7200.0, FINE, 10.0 + np.arange(10, dtype=np.float64), np.ones(10, dtype=np.bool_))
    decayed = fine_forecast(path, ramp, 120, 0.9, level_window_s=600, level_half_life_s=600, trend=True)
    assert decayed is not None
    assert decayed.mean[-1] - 10.0 < 1.0  # two hours later, the correction is almost gone


def test_reanchored_margins_grow_with_the_lead_from_now_not_from_the_fit() -> None:
    # Margins of 1, 2, ... 6 for forecasts 1..6 coarse steps after their origin.
    path = CoarsePath(COARSE, 7200.0, np.array([10.0]), np.full(6, 10.0), np.arange(1.0, 7.0))
    later = 7200.0 + 3 * COARSE  # three hours after the fit, fine samples at the path's level
    fine = Series(later - 600, FINE, np.full(10, 10.0), np.ones(10, dtype=np.bool_))
    since_fit = fine_forecast(path, fine, 1, 0.9, level_window_s=600, level_half_life_s=600)
    from_now = fine_forecast(path, fine, 1, 0.9, level_window_s=600, level_half_life_s=600, reanchor=True)
    assert since_fit is not None and from_now is not None
    # 3 h 30 s after the fit: between the margins 3 h and 4 h ahead (bin centres at 2.5 h and 3.5 h).
    np.testing.assert_allclose(since_fit.upper - since_fit.mean, 3.0 + 30 / 3600 + 0.5)
    np.testing.assert_allclose(from_now.upper - from_now.mean, 1.0)  # 30 s ahead: the first margin
    stale = Series(later - 600, FINE, np.full(10, 10.0), np.zeros(10, dtype=np.bool_))
    unanchored = fine_forecast(path, stale, 1, 0.9, level_window_s=600, level_half_life_s=600, reanchor=True)
    assert unanchored is not None
    np.testing.assert_allclose(unanchored.upper - unanchored.mean, since_fit.upper - since_fit.mean)


def test_the_fine_spread_is_noise_around_the_local_level_not_the_level_drift() -> None:
    path = CoarsePath(COARSE, 7200.0, np.array([10.0]), np.full(3, 10.0), np.zeros(3))
    drifting = 10.0 + np.arange(30, dtype=np.float64) + np.tile([-1.0, 1.0], 15)  # +1 per minute, +-1
    fine = Series(7200.0, FINE, drifting, np.ones(30, dtype=np.bool_))
    result = fine_forecast(path, fine, 5, 0.9, level_window_s=300, level_half_life_s=600)
    assert result is not None
    spread = result.upper - result.mean
    assert (spread > 0.5).all() and (spread < 2.0).all()  # the +-1, not the 30-minute climb
