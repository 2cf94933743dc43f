"""`prescaler backtest`: how well would the forecaster have done on this trace?

Rolling-origin evaluation of the ensemble, the simple model and each member on a user's trace (a
`timestamp,value` CSV, or any format `scaler.traces.load_trace` reads): MASE, pinball loss at the
quantile, interval coverage and the under-provision rate, as a table, a JSON file and a plot.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from forecasting import BacktestResult, ForecastConfig, Forecaster, Series, backtest, prepare
from forecasting.base import DAY_S
from scaler.traces import TraceError, load_trace
from scaler.units import parse_duration_s


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "backtest",
        help="score the forecaster on a trace with a rolling-origin backtest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--trace", type=Path, required=True, help="timestamp,value CSV (or a shared-data format)"
    )
    parser.add_argument("--step", default="5m", help="step the models are fitted at (default 5m)")
    parser.add_argument("--horizon", default="3m", help="how far ahead to score: the lead time (default 3m)")
    parser.add_argument(
        "--quantile", type=float, default=0.9, help="upper quantile provisioned (default 0.9)"
    )
    parser.add_argument("--origins", type=int, default=24, help="forecast origins scored (default 24)")
    parser.add_argument("--seasonality", default="daily,weekly", help="daily,weekly (default), daily or none")
    parser.add_argument("--json", type=Path, required=True, help="write the scores here")
    parser.add_argument("--plot", type=Path, help="write a PNG of the history, forecast and band here")
    parser.set_defaults(func=run)


def _config(step_s: float, horizon_s: float, seasonality: str) -> ForecastConfig:
    steps = max(1, math.ceil(horizon_s / step_s))
    if seasonality == "none":
        return ForecastConfig(season_s=step_s, weekly=False, horizon_steps=steps)
    return ForecastConfig(weekly="weekly" in seasonality, horizon_steps=steps)


def _progress(done: int, total: int) -> None:
    width = 30
    filled = round(width * done / total)
    end = "\n" if done == total else ""
    print(
        f"\rbacktest [{'#' * filled}{'.' * (width - filled)}] {done}/{total} origins",
        end=end,
        file=sys.stderr,
    )


def report(result: BacktestResult, quantile: float, seconds: float, series: Series) -> dict[str, Any]:
    """The JSON document: scores by model, cost, and what answered."""
    models = {
        name: {
            "mase": scores.mase,
            "coverage": scores.coverage,
            "pinball": scores.pinball,
            "under_provision_rate": scores.under_rate,
            "origins": scores.origins,
        }
        for name, scores in sorted(result.scores.items())
    }
    fits = result.origins + result.skipped
    return {
        "models": models,
        "quantile": quantile,
        "origins": result.origins,
        "skipped_origins": result.skipped,
        "answered": result.answered,
        "fit_seconds_per_series": seconds / max(1, fits),
        "fit_seconds_with_selection": result.select_s,
        "fit_seconds_reusing_selection": result.refit_s,
        "points": len(series),
        "step_s": series.step_s,
        "notes": list(series.notes),
    }


def table(document: Mapping[str, Any]) -> str:
    lines = [
        f"{'model':<16} {'MASE':>7} {'coverage':>9} {'pinball':>8} {'under-prov':>10}",
    ]
    for name, s in document["models"].items():
        lines.append(
            f"{name:<16} {s['mase']:>7.3f} {s['coverage']:>9.3f} {s['pinball']:>8.3f} "
            f"{s['under_provision_rate']:>10.3f}"
        )
    lines.append(
        f"{document['origins']} origins at q={document['quantile']}; "
        f"{document['fit_seconds_per_series']:.2f} s per fit; answered: {document['answered']}"
    )
    return "\n".join(lines)


def plot(path: Path, series: Series, config: ForecastConfig, quantile: float) -> None:
    """History of the last days, and the forecast with its band from a fit on the whole trace."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = min(len(series), round(3 * DAY_S / series.step_s))
    recent = series.window(-shown, None)
    figure, axes = plt.subplots(figsize=(11, 4))
    hours = (recent.centres_s() - series.end_s) / 3600
    axes.plot(hours, recent.values, color="0.3", lw=1, label="history")
    # Six hours ahead, so the band's shape is visible, not only the scored horizon.
    horizon = max(config.horizon_steps, round(6 * 3600 / series.step_s))
    forecaster = Forecaster(dataclasses.replace(config, horizon_steps=horizon))
    forecaster.fit(series)
    forecast = forecaster.forecast(horizon, quantile)
    lead = (forecast.start_s + forecast.step_s * (np.arange(forecast.mean.size) + 0.5) - series.end_s) / 3600
    axes.plot(lead, forecast.mean, color="tab:blue", label=f"forecast ({forecast.model})")
    axes.fill_between(
        lead, forecast.mean, forecast.upper, color="tab:blue", alpha=0.25, label=f"up to q={quantile}"
    )
    axes.axvline(0, color="0.6", ls=":")
    axes.set_xlabel("hours from the end of the trace")
    axes.set_ylabel("load")
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        step_s = parse_duration_s(args.step)
        horizon_s = parse_duration_s(args.horizon)
        if not 0.5 <= args.quantile < 1:
            raise ValueError(f"--quantile {args.quantile}: expected a quantile in [0.5, 1)")
        if args.seasonality not in ("daily,weekly", "daily", "none"):
            raise ValueError(f"--seasonality {args.seasonality}: expected daily,weekly, daily or none")
        trace = load_trace(args.trace)
    except (ValueError, TraceError) as exc:
        print(f"prescaler backtest: {exc}", file=sys.stderr)
        return 2
    config = _config(step_s, horizon_s, args.seasonality)
    series = prepare(trace.at_s, trace.values, step_s, season_steps=config.season_steps(step_s))
    print(
        f"{trace.name}: {len(series)} points at {step_s:g} s, horizon {config.horizon_steps} steps",
        file=sys.stderr,
    )
    started = time.perf_counter()
    result = backtest(series, config, quantile=args.quantile, origins=args.origins, progress=_progress)
    document = report(result, args.quantile, time.perf_counter() - started, series)
    if not document["models"]:
        print(
            "prescaler backtest: no origin could be scored (history too short for a model)", file=sys.stderr
        )
    print(table(document))
    args.json.write_text(json.dumps(document, indent=2, default=float) + "\n")
    print(f"scores: {args.json}")
    if args.plot is not None:
        plot(args.plot, series, config, args.quantile)
        print(f"plot: {args.plot}")
    return 0
