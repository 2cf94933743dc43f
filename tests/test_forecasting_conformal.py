"""forecasting.conformal: finite-sample ranks, coverage, the newsvendor quantile."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.conformal import check_quantile, margins, newsvendor_quantile, upper_bound


def test_margin_is_the_empirical_quantile_rank() -> None:
    residuals = np.arange(1.0, 20.0)[:, None]  # 19 residuals 1..19
    # ceil(19 * 0.9) = 18: the 18th smallest.
    assert margins(residuals, 0.9)[0] == 18.0
    # Too few residuals for the rank: the largest.
    assert margins(np.array([[1.0], [2.0], [3.0]]), 0.9)[0] == 3.0


def test_each_step_gets_its_own_margin() -> None:
    rng = np.random.default_rng(0)
    residuals = rng.standard_normal((200, 3)) * np.array([1.0, 2.0, 4.0])
    out = margins(residuals, 0.9)
    assert out[0] < out[1] < out[2]


def test_unscored_steps_take_the_nearest_scored_margin() -> None:
    residuals = np.array([[1.0, np.nan, np.nan, 5.0], [2.0, np.nan, np.nan, 6.0]])
    np.testing.assert_allclose(margins(residuals, 0.5), [1.0, 1.0, 5.0, 5.0])
    np.testing.assert_allclose(margins(np.full((2, 3), np.nan), 0.9), 0.0)


def test_coverage_on_exchangeable_errors_is_close_to_nominal() -> None:
    rng = np.random.default_rng(1)
    for quantile in (0.8, 0.9, 0.95):
        covered = []
        for _ in range(200):
            errors = rng.gamma(2.0, 3.0, size=(49, 1))  # skewed, like load errors
            covered.append(float(errors[-1, 0] <= margins(errors[:-1], quantile)[0]))
        assert abs(np.mean(covered) - quantile) < 0.05


def test_upper_bound_is_never_negative() -> None:
    upper = upper_bound(np.array([0.0, 1.0]), np.full((10, 2), -5.0), 0.9)
    np.testing.assert_allclose(upper, [0.0, 0.0])


def test_newsvendor_quantile() -> None:
    assert newsvendor_quantile(9.0, 1.0) == pytest.approx(0.9)
    assert newsvendor_quantile(1.0, 1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="costs must be > 0"):
        newsvendor_quantile(0.0, 1.0)


@pytest.mark.parametrize("quantile", [0.1, 0.49, 1.0, float("nan")])
def test_only_upper_quantiles_are_accepted(quantile: float) -> None:
    with pytest.raises(ValueError, match="must be in"):
        check_quantile(quantile)
