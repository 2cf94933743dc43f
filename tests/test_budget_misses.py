"""The autoscaling report's reading of error-budget runs: the identity between the minutes violated
and the distance `SloControl`'s factor travelled, and the cause each window's miss is put down to."""

from __future__ import annotations

import math
import random

from benchmarks._autoscaling_served import identity_check, miss_cause
from scaler.calibration import SloControl, learning_minutes


def test_minutes_violated_are_the_budget_plus_the_factors_travel_while_it_stays_inside_its_limits() -> None:
    budget, gain, reads = 0.01, 0.03, 4
    control = SloControl(budget, gain=gain, window=1440 * reads)
    rng = random.Random(7)
    violated = 0
    for _ in range(1440):
        verdict = 1.0 if rng.random() < 0.013 else 0.0  # over budget: the factor rises, within its limits
        violated += int(verdict)
        for _ in range(reads):
            control.observe(verdict)
    assert 1.0 < control.factor < 4.0
    expected = budget * 1440 + learning_minutes(control.factor, gain, reads)
    assert abs(violated - expected) < 1e-6
    assert violated > budget * 1440


def _run(minutes: int, factor: float, *, day: float = 1.0, seed: int = 1) -> dict[str, object]:
    return {
        "days": day,
        "job": {"trace": "t", "start_day": 1.0, "seed": seed},
        "error_budget_runs": [
            {
                "budget_share_of_minutes": 0.01,
                "slo_violation_minutes": minutes,
                "forecasting": {"error_budget": {"factor": factor}},
            }
        ],
    }


def test_each_window_is_put_down_to_the_first_cause_that_applies() -> None:
    gain, reads = 0.03, 4.0
    # 14.4 minutes a day at 1 %: 13 is within 30 %.
    assert miss_cause([_run(13, 1.1), _run(14, 1.0, seed=2)], 0.01, gain, reads) == "within"
    # 38 minutes: 0.38 at 1 %, and no whole number lies within 30 % of it; 1 is the nearest above.
    short = 38 / 1440
    assert miss_cause([_run(1, 1.2, day=short)], 0.01, gain, reads) == "no whole number"
    # ... but 4 minutes is not for want of a whole number: ln(1.544) / 0.12 = 3.62 minutes of travel.
    assert miss_cause([_run(4, 1.544, day=short)], 0.01, gain, reads) == "the factor's travel"
    # A factor that ended at 2.5 accounts for ln(2.5) / 0.12 = 7.6 minutes over: 22 is 14.4 + 7.6.
    assert miss_cause([_run(22, 2.5)], 0.01, gain, reads) == "the factor's travel"
    # The same factor with the budget under-spent: travel does not explain a miss of the other sign.
    assert miss_cause([_run(2, 2.5)], 0.01, gain, reads) == "other"
    # 40 minutes is more than the travel explains (22 +- 4.3).
    assert miss_cause([_run(40, 2.5)], 0.01, gain, reads) == "other"
    # Held at the floor, the budget unspent: not the travel (the identity does not count there).
    assert miss_cause([_run(0, 0.25)], 0.01, gain, reads) == "held at a limit"
    # 22 minutes with the factor back at 1: not the travel.
    assert miss_cause([_run(22, 1.0)], 0.01, gain, reads) == "other"
    # A window counts only with every seed's factor.
    assert miss_cause([_run(13, 1.0), {**_run(13, 1.0), "error_budget_runs": []}], 0.01, gain, reads) is None


def test_the_identity_check_counts_runs_off_by_more_than_a_minute_and_leaves_out_factors_at_a_limit() -> None:
    on = 14.4 + learning_minutes(1.5, 0.03, 4.0)
    runs = [
        _run(round(on), 1.5),
        _run(round(on) + 5, 1.5),
        _run(round(on) - 3, 1.5),
        _run(3, 0.25),
        _run(40, 4.0),
    ]
    assert identity_check(runs, 0.03, 4.0) == {"runs": 3, "within": 1, "more": 1, "fewer": 1}
    assert math.isclose(learning_minutes(1.0, 0.03, 4.0), 0.0)
