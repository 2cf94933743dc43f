"""Closing the loop: the plan made on five weeks of a diurnal load, replayed through the simulator on
the week that followed, meets the SLO."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from scaler.plan.core import PlanOptions, plan_trace
from scaler.plan.profile import load_prices, load_profile
from scaler.plan.replay import replay_schedule
from scaler.traces import Trace, load_trace

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "nyc_taxi_7w.csv"
HISTORY_ROWS = 35 * 48


def split() -> tuple[Trace, Trace]:
    trace = load_trace(FIXTURE)
    trace = trace._replace(values=trace.values / 300)  # peak ~45 replicas of the example profile
    history = trace._replace(at_s=trace.at_s[:HISTORY_ROWS], values=trace.values[:HISTORY_ROWS])
    after = trace._replace(at_s=trace.at_s[HISTORY_ROWS:], values=trace.values[HISTORY_ROWS:])
    return history, after


@pytest.mark.parametrize(
    "variability",
    [
        pytest.param("example", id="example-profile"),
        # The simulator's service is deterministic: with cv 0 and no load-test table the plan has no
        # head-room from the model, so only the forecast and the queueing math stand between it and the SLO.
        pytest.param("deterministic", id="deterministic-service"),
    ],
)
def test_replayed_plan_meets_the_slo_on_the_weeks_after_the_history(variability: str) -> None:
    history, after = split()
    profile = load_profile(ROOT / "deploy" / "plan" / "profile.example.yaml")
    if variability == "deterministic":
        profile = dataclasses.replace(profile, service_time_cv=0.0, load_test=())
    prices = load_prices(ROOT / "deploy" / "plan" / "prices.example.yaml")
    plan = plan_trace(
        "nyc", history, profile, prices, PlanOptions(horizon_h=7 * 24, backtest_origins=0, sim_check=False)
    )
    assert plan.demand.start_s == after.at_s[0]
    outcome = replay_schedule(
        after, plan.replicas, plan.demand.start_s, profile, service_time_s=profile.service_time_s
    )
    minutes = outcome.minutes.at_s.size
    assert minutes == 7 * 24 * 60
    assert outcome.over_slo_fraction <= 1 - profile.slo_quantile
    assert outcome.slo_violation_minutes <= 0.01 * minutes
    # The schedule is followed: most of each hour runs the planned replicas (a change is asked a
    # start-up ahead, and the HPA holds a scale-down for its 5-minute stabilization window).
    provisioned = np.median(outcome.minutes.provisioned.reshape(-1, 60), axis=1)
    assert (provisioned == plan.replicas).all()
    if variability == "example":
        # ... with fewer GPU-hours than the naive rule's replicas, which meet it too.
        naive = replay_schedule(
            after, plan.replicas_naive, plan.demand.start_s, profile, service_time_s=profile.service_time_s
        )
        assert naive.over_slo_fraction <= 1 - profile.slo_quantile
        assert outcome.gpu_hours < naive.gpu_hours
