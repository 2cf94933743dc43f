"""The served bound's online calibration (`scaler.calibration`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaler.calibration import MAX_SCALE, MIN_SCALE, BoundCalibration, LeadWindows

STEP = 15.0


def run(
    calibration: BoundCalibration, peaks: np.ndarray, centre: np.ndarray, margin: float, lead_steps: int = 4
) -> list[float]:
    """One served bound per step for the next `lead_steps`, then the step's value observed: what the
    refresher does (score first, then serve)."""
    served = []
    for i, value in enumerate(peaks):
        at = i * STEP
        calibration.actual(at, float(value))
        served.append(
            calibration.serve(at, at + lead_steps * STEP, float(centre[i]), float(centre[i]) + margin)
        )
    return served


def test_a_window_is_scored_once_its_lead_time_has_passed_against_its_peak() -> None:
    calibration = BoundCalibration(0.9, window=10, gain=0.0)
    assert calibration.serve(0.0, 60.0, centre=10.0, bound=12.0) == 12.0  # no correction yet
    calibration.actual(30.0, 13.0)  # above the bound inside the window
    assert calibration.evaluations == 0
    calibration.actual(60.0, 9.0)
    assert (calibration.evaluations, calibration.coverage) == (1, 0.0)
    assert calibration.scale == 1.0  # gain 0: scored, never corrected


@pytest.mark.parametrize("quantile", [0.8, 0.9, 0.98])
def test_coverage_follows_the_quantile_whatever_the_band_first_was(quantile: float) -> None:
    rng = np.random.default_rng(7)
    steps = 40_000
    noise = rng.normal(0.0, 3.0, steps)
    # The band's own margin (1) is far too narrow for noise of sd 3; the correction widens it.
    calibration = BoundCalibration(quantile, window=steps, gain=0.01)
    run(calibration, 100.0 + noise, np.full(steps, 100.0), margin=1.0, lead_steps=1)
    assert calibration.coverage == pytest.approx(quantile, abs=0.01)
    wide = BoundCalibration(quantile, window=steps, gain=0.0)
    run(wide, 100.0 + noise, np.full(steps, 100.0), margin=1.0, lead_steps=1)
    assert abs(wide.coverage - quantile) > 0.05  # uncorrected, it is off


def test_a_level_shift_widens_the_margin_within_a_few_lead_times_and_it_narrows_after() -> None:
    rng = np.random.default_rng(3)
    steps, shift = 6000, 2000
    peaks = 100.0 + rng.normal(0.0, 2.0, steps)
    peaks[shift:] += 10.0  # demand moves up; the forecast's centre does not
    calibration = BoundCalibration(0.9, window=400, gain=0.02)
    served = np.array(run(calibration, peaks, np.full(steps, 100.0), margin=4.0))
    before = served[shift - 1]
    after = served[shift + 200]
    assert after > before + 8.0  # about the shift, within 200 steps (50 lead times)
    assert calibration.coverage == pytest.approx(0.9, abs=0.05)  # the last 400 windows, after the shift


def test_the_scale_stays_within_its_bounds() -> None:
    high = BoundCalibration(0.9, window=10, gain=1.0)
    run(high, np.full(200, 1e9), np.zeros(200), margin=1.0, lead_steps=1)  # never covered
    assert high.scale == pytest.approx(MAX_SCALE)
    low = BoundCalibration(0.9, window=10, gain=1.0)
    run(low, np.zeros(2000), np.zeros(2000), margin=1.0, lead_steps=1)  # always covered
    assert low.scale == pytest.approx(MIN_SCALE)


def test_windows_of_different_lead_times_are_each_scored_when_due() -> None:
    calibration = BoundCalibration(0.9, window=10, gain=0.0)
    calibration.serve(0.0, 120.0, centre=0.0, bound=5.0)  # a long lead time first
    calibration.serve(15.0, 60.0, centre=0.0, bound=5.0)  # then a shorter one (`leadTime: auto`)
    calibration.actual(60.0, 1.0)
    assert calibration.evaluations == 1
    calibration.actual(120.0, 6.0)
    assert (calibration.evaluations, calibration.coverage) == (2, 0.5)


def test_non_finite_values_are_neither_served_nor_scored() -> None:
    calibration = BoundCalibration(0.9, window=10)
    assert math.isnan(calibration.serve(0.0, 10.0, centre=math.nan, bound=1.0))
    calibration.actual(10.0, math.inf)
    assert calibration.evaluations == 0 and math.isnan(calibration.coverage)


@pytest.mark.parametrize(
    ("quantile", "window", "gain"), [(0.0, 10, 0.01), (1.0, 10, 0.01), (0.9, 0, 0.01), (0.9, 10, -1.0)]
)
def test_bad_settings_are_refused_by_name(quantile: float, window: int, gain: float) -> None:
    with pytest.raises(ValueError, match=r"quantile|window|gain"):
        BoundCalibration(quantile, window=window, gain=gain)


def test_lead_windows_give_each_window_the_peak_of_the_values_inside_it() -> None:
    """Against the definition, with lead times that vary from step to step (`leadTime: auto`)."""
    rng = np.random.default_rng(5)
    windows: LeadWindows[int] = LeadWindows()
    made: dict[int, tuple[float, float]] = {}
    seen: list[tuple[float, float]] = []
    got: dict[int, float] = {}
    for i in range(3000):
        at = i * STEP
        value = float(rng.normal(10.0, 3.0))
        seen.append((at, value))
        for peak, name in windows.observe(at, value):
            got[name] = peak
            assert made[name][1] <= at
        due = at + STEP * int(rng.integers(1, 30))
        windows.add(due, i)
        made[i] = (at, due)
    for name, peak in got.items():
        start, due = made[name]
        first_after_due = next(a for a, _ in seen if a >= due)
        assert peak == max(v for a, v in seen if start < a <= first_after_due)
    assert len(got) + len(windows) == 3000
