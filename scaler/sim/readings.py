"""A comparison's readings: GPU-hours at equal SLO against the best tuned reactive and the floors,
the documented JSON (docs/simulator.md) and the text table. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from scaler.sim.compare import FLOORS, Comparison, Setup, default_knob
from scaler.sim.sweep import budget_minutes_per_day


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or not base > 0:
        return None
    return value / base


def equal_slo(result: Comparison) -> list[dict[str, Any]]:
    """Per budget: each policy's GPU-hours (None outside its sweep), and the ratios to the best tuned
    reactive and to the two floors' GPU-hours."""
    floor = {name: result.outcomes[name].gpu_hours for name in FLOORS if name in result.outcomes}
    rows = []
    for share, per_day in result.budgets:
        hours = {name: result.at_budget(name, per_day) for name in result.outcomes if name not in FLOORS}
        best = result.best_reactive(per_day)
        rows.append(
            {
                "budget_minutes_per_day": per_day,
                "budget_share_of_minutes": share,
                "gpu_hours": hours,
                "best_reactive": None if best is None else best[0],
                "vs_best_reactive": {n: _ratio(h, best[1] if best else None) for n, h in hours.items()},
                "vs_lookahead_oracle": {n: _ratio(h, floor.get("oracle")) for n, h in hours.items()},
                "vs_clairvoyant": {n: _ratio(h, floor.get("clairvoyant")) for n, h in hours.items()},
            }
        )
    return rows


def to_json(result: Comparison, about: Mapping[str, Any]) -> dict[str, Any]:
    """The documented JSON (docs/simulator.md): `about` goes in as `trace` and `settings`."""
    policies: dict[str, dict[str, Any]] = {}
    for name, o in result.outcomes.items():
        knob = result.defaults.get(name)
        policies[name] = {
            "gpu_hours": o.gpu_hours,
            "slo_violation_minutes": o.slo_violation_minutes,
            "knob": knob.name if knob else None,
            "value": knob.value if knob else None,
            "frontier": [
                {
                    "knob": p.knob or None,
                    "value": None if math.isnan(p.value) else p.value,
                    "gpu_hours": p.gpu_hours,
                    "slo_violation_minutes": p.slo_violation_minutes,
                }
                for p in result.frontier(name)
            ],
            "sweep": [
                {
                    "knob": p.knob,
                    "value": p.value,
                    "gpu_hours": p.gpu_hours,
                    "slo_violation_minutes": p.slo_violation_minutes,
                }
                for p in sorted(result.sweeps.get(name, []), key=lambda p: (p.knob, p.value))
            ],
            "requests_over_slo_fraction": o.over_slo_fraction,
            "dropped_requests": o.dropped,
            "timed_out_requests": o.timed_out,
            "scale_events": o.scale_events,
            "cost_usd": o.cost_usd,
            "requests": o.requests,
            "over_provisioning_vs_oracle": o.over_provisioning,
        }
    for name, details in result.forecasting.items():
        policies[name]["forecasting"] = details
    return {
        **about,
        "days": result.days,
        "policies": policies,
        "equal_slo": equal_slo(result),
        "error_budget_runs": [
            {
                **run,
                "vs_predictive_at_budget": _ratio(
                    run["gpu_hours"],
                    result.at_budget("predictive", budget_minutes_per_day(run["budget_share_of_minutes"])),
                ),
            }
            for run in result.budgeted
        ],
        "oracle_floor": {
            "lookahead": result.outcomes["oracle"].gpu_hours,
            "clairvoyant": result.outcomes["clairvoyant"].gpu_hours,
        },
    }


def settings_json(setup: Setup) -> dict[str, Any]:
    """Every mechanic's and policy's setting, for the JSON's `settings`."""

    def fields(obj: Any) -> dict[str, Any]:
        return {k: _plain(getattr(obj, k)) for k in obj.__dataclass_fields__}

    cluster = fields(setup.cluster)
    cluster["startup_p95_s"] = setup.cluster.startup_p95
    return {
        "cluster": cluster,
        "scaling": fields(setup.scaling),
        "pipeline": fields(setup.pipeline),
        "outages_s": [list(span) for span in setup.outages],
        "policies": list(setup.policies),
        "defaults": {
            name: None if (k := default_knob(name, setup)) is None else {"knob": k.name, "value": k.value}
            for name in dict.fromkeys([*setup.policies, *FLOORS])
        },
        "predictive": fields(setup.settings),
        "sweep": setup.sweep,
        "sweep_points": setup.sweep_points,
        "sweep_range": list(setup.sweep_range),
        "quantiles": list(setup.quantiles),
        "threshold_shares": list(setup.threshold_shares),
        "budget_shares": list(setup.budget_shares),
        "seed": setup.seed,
        "tick_s": setup.tick_s,
    }


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def table(result: Comparison) -> str:
    """The comparison as aligned text, with GPU-hours at each budget when swept."""
    oracle_hours = result.outcomes["oracle"].gpu_hours
    budgets = result.budgets if result.sweeps else []
    header = ["policy", "knob", "GPU-h", "x oracle", "SLO min", "req > SLO", "dropped"]
    header += [f"GPU-h @ {per_day:.3g} min/d" for _, per_day in budgets]
    rows = [tuple(header)]
    for name, o in result.outcomes.items():
        knob = result.defaults.get(name)
        relative = o.gpu_hours / oracle_hours if oracle_hours > 0 else math.nan
        cells = [
            name,
            f"{knob.name}={knob.value:g}" if knob else "-",
            f"{o.gpu_hours:.1f}",
            f"{relative:.2f}",
            str(o.slo_violation_minutes),
            f"{o.over_slo_fraction:.3%}",
            f"{o.dropped:.0f}",
        ]
        for _, per_day in budgets:
            hours = result.at_budget(name, per_day) if name not in FLOORS else None
            cells.append("outside" if hours is None else f"{hours:.1f}")
        rows.append(tuple(cells))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.append(
        f"oracle floor: look-ahead {oracle_hours:.1f} GPU-h, clairvoyant "
        f"{result.outcomes['clairvoyant'].gpu_hours:.1f} GPU-h"
    )
    if not result.sweeps:
        lines.append("(no sweep: run with --sweep for frontiers and GPU-hours at equal SLO)")
    return "\n".join(lines)
