"""prescaler's predictive policy in the closed-loop simulator (scaler.sim.predictive, holt_winters, compare)."""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np
import pytest

from scaler.errors import ConfigError
from scaler.leadtime import MIN_SERVICE_SAMPLES
from scaler.sim import ClusterConfig, Outcome, ScalingConfig, Scenario, prepare, run_policy
from scaler.sim.compare import Comparison, Setup, compare
from scaler.sim.holt_winters import HoltWintersPolicy, holt_winters
from scaler.sim.predictive import Predictive, predictive
from scaler.sim.samples import past_rates
from scaler.sim.shared import FitCache
from scaler.sim.sweep import SweepPoint, frontier
from scaler.sim.trigger_settings import PredictiveSettings, trigger_config
from scaler.traces import Trace

DAY_S = 86400.0
STEP_S = 60.0
# One replica: 8 slots x 1 s = 8 requests/s; SLO 2 s, so a request may wait 1 s. Four replicas at the
# start: the night's two replicas' worth without the queue that starting at exactly capacity would build.
CLUSTER = ClusterConfig(
    concurrency=8,
    service_time_s=1.0,
    startup_delay_s=180.0,
    startup_p95_s=180.0,
    slo_s=2.0,
    initial_replicas=4,
)
# Five days: the ensemble needs two seasons before its two days of calibration origins to be seasonal.
HISTORY_DAYS = 5
# A replica's full concurrency as `threshold`: the replicas are known (`replicasQuery`), so a value
# the HPA's tolerance would ignore is raised past it.
SETTINGS = PredictiveSettings(threshold=8.0, refit_interval_s=7200.0, history_s=HISTORY_DAYS * DAY_S)
START_S = 1_700_006_400.0  # a midnight (UTC)
# Fits and bounds shared by every run here (keyed by the data they were made from), as a sweep does.
FITS = FitCache()


def diurnal(days: float, *, start_s: float = START_S) -> Trace:
    """Requests/s with a daily cycle and a steep morning ramp: 2 replicas' worth at night, 16 from
    08:30, reached within 30 minutes (faster than a 180 s start-up lets reactive follow)."""
    at_s = start_s + STEP_S * np.arange(round(days * DAY_S / STEP_S), dtype=np.float64)
    hour = (at_s % DAY_S) / 3600.0
    ramp = np.clip(hour - 8.0, 0.0, 0.5) / 0.5 - np.clip(hour - 20.0, 0.0, 2.0) / 2.0
    rate = CLUSTER.capacity_rps * (2.0 + 14.0 * ramp + 1.5 * np.sin(2 * np.pi * hour / 6.0))
    return Trace("diurnal", at_s, rate, STEP_S)


def window_after(trace: Trace, start_s: float) -> tuple[Trace, Trace]:
    before = trace.at_s < start_s
    past = Trace(trace.name, trace.at_s[before], trace.values[before], trace.step_s)
    return past, Trace(trace.name, trace.at_s[~before], trace.values[~before], trace.step_s)


def run_predictive(
    window: Trace, past: Trace | None, *, settings: PredictiveSettings = SETTINGS, poisson: bool = True
) -> tuple[Predictive, Outcome]:
    scenario = prepare(window, CLUSTER, ScalingConfig(), seed=3, poisson=poisson)
    policy = predictive(past, settings, fits=FITS)(scenario)
    assert isinstance(policy, Predictive)
    return policy, run_policy(scenario, "predictive", policy)


class Compared(NamedTuple):
    policy: Predictive
    result: Comparison


@pytest.fixture(scope="module")
def compared() -> Compared:
    past, window = window_after(diurnal(HISTORY_DAYS + 1), START_S + HISTORY_DAYS * DAY_S)
    setup = Setup(
        CLUSTER,
        policies=("reactive", "predictive"),
        settings=SETTINGS,
        sweep=True,
        sweep_points=5,
        quantiles=(0.9,),
        threshold_shares=(),
        seed=3,
    )
    result = compare(past, window, setup, fits=FITS)
    # The policy itself, once more on the same demand, to read its decisions.
    policy, outcome = run_predictive(window, past)
    assert outcome.gpu_hours == result.outcomes["predictive"].gpu_hours
    return Compared(policy, result)


