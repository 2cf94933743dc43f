"""The autoscaling section's figures: each policy's frontier per kind of trace, test windows only."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

Run = dict[str, Any]
PLOTTED_STARTUP_S = 180.0
"""The start-up whose frontiers are drawn (one figure per kind)."""


def figures(
    runs: list[Run], budgets: list[float], plots: Path, *, kinds: tuple[str, ...], policies: tuple[str, ...]
) -> list[str]:
    """One frontier figure per kind at PLOTTED_STARTUP_S (test windows) of `policies`; their file names."""
    from scaler.sim.plot import frontier_figure

    names = []
    plots.mkdir(parents=True, exist_ok=True)
    for old in plots.glob("autoscaling_*.png"):
        old.unlink()
    for kind in kinds:
        chosen = [
            r
            for r in runs
            if r["kind"] == kind
            and r["job"]["split"] == "test"
            and r["job"]["startup_s"] == PLOTTED_STARTUP_S
        ]
        if not chosen:
            continue
        lines: dict[str, list[tuple[float, float]]] = {}
        floors: dict[str, list[float]] = defaultdict(list)
        for run in chosen:
            floor = run["oracle_floor"]["clairvoyant"]
            days = run["days"]
            floors["oracle"].append(run["oracle_floor"]["lookahead"] / floor)
            floors["clairvoyant"].append(1.0)
            for policy in policies:
                points = run["policies"][policy]["frontier"]
                lines[f"{policy}|{run['key']}"] = [
                    (p["gpu_hours"] / floor, p["slo_violation_minutes"] / days) for p in points
                ]
        per_day = [share * 1440 for share in budgets]
        title = (
            f"{kind} test windows, {PLOTTED_STARTUP_S:g} s median start-up: each policy's frontier over its knob, "
            f"one line per window and seed ({len(chosen)} runs)"
        )
        figure = frontier_figure(
            title, lines, {name: statistics.median(v) for name, v in floors.items()}, per_day
        )
        name = f"autoscaling_frontiers_{kind}_{PLOTTED_STARTUP_S:g}s.png"
        figure.savefig(plots / name, dpi=80)
        names.append(name)
    return names
