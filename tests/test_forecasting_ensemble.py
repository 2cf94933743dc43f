"""forecasting.ensemble: the menu follows the history, every failure is recorded, the fallback chain."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from forecasting.base import FloatArray, ForecastConfig
from forecasting.ensemble import fit_ensemble, seasons_for
from forecasting.models import Member, ModelError, SeasonalNaiveMember, fit_member
from forecasting.prepare import Series

STEP = 3600.0
CONFIG = ForecastConfig(horizon_steps=6, calibration_origins=12)


def series(values: FloatArray) -> Series:
    return Series(0.0, STEP, np.asarray(values, dtype=np.float64), np.ones(len(values), dtype=np.bool_))


def daily(days: float, seed: int = 0, noise: float = 3.0) -> Series:
    rng = np.random.default_rng(seed)
    t = np.arange(int(days * 24))
    return series(
        np.maximum(0, 60 + 25 * np.sin(2 * np.pi * t / 24) + 3 * rng.standard_normal(t.size) * noise / 3)
    )


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        pytest.param(30, (), id="one-season"),
        pytest.param(47, (), id="under-two-seasons"),
        pytest.param(48, (24,), id="two-seasons"),
        pytest.param(335, (24,), id="under-two-weeks"),
        pytest.param(336, (24, 168), id="two-weeks"),
    ],
)
def test_seasons_follow_the_history(n: int, expected: tuple[int, ...]) -> None:
    assert seasons_for(n, 24, CONFIG) == expected


def test_seasonal_history_fits_every_member_and_answers_with_the_ensemble() -> None:
    result = fit_ensemble(daily(8), CONFIG)
    assert result.model == "ensemble"
    assert [r.name for r in result.members] == ["seasonal_naive", "auto_ets", "mstl", "auto_theta"]
    assert all(r.ok for r in result.members)
    assert set(result.candidates) == {"seasonal_naive", "auto_ets", "auto_theta", "mstl", "ensemble"}
    answer = result.answer
    assert answer is not None
    assert answer.mean.shape == (6,)
    assert answer.residuals.shape == (12, 6)
    assert result.origins == 12
    assert result.reason.startswith("median of seasonal_naive")


def test_under_two_seasons_uses_non_seasonal_members_only() -> None:
    result = fit_ensemble(daily(1.9), CONFIG)
    names = [r.name for r in result.members]
    assert names == ["naive", "auto_ets", "auto_theta"]
    assert result.model in {"ensemble", "naive"}


@pytest.mark.parametrize(
    ("n", "match"),
    [
        pytest.param(10, "needs at least 30 points", id="under-min-points"),
        pytest.param(20, "needs at least 30 points", id="under-a-season"),
    ],
)
def test_very_short_history_gets_no_model(n: int, match: str) -> None:
    result = fit_ensemble(daily(n / 24), CONFIG)
    assert result.model == "none"
    assert match in result.reason
    assert result.answer is None


def test_history_too_short_to_calibrate_gets_no_model() -> None:
    config = ForecastConfig(horizon_steps=20, calibration_origins=12, min_calibration_origins=10)
    result = fit_ensemble(daily(1.5), config)
    assert result.model == "none"
    assert "calibrating needs" in result.reason


@pytest.mark.parametrize("level", [0.0, 42.0])
def test_constant_history_forecasts_the_constant(level: float) -> None:
    result = fit_ensemble(series(np.full(100, level)), CONFIG)
    assert result.model == "constant"
    answer = result.answer
    assert answer is not None
    np.testing.assert_allclose(answer.mean, level)
    np.testing.assert_allclose(answer.residuals, 0.0)


def test_a_failing_member_is_dropped_with_its_reason() -> None:
    def fit(name: str, y: FloatArray, seasons: tuple[int, ...], spec: str | None, until: int) -> Member:
        if name == "auto_theta":
            raise ModelError("auto_theta fit: Exception: Parameters out of range")
        return fit_member(name, y, seasons, spec, until)

    result = fit_ensemble(daily(8), CONFIG, fit=fit)
    failed = [r for r in result.members if not r.ok]
    assert [r.name for r in failed] == ["auto_theta"]
    assert "Parameters out of range" in failed[0].reason
    assert "auto_theta" not in result.candidates
    assert "Parameters out of range" in result.reason


def test_every_member_failing_falls_back_to_the_simple_model() -> None:
    def fit(name: str, y: FloatArray, seasons: tuple[int, ...], spec: str | None, until: int) -> Member:
        if name != "seasonal_naive":
            raise ModelError(f"{name} fit: boom")
        return fit_member(name, y, seasons, spec, until)

    result = fit_ensemble(daily(8), CONFIG, fit=fit)
    assert result.model == "seasonal_naive"
    assert "every other member failed" in result.reason


def test_the_simple_model_failing_means_no_model() -> None:
    def fit(name: str, y: FloatArray, seasons: tuple[int, ...], spec: str | None, until: int) -> Member:
        raise ModelError(f"{name} fit: boom")

    result = fit_ensemble(daily(8), CONFIG, fit=fit)
    assert result.model == "none"
    assert "the simple model failed" in result.reason


class _Biased:
    """A member forecasting the last value plus 50."""

    def __init__(self, name: str, y: FloatArray) -> None:
        self.name, self.spec, self._y = name, "1|biased", y

    def forecast_at(self, origin: int, h: int) -> FloatArray:
        return np.full(h, self._y[origin - 1] + 50.0)


def test_ensemble_worse_than_the_simple_model_falls_back_to_it() -> None:
    def fit(name: str, y: FloatArray, seasons: tuple[int, ...], spec: str | None, until: int) -> Member:
        return fit_member(name, y, seasons, spec, until) if name == "seasonal_naive" else _Biased(name, y)

    result = fit_ensemble(daily(8), CONFIG, fit=fit)
    assert result.model == "seasonal_naive"
    assert "the ensemble's rolling MAE" in result.reason
    assert "worse than" in result.reason


def test_time_budget_skips_the_members_not_yet_started() -> None:
    ticks = itertools.count(0.0, 1.0)  # each clock read advances one second

    result = fit_ensemble(daily(8), CONFIG, budget_s=2.5, clock=lambda: next(ticks))
    skipped = [r for r in result.members if not r.ok]
    assert skipped
    assert all("time budget 2.5 s" in r.reason for r in skipped)
    assert result.members[0].ok


def test_specs_are_reused_on_refit() -> None:
    first = fit_ensemble(daily(8), CONFIG)
    again = fit_ensemble(daily(8, seed=3), CONFIG, first.specs)
    assert first.reselected
    assert not again.reselected
    assert again.specs == first.specs


def test_inverse_error_weights_combine_members() -> None:
    config = ForecastConfig(horizon_steps=6, calibration_origins=12, combination="inverse_error")
    result = fit_ensemble(daily(8), config)
    assert "ensemble" in result.candidates
    assert result.reason.startswith(("inverse_error of", "seasonal_naive"))


def test_history_is_capped() -> None:
    config = ForecastConfig(horizon_steps=6, calibration_origins=12, max_history_s=5 * 86_400)
    seen: list[int] = []

    def fit(name: str, y: FloatArray, seasons: tuple[int, ...], spec: str | None, until: int) -> Member:
        seen.append(y.size)
        return SeasonalNaiveMember(y, seasons[0] if seasons else 1)

    fit_ensemble(daily(9), config, fit=fit)
    assert set(seen) == {5 * 24}
