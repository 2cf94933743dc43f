"""forecasting.backtest: every model scored on the same origins, progress reported, baselines scored."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.backtest import BacktestResult, backtest
from forecasting.base import FloatArray, ForecastConfig
from forecasting.prepare import Series

CONFIG = ForecastConfig(horizon_steps=6, calibration_origins=16)


def hourly(days: int, seed: int = 0) -> Series:
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    values = np.maximum(0, 100 + 40 * np.sin(2 * np.pi * t / 24) + rng.gamma(2.0, 4.0, t.size))
    return Series(0.0, 3600.0, values, np.ones(t.size, dtype=np.bool_))


@pytest.fixture(scope="module")
def result_and_calls() -> tuple[BacktestResult, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []
    result = backtest(
        hourly(12), CONFIG, quantile=0.9, origins=10, progress=lambda d, t: calls.append((d, t))
    )
    return result, calls


def test_every_model_is_scored(result_and_calls: tuple[BacktestResult, list[tuple[int, int]]]) -> None:
    result, _ = result_and_calls
    scores = result.scores
    assert {"forecaster", "ensemble", "seasonal_naive", "auto_ets", "auto_theta", "mstl"} <= set(scores)
    for name, score in scores.items():
        assert np.isfinite(score.mase) and score.mase > 0, name
        assert np.isfinite(score.pinball) and score.pinball >= 0, name
        assert 0 <= score.coverage <= 1, name
        assert 0 <= score.under_rate <= 1 - score.coverage + 1e-9, name
        assert score.origins == 10, name
    assert result.origins == 10
    assert sum(result.answered.values()) == 10
    assert result.select_s > 0


def test_ensemble_beats_seasonal_naive_and_covers_about_nominal(
    result_and_calls: tuple[BacktestResult, list[tuple[int, int]]],
) -> None:
    result, _ = result_and_calls
    scores = result.scores
    assert scores["ensemble"].mase < scores["seasonal_naive"].mase
    assert 0.7 <= scores["forecaster"].coverage <= 1.0


def test_progress_is_reported_per_origin(
    result_and_calls: tuple[BacktestResult, list[tuple[int, int]]],
) -> None:
    _, calls = result_and_calls
    assert calls == [(i, 10) for i in range(1, 11)]


def test_a_baseline_is_scored_on_the_same_origins() -> None:
    def flat(history: Series, h: int, quantile: float) -> tuple[FloatArray, FloatArray]:
        last = np.full(h, history.values[-1])
        return last, last * 1.5

    result = backtest(hourly(10), CONFIG, origins=3, baselines={"flat": flat})
    assert result.scores["flat"].origins == 3
    assert result.scores["flat"].coverage > 0


def test_too_short_series_skips_every_origin() -> None:
    result = backtest(hourly(1), CONFIG, origins=3)
    assert result.origins == 0
    assert result.skipped == 3
    assert result.answered == {"none": 3}
    assert result.scores == {}
