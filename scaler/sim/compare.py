"""Compare scaling policies on one load window: every policy on the same demand, reactive's sweep,
and the readings the simulate command and the autoscaling benchmark report. Pure: no I/O.

    trace -> `demand_at_step` -> `split` (past | window) -> `rescaled` -> `compare` -> `to_json`, `table`

Reactive is judged at predictive's cost: its target is swept, and the sweep's frontier (its best SLO
minutes at each cost) is read at predictive's GPU-hours.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from forecasting.base import DAY_S
from scaler.sim.autoscaler import ScalingConfig
from scaler.sim.cluster import ClusterConfig
from scaler.sim.holt_winters import holt_winters
from scaler.sim.interface import PolicyFactory
from scaler.sim.outcomes import Outcome, against_reference
from scaler.sim.policies import fixed_buffer, oracle, reactive
from scaler.sim.predictive import Predictive, PredictiveSettings, predictive
from scaler.sim.run import prepare, run_policy
from scaler.sim.sweep import AtGpuHours, SweepPoint, at_equal_gpu_hours, sweep_reactive
from scaler.traces import Trace, TraceError, regrid

POLICIES = ("reactive", "fixed_buffer", "predictive", "holt_winters", "oracle")
# Reactive's sweep: targets from this share of one replica's concurrency to that, evenly on a log scale.
SWEEP_FROM, SWEEP_TO, SWEEP_POINTS = 0.35, 1.3, 16

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything a comparison is run with, besides the demand."""

    cluster: ClusterConfig
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    policies: tuple[str, ...] = ("reactive", "predictive", "oracle")
    target: float | None = None
    """Reactive's and fixed_buffer's target (in-flight per replica); None: one replica's concurrency."""
    settings: PredictiveSettings = field(default_factory=PredictiveSettings)
    """predictive's and holt_winters' trigger settings."""
    sweep_targets: tuple[float, ...] | None = None
    """Reactive's targets to sweep; None: SWEEP_POINTS from SWEEP_FROM to SWEEP_TO x concurrency;
    () for no sweep."""
    buffer: float = 0.3
    """fixed_buffer's headroom."""
    seed: int = 1
    tick_s: float = 5.0

    def reactive_target(self) -> float:
        return float(self.cluster.concurrency) if self.target is None else self.target

    def sweep(self) -> tuple[float, ...]:
        if self.sweep_targets is not None:
            return self.sweep_targets
        shares = np.geomspace(SWEEP_FROM, SWEEP_TO, SWEEP_POINTS)
        return tuple(sorted({round(float(s) * self.cluster.concurrency, 3) for s in shares}))


class Comparison(NamedTuple):
    """The outcome of every policy on one window, and reactive's sweep."""

    outcomes: dict[str, Outcome]
    sweep: list[SweepPoint]
    at_equal: AtGpuHours | None
    """Reactive's best (on the sweep's frontier) at predictive's GPU-hours; None without either."""
    forecasting: dict[str, dict[str, Any]]
    """Per forecasting policy: its refits by model and the share of decisions the forecast set."""


def demand_at_step(trace: Trace, step_s: float) -> Trace:
    """`trace` as demand on a grid of `step_s`: finer traces averaged per step, coarser ones
    interpolated linearly through the centres of their steps (a load does not jump at the edges of a
    monitoring bin); missing values are interpolated, and missing ends dropped."""
    known = np.isfinite(trace.values)
    if not known.any():
        raise TraceError(f"trace {trace.name}: holds no finite values")
    source = Trace(trace.name, trace.at_s[known], trace.values[known], trace.step_s)
    if source.step_s < step_s:
        binned = regrid(source, step_s)
        kept = np.isfinite(binned.values)
        source = Trace(trace.name, binned.at_s[kept], binned.values[kept], step_s)
    start_s, end_s = float(source.at_s[0]), float(source.at_s[-1]) + source.step_s
    grid = start_s + step_s * np.arange(math.floor((end_s - start_s) / step_s + 1e-9), dtype=np.float64)
    centres = source.at_s + source.step_s / 2
    values = np.interp(grid + step_s / 2, centres, source.values)
    return Trace(trace.name, grid, np.maximum(values, 0.0), step_s)


def split(trace: Trace, *, history_s: float, days: float | None) -> tuple[Trace, Trace]:
    """(the `history_s` before the window, the window): the window starts `history_s` after the
    trace's start and lasts `days` (None: to the trace's end)."""
    start_s = float(trace.at_s[0]) + history_s
    end_s = float(trace.at_s[-1]) + trace.step_s if days is None else start_s + days * DAY_S
    inside = (trace.at_s >= start_s) & (trace.at_s < end_s)
    if not inside.any():
        span_days = (trace.at_s[-1] + trace.step_s - trace.at_s[0]) / DAY_S
        raise TraceError(
            f"trace {trace.name} spans {span_days:.2f} days; nothing is left to simulate after a "
            f"history of {history_s / DAY_S:g} days (shorten --history)"
        )
    before = trace.at_s < start_s
    past = Trace(trace.name, trace.at_s[before], trace.values[before], trace.step_s)
    return past, Trace(trace.name, trace.at_s[inside], trace.values[inside], trace.step_s)


def rescaled(
    past: Trace, window: Trace, *, peak_replicas: float, cluster: ClusterConfig
) -> tuple[Trace, Trace]:
    """Both parts scaled by the factor that makes the window's peak `peak_replicas` replicas' worth."""
    peak = float(window.values.max())
    if not peak > 0:
        raise TraceError(f"trace {window.name}: the window's demand is all zero; nothing to scale")
    factor = peak_replicas * cluster.capacity_rps / peak
    return past._replace(values=past.values * factor), window._replace(values=window.values * factor)


