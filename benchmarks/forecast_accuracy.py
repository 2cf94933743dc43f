"""Forecast accuracy on the shared traces: the ensemble against seasonal naive, each member and Prophet.

Rolling-origin backtest (forecasting.backtest) on each series at its native or regridded step, a 2 h
horizon, the upper bound at `--quantile`. Prophet runs only if `import prophet` works (it is not a
project dependency). Prints the tables and writes them as markdown to `--out`.

    python -m benchmarks.forecast_accuracy --quick --out /tmp/accuracy.md
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._data import DATA, Spec, load, select
from benchmarks._provenance import emit
from forecasting import BacktestResult, ForecastConfig, Series, backtest
from forecasting.backtest import Baseline
from forecasting.base import FloatArray

MODELS = ("forecaster", "ensemble", "seasonal_naive", "naive", "auto_ets", "auto_theta", "mstl", "prophet")
PROPHET_HISTORY_S = 17 * 86_400


def prophet_baseline() -> Baseline | None:
    """Prophet with daily and weekly seasonality, its upper bound the `quantile` of its interval."""
    logging.getLogger("prophet.plot").disabled = True  # "Importing plotly failed": plots are not used
    try:
        import pandas as pd
        from prophet import Prophet
    except ImportError:
        return None
    logging.getLogger("cmdstanpy").disabled = True  # one INFO line per fit

    def forecast(history: Series, h: int, quantile: float) -> tuple[FloatArray, FloatArray]:
        recent = history.window(-round(PROPHET_HISTORY_S / history.step_s), None)
        at = pd.to_datetime(recent.centres_s() - recent.step_s / 2, unit="s")
        frame = pd.DataFrame({"ds": at[recent.observed], "y": recent.values[recent.observed]})
        model = Prophet(interval_width=2 * quantile - 1, daily_seasonality=True, weekly_seasonality=True)
        model.fit(frame)
        future = pd.DataFrame({"ds": pd.to_datetime(recent.end_s + recent.step_s * np.arange(h), unit="s")})
        out = model.predict(future)
        mean = np.maximum(out["yhat"].to_numpy(dtype=np.float64), 0.0)
        return mean, np.maximum(out["yhat_upper"].to_numpy(dtype=np.float64), 0.0)

    return forecast


def run_one(spec: Spec, data: Path, options: dict[str, Any]) -> tuple[Spec, int, BacktestResult, float]:
    series = load(spec, data)
    config = ForecastConfig(
        horizon_steps=max(1, round(options["horizon_s"] / spec.step_s)),
        combination=options["combination"],
        weekly=not options["no_weekly"],
    )
    prophet = None if options["no_prophet"] else prophet_baseline()
    started = time.perf_counter()
    result = backtest(
        series,
        config,
        quantile=options["quantile"],
        origins=options["origins"],
        baselines={"prophet": prophet} if prophet else None,
    )
    return spec, len(series), result, time.perf_counter() - started


def tables(rows: list[tuple[Spec, int, BacktestResult, float]], quantile: float) -> str:
    present = [m for m in MODELS if any(m in r.scores for _, _, r, _ in rows)]
    lines = [
        f"MASE (lower is better; scaled by the in-sample seasonal-naive MAE) and coverage at q = {quantile}",
        "",
    ]
    lines.append("| series | points | origins | " + " | ".join(present) + " |")
    lines.append("|---" * (3 + len(present)) + "|")
    for spec, n, result, _ in rows:
        cells = [_cell(result, m, "mase") for m in present]
        lines.append(f"| {spec.name} | {n} | {result.origins} | " + " | ".join(cells) + " |")
    lines += ["", f"Coverage of the upper bound (nominal {quantile})", ""]
    lines.append("| series | " + " | ".join(present) + " |")
    lines.append("|---" * (1 + len(present)) + "|")
    for spec, _, result, _ in rows:
        lines.append(f"| {spec.name} | " + " | ".join(_cell(result, m, "coverage") for m in present) + " |")
    lines += ["", "Provisioning (forecaster vs seasonal naive) and cost", ""]
    lines.append(
        "| series | pinball fc | pinball snaive | under-rate fc | under-rate snaive | answered | select s | refit s |"
    )
    lines.append("|---" * 8 + "|")
    for spec, _, result, _ in rows:
        answered = ", ".join(f"{k} {v}" for k, v in sorted(result.answered.items()))
        lines.append(
            f"| {spec.name} | {_cell(result, 'forecaster', 'pinball')} | {_cell(result, 'seasonal_naive', 'pinball')}"
            f" | {_cell(result, 'forecaster', 'under_rate')} | {_cell(result, 'seasonal_naive', 'under_rate')}"
            f" | {answered} | {result.select_s:.2f} | {result.refit_s:.2f} |"
        )
    lines += ["", *summary(rows, quantile)]
    return "\n".join(lines) + "\n"


def summary(rows: list[tuple[Spec, int, BacktestResult, float]], quantile: float) -> list[str]:
    out = []
    for rival in ("seasonal_naive", "prophet"):
        pairs = [
            (r.scores["ensemble"].mase, r.scores[rival].mase) for _, _, r, _ in rows if rival in r.scores
        ]
        if pairs:
            wins = sum(ours < theirs for ours, theirs in pairs)
            out.append(f"- ensemble MASE below {rival}'s on {wins} of {len(pairs)} series")
    coverage = [r.scores["forecaster"].coverage for _, _, r, _ in rows if "forecaster" in r.scores]
    within = sum(abs(c - quantile) <= 0.03 for c in coverage)
    out.append(
        f"- forecaster coverage: mean {np.mean(coverage):.3f}, range {min(coverage):.3f}-{max(coverage):.3f}, "
        f"within +-3 points of {quantile} on {within} of {len(coverage)} series"
    )
    return out


def _cell(result: BacktestResult, model: str, field: str) -> str:
    scores = result.scores.get(model)
    return "-" if scores is None else f"{getattr(scores, field):.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--series", help="comma-separated names (default: all)")
    parser.add_argument("--origins", type=int, default=72, help="rolling origins per series (default 72)")
    parser.add_argument("--quick", action="store_true", help="8 origins per series")
    parser.add_argument("--quantile", type=float, default=0.9)
    parser.add_argument("--horizon-s", type=float, default=7200.0)
    parser.add_argument("--combination", default="median", choices=("median", "inverse_error"))
    parser.add_argument("--no-weekly", action="store_true", help="no weekly season in MSTL")
    parser.add_argument("--no-prophet", action="store_true", help="skip Prophet even if installed")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--out", type=Path, help="write the markdown tables here")
    args = parser.parse_args(argv)
    options = {
        "origins": 8 if args.quick else args.origins,
        "quantile": args.quantile,
        "horizon_s": args.horizon_s,
        "combination": args.combination,
        "no_weekly": args.no_weekly,
        "no_prophet": args.no_prophet,
    }
    if not args.no_prophet and prophet_baseline() is None:
        print("prophet is not installed: compared without it", file=sys.stderr)
    specs = select(args.series)
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_one, spec, args.data, options) for spec in specs]
        for future in futures:
            rows.append(future.result())
            spec, n, result, seconds = rows[-1]
            print(f"{spec.name}: {n} points, {result.origins} origins, {seconds:.0f} s", file=sys.stderr)
    text = tables(rows, args.quantile)
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