def test_predictive_beats_reactive_on_a_ramp_faster_than_the_start_up(compared: Compared) -> None:
    outcomes = compared.result.outcomes
    predicted = outcomes["predictive"]
    # Reactive at its default target lags the morning ramp by its start-up delay.
    assert outcomes["reactive"].slo_violation_minutes >= 10
    assert predicted.slo_violation_minutes <= outcomes["reactive"].slo_violation_minutes / 5
    assert predicted.gpu_hours <= 1.3 * outcomes["clairvoyant"].gpu_hours
    # Reactive needs more GPU-hours to do as well, on every point of its sweep.
    enough = [
        p.gpu_hours
        for p in compared.result.sweeps["reactive"]
        if p.slo_violation_minutes <= predicted.slo_violation_minutes
    ]
    assert all(hours > predicted.gpu_hours for hours in enough)
    # Refitted every 2 h of the simulated day; on this clean cycle the seasonal naive model may answer.
    assert sum(compared.policy.fits.values()) == 12
    assert set(compared.policy.fits) <= {"ensemble", "seasonal_naive"}
    assert compared.policy.forecast_share > 0.5


def test_predictive_never_answers_below_the_observed_in_flight(compared: Compared) -> None:
    policy = compared.policy
    assert len(policy.decisions) == DAY_S / 15  # one per scrape (every 15 s), the first at 15 s
    for decision in policy.decisions:
        assert math.isfinite(decision.value) and decision.value >= decision.observed >= 0
        assert decision.active == (decision.value > 0)
    assert {d.reason for d in policy.decisions} <= {
        "observed",
        "forecast",
        "observed+tolerance",
        "forecast+tolerance",
    }
    assert {"observed", "forecast"} <= {d.reason for d in policy.decisions}
    for decision in policy.decisions:
        if decision.reason.endswith("+tolerance"):
            # Raised just past 1.1 x the replicas' worth (8 in flight each), in KEDA's thousandths.
            replicas = (decision.value - 0.00125) / (1.1 * 8.0)
            assert replicas == pytest.approx(round(replicas), abs=1e-6)


def test_knowing_the_replicas_serves_as_well_with_fewer_gpu_hours() -> None:
    """Blind to the replicas, a threshold of 0.9 x concurrency keeps the HPA's tolerance from leaving
    replicas short, at ~11 % more replicas all the time; knowing them, a full-capacity threshold
    raised past the tolerance only when a replica is needed does as well for less."""
    past, window = window_after(diurnal(HISTORY_DAYS + 1), START_S + HISTORY_DAYS * DAY_S)
    blind = dataclasses.replace(SETTINGS, threshold=7.2, replicas_known=False)
    _, without = run_predictive(window, past, settings=blind)
    policy, known = run_predictive(window, past)
    assert known.gpu_hours < 0.97 * without.gpu_hours
    assert known.slo_violation_minutes <= without.slo_violation_minutes
    assert any(d.reason.endswith("+tolerance") for d in policy.decisions)


def test_decisions_depend_only_on_the_past() -> None:
    past, window = window_after(diurnal(HISTORY_DAYS + 0.25), START_S + HISTORY_DAYS * DAY_S)
    change_s = START_S + HISTORY_DAYS * DAY_S + 3 * 3600.0
    later = window.at_s >= change_s
    changed = window._replace(values=np.where(later, window.values * 3.0, window.values))
    whole = Trace(
        "whole",
        np.concatenate([past.at_s, window.at_s]),
        np.concatenate([past.values, window.values]),
        STEP_S,
    )
    first, _ = run_predictive(window, past, poisson=False)
    second, _ = run_predictive(changed, past, poisson=False)
    # Handed the whole trace as its past, the factory keeps only what precedes the window.
    leaky, _ = run_predictive(window, whole, poisson=False)
    assert leaky.decisions == first.decisions
    before = [d for d in first.decisions if d.at_s <= change_s]
    assert len(before) == 3 * 3600 / 15
    assert [d for d in second.decisions if d.at_s <= change_s] == before
    assert [d for d in second.decisions if d.at_s > change_s] != [
        d for d in first.decisions if d.at_s > change_s
    ]