def factories(setup: Setup, past: Trace | None) -> dict[str, PolicyFactory]:
    """The policies `setup` names, in its order."""
    target = setup.reactive_target()
    known: dict[str, Callable[[], PolicyFactory]] = {
        "reactive": lambda: reactive(target),
        "fixed_buffer": lambda: fixed_buffer(target, setup.buffer),
        "predictive": lambda: predictive(past, setup.settings),
        "holt_winters": lambda: holt_winters(past, setup.settings),
        "oracle": lambda: oracle(),
    }
    unknown = [name for name in setup.policies if name not in known]
    if unknown:
        raise ValueError(f"unknown policies {unknown}; expected some of {', '.join(POLICIES)}")
    return {name: known[name]() for name in setup.policies}


def frontier(sweep: Sequence[SweepPoint]) -> list[SweepPoint]:
    """The sweep's points no other point beats on both GPU-hours and SLO minutes, by GPU-hours.

    Reactive's cost is not monotone in its target (a target too high lets a queue build, and the
    in-flight count then overshoots), so only these points are reactive's best at their cost.
    """
    best: list[SweepPoint] = []
    for point in sorted(sweep, key=lambda p: (p.gpu_hours, p.slo_violation_minutes)):
        if not best or point.slo_violation_minutes < best[-1].slo_violation_minutes:
            best.append(point)
    return best


def compare(
    past: Trace | None, window: Trace, setup: Setup, progress: Progress = lambda _: None
) -> Comparison:
    """Every policy of `setup` on the same sampled demand, then reactive's sweep."""
    scenario = prepare(window, setup.cluster, setup.scaling, seed=setup.seed, tick_s=setup.tick_s)
    outcomes: dict[str, Outcome] = {}
    forecasting: dict[str, dict[str, Any]] = {}
    made = factories(setup, past)
    targets = setup.sweep()
    steps = len(made) + len(targets)
    for done, (name, make) in enumerate(made.items(), start=1):
        started = time.perf_counter()
        policy = make(scenario)
        outcomes[name] = run_policy(scenario, name, policy)
        if isinstance(policy, Predictive):
            forecasting[name] = {"fits": dict(policy.fits), "forecast_share": policy.forecast_share}
        progress(f"[{done}/{steps}] {name}: {time.perf_counter() - started:.1f} s")
    sweep: list[SweepPoint] = []
    for done, target in enumerate(targets, start=len(made) + 1):
        sweep.extend(
            sweep_reactive(
                window, [target], setup.cluster, setup.scaling, seed=setup.seed, tick_s=setup.tick_s
            )
        )
        progress(f"[{done}/{steps}] reactive sweep, target {target:g}")
    best = frontier(sweep)
    at_equal = None
    if best and "predictive" in outcomes:
        at_equal = at_equal_gpu_hours(best, outcomes["predictive"].gpu_hours)
    return Comparison(against_reference(outcomes, "oracle"), sweep, at_equal, forecasting)


def to_json(result: Comparison, about: Mapping[str, Any]) -> dict[str, Any]:
    """The documented JSON (docs/simulator.md): `about` goes in as `trace` and `settings`."""
    policies: dict[str, dict[str, Any]] = {
        name: {
            "gpu_hours": o.gpu_hours,
            "slo_violation_minutes": o.slo_violation_minutes,
            "requests_over_slo_fraction": o.over_slo_fraction,
            "dropped_requests": o.dropped,
            "scale_events": o.scale_events,
            "cost_usd": o.cost_usd,
            "requests": o.requests,
            "over_provisioning_vs_oracle": o.over_provisioning,
        }
        for name, o in result.outcomes.items()
    }
    for name, details in result.forecasting.items():
        policies[name]["forecasting"] = details
    at_equal = result.at_equal
    return {
        **about,
        "policies": policies,
        "reactive_sweep": [
            {"target": p.target, "gpu_hours": p.gpu_hours, "slo_violation_minutes": p.slo_violation_minutes}
            for p in result.sweep
        ],
        "reactive_at_equal_gpu_hours": None
        if at_equal is None
        else {
            "gpu_hours": at_equal.gpu_hours,
            "slo_violation_minutes": at_equal.slo_violation_minutes,
            "target": at_equal.target,
            "inside_sweep": at_equal.inside,
        },
    }


def table(result: Comparison) -> str:
    """The comparison as aligned text."""
    oracle_hours = result.outcomes["oracle"].gpu_hours if "oracle" in result.outcomes else math.nan
    rows = [("policy", "GPU-h", "x oracle", "SLO min", "req > SLO", "dropped", "scale events")]
    for name, o in result.outcomes.items():
        relative = o.gpu_hours / oracle_hours if oracle_hours > 0 else math.nan
        rows.append(
            (
                name,
                f"{o.gpu_hours:.1f}",
                f"{relative:.2f}",
                str(o.slo_violation_minutes),
                f"{o.over_slo_fraction:.3%}",
                f"{o.dropped:.0f}",
                str(o.scale_events),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    at_equal = result.at_equal
    if at_equal is not None:
        where = "" if at_equal.inside else " (outside the sweep: its nearest end)"
        lines.append(
            f"reactive at predictive's {at_equal.gpu_hours:.1f} GPU-h: {at_equal.slo_violation_minutes:.1f} "
            f"SLO minutes, target {at_equal.target:.3g}{where}"
        )
    return "\n".join(lines)
