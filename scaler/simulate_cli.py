"""`prescaler simulate`: replay a load trace through the what-if simulator and compare policies.

    trace file / Prometheus range query -> demand at --step -> past (--history) | window (--days)
        -> rescaled so the window's peak needs --peak-replicas -> every policy, reactive's sweep
        -> table on stdout, JSON (--json), figure (--plot)

The simulator and the comparison (`scaler.sim`, `scaler.sim.compare`) are pure; this module does the
I/O around them (files, Prometheus, stdout), which is why it lives outside that package.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forecasting.base import DAY_S
from scaler import trigger_values
from scaler.choice import PIPELINES
from scaler.errors import ConfigError, QueryShapeError, SourceError
from scaler.sim import ClusterConfig, PipelineConfig, ScalingConfig, ScalingRules
from scaler.sim.autoscaler import SCALE_DOWN
from scaler.sim.compare import (
    POLICIES,
    QUANTILES,
    SWEEP_FROM,
    SWEEP_POINTS,
    SWEEP_TO,
    THRESHOLD_SHARES,
    Setup,
    compare,
    demand_at_step,
    rescaled,
    split,
)
from scaler.sim.plot import comparison_figure
from scaler.sim.readings import settings_json, table, to_json
from scaler.sim.trigger_settings import PredictiveSettings
from scaler.sources.prometheus import read_history
from scaler.traces import Trace, TraceError, load_trace
from scaler.trigger import DEFAULT_LEAD_S, parse_trigger
from scaler.trigger_values import MAX_LEAD_S
from scaler.units import format_duration, parse_duration_s


async def prometheus_trace(url: str, query: str, *, since_s: float, step_s: float, now_s: float) -> Trace:
    """The range query `query` over the `since_s` before `now_s`, one value per `step_s` (a value at
    t is taken as the mean over the step before t, as a `rate()` is)."""
    config = parse_trigger(
        {"serverAddress": url, "query": query, "threshold": "1", "step": "1h", "timeout": "1m"}
    )
    series = await read_history(config, now_s - since_s, now_s, step_s)
    return Trace(f"prometheus `{query}`", series.at_s - step_s, series.values, step_s)


def _duration(text: str) -> float:
    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"`{text}`: {exc}") from None


def _lead_time(text: str) -> float | str:
    return "auto" if text.strip().lower() == "auto" else _duration(text)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"`{text}`: expected a number > 0")
    return value


def _error_budget(text: str) -> float:
    try:
        return trigger_values.error_budget(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"`{text}`: {exc}") from None


def _names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in POLICIES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"`{text}`: expected a comma-separated list of {', '.join(POLICIES)}"
        )
    return names


def _outage(text: str) -> tuple[float, float]:
    start, plus, length = text.partition("+")
    try:
        begin, duration = parse_duration_s(start), parse_duration_s(length)
    except ValueError:
        plus = ""
    if not plus or duration <= 0:
        raise argparse.ArgumentTypeError(
            f"`{text}`: expected START+DURATION from the window's start, e.g. 6h+30m"
        )
    return begin, begin + duration


def _quantiles(text: str) -> tuple[float, ...]:
    try:
        values = tuple(sorted({float(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        values = ()
    if not values or not all(0.5 <= q < 1 for q in values):
        raise argparse.ArgumentTypeError(f"`{text}`: expected comma-separated quantiles in [0.5, 1)")
    return values


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}`: expected a whole number >= 1")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `simulate` subcommand; its `func` is `run`."""
    parser = subparsers.add_parser(
        "simulate",
        help="replay a load trace through the what-if simulator: predictive vs baselines vs the oracle floor",
        description="Simulates KEDA + HPA scaling a GPU inference Deployment on a recorded load (a trace "
        "file or your Prometheus history) under several policies, and compares GPU-hours with SLO "
        "minutes. See docs/simulator.md.",
    )
    where = parser.add_argument_group("the load (one of --trace or --prometheus with --query)")
    source = where.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--trace",
        type=Path,
        metavar="CSV",
        help="a trace file or ServeGen folder, any format "
        "prescaler reads (timestamp,value CSV, NAB, ServeGen, NASA, Azure, GenTD26)",
    )
    source.add_argument("--prometheus", metavar="URL", help="Prometheus base URL to read the load from")
    where.add_argument(
        "--query",
        help="PromQL giving the arrival rate in requests/s, e.g. sum(rate(vllm:request_success_total[1m]))",
    )
    where.add_argument(
        "--since",
        type=_duration,
        default=14 * DAY_S,
        metavar="DURATION",
        help="how far back to read from Prometheus (default 14d)",
    )
    where.add_argument(
        "--step",
        type=_duration,
        default=60.0,
        metavar="DURATION",
        help="resolution of the demand: finer traces are averaged, coarser ones interpolated (default 1m)",
    )
    where.add_argument(
        "--history",
        type=_duration,
        default=7 * DAY_S,
        metavar="DURATION",
        help="past before the simulated window, given to the forecasting policies as their history (default 7d)",
    )
    where.add_argument(
        "--days", type=_positive, metavar="N", help="days to simulate after the history (default: to the end)"
    )
    where.add_argument(
        "--peak-replicas",
        type=_positive,
        default=20.0,
        metavar="N",
        help="rescale the load so that the window's peak needs N replicas (default 20)",
    )
    service = parser.add_argument_group("the service")
    service.add_argument(
        "--startup",
        type=_duration,
        default=180.0,
        metavar="DURATION",
        help="median start-up delay, from a replica asked for to it serving (default 180s)",
    )
    service.add_argument(
        "--startup-p95",
        type=_duration,
        metavar="DURATION",
        help="95th percentile of the per-replica start-up delay, lognormal (default 1.5 x --startup; "
        "equal to --startup for a fixed delay)",
    )
    service.add_argument(
        "--client-timeout",
        type=_duration,
        default=30.0,
        metavar="DURATION",
        help="a request still waiting this long is dropped and counts as a violation (default 30s)",
    )
    service.add_argument(
        "--gpus-per-node",
        type=int,
        metavar="N",
        help="simulate GPU nodes of N GPUs (1 per replica) and the Cluster Autoscaler; GPU-hours are "
        "then billed per node (default: per replica, no nodes)",
    )
    service.add_argument(
        "--node-startup",
        type=_duration,
        default=300.0,
        metavar="DURATION",
        help="with --gpus-per-node: from a node asked for to it taking pods (default 5m)",
    )
    service.add_argument(
        "--node-unneeded",
        type=_duration,
        default=600.0,
        metavar="DURATION",
        help="with --gpus-per-node: Cluster Autoscaler's scale-down-unneeded-time (default 10m)",
    )
    service.add_argument(
        "--service-time",
        type=_duration,
        default=1.0,
        metavar="DURATION",
        help="time one request occupies a slot (default 1s)",
    )
    service.add_argument(
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="requests one replica serves at once (default 8)",
    )
    service.add_argument(
        "--slo",
        type=_duration,
        default=2.0,
        metavar="DURATION",
        help="p99 latency objective, queueing + service (default 2s)",
    )
    service.add_argument(
        "--max-queue",
        type=int,
        metavar="N",
        help="waiting requests allowed per ready replica (default unbounded)",
    )
    service.add_argument(
        "--max-replicas", type=int, default=100, metavar="N", help="KEDA maxReplicaCount (default 100)"
    )
    service.add_argument(
        "--min-replicas", type=int, default=0, metavar="N", help="KEDA minReplicaCount (default 0)"
    )
    pipeline = parser.add_argument_group("the metric pipeline and KEDA/HPA")
    pipeline.add_argument(
        "--scrape-interval",
        type=_duration,
        default=15.0,
        metavar="DURATION",
        help="Prometheus scrape interval every policy sees the service through (default 15s)",
    )
    pipeline.add_argument(
        "--rate-window",
        type=_duration,
        default=60.0,
        metavar="DURATION",
        help="the rate() window of request rates (default 1m)",
    )
    pipeline.add_argument(
        "--scale-down-window",
        type=_duration,
        metavar="DURATION",
        help="give the HPA an explicit `behavior` with this scale-down stabilization window (default: "
        "no behavior, the HPA's legacy path: 300 s stabilization, up to max(2x, 4) replicas per sync)",
    )
    pipeline.add_argument(
        "--fallback-replicas",
        type=int,
        metavar="N",
        help="KEDA `fallback.replicas` while the scaler fails (default: no fallback)",
    )
    pipeline.add_argument(
        "--fallback-failures",
        type=_count,
        default=3,
        metavar="N",
        help="KEDA `fallback.failureThreshold` (default 3)",
    )
    pipeline.add_argument(
        "--scaler-outage",
        type=_outage,
        action="append",
        default=[],
        metavar="START+DURATION",
        help="the scaler answers UNAVAILABLE in this span from the window's start, e.g. 6h+30m (repeatable)",
    )
    policy = parser.add_argument_group("the policies")
    policy.add_argument(
        "--policies",
        type=_names,
        default=("reactive", "predictive", "oracle"),
        help=f"comma-separated, of {', '.join(POLICIES)} (default reactive,predictive,oracle)",
    )
    policy.add_argument(
        "--target",
        type=_positive,
        metavar="N",
        help="reactive's target, in-flight requests per replica (default: --concurrency)",
    )
    policy.add_argument(
        "--threshold",
        type=_positive,
        metavar="N",
        help="predictive's `threshold`, in-flight requests per replica (default: --concurrency; 0.9 x "
        "that with --no-replicas-query, so that the HPA's 10 %% tolerance does not leave it a replica short)",
    )
    policy.add_argument(
        "--no-replicas-query",
        action="store_true",
        help="predictive without `replicasQuery`: its values are not raised past the HPA's tolerance",
    )
    policy.add_argument("--quantile", type=float, default=0.9, help="predictive's `quantile` (default 0.9)")
    policy.add_argument(
        "--lead-time",
        type=_lead_time,
        metavar="DURATION",
        help="predictive's `leadTime` (default: --startup plus KEDA's 30 s polling interval), or `auto` to "
        "measure it from the replicas asked for and ready, with --lead-time-fallback until 5 start-ups "
        "are timed",
    )
    policy.add_argument(
        "--lead-time-fallback",
        type=_duration,
        default=DEFAULT_LEAD_S,
        metavar="DURATION",
        help="with --lead-time auto: predictive's `leadTimeFallback` (default 3m, the trigger's default)",
    )
    policy.add_argument(
        "--pipeline",
        choices=PIPELINES,
        default="auto",
        help="predictive's `pipeline`: auto (default) serves the cheapest, on the run's own scored traffic, of "
        "the forecast's, no_forecast's and the observed value's bound; or the one named",
    )
    policy.add_argument(
        "--burst-reserve",
        action="store_true",
        help="predictive's `burstReserve: true`: hold a reserve above its bound after a burst when the "
        "run's bursts cluster (default: off, as the trigger's default)",
    )
    policy.add_argument(
        "--error-budget",
        type=_error_budget,
        metavar="SHARE",
        help="predictive's `errorBudget`, with an `sloQuery` on the simulated SLO (the newest finished "
        "minute's verdict, as Prometheus would show it): its margin is controlled so that the share of "
        "violating minutes follows SHARE, e.g. 0.01 (default: none, --quantile alone)",
    )
    policy.add_argument(
        "--refit-interval",
        type=_duration,
        default=3600.0,
        metavar="DURATION",
        help="predictive's `refitInterval`, in simulated time (default 1h)",
    )
    policy.add_argument(
        "--service-time-known",
        action="store_true",
        help="give predictive (and the other forecasting baselines) `serviceTime` = --service-time "
        "(default: unset, measured by Little's law)",
    )
    policy.add_argument(
        "--sweep",
        action="store_true",
        help="sweep every policy's knob: frontiers and GPU-hours at equal SLO (default off: one run each)",
    )
    policy.add_argument(
        "--sweep-quantiles",
        type=_quantiles,
        default=QUANTILES,
        metavar="Q,Q,...",
        help=f"predictive's quantiles swept (default {','.join(f'{q:g}' for q in QUANTILES)}; its "
        f"threshold is swept too, at {','.join(f'{s:g}' for s in THRESHOLD_SHARES)} x its default)",
    )
    policy.add_argument(
        "--sweep-points",
        type=_count,
        default=SWEEP_POINTS,
        metavar="N",
        help=f"points of a target's sweep, {SWEEP_FROM:g} to {SWEEP_TO:g} x its default (default {SWEEP_POINTS})",
    )
    run_group = parser.add_argument_group("the run")
    run_group.add_argument("--seed", type=int, default=1, help="seed of the Poisson arrivals (default 1)")
    run_group.add_argument(
        "--tick", type=_duration, default=5.0, metavar="DURATION", help="simulation step (default 5s)"
    )
    run_group.add_argument(
        "--json", type=Path, required=True, metavar="OUT", help="write the results as JSON here"
    )
    run_group.add_argument("--plot", type=Path, metavar="OUT.png", help="draw the comparison into this PNG")
    parser.set_defaults(func=run)


