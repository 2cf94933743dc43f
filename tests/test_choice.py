"""Each target serves the pipeline its own traffic shows cheaper (`scaler.choice`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaler.choice import MIN_EVALUATIONS, Parts, PipelineChoice

STEP = 15.0
LEAD = 4  # steps


def drive(choice: PipelineChoice, load: np.ndarray, parts_at: object) -> list[str]:
    """One step per load value: score, then serve each candidate's parts (`parts_at(i)`)."""
    chosen = []
    for i, value in enumerate(load):
        at = i * STEP
        choice.actual(at, float(value))
        served = choice.serve(at, at + LEAD * STEP, float(value), parts_at(i))  # type: ignore[operator]
        chosen.append(served.pipeline)
    return chosen


def noisy(steps: int, seed: int = 1) -> np.ndarray:
    return 100.0 + np.random.default_rng(seed).normal(0.0, 2.0, steps)


def test_a_cheaper_pipeline_at_the_coverage_asked_for_is_served_once_it_has_been_scored() -> None:
    load = noisy(3 * MIN_EVALUATIONS)
    choice = PipelineChoice(0.9, window=1000, gain=0.0)
    # The forecast's bound covers with a margin of 30; no_forecast's, 10 (enough for noise of sd 2).
    chosen = drive(
        choice, load, lambda i: {"forecast": Parts(100.0, 130.0), "no_forecast": Parts(100.0, 110.0)}
    )
    assert chosen[0] == "forecast"  # until another is shown cheaper
    switched = chosen.index("no_forecast")
    assert MIN_EVALUATIONS <= switched <= MIN_EVALUATIONS + LEAD + 1
    assert set(chosen[switched:]) == {"no_forecast"}
    assert choice.cost("no_forecast") == pytest.approx(110.0)
    assert choice.cost("forecast") == pytest.approx(130.0)
    assert "no_forecast 110 (coverage 1.00), forecast 130 (coverage 1.00)" in choice.why
    assert "reactive" not in choice.why.split(":")[1]  # the observed value alone covers ~half: not eligible


def test_a_cheaper_pipeline_that_misses_more_than_the_quantile_allows_is_not_served() -> None:
    load = noisy(3 * MIN_EVALUATIONS)
    choice = PipelineChoice(0.9, window=1000, gain=0.0)
    # no_forecast's margin of 1 covers a window's peak of 4 noisy steps far less than 90 % of the time.
    chosen = drive(
        choice, load, lambda i: {"forecast": Parts(100.0, 130.0), "no_forecast": Parts(100.0, 101.0)}
    )
    assert set(chosen) == {"forecast"}
    assert choice.calibration("no_forecast").coverage < 0.87


def test_a_saving_within_the_switch_margin_keeps_the_pipeline_served() -> None:
    load = noisy(3 * MIN_EVALUATIONS)
    choice = PipelineChoice(0.9, window=1000, gain=0.0)
    chosen = drive(
        choice, load, lambda i: {"forecast": Parts(100.0, 120.0), "no_forecast": Parts(100.0, 119.0)}
    )
    assert set(chosen) == {"forecast"}  # 119 is < 2 % below 120


def test_flat_traffic_serves_the_observed_value_when_it_covers_as_asked() -> None:
    load = np.full(3 * MIN_EVALUATIONS, 50.0)
    choice = PipelineChoice(0.9, window=1000, gain=0.0)
    chosen = drive(choice, load, lambda i: {"forecast": Parts(50.0, 60.0), "no_forecast": Parts(50.0, 58.0)})
    assert chosen[-1] == "reactive" and choice.cost("reactive") == pytest.approx(50.0)


def test_a_pipeline_named_by_the_trigger_is_always_served() -> None:
    load = noisy(3 * MIN_EVALUATIONS)
    choice = PipelineChoice(0.9, window=1000, pipeline="forecast", gain=0.0)
    chosen = drive(
        choice, load, lambda i: {"forecast": Parts(100.0, 130.0), "no_forecast": Parts(100.0, 110.0)}
    )
    assert set(chosen) == {"forecast"} and choice.why == "fixed by `pipeline`"
    assert choice.cost("no_forecast") == pytest.approx(110.0)  # still scored, for the record


def test_while_the_forecast_has_no_bound_no_forecasts_is_served_in_its_place() -> None:
    """No fit yet: `auto` serves no_forecast's bound, not the bare observed value, and says so; the
    choice itself stays on the forecast, which serves again once it has a bound."""
    choice = PipelineChoice(0.9, window=10, gain=0.0)
    served = choice.serve(0.0, 60.0, 5.0, {"no_forecast": Parts(5.0, 6.0)})
    assert (served.pipeline, served.value) == ("no_forecast", 6.0)
    assert (choice.chosen, choice.serving) == ("forecast", "no_forecast")
    assert "no bound" in served.why and choice.serving_why == served.why
    later = choice.serve(15.0, 75.0, 5.0, {"forecast": Parts(5.0, 7.0), "no_forecast": Parts(5.0, 6.0)})
    assert (later.pipeline, later.value, choice.serving) == ("forecast", 7.0, "forecast")
    # Without either bound, nothing is served: the answer is the observed value.
    assert choice.serve(30.0, 90.0, 5.0, {}).value is None


def test_a_pinned_forecast_without_a_bound_serves_none() -> None:
    """`pipeline: forecast` is the forecast or nothing (the observed value), never another pipeline."""
    choice = PipelineChoice(0.9, window=10, pipeline="forecast", gain=0.0)
    served = choice.serve(0.0, 60.0, 5.0, {"no_forecast": Parts(5.0, 6.0)})
    assert (served.pipeline, served.value, choice.serving) == ("forecast", None, "forecast")


def test_an_unknown_pipeline_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="pipeline 'best'"):
        PipelineChoice(0.9, window=10, pipeline="best")


def test_alone_a_named_pipeline_is_the_only_one_computed() -> None:
    load = noisy(2 * MIN_EVALUATIONS)
    choice = PipelineChoice(0.9, window=1000, pipeline="no_forecast", gain=0.0, alone=True)
    chosen = drive(
        choice, load, lambda i: {"forecast": Parts(100.0, 130.0), "no_forecast": Parts(100.0, 110.0)}
    )
    assert set(chosen) == {"no_forecast"} and choice.cost("no_forecast") == pytest.approx(110.0)
    assert choice.calibration("forecast").evaluations == 0 and math.isnan(choice.cost("reactive"))
