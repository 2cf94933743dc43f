"""The autoscaling benchmark's section of benchmarks/README.md, rendered from the results JSON alone
(so `--render` rewrites it without simulating): the protocol, the test-window tables with the
development windows beside them, where predictive loses, and a frontier figure per kind of trace.
Every number is read from the results; jobs that did not run are named as missing.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks._autoscaling_plots import figures
from benchmarks._autoscaling_served import (
    BUDGET_SLACK,
    COVERAGE_SLACK,
    budget_reading,
    budget_table,
    coverage_table,
)
from scaler.sim.sweep import SweepPoint, budget_minutes_per_day, gpu_hours_at_budget

BEGIN, END = "<!-- autoscaling:begin -->", "<!-- autoscaling:end -->"
SECTION = "## Autoscaling: GPU-hours at equal SLO on pre-registered windows"
KINDS = ("diurnal", "spiky", "llm")
POLICIES = (
    "predictive",
    "no_forecast",
    "holt_winters",
    "crane_dsp",
    "aws_style",
    "reactive",
    "reactive_60s",
    "reactive_rate",
)
GOAL_MIN = 45
"""The protocol is meant to run within this many minutes on 2 cores."""

Run = dict[str, Any]


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.2f}"
    return f"{median:.2f} ({min(values):.2f}-{max(values):.2f})"


def _per_window(runs: Iterable[Run], read: Any) -> tuple[list[float], int, int]:
    """Per window, the median over its seeds of `read(run)` (None: outside); (medians, windows with a
    reading, windows)."""
    by_window: dict[tuple[str, float], list[float | None]] = defaultdict(list)
    for run in runs:
        job = run["job"]
        by_window[(job["trace"], job["start_day"])].append(read(run))
    medians = []
    for values in by_window.values():
        known = [v for v in values if v is not None]
        # A window counts only when every seed has a reading (a partial median would flatter it).
        if known and len(known) == len(values):
            medians.append(statistics.median(known))
    return medians, len(medians), len(by_window)


REACTIVE = ("reactive", "reactive_60s", "reactive_rate")
_READINGS: dict[tuple[str, int], dict[str, float | None]] = {}


def swept_ranges(run: Run, policy: str) -> dict[str, tuple[float, float]]:
    """The knob ranges the benchmark swept `policy` over for this run's start-up."""
    from benchmarks.autoscaling import setup_for
    from scaler.sim.compare import knob_grid, sweep_ranges

    setup = setup_for(float(run["job"]["startup_s"]), 1, 20.0)
    return sweep_ranges([SweepPoint(k.name, k.value, 0.0, 0) for k in knob_grid(policy, setup)])


def frontier_points(run: Run, policy: str) -> list[SweepPoint]:
    """`policy`'s frontier as the run saved it."""
    return [
        SweepPoint(p["knob"], p["value"], p["gpu_hours"], p["slo_violation_minutes"])
        for p in run["policies"][policy]["frontier"]
    ]


def readings(run: Run, budget: int, per_day: float) -> dict[str, float | None]:
    """Every policy's GPU-hours at the budget, read again from its saved frontier (the same rule as
    `scaler.sim.sweep.gpu_hours_at_budget`, with the knob ranges the benchmark swept)."""
    key = (run["key"], budget)
    if key not in _READINGS:
        found: dict[str, float | None] = {}
        for policy in POLICIES:
            found[policy] = gpu_hours_at_budget(
                frontier_points(run, policy), per_day, run["days"], swept_ranges(run, policy)
            )
        _READINGS[key] = found
    return _READINGS[key]


def _best_reactive(hours: dict[str, float | None]) -> float | None:
    known = [h for name, h in hours.items() if name in REACTIVE and h is not None]
    return min(known) if known else None


def _ratio(run: Run, budget: int, policy: str, against: str) -> float | None:
    hours = readings(run, budget, _PER_DAY[budget])
    mine = hours.get(policy)
    base = _best_reactive(hours) if against == "reactive" else run["oracle_floor"]["clairvoyant"]
    if mine is None or base is None or not base > 0:
        return None
    return mine / base


def _best_reactive_vs_floor(run: Run, budget: int) -> float | None:
    best = _best_reactive(readings(run, budget, _PER_DAY[budget]))
    floor = run["oracle_floor"]["clairvoyant"]
    return None if best is None or not floor > 0 else best / floor


_PER_DAY: list[float] = []


