"""The burst reserve (scaler.bursts): zero without bursts, held after clustered bursts, gone after."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaler.bursts import HORIZON_S, MIN_AFTER, BurstReserve, Reserve
from scaler.choice import Parts, PipelineChoice

STEP_S = 15.0
LEAD = 12
"""Windows are scored a lead time (12 steps) after they are made, as the live target scores them."""
DAY = round(86400 / STEP_S)


def run(peaks: np.ndarray, centre: float = 100.0, margin: float = 13.0) -> tuple[BurstReserve, list[float]]:
    """A fixed bound (centre + margin) against `peaks` (the peak of each window made at each step);
    the reserve held at each step."""
    burst = BurstReserve(0.9, window=DAY)
    made: list[tuple[float, Reserve]] = []
    held = []
    for i in range(peaks.size):
        at_s = i * STEP_S
        if i >= LEAD:
            made_s, reserve = made[i - LEAD]
            burst.score(made_s, reserve, float(peaks[i - LEAD]), centre + margin, centre)
        reserve = burst.reserve(at_s, centre + margin)
        made.append((at_s, reserve))
        held.append(reserve.value)
    return burst, held


def clustered(
    rng: np.random.Generator, steps: int, *, every: int, size: float, cluster_hours: float
) -> np.ndarray:
    """Gaussian noise (sd 5 around 100, within the 13 margin) with bursts of `size` x the level, 2
    minutes long, every `every` steps during one `cluster_hours` episode each 6 hours."""
    peaks = 100.0 + 5.0 * rng.standard_normal(steps)
    episode = round(cluster_hours * 3600 / STEP_S)
    six_hours = round(6 * 3600 / STEP_S)
    for i in range(steps):
        if i % six_hours < episode and i % every < 8:
            peaks[i] = 100.0 * (1 + size) + 5.0 * rng.standard_normal()
    return peaks


def test_the_reserve_is_zero_for_traffic_without_bursts() -> None:
    """Gaussian noise the bound covers at 0.9, for three days: windows past twice the margin are rare
    and do not follow each other, so no reserve is ever held."""
    rng = np.random.default_rng(7)
    burst, held = run(100.0 + 10.0 * rng.standard_normal(3 * DAY))
    assert max(held) == 0.0
    assert burst.bursts < 0.01 * 3 * DAY  # a few windows past 2.6 sd, as the Gaussian has
    assert not burst.share_after > 0.1  # NaN (never after a burst) or the rare windows' rate


def test_the_reserve_is_zero_for_a_ramp_the_bound_follows() -> None:
    """A smooth daily cycle whose bound tracks it (the seasonal forecast's case): nothing is a burst."""
    burst = BurstReserve(0.9, window=DAY)
    t = np.arange(2 * DAY) * STEP_S
    level = 100.0 + 80.0 * np.sin(2 * math.pi * t / 86400.0)
    held = []
    for i in range(t.size):
        if i >= LEAD:
            window = level[i - LEAD : i + 1]
            centre = float(window.max())
            burst.score(t[i - LEAD], Reserve(0.0, False), float(window.max()), centre * 1.1, centre)
        held.append(burst.reserve(float(t[i]), float(level[i]) * 1.1).value)
    assert burst.bursts == 0
    assert max(held) == 0.0


def test_clustered_bursts_hold_a_reserve_after_each_burst_and_none_between_clusters() -> None:
    rng = np.random.default_rng(3)
    peaks = clustered(rng, 2 * DAY, every=40, size=1.0, cluster_hours=2.0)
    burst, held = run(peaks)
    held_at = np.array(held)
    assert burst.bursts > 0
    assert burst.share_after > 0.1  # clustered: windows after a burst are bursts far above 1 - q
    # Within the second cluster (hours 6-8) the reserve is held, and of the size of the bursts.
    second = slice(round(6.5 * 3600 / STEP_S), round(8 * 3600 / STEP_S))
    assert (held_at[second] > 0).mean() > 0.8
    assert 50.0 < np.median(held_at[second][held_at[second] > 0]) < 150.0
    # An hour (the horizon) after a cluster's last burst, until the next cluster, nothing is held.
    last_burst_step = round(8 * 3600 / STEP_S) - 40 + 8
    calm = slice(last_burst_step + LEAD + round(HORIZON_S / STEP_S) + 1, round(12 * 3600 / STEP_S))
    assert held_at[calm].max() == 0.0


def test_the_reserve_covers_the_windows_after_a_burst_at_about_the_quantile() -> None:
    """Sized at the mixture's quantile, the reserved bound covers most windows after a burst, where
    the bound alone misses every burst."""
    rng = np.random.default_rng(11)
    peaks = clustered(rng, 3 * DAY, every=30, size=0.8, cluster_hours=3.0)
    burst = BurstReserve(0.9, window=DAY)
    made: list[tuple[float, Reserve, float]] = []
    covered_with, covered_without, after = 0, 0, 0
    for i in range(peaks.size):
        if i >= LEAD:
            made_s, reserve, bound = made[i - LEAD]
            peak = float(peaks[i - LEAD])
            if reserve.after_burst and made_s > DAY * STEP_S:
                after += 1
                covered_with += peak <= bound + reserve.value
                covered_without += peak <= bound
            burst.score(made_s, reserve, peak, bound, 100.0)
        made.append((i * STEP_S, burst.reserve(i * STEP_S, 113.0), 113.0))
    assert after > 1000
    assert covered_with / after > 0.85
    assert covered_without / after < covered_with / after - 0.1


def test_isolated_bursts_hold_no_reserve() -> None:
    """One burst every 3 hours: after a burst the next hour is calm, so p stays below 1 - q."""
    rng = np.random.default_rng(5)
    peaks = 100.0 + 10.0 * rng.standard_normal(2 * DAY)
    every = round(3 * 3600 / STEP_S)
    for start in range(every // 2, peaks.size, every):
        peaks[start : start + 8] = 200.0
    burst, held = run(peaks)
    assert burst.bursts >= 8 * 10
    assert burst.share_after < 0.1
    assert max(held) == 0.0


def test_a_reserve_needs_evidence_before_it_is_held() -> None:
    burst = BurstReserve(0.9, window=DAY)
    burst.score(0.0, Reserve(0.0, False), 300.0, 113.0, 100.0)  # one burst
    for i in range(MIN_AFTER - 1):
        burst.score(15.0 * (i + 1), Reserve(0.0, True), 300.0, 113.0, 100.0)
    assert burst.reserve(15.0 * MIN_AFTER, 113.0).value == 0.0
    burst.score(15.0 * MIN_AFTER, Reserve(0.0, True), 300.0, 113.0, 100.0)
    reserve = burst.reserve(15.0 * (MIN_AFTER + 1), 113.0)
    assert reserve.after_burst
    assert reserve.value == pytest.approx(300.0 - 113.0)


@pytest.mark.parametrize(
    ("quantile", "window", "named"),
    [(0.0, 10, "quantile 0.0"), (1.0, 10, "quantile 1.0"), (0.9, 0, "window 0")],
)
def test_bad_settings_are_refused_by_name(quantile: float, window: int, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        BurstReserve(quantile, window=window)


def test_the_choice_serves_the_reserve_on_top_of_the_calibrated_bound_and_not_for_reactive() -> None:
    """Through `PipelineChoice`: the forecast's served value carries the reserve after clustered
    bursts; with `bursts=False` it never does; the reactive candidate never has one."""
    rng = np.random.default_rng(3)
    peaks = clustered(rng, DAY // 2, every=40, size=1.0, cluster_hours=6.0)

    def drive(bursts: bool) -> tuple[PipelineChoice, list[float]]:
        choice = PipelineChoice(0.9, window=DAY, pipeline="forecast", gain=0.0, bursts=bursts)
        served = []
        for i in range(peaks.size):
            at_s = i * STEP_S
            choice.actual(at_s, float(peaks[i]))
            got = choice.serve(at_s, at_s + LEAD * STEP_S, float(peaks[i]), {"forecast": Parts(100.0, 113.0)})
            assert got.value is not None
            served.append(got.value)
        return choice, served

    with_reserve, served = drive(True)
    without, plain = drive(False)
    assert set(plain) == {113.0}
    assert max(served) > 150.0
    assert with_reserve.burst("reactive") is None
    assert without.burst("forecast") is None
    forecast = with_reserve.burst("forecast")
    assert forecast is not None and forecast.bursts > 0
