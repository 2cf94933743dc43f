"""One service's plan: forecast -> replicas per hour (Erlang C and the naive rule) -> procurement -> cost.

Pure: a load trace, a profile and prices in; a `Plan` out, with `to_json` in the documented shape
(docs/planner.md). The files around it are read and written by `scaler.plan_cli`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from forecasting import Series
from forecasting.base import MEMBERS
from scaler.plan.forecast import HOUR_S, Demand, Progress, forecast_demand, hourly
from scaler.plan.procurement import Procurement, monthly, procure
from scaler.plan.profile import Prices, Profile
from scaler.plan.queueing import FloatArray, IntArray, naive_replicas, replicas_for_slo
from scaler.plan.replay import simulated_over_slo
from scaler.traces import Trace

DEFAULT_HORIZON_H = 28 * 24


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """How a plan is made (the CLI's flags)."""

    horizon_h: int = DEFAULT_HORIZON_H
    """Hours planned after the history's end."""
    quantile: float = 0.95
    """Upper quantile of the hourly demand forecast the replicas are sized on. Higher than the
    scaler's 0.9: an hour whose demand outgrows its replicas queues for the whole hour, so for a p99
    SLO over weeks few hours may fall short (benchmarks/README.md, "Capacity planning")."""
    growth_per_month: float | None = None
    """Demand growth per month (0.05 is 5 %); None: the history's trend."""
    members: tuple[str, ...] = MEMBERS
    """Ensemble members besides the seasonal naive one; () is the cheapest path (seasonal naive only)."""
    backtest_origins: int = 4
    """Rolling-origin backtest origins (a day apart) scoring the forecast; 0 skips the backtest."""
    sim_check: bool = True
    """Check the replica counts of a few hours in the simulator (deterministic service)."""


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One hour checked in the simulator at its sized rate: share of requests over the SLO."""

    hour: int
    rate_rps: float
    replicas: int
    over_slo: float
    over_slo_one_fewer: float
    replicas_naive: int
    over_slo_naive: float


@dataclass(frozen=True, slots=True)
class Cost:
    """Monthly dollars (730-hour months)."""

    monthly: float
    per_million_requests: float
    all_on_demand_monthly: float
    naive_monthly: float


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    profile: Profile
    prices: Prices
    options: PlanOptions
    demand: Demand
    replicas: IntArray
    replicas_naive: IntArray
    procurement: Procurement
    naive_procurement: Procurement
    cost: Cost
    check: tuple[CheckRow, ...] = field(default=())

    @property
    def hours(self) -> int:
        return int(self.replicas.size)


def size(rate_rps: FloatArray, profile: Profile) -> IntArray:
    """Replicas per hour by the queueing model."""
    return replicas_for_slo(
        rate_rps,
        slots=profile.slots_per_replica,
        service_time=profile.service_time(),
        service_cv=profile.service_time_cv,
        slo_s=profile.slo_seconds,
        slo_quantile=profile.slo_quantile,
        min_replicas=profile.min_replicas,
        fastest_service_s=profile.fastest_service_s,
    )


def size_naive(rate_rps: FloatArray, profile: Profile) -> IntArray:
    """Replicas per hour by the rule of thumb."""
    return naive_replicas(
        rate_rps,
        capacity_rps=profile.capacity_rps,
        safety_factor=profile.naive_safety_factor,
        min_replicas=profile.min_replicas,
    )


def plan_trace(
    name: str,
    trace: Trace,
    profile: Profile,
    prices: Prices,
    options: PlanOptions,
    progress: Progress | None = None,
) -> Plan:
    """The plan for `trace` (requests/s) as history."""
    series, peak = hourly(trace, options.quantile)
    return plan_series(name, series, peak, profile, prices, options, progress)


def plan_series(
    name: str,
    series: Series,
    peak_factor: FloatArray,
    profile: Profile,
    prices: Prices,
    options: PlanOptions,
    progress: Progress | None = None,
) -> Plan:
    """The plan for an hourly history `series` with its per-hour-of-day peak factors."""
    say = progress or (lambda _line: None)
    demand = forecast_demand(
        series,
        peak_factor,
        horizon_h=options.horizon_h,
        quantile=options.quantile,
        growth_per_month=options.growth_per_month,
        members=options.members,
        backtest_origins=options.backtest_origins,
        progress=say,
    )
    say("sizing replicas per hour (Erlang C) and procurement")
    replicas = size(demand.upper, profile)
    naive = size_naive(demand.upper, profile)
    procurement, naive_procurement = (
        procure(
            need,
            prices,
            gpus_per_replica=profile.gpus_per_replica,
            replace_s=profile.startup_s,
            quantile=profile.slo_quantile,
        )
        for need in (replicas, naive)
    )
    hours = int(replicas.size)
    requests_month = float(demand.mean.sum()) * HOUR_S * 730.0 / hours
    cost_month = monthly(procurement.cost_usd, hours)
    on_demand = float(replicas.sum()) * profile.gpus_per_replica * prices.on_demand
    cost = Cost(
        monthly=cost_month,
        per_million_requests=cost_month / (requests_month / 1e6) if requests_month > 0 else float("nan"),
        all_on_demand_monthly=monthly(on_demand, hours),
        naive_monthly=monthly(naive_procurement.cost_usd, hours),
    )
    check = _check(demand, replicas, naive, profile, say) if options.sim_check else ()
    return Plan(
        name, profile, prices, options, demand, replicas, naive, procurement, naive_procurement, cost, check
    )


def _check(
    demand: Demand, replicas: IntArray, naive: IntArray, profile: Profile, say: Progress
) -> tuple[CheckRow, ...]:
    """The busiest, the median and the quietest hours in the simulator (deterministic service)."""
    say("checking the busiest, median and quietest hours in the simulator")
    order = np.argsort(demand.upper, kind="stable")
    picks = sorted(
        {int(order[-1]), int(order[order.size // 2]), int(order[0])}, key=lambda h: -demand.upper[h]
    )
    service = profile.service_time()
    rows = []
    for hour in picks:
        rate = float(demand.upper[hour])
        n, k = int(replicas[hour]), int(naive[hour])
        if rate <= 0:
            continue

        def over(count: int, rate: float = rate) -> float:
            if count < 1:
                return 1.0
            mean_s = float(service(np.array([rate / count]))[0])
            return simulated_over_slo(rate, count, profile, service_time_s=mean_s, minutes=20.0)

        rows.append(CheckRow(hour, rate, n, over(n), over(n - 1), k, over(k)))
    return tuple(rows)


def iso(at_s: float) -> str:
    """Unix seconds as ISO 8601 UTC."""
    return datetime.fromtimestamp(at_s, UTC).isoformat().replace("+00:00", "Z")


def _finite(value: float) -> float | None:
    """JSON has no NaN: a cost per request without requests is null."""
    return value if math.isfinite(value) else None


def to_json(plan: Plan) -> dict[str, Any]:
    """The plan in the documented JSON shape."""
    mix = plan.procurement.mix
    start = plan.demand.start_s
    hours = [
        {
            "start": iso(start + j * HOUR_S),
            "rate_mean": float(plan.demand.mean[j]),
            "rate_upper": float(plan.demand.upper[j]),
            "replicas": int(plan.replicas[j]),
            "replicas_naive": int(plan.replicas_naive[j]),
            "reserved": int(mix.reserved[j]),
            "on_demand": int(mix.on_demand[j]),
            "spot": int(mix.spot[j]),
        }
        for j in range(plan.hours)
    ]
    scores = plan.demand.backtest
    return {
        "hours": hours,
        "procurement": {
            "reserved": dict(plan.procurement.by_term),
            "spot_share": plan.procurement.spot_share,
        },
        "cost": {
            "monthly": plan.cost.monthly,
            "per_million_requests": _finite(plan.cost.per_million_requests),
            "all_on_demand_monthly": plan.cost.all_on_demand_monthly,
            "naive_monthly": plan.cost.naive_monthly,
        },
        "profile": plan.profile.to_json(),
        "prices": plan.prices.to_json(),
        "forecast_backtest": {
            "mase": scores.mase if scores else None,
            "coverage": scores.coverage if scores else None,
        },
    }
