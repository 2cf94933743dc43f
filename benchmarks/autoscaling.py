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
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from scaler.sim import ClusterConfig, MinuteSeries
from scaler.sim.compare import DAY_S, Setup, compare, demand_at_step, rescaled, split, to_json
from scaler.sim.plot import comparison_figure
from scaler.sim.predictive import PredictiveSettings
from scaler.traces import Trace, load_trace

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
README = ROOT / "benchmarks" / "README.md"
RESULTS = ROOT / "benchmarks" / "autoscaling_results.json"
PLOTS = ROOT / "benchmarks" / "plots"
BEGIN, END = "<!-- autoscaling:begin -->", "<!-- autoscaling:end -->"
SECTION = "## Autoscaling: predictive vs reactive vs oracle"

STEP_S = 60.0
HISTORY_DAYS = 7.0
PEAK_REPLICAS = 20.0
STARTUPS_S = (60.0, 180.0, 600.0)
PLOTTED_STARTUP_S = 180.0
# The service: 8 slots, 1 s per request, p99 within 2 s (so a request may wait 1 s).
CLUSTER = ClusterConfig(concurrency=8, service_time_s=1.0, slo_s=2.0)
# The user-settable knobs, the same for every trace.
THRESHOLD_SHARE = 0.9
"""predictive's `threshold` as a share of a replica's concurrency: the HPA ignores a change within
10 % (its tolerance), so a threshold at full concurrency leaves replicas up to 10 % short."""
SETTINGS = PredictiveSettings(
    threshold=CLUSTER.concurrency * THRESHOLD_SHARE,
    quantile=0.9,
    refit_interval_s=3600.0,
    history_s=HISTORY_DAYS * DAY_S,
)


class Spec(NamedTuple):
    name: str
    paths: tuple[str, ...]
    """Summed when more than one (ServeGen: a model's clients)."""
    kind: str
    """`diurnal` (the acceptance applies), `spiky` or `noisy`."""
    note: str
    resolution_s: float | None = None
    """Average the trace to this step first (its load is then interpolated to STEP_S)."""


TRACES = (
    Spec("nyc_taxi", ("nab/realKnownCause/nyc_taxi.csv",), "diurnal", "NAB, 30 min, daily + weekly"),
    Spec("nasa_http", ("nasa_http_1995/workload.txt",), "diurnal", "NASA web server, 5 min means", 300.0),
    Spec(
        "servegen_llm",
        ("servegen/language/m-mid", "servegen/language/m-small"),
        "diurnal",
        "ServeGen m-mid + m-small LLM request rate, 10 min",
    ),
    Spec(
        "elb_requests", ("nab/realAWSCloudwatch/elb_request_count_8c0756.csv",), "spiky", "NAB AWS ELB, 5 min"
    ),
    Spec(
        "twitter_goog",
        ("nab/realTweets/Twitter_volume_GOOG.csv",),
        "spiky",
        "NAB tweets, 5 min, viral spikes",
    ),
    Spec("nasa_http_1min", ("nasa_http_1995/workload.txt",), "noisy", "NASA web server, 1 min means", 60.0),
)
QUICK = ("nyc_taxi", "elb_requests")
# A burst: demand up by BURST_RISE within BURST_OVER_MIN minutes; its aftermath: the next BURST_AFTER_MIN.
BURST_RISE, BURST_OVER_MIN, BURST_AFTER_MIN = 0.5, 5, 10


def load(spec: Spec, data: Path) -> Trace:
    """The spec's trace(s) as demand at STEP_S, summed over its files on their common minutes."""
    parts = []
    for relative in spec.paths:
        trace = load_trace(data / relative)
        if spec.resolution_s is not None:
            trace = demand_at_step(trace, spec.resolution_s)
        parts.append(demand_at_step(trace, STEP_S))
    start = max(float(p.at_s[0]) for p in parts)
    end = min(float(p.at_s[-1]) for p in parts)
    total = None
    for part in parts:
        keep = (part.at_s >= start) & (part.at_s <= end)
        total = part.values[keep] if total is None else total + part.values[keep]
        at_s = part.at_s[keep]
    assert total is not None
    return Trace(spec.name, at_s, total, STEP_S)


