"""forecasting.models: each member fits, forecasts prefixes, reuses its selection, and fails by ModelError."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from forecasting.models import ForwardMember, ModelError, fit_member, guarded

SEASON = 24


def seasonal(days: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(days * SEASON)
    return 50 + 20 * np.sin(2 * np.pi * t / SEASON) + rng.normal(0, 2, t.size)


@pytest.mark.parametrize("name", ["seasonal_naive", "auto_ets", "auto_theta", "mstl"])
def test_member_forecasts_any_origin_with_finite_values(name: str) -> None:
    y = seasonal(6)
    member = fit_member(name, y, (SEASON,))
    for origin in (2 * SEASON, y.size - 5, y.size):
        out = member.forecast_at(origin, 5)
        assert out.shape == (5,)
        assert np.isfinite(out).all()
    assert member.spec.startswith(f"{SEASON}|")


def test_seasonal_naive_repeats_the_last_season() -> None:
    y = seasonal(3)
    member = fit_member("seasonal_naive", y, (SEASON,))
    np.testing.assert_allclose(member.forecast_at(y.size, SEASON), y[-SEASON:])
    assert fit_member("seasonal_naive", y, ()).name == "naive"


def test_mstl_follows_the_season() -> None:
    y = seasonal(6)
    out = fit_member("mstl", y, (SEASON,)).forecast_at(y.size - SEASON, SEASON)
    assert np.abs(out - y[-SEASON:]).mean() < 4.0


def test_mstl_takes_a_weekly_season_too() -> None:
    y = seasonal(15)
    member = fit_member("mstl", y, (SEASON, 7 * SEASON))
    assert member.spec.startswith(f"{SEASON}+{7 * SEASON}|")
    assert np.isfinite(member.forecast_at(y.size, 3)).all()


@pytest.mark.parametrize("name", ["auto_ets", "auto_theta", "mstl"])
def test_spec_is_reused_for_the_same_seasons(name: str) -> None:
    y = seasonal(6)
    first = fit_member(name, y, (SEASON,))
    again = fit_member(name, seasonal(6, seed=1), (SEASON,), spec=first.spec)
    assert again.spec == first.spec


def test_spec_for_other_seasons_is_ignored() -> None:
    y = seasonal(6)
    member = fit_member("auto_theta", y, (SEASON,), spec="288|DOTM")
    assert member.spec.startswith(f"{SEASON}|")


def test_ets_is_non_seasonal_beyond_24_steps() -> None:
    t = np.arange(3 * 48)
    y = 10 + np.sin(2 * np.pi * t / 48)
    member = fit_member("auto_ets", y, (48,))
    assert member.spec.startswith("1|")


def test_unknown_member_and_mstl_without_season_raise_model_error() -> None:
    with pytest.raises(ModelError, match="member `prophet` is unknown"):
        fit_member("prophet", seasonal(3), (SEASON,))
    with pytest.raises(ModelError, match="mstl needs a season"):
        fit_member("mstl", seasonal(3), ())


class _Broken:
    """A model whose forward raises or returns non-finite values."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def forward(self, y: np.ndarray, h: int) -> dict[str, Any]:
        if isinstance(self.result, Exception):
            raise self.result
        return {"mean": self.result}


@pytest.mark.parametrize(
    ("result", "match"),
    [
        pytest.param(
            RuntimeError("Parameters out of range"), "RuntimeError: Parameters out of range", id="raises"
        ),
        pytest.param(np.array([1.0, np.nan, 2.0]), "not 3 finite values", id="nan"),
        pytest.param(np.array([1.0, np.inf, 2.0]), "not 3 finite values", id="inf"),
        pytest.param(np.array([1.0]), "not 3 finite values", id="short"),
    ],
)
def test_member_failures_become_model_errors_naming_the_model(result: Any, match: str) -> None:
    member = ForwardMember("broken", "1|X", _Broken(result), np.ones(10), 10)
    with pytest.raises(ModelError, match=match) as caught:
        member.forecast_at(10, 3)
    assert "broken" in str(caught.value)


def test_guarded_silences_warnings() -> None:
    def warns() -> int:
        np.log(np.array([-1.0]))
        return 1

    assert guarded("log", warns) == 1
