"""Choose predictive's defaults on the development windows only.

Each variant sets some of predictive's settings (`scaler.sim.predictive.PredictiveSettings` fields);
every dev window of `benchmarks/windows.toml` at the given start-ups (seed 1) runs predictive under it,
at its default knob and swept as in the autoscaling protocol, beside the reactive baselines and
no_forecast. Printed per variant and start-up: the served bound's coverage at the default quantile
per window and its largest distance from it, the pipeline served at the end, and GPU-hours at equal
SLO over the best tuned reactive (median over windows with a reading, and each window's). Test
windows are never read.

    PYTHONPATH=. .venv/bin/python -m benchmarks.dev_study --data ../shared/data --startups 180,600 \\
        --variant forecast=pipeline:forecast --variant auto=pipeline:auto --out /tmp/dev.json

`--results /tmp/dev.json` reports a saved run again without simulating; the last lines printed (and
`--markdown`) are the summary table benchmarks/README.md shows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import autoscaling
from benchmarks._autoscaling_report import frontier_points, swept_ranges
from benchmarks._autoscaling_served import BUDGET_SLACK
from scaler.sim.compare import Setup
from scaler.sim.shared import FitCache
from scaler.sim.sweep import gpu_hours_at_budget
from scaler.sim.trigger_settings import PredictiveSettings

POLICIES = ("reactive", "reactive_60s", "reactive_rate", "no_forecast", "predictive")
FIELDS = {f.name: f.type for f in dataclasses.fields(PredictiveSettings)}


def variant(text: str) -> tuple[str, dict[str, Any]]:
    """`name=field:value,field:value` (values parsed as JSON, else kept as text)."""
    name, _, body = text.partition("=")
    settings: dict[str, Any] = {}
    for item in filter(None, body.split(",")):
        key, _, raw = item.partition(":")
        if key not in FIELDS:
            raise argparse.ArgumentTypeError(f"--variant {text!r}: {key!r} is not a PredictiveSettings field")
        try:
            settings[key] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key] = raw
    if not name:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: expected name=field:value,...")
    return name, settings


def _one(args: tuple[autoscaling.Job, dict[str, Any], str, float, str, dict[str, Any]]) -> dict[str, Any]:
    job, spec, data, peak, name, changes = args

    def configure(setup: Setup) -> Setup:
        settings = dataclasses.replace(setup.settings, **changes)
        if settings.error_budget is not None:
            # Controlled to a budget, predictive has no knob to sweep: its one run is the reading,
            # judged against the same windows' equal-SLO readings of another variant.
            return dataclasses.replace(setup, policies=("predictive",), settings=settings, sweep=False)
        return dataclasses.replace(setup, policies=POLICIES, settings=settings)

    out = autoscaling.run_job(job, spec, Path(data), peak, FitCache({}), configure=configure)
    out["variant"] = name
    out["meta_budget"] = changes.get("error_budget")
    return out


def _frontier_at(run: dict[str, Any], minutes: float) -> float | None:
    """Predictive's GPU-hours on its fixed-knob frontier in `run` at `minutes` violated, read as the
    autoscaling report reads a budget (`scaler.sim.sweep.gpu_hours_at_budget`: interpolated along the
    frontier; None where no swept point violates as few, or where the cheapest that does sits at an end
    of its knob's range)."""
    points = frontier_points(run, "predictive")
    return gpu_hours_at_budget(points, minutes / run["days"], run["days"], swept_ranges(run, "predictive"))


def _spread(values: list[float], digits: int) -> str:
    """`median (min-max)` of `values`, or `-`."""
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def budget_report(
    rows: list[dict[str, Any]], budget: float, against: dict[str, dict[str, Any]]
) -> tuple[int, list[float], list[float]]:
    """A budget-controlled variant: each window's violating share of minutes over the budget; its
    GPU-hours over predictive's equal-SLO reading at that budget in `against` (another run); and over
    predictive's fixed-knob frontier there at the minutes it did violate (its cost at its own SLO).
    Returns (windows within BUDGET_SLACK, the shares, the ratios to the frontier)."""
    print(f"  budget {budget:g}: window, violating share / budget, x predictive at equal SLO, x its frontier")
    within, shares, costs = 0, [], []
    for r in rows:
        details = r["policies"]["predictive"]
        minutes = r["days"] * 1440
        share = details["slo_violation_minutes"] / minutes / budget
        shares.append(share)
        within += abs(share - 1.0) <= BUDGET_SLACK + 1e-9
        base = against.get(r["key"])
        reading = frontier = None
        if base is not None:
            cell = next(e for e in base["equal_slo"] if abs(e["budget_share_of_minutes"] - budget) < 1e-12)
            reading = cell["gpu_hours"]["predictive"]
            frontier = _frontier_at(base, details["slo_violation_minutes"])
        ratio = "-" if reading is None else f"{details['gpu_hours'] / reading:.3f}"
        own = "-" if frontier is None else f"{details['gpu_hours'] / frontier:.3f}"
        if frontier is not None:
            costs.append(details["gpu_hours"] / frontier)
        print(f"    {r['key']:32s} {share:6.2f}  {ratio}  {own}")
    median = f"{statistics.median(costs):.3f}" if costs else "-"
    print(f"  within {BUDGET_SLACK * 100:g} %: {within}/{len(rows)}; x its frontier, median {median}")
    return within, shares, costs


def _coverages(rows: list[dict[str, Any]], policy: str) -> list[float]:
    found = [r["policies"][policy].get("forecasting", {}).get("bound_coverage") for r in rows]
    return [float(c) for c in found if c is not None]


def report(
    results: list[dict[str, Any]], names: list[str], startups: list[float], against: dict[str, dict[str, Any]]
) -> list[str]:
    """Prints each variant's windows; returns the summary as markdown table rows, one per variant and
    start-up (the tables benchmarks/README.md shows)."""
    quantile, budget_rows, knob_rows = 0.9, [], []
    for startup in startups:
        for name in names:
            rows = [r for r in results if r["variant"] == name and r["job"]["startup_s"] == startup]
            print(f"\nstart-up {startup:g} s, variant {name}")
            budget = rows[0]["meta_budget"] if rows and rows[0].get("meta_budget") else None
            if budget is not None:
                within, shares, costs = budget_report(rows, budget, against)
                worst = f" ({max(costs):.3f})" if costs else ""
                median = f"{statistics.median(costs):.3f}" if costs else "-"
                budget_rows.append(
                    f"| {name} | {startup:g} s | {within}/{len(rows)} | {_spread(shares, 2)} | "
                    f"{median}{worst} [{len(costs)}/{len(rows)}] |"
                )
                continue
            medians = []
            for policy in ("predictive", "no_forecast"):
                details = [r["policies"][policy] for r in rows]
                cover = [d.get("forecasting", {}).get("bound_coverage") for d in details]
                known = [c for c in cover if c is not None]
                far = max((abs(c - quantile) for c in known), default=float("nan"))
                cells = []
                for budget_index in (0, 1):
                    ratios = [r["equal_slo"][budget_index]["vs_best_reactive"][policy] for r in rows]
                    got = [x for x in ratios if x is not None]
                    median = f"{statistics.median(got):.3f}" if got else "-"
                    each = " ".join("-" if x is None else f"{x:.3f}" for x in ratios)
                    cells.append(f"{median} [{len(got)}/{len(rows)}] ({each})")
                    if policy == "predictive":
                        medians.append(f"{median} [{len(got)}/{len(rows)}]")
                listed = " ".join("-" if c is None else f"{c:.3f}" for c in cover)
                print(f"  {policy:12s} coverage {listed} (max |c-{quantile:g}| {far:.3f})")
                print(f"  {'':12s} x best reactive @0.1% {cells[0]}")
                print(f"  {'':12s} x best reactive @1%   {cells[1]}")
            mine, theirs = _coverages(rows, "predictive"), _coverages(rows, "no_forecast")
            if mine and theirs:
                far = max(abs(c - quantile) for c in mine)
                knob_rows.append(
                    f"| {name} | {startup:g} s | {min(mine):.3f}-{max(mine):.3f} | {far:.3f} | "
                    f"{medians[0]} | {medians[1]} | {min(theirs):.2f}-{max(theirs):.2f} |"
                )
            served = [r["policies"]["predictive"].get("forecasting", {}).get("pipeline") for r in rows]
            print(f"  pipelines served at the end: {served}")
            bursts = [r["policies"]["predictive"].get("forecasting", {}).get("burst_reserve") for r in rows]
            held = " ".join("-" if b is None else f"{b['bursts']}/{b['steps_share']:.3f}" for b in bursts)
            print(f"  burst windows / share of steps with a reserve: {held}")
    table: list[str] = []
    if knob_rows:
        table += [
            f"| variant | start-up | predictive's coverage (q = {quantile:g}) | largest distance | "
            "x best reactive @0.1 % | @1 % | no_forecast's coverage |",
            "|---|---|---|---|---|---|---|",
            *knob_rows,
        ]
    if budget_rows:
        table += [""] if table else []
        table += [
            f"| variant | start-up | within {BUDGET_SLACK * 100:g} % of the budget | violating share / "
            "budget, median (min-max) | x predictive's frontier at the same minutes, median (max) |",
            "|---|---|---|---|---|",
            *budget_rows,
        ]
    return table


def _run_variants(args: argparse.Namespace, startups: list[float]) -> list[dict[str, Any]]:
    windows = autoscaling.protocol()
    peak = float(windows["protocol"]["peak_replicas"])
    found = [
        j for j in autoscaling.jobs(windows) if j.split == "dev" and j.seed == 1 and j.startup_s in startups
    ]
    work = [
        (j, windows["traces"][j.trace], str(args.data), peak, n, c) for n, c in args.variant for j in found
    ]
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for done, out in enumerate(pool.map(_one, work), 1):
            results.append(out)
            print(
                f"[{done}/{len(work)}] {out['variant']} {out['key']} ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return results


def _read_json(parser: argparse.ArgumentParser, flag: str, path: Path) -> Any:
    """`path`'s JSON; a missing or unreadable file is a usage error naming `flag` and the path."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        parser.error(f"{flag} {path}: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=autoscaling.ROOT.parent / "shared" / "data")
    parser.add_argument("--variant", type=variant, action="append", default=[])
    parser.add_argument("--startups", default="180,600")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="where the runs are saved (JSON)")
    parser.add_argument("--results", type=Path, help="report an earlier --out again instead of running")
    parser.add_argument("--markdown", type=Path, help="also write the summary table here")
    parser.add_argument(
        "--against",
        type=Path,
        help="an earlier --out, or benchmarks/autoscaling_results.json, whose equal-SLO readings and "
        "frontiers budget variants are judged by",
    )
    args = parser.parse_args(argv)
    startups = sorted(float(s) for s in args.startups.split(","))
    if args.results is not None:
        results = _read_json(parser, "--results", args.results)
        if not isinstance(results, list) or not all(isinstance(r, dict) and "variant" in r for r in results):
            parser.error(
                f"--results {args.results}: expected an earlier --out (a list of runs with variants)"
            )
        names = list(dict.fromkeys(r["variant"] for r in results))
    elif args.variant and args.out is not None:
        results = _run_variants(args, startups)
        args.out.write_text(json.dumps(results))
        names = [n for n, _ in args.variant]
    else:
        parser.error("give --variant (one or more) and --out, or --results")
    against = {}
    if args.against is not None:
        found = _read_json(parser, "--against", args.against)
        # An earlier --out (a list of runs) or the autoscaling results ({"meta", "runs": {key: run}}).
        earlier = list(found["runs"].values()) if isinstance(found, dict) and "runs" in found else found
        if not isinstance(earlier, list) or not all(isinstance(r, dict) and "key" in r for r in earlier):
            parser.error(f"--against {args.against}: expected an earlier --out or the autoscaling results")
        against = {r["key"]: r for r in earlier}
    table = "\n".join(report(results, names, startups, against))
    print("\n" + table)
    if args.markdown is not None:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
