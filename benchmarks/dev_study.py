"""Choose predictive's defaults on the development windows only.

Each variant sets some of predictive's settings (`scaler.sim.predictive.PredictiveSettings` fields);
every dev window of `benchmarks/windows.toml` at the given start-ups (seed 1) runs predictive under it,
at its default knob and swept as in the autoscaling protocol, beside the reactive baselines and
no_forecast. Printed per variant and start-up: the served bound's coverage at the default quantile
per window and its largest distance from it, the pipeline served at the end, and GPU-hours at equal
SLO over the best tuned reactive (median over windows with a reading, and each window's). Test
windows are never read.

    PYTHONPATH=. .venv/bin/python -m benchmarks.dev_study --data ../shared/data --startups 180,600 \\
        --variant forecast=pipeline:forecast --variant auto=pipeline:auto --out /tmp/dev.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import autoscaling
from scaler.sim.compare import Setup
from scaler.sim.predictive import PredictiveSettings
from scaler.sim.shared import FitCache

POLICIES = ("reactive", "reactive_60s", "reactive_rate", "no_forecast", "predictive")
FIELDS = {f.name: f.type for f in dataclasses.fields(PredictiveSettings)}


def variant(text: str) -> tuple[str, dict[str, Any]]:
    """`name=field:value,field:value` (values parsed as JSON, else kept as text)."""
    name, _, body = text.partition("=")
    settings: dict[str, Any] = {}
    for item in filter(None, body.split(",")):
        key, _, raw = item.partition(":")
        if key not in FIELDS:
            raise argparse.ArgumentTypeError(f"--variant {text!r}: {key!r} is not a PredictiveSettings field")
        try:
            settings[key] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key] = raw
    if not name:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: expected name=field:value,...")
    return name, settings


def _one(args: tuple[autoscaling.Job, dict[str, Any], str, float, str, dict[str, Any]]) -> dict[str, Any]:
    job, spec, data, peak, name, changes = args

    def configure(setup: Setup) -> Setup:
        settings = dataclasses.replace(setup.settings, **changes)
        return dataclasses.replace(setup, policies=POLICIES, settings=settings)

    out = autoscaling.run_job(job, spec, Path(data), peak, FitCache({}), configure=configure)
    out["variant"] = name
    return out


def report(results: list[dict[str, Any]], names: list[str], startups: list[float]) -> None:
    for startup in startups:
        for name in names:
            rows = [r for r in results if r["variant"] == name and r["job"]["startup_s"] == startup]
            print(f"\nstart-up {startup:g} s, variant {name}")
            for policy in ("predictive", "no_forecast"):
                details = [r["policies"][policy] for r in rows]
                cover = [d.get("forecasting", {}).get("bound_coverage") for d in details]
                known = [c for c in cover if c is not None]
                far = max((abs(c - 0.9) for c in known), default=float("nan"))
                cells = []
                for budget in (0, 1):
                    ratios = [r["equal_slo"][budget]["vs_best_reactive"][policy] for r in rows]
                    got = [x for x in ratios if x is not None]
                    median = f"{statistics.median(got):.3f}" if got else "-"
                    each = " ".join("-" if x is None else f"{x:.3f}" for x in ratios)
                    cells.append(f"{median} [{len(got)}/{len(rows)}] ({each})")
                listed = " ".join("-" if c is None else f"{c:.3f}" for c in cover)
                print(f"  {policy:12s} coverage {listed} (max |c-0.9| {far:.3f})")
                print(f"  {'':12s} x best reactive @0.1% {cells[0]}")
                print(f"  {'':12s} x best reactive @1%   {cells[1]}")
            served = [r["policies"]["predictive"].get("forecasting", {}).get("pipeline") for r in rows]
            print(f"  pipelines served at the end: {served}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=autoscaling.ROOT.parent / "shared" / "data")
    parser.add_argument("--variant", type=variant, action="append", required=True)
    parser.add_argument("--startups", default="180,600")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    windows = autoscaling.protocol()
    peak = float(windows["protocol"]["peak_replicas"])
    startups = sorted(float(s) for s in args.startups.split(","))
    found = [
        j for j in autoscaling.jobs(windows) if j.split == "dev" and j.seed == 1 and j.startup_s in startups
    ]
    work = [
        (j, windows["traces"][j.trace], str(args.data), peak, n, c) for n, c in args.variant for j in found
    ]
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for done, out in enumerate(pool.map(_one, work), 1):
            results.append(out)
            print(
                f"[{done}/{len(work)}] {out['variant']} {out['key']} ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    args.out.write_text(json.dumps(results))
    report(results, [n for n, _ in args.variant], startups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