def _load(args: argparse.Namespace) -> Trace:
    if args.trace is not None:
        return load_trace(args.trace)
    if not args.query:
        raise TraceError("--prometheus needs --query (the arrival rate in requests/s)")
    return asyncio.run(
        prometheus_trace(args.prometheus, args.query, since_s=args.since, step_s=args.step, now_s=time.time())
    )


def setup_from_args(args: argparse.Namespace) -> Setup:
    """The comparison's settings from the parsed `simulate` arguments."""
    for flag, lead_s in (("--lead-time", args.lead_time), ("--lead-time-fallback", args.lead_time_fallback)):
        if isinstance(lead_s, float) and not 0.001 <= lead_s <= MAX_LEAD_S:
            raise ValueError(
                f"{flag} {format_duration(lead_s)}: expected a duration from 1ms to "
                f"{format_duration(MAX_LEAD_S)} (the trigger's `leadTime` range)"
            )
    if args.lead_time == "auto" and args.no_replicas_query:
        raise ValueError(
            "--lead-time auto times start-ups from the replicas asked for (`replicasQuery`); "
            "it cannot be used with --no-replicas-query"
        )
    cluster = ClusterConfig(
        concurrency=args.concurrency,
        service_time_s=args.service_time,
        startup_delay_s=args.startup,
        startup_p95_s=args.startup_p95,
        slo_s=args.slo,
        max_queue=args.max_queue,
        client_timeout_s=args.client_timeout,
        gpus_per_node=args.gpus_per_node,
        node_startup_s=args.node_startup,
        node_scale_down_unneeded_s=args.node_unneeded,
    )
    behavior = args.scale_down_window is not None
    scale_down = ScalingRules(args.scale_down_window or 0.0, SCALE_DOWN.policies) if behavior else SCALE_DOWN
    scaling = ScalingConfig(
        min_replica_count=args.min_replicas,
        max_replica_count=args.max_replicas,
        behavior=behavior,
        scale_down=scale_down,
        fallback_replicas=args.fallback_replicas,
        fallback_failure_threshold=args.fallback_failures,
    )
    settings = PredictiveSettings(
        threshold=args.threshold,
        lead_time_s=args.lead_time_fallback if args.lead_time == "auto" else args.lead_time,
        lead_time_auto=args.lead_time == "auto",
        quantile=args.quantile,
        refit_interval_s=args.refit_interval,
        history_s=args.history,
        measure_service_time=not args.service_time_known,
        replicas_known=not args.no_replicas_query,
        pipeline=args.pipeline,
        error_budget=args.error_budget,
        burst_reserve=args.burst_reserve,
    )
    pipeline = PipelineConfig(scrape_interval_s=args.scrape_interval, rate_window_s=args.rate_window)
    return Setup(
        cluster,
        scaling,
        args.policies,
        args.target,
        settings,
        sweep=args.sweep,
        sweep_points=args.sweep_points,
        quantiles=args.sweep_quantiles,
        seed=args.seed,
        tick_s=args.tick,
        pipeline=pipeline,
        outages=tuple(args.scaler_outage),
    )


