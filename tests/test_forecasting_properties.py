"""Properties: whatever the input (NaN, Inf, negatives, zeros, constants, huge spikes, gaps), prepared
series and forecasts are finite and >= 0."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from forecasting.base import ForecastConfig
from forecasting.forecaster import Forecaster
from forecasting.prepare import prepare

STEP = 3600.0
SEASON = 24
CONFIG = ForecastConfig(
    season_s=SEASON * STEP, horizon_steps=4, calibration_origins=6, min_calibration_origins=4, min_points=12
)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Load values as they come from scrapes: ordinary, zero, negative, missing, infinite, and huge spikes.
loads = st.one_of(
    st.floats(min_value=0, max_value=1e4),
    st.just(0.0),
    st.floats(min_value=-1e3, max_value=0),
    st.just(float("nan")),
    st.sampled_from([float("inf"), float("-inf")]),
    st.floats(min_value=1e6, max_value=1e13),
)


@st.composite
def samples(draw: st.DrawFn, max_size: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """(at_s, values): a regular hourly grid with some samples missing, in a shape hypothesis picks."""
    n = draw(st.integers(min_value=0, max_value=max_size))
    kind = draw(st.sampled_from(["mixed", "constant", "zeros", "seasonal+spikes"]))
    if kind == "mixed":
        values = np.array(draw(st.lists(loads, min_size=n, max_size=n)), dtype=np.float64)
    elif kind == "constant":
        values = np.full(n, draw(st.floats(min_value=0, max_value=1e9)))
    elif kind == "zeros":
        values = np.zeros(n)
    else:
        t = np.arange(n)
        values = 100 + 50 * np.sin(2 * np.pi * t / SEASON)
        spikes = draw(st.lists(st.integers(min_value=0, max_value=max(n - 1, 0)), max_size=5))
        if n:
            values[spikes] = draw(st.floats(min_value=1e3, max_value=1e12))
    keep = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.bool_)
    keep |= draw(st.booleans())  # half the time, keep every sample
    at_s = 1.7e9 + STEP * np.arange(n, dtype=np.float64)
    return at_s[keep], values[keep]


@SETTINGS
@given(samples(), st.booleans())
def test_prepared_series_is_finite_and_non_negative(
    data: tuple[np.ndarray, np.ndarray], counter: bool
) -> None:
    at_s, values = data
    series = prepare(at_s, values, STEP, season_steps=SEASON, counter=counter)
    assert np.isfinite(series.values).all()
    assert (series.values >= 0).all()
    assert series.observed.shape == series.values.shape


@SETTINGS
@given(samples(), st.integers(min_value=1, max_value=4), st.floats(min_value=0.5, max_value=0.99))
def test_coarse_forecast_is_finite_and_non_negative(
    data: tuple[np.ndarray, np.ndarray], horizon: int, quantile: float
) -> None:
    at_s, values = data
    forecaster = Forecaster(CONFIG)
    forecaster.fit(prepare(at_s, values, STEP, season_steps=SEASON))
    forecast = forecaster.forecast(horizon, quantile)
    for part in (forecast.mean, forecast.upper):
        assert part.shape == (horizon,)
        assert np.isfinite(part).all()
        assert (part >= 0).all()
    assert forecast.model
    assert forecast.reason
    event(forecast.model)


@SETTINGS
@given(samples(), st.lists(loads, min_size=0, max_size=30), st.integers(min_value=1, max_value=30))
def test_fine_forecast_is_finite_and_non_negative(
    data: tuple[np.ndarray, np.ndarray], fine_values: list[float], horizon: int
) -> None:
    at_s, values = data
    forecaster = Forecaster(CONFIG)
    coarse = prepare(at_s, values, STEP, season_steps=SEASON)
    forecaster.fit(coarse)
    fine_at = coarse.end_s + 60.0 * np.arange(len(fine_values))
    fine = prepare(fine_at, fine_values, 60.0)
    forecaster.update(fine)
    if not len(fine):  # no fine data: a coarse forecast, which stops at the fitted horizon
        horizon = min(horizon, CONFIG.horizon_steps)
    forecast = forecaster.forecast(horizon, 0.9)
    assert forecast.mean.shape == forecast.upper.shape == (horizon,)
    assert np.isfinite(forecast.mean).all() and np.isfinite(forecast.upper).all()
    assert (forecast.mean >= 0).all() and (forecast.upper >= 0).all()


@SETTINGS
@given(st.floats(min_value=0, max_value=1e9), st.integers(min_value=30, max_value=100))
def test_constant_series_forecasts_the_constant(level: float, n: int) -> None:
    forecaster = Forecaster(CONFIG)
    forecaster.fit(prepare(1.7e9 + STEP * np.arange(n), np.full(n, level), STEP, season_steps=SEASON))
    forecast = forecaster.forecast(4)
    assert forecast.model == "constant"
    np.testing.assert_allclose(forecast.mean, level)
    np.testing.assert_allclose(forecast.upper, level)
