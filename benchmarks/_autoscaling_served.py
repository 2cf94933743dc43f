"""The autoscaling section's tables of what predictive served: the coverage of its calibrated bound,
the pipeline it chose, and its runs under an error budget (with why each window misses the budget),
from the saved runs."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from scaler.calibration import MAX_FACTOR, MIN_FACTOR, SLO_GAIN, learning_minutes
from scaler.sim.trigger_settings import PredictiveSettings

KINDS = ("diurnal", "spiky", "llm")
COVERAGE_SLACK = 0.03
"""Issue 12's acceptance: the served bound's coverage within 3 points of the quantile."""
BUDGET_SLACK = 0.30
"""Issue 12's acceptance: the violating share within 30 % of the budget."""

Run = dict[str, Any]


def _by_window(runs: list[Run]) -> list[list[Run]]:
    """The runs grouped by window (trace and start day): each group is one window's seeds."""
    grouped: dict[tuple[str, float], list[Run]] = defaultdict(list)
    for run in runs:
        grouped[(run["job"]["trace"], run["job"]["start_day"])].append(run)
    return list(grouped.values())


def _per_window(runs: list[Run], read: Callable[[Run], float | None]) -> list[float]:
    """Per window, the median over its seeds of `read` (a window counts only with every seed)."""
    return [
        statistics.median(known)
        for seeds in _by_window(runs)
        if (known := [v for r in seeds if (v := read(r)) is not None]) and len(known) == len(seeds)
    ]


def _windows(runs: list[Run]) -> int:
    return len({(r["job"]["trace"], r["job"]["start_day"]) for r in runs})


def _cell(values: list[float], total: int, within: Callable[[float], bool] | None = None) -> str:
    if not values:
        return f"- [0/{total}]"
    median = statistics.median(values)
    spread = f" ({min(values):.2f}-{max(values):.2f})" if len(values) > 1 else ""
    count = sum(within(v) for v in values) if within is not None else len(values)
    return f"{median:.2f}{spread} [{count}/{total}]"


def _coverage(run: Run) -> float | None:
    value = run["policies"]["predictive"].get("forecasting", {}).get("bound_coverage")
    return None if value is None else float(value)


def _chose_other(run: Run) -> float | None:
    shares = run["policies"]["predictive"].get("forecasting", {}).get("pipeline_share")
    return None if not shares else 1.0 - float(shares.get("forecast", 0.0))


