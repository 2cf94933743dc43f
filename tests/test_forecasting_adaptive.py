"""Adaptive conformal in the Forecaster: the quantile served follows the misses of the last fit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from forecasting.backtest import backtest
from forecasting.base import ForecastConfig
from forecasting.forecaster import HIGHEST_QUANTILE, LOWEST_QUANTILE, Forecaster
from forecasting.prepare import Series

STEP = 3600.0
CONFIG = ForecastConfig(horizon_steps=6, calibration_origins=12, members=("auto_ets",))


def daily(days: float, *, noise: float = 2.0, seed: int = 0) -> Series:
    rng = np.random.default_rng(seed)
    t = np.arange(int(days * 24))
    values = 60 + 25 * np.sin(2 * np.pi * t / 24) + rng.normal(0, noise, t.size)
    return Series(0.0, STEP, values, np.ones(t.size, dtype=np.bool_))


def extended(series: Series, values: np.ndarray) -> Series:
    """`series` followed by `values` on its grid."""
    joined = np.concatenate((series.values, values))
    return Series(series.start_s, series.step_s, joined, np.ones(joined.size, dtype=np.bool_))


def fitted(config: ForecastConfig = CONFIG) -> tuple[Forecaster, Series]:
    history = daily(8)
    forecaster = Forecaster(config)
    forecaster.fit(history)
    return forecaster, history


def test_misses_raise_the_quantile_served_and_covered_actuals_lower_it() -> None:
    forecaster, history = fitted()
    upper = forecaster.forecast(6, 0.9).upper
    forecaster.fit(extended(history, upper + 10))  # all six above the bound
    raised = forecaster.served_quantile(0.9)
    assert raised == pytest.approx(0.9 + CONFIG.adapt_rate * (6 - 0.1 * 6))
    after = forecaster.forecast(6, 0.9)
    assert "served for 0.9 (adaptive)" in after.reason
    grown = extended(history, upper + 10)
    forecaster.fit(extended(grown, np.zeros(6)))  # all six covered
    assert forecaster.served_quantile(0.9) == pytest.approx(raised - CONFIG.adapt_rate * 0.1 * 6)


def test_no_adaptation_without_a_rate_or_before_a_quantile_is_asked() -> None:
    forecaster, history = fitted(replace(CONFIG, adapt_rate=0.0))
    upper = forecaster.forecast(6, 0.9).upper
    forecaster.fit(extended(history, upper + 10))
    assert forecaster.served_quantile(0.9) == 0.9
    unasked, history = fitted()
    unasked.fit(extended(history, np.full(6, 1e6)))
    assert unasked.served_quantile(0.9) == 0.9


def test_asking_another_quantile_starts_from_no_shift() -> None:
    forecaster, history = fitted()
    upper = forecaster.forecast(6, 0.9).upper
    forecaster.fit(extended(history, upper + 10))
    assert forecaster.served_quantile(0.9) > 0.9
    assert forecaster.served_quantile(0.8) == 0.8
    assert forecaster.served_quantile(0.9) == 0.9


def test_the_quantile_served_stays_within_its_bounds() -> None:
    config = replace(CONFIG, adapt_rate=0.5)
    forecaster, history = fitted(config)
    upper = forecaster.forecast(6, 0.9).upper
    forecaster.fit(extended(history, upper + 10))
    assert forecaster.served_quantile(0.9) == HIGHEST_QUANTILE
    low, history = fitted(config)
    low.forecast(6, 0.9)
    low.fit(extended(history, np.zeros(6)))
    low.fit(extended(history, np.zeros(12)))
    assert low.served_quantile(0.9) == LOWEST_QUANTILE  # 0.9 - 2 x 0.5 x 0.1 x 6 = 0.3, held at 0.5


def test_an_adapt_rate_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"adapt_rate is -0\.1; it must be in"):
        ForecastConfig(adapt_rate=-0.1)


def test_as_the_noise_grows_adaptive_coverage_stays_nearer_the_quantile_asked() -> None:
    """Calibrated on the hours before each fit while the noise keeps growing: the plain conformal
    bound lags and under-covers; the adaptive one catches up."""
    plain, adaptive = [], []
    t = np.arange(20 * 24)
    scale = np.where(t < 240, 1.0, 1.0 + (t - 240) / 12)  # from day 10, +2 per day
    for seed in range(3):
        noise = np.random.default_rng(seed).normal(0, 1, t.size) * scale
        values = 60 + 25 * np.sin(2 * np.pi * t / 24) + noise
        series = Series(0.0, STEP, values, np.ones(t.size, dtype=np.bool_))
        result = backtest(series, CONFIG, quantile=0.9, origins=30)
        plain.append(result.scores["ensemble"].coverage)
        adaptive.append(result.scores["forecaster"].coverage)
    assert np.mean(plain) < 0.85
    assert np.mean(adaptive) - np.mean(plain) > 0.03
    assert all(a >= p for a, p in zip(adaptive, plain, strict=True))
