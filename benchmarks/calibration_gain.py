"""Choose the served bound's calibration gain on the development windows only.

For each gain, every dev window of `benchmarks/windows.toml` at the given start-ups (seed 1) runs
predictive and no_forecast at their default knobs and swept as in the autoscaling protocol, beside the
reactive baselines. Printed per gain: the served bound's coverage at the default quantile (0.9) per
window and its largest distance from 0.9, and GPU-hours at equal SLO over the best tuned reactive
(median over windows with a reading). Test windows are never read.

    PYTHONPATH=. .venv/bin/python -m benchmarks.calibration_gain --data ../shared/data \\
        --gains 0,0.005,0.01,0.02 --startups 180,600 --out benchmarks/calibration_gain.json
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
from scaler.sim.shared import FitCache

POLICIES = ("reactive", "reactive_60s", "reactive_rate", "no_forecast", "predictive")


def _one(args: tuple[autoscaling.Job, dict[str, Any], str, float, float]) -> dict[str, Any]:
    job, spec, data, peak, gain = args

    def with_gain(setup: Setup) -> Setup:
        settings = dataclasses.replace(setup.settings, calibration_gain=gain)
        return dataclasses.replace(setup, policies=POLICIES, settings=settings)

    out = autoscaling.run_job(job, spec, Path(data), peak, FitCache({}), configure=with_gain)
    out["gain"] = gain
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=autoscaling.ROOT.parent / "shared" / "data")
    parser.add_argument("--gains", default="0,0.005,0.01,0.02")
    parser.add_argument("--startups", default="180,600")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    windows = autoscaling.protocol()
    peak = float(windows["protocol"]["peak_replicas"])
    startups = {float(s) for s in args.startups.split(",")}
    gains = [float(g) for g in args.gains.split(",")]
    found = [
        j for j in autoscaling.jobs(windows) if j.split == "dev" and j.seed == 1 and j.startup_s in startups
    ]
    work = [(j, windows["traces"][j.trace], str(args.data), peak, g) for g in gains for j in found]
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for done, out in enumerate(pool.map(_one, work), 1):
            results.append(out)
            print(
                f"[{done}/{len(work)}] gain {out['gain']:g} {out['key']} "
                f"({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    args.out.write_text(json.dumps(results))
    for startup in sorted(startups):
        for gain in gains:
            rows = [r for r in results if r["gain"] == gain and r["job"]["startup_s"] == startup]
            print(f"\nstart-up {startup:g} s, gain {gain:g}")
            for name in ("predictive", "no_forecast"):
                cover = [r["policies"][name]["forecasting"]["bound_coverage"] for r in rows]
                far = max(abs(c - 0.9) for c in cover if c is not None)
                cells = []
                for budget in (0, 1):
                    ratios = [r["equal_slo"][budget]["vs_best_reactive"][name] for r in rows]
                    got = [x for x in ratios if x is not None]
                    median = f"{statistics.median(got):.3f}" if got else "-"
                    cells.append(f"{median} [{len(got)}/{len(rows)}]")
                listed = " ".join(f"{c:.3f}" if c is not None else "-" for c in cover)
                print(
                    f"  {name:12s} coverage {listed} (max |c-0.9| {far:.3f}); "
                    f"x best reactive @0.1% {cells[0]}, @1% {cells[1]}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
