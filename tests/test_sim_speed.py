"""The simulator's shortcuts equal what they replace: the same floats, not just close ones.

A knob sweep runs the same policy dozens of times on the same demand, so the simulator keeps some
of predictive's per-step work incremental or shared; these tests pin each shortcut to the per-run
computation it stands for (scaler.leadtime's on the full histories).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from forecasting.finescale import sorted_quantile
from forecasting.models import FitMemo
from scaler.history import History
from scaler.leadtime import measured_service_time_s
from scaler.policy import Decision
from scaler.sim import ClusterConfig, ScalingConfig, Scenario, prepare, run_policy
from scaler.sim.autoscaler import Autoscaler, hpa_desired
from scaler.sim.holt_winters import holt_winters
from scaler.sim.predictive import Predictive, predictive
from scaler.sim.samples import ServiceTime
from scaler.sim.shared import FitCache
from scaler.sim.trigger_settings import PredictiveSettings
from scaler.traces import Trace

STEP_S = 15.0


@pytest.mark.parametrize(
    ("span", "rate_span", "seed"),
    [
        pytest.param(40, 200, 1, id="rate-history-longer"),
        pytest.param(40, 40, 2, id="same-length"),
        pytest.param(40, 30, 3, id="rate-history-shorter-measures-nothing"),
        pytest.param(300, 1000, 4, id="long-window"),
    ],
)
def test_service_time_equals_the_percentile_of_both_histories(span: int, rate_span: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    in_flight, rates = History(STEP_S, span), History(STEP_S, rate_span)
    incremental = ServiceTime(span, rate_span)
    # A bootstrap of rates only (the user's past), then samples with gaps, zeros, NaN and repeats.
    for step in range(-50, 0):
        rates.append(step * STEP_S, float(rng.uniform(1, 10)))
    step, compared, measured = 0, 0, 0
    for _ in range(3 * span):
        step += 1 if rng.random() < 0.9 else int(rng.integers(2, 6))
        load = float(rng.choice([0.0, math.nan, 3.0, *rng.uniform(0, 20, 5).round(rng.integers(0, 3))]))
        rate = float(rng.choice([0.0, math.nan, 2.0, *rng.uniform(0, 10, 5)]))
        at_s = step * STEP_S + float(rng.uniform(0, STEP_S - 1))
        in_flight.append(at_s, load)
        rates.append(at_s, rate)
        incremental.add(step, load, rate)
        expected = measured_service_time_s(in_flight, rates)
        assert incremental.value() == expected
        compared += 1
        measured += expected is not None
    assert compared == 3 * span
    # Each case measures something once enough samples are usable, except a shorter rate history.
    assert (measured > 0) == (rate_span >= span)


DAY_S = 86400.0
START_S = 1_700_006_400.0  # a midnight (UTC)
CLUSTER = ClusterConfig(
    concurrency=8, service_time_s=1.0, startup_delay_s=180.0, slo_s=2.0, initial_replicas=4
)
# Three days of past (non-seasonal members: quick fits); refits every 2 h of a 3 h window.
SETTINGS = PredictiveSettings(refit_interval_s=7200.0, history_s=3 * DAY_S)


def _demand(days: float) -> Trace:
    at_s = START_S + 60.0 * np.arange(round(days * DAY_S / 60.0), dtype=np.float64)
    hour = (at_s % DAY_S) / 3600.0
    rate = 8.0 * (4.0 + 10.0 * np.clip(np.sin(np.pi * (hour - 6.0) / 12.0), 0.0, None))
    return Trace("daily", at_s, rate, 60.0)


def _scenario(window: Trace, startup_s: float) -> Scenario:
    cluster = dataclasses.replace(CLUSTER, startup_delay_s=startup_s)
    return prepare(window, cluster, ScalingConfig(), seed=5)


def _run(
    name: str, past: Trace, scenario: Scenario, quantile: float, fits: FitCache | None
) -> list[Decision]:
    settings = dataclasses.replace(SETTINGS, quantile=quantile)
    factory = (
        holt_winters(past, settings, fits=fits)
        if name == "holt_winters"
        else predictive(past, settings, fits=fits)
    )
    policy = factory(scenario)
    assert isinstance(policy, Predictive)
    run_policy(scenario, name, policy)
    return policy.decisions


@pytest.mark.parametrize("name", ["predictive", "holt_winters"])
def test_a_shared_fit_cache_decides_as_a_run_of_its_own(name: str) -> None:
    """A run on the fits, bounds, fine forecasts and bootstrap histories that runs at another
    quantile and another start-up (lead time) left in the cache decides exactly as a run without
    any cache."""
    demand = _demand(3 + 3 / 24)
    before = demand.at_s < START_S + 3 * DAY_S
    past = Trace("daily", demand.at_s[before], demand.values[before], 60.0)
    window = Trace("daily", demand.at_s[~before], demand.values[~before], 60.0)
    at_180, at_60 = _scenario(window, 180.0), _scenario(window, 60.0)
    alone = _run(name, past, at_180, 0.9, None)
    fits = FitCache()
    _run(name, past, at_60, 0.9, fits)  # the same fits, another lead time
    _run(name, past, at_180, 0.7, fits)  # the same fits, another quantile
    shared = _run(name, past, at_180, 0.9, fits)
    assert shared == alone
    assert sum(d.reason.startswith("forecast") for d in alone) > len(alone) / 10
    assert fits.histories and ((fits.hits and fits.levels) if name == "predictive" else fits.paths)


def test_sorted_quantile_is_numpys_quantile() -> None:
    rng = np.random.default_rng(7)
    checked = 0
    for size in [*range(1, 30), 119, 120, 240]:
        for scale in (1e-3, 1.0, 1e3):
            values = rng.normal(size=size) * scale
            values[: size // 3] = np.round(values[: size // 3], 1)  # ties
            ordered = np.sort(values)
            for quantile in (0.5, 0.6, 0.7, 0.8, 0.9, 0.97, 0.999, float(rng.uniform(0.5, 1.0))):
                assert sorted_quantile(ordered, quantile) == float(np.quantile(values, quantile))
                checked += 1
    assert checked == 32 * 3 * 8
    assert math.isnan(sorted_quantile(np.array([1.0, math.nan]), 0.9))


@pytest.mark.parametrize("window_s", [300.0, 60.0, 0.0])
def test_legacy_stabilization_is_the_largest_recommendation_in_the_window(window_s: float) -> None:
    """The HPA's legacy path, kept as a sliding-window maximum, answers as the pass over every
    recommendation within the stabilization window that it replaces."""
    rng = np.random.default_rng(int(window_s) + 1)
    config = ScalingConfig(downscale_stabilization_s=window_s, max_replica_count=60)
    autoscaler = Autoscaler(config, replicas=3, now_s=0.0)
    seen: list[tuple[float, int]] = [(0.0, 3)]
    now_s, current, moved = 0.0, 3, 0
    for _ in range(2_000):
        # Syncs 15 s apart, sometimes late or twice at one time; the load jumps and drifts.
        now_s += float(rng.choice([0.0, 15.0, 15.0, 15.0, 30.0, 45.0]))
        value = float(rng.choice([0.0, rng.uniform(0, 400), current * rng.uniform(0.5, 1.6)]))
        proposal = hpa_desired(value, 8.0, current, config.tolerance)
        stabilized = max([proposal, *(r for at_s, r in seen if at_s > now_s - window_s)])
        limit = max(2 * current, 4)
        expected = min(max(min(stabilized, limit), config.hpa_min_replicas), config.max_replica_count)
        seen.append((now_s, proposal))
        desired = autoscaler.hpa_sync(now_s, value, 8.0, current)
        assert desired == expected
        moved += desired != current
        current = desired
    assert moved > 100


def test_runs_with_other_seeds_share_member_fits_and_decide_as_alone() -> None:
    """Another seed's run on the same past takes the members' fits (fitted on the past alone)
    from a shared memo and decides exactly as a run that fits everything itself."""
    demand = _demand(3 + 3 / 24)
    before = demand.at_s < START_S + 3 * DAY_S
    past = Trace("daily", demand.at_s[before], demand.values[before], 60.0)
    window = Trace("daily", demand.at_s[~before], demand.values[~before], 60.0)
    seeded = [prepare(window, CLUSTER, ScalingConfig(), seed=seed) for seed in (5, 6)]
    members: FitMemo = {}
    _run("predictive", past, seeded[0], 0.9, FitCache(members))
    fitted = len(members)
    shared = _run("predictive", past, seeded[1], 0.9, FitCache(members))
    assert shared == _run("predictive", past, seeded[1], 0.9, None)
    assert fitted >= 2 and len(members) == fitted  # every member fit of the second seed was shared
    assert shared != _run("predictive", past, seeded[0], 0.9, None)  # the seeds' demands differ