def test_past_rates_are_step_means_before_the_window() -> None:
    trace = Trace("t", np.array([0.0, 60.0, 120.0]), np.array([1.0, 2.0, 4.0]), 60.0)
    at_s, rates = past_rates(trace, before_s=120.0, span_s=3600.0, step_s=30.0)
    assert at_s.tolist() == [30.0, 60.0, 90.0, 120.0]  # each sample ends its step
    assert rates.tolist() == [1.0, 1.0, 2.0, 2.0]
    at_s, _ = past_rates(trace, before_s=180.0, span_s=60.0, step_s=30.0)
    assert at_s.tolist() == [150.0, 180.0]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {},
            {"lead_time_s": 210.0, "threshold": 8.0, "service_time_s": None, "replicas_query": "replicas"},
            id="the service's defaults: the time in service measured",
        ),
        pytest.param(
            {"replicas_known": False},
            {"threshold": 7.2, "replicas_query": None},
            id="replicas unknown: 0.9 x concurrency",
        ),
        pytest.param(
            {"lead_time_s": 600.0, "threshold": 6.0}, {"lead_time_s": 600.0, "threshold": 6.0}, id="set"
        ),
        pytest.param({"measure_service_time": False}, {"service_time_s": 1.0}, id="known service time"),
    ],
)
def test_settings_become_a_predictive_rate_trigger(
    changes: dict[str, object], expected: dict[str, object]
) -> None:
    scenario = Scenario(0.0, 5.0, np.zeros(10), CLUSTER, ScalingConfig())
    config = dataclasses.replace(PredictiveSettings(), **changes).trigger(scenario)  # type: ignore[arg-type]
    assert config.mode == "predictive" and config.rate_query is not None
    for name, value in expected.items():
        assert getattr(config, name) == value


def test_the_trigger_raises_past_the_simulated_hpas_own_tolerance() -> None:
    loose = Scenario(0.0, 5.0, np.zeros(10), CLUSTER, ScalingConfig(tolerance=0.05))
    assert PredictiveSettings().trigger(loose).tolerance == 0.05
    default = Scenario(0.0, 5.0, np.zeros(10), CLUSTER, ScalingConfig())
    assert PredictiveSettings().trigger(default).tolerance == ScalingConfig().tolerance == 0.1


def test_the_trigger_is_validated_by_the_scalers_parser() -> None:
    with pytest.raises(ConfigError, match="quantile"):
        trigger_config(threshold=8.0, lead_time_s=180.0, quantile=1.5)
    with pytest.raises(ConfigError, match="leadTime"):
        trigger_config(threshold=8.0, lead_time_s=7200.0)


def test_holt_winters_provisions_its_point_forecast_and_never_below_the_observed() -> None:
    past, window = window_after(diurnal(HISTORY_DAYS + 0.5), START_S + HISTORY_DAYS * DAY_S)
    scenario = prepare(window, CLUSTER, ScalingConfig(), seed=3)
    policy = holt_winters(past, SETTINGS)(scenario)
    assert isinstance(policy, HoltWintersPolicy)
    outcome = run_policy(scenario, "holt_winters", policy)
    assert policy.fits["holt_winters"] == 6 and outcome.gpu_hours > 0
    assert policy.forecast_share > 0.3
    assert all(d.value >= d.observed for d in policy.decisions)


def test_without_a_past_predictive_answers_what_it_observes_until_it_has_a_day() -> None:
    _, window = window_after(diurnal(HISTORY_DAYS + 0.2), START_S + HISTORY_DAYS * DAY_S)
    hourly = dataclasses.replace(SETTINGS, refit_interval_s=3600.0)
    policy, _ = run_predictive(window, None, settings=dataclasses.replace(hourly, pipeline="forecast"))
    assert {d.reason for d in policy.decisions} <= {"observed", "observed+tolerance"}
    assert sum(policy.fits.values()) == 5
    # Choosing, it serves no_forecast's bound in the forecast's place as soon as the time in service is
    # measured (MIN_SERVICE_SAMPLES steps), and chooses it once it has an hour of scores.
    chooser, _ = run_predictive(window, None, settings=hourly)
    assert chooser.choice.chosen == "no_forecast" and "no_forecast" in chooser.choice.why
    assert chooser.pipelines["forecast"] == MIN_SERVICE_SAMPLES - 1  # no bound of any kind yet
    first = next(i for i, d in enumerate(chooser.decisions) if d.reason.startswith("forecast"))
    assert first == MIN_SERVICE_SAMPLES - 1


