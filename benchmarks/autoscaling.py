"""Autoscaling on real traces: prescaler's predictive policy against reactive, Holt-Winters and the oracle.

For each trace and pod start-up delay, `scaler.sim.compare.compare` runs every policy on the same
sampled demand (the window after `--history` days, rescaled so its peak needs 20 replicas) and sweeps
reactive's target; reactive is read at predictive's GPU-hours on the sweep's frontier. The settings
are the same for every trace (no per-trace tuning); they are printed with the results.

Writes the results table into its own section of benchmarks/README.md (between marker comments;
nothing else in the file is touched), the raw numbers to benchmarks/autoscaling_results.json and one
figure per trace (at 180 s start-up) under benchmarks/plots/.

    python -m benchmarks.autoscaling            # the full run, ~20 min on 2 cores
    python -m benchmarks.autoscaling --quick    # 2 traces, 180 s, 1 day: about a minute

Checks of one row, printed and never written (the README records the full default run):

    python -m benchmarks.autoscaling --traces nasa_http --startups 180 --seed 2
    python -m benchmarks.autoscaling --traces nasa_http --startups 180 --no-replicas-query
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._autoscaling_report import markdown, write_section
from benchmarks._autoscaling_setup import (
    BURST_AFTER_MIN,
    BURST_OVER_MIN,
    BURST_RISE,
    CLUSTER,
    DATA,
    HISTORY_DAYS,
    PEAK_REPLICAS,
    PLOTS,
    PLOTTED_STARTUP_S,
    QUICK,
    README,
    RESULTS,
    SETTINGS,
    STARTUPS_S,
    TRACES,
    Spec,
    load,
)
from benchmarks._provenance import commit
from forecasting.base import DAY_S
from scaler.sim import MinuteSeries
from scaler.sim.compare import Setup, compare, rescaled, split, to_json
from scaler.sim.plot import comparison_figure
from scaler.sim.predictive import THRESHOLD_SHARE_BLIND, PredictiveSettings
from scaler.traces import Trace

# Poisson seeds the acceptance rows are checked with, besides the table's seed 1.
CHECK_SEEDS = (2, 3)


def run_one(
    spec: Spec,
    trace: Trace,
    startup_s: float,
    days: float,
    plot: bool,
    settings: PredictiveSettings = SETTINGS,
    seed: int = 1,
    variant: str = "",
) -> dict[str, Any]:
    """One (trace, start-up) comparison as the simulate command's JSON, plus timing; a `variant`
    (a check of an acceptance row) runs without holt_winters."""
    started = time.perf_counter()
    cluster = dataclasses.replace(CLUSTER, startup_delay_s=startup_s)
    policies = (
        ("reactive", "predictive", "oracle")
        if variant
        else ("reactive", "predictive", "holt_winters", "oracle")
    )
    setup = Setup(cluster, policies=policies, settings=settings, seed=seed)
    past, window = split(trace, history_s=HISTORY_DAYS * DAY_S, days=days)
    past, window = rescaled(past, window, peak_replicas=PEAK_REPLICAS, cluster=cluster)
    result = compare(past, window, setup)
    if plot:
        title = f"{spec.name}: start-up {startup_s:g} s, peak {PEAK_REPLICAS:g} replicas"
        figure = comparison_figure(title, result.outcomes, cluster, result.sweep, result.at_equal)
        PLOTS.mkdir(parents=True, exist_ok=True)
        figure.savefig(PLOTS / f"autoscaling_{spec.name}_{startup_s:g}s.png", dpi=80)
    about = {
        "trace": {"name": spec.name, "kind": spec.kind, "days": days, "startup_s": startup_s},
        "variant": variant,
    }
    bursts = after_bursts(result.outcomes["predictive"].minutes, cluster.slo_quantile)
    return {**to_json(result, about), "bursts": bursts, "seconds": time.perf_counter() - started}


def after_bursts(minutes: MinuteSeries, slo_quantile: float) -> dict[str, float]:
    """How many of a run's SLO minutes come soon after a burst: within BURST_AFTER_MIN minutes of the
    demand rising by BURST_RISE within BURST_OVER_MIN minutes (what no daily pattern foresees)."""
    demand = minutes.demand_rps
    rise = np.zeros(demand.size, dtype=bool)
    rise[BURST_OVER_MIN:] = demand[BURST_OVER_MIN:] >= (1 + BURST_RISE) * demand[:-BURST_OVER_MIN]
    near = np.convolve(rise, np.ones(BURST_AFTER_MIN + 1), mode="full")[: demand.size] > 0
    late = minutes.over_slo > (1 - slo_quantile) * (1 + 1e-9)
    return {
        "slo_minutes": int(late.sum()),
        "after_burst": int((late & near).sum()),
        "minutes_after_burst_share": float(near.mean()),
    }


def _cpus() -> int:
    return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=DATA, help="the shared data folder (default ../shared/data)"
    )
    parser.add_argument("--quick", action="store_true", help="2 traces, 180 s start-up, 1 simulated day")
    parser.add_argument("--days", type=float, help="days simulated per trace (default 5, 1 with --quick)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--no-write", action="store_true", help="print the section; write nothing")
    check = parser.add_argument_group("checks of single rows (print only; nothing is written)")
    check.add_argument("--traces", type=_names, help="comma-separated trace names (default: all)")
    check.add_argument("--startups", type=_seconds, help="comma-separated start-up delays in s")
    check.add_argument("--seed", type=int, help="the Poisson arrivals' seed (default 1)")
    check.add_argument(
        "--no-replicas-query",
        action="store_true",
        help=f"predictive without `replicasQuery`, `threshold` {THRESHOLD_SHARE_BLIND:g} x concurrency",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help=f"rewrite the README section from {RESULTS.name} without simulating (after a wording change)",
    )
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(RESULTS.read_text())
        write_section(markdown(saved["runs"], saved["meta"]))
        return 0
    checking = any(x is not None for x in (args.traces, args.startups, args.seed)) or args.no_replicas_query
    if args.traces is not None and not set(args.traces) <= {s.name for s in TRACES}:
        parser.error(f"--traces: expected names among {', '.join(s.name for s in TRACES)}")
    chosen = args.traces or (QUICK if args.quick else [s.name for s in TRACES])
    specs = [s for s in TRACES if s.name in chosen]
    startups = args.startups or ((PLOTTED_STARTUP_S,) if args.quick else STARTUPS_S)
    settings = dataclasses.replace(SETTINGS, replicas_known=False) if args.no_replicas_query else SETTINGS
    seed = 1 if args.seed is None else args.seed
    days = args.days or (1.0 if args.quick else 5.0)
    started = time.perf_counter()
    traces = {spec.name: load(spec, args.data) for spec in specs}
    print(f"loaded {len(traces)} traces in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    plot = not (args.no_write or checking)
    if plot:
        for old in PLOTS.glob("autoscaling_*.png"):
            old.unlink()
    jobs: list[tuple[Spec, float, PredictiveSettings, int, str]] = [
        (spec, startup, settings, seed, "") for spec in specs for startup in startups
    ]
    if not (args.quick or checking):
        jobs += checks(specs)
    runs: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(
                run_one,
                spec,
                traces[spec.name],
                startup,
                days,
                plot and startup == PLOTTED_STARTUP_S and not variant,
                chosen_settings,
                chosen_seed,
                variant,
            )
            for spec, startup, chosen_settings, chosen_seed, variant in jobs
        ]
        for future in futures:
            run = future.result()
            runs.append(run)
            p = run["policies"]
            print(
                f"{run['trace']['name']} {run['trace']['startup_s']:g}s{' ' + run['variant'] if run['variant'] else ''}: predictive "
                f"{p['predictive']['gpu_hours'] / p['oracle']['gpu_hours']:.2f}x oracle, "
                f"{p['predictive']['slo_violation_minutes']} SLO min; reactive at equal GPU-h "
                f"{run['reactive_at_equal_gpu_hours']['slo_violation_minutes']:.1f} ({run['seconds']:.0f} s)",
                file=sys.stderr,
            )
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit((README, RESULTS, PLOTS)),
        "cpus": _cpus(),
        "python": platform.python_version(),
        "jobs": args.jobs,
        "quick": args.quick,
        "days": days,
        "seconds": time.perf_counter() - started,
    }
    if checking:
        return 0
    text = markdown(runs, meta)
    print(text)
    if not args.no_write:
        write_section(text)
        results = {"meta": meta, "runs": runs}
        RESULTS.write_text(json.dumps(results, indent=1, default=_json_default) + "\n")
    return 0


def checks(specs: list[Spec]) -> list[tuple[Spec, float, PredictiveSettings, int, str]]:
    """Checks of the acceptance rows (diurnal traces): at 180 s with two more Poisson seeds, and
    blind to the replicas (`--no-replicas-query`) at 180 s and 600 s."""
    blind = dataclasses.replace(SETTINGS, replicas_known=False)
    found: list[tuple[Spec, float, PredictiveSettings, int, str]] = []
    for spec in (s for s in specs if s.kind == "diurnal"):
        found += [(spec, PLOTTED_STARTUP_S, SETTINGS, seed, f"seed {seed}") for seed in CHECK_SEEDS]
        found += [(spec, startup, blind, 1, "blind") for startup in (PLOTTED_STARTUP_S, max(STARTUPS_S))]
    return found


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _seconds(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds such as 60,180; got {text!r}") from None


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
