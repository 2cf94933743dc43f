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

import httpx

from forecasting.base import DAY_S
from scaler.errors import ConfigError, QueryShapeError, SourceError
from scaler.sim import ClusterConfig, ScalingConfig
from scaler.sim.compare import (
    POLICIES,
    SWEEP_FROM,
    SWEEP_POINTS,
    SWEEP_TO,
    Setup,
    compare,
    demand_at_step,
    rescaled,
    split,
    table,
    to_json,
)
from scaler.sim.plot import comparison_figure
from scaler.sim.predictive import PredictiveSettings
from scaler.sources.prometheus import PrometheusSource
from scaler.traces import Trace, TraceError, load_trace
from scaler.trigger import parse_trigger
from scaler.units import parse_duration_s

PROMETHEUS_TIMEOUT_S = 60.0


async def prometheus_trace(url: str, query: str, *, since_s: float, step_s: float, now_s: float) -> Trace:
    """The range query `query` over the `since_s` before `now_s`, one value per `step_s` (a value at
    t is taken as the mean over the step before t, as a `rate()` is)."""
    config = parse_trigger(
        {"serverAddress": url, "query": query, "threshold": "1", "step": "1h", "timeout": "1m"}
    )
    async with httpx.AsyncClient(timeout=PROMETHEUS_TIMEOUT_S, follow_redirects=False) as client:
        series = await PrometheusSource(config, client=client).history(now_s - since_s, now_s, step_s)
    return Trace(f"prometheus `{query}`", series.at_s - step_s, series.values, step_s)


def _duration(text: str) -> float:
    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"`{text}`: {exc}") from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"`{text}`: expected a number > 0")
    return value


def _names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in POLICIES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"`{text}`: expected a comma-separated list of {', '.join(POLICIES)}"
        )
    return names


def _targets(text: str) -> tuple[float, ...]:
    return tuple(sorted({_positive(part) for part in text.split(",") if part.strip()}))


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `simulate` subcommand; its `func` is `run`."""
    parser = subparsers.add_parser(
        "simulate",
        help="replay a load trace through the what-if simulator: predictive vs reactive vs oracle",
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
        help="from a replica asked for to it serving (default 180s)",
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
        type=_duration,
        metavar="DURATION",
        help="predictive's `leadTime` (default: --startup plus KEDA's 30 s polling interval)",
    )
    policy.add_argument(
        "--refit-interval",
        type=_duration,
        default=3600.0,
        metavar="DURATION",
        help="predictive's `refitInterval`, in simulated time (default 1h)",
    )
    policy.add_argument(
        "--measure-service-time",
        action="store_true",
        help="leave predictive's `serviceTime` unset: measure it by Little's law",
    )
    policy.add_argument(
        "--sweep-targets",
        type=_targets,
        metavar="N,N,...",
        help=f"reactive's targets to sweep (default {SWEEP_POINTS} from {SWEEP_FROM:g} to "
        f"{SWEEP_TO:g} x --concurrency)",
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
    cluster = ClusterConfig(
        concurrency=args.concurrency,
        service_time_s=args.service_time,
        startup_delay_s=args.startup,
        slo_s=args.slo,
        max_queue=args.max_queue,
    )
    scaling = ScalingConfig(min_replica_count=args.min_replicas, max_replica_count=args.max_replicas)
    settings = PredictiveSettings(
        threshold=args.threshold,
        lead_time_s=args.lead_time,
        quantile=args.quantile,
        refit_interval_s=args.refit_interval,
        history_s=args.history,
        measure_service_time=args.measure_service_time,
        replicas_known=not args.no_replicas_query,
    )
    return Setup(
        cluster,
        scaling,
        args.policies,
        args.target,
        settings,
        args.sweep_targets,
        seed=args.seed,
        tick_s=args.tick,
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
        "settings": {
            "cluster": {k: getattr(setup.cluster, k) for k in setup.cluster.__dataclass_fields__},
            "policies": list(setup.policies),
            "reactive_target": setup.reactive_target(),
            "predictive": {k: getattr(setup.settings, k) for k in setup.settings.__dataclass_fields__},
            "seed": setup.seed,
            "tick_s": setup.tick_s,
        },
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
            title = f"{trace.name}: start-up {args.startup:g} s, peak {args.peak_replicas:g} replicas"
            figure = comparison_figure(title, result.outcomes, setup.cluster, result.sweep, result.at_equal)
            figure.savefig(args.plot, dpi=110)
    except OSError as exc:
        return failed(exc, 1)
    print(table(result))
    print(f"JSON: {args.json}")
    if args.plot is not None:
        print(f"plot: {args.plot}")
    return 0
