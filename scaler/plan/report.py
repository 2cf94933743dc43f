"""The plan as a markdown report a person reads: what to buy, why, and how sure. Pure (returns text)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scaler.plan.core import Plan, iso
from scaler.plan.procurement import monthly


def _usd(value: float) -> str:
    return f"${value:,.0f}"


def _share(value: float) -> str:
    return f"{100 * value:.0f} %"


def report(plan: Plan) -> str:
    """The single-service report."""
    d, p, prices, buy = plan.demand, plan.profile, plan.prices, plan.procurement
    hours = plan.hours
    days = hours / 24
    lines = [
        f"# Capacity plan: {plan.name}",
        "",
        f"{days:g} days from {iso(d.start_s)}, sized for a latency of {p.slo_seconds:g} s at "
        f"quantile {p.slo_quantile:g} (waiting + service) at the {d.quantile:g} upper quantile of each "
        "hour's forecast demand.",
        "",
        "## What to buy",
        "",
    ]
    if buy.term is not None:
        lines.append(
            f"- **Reserve {buy.level} replicas** ({buy.level * p.gpus_per_replica} GPUs) on the `{buy.term}` term."
        )
    else:
        lines.append("- No reservation terms were priced: everything above spot is on-demand.")
    peak_od = int(buy.mix.on_demand.max()) if hours else 0
    peak_spot = int(buy.mix.spot.max()) if hours else 0
    lines += [
        f"- **On-demand** above that: up to {peak_od} replicas in the busiest hour, "
        f"{int(buy.mix.on_demand.sum())} replica-hours in all.",
        f"- **Spot**: up to {peak_spot} replicas, {_share(buy.spot_share)} of replica-hours"
        + (
            f" (at most {_share(prices.spot.max_share)} of an hour's need, with extra replicas for "
            f"{prices.spot.interruptions_per_hour:g} interruptions per replica-hour)."
            if prices.spot
            else " (no spot price given)."
        ),
        "",
        "| | monthly | per million requests |",
        "|---|---:|---:|",
        f"| this plan | {_usd(plan.cost.monthly)} | ${plan.cost.per_million_requests:,.2f} |",
        f"| all on-demand (same replicas) | {_usd(plan.cost.all_on_demand_monthly)} | |",
        f"| naive rule (rate x {p.naive_safety_factor:g} / {p.capacity_rps:.3g} req/s per replica), "
        f"bought the same way | {_usd(plan.cost.naive_monthly)} | |",
        "",
    ]
    saved = plan.cost.naive_monthly - plan.cost.monthly
    word = "saves" if saved >= 0 else "adds"
    lines += [
        f"Queueing theory {word} {_usd(abs(saved))} a month against the naive rule: "
        f"{int(plan.replicas.sum())} replica-hours instead of {int(plan.replicas_naive.sum())} "
        f"(peak {int(plan.replicas.max())} vs {int(plan.replicas_naive.max())}).",
        "",
        "## Why",
        "",
        f"- Replicas per hour: the fewest whose latency at quantile {p.slo_quantile:g} stays within "
        f"{p.slo_seconds:g} s by Erlang C for {p.slots_per_replica} slots per replica, service "
        f"{p.service_time_s:g} s mean (cv {p.service_time_cv:g}"
        + (", slowing with load per the load-test table" if p.load_test else "")
        + "), with the Allen-Cunneen variability correction.",
        f"- Reserved level: the exact scan's optimum; at it, the need exceeds the level in "
        f"{_share(float((plan.replicas > buy.level).mean()))} of hours"
        + (
            f" (the newsvendor's share without spot is reserved / on-demand price = "
            f"{_share(_term_price(plan) / prices.on_demand)}; cheaper spot above the level lowers the level)."
            if buy.term is not None
            else "."
        ),
    ]
    for term, (level, cost) in buy.term_optimum.items():
        lines.append(f"  - `{term}` alone: best at {level} replicas, {_usd(monthly(cost, hours))} a month.")
    lines += _curve_lines(plan)
    lines += ["", "## How sure", ""]
    lines += _trust_lines(plan)
    if plan.check:
        lines += ["", "## Checked in the simulator", ""]
        lines += _check_lines(plan)
    return "\n".join(lines) + "\n"


def _term_price(plan: Plan) -> float:
    term = plan.procurement.term
    return next(t.price for t in plan.prices.reserved if t.term == term)


def _curve_lines(plan: Plan) -> list[str]:
    buy, hours = plan.procurement, plan.hours
    if buy.levels.size < 2:
        return []
    best = float(buy.curve_usd[buy.level])
    picks = sorted({0, buy.level // 2, buy.level, min(int(buy.levels[-1]), (3 * buy.level) // 2 + 1)})
    cells = ", ".join(
        f"{r}: {_usd(monthly(float(buy.curve_usd[r]), hours))} ({100 * (buy.curve_usd[r] / best - 1):+.0f} %)"
        for r in picks
    )
    return [f"- Cost by reserved level (monthly): {cells}."]


def _trust_lines(plan: Plan) -> list[str]:
    d = plan.demand
    season = "weekly" if d.season_h == 168 else "daily"
    lines = [
        f"- Forecast: `{d.model}` ({d.reason}), {season} season, from {len(d.history)} hours of history.",
        _level_line(plan),
        f"- Growth: {100 * d.growth_per_month:+.1f} % a month ({d.growth_source}).",
        f"- Peaks within the hour: the sized rate is the hourly upper bound x {float(d.peak_factor.min()):.2f}"
        f"-{float(d.peak_factor.max()):.2f} by hour of day (the history's intra-hour peaks).",
    ]
    lines += _history_lines(plan)
    if d.backtest is None:
        lines.append("- No backtest: the history is too short for one (it needs a season more than the fit).")
    else:
        b = d.backtest
        verdict = "beats" if b.mase < 1 else "does not beat"
        lines.append(
            f"- Backtest ({b.origins} origins, {d.season_h} h ahead): MASE {b.mase:.2f} ({verdict} repeating "
            f"the last season in-sample); coverage {_share(b.coverage)} of hours under the upper bound, "
            f"for {_share(d.quantile)} asked."
        )
        if b.coverage < d.quantile - 0.05:
            lines.append(
                "  The band under-covers: treat the plan's peak hours as optimistic, or raise `--quantile`."
            )
    return lines


def _level_line(plan: Plan) -> str:
    d = plan.demand
    weeks, days = d.level_window_h // 168, d.level_window_h // 24
    recent = (
        f"the median of the history's last {weeks} weekly means"
        if weeks >= 3
        else f"the median of the history's last {days} daily means"
    )
    if round(d.level_factor, 2) > 1:
        return (
            f"- Level: the forecast raised x{d.level_factor:.2f} to {recent} (its models followed the "
            "last hours below the recent weeks)."
        )
    return f"- Level: the forecast's own, at or above {recent}."


def _history_lines(plan: Plan) -> list[str]:
    """What cleaning the history changed: hours left out of the fit and the backtest, a level shift."""
    d = plan.demand
    lines = []
    if d.missing_hours:
        lines.append(
            f"- Missing: {d.missing_hours} hours of the history had no samples (gaps over 3 h); they were "
            "filled from the week (or the day) before for the fit and left out of the calibration and the backtest."
        )
    if d.suspect_hours:
        lines.append(
            f"- **Check the history**: {d.suspect_hours} hours are under a tenth of their hour of day's median, "
            f"in runs of 2 h or more (an outage or a broken scrape?), the last ending "
            f"{iso(d.suspect_until_s or 0.0)}. They were treated as missing, not as zero demand: filled from "
            "the week before (the day before in the first week) for the fit and left out of the calibration "
            "and the backtest."
        )
    if d.shift is not None:
        lines.append(
            f"- **Level shift** on {iso(d.shift.at_s)}: daily demand x{d.shift.ratio:.2f} from then on. The "
            "history before it was scaled by that ratio, so the forecast follows the level after it."
        )
    return lines


def _check_lines(plan: Plan) -> list[str]:
    lines = [
        f"Share of requests over {plan.profile.slo_seconds:g} s in the simulator at the hour's sized rate "
        "(deterministic service, so a lower bound for a variable one):",
        "",
        "| hour | rate (req/s) | Erlang replicas | over SLO | one fewer | naive replicas | over SLO |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in plan.check:
        lines.append(
            f"| {iso(plan.demand.start_s + 3600 * row.hour)} | {row.rate_rps:.3g} | {row.replicas} | "
            f"{100 * row.over_slo:.2f} % | {100 * row.over_slo_one_fewer:.2f} % | {row.replicas_naive} | "
            f"{100 * row.over_slo_naive:.2f} % |"
        )
    return lines


def fleet_report(plans: Sequence[Plan]) -> str:
    """One table over many services."""
    lines = [
        "# Capacity plan: fleet",
        "",
        "| service | peak replicas | reserved | spot share | monthly | naive monthly | all on-demand | MASE | coverage |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    total = np.zeros(3)
    for plan in plans:
        b = plan.demand.backtest
        lines.append(
            f"| {plan.name} | {int(plan.replicas.max())} | {plan.procurement.level} | "
            f"{_share(plan.procurement.spot_share)} | {_usd(plan.cost.monthly)} | {_usd(plan.cost.naive_monthly)} | "
            f"{_usd(plan.cost.all_on_demand_monthly)} | {f'{b.mase:.2f}' if b else '-'} | "
            f"{_share(b.coverage) if b else '-'} |"
        )
        total += (plan.cost.monthly, plan.cost.naive_monthly, plan.cost.all_on_demand_monthly)
    lines.append(
        f"| **all {len(plans)}** | | | | {_usd(total[0])} | {_usd(total[1])} | {_usd(total[2])} | | |"
    )
    return "\n".join(lines) + "\n"
