"""A policy's frontier over its knob and its GPU-hours at an SLO budget (scaler.sim.sweep)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaler.sim import SweepPoint, frontier, gpu_hours_at_budget
from scaler.sim.plot import frontier_figure
from scaler.sim.sweep import budget_minutes_per_day

# (value, GPU-hours, SLO minutes) over one simulated day; the 12 h point is dominated by the 10 h one.
SWEEP = [
    SweepPoint("target", 8.0, 2.0, 50),
    SweepPoint("target", 2.0, 10.0, 0),
    SweepPoint("target", 4.0, 5.0, 10),
    SweepPoint("target", 3.0, 12.0, 0),
]


def test_the_frontier_is_sorted_by_gpu_hours_and_drops_dominated_points() -> None:
    assert [(p.gpu_hours, p.slo_violation_minutes) for p in frontier(SWEEP)] == [
        (2.0, 50),
        (5.0, 10),
        (10.0, 0),
    ]


def test_budgets_are_shares_of_a_days_minutes() -> None:
    assert budget_minutes_per_day(0.001) == pytest.approx(1.44)
    assert budget_minutes_per_day(0.01) == pytest.approx(14.4)


def test_gpu_hours_at_a_budget_interpolate_between_the_frontier_points_around_it() -> None:
    # 30 minutes is halfway from (2 h, 50) to (5 h, 10): 3.5 h; 5 minutes halfway from (5, 10) to (10, 0).
    assert gpu_hours_at_budget(SWEEP, 30.0, days=1.0) == pytest.approx(3.5)
    assert gpu_hours_at_budget(SWEEP, 5.0, days=1.0) == pytest.approx(7.5)
    # Over two days the same minutes are half the rate: 15 per day is where 30 was.
    assert gpu_hours_at_budget(SWEEP, 15.0, days=2.0) == pytest.approx(3.5)


@pytest.mark.parametrize(
    "budget",
    [
        pytest.param(60.0, id="met already at the cheapest point"),
        pytest.param(-0.0, id="exactly 0: met at 10 h"),
    ],
)
def test_a_budget_the_sweep_does_not_bracket_has_no_reading(budget: float) -> None:
    expected = None if budget > 0 else 10.0
    assert gpu_hours_at_budget(SWEEP, budget, days=1.0) == expected


def test_a_budget_never_met_or_a_single_point_has_no_reading() -> None:
    short = [SweepPoint("target", 8.0, 2.0, 50), SweepPoint("target", 4.0, 5.0, 10)]
    assert gpu_hours_at_budget(short, 1.0, days=1.0) is None
    assert gpu_hours_at_budget(short[:1], 100.0, days=1.0) is None  # the only value: no range
    with pytest.raises(ValueError, match="days"):
        gpu_hours_at_budget(short, 1.0, days=0.0)


def test_the_frontier_figure_has_a_title_units_and_a_legend(tmp_path: Path) -> None:
    lines = {"predictive|a": [(1.02, 5.0), (1.05, 0.0)], "reactive|a": [(1.0, 40.0), (1.1, 0.0)]}
    figure = frontier_figure("diurnal test windows", lines, {"clairvoyant": 1.0}, [1.44, 14.4])
    ax = figure.axes[0]
    assert figure.get_suptitle() == "diurnal test windows"
    assert "clairvoyant" in ax.get_xlabel() and "minutes per simulated day" in ax.get_ylabel()
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels[:2] == ["predictive", "reactive"] and "clairvoyant (floor, median)" in labels
    figure.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes().startswith(b"\x89PNG")