def run_one(spec: Spec, trace: Trace, startup_s: float, days: float, plot: bool) -> dict[str, Any]:
    """One (trace, start-up) comparison as the simulate command's JSON, plus timing."""
    started = time.perf_counter()
    cluster = dataclasses.replace(CLUSTER, startup_delay_s=startup_s)
    setup = Setup(cluster, policies=("reactive", "predictive", "holt_winters", "oracle"), settings=SETTINGS)
    past, window = split(trace, history_s=HISTORY_DAYS * DAY_S, days=days)
    past, window = rescaled(past, window, peak_replicas=PEAK_REPLICAS, cluster=cluster)
    result = compare(past, window, setup)
    if plot:
        title = f"{spec.name}: start-up {startup_s:g} s, peak {PEAK_REPLICAS:g} replicas"
        figure = comparison_figure(title, result.outcomes, cluster, result.sweep, result.at_equal)
        PLOTS.mkdir(parents=True, exist_ok=True)
        figure.savefig(PLOTS / f"autoscaling_{spec.name}_{startup_s:g}s.png", dpi=80)
    about = {"trace": {"name": spec.name, "kind": spec.kind, "days": days, "startup_s": startup_s}}
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


def ratio(numerator: float, denominator: float) -> str:
    if denominator > 0:
        return f"{numerator / denominator:.1f}x"
    return "inf" if numerator > 0 else "- (both 0)"


READING = (
    "Reading: on the diurnal traces at 60 and 180 s start-up, predictive's bound covers the daily ramps "
    "and most of the noise around them at 1.15-1.28x the oracle's GPU-hours, and reactive at the same "
    "GPU-hours breaks the SLO many times as often (at 180 s: 15x on NASA, 13x on ServeGen; on nyc_taxi "
    "neither breaks it at that cost). What SLO minutes predictive has follow bursts, demand up by half "
    "within minutes: no forecast of the daily shape sees them, and the level's trend catches one only as "
    "it begins. The longer the start-up, the further ahead the bound must reach: at 600 s a burst "
    "shorter than the start-up is over before any replica asked for it is ready, and predictive and "
    "reactive are close on NASA and ServeGen. NASA costs 1.28x the oracle at 180 s: its forecast errors "
    "at night are about as large in requests/s as at the peak, so the calibrated margin is a large share "
    "of the small night load, while the oracle, knowing each burst, pays nothing for uncertainty. On the "
    "spiky traces and NASA at one-minute resolution both policies are far from the oracle (the spikes "
    "are the load); predictive is ahead at 60 s (ELB 13.7x, tweets 1.9x) and level or behind from 180 s "
    "on the tweets, whose viral spikes are larger than any margin calibrated on ordinary days."
)
KINDS = {
    "diurnal": "a daily cycle; the acceptance applies at 180 s start-up",
    "spiky": "event-driven spikes no seasonal model foresees",
    "noisy": "a small service's minute-to-minute bursts, rescaled up (NASA at 1 min)",
}


