"""forecasting.theta: AutoTheta's `forward` and statsmodels' seasonal decomposition, recomputed in a
fraction of their time, give the same floats (not merely close ones): the simulator's results must
not move when its forecasts get faster."""

from __future__ import annotations

import numpy as np
import pytest
from statsforecast.models import AutoTheta
from statsmodels.tsa.seasonal import seasonal_decompose

from forecasting.models import ModelError, fit_member
from forecasting.theta import forward_mean, seasonal_profile


def _series(size: int, period: int, rng: np.random.Generator, level: float) -> np.ndarray:
    t = np.arange(size)
    shape = 20 * np.sin(2 * np.pi * t / max(period, 2)) * rng.uniform(0, 1.5)
    return np.asarray(level + shape + rng.normal(0, rng.uniform(0.5, 8), size), dtype=np.float64)


@pytest.mark.parametrize("kind", ["multiplicative", "additive"])
def test_seasonal_profile_is_statsmodels_seasonal_decompose(kind: str) -> None:
    rng = np.random.default_rng(11)
    compared = 0
    # Phases of fewer than 8 values (summed one by one), of 8 to 128 (eight accumulators) and of
    # more (halves): numpy's three ways of summing a phase.
    for period, rows in [
        (288, 7),
        (288, 6),
        (288, 8),
        (24, 12),
        (12, 40),
        (7, 9),
        (5, 3),
        (3, 300),
        (2, 700),
    ]:
        for extra in (0, 1, period // 2):
            x = _series(rows * period + extra, period, rng, 60.0) * 10 ** rng.uniform(-2, 2)
            if kind == "multiplicative":
                x = np.abs(x) + 1e-3
            expected = seasonal_decompose(x, model=kind, period=period).seasonal
            assert np.array_equal(seasonal_profile(x, period, kind), expected)
            compared += 1
    assert compared == 27


@pytest.mark.parametrize("variant", ["STM", "OTM", "DSTM", "DOTM"])
@pytest.mark.parametrize(
    ("period", "level"),
    [
        pytest.param(288, 50.0, id="daily-positive-multiplicative"),
        pytest.param(24, 2.0, id="crossing-zero-additive"),
        pytest.param(12, 50.0, id="short-season"),
        pytest.param(1, 50.0, id="not-seasonal"),
    ],
)
def test_forward_mean_is_autothetas_forward(variant: str, period: int, level: float) -> None:
    rng = np.random.default_rng(period + len(variant))
    size = 7 * period if period > 1 else 300
    y = _series(size + 60, period, rng, level)
    model = AutoTheta(season_length=period, model=variant)
    model.fit(y=y[:size])
    for origin in (size - 30, size, size + 60):
        window = y[max(0, origin - size) : origin]
        expected = model.forward(y=window, h=16)["mean"]
        assert np.array_equal(forward_mean(model.model_, window, 16), expected)
    decomposed = model.model_.get("decompose", False)
    assert decomposed == (period >= 4)


def test_the_member_forecasts_as_statsforecast_and_fails_by_model_error() -> None:
    rng = np.random.default_rng(3)
    y = _series(7 * 24 + 48, 24, rng, 40.0)
    member = fit_member("auto_theta", y, (24,), until=7 * 24)
    fitted = AutoTheta(season_length=24)
    fitted.fit(y=y[: 7 * 24])
    for origin in range(7 * 24, y.size + 1, 12):
        expected = fitted.forward(y=y[origin - 7 * 24 : origin], h=24)["mean"]
        assert np.array_equal(member.forecast_at(origin, 24), expected)
    broken = y.copy()
    broken[-1] = np.nan
    member = fit_member("auto_theta", broken, (24,), until=7 * 24)
    with pytest.raises(ModelError, match="auto_theta"):
        member.forecast_at(broken.size, 24)
