"""The plan as a figure: demand band, replicas (Erlang vs naive), procurement stack, cost curve.

Returns a matplotlib `Figure` built without pyplot (no global backend, no window); the caller saves
it. Nothing here reads or writes files.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from scaler.plan.core import Plan
from scaler.plan.procurement import monthly

HOUR_S = 3600.0
# Hours of history drawn before the forecast.
HISTORY_SHOWN_H = 7 * 24


def plan_figure(plan: Plan) -> Figure:
    """Four panels, one above the other, sharing the time axis (hours from the plan's start)."""
    figure = Figure(figsize=(11, 12), layout="constrained")
    demand_ax, replicas_ax, stack_ax, curve_ax = figure.subplots(4, 1)
    d = plan.demand
    hours = np.arange(plan.hours)
    past = d.history.window(-HISTORY_SHOWN_H, None)
    past_h = (past.start_s - d.start_s) / HOUR_S + np.arange(len(past))
    demand_ax.plot(past_h, past.values, color="0.4", lw=1, label="history (hourly mean)")
    if d.fitted is not None:
        fitted = d.fitted.window(-HISTORY_SHOWN_H, None)
        demand_ax.plot(
            past_h,
            fitted.values,
            color="tab:orange",
            lw=1,
            ls="--",
            label="as fitted (outages filled, level)",
        )
    demand_ax.plot(hours, d.mean, color="tab:blue", lw=1.2, label="forecast mean")
    demand_ax.fill_between(
        hours,
        d.mean,
        d.upper,
        color="tab:blue",
        alpha=0.25,
        step=None,
        label=f"up to sized rate (q {d.quantile:g} x peak)",
    )
    demand_ax.set_ylabel("requests/s")
    demand_ax.set_title(f"{plan.name}: hourly demand, forecast band")
    demand_ax.legend(loc="upper left", fontsize=8)

    replicas_ax.step(hours, plan.replicas, where="post", color="tab:green", label="Erlang C (SLO)")
    replicas_ax.step(hours, plan.replicas_naive, where="post", color="tab:red", lw=1, label="naive rule")
    replicas_ax.set_ylabel("replicas")
    replicas_ax.set_title(
        f"replicas per hour: latency p{100 * plan.profile.slo_quantile:g} <= {plan.profile.slo_seconds:g} s vs "
        f"rate x {plan.profile.naive_safety_factor:g} / capacity"
    )
    replicas_ax.legend(loc="upper left", fontsize=8)

    mix = plan.procurement.mix
    stack_ax.stackplot(
        hours,
        mix.reserved,
        mix.spot,
        mix.on_demand,
        colors=("tab:purple", "tab:orange", "tab:gray"),
        labels=(
            f"reserved ({plan.procurement.term or 'none'})",
            "spot (incl. interruption extras)",
            "on-demand",
        ),
        step="post",
    )
    stack_ax.step(hours, plan.replicas, where="post", color="black", lw=0.8, label="need")
    stack_ax.set_ylabel("replicas")
    stack_ax.set_xlabel("hours from the plan's start")
    stack_ax.set_title("procurement per hour")
    stack_ax.legend(loc="upper left", fontsize=8)
    for ax in (demand_ax, replicas_ax, stack_ax):
        ax.grid(alpha=0.3)
        ax.set_xlim(float(past_h[0]) if past_h.size else 0.0, float(plan.hours))

    buy = plan.procurement
    curve = np.array([monthly(float(c), plan.hours) for c in buy.curve_usd])
    curve_ax.plot(buy.levels, curve / 1000, color="tab:purple", marker=".", label="monthly cost")
    curve_ax.axvline(buy.level, color="black", ls="--", lw=0.8, label=f"optimum: {buy.level} reserved")
    curve_ax.set_xlabel("reserved replicas")
    curve_ax.set_ylabel("thousand USD / month")
    curve_ax.set_title("cost vs reserved level (spot and on-demand above it)")
    curve_ax.grid(alpha=0.3)
    curve_ax.legend(loc="upper right", fontsize=8)
    return figure
