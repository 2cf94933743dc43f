"""Capacity planning benchmarks: a fleet's run time in one process and on Dask, and the closing loop.

    python benchmarks/plan_fleet.py fleet [--services 200] [--workers 2] [--out plan_fleet.md]
    python benchmarks/plan_fleet.py loop  [--windows 4] [--out plan_loop.md]

`fleet`: N services (windows of the shared NYC taxi trace, each scaled differently) planned by
`scaler.plan.fleet.plan_fleet` in this process and on a `dask.distributed.LocalCluster` of worker
processes, on the cheapest path (seasonal naive) and the full ensemble; checks the plans are equal.

`loop`: on each shared trace, at several origins a week apart, plans from the history before the
origin and replays the plan's replicas (and the naive rule's) through the simulator on the days after
it (`scaler.plan.replay.replay_schedule`); reports how often the SLO is met. The trace is rescaled
so the history's peak needs 40 replicas' throughput of the example profile.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._data import SERIES, Spec, load
from benchmarks._provenance import commit, emit
from forecasting.base import MEMBERS
from scaler.plan.core import PlanOptions, plan_trace, to_json
from scaler.plan.fleet import Job, plan_fleet
from scaler.plan.forecast import Demand, hourly
from scaler.plan.profile import Profile, load_prices, load_profile
from scaler.plan.replay import replay_schedule
from scaler.traces import Trace

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "deploy" / "plan" / "profile.example.yaml"
PRICES = ROOT / "deploy" / "plan" / "prices.example.yaml"
DAY_S, WEEK_S = 86_400.0, 7 * 86_400.0
PEAK_REPLICAS = 40
SPIKY = {"elb_requests_8c0756", "twitter_goog", "twitter_aapl", "ec2_network_in", "twitter_fb", "twitter_ibm"}
KINDS = {
    "asg_cpu": "saturation incidents",
    "rds_cpu_cc0c53": "level shift x2.4 on day 11",
    "nasa_http": "diurnal (outage as zeros, 3.4 days unlogged)",
}
EXTRA = (
    Spec("twitter_aapl", ("nab/realTweets/Twitter_volume_AAPL.csv",), 300, "spiky (viral)"),
    Spec("ec2_network_in", ("nab/realAWSCloudwatch/ec2_network_in_257a54.csv",), 300, "bursts ~1000x"),
)
# `loop --dev`: windows the evaluation above never uses, to check a change (or choose a setting) on
# before it is evaluated: NYC taxi from its fifth window on (September to January, with Thanksgiving and
# Christmas), two more Twitter traces and a CPU trace with saturation incidents.
DEV = (
    (SERIES[0], 4),
    (Spec("twitter_fb", ("nab/realTweets/Twitter_volume_FB.csv",), 300, "spiky (viral)"), 0),
    (Spec("twitter_ibm", ("nab/realTweets/Twitter_volume_IBM.csv",), 300, "spiky (viral)"), 0),
    (Spec("asg_cpu", ("nab/realKnownCause/cpu_utilization_asg_misconfiguration.csv",), 300, "incidents"), 0),
)

# A replayed week with more of its steps missing than this is not replayed (its load is unknown).
MAX_REPLAY_MISSING = 0.05


def as_trace(spec: Spec) -> Trace:
    """The spec's trace on its step, NaN where no sample was (the planner treats those hours as missing;
    NASA-HTTP's 3.4 days between its July and August logs among them)."""
    series = load(spec)
    at_s = series.start_s + series.step_s * np.arange(len(series), dtype=np.float64)
    return Trace(spec.name, at_s, np.where(series.observed, series.values, np.nan), series.step_s)


def replayable(after: Trace) -> Trace | None:
    """The week to replay with its few missing steps interpolated; None when too many are missing."""
    known = np.isfinite(after.values)
    if not known.any() or known.mean() < 1 - MAX_REPLAY_MISSING:
        return None
    return after._replace(values=np.interp(after.at_s, after.at_s[known], after.values[known]))


def window(trace: Trace, start_s: float, end_s: float) -> Trace:
    keep = (trace.at_s >= start_s) & (trace.at_s < end_s)
    return trace._replace(at_s=trace.at_s[keep], values=trace.values[keep])


