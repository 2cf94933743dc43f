"""Start-ups timed from the replicas asked for and ready: hand-computed cases, then the simulator's day."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest

from scaler.readiness import MAX_PENDING_RUNS, MIN_STARTUPS, WINDOW, LeadTimeEstimate, ReadinessTracker
from scaler.sim.cluster import Cluster
from scaler.sim.service import ClusterConfig

STEP_S = 15.0


def _track(
    samples: Iterable[tuple[float, float | None, float | None]],
    *,
    fallback_s: float = 180.0,
    min_startups: int = MIN_STARTUPS,
    max_startup_s: float = 3600.0,
) -> LeadTimeEstimate:
    tracker = ReadinessTracker(
        step_s=STEP_S, fallback_s=fallback_s, min_startups=min_startups, max_startup_s=max_startup_s
    )
    for at_s, desired, ready in samples:
        tracker.observe(at_s, desired, ready)
    return tracker.estimate()


def _scrapes(
    desired: dict[float, int], ready: dict[float, int], until_s: float
) -> list[tuple[float, float | None, float | None]]:
    """Samples every STEP_S from 0 of two step functions given by their changes {time: new value}."""
    samples: list[tuple[float, float | None, float | None]] = []
    d = r = 0
    for k in range(int(until_s / STEP_S) + 1):
        at = k * STEP_S
        d = desired.get(at, d)
        r = ready.get(at, r)
        samples.append((at, float(d), float(r)))
    return samples


def test_one_scale_up_of_three_replicas_at_a_15s_scrape() -> None:
    # 2 -> 5 first seen at 30 s; the three are first seen ready at 150, 180 and 240 s.
    samples = _scrapes({0: 2, 30: 5}, {0: 2, 150: 3, 180: 4, 240: 5}, 300)
    estimate = _track(samples, min_startups=3)
    assert (estimate.startups, estimate.timed, estimate.untimed, estimate.cancelled) == (3, 3, 0, 0)
    assert estimate.p50_s == 150.0
    # numpy's linear percentile of 120, 150, 210 at 0.9: 150 + 0.8 x 60.
    assert estimate.upper_s == pytest.approx(198.0)
    assert estimate.measured
    assert estimate.lead_time_s == estimate.upper_s


def test_a_replica_ready_by_the_sample_that_shows_it_asked_for_counts_as_zero() -> None:
    estimate = _track(_scrapes({0: 1, 45: 2}, {0: 1, 45: 2}, 60), min_startups=1)
    assert (estimate.timed, estimate.p50_s) == (1, 0.0)


def test_the_fallback_until_min_startups_then_the_measurement() -> None:
    tracker = ReadinessTracker(step_s=STEP_S, fallback_s=420.0)
    assert tracker.estimate() == tracker.estimate()
    assert (tracker.estimate().lead_time_s, tracker.estimate().measured) == (420.0, False)
    assert math.isnan(tracker.estimate().upper_s)
    at = 0.0
    tracker.observe(at, 1, 1)
    for n in range(1, MIN_STARTUPS + 1):
        # one replica at a time, each ready 60 s after it was asked for.
        for _ in range(4):
            tracker.observe(at := at + STEP_S, n + 1, n)
        tracker.observe(at := at + STEP_S, n + 1, n + 1)
        estimate = tracker.estimate()
        assert estimate.timed == n
        assert estimate.measured is (n >= MIN_STARTUPS)
        assert estimate.lead_time_s == (60.0 if n >= MIN_STARTUPS else 420.0)


def test_a_scale_down_mid_start_up_cancels_the_newest_pending() -> None:
    # 2 -> 6 at 15 (4 pending); 6 -> 4 at 60 cancels two; the two left are ready at 90 and 120.
    samples = _scrapes({0: 2, 15: 6, 60: 4}, {0: 2, 90: 3, 120: 4}, 200)
    tracker = ReadinessTracker(step_s=STEP_S, fallback_s=180.0, min_startups=1)
    for at_s, desired, ready in samples:
        tracker.observe(at_s, desired, ready)
    estimate = tracker.estimate()
    assert (estimate.timed, estimate.cancelled, tracker.pending) == (2, 2, 0)
    assert estimate.p50_s == 90.0  # median of 75 and 105


def test_ready_never_reaching_desired_before_the_next_decrease() -> None:
    # 2 -> 5 at 15; ready 3 at 120, 4 at 150; 5 -> 4 at 210 cancels the third, never ready.
    samples = _scrapes({0: 2, 15: 5, 210: 4}, {0: 2, 120: 3, 150: 4}, 600)
    estimate = _track(samples, min_startups=1)
    assert (estimate.timed, estimate.cancelled, estimate.untimed) == (2, 1, 0)
    # The cancelled one is kept as longer than its 180 s pending at 195 s, drawn from the model.
    assert (estimate.startups, estimate.p50_s) == (3, 135.0)
    assert 135.0 + 0.8 * (180.0 - 135.0) < estimate.upper_s <= 135.0 + 0.8 * (3600.0 - 135.0)
    # Before the model rests on enough start-ups seen, a cancelled one is only counted.
    early = _track(samples)
    assert (early.startups, early.cancelled, early.p50_s) == (2, 1, 120.0)


def test_a_replica_losing_readiness_is_not_a_start_up() -> None:
    # steady at 4; one replica restarts (ready 4 -> 3 at 30) and is back at 300.
    samples = _scrapes({0: 4}, {0: 4, 30: 3, 300: 4}, 400)
    estimate = _track(samples)
    assert (estimate.timed, estimate.untimed, estimate.startups) == (0, 1, 0)


def test_the_first_sample_deficit_is_not_timed() -> None:
    # the tracker starts while 3 replicas are starting: when they were asked for is unknown.
    estimate = _track(_scrapes({0: 5}, {0: 2, 60: 5}, 90))
    assert (estimate.timed, estimate.untimed) == (0, 3)


def test_noise_missing_absurd_and_stale_samples_are_skipped() -> None:
    samples: list[tuple[float, float | None, float | None]] = [
        (0.0, 2.0, 2.0),
        (15.0, 4.0, 2.0),  # two asked for
        (30.0, None, 2.0),  # desired not read
        (45.0, 4.0, math.nan),
        (45.0, 4.0, 3.0),  # retried: a valid sample at 45 s
        (40.0, 4.0, 4.0),  # older than the last: skipped
        (60.0, -1.0, 3.0),
        (75.0, 4.0, 1e9),
        (90.0, math.inf, 3.0),
        (105.0, 4.0000001, 3.9999999),  # rounded: 4 and 4
        (120.0, 4.0, 4.0),
    ]
    estimate = _track(samples, min_startups=1)
    assert estimate.skipped == 6
    # ready at 45 (30 s), and at 105 after a gap of 60 s (> 2 steps): that one is untimed.
    assert (estimate.timed, estimate.untimed, estimate.p50_s) == (1, 1, 30.0)


def test_rises_seen_after_a_gap_are_not_timed() -> None:
    samples = [(0.0, 2.0, 2.0), (15.0, 2.0, 2.0), (90.0, 4.0, 2.0), (105.0, 4.0, 3.0), (120.0, 4.0, 4.0)]
    estimate = _track(samples)
    assert (estimate.timed, estimate.untimed) == (0, 2)


def test_a_replica_pending_past_max_startup_is_stuck_not_timed() -> None:
    samples = _scrapes({0: 1, 15: 3}, {0: 1, 60: 2, 900: 3}, 960)
    estimate = _track(samples, min_startups=1, max_startup_s=600.0)
    assert (estimate.timed, estimate.stuck, estimate.untimed, estimate.p50_s) == (1, 1, 1, 45.0)


def test_a_big_batch_fills_the_window_and_no_more() -> None:
    estimate = _track(_scrapes({0: 0, 15: 5000}, {0: 0, 75: 5000}, 90))
    assert (estimate.timed, estimate.startups, estimate.lead_time_s) == (5000, WINDOW, 60.0)


def test_memory_is_bounded_by_merging_the_oldest_runs_untimed() -> None:
    # one more replica asked for every second, none ready for 600 s, then all at once.
    extra = 600
    tracker = ReadinessTracker(step_s=1.0, fallback_s=180.0)
    tracker.observe(0.0, 0, 0)
    for k in range(1, extra + 1):
        tracker.observe(float(k), k, 0)
    assert tracker.pending == extra
    tracker.observe(extra + 1.0, extra, extra)
    estimate = tracker.estimate()
    merged = extra - MAX_PENDING_RUNS + 1
    assert (estimate.untimed, estimate.timed, tracker.pending) == (merged, extra - merged, 0)
    assert estimate.startups == WINDOW


def test_equal_samples_give_equal_estimates() -> None:
    samples = _day(seed=3, config=ClusterConfig(startup_delay_s=180.0, startup_p95_s=300.0))
    assert _track(samples) == _track(samples)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        pytest.param({"step_s": 0.0}, "step_s is 0.0; it must be > 0", id="step"),
        pytest.param({"fallback_s": math.nan}, "fallback_s is nan", id="fallback"),
        pytest.param({"quantile": 1.0}, "quantile is 1.0; it must be in (0, 1)", id="quantile"),
        pytest.param({"min_startups": 0}, "min_startups is 0; it must be from 1 to window (256)", id="min"),
        pytest.param({"max_startup_s": math.inf}, "max_startup_s is inf", id="max"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], fragment: str) -> None:
    settings: dict[str, Any] = {"step_s": STEP_S, "fallback_s": 180.0, **kwargs}
    with pytest.raises(ValueError, match=re.escape(fragment)):
        ReadinessTracker(**settings)


# --- the simulator's start-ups over a day of diurnal scaling --------------------------------------

TICK_S = 5.0
DAY_S = 86400.0
SCALE_DOWN_WINDOW_S = 300.0  # the HPA's default scale-down stabilisation


def _day(
    seed: int, config: ClusterConfig, low: float = 6.0, high: float = 60.0
) -> list[tuple[float, float | None, float | None]]:
    """One day of the simulator's Deployment under an HPA following a diurnal curve with noise,
    scraped every 15 s, 5 s out of phase with the HPA's 15 s sync."""
    rng = np.random.default_rng(seed)
    ticks = int(DAY_S / TICK_S)
    t = np.arange(ticks) * TICK_S
    wobble = np.zeros(ticks)  # slow multiplicative noise: AR(1), 10 % sd, correlated over ~17 min
    shocks = 0.01 * rng.standard_normal(ticks)
    for k in range(1, ticks):
        wobble[k] = 0.995 * wobble[k - 1] + shocks[k]
    wanted = np.ceil((low + (high - low) * (1 - np.cos(2 * np.pi * t / DAY_S)) / 2) * (1 + wobble))
    cluster = Cluster(config, TICK_S, ticks, int(wanted[0]), seed=seed)
    sync, window = round(STEP_S / TICK_S), round(SCALE_DOWN_WINDOW_S / STEP_S)
    recommendations: list[int] = []
    samples: list[tuple[float, float | None, float | None]] = []
    for k in range(ticks):
        if k % sync == 0:
            recommendations = [*recommendations[-window + 1 :], int(wanted[k])]
            if max(recommendations) != cluster.replicas:
                cluster.scale(k, max(recommendations))
        cluster.step(k, 0.0)
        if k % sync == 1:
            samples.append((k * TICK_S, float(cluster.replicas), float(cluster.ready)))
    return samples


def _true_p90(config: ClusterConfig) -> float:
    return config.startup_delay_s * math.exp(config.startup_sigma * NormalDist().inv_cdf(0.9))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_auto_converges_within_15_percent_of_the_simulated_p90_in_a_day(seed: int) -> None:
    config = ClusterConfig(startup_delay_s=180.0, startup_p95_s=300.0)
    estimate = _track(_day(seed, config))
    assert estimate.measured and estimate.timed >= WINDOW
    assert estimate.lead_time_s == pytest.approx(_true_p90(config), rel=0.15)
    assert estimate.p50_s == pytest.approx(config.startup_delay_s, rel=0.15)


@pytest.mark.parametrize("fallback_s", [30.0, 1800.0])
def test_a_wrong_fallback_does_not_hold_the_estimate(fallback_s: float) -> None:
    config = ClusterConfig(startup_delay_s=600.0, startup_p95_s=900.0)
    for seed in (1, 2, 3):
        estimate = _track(_day(seed, config), fallback_s=fallback_s)
        assert estimate.lead_time_s == pytest.approx(_true_p90(config), rel=0.15)
