"""forecasting.prepare: every rule of the module docstring, one case each."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.prepare import Series, prepare

STEP = 60.0


def regular(values: list[float], start_s: float = 6000.0) -> tuple[np.ndarray, np.ndarray]:
    return start_s + STEP * np.arange(len(values)), np.asarray(values, dtype=np.float64)


def test_samples_are_averaged_into_bins_aligned_to_the_step() -> None:
    at_s = np.array([6000.0, 6010.0, 6070.0, 6130.0, 6150.0])
    series = prepare(at_s, [1.0, 3.0, 5.0, 7.0, 9.0], STEP)
    assert series.start_s == 6000.0
    np.testing.assert_allclose(series.values, [2.0, 5.0, 8.0])
    assert series.observed.all()
    assert series.end_s == 6180.0


def test_unsorted_samples_are_sorted() -> None:
    series = prepare([6120.0, 6000.0, 6060.0], [3.0, 1.0, 2.0], STEP)
    np.testing.assert_allclose(series.values, [1.0, 2.0, 3.0])


def test_short_gap_is_interpolated_linearly_and_marked_unobserved() -> None:
    at_s, values = regular([0.0, 1, 2, 3, 4, 5])
    keep = np.array([True, True, False, False, True, True])
    series = prepare(at_s[keep], values[keep], STEP, max_interpolate_steps=3)
    np.testing.assert_allclose(series.values, [0, 1, 2, 3, 4, 5])
    assert series.observed.tolist() == [True, True, False, False, True, True]
    assert "interpolated 1 short gaps" in series.notes


def test_long_gap_is_filled_from_the_previous_season() -> None:
    season = 6
    pattern = [1.0, 2, 3, 4, 5, 6]
    at_s, values = regular(pattern * 4)
    gone = np.zeros(values.size, dtype=bool)
    gone[14:19] = True  # 5 steps: longer than the 3 interpolated, shorter than the season
    series = prepare(at_s[~gone], values[~gone], STEP, season_steps=season)
    np.testing.assert_allclose(series.values, pattern * 4)
    assert not series.observed[14:19].any()
    assert series.observed[~gone].all()


def test_gap_longer_than_a_season_starts_the_history_after_it() -> None:
    at_s, values = regular([1.0] * 30)
    gone = np.zeros(30, dtype=bool)
    gone[10:20] = True
    series = prepare(at_s[~gone], values[~gone], STEP, season_steps=6)
    assert len(series) == 10
    assert series.start_s == at_s[20]
    assert any("dropped the 20 steps" in note for note in series.notes)


def test_long_gap_without_a_season_before_it_starts_the_history_after_it() -> None:
    at_s, values = regular([1.0] * 30)
    gone = np.zeros(30, dtype=bool)
    gone[3:8] = True
    series = prepare(at_s[~gone], values[~gone], STEP, season_steps=6)
    assert series.start_s == at_s[8]
    assert series.observed.all()


def test_long_gap_without_a_season_cuts_the_history() -> None:
    at_s, values = regular([1.0] * 20)
    gone = np.zeros(20, dtype=bool)
    gone[5:10] = True
    series = prepare(at_s[~gone], values[~gone], STEP)
    assert len(series) == 10


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
def test_non_finite_or_huge_values_become_missing(bad: float) -> None:
    at_s, values = regular([1.0, 2.0, bad, 4.0])
    series = prepare(at_s, values, STEP)
    np.testing.assert_allclose(series.values, [1.0, 2.0, 3.0, 4.0])
    assert series.observed.tolist() == [True, True, False, True]
    assert np.isfinite(series.values).all()


def test_non_finite_timestamps_are_dropped() -> None:
    series = prepare([6000.0, np.nan, 6060.0], [1.0, 50.0, 2.0], STEP)
    np.testing.assert_allclose(series.values, [1.0, 2.0])


def test_negative_values_are_clipped_to_zero() -> None:
    at_s, values = regular([3.0, -2.0, 5.0])
    series = prepare(at_s, values, STEP)
    np.testing.assert_allclose(series.values, [3.0, 0.0, 5.0])
    assert "clipped 1 negative values to 0" in series.notes


def test_counter_becomes_a_rate_and_a_drop_is_a_restart() -> None:
    # +60 per minute, a restart after 180 (the counter starts again from 0), then +60 per minute.
    at_s, values = regular([0.0, 60.0, 120.0, 180.0, 30.0, 90.0, 150.0])
    series = prepare(at_s, values, STEP, counter=True)
    # rates are stamped at the later sample: 1/s, except the restart step which counted 30 from zero.
    np.testing.assert_allclose(series.values, [1.0, 1.0, 1.0, 0.5, 1.0, 1.0])
    assert "counter restarted 1 times" in series.notes


def test_constant_and_all_zero_series_are_kept_as_they_are() -> None:
    for level in (0.0, 7.5):
        at_s, values = regular([level] * 10)
        series = prepare(at_s, values, STEP)
        np.testing.assert_allclose(series.values, level)


def test_no_usable_sample_gives_an_empty_series() -> None:
    series = prepare([1.0, 2.0], [np.nan, np.inf], STEP)
    assert len(series) == 0
    assert series.values.size == series.observed.size == 0


@pytest.mark.parametrize(
    ("at_s", "values", "step_s", "match"),
    [
        pytest.param([1.0], [1.0, 2.0], STEP, "they must match", id="length-mismatch"),
        pytest.param([1.0], [1.0], 0.0, "step_s is 0.0", id="zero-step"),
        pytest.param([1.0], [1.0], np.nan, "step_s is nan", id="nan-step"),
    ],
)
def test_bad_arguments_are_named(at_s: list[float], values: list[float], step_s: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        prepare(at_s, values, step_s)


def test_window_slices_and_moves_the_start() -> None:
    at_s, values = regular([0.0, 1, 2, 3, 4])
    series = prepare(at_s, values, STEP)
    tail = series.window(-2, None)
    assert isinstance(tail, Series)
    np.testing.assert_allclose(tail.values, [3, 4])
    assert tail.start_s == at_s[3]
    assert tail.end_s == series.end_s
    np.testing.assert_allclose(tail.centres_s(), at_s[3:] + STEP / 2)
