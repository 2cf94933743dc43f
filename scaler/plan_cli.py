"""`prescaler plan`: capacity planning from a service's history and load-test profile (docs/planner.md).

    --trace CSV | --prometheus URL --query Q | --services FILE  -> hourly history per service
        -> scaler.plan (forecast, Erlang C replicas, procurement) -> --json, --report, --plot

Argument parsing, file and Prometheus I/O and printing only; the work is in `scaler.plan`. Its heavy
imports (statsforecast, matplotlib, Dask) happen inside `run`, so `prescaler --help` stays fast.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaler.cli_types import duration, whole_number

if TYPE_CHECKING:
    from scaler.traces import Trace

DAY_S = 86_400.0
HOUR_S = 3600.0
DEFAULT_QUANTILE = 0.95
"""`PlanOptions.quantile`'s default, kept here so that `--help` imports nothing heavy (a test checks both agree)."""
_GROWTH = re.compile(r"^\s*([+-]?[0-9]+(?:\.[0-9]+)?)\s*%\s*/\s*(day|week|month|year)\s*$")
_PER_MONTH = {"day": 730.0 / 24, "week": 730.0 / 168, "month": 1.0, "year": 1 / 12}


def parse_growth(text: str) -> float | None:
    """`5%/month`, `-1%/week`, `12%/year` -> growth per month (0.05); `auto` -> None (the trend)."""
    if text.strip().lower() == "auto":
        return None
    match = _GROWTH.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"`{text}`: expected a growth such as 5%/month, -1%/week, or auto")
    rate = float(match.group(1)) / 100
    if rate <= -1:
        raise argparse.ArgumentTypeError(f"`{text}`: a decline must be above -100 %")
    return float((1 + rate) ** _PER_MONTH[match.group(2)] - 1)