def markdown(runs: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The section: settings, the table, the acceptance verdict, the plots and how to reproduce."""
    days = meta["days"]
    generated = "date" + (" (`--quick`)" if meta["quick"] else "")
    lines = [
        SECTION,
        "",
        "`benchmarks/autoscaling.py` replays the shared traces through the closed-loop KEDA/HPA simulator "
        "(`scaler.sim`, issue #4) under prescaler's predictive policy (its real trigger parser, forecaster, "
        "lead-time bound and decision rule), reactive KEDA, a Holt-Winters predictor and the clairvoyant "
        "oracle. Each row is one trace and one pod start-up delay. Reactive is judged at predictive's cost: "
        "its target is swept and the sweep's frontier is read at predictive's GPU-hours. Figures and flags: "
        "docs/simulator.md.",
        "",
        "### Reproduce",
        "",
        "1. `make install`",
        "2. the shared traces in `../shared/data` (see /work/shared/DATA.md), or pass `--data PATH`",
        "3. `PYTHONPATH=. .venv/bin/python -m benchmarks.autoscaling` (about 20 minutes on 2 cores; `--quick`: "
        "2 traces, 180 s, 1 day, under a minute). It rewrites this section (between its marker comments), "
        "`benchmarks/autoscaling_results.json` and the figures under `benchmarks/plots/`.",
        "",
        "### Results",
        "",
        f"- {generated}: {meta['date']}; commit {meta['commit']}; {meta['cpus']} CPUs, Python {meta['python']}, "
        f"{meta['jobs']} worker processes, {meta['seconds'] / 60:.1f} min in all.",
        f"- Windows: {days:g} simulated days after {HISTORY_DAYS:g} days of history (the forecasting "
        f"policies' past), rescaled so that the window's peak needs {PEAK_REPLICAS:g} replicas.",
        f"- Service: {CLUSTER.concurrency} slots per replica, {CLUSTER.service_time_s:g} s per request, SLO p99 "
        f"<= {CLUSTER.slo_s:g} s; demand at {STEP_S:g} s steps (coarser traces interpolated between their "
        "points), Poisson arrivals, 5 s ticks, KEDA and HPA defaults.",
        f"- predictive (prescaler, `mode: predictive` with `rateQuery`): `threshold` {SETTINGS.threshold:g} "
        f"({THRESHOLD_SHARE:g} x concurrency: the HPA's 10 % tolerance would otherwise leave it short), "
        f"`quantile` {SETTINGS.quantile:g}, `leadTime` = start-up + 30 s, `refitInterval` 1h, `history` "
        f"{HISTORY_DAYS:g}d, `serviceTime` 1s: the same for every trace.",
        f"- reactive: KEDA's Prometheus scaler on in-flight requests, target {CLUSTER.concurrency}; swept from "
        "0.35x to 1.3x that (16 targets). `sweep end`: predictive's GPU-hours are outside the range of "
        "reactive's frontier, whose nearest end is shown (reactive's cheapest point when predictive is "
        "cheaper still; its point with the fewest SLO minutes when predictive is dearer).",
        "- holt_winters: additive Holt-Winters at hourly steps, its point forecast provisioned (the "
        "predictive-HPA baseline); oracle: knows the future, the cost floor.",
        "- Cost: fitting dominates (a refit takes ~0.5 s, 24 per simulated day and forecasting run); a "
        "policy's simulation takes ~0.1 s per simulated day.",
        "",
        "| trace | kind | start-up | predictive GPU-h / oracle | predictive SLO min | reactive SLO min "
        "at predictive's GPU-h | reactive / predictive | holt_winters GPU-h / oracle, SLO min | "
        f"reactive (target {CLUSTER.concurrency}) GPU-h / oracle, SLO min |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for run in runs:
        trace, policies = run["trace"], run["policies"]
        oracle_h = policies["oracle"]["gpu_hours"]
        pred, hw, react = policies["predictive"], policies["holt_winters"], policies["reactive"]
        at_equal = run["reactive_at_equal_gpu_hours"]
        flag = "" if at_equal["inside_sweep"] else " (sweep end)"
        lines.append(
            f"| {trace['name']} | {trace['kind']} | {trace['startup_s']:g} s | "
            f"{pred['gpu_hours'] / oracle_h:.2f} | {pred['slo_violation_minutes']} | "
            f"{at_equal['slo_violation_minutes']:.1f}{flag} | "
            f"{ratio(at_equal['slo_violation_minutes'], pred['slo_violation_minutes'])} | "
            f"{hw['gpu_hours'] / oracle_h:.2f}, {hw['slo_violation_minutes']} | "
            f"{react['gpu_hours'] / oracle_h:.2f}, {react['slo_violation_minutes']} |"
        )
        if trace["kind"] == "diurnal" and trace["startup_s"] == PLOTTED_STARTUP_S:
            verdicts.append(verdict(trace["name"], pred, at_equal, oracle_h))
    lines += ["", "Traces: " + "; ".join(f"{s.name}: {s.note}" for s in TRACES) + ".", ""]
    lines += ["Kinds: " + "; ".join(f"{k}: {v}" for k, v in KINDS.items()) + ".", ""]
    lines += [
        "Acceptance (diurnal traces, 180 s start-up): reactive at predictive's GPU-hours has >= 5x "
        "predictive's SLO minutes, and predictive's GPU-hours are within 1.25x of the oracle's.",
        "",
        *verdicts,
    ]
    losses = [run for run in runs if not wins(run)]
    if losses:
        lines += [
            "",
            f"Where predictive does not win (reactive at its GPU-hours has < 5x its SLO minutes, or it costs "
            f"> 1.25x the oracle), and why: the share of its SLO minutes that come within {BURST_AFTER_MIN} "
            f"minutes of a burst (demand up {BURST_RISE:.0%} within {BURST_OVER_MIN} minutes), against the "
            "share of all minutes that do.",
            "",
        ]
        for run in losses:
            b, trace = run["bursts"], run["trace"]
            where = f"- {trace['name']}, {trace['startup_s']:g} s: "
            if not b["slo_minutes"]:
                cost = run["policies"]["predictive"]["gpu_hours"] / run["policies"]["oracle"]["gpu_hours"]
                lines.append(
                    where + f"no SLO minute for predictive (at {cost:.2f}x the oracle's GPU-hours), and "
                    "none for reactive at that cost either: a draw, not a win."
                )
                continue
            share = b["after_burst"] / b["slo_minutes"]
            lines.append(
                where + f"{b['after_burst']} of {b['slo_minutes']} SLO minutes ({share:.0%}) follow a burst; "
                f"{b['minutes_after_burst_share']:.0%} of all minutes do."
            )
    lines += ["", READING]
    plots = sorted(PLOTS.glob("autoscaling_*.png"))
    if plots:
        lines += ["", f"Figures ({PLOTTED_STARTUP_S:g} s start-up):", ""]
        lines += [f"![{p.stem}](plots/{p.name})" for p in plots]
    lines.append("")
    return "\n".join(lines)


def wins(run: dict[str, Any]) -> bool:
    """Predictive wins a row: reactive at its GPU-hours has >= 5x its SLO minutes (and some), and it
    costs at most 1.25x the oracle."""
    policies, at_equal = run["policies"], run["reactive_at_equal_gpu_hours"]
    minutes = float(policies["predictive"]["slo_violation_minutes"])
    reactive_minutes = float(at_equal["slo_violation_minutes"])
    cheap = bool(policies["predictive"]["gpu_hours"] <= 1.25 * policies["oracle"]["gpu_hours"])
    return cheap and reactive_minutes > 0 and reactive_minutes >= 5 * minutes


def verdict(name: str, pred: dict[str, Any], at_equal: dict[str, Any], oracle_h: float) -> str:
    minutes, reactive_minutes = pred["slo_violation_minutes"], at_equal["slo_violation_minutes"]
    slo_ok = reactive_minutes >= 5 * minutes
    cost = pred["gpu_hours"] / oracle_h
    trivially = ""
    if minutes == 0:
        trivially = " (trivially: neither has any)" if reactive_minutes == 0 else " (predictive has none)"
    return (
        f"- {name}: SLO {'holds' if slo_ok else 'FAILS'}{trivially}: reactive {reactive_minutes:.1f} vs "
        f"predictive {minutes} minutes ({ratio(reactive_minutes, minutes)}); cost "
        f"{'holds' if cost <= 1.25 else 'FAILS'}: {cost:.2f}x the oracle."
    )


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT, check=False)
    except OSError:
        return ""
    return done.stdout.strip()


def _commit() -> str:
    """The commit the run came from, and whether the working tree differed from it."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    outputs = [f":!{path.relative_to(ROOT)}" for path in (README, RESULTS, PLOTS)]
    changed = _git("status", "--porcelain", "--", ".", *outputs)
    return commit + (" (plus uncommitted changes)" if changed else "")


def _cpus() -> int:
    return os.cpu_count() or 1


def write_section(text: str, readme: Path = README) -> None:
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
    specs = [s for s in TRACES if not args.quick or s.name in QUICK]
    startups = (PLOTTED_STARTUP_S,) if args.quick else STARTUPS_S
    days = args.days or (1.0 if args.quick else 5.0)
    started = time.perf_counter()
    traces = {spec.name: load(spec, args.data) for spec in specs}
    print(f"loaded {len(traces)} traces in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    plot = not args.no_write
    if plot:
        for old in PLOTS.glob("autoscaling_*.png"):
            old.unlink()
    runs: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(
                run_one, spec, traces[spec.name], startup, days, plot and startup == PLOTTED_STARTUP_S
            )
            for spec in specs
            for startup in startups
        ]
        for future in futures:
            run = future.result()
            runs.append(run)
            p = run["policies"]
            print(
                f"{run['trace']['name']} {run['trace']['startup_s']:g}s: predictive "
                f"{p['predictive']['gpu_hours'] / p['oracle']['gpu_hours']:.2f}x oracle, "
                f"{p['predictive']['slo_violation_minutes']} SLO min; reactive at equal GPU-h "
                f"{run['reactive_at_equal_gpu_hours']['slo_violation_minutes']:.1f} ({run['seconds']:.0f} s)",
                file=sys.stderr,
            )
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "commit": _commit(),
        "cpus": _cpus(),
        "python": platform.python_version(),
        "jobs": args.jobs,
        "quick": args.quick,
        "days": days,
        "seconds": time.perf_counter() - started,
    }
    text = markdown(runs, meta)
    print(text)
    if not args.no_write:
        write_section(text)
        results = {"meta": meta, "runs": runs}
        RESULTS.write_text(json.dumps(results, indent=1, default=_json_default) + "\n")
    return 0


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