def table(runs: list[Run], startup_s: float, budgets: list[float]) -> str:
    """Rows: kind x policy; per budget: test-window x best tuned reactive, x the clairvoyant floor,
    and the dev windows' x best reactive beside them."""
    header = ["kind", "policy"]
    for share in budgets:
        label = f"{share * 100:g} %"
        header += [
            f"test x best reactive @ {label}",
            f"test x clairvoyant @ {label}",
            f"dev x best reactive @ {label}",
        ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for kind in KINDS:
        chosen = [r for r in runs if r["kind"] == kind and r["job"]["startup_s"] == startup_s]
        test = [r for r in chosen if r["job"]["split"] == "test"]
        dev = [r for r in chosen if r["job"]["split"] == "dev"]
        if not chosen:
            continue
        for policy in (*POLICIES, "best tuned reactive"):
            cells = [kind, policy]
            for b in range(len(budgets)):
                empty: tuple[list[float], int, int] = ([], 0, 0)
                if policy == "best tuned reactive":
                    vs_r = empty
                    test_floor = _per_window(test, lambda r, b=b: _best_reactive_vs_floor(r, b))
                    dev_r = empty
                else:
                    vs_r = _per_window(test, lambda r, b=b, p=policy: _ratio(r, b, p, "reactive"))
                    test_floor = _per_window(test, lambda r, b=b, p=policy: _ratio(r, b, p, "floor"))
                    dev_r = _per_window(dev, lambda r, b=b, p=policy: _ratio(r, b, p, "reactive"))
                for values, known, total in (vs_r, test_floor, dev_r):
                    cells.append(f"{_fmt(values)} [{known}/{total}]" if total else "-")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def losses(runs: list[Run], startups: list[float], budgets: list[float]) -> list[str]:
    """Plain sentences: on test windows (median over seeds), where predictive costs more than the
    best tuned reactive or than another baseline at the same budget, or has no reading there."""
    found = []
    rivals = ("best tuned reactive", "no_forecast", "holt_winters", "crane_dsp", "aws_style")
    for startup in startups:
        for b, share in enumerate(budgets):
            test = [r for r in runs if r["job"]["split"] == "test" and r["job"]["startup_s"] == startup]
            by_window: dict[tuple[str, float], list[Run]] = defaultdict(list)
            for run in test:
                by_window[(run["job"]["trace"], run["job"]["start_day"])].append(run)
            worse: dict[str, list[str]] = defaultdict(list)
            outside, nobody = [], []
            for (trace, day), group in sorted(by_window.items()):
                hours = [readings(r, b, _PER_DAY[b]) for r in group]
                if any(h["predictive"] is None for h in hours):
                    # A loss where the best tuned reactive reaches the budget on every seed; else no
                    # policy is read there (a seed's minutes that even the clairvoyant violates).
                    reached = all(_best_reactive(h) is not None for h in hours)
                    (outside if reached else nobody).append(f"{trace}@{day:g}")
                    continue
                for rival in rivals:
                    pairs = []
                    for h in hours:
                        other = _best_reactive(h) if rival == "best tuned reactive" else h.get(rival)
                        if other is not None and other > 0:
                            pairs.append(float(h["predictive"] or 0.0) / other)
                    if pairs and len(pairs) == len(hours) and statistics.median(pairs) > 1.0:
                        worse[rival].append(f"{trace}@{day:g} ({statistics.median(pairs):.3f}x)")
            label = f"{startup:g} s start-up, budget {share * 100:g} %"
            for rival in rivals:
                if worse[rival]:
                    found.append(
                        f"- {label}: predictive costs more than {rival} on {', '.join(worse[rival])}."
                    )
            if outside:
                found.append(
                    f"- {label}: predictive has no reading (its frontier does not cross the budget inside "
                    f"its sweep) where the best tuned reactive has one on every seed, on {', '.join(outside)}."
                )
            if nobody:
                found.append(
                    f"- {label}: predictive has no reading, nor has the best tuned reactive on at least "
                    f"one seed, on {', '.join(nobody)}."
                )
    return found


def markdown(saved: dict[str, Any], windows: dict[str, Any], keys: list[str], plots: Path) -> str:
    """The section's text."""
    meta = saved.get("meta", {})
    runs: list[Run] = [saved["runs"][k] for k in keys if k in saved.get("runs", {})]
    protocol = windows["protocol"]
    budgets = [float(b) for b in protocol["budget_shares"]]
    _PER_DAY[:] = [budget_minutes_per_day(b) for b in budgets]
    startups = sorted(float(s) for s in protocol["startups_s"])
    missing = [k for k in keys if k not in saved.get("runs", {})]
    done_by: dict[tuple[float, str], tuple[int, int]] = {}
    for key in keys:
        _, split, _, _, startup_text = key.split("|")
        have, total = done_by.get((float(startup_text), split), (0, 0))
        done_by[(float(startup_text), split)] = (have + (key in saved.get("runs", {})), total + 1)
    coverage = "; ".join(
        f"{startup:g} s {split}: {have}/{total} jobs"
        for (startup, split), (have, total) in sorted(done_by.items())
    )
    seconds = [float(r["seconds"]) for r in runs if "seconds" in r]
    workers = int(meta.get("jobs", 2) or 2)
    runtime = ""
    if seconds:
        wall_min = float(meta.get("seconds", 0.0)) / 60
        mean = statistics.mean(seconds)
        whole = f"{wall_min:.0f} min" if not missing else f"about {mean * len(keys) / workers / 60:.0f} min"
        goal = (
            "within" if (wall_min if not missing else mean * len(keys) / workers / 60) <= GOAL_MIN else "over"
        )
        cpu = [float(r["cpu_seconds"]) for r in runs if "cpu_seconds" in r]
        stopped_min = float(meta.get("stopped_seconds", 0.0)) / 60
        paused = (
            f", not counting {stopped_min:.0f} min stopped to leave the machine to other work"
            if stopped_min >= 1
            else ""
        )
        # A job's wall time includes a stop while it ran; its CPU time does not.
        per_job = (
            f"{sum(cpu) / 60:.0f} min of CPU in all, {statistics.mean(cpu):.0f} s a job"
            if cpu
            else f"a job took {mean:.0f} s on average on one worker"
        )
        runtime = (
            f"Runtime: {len(runs)} jobs in {wall_min:.0f} min of wall time on {workers} workers{paused} ({per_job}, "
            "on a machine shared with other work); the whole protocol "
            f"takes {whole}, {goal} the {GOAL_MIN} minutes it is meant to fit in. Most of a job is "
            "predictive's own code: its ensemble fits (24 a simulated day, shared by its sweep and by the "
            "60 s and 180 s jobs of a window and seed, whose forecasts have the same horizon) and, at every 15 s "
            "step of each quantile it is swept over, its fine-step forecast."
        )
    floor_minutes = [r["policies"]["clairvoyant"]["slo_violation_minutes"] / r["days"] for r in runs]
    lookahead = [r["oracle_floor"]["lookahead"] / r["oracle_floor"]["clairvoyant"] for r in runs]
    floors = (
        f"The floors: the look-ahead oracle costs {_fmt(lookahead)} x the clairvoyant (median, min-max over "
        f"jobs); the clairvoyant has {_fmt(floor_minutes)} SLO minutes per day (it plans for the 95th "
        "percentile start-up, so a slower replica can cost it a minute)."
        if runs
        else ""
    )
    settings = meta.get("settings", {})
    cluster = settings.get("cluster", {})
    status = (
        f"**PARTIAL: {len(runs)} of {len(keys)} jobs of the protocol finished** ({coverage}). Missing jobs are "
        "not in any table; a table cell counts only windows where every seed ran. Missing: "
        f"{_missing(missing)}."
        if missing
        else f"All {len(keys)} jobs of the protocol finished."
    )
    parts = [
        SECTION,
        "",
        status,
        "",
        runtime,
        "",
        f"Commit {meta.get('commit', '?')}, {meta.get('date', '?')}, {meta.get('cpus', '?')} CPUs, "
        f"{meta.get('jobs', '?')} worker processes, {meta.get('seconds', 0) / 60:.0f} min of wall time. "
        "Reproduce: `PYTHONPATH=. .venv/bin/python -m benchmarks.autoscaling` (resumable with `--resume`; "
        "`--render` rewrites this section from `benchmarks/autoscaling_results.json`).",
        "",
        "**Protocol.** `benchmarks/windows.toml` fixes, per trace, development windows and test windows; it "
        "was committed (c842480) before any mechanic or policy change. Each job is one (window, Poisson seed, "
        f"start-up): test windows with seeds {protocol['test_seeds']}, dev windows with {protocol['dev_seeds']}, "
        f"start-ups {', '.join(f'{s:g}' for s in startups)} s (median; per-replica lognormal, p95 = 1.5 x "
        "the median). The window is rescaled so its peak needs "
        f"{protocol['peak_replicas']} replicas of {cluster.get('concurrency', '?')} slots x "
        f"{cluster.get('service_time_s', '?')} s; SLO p99 <= {cluster.get('slo_s', '?')} s per minute; clients "
        f"give up after {cluster.get('client_timeout_s', '?')} s (a dropped request violates). Every policy sees "
        "the service through a 15 s Prometheus scrape and `rate()[1m]`, replicas one scrape late; the HPA runs "
        "KEDA's default (no `behavior`: the legacy path, 300 s down-stabilization, max(2x, 4) per sync).",
        "",
        "**Reading.** Each policy's knob is swept on the job's demand (reactive and reactive_60s: target "
        "in-flight per replica; reactive_rate: requests/s per replica; no_forecast, holt_winters, aws_style: "
        "`threshold`; crane_dsp: target; predictive: `quantile` and `threshold`; "
        f"{_grids(settings)}). Its frontier is read at an "
        "SLO budget of violating minutes per day (0.1 % of minutes = 1.44/day, 1 % = 14.4/day) by linear "
        "interpolation; where the cheapest point already meets the budget, its GPU-hours if its knob lies inside "
        "the swept range (the cost rises on both sides), else no reading; a budget outside the sweep has no "
        "reading (never extrapolated). A cell is the median "
        "over windows of the per-window median over seeds, (min-max) over windows, and [windows with a "
        "reading / windows run]. `x best reactive`: GPU-hours / the cheapest of reactive, reactive_60s and "
        "reactive_rate at that budget on the same job (< 1 is a saving). `x clairvoyant`: GPU-hours / the "
        "clairvoyant floor (the oracle without down-stabilization). Dev windows are the only ones defaults "
        "may be tuned on; they are beside the test ones, not pooled with them.",
        "",
    ]
    parts += [floors, ""]
    for startup in startups:
        parts += [f"### {startup:g} s start-up", "", table(runs, startup, budgets), ""]
    quantile = float(settings.get("predictive", {}).get("quantile", 0.9))
    parts += [
        "### The bound served: coverage and pipeline",
        "",
        "Predictive at its default knob (quantile "
        f"{quantile:g}): the share of lead-time windows whose in-flight peak stayed within the bound served "
        "at the window's start, over the run's last day, after the online correction (`scaler.calibration`), "
        "median over windows of the per-window median over seeds (min-max) [windows within "
        f"{COVERAGE_SLACK * 100:g} points of {quantile:g} / windows]; and the share of steps it served "
        "no_forecast's or the observed value's bound instead of the forecast's (`pipeline: auto`, "
        "`scaler.choice`).",
        "",
        coverage_table(runs, startups, quantile),
        "",
        "### Under an error budget (`sloQuery`, `errorBudget`)",
        "",
        "Predictive run once per budget with that `errorBudget` and an `sloQuery` on the simulated SLO (the "
        "newest finished minute's verdict, through the same scrape): its violating minutes over the window as "
        f"a share of the budget [windows within {BUDGET_SLACK * 100:g} % of it / windows], and its GPU-hours "
        "over predictive's equal-SLO reading at that budget (the cheapest of its swept quantiles and "
        "thresholds meeting the budget; [windows with a reading / windows]).",
        "",
        budget_table(runs, startups, budgets),
        "",
    ]
    parts += budget_reading(runs, startups, budgets, settings.get("predictive", {}))
    lost = losses(runs, startups, budgets)
    parts += ["### Where predictive loses (test windows, median over seeds)", ""]
    parts += lost or ["- Nowhere among the finished jobs."]
    parts += [""]
    names = figures(runs, budgets, plots, kinds=KINDS, policies=POLICIES)
    if names:
        parts += ["### Frontiers", ""]
        parts += [f"![{name}](plots/{name})" for name in names]
        parts += [""]
    return "\n".join(parts)


def _grids(settings: dict[str, Any]) -> str:
    """The sweep's grids as the results record them."""
    low, high = settings.get("sweep_range", (0.5, 1.6))
    return (
        f"target-like knobs at {settings.get('sweep_points', '?')} points from {low:g}x to {high:g}x their "
        "default, evenly on a log scale; predictive's quantiles "
        f"{', '.join(f'{q:g}' for q in settings.get('quantiles', []))} and thresholds "
        f"{', '.join(f'{t:g}' for t in settings.get('threshold_shares', []))}x one replica's slots"
    )


def _missing(keys: list[str]) -> str:
    """The missing jobs, window by window: `trace@day (split, start-up s: seeds)`."""
    grouped: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for key in keys:
        trace, split, day, seed, startup = key.split("|")
        grouped[(startup, split, trace, day)].append(seed)
    return "; ".join(
        f"{trace}@{day} ({split}, {startup} s: seeds {','.join(seeds)})"
        for (startup, split, trace, day), seeds in grouped.items()
    )


def write_section(text: str, readme: Path) -> None:
    """Replace this benchmark's section of `readme` (between the markers), or append it."""
    block = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    old = readme.read_text() if readme.exists() else "# Benchmarks\n"
    if BEGIN in old and END in old:
        head, _, rest = old.partition(BEGIN)
        _, _, tail = rest.partition(END)
        new = head + block + tail.lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    readme.write_text(new)