def _about(trace: Trace, past: Trace, window: Trace, setup: Setup, factor: float) -> dict[str, Any]:
    def iso(at_s: float) -> str:
        return datetime.fromtimestamp(at_s, UTC).isoformat()

    end_s = float(window.at_s[-1]) + window.step_s
    return {
        "trace": {
            "name": trace.name,
            "window_start": iso(float(window.at_s[0])),
            "window_end": iso(end_s),
            "days": (end_s - float(window.at_s[0])) / DAY_S,
            "history_days": past.at_s.size * past.step_s / DAY_S,
            "step_s": window.step_s,
            "scale_factor": factor,
            "peak_rps": float(window.values.max()),
        },
        "settings": settings_json(setup),
    }


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """`prescaler simulate`: 0 on success, 2 for unusable input or settings, 1 when Prometheus cannot
    be read or the results cannot be written."""

    def progress(line: str) -> None:
        print(f"simulate: {line}", file=sys.stderr, flush=True)

    def failed(exc: Exception, code: int) -> int:
        print(f"prescaler simulate: {exc}", file=sys.stderr)
        return code

    try:
        setup = setup_from_args(args)
        for out in (args.json, args.plot):
            if out is not None:
                out.parent.mkdir(parents=True, exist_ok=True)
        trace = demand_at_step(_load(args), args.step)
        past, window = split(trace, history_s=args.history, days=args.days)
        scaled_past, scaled = rescaled(past, window, peak_replicas=args.peak_replicas, cluster=setup.cluster)
        progress(
            f"{trace.name}: {scaled.at_s.size * scaled.step_s / DAY_S:.2f} days simulated after "
            f"{past.at_s.size * past.step_s / DAY_S:.2f} days of history, peak {args.peak_replicas:g} replicas"
        )
        result = compare(scaled_past if past.at_s.size else None, scaled, setup, progress)
    except (SourceError, QueryShapeError, OSError) as exc:
        return failed(exc, 1)
    except (ConfigError, ValueError) as exc:
        return failed(exc, 2)
    factor = float(scaled.values.max() / window.values.max())
    about = _about(trace, past, scaled, setup, factor)
    try:
        args.json.write_text(json.dumps(to_json(result, about), indent=2) + "\n")
        if args.plot is not None:
            title = (
                f"{trace.name}: start-up median {args.startup:g} s (p95 {setup.cluster.startup_p95:g} s), "
                f"peak {args.peak_replicas:g} replicas, SLO p99 <= {args.slo:g} s"
            )
            figure = comparison_figure(
                title,
                result.outcomes,
                setup.cluster,
                {name: result.frontier(name) for name in result.outcomes},
                days=result.days,
                budgets=[per_day for _, per_day in result.budgets] if result.sweeps else [],
            )
            figure.savefig(args.plot, dpi=110)
    except OSError as exc:
        return failed(exc, 1)
    print(table(result))
    print(f"JSON: {args.json}")
    if args.plot is not None:
        print(f"plot: {args.plot}")
    return 0