def test_the_frontier_keeps_the_best_at_each_cost() -> None:
    sweep = [
        SweepPoint("target", 8.0, 10.0, 40),
        SweepPoint("target", 9.0, 12.0, 90),
        SweepPoint("target", 6.0, 14.0, 5),
        SweepPoint("target", 4.0, 20.0, 5),
    ]
    assert [p.value for p in frontier(sweep)] == [8.0, 6.0]


def test_an_error_budget_moves_the_margin_with_the_violating_minutes_the_policy_reads() -> None:
    """With `errorBudget` the policy reads `Signals.slo_violating` as `sloQuery`: run hot (a threshold
    of twice a replica's slots), it violates far more than the budget and the factor rises; the
    coverage correction is off; the same trigger without a budget leaves it at 1."""
    past, window = window_after(diurnal(HISTORY_DAYS + 1), START_S + HISTORY_DAYS * DAY_S)
    hot = dataclasses.replace(SETTINGS, threshold=16.0)
    budgeted, spent = run_predictive(window, past, settings=dataclasses.replace(hot, error_budget=0.01))
    assert budgeted.config.error_budget == 0.01 and budgeted.config.slo_query is not None
    assert budgeted.slo is not None and budgeted.slo.reads > 0.9 * len(budgeted.decisions)
    assert budgeted.slo.share == pytest.approx(
        spent.slo_violation_minutes / (spent.minutes.at_s.size), abs=0.02
    )
    assert budgeted.slo.factor > 1.5
    assert budgeted.calibration.scale == 1.0
    plain, unspent = run_predictive(window, past, settings=hot)
    assert plain.slo is None
    assert spent.slo_violation_minutes < unspent.slo_violation_minutes / 2


def test_a_burst_reserve_is_never_held_on_traffic_without_bursts() -> None:
    """`burstReserve: true` on the diurnal trace (a steep ramp the forecast sees, Poisson arrivals):
    no window is a burst after which others follow, so what is served is what is served without it."""
    past, window = window_after(diurnal(HISTORY_DAYS + 1), START_S + HISTORY_DAYS * DAY_S)
    reserved, with_reserve = run_predictive(
        window, past, settings=dataclasses.replace(SETTINGS, burst_reserve=True)
    )
    plain, without = run_predictive(window, past)
    assert reserved.config.burst_reserve and not plain.config.burst_reserve
    assert reserved.reserve_steps == 0
    assert [d.value for d in reserved.decisions] == [d.value for d in plain.decisions]
    assert with_reserve.gpu_hours == without.gpu_hours
    assert "burst_reserve" in reserved.summary() and "burst_reserve" not in plain.summary()


def test_a_burst_reserve_is_held_after_clustered_bursts_and_raises_what_is_served() -> None:
    """Bursts of 3x the level, 3 minutes long, every 20 minutes for four afternoon hours (none in
    the past the forecast is fitted on): after the first ones the reserve is held, the values served
    then are above those of the same trigger without it, and the bursts that follow find capacity:
    fewer violating minutes for a few per cent more GPU-hours."""
    trace = diurnal(HISTORY_DAYS + 1)
    rate = trace.values.copy()
    minute = np.arange(rate.size)
    day_start = round(HISTORY_DAYS * DAY_S / STEP_S)
    hour_in_day = (minute - day_start) / 60.0
    bursting = (hour_in_day >= 13.0) & (hour_in_day < 17.0) & ((minute - day_start) % 20 < 3)
    rate[bursting] *= 3.0
    past, window = window_after(
        Trace("bursts", trace.at_s, rate, trace.step_s), START_S + HISTORY_DAYS * DAY_S
    )
    reserved, held = run_predictive(window, past, settings=dataclasses.replace(SETTINGS, burst_reserve=True))
    plain, unheld = run_predictive(window, past)
    assert held.slo_violation_minutes <= unheld.slo_violation_minutes / 2
    assert held.gpu_hours < unheld.gpu_hours * 1.05
    summary = reserved.summary()["burst_reserve"]
    assert summary["bursts"] > 0 and summary["share_after_burst"] > 0.1
    assert reserved.reserve_steps > 0
    above = [r.value > p.value for r, p in zip(reserved.decisions, plain.decisions, strict=True)]
    assert sum(above) >= reserved.reserve_steps // 2
