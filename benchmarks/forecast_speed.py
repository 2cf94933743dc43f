"""Forecasting cost: seconds per target at 5 min / 7 days, targets per second on 1 and 2 worker
processes, and the size of a pickled Forecaster.

Targets are 7-day windows of the shared 5-minute traces at staggered offsets. A "select" fit runs the
Auto* model selection (once a day per target in production); a "refit" reuses the kept selection
(every refresh). Worker throughput is measured as the refresher uses it: the Forecaster and the
series pickled to a worker process, refitted there, and pickled back.

    python -m benchmarks.forecast_speed --quick --out /tmp/speed.md
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks._data import DATA, SERIES, load
from benchmarks._provenance import emit
from forecasting import Forecaster, Series

WEEK_STEPS = 7 * 288
TARGET_REFITS = 1000
REFIT_BUDGET_S = 600.0


def targets(count: int, data: Path) -> list[Series]:
    """`count` 7-day windows at 5 min, cycling over the 5-minute traces at staggered offsets."""
    pools = [load(spec, data) for spec in SERIES if spec.step_s == 300]
    out = []
    for i in range(count):
        series = pools[i % len(pools)]
        room = len(series) - WEEK_STEPS
        offset = (i // len(pools) * 997) % max(room, 1)
        out.append(series.window(offset, offset + WEEK_STEPS))
    return out


def refit(job: tuple[Forecaster, Series]) -> Forecaster:
    forecaster, series = job
    forecaster.fit(series)
    forecaster.forecast(12)
    return forecaster


def throughput(jobs: list[tuple[Forecaster, Series]], workers: int) -> float:
    """Targets per second refitted by `workers` processes."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(refit, jobs[:workers]))  # start the workers and load numba before timing
        started = time.perf_counter()
        list(pool.map(refit, jobs, chunksize=1))
        return len(jobs) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--targets", type=int, default=40, help="targets measured (default 40)")
    parser.add_argument("--quick", action="store_true", help="8 targets")
    parser.add_argument("--out", type=Path, help="write the markdown results here")
    args = parser.parse_args(argv)
    series = targets(8 if args.quick else args.targets, args.data)
    Forecaster().fit(series[0])  # numba compiles on first use: keep it out of the timings

    select_s, refit_s, forecast_ms, sizes, models = [], [], [], [], []
    forecasters = []
    for i, target in enumerate(series, start=1):
        forecaster = Forecaster()
        select_s.append(forecaster.fit(target).fit_s)
        result = forecaster.fit(target.window(1, None))  # five minutes later: the selection is kept
        refit_s.append(result.fit_s)
        models.append(result.model)
        started = time.perf_counter()
        forecaster.forecast(12)
        forecast_ms.append(1000 * (time.perf_counter() - started))
        sizes.append(len(pickle.dumps(forecaster)))
        forecasters.append(forecaster)
        print(f"\rtarget {i}/{len(series)}", end="", file=sys.stderr)
    print(file=sys.stderr)

    jobs = list(zip(forecasters, series, strict=True))
    rates = {workers: throughput(jobs, workers) for workers in (1, 2)}
    lines = [
        f"Forecasting cost, {len(series)} targets of 7 days at 5 min ({WEEK_STEPS} points), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "",
        "| measure | median | p90 | max |",
        "|---|---|---|---|",
        _row("fit with model selection (s)", select_s),
        _row("refit reusing the selection (s)", refit_s),
        _row("forecast (ms)", forecast_ms),
        _row("pickled Forecaster (bytes)", [float(s) for s in sizes]),
        "",
        "| worker processes | refits per second | 1,000 refits (s) |",
        "|---|---|---|",
    ]
    for workers, rate in rates.items():
        lines.append(f"| {workers} | {rate:.2f} | {TARGET_REFITS / rate:.0f} |")
    verdict = "meets" if TARGET_REFITS / rates[2] <= REFIT_BUDGET_S else "misses"
    lines += [
        "",
        f"- 1,000 refits on 2 workers: {TARGET_REFITS / rates[2]:.0f} s; {verdict} the {REFIT_BUDGET_S:.0f} s budget",
        f"- models answering: {', '.join(f'{m} {models.count(m)}' for m in sorted(set(models)))}",
    ]
    text = "\n".join(lines) + "\n"
    emit(text, args.out)
    return 0


def _row(name: str, values: list[float]) -> str:
    data = np.asarray(values)
    return f"| {name} | {np.median(data):.3g} | {np.quantile(data, 0.9):.3g} | {data.max():.3g} |"


if __name__ == "__main__":
    raise SystemExit(main())
