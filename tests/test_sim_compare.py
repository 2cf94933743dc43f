"""The comparison's acceptance properties: equal footing on flat load, the clairvoyant floor, and
frontiers that only get dearer as they get better (scaler.sim.compare)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scaler.sim import ClusterConfig
from scaler.sim.compare import FLOORS, POLICIES, Setup, compare, knob_grid
from scaler.sim.readings import to_json
from scaler.sim.trigger_settings import PredictiveSettings
from scaler.traces import Trace

DAY_S = 86400.0
STEP_S = 60.0
START_S = 1_700_006_400.0  # a midnight (UTC)
CLUSTER = ClusterConfig(concurrency=8, service_time_s=1.0, startup_delay_s=120.0, slo_s=2.0)
BASELINES = tuple(p for p in POLICIES if p not in ("fixed_buffer", *FLOORS))


def series(values: np.ndarray, name: str) -> tuple[Trace, Trace]:
    at_s = START_S + STEP_S * np.arange(values.size, dtype=np.float64)
    split = values.size - round(0.25 * DAY_S / STEP_S)
    return (
        Trace(name, at_s[:split], values[:split], STEP_S),
        Trace(name, at_s[split:], values[split:], STEP_S),
    )


def test_a_constant_load_costs_every_policy_the_same_and_breaks_no_slo() -> None:
    # 31 requests/s: 3.9 replicas' worth of 8/s, so 4 replicas at 97 % for every policy; the knobs
    # are set so that no policy buys a margin a flat load does not need (median quantile, threshold
    # a replica's full concurrency, no replicasQuery), and the demand is exactly the rate.
    past, window = series(np.full(round(2.25 * DAY_S / STEP_S), 31.0), "flat")
    settings = PredictiveSettings(
        quantile=0.5, threshold=8.0, replicas_known=False, history_s=2 * DAY_S, refit_interval_s=6 * 3600.0
    )
    setup = Setup(CLUSTER, policies=BASELINES, settings=settings, poisson=False, seed=1)
    result = compare(past, window, setup)
    hours = 4 * 0.25 * 24
    for name, outcome in result.outcomes.items():
        assert outcome.gpu_hours == pytest.approx(hours), name
        assert outcome.slo_violation_minutes == 0, name


def diurnal(days: float) -> np.ndarray:
    minutes = np.arange(round(days * DAY_S / STEP_S))
    hour = (minutes * STEP_S / 3600.0) % 24
    return 8.0 * (4.0 + 10.0 * np.clip(np.sin(np.pi * (hour - 6) / 14), 0, None))


def bursty(days: float) -> np.ndarray:
    rng = np.random.default_rng(5)
    base = diurnal(days) * 0.6
    bursts = np.zeros(base.size)
    for start in rng.integers(0, base.size - 30, size=int(days * 6)):
        bursts[start : start + 20] += 40.0
    return base + bursts


@pytest.fixture(scope="module", params=["diurnal", "bursty"])
def swept(request: pytest.FixtureRequest) -> dict[str, object]:
    values = diurnal(2.25) if request.param == "diurnal" else bursty(2.25)
    past, window = series(values, request.param)
    setup = Setup(
        CLUSTER,
        # predictive on the daily cycle only, to keep the test short; both runs have every floor.
        policies=("reactive", "no_forecast", "predictive", "crane_dsp")
        if request.param == "diurnal"
        else ("reactive", "reactive_rate", "no_forecast", "aws_style"),
        settings=PredictiveSettings(history_s=2 * DAY_S, refit_interval_s=6 * 3600.0),
        sweep=True,
        sweep_points=4,
        quantiles=(0.5,),
        threshold_shares=(0.7,),
        seed=2,
        budget_runs=request.param == "diurnal",
    )
    return to_json(compare(past, window, setup), {})


def test_the_clairvoyant_floor_is_below_every_run_that_serves_as_well(swept: dict[str, object]) -> None:
    result: dict[str, dict[str, object]] = swept  # type: ignore[assignment]
    floor = result["oracle_floor"]["clairvoyant"]
    assert floor <= result["oracle_floor"]["lookahead"]
    # It plans for the 95th percentile start-up, so the rare slower replica may cost it a minute.
    floor_minutes = result["policies"]["clairvoyant"]["slo_violation_minutes"]
    assert floor_minutes <= 5
    for name, details in result["policies"].items():
        for point in details["frontier"]:
            if point["slo_violation_minutes"] <= floor_minutes:
                assert point["gpu_hours"] >= floor, name
    for row in result["equal_slo"]:
        for name, hours in row["gpu_hours"].items():
            assert hours is None or hours >= floor, name


def test_frontiers_are_monotone_in_gpu_hours(swept: dict[str, object]) -> None:
    result: dict[str, dict[str, dict[str, list[dict[str, float]]]]] = swept  # type: ignore[assignment]
    for name, details in result["policies"].items():
        frontier = details["frontier"]
        hours = [p["gpu_hours"] for p in frontier]
        minutes = [p["slo_violation_minutes"] for p in frontier]
        assert hours == sorted(hours), name
        assert all(a > b for a, b in itertools.pairwise(minutes)), name
    assert max(len(details["frontier"]) for details in result["policies"].values()) >= 2


def test_predictive_runs_once_under_each_budget_as_its_error_budget(swept: dict[str, object]) -> None:
    result: dict[str, object] = swept
    runs: list[dict[str, object]] = result["error_budget_runs"]  # type: ignore[assignment]
    if "predictive" not in result["policies"]:  # type: ignore[operator]
        assert runs == []
        return
    assert [run["budget_share_of_minutes"] for run in runs] == [0.001, 0.01]
    for run in runs:
        minutes = run["slo_violation_minutes"]
        assert run["violating_share_of_minutes"] == pytest.approx(minutes / (result["days"] * 1440))  # type: ignore[operator]
        controlled = run["forecasting"]["error_budget"]  # type: ignore[index]
        assert controlled["budget"] == run["budget_share_of_minutes"]
        ratio = run["vs_predictive_at_budget"]
        assert ratio is None or ratio > 0
    coverage = result["policies"]["predictive"]["forecasting"]["bound_coverage"]  # type: ignore[index]
    assert 0.5 <= coverage <= 1.0  # calibrated towards the quantile (0.9) within the run


def test_a_target_knob_is_swept_over_its_range_and_a_bad_range_is_refused_by_name() -> None:
    wide = Setup(CLUSTER, sweep_points=12, sweep_range=(0.25, 1.6))
    values = [k.value for k in knob_grid("reactive", wide)]
    assert min(values) == pytest.approx(0.25 * CLUSTER.concurrency)
    assert max(values) == pytest.approx(1.6 * CLUSTER.concurrency)
    assert CLUSTER.concurrency in values and len(values) == 13  # the default is kept besides the points
    for bad in ((0.0, 1.6), (1.6, 0.5), (0.5, float("inf"))):
        with pytest.raises(ValueError, match="sweep_range"):
            Setup(CLUSTER, sweep_range=bad)