def _quantile(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a number") from None
    if not 0.5 <= value < 1:
        raise argparse.ArgumentTypeError(f"`{text}`: expected an upper quantile in [0.5, 1)")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `plan` subcommand; its `func` is `run`."""
    parser = subparsers.add_parser(
        "plan",
        help="capacity planning: GPUs per hour, a procurement mix and dollars from a service's history",
        description="Forecasts a service's hourly demand, sizes replicas per hour for a latency SLO by "
        "queueing theory (Erlang C), chooses reserved / spot / on-demand capacity, and prices it against "
        "all-on-demand and the naive rule of thumb. See docs/planner.md.",
    )
    where = parser.add_argument_group(
        "the history (one of --trace, --prometheus with --query, --services; --prometheus for services' queries)"
    )
    source = where.add_mutually_exclusive_group()
    source.add_argument(
        "--trace",
        type=Path,
        metavar="CSV",
        help="arrival rate (requests/s) trace, any format prescaler reads",
    )
    where.add_argument(
        "--prometheus",
        metavar="URL",
        help="Prometheus base URL to read the history (or the services' queries) from",
    )
    source.add_argument(
        "--services",
        type=Path,
        metavar="FILE",
        help="plan many services: a YAML list of name, trace or query, profile",
    )
    where.add_argument(
        "--query", help="PromQL arrival rate in requests/s, e.g. sum(rate(vllm:request_success_total[5m]))"
    )
    where.add_argument(
        "--since",
        type=duration,
        default=35 * DAY_S,
        metavar="DURATION",
        help="history read from Prometheus (default 35d)",
    )
    where.add_argument("--name", help="the service's name in the outputs (default: the trace's file name)")
    inputs = parser.add_argument_group("the service and the prices")
    inputs.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="load-test profile YAML (deploy/plan/profile.example.yaml)",
    )
    inputs.add_argument(
        "--prices",
        type=Path,
        required=True,
        metavar="FILE",
        help="GPU prices YAML (deploy/plan/prices.example.yaml)",
    )
    how = parser.add_argument_group("the plan")
    how.add_argument(
        "--horizon",
        type=duration,
        default=28 * DAY_S,
        metavar="DURATION",
        help="hours planned (default 28d)",
    )
    how.add_argument(
        "--quantile",
        type=_quantile,
        default=DEFAULT_QUANTILE,
        help=f"upper quantile of each hour's demand to size for (default {DEFAULT_QUANTILE:g})",
    )
    how.add_argument(
        "--growth",
        type=parse_growth,
        default=None,
        metavar="RATE",
        help="demand growth such as 5%%/month (default auto: the trend of 8 weeks of history or more, else none)",
    )
    how.add_argument(
        "--models",
        choices=("ensemble", "seasonal_naive"),
        default="ensemble",
        help="the forecast: the full ensemble, or only its seasonal naive member (fast, for large fleets)",
    )
    how.add_argument(
        "--backtest-origins",
        type=whole_number(0),
        default=4,
        metavar="N",
        help="rolling backtest origins, a day apart (default 4; 0 skips)",
    )
    how.add_argument("--no-sim-check", action="store_true", help="skip checking a few hours in the simulator")
    how.add_argument(
        "--dask", metavar="ADDRESS", help="run the per-service plans on this Dask scheduler (tcp://host:8786)"
    )
    out = parser.add_argument_group("outputs")
    out.add_argument("--json", type=Path, metavar="OUT", help="the plan as JSON")
    out.add_argument("--report", type=Path, metavar="OUT.md", help="the plan as a markdown report")
    out.add_argument("--plot", type=Path, metavar="OUT.png", help="the plan as a figure (single service)")
    parser.set_defaults(func=run)


def _fail(message: object, code: int) -> int:
    print(f"prescaler plan: {message}", file=sys.stderr)
    return code


def _check_args(args: argparse.Namespace) -> str | None:
    if not (args.trace or args.services or args.prometheus):
        return "the history is required: one of --trace, --prometheus with --query, or --services"
    if args.trace and args.prometheus:
        return "--trace and --prometheus are two histories: choose one"
    if args.query and args.services:
        return "--query is for one service; with --services each entry has its own `query`"
    if args.prometheus and not (args.query or args.services):
        return "--prometheus needs --query (the arrival rate in requests/s)"
    if args.query and not args.prometheus:
        return "--query needs --prometheus"
    if not args.services and args.profile is None:
        return "--profile is required with --trace or --prometheus"
    if args.services and args.plot is not None:
        return "--plot draws one service; with --services use --json and --report"
    if args.dask and not args.services:
        return "--dask plans many services: use it with --services"
    horizon_h = args.horizon / HOUR_S
    if not (horizon_h >= 1 and math.isclose(horizon_h, round(horizon_h))):
        return f"--horizon {args.horizon:g} s: expected a whole number of hours"
    return None


def prometheus_trace(url: str, query: str, *, since_s: float, now_s: float) -> Trace:
    """The hourly-or-finer history of `query` from Prometheus (5-minute steps, for intra-hour peaks)."""
    import asyncio

    from scaler.sources.prometheus import read_history
    from scaler.traces import Trace
    from scaler.trigger import parse_trigger

    step_s = 300.0
    config = parse_trigger(
        {"serverAddress": url, "query": query, "threshold": "1", "step": "5m", "timeout": "1m"}
    )

    # On a grid of whole steps, so that runs minutes apart read the same points.
    end_s = math.floor(now_s / step_s) * step_s

    series = asyncio.run(read_history(config, end_s - since_s, end_s, step_s))
    return Trace(f"prometheus `{query}`", series.at_s - step_s, series.values, step_s)


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """`prescaler plan`: 0 on success, 2 for unusable input, 1 when a source or an output fails."""
    problem = _check_args(args)
    if problem:
        return _fail(problem, 2)

    def progress(line: str) -> None:
        print(f"plan: {line}", file=sys.stderr, flush=True)

    import json
    import time

    from forecasting.base import MEMBERS
    from scaler.errors import ConfigError, QueryShapeError, SourceError
    from scaler.plan import core, fleet, report
    from scaler.plan.forecast import hourly
    from scaler.plan.profile import PlanInputError, load_prices, load_profile
    from scaler.traces import TraceError, load_trace

    options = core.PlanOptions(
        horizon_h=round(args.horizon / HOUR_S),
        quantile=args.quantile,
        growth_per_month=args.growth,
        members=MEMBERS if args.models == "ensemble" else (),
        backtest_origins=args.backtest_origins,
        sim_check=not args.no_sim_check,
    )
    try:
        prices = load_prices(args.prices)
        if args.services:
            services = fleet.load_services(args.services)
        else:
            profile = load_profile(args.profile)
            name = args.name or (args.trace.name if args.trace else args.query)
            services = [fleet.Service(name, profile, args.trace, args.query)]
        jobs = []
        for service in services:
            if service.trace is not None:
                trace = load_trace(service.trace)
            else:
                if not args.prometheus:
                    raise PlanInputError(f"service {service.name} has a `query`: pass --prometheus URL")
                progress(f"{service.name}: reading {args.since / DAY_S:g} days from {args.prometheus}")
                trace = prometheus_trace(
                    args.prometheus, service.query or "", since_s=args.since, now_s=time.time()
                )
            series, peak = hourly(trace, options.quantile)
            jobs.append(fleet.Job(service.name, series, peak, service.profile))
        for path in (args.json, args.report, args.plot):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        if args.services:
            progress(f"planning {len(jobs)} services" + (f" on {args.dask}" if args.dask else ""))
            client = fleet.connect(args.dask) if args.dask else None
            try:
                plans = fleet.plan_fleet(jobs, prices, options, client=client, progress=progress)
            finally:
                if client is not None:
                    client.close()  # type: ignore[no-untyped-call]
        else:
            job = jobs[0]
            progress(f"{job.name}: {len(job.series)} hours of history, planning {options.horizon_h} hours")
            plans = [
                core.plan_series(
                    job.name, job.series, job.peak_factor, job.profile, prices, options, progress
                )
            ]
    except (SourceError, QueryShapeError) as exc:
        return _fail(exc, 1)
    except (PlanInputError, TraceError, ConfigError, ValueError) as exc:
        return _fail(exc, 2)
    except OSError as exc:
        return _fail(exc, 1)
    try:
        if args.services:
            document: dict[str, Any] = {
                "services": {plan.name: core.to_json(plan) for plan in plans},
                "fleet": {
                    "monthly": sum(plan.cost.monthly for plan in plans),
                    "naive_monthly": sum(plan.cost.naive_monthly for plan in plans),
                    "all_on_demand_monthly": sum(plan.cost.all_on_demand_monthly for plan in plans),
                },
            }
            text = report.fleet_report(plans)
        else:
            document = core.to_json(plans[0])
            text = report.report(plans[0])
        if args.json is not None:
            args.json.write_text(json.dumps(document, indent=1) + "\n")
        if args.report is not None:
            args.report.write_text(text)
        if args.plot is not None:
            from scaler.plan.plot import plan_figure

            plan_figure(plans[0]).savefig(args.plot, dpi=100)
    except OSError as exc:
        return _fail(exc, 1)
    for plan in plans[:20]:
        print(
            f"{plan.name}: peak {int(plan.replicas.max())} replicas (naive {int(plan.replicas_naive.max())}), "
            f"reserve {plan.procurement.level}, ${plan.cost.monthly:,.0f}/month "
            f"(naive ${plan.cost.naive_monthly:,.0f}, all on-demand ${plan.cost.all_on_demand_monthly:,.0f})"
        )
    if len(plans) > 20:
        print(f"... and {len(plans) - 20} more services")
    for label, path in (("JSON", args.json), ("report", args.report), ("plot", args.plot)):
        if path is not None:
            print(f"{label}: {path}")
    return 0
