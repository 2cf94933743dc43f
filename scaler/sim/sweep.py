"""A policy's cost/SLO frontier over its knob, and its GPU-hours at an SLO budget. Pure.

A policy is judged at equal SLO: its knob is swept, the sweep's frontier (the points no other point
beats on both GPU-hours and SLO-violating minutes) is read at a budget of violating minutes per
simulated day, interpolating linearly between the two frontier points around the budget.

When the frontier's cheapest point already meets the budget, the reading is that point's GPU-hours
only if its knob value lies strictly inside the swept range (the cost then rises on both sides of it,
as an in-flight target past a replica's concurrency builds a queue whose overshoot costs more); at the
end of the range a cheaper setting may lie beyond it, so there is no reading. A budget never met has
none either: None, never an extrapolation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from forecasting.base import DAY_S


class SweepPoint(NamedTuple):
    """A policy at one value of its knob."""

    knob: str
    value: float
    gpu_hours: float
    slo_violation_minutes: int


def frontier(sweep: Sequence[SweepPoint]) -> list[SweepPoint]:
    """The sweep's points no other point beats on both GPU-hours and SLO minutes, by GPU-hours
    (so SLO minutes fall strictly along it)."""
    best: list[SweepPoint] = []
    for point in sorted(sweep, key=lambda p: (p.gpu_hours, p.slo_violation_minutes, p.value)):
        if not best or point.slo_violation_minutes < best[-1].slo_violation_minutes:
            best.append(point)
    return best


def minutes_per_day(minutes: float, days: float) -> float:
    """Violating minutes per simulated day."""
    return minutes / days


def budget_minutes_per_day(share: float) -> float:
    """A budget given as a share of all minutes (0.001 = 0.1 %) in violating minutes per day."""
    return share * DAY_S / 60.0


def knob_ranges(points: Sequence[SweepPoint]) -> dict[str, tuple[float, float]]:
    """The swept range of each knob among `points`."""
    ranges: dict[str, tuple[float, float]] = {}
    for point in points:
        lo, hi = ranges.get(point.knob, (point.value, point.value))
        ranges[point.knob] = (min(lo, point.value), max(hi, point.value))
    return ranges


def gpu_hours_at_budget(
    points: Sequence[SweepPoint],
    budget_per_day: float,
    days: float,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> float | None:
    """The GPU-hours at which the frontier of `points` meets `budget_per_day` violating minutes per
    day (see the module docstring); None outside the sweep. `ranges`: each knob's swept range
    (default: the range among `points`, which must then be the whole sweep)."""
    if not (days > 0 and budget_per_day >= 0):
        raise ValueError(f"days ({days}) must be > 0 and the budget ({budget_per_day}) >= 0")
    best = frontier(points)
    if not best:
        return None
    rates = [minutes_per_day(p.slo_violation_minutes, days) for p in best]
    if rates[-1] > budget_per_day:
        return None
    if rates[0] <= budget_per_day:
        cheapest = best[0]
        low, high = (ranges if ranges is not None else knob_ranges(points)).get(
            cheapest.knob, (cheapest.value, cheapest.value)
        )
        return cheapest.gpu_hours if low < cheapest.value < high else None
    for (lo, lo_rate), (hi, hi_rate) in zip(
        zip(best, rates, strict=True), zip(best[1:], rates[1:], strict=True), strict=False
    ):
        if lo_rate > budget_per_day >= hi_rate:
            share = (lo_rate - budget_per_day) / (lo_rate - hi_rate)
            return lo.gpu_hours + share * (hi.gpu_hours - lo.gpu_hours)
    return None  # unreachable: the rates fall strictly from above to at most the budget
