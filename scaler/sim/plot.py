"""The comparison as a figure: demand and replicas, latency, and reactive's cost/SLO curve.

Returns a matplotlib `Figure` built without pyplot (no global backend, no window); the caller saves
it (`figure.savefig(path)` renders with Agg). Nothing here reads or writes files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from scaler.sim.cluster import ClusterConfig
from scaler.sim.compare import frontier
from scaler.sim.outcomes import Outcome
from scaler.sim.sweep import AtGpuHours, SweepPoint

HOUR_S = 3600.0
# Latencies are drawn up to this many SLOs (dropped requests make a minute's latency infinite).
LATENCY_CEILING_SLOS = 20.0
# The sweep panel shows GPU-hours up to this multiple of the dearest policy's.
SWEEP_XMAX = 1.6
COLOURS = {
    "reactive": "tab:red",
    "fixed_buffer": "tab:orange",
    "predictive": "tab:blue",
    "holt_winters": "tab:purple",
    "oracle": "tab:green",
}


def comparison_figure(
    title: str,
    outcomes: Mapping[str, Outcome],
    cluster: ClusterConfig,
    sweep: Sequence[SweepPoint] = (),
    at_equal: AtGpuHours | None = None,
) -> Figure:
    """Three panels: demand (in replicas' worth) and provisioned replicas per policy; each minute's
    latency at the SLO quantile; reactive's sweep with every policy's (GPU-hours, SLO minutes)."""
    figure = Figure(figsize=(12, 11), layout="constrained")
    demand_ax, latency_ax, sweep_ax = figure.subplots(3, 1, height_ratios=[3, 2, 3])
    figure.suptitle(title)
    first = next(iter(outcomes.values()), None)
    if first is not None:
        minutes = first.minutes
        hours = (minutes.at_s - minutes.at_s[0]) / HOUR_S
        needed = minutes.demand_rps / cluster.capacity_rps
        demand_ax.fill_between(hours, needed, step="post", color="0.85", label="demand (replicas' worth)")
    for name, outcome in outcomes.items():
        minutes = outcome.minutes
        hours = (minutes.at_s - minutes.at_s[0]) / HOUR_S
        colour = COLOURS.get(name)
        demand_ax.step(hours, minutes.provisioned, where="post", lw=0.9, color=colour, label=name)
        ceiling = cluster.slo_s * LATENCY_CEILING_SLOS
        latency = np.minimum(minutes.quantile_latency_s, ceiling)
        latency_ax.plot(hours, latency, lw=0.7, color=colour, label=name)
    demand_ax.set_ylabel("replicas (billed)")
    demand_ax.set_xlabel("hours since the window's start")
    demand_ax.legend(loc="upper left", fontsize="small", ncols=3)
    latency_ax.axhline(cluster.slo_s, color="black", ls="--", lw=0.8, label=f"SLO {cluster.slo_s:g} s")
    latency_ax.set_yscale("log")
    latency_ax.set_ylabel(f"p{cluster.slo_quantile * 100:g} latency per minute (s)")
    latency_ax.set_xlabel("hours since the window's start")
    latency_ax.legend(loc="upper left", fontsize="small", ncols=3)
    _sweep_panel(sweep_ax, outcomes, sweep, at_equal)
    return figure


def _sweep_panel(
    ax: Axes, outcomes: Mapping[str, Outcome], sweep: Sequence[SweepPoint], at_equal: AtGpuHours | None
) -> None:
    if sweep:
        ax.plot(
            [p.gpu_hours for p in sweep],
            [p.slo_violation_minutes for p in sweep],
            "o",
            color="tab:red",
            alpha=0.4,
            label="reactive, one point per target",
        )
        best = frontier(sweep)
        ax.plot(
            [p.gpu_hours for p in best],
            [p.slo_violation_minutes for p in best],
            "-",
            color="tab:red",
            label="reactive's best at each cost",
        )
        for point in sweep:
            ax.annotate(
                f"{point.target:.3g}",
                (point.gpu_hours, point.slo_violation_minutes),
                fontsize="x-small",
                textcoords="offset points",
                xytext=(3, 3),
            )
    for name, outcome in outcomes.items():
        ax.plot(
            outcome.gpu_hours,
            outcome.slo_violation_minutes,
            "*",
            ms=12,
            color=COLOURS.get(name),
            label=f"{name}",
        )
    if at_equal is not None:
        ax.plot(
            at_equal.gpu_hours,
            at_equal.slo_violation_minutes,
            "x",
            ms=10,
            color="black",
            label="reactive at predictive's GPU-hours",
        )
    if outcomes:
        # Sweep points far dearer than every policy (very low targets) are left off the chart.
        hours = [outcome.gpu_hours for outcome in outcomes.values()]
        ax.set_xlim(min(hours) * 0.9, max(hours) * SWEEP_XMAX)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("GPU-hours")
    ax.set_ylabel("SLO-violating minutes")
    ax.legend(loc="upper right", fontsize="small")
