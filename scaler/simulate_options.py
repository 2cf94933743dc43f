"""`prescaler simulate`'s arguments: the load, the service, the metric pipeline, the policies, the run.

Each flag's type is a parser that names the flag's expected form when a value is refused (argparse
prints it with the flag); `scaler.simulate_cli` turns the parsed arguments into a `Setup` and runs it.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from forecasting.base import DAY_S
from scaler import trigger_values
from scaler.choice import PIPELINES
from scaler.cli_types import duration, quantile, whole_number
from scaler.sim.compare import (
    POLICIES,
    QUANTILES,
    SWEEP_FROM,
    SWEEP_POINTS,
    SWEEP_TO,
    THRESHOLD_SHARES,
)
from scaler.trigger import DEFAULT_LEAD_S
from scaler.units import parse_duration_s


def _lead_time(text: str) -> float | str:
    return "auto" if text.strip().lower() == "auto" else duration(text)


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every `simulate` flag to `parser`, in groups."""
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
        type=duration,
        default=14 * DAY_S,
        metavar="DURATION",
        help="how far back to read from Prometheus (default 14d)",
    )
    where.add_argument(
        "--step",
        type=duration,
        default=60.0,
        metavar="DURATION",
        help="resolution of the demand: finer traces are averaged, coarser ones interpolated (default 1m)",
    )
    where.add_argument(
        "--history",
        type=duration,
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
        type=duration,
        default=180.0,
        metavar="DURATION",
        help="median start-up delay, from a replica asked for to it serving (default 180s)",
    )
    service.add_argument(
        "--startup-p95",
        type=duration,
        metavar="DURATION",
        help="95th percentile of the per-replica start-up delay, lognormal (default 1.5 x --startup; "
        "equal to --startup for a fixed delay)",
    )
    service.add_argument(
        "--client-timeout",
        type=duration,
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
        type=duration,
        default=300.0,
        metavar="DURATION",
        help="with --gpus-per-node: from a node asked for to it taking pods (default 5m)",
    )
    service.add_argument(
        "--node-unneeded",
        type=duration,
        default=600.0,
        metavar="DURATION",
        help="with --gpus-per-node: Cluster Autoscaler's scale-down-unneeded-time (default 10m)",
    )
    service.add_argument(
        "--service-time",
        type=duration,
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
        type=duration,
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
        type=duration,
        default=15.0,
        metavar="DURATION",
        help="Prometheus scrape interval every policy sees the service through (default 15s)",
    )
    pipeline.add_argument(
        "--rate-window",
        type=duration,
        default=60.0,
        metavar="DURATION",
        help="the rate() window of request rates (default 1m)",
    )
    pipeline.add_argument(
        "--scale-down-window",
        type=duration,
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
        type=whole_number(1),
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
    policy.add_argument(
        "--quantile", type=quantile, default=0.9, help="predictive's `quantile`, in [0.5, 1) (default 0.9)"
    )
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
        type=duration,
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
        type=duration,
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
        type=whole_number(1),
        default=SWEEP_POINTS,
        metavar="N",
        help=f"points of a target's sweep, {SWEEP_FROM:g} to {SWEEP_TO:g} x its default (default {SWEEP_POINTS})",
    )
    run_group = parser.add_argument_group("the run")
    run_group.add_argument("--seed", type=int, default=1, help="seed of the Poisson arrivals (default 1)")
    run_group.add_argument(
        "--tick", type=duration, default=5.0, metavar="DURATION", help="simulation step (default 5s)"
    )
    run_group.add_argument(
        "--json", type=Path, required=True, metavar="OUT", help="write the results as JSON here"
    )
    run_group.add_argument("--plot", type=Path, metavar="OUT.png", help="draw the comparison into this PNG")