def fleet_jobs(count: int) -> list[Job]:
    """`count` services: 5-week windows of the NYC taxi trace a day apart, scaled 0.2x to 5x."""
    trace = as_trace(SERIES[0])
    profile = load_profile(PROFILE)
    rng = np.random.default_rng(1)
    jobs = []
    for i in range(count):
        start = trace.at_s[0] + (i % 150) * DAY_S
        part = window(trace, start, start + 5 * WEEK_S)
        factor = float(np.exp(rng.uniform(np.log(0.2), np.log(5.0)))) * PEAK_REPLICAS * profile.capacity_rps
        part = part._replace(values=part.values * factor / part.values.max())
        series, peak = hourly(part, 0.9)
        jobs.append(Job(f"svc-{i:03d}", series, peak, profile))
    return jobs


def run_fleet(args: argparse.Namespace) -> str:
    from distributed import Client, LocalCluster

    prices = load_prices(PRICES)
    jobs = fleet_jobs(args.services)
    paths = {
        "seasonal naive": PlanOptions(members=(), backtest_origins=0, sim_check=False),
        "ensemble, 4-origin backtest": PlanOptions(members=MEMBERS, backtest_origins=4, sim_check=False),
    }
    rows = []
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: __import__("scaler.plan.core"))  # import statsforecast once per worker, untimed
        for label, options in paths.items():
            count = args.services if options.members == () else args.ensemble_services
            work = jobs[:count]
            t0 = time.perf_counter()
            local = plan_fleet(work, prices, options)
            local_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            remote = plan_fleet(work, prices, options, client=client)
            remote_s = time.perf_counter() - t0
            same = [to_json(p) for p in local] == [to_json(p) for p in remote]
            rows.append((label, count, local_s, remote_s, same))
            print(
                f"{label}: {count} services, {local_s:.1f} s / {remote_s:.1f} s, equal {same}",
                file=sys.stderr,
            )
    lines = [
        f"Fleet: {args.services} services (5-week NYC taxi windows, 28-day plans), commit {commit()}, "
        f"{args.workers} Dask worker processes on this machine's cores.",
        "",
        "| forecast path | services | single process (s) | LocalCluster (s) | per service, single (ms) | plans equal |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, count, local_s, remote_s, same in rows:
        lines.append(
            f"| {label} | {count} | {local_s:.1f} | {remote_s:.1f} | {1000 * local_s / count:.0f} | {'yes' if same else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def run_loop(args: argparse.Namespace) -> str:
    prices = load_prices(PRICES)
    example = load_profile(PROFILE)
    profiles: dict[str, Profile] = {
        "example (cv 0.6, load test)": example,
        "deterministic (cv 0)": dataclasses.replace(example, service_time_cv=0.0, load_test=()),
    }
    rows = []
    chosen = DEV if args.dev else tuple((spec, 0) for spec in (*SERIES, *EXTRA))
    plan_specs = [(s, k) for s, k in chosen if not args.traces or s.name in args.traces.split(",")]
    specs = [s for s, _ in plan_specs]
    for spec, skip in plan_specs:
        trace = as_trace(spec)
        span_s = trace.at_s[-1] - trace.at_s[0]
        history_s = min(5 * WEEK_S, span_s - WEEK_S) if span_s >= 4.3 * WEEK_S else span_s - 4 * DAY_S
        replay_s = min(WEEK_S, span_s - history_s)
        if history_s < 7 * DAY_S:
            print(
                f"{spec.name}: {span_s / DAY_S:.1f} days usable, too short for a plan and a replay",
                file=sys.stderr,
            )
            continue
        count = args.windows if not args.dev else 10**6
        starts = [trace.at_s[0] + k * WEEK_S for k in range(skip, skip + count)]
        starts = [s for s in starts if s + history_s + replay_s <= trace.at_s[-1] + trace.step_s]
        for start in starts:
            origin = np.floor((start + history_s) / 3600) * 3600
            past = window(trace, start, origin)
            after = replayable(window(trace, origin, origin + replay_s))
            if after is None:
                print(
                    f"{spec.name} @{origin:.0f}: the replayed week is mostly missing; skipped",
                    file=sys.stderr,
                )
                continue
            factor = PEAK_REPLICAS * example.capacity_rps / float(np.nanmax(past.values))
            past = past._replace(values=past.values * factor)
            after = after._replace(values=after.values * factor)
            hours = int(replay_s // 3600)
            naive = None
            for label, profile in profiles.items():
                options = PlanOptions(horizon_h=hours, backtest_origins=0, sim_check=False)
                plan = plan_trace(spec.name, past, profile, prices, options)
                out = replay_schedule(
                    after, plan.replicas, plan.demand.start_s, profile, service_time_s=profile.service_time_s
                )
                if naive is None:
                    naive = replay_schedule(
                        after,
                        plan.replicas_naive,
                        plan.demand.start_s,
                        profile,
                        service_time_s=profile.service_time_s,
                    )
                rows.append((spec.name, label, origin, hours, out, naive, plan.demand))
                print(
                    f"{spec.name} {label} @{origin:.0f}: over {out.over_slo_fraction:.4f}, "
                    f"{out.slo_violation_minutes} min; naive {naive.over_slo_fraction:.4f}",
                    file=sys.stderr,
                )
    allowed = 1 - example.slo_quantile
    lines = [
        f"Closing the loop, commit {commit()}: plans replayed through the simulator on the days after their "
        f"history (SLO: p{100 * example.slo_quantile:g} <= {example.slo_seconds:g} s; met = at most "
        f"{100 * allowed:g} % of requests slower).",
        "",
        "| trace | kind | profile | windows | SLO met | requests over SLO (worst) | SLO minutes (worst) | GPU-hours vs naive | naive met | history cleaned: suspect h, shifts, level raised |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for spec in specs:
        for label in profiles:
            mine = [r for r in rows if r[0] == spec.name and r[1] == label]
            if not mine:
                continue
            met = sum(r[4].over_slo_fraction <= allowed for r in mine)
            naive_met = sum(r[5].over_slo_fraction <= allowed for r in mine)
            worst = max(r[4].over_slo_fraction for r in mine)
            minutes = max(r[4].slo_violation_minutes for r in mine)
            ratio = sum(r[4].gpu_hours for r in mine) / sum(r[5].gpu_hours for r in mine)
            kind = "spiky" if spec.name in SPIKY else KINDS.get(spec.name, "diurnal")
            lines.append(
                f"| {spec.name} | {kind} | {label} | {len(mine)} | {met}/{len(mine)} | {100 * worst:.2f} % | "
                f"{minutes} | {ratio:.2f} | {naive_met}/{len(mine)} | {_cleaned(r[6] for r in mine)} |"
            )
    return "\n".join(lines) + "\n"


def _cleaned(demands: Iterable[Demand]) -> str:
    """What cleaning did over a trace's windows: suspect hours left out (summed), level shifts found,
    windows whose forecast was raised to the recent weeks' level (by at most x)."""
    got = list(demands)
    raised = [d.level_factor for d in got if round(d.level_factor, 2) > 1]
    shifts = [f"x{d.shift.ratio:.2f}" for d in got if d.shift is not None]
    return (
        f"{sum(d.suspect_hours for d in got)} h, {len(shifts)}{' (' + ' '.join(shifts) + ')' if shifts else ''}, "
        f"{len(raised)}{f' (<= x{max(raised):.2f})' if raised else ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    fleet = sub.add_parser("fleet")
    fleet.add_argument("--services", type=int, default=200)
    fleet.add_argument("--ensemble-services", type=int, default=200)
    fleet.add_argument("--workers", type=int, default=2)
    fleet.add_argument("--out", type=Path)
    loop = sub.add_parser("loop")
    loop.add_argument("--windows", type=int, default=4)
    loop.add_argument("--traces", help="comma-separated trace names (default: all)")
    loop.add_argument("--dev", action="store_true", help="the development windows (DEV), all of them")
    loop.add_argument("--out", type=Path)
    args = parser.parse_args()
    emit(run_fleet(args) if args.what == "fleet" else run_loop(args), args.out)


if __name__ == "__main__":
    main()
