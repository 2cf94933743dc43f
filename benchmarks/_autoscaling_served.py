"""The autoscaling section's tables of what predictive served: the coverage of its calibrated bound,
the pipeline it chose, and its runs under an error budget, from the saved runs."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from typing import Any

KINDS = ("diurnal", "spiky", "llm")
COVERAGE_SLACK = 0.03
"""Issue 12's acceptance: the served bound's coverage within 3 points of the quantile."""
BUDGET_SLACK = 0.30
"""Issue 12's acceptance: the violating share within 30 % of the budget."""

Run = dict[str, Any]


def _per_window(runs: list[Run], read: Callable[[Run], float | None]) -> list[float]:
    """Per window, the median over its seeds of `read` (a window counts only with every seed)."""
    by_window: dict[tuple[str, float], list[float | None]] = defaultdict(list)
    for run in runs:
        by_window[(run["job"]["trace"], run["job"]["start_day"])].append(read(run))
    return [
        statistics.median(known)
        for values in by_window.values()
        if (known := [v for v in values if v is not None]) and len(known) == len(values)
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

    for kind in KINDS:
        for startup in startups:
            chosen = [r for r in runs if r["kind"] == kind and r["job"]["startup_s"] == startup]
            for share in budgets:
                if not any(_budget_run(r, share) for r in chosen):
                    continue
                cells = [kind, f"{startup:g} s", f"{share * 100:g} %"]
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
