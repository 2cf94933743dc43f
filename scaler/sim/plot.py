"""The comparison as figures: demand and replicas, latency, and each policy's cost/SLO frontier.

Returns matplotlib `Figure`s built without pyplot (no global backend, no window); the caller saves
them (`figure.savefig(path)` renders with Agg). Nothing here reads or writes files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from scaler.sim.outcomes import Outcome
from scaler.sim.service import ClusterConfig
from scaler.sim.sweep import SweepPoint, frontier

HOUR_S = 3600.0
# Latencies are drawn up to this many SLOs (dropped requests make a minute's latency infinite).
LATENCY_CEILING_SLOS = 20.0
COLOURS = {
    "reactive": "tab:red",
    "reactive_60s": "tab:pink",
    "reactive_rate": "tab:orange",
    "fixed_buffer": "tab:brown",
    "no_forecast": "tab:cyan",
    "predictive": "tab:blue",
    "holt_winters": "tab:purple",
    "crane_dsp": "tab:olive",
    "aws_style": "tab:gray",
    "oracle": "tab:green",
    "clairvoyant": "black",
}
# Floors are drawn first and dashed, so that a policy tracking them stays visible on top.
FLOORS = ("oracle", "clairvoyant")
KNOB_UNITS = {
    "target": "in-flight requests per replica",
    "target_rps": "requests/s per replica",
    "threshold": "in-flight requests per replica",
    "quantile": "forecast quantile",
}


def _order(names: Sequence[str]) -> list[str]:
    """Floors first, predictive last (on top)."""
    floors = [n for n in names if n in FLOORS]
    rest = [n for n in names if n not in FLOORS and n != "predictive"]
    return floors + rest + (["predictive"] if "predictive" in names else [])


def comparison_figure(
    title: str,
    outcomes: Mapping[str, Outcome],
    cluster: ClusterConfig,
    frontiers: Mapping[str, Sequence[SweepPoint]] | None = None,
    *,
    days: float = 1.0,
    budgets: Sequence[float] = (),
) -> Figure:
    """Three panels: demand (in replicas' worth) and billed replicas per policy; each minute's latency
    at the SLO quantile; every policy's frontier (GPU-hours against SLO minutes per day), with its
    default run starred and the SLO budgets as horizontal lines."""
    figure = Figure(figsize=(12, 12), layout="constrained")
    demand_ax, latency_ax, sweep_ax = figure.subplots(3, 1, height_ratios=[3, 2, 3])
    figure.suptitle(title)
    first = next(iter(outcomes.values()), None)
    if first is not None:
        minutes = first.minutes
        hours = (minutes.at_s - minutes.at_s[0]) / HOUR_S
        needed = minutes.demand_rps / cluster.capacity_rps
        demand_ax.fill_between(hours, needed, step="post", color="0.85", label="demand (replicas' worth)")
    for rank, name in enumerate(_order(list(outcomes))):
        outcome = outcomes[name]
        minutes = outcome.minutes
        hours = (minutes.at_s - minutes.at_s[0]) / HOUR_S
        colour = COLOURS.get(name)
        floor = name in FLOORS
        style = {"ls": "--" if floor else "-", "lw": 1.6 if floor else 0.9, "zorder": 2 + rank}
        demand_ax.step(hours, minutes.provisioned, where="post", color=colour, label=name, **style)
        ceiling = cluster.slo_s * LATENCY_CEILING_SLOS
        latency = np.minimum(minutes.quantile_latency_s, ceiling)
        latency_ax.plot(hours, latency, color=colour, label=name, **{**style, "lw": 0.7})
    demand_ax.set_ylabel("replicas billed (mean per minute)")
    demand_ax.set_xlabel("hours since the window's start")
    demand_ax.set_title("demand and replicas (oracle floors dashed, predictive on top)", fontsize="medium")
    demand_ax.legend(loc="upper left", fontsize="small", ncols=4)
    latency_ax.axhline(cluster.slo_s, color="black", ls=":", lw=0.8, label=f"SLO {cluster.slo_s:g} s")
    latency_ax.set_yscale("log")
    latency_ax.set_ylabel(f"p{cluster.slo_quantile * 100:g} latency per minute (s)")
    latency_ax.set_xlabel("hours since the window's start")
    latency_ax.legend(loc="upper left", fontsize="small", ncols=4)
    frontier_panel(sweep_ax, outcomes, frontiers or {}, days=days, budgets=budgets)
    return figure


def frontier_panel(
    ax: Axes,
    outcomes: Mapping[str, Outcome],
    frontiers: Mapping[str, Sequence[SweepPoint]],
    *,
    days: float,
    budgets: Sequence[float] = (),
) -> None:
    """Each policy's frontier over its knob (points labelled with the knob's value), its default run
    starred, the floors as vertical lines, the budgets as horizontal ones."""
    for name in _order(list(outcomes)):
        outcome, colour = outcomes[name], COLOURS.get(name)
        if name in FLOORS:
            ax.axvline(outcome.gpu_hours, color=colour, ls="--", lw=1.2, label=f"{name} (floor)")
            continue
        points = frontier(frontiers.get(name, []))
        if len(points) > 1:
            ax.plot(
                [p.gpu_hours for p in points],
                [p.slo_violation_minutes / days for p in points],
                "o-",
                ms=3,
                lw=1.0,
                color=colour,
                label=f"{name} frontier ({points[0].knob}: {KNOB_UNITS.get(points[0].knob, '')})",
            )
            for point in points:
                ax.annotate(
                    f"{point.value:.3g}",
                    (point.gpu_hours, point.slo_violation_minutes / days),
                    fontsize="xx-small",
                    color=colour,
                    textcoords="offset points",
                    xytext=(2, 3),
                )
        ax.plot(
            outcome.gpu_hours,
            outcome.slo_violation_minutes / days,
            "*",
            ms=11,
            color=colour,
            label=f"{name} at its default",
        )
    for budget in budgets:
        ax.axhline(budget, color="black", ls=":", lw=0.8)
        ax.annotate(
            f"SLO budget {budget:.3g} min/day",
            (0.005, budget),
            xycoords=("axes fraction", "data"),
            ha="left",
            va="bottom",
            fontsize="x-small",
        )
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("GPU-hours (billed)")
    ax.set_ylabel("SLO-violating minutes per simulated day")
    ax.set_title(
        "frontier per policy: each point one value of its knob (labelled), the cheapest at each SLO",
        fontsize="medium",
    )
    ax.legend(loc="upper right", fontsize="x-small", ncols=2)


def frontier_figure(
    title: str,
    frontiers: Mapping[str, Sequence[tuple[float, float]]],
    floors: Mapping[str, float],
    budgets: Sequence[float],
) -> Figure:
    """One panel for a kind of trace: per policy its frontier as (GPU-hours relative to the
    clairvoyant floor, SLO-violating minutes per day), one line per window and seed; the budgets
    dashed. `floors` names a floor's GPU-hours relative to the clairvoyant (1.0 for itself)."""
    figure = Figure(figsize=(10, 6.5), layout="constrained")
    ax = figure.subplots()
    figure.suptitle(title)
    labelled: set[str] = set()
    for key, points in frontiers.items():
        name = key.split("|", 1)[0]
        if not points:
            continue
        x, y = zip(*sorted(points), strict=True)
        ax.plot(
            x,
            y,
            "-",
            lw=1.6 if name == "predictive" else 0.8,
            alpha=0.9 if name == "predictive" else 0.5,
            color=COLOURS.get(name),
            zorder=5 if name == "predictive" else 2,
            label=None if name in labelled else name,
        )
        labelled.add(name)
    for name, relative in floors.items():
        ax.axvline(relative, color=COLOURS.get(name), ls="--", lw=1.0, label=f"{name} (floor, median)")
    # Show where the budgets are read: points up to ten times the largest budget.
    near = [x for points in frontiers.values() for x, y in points if y <= 10 * max(budgets, default=1.0)]
    if near:
        ax.set_xlim(min(0.95, min(near)), max(near) * 1.02)
    for budget in budgets:
        ax.axhline(budget, color="black", ls=":", lw=0.8)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("GPU-hours / the clairvoyant floor's (same window and seed)")
    ax.set_ylabel("SLO-violating minutes per simulated day (dotted: the budgets)")
    ax.legend(loc="upper right", fontsize="small", ncols=2)
    return figure