def coverage_table(runs: list[Run], startups: list[float], quantile: float) -> str:
    """Per kind and start-up: the served bound's coverage at the default quantile (median over
    windows, min-max, [windows within COVERAGE_SLACK / windows]), test and dev, and the share of
    steps predictive served another pipeline than the forecast."""
    header = [
        "kind",
        "start-up",
        f"test coverage (q = {quantile:g})",
        "dev coverage",
        "test steps not on the forecast",
        "dev steps not on the forecast",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def close(value: float) -> bool:
        return abs(value - quantile) <= COVERAGE_SLACK + 1e-9

    for kind in KINDS:
        for startup in startups:
            chosen = [r for r in runs if r["kind"] == kind and r["job"]["startup_s"] == startup]
            if not chosen:
                continue
            cells = [kind, f"{startup:g} s"]
            for read, within in ((_coverage, close), (_chose_other, None)):
                for split in ("test", "dev"):
                    part = [r for r in chosen if r["job"]["split"] == split]
                    cells.append(_cell(_per_window(part, read), _windows(part), within))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _budget_run(run: Run, share: float) -> Run | None:
    for entry in run.get("error_budget_runs", []):
        if abs(entry["budget_share_of_minutes"] - share) < 1e-12:
            return dict(entry)
    return None


def _budget_rows(
    runs: list[Run], startups: list[float], budgets: list[float]
) -> Iterator[tuple[list[str], list[Run], float]]:
    """The error-budget tables' rows: (first cells, the runs of the kind and start-up, the budget), for
    each kind, start-up and budget some run was controlled to."""
    for kind in KINDS:
        for startup in startups:
            chosen = [r for r in runs if r["kind"] == kind and r["job"]["startup_s"] == startup]
            for share in budgets:
                if any(_budget_run(r, share) for r in chosen):
                    yield [kind, f"{startup:g} s", f"{share * 100:g} %"], chosen, share


def budget_table(runs: list[Run], startups: list[float], budgets: list[float]) -> str:
    """Per kind, start-up and budget: predictive under `errorBudget`, its violating share of minutes
    over the budget ([windows within BUDGET_SLACK]) and its GPU-hours over predictive's equal-SLO
    reading at that budget (the cheapest swept quantile or threshold that meets it), test and dev."""
    header = [
        "kind",
        "start-up",
        "budget",
        "test violating share / budget",
        "test x best fixed predictive",
        "dev violating share / budget",
        "dev x best fixed predictive",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def close(ratio: float) -> bool:
        return abs(ratio - 1.0) <= BUDGET_SLACK + 1e-9

    for cells, chosen, share in _budget_rows(runs, startups, budgets):
        for split in ("test", "dev"):
            part = [r for r in chosen if r["job"]["split"] == split]

            def spent(r: Run, share: float = share) -> float | None:
                found = _budget_run(r, share)
                return None if found is None else found["violating_share_of_minutes"] / share

            def cost(r: Run, share: float = share) -> float | None:
                found = _budget_run(r, share)
                return None if found is None else found["vs_predictive_at_budget"]

            cells.append(_cell(_per_window(part, spent), _windows(part), close))
            cells.append(_cell(_per_window(part, cost), _windows(part)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _factor(entry: Run) -> float | None:
    found = entry.get("forecasting", {}).get("error_budget", {}).get("factor")
    return None if found is None else float(found)


def identity_check(runs: list[Run], gain: float, reads_per_minute: float) -> dict[str, int]:
    """How many budget runs, with their factor at the end inside its limits, violated within one
    minute of the budget plus `learning_minutes`; and how many more or fewer."""
    counts = {"runs": 0, "within": 0, "more": 0, "fewer": 0}
    for run in runs:
        minutes = run["days"] * 1440
        for entry in run.get("error_budget_runs", []):
            factor = _factor(entry)
            if factor is None or _at_limit(factor):
                continue
            expected = entry["budget_share_of_minutes"] * minutes + learning_minutes(
                factor, gain, reads_per_minute
            )
            off = entry["slo_violation_minutes"] - expected
            counts["runs"] += 1
            counts["within" if abs(off) <= 1.0 else "more" if off > 0 else "fewer"] += 1
    return counts


MISS_CAUSES = ("within", "no whole number", "held at a limit", "the factor's travel", "other")


def _at_limit(factor: float) -> bool:
    return not MIN_FACTOR * 1.001 < factor < MAX_FACTOR * 0.999


def miss_cause(runs: list[Run], share: float, gain: float, reads_per_minute: float) -> str | None:
    """One window's outcome under the budget (its runs are its seeds), by the medians over seeds of
    the minutes violated and of the factor's log, the first that applies: within BUDGET_SLACK; no
    whole number of minutes within it, and the nearest on either side spent; the factor held at a limit
    at the end (where the identity does not count); the factor's travel (`learning_minutes`): the miss
    has its sign and the budget plus it lies within BUDGET_SLACK of what was spent; or another cause.
    None where a seed lacks its budget run or factor."""
    entries = [e for r in runs if (e := _budget_run(r, share)) is not None]
    factors = [f for e in entries if (f := _factor(e)) is not None]
    if not entries or len(factors) != len(entries) or len(entries) != len(runs):
        return None
    budget = share * runs[0]["days"] * 1440
    slack = BUDGET_SLACK * budget
    spent = statistics.median(e["slo_violation_minutes"] for e in entries)
    if abs(spent - budget) <= slack + 1e-9:
        return "within"
    below, above = math.floor(budget + slack + 1e-9), math.ceil(budget - slack - 1e-9)
    if below < above and spent in (below, above):
        return "no whole number"
    factor = math.exp(statistics.median(math.log(f) for f in factors))
    if _at_limit(factor):
        return "held at a limit"
    travel = learning_minutes(factor, gain, reads_per_minute)
    if travel * (spent - budget) > 0 and abs(spent - budget - travel) <= slack + 1e-9:
        return "the factor's travel"
    return "other"


def budget_misses(
    runs: list[Run], startups: list[float], budgets: list[float], *, gain: float, reads_per_minute: float
) -> str:
    """Per kind, start-up and budget: the windows by `miss_cause`, test and dev."""
    header = [
        "kind",
        "start-up",
        "budget",
        *(f"{split}: {', '.join(MISS_CAUSES)}" for split in ("test", "dev")),
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cells, chosen, share in _budget_rows(runs, startups, budgets):
        for split in ("test", "dev"):
            windows = _by_window([r for r in chosen if r["job"]["split"] == split])
            causes = [miss_cause(w, share, gain, reads_per_minute) for w in windows]
            cells.append(" / ".join(str(causes.count(c)) for c in MISS_CAUSES) + f" of {len(windows)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def budget_reading(
    runs: list[Run], startups: list[float], budgets: list[float], predictive: dict[str, Any]
) -> list[str]:
    """Why each window misses the budget (`miss_cause`), and the identity that counts the factor's
    travel, checked on the runs; `predictive` is the settings the runs recorded."""
    gain = float(predictive.get("slo_gain", SLO_GAIN))
    per_minute = 60.0 / float(predictive.get("step_s", PredictiveSettings.step_s))
    check = identity_check(runs, gain, per_minute)
    slack = BUDGET_SLACK * 100
    widest, narrowest = max(budgets), min(budgets)
    allowed = BUDGET_SLACK * widest * 1440  # violating minutes either side of the widest budget, a day
    travel = allowed * gain * per_minute
    day = narrowest * 1440
    below, above = math.floor(day * (1 + BUDGET_SLACK)), math.ceil(day * (1 - BUDGET_SLACK))
    whole = (
        f"{narrowest * 100:g} % of a day is {day:.2f} minutes, and {below} and {above} are both outside"
        if below < above
        else f"at {narrowest * 100:g} % of a day some whole number lies within it"
    )
    return [
        "Why a window misses the budget. `SloControl` moves the log of its factor by gain x (share read - "
        f"budget) at every read ({per_minute:g} reads a minute at gain {gain:g}), so, while the factor stays "
        f"inside its limits and each minute's verdict is read {per_minute:g} times, a run violates the budget plus "
        f"ln(final factor) / ({gain:g} x {per_minute:g}) minutes: {1 / (gain * per_minute):.1f} minutes per "
        "unit of the log the factor travels from 1 to where the window needs it. That holds within one "
        f"minute on {check['within']} of the {check['runs']} budget runs whose factor ended inside its limits "
        f"({check['more']} violated more, {check['fewer']} fewer: minutes violated while the factor is held "
        "at a limit during the run are outside the count, as are minutes whose verdict is read more or fewer "
        "times, when requests finish late and minutes become final together). Each window, by the medians over its seeds, has the first of "
        f"these that applies: within {slack:g} %; no whole number of minutes lies within {slack:g} % of the "
        f"budget ({whole}) and the nearest was spent; the factor ended held at a limit; the factor's "
        "travel: the budget plus it is within "
        f"{slack:g} % of what was spent (a one-day window at {widest * 100:g} % allows ±{allowed:.1f} "
        f"minutes: a travel within ±{travel:.2f} in the log, a final factor of {math.exp(-travel):.2f}-"
        f"{math.exp(travel):.2f}); or another cause.",
        "",
        budget_misses(runs, startups, budgets, gain=gain, reads_per_minute=per_minute),
        "",
    ]
