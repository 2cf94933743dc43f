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
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from forecasting.base import DAY_S
from scaler.cli_types import output_file
from scaler.errors import ConfigError, QueryShapeError, SourceError
from scaler.sim import ClusterConfig, PipelineConfig, ScalingConfig, ScalingRules
from scaler.sim.autoscaler import SCALE_DOWN
from scaler.sim.compare import Setup, compare
from scaler.sim.demand import demand_at_step, rescaled, split
from scaler.sim.plot import comparison_figure
from scaler.sim.readings import settings_json, table, to_json
from scaler.sim.trigger_settings import PredictiveSettings
from scaler.simulate_options import add_arguments
from scaler.sources.prometheus import read_history
from scaler.traces import Trace, TraceError, load_trace
from scaler.trigger import parse_trigger
from scaler.trigger_values import MAX_LEAD_S
from scaler.units import format_duration


async def prometheus_trace(url: str, query: str, *, since_s: float, step_s: float, now_s: float) -> Trace:
    """The range query `query` over the `since_s` before `now_s`, one value per `step_s` (a value at
    t is taken as the mean over the step before t, as a `rate()` is)."""
    config = parse_trigger(
        {"serverAddress": url, "query": query, "threshold": "1", "step": "1h", "timeout": "1m"}
    )
    series = await read_history(config, now_s - since_s, now_s, step_s)
    return Trace(f"prometheus `{query}`", series.at_s - step_s, series.values, step_s)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `simulate` subcommand; its `func` is `run`."""
    parser = subparsers.add_parser(
        "simulate",
        help="replay a load trace through the what-if simulator: predictive vs baselines vs the oracle floor",
        description="Simulates KEDA + HPA scaling a GPU inference Deployment on a recorded load (a trace "
        "file or your Prometheus history) under several policies, and compares GPU-hours with SLO "
        "minutes. See docs/simulator.md.",
    )
    add_arguments(parser)
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
        for flag, out in (("--json", args.json), ("--plot", args.plot)):
            if out is not None:
                output_file(flag, out, make_folder=True)
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
