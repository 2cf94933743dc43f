"""`prescaler backtest`: how well would the forecaster have done on this trace?

Rolling-origin evaluation of the ensemble, the simple model and each member on a user's trace (a
`timestamp,value` CSV, or any format `scaler.traces.load_trace` reads): MASE, pinball loss at the
quantile, interval coverage and the under-provision rate, as a table, a JSON file and a plot of the
scored origins.

Rows: `forecaster` is what the scaler would have served (whichever model answered at each origin,
fallbacks included, at the adaptive conformal quantile); `ensemble` is the combination of the
members; the simple model and each member follow.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaler.cli_types import output_file
from scaler.units import format_duration, parse_duration_s

if TYPE_CHECKING:  # the forecasting libraries take seconds to import: only when a backtest runs
    from forecasting import BacktestResult, ForecastConfig, Series
    from forecasting.base import FloatArray

MIN_STEP_S = 300.0
"""The default step: the trace's own spacing, but no finer than the scaler's coarse fitting step."""
FORECASTER = "forecaster"
ENSEMBLE = "ensemble"

ScoredPath = tuple[int, "FloatArray", "FloatArray"]
"""(origin index, mean, upper) that `forecaster` served at one scored origin."""


class UsageError(ValueError):
    """A flag's value that cannot be used; names the flag, the value and what was expected."""


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
    parser.add_argument(
        "--step",
        help="step the models are fitted at (default: the trace's spacing, at least 5m)",
    )
    parser.add_argument(
        "--horizon",
        default="3m",
        help="how far ahead to score: the lead time (default 3m; rounded up to whole steps)",
    )
    parser.add_argument(
        "--quantile", type=float, default=0.9, help="upper quantile provisioned (default 0.9)"
    )
    parser.add_argument("--origins", type=int, default=24, help="forecast origins scored (default 24)")
    parser.add_argument("--seasonality", default="daily,weekly", help="daily,weekly (default), daily or none")
    parser.add_argument("--json", type=Path, required=True, help="write the scores here")
    parser.add_argument("--plot", type=Path, help="write a PNG of the scored origins' forecasts here")
    parser.set_defaults(func=run)


def _duration(flag: str, text: str) -> float:
    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise UsageError(f"{flag} `{text}`: {exc}") from None


def horizon_steps(horizon_s: float, step_s: float) -> tuple[int, str]:
    """Whole steps scored for `horizon_s`, rounded up, and a note when rounding changed it."""
    steps = max(1, math.ceil(horizon_s / step_s - 1e-9))
    if math.isclose(steps * step_s, horizon_s):
        return steps, ""
    return steps, (
        f"--horizon {format_duration(horizon_s)} is not a whole number of --step {format_duration(step_s)}: "
        f"scoring {steps} step{'s' if steps > 1 else ''} ahead ({format_duration(steps * step_s)})"
    )


def _config(step_s: float, steps: int, seasonality: str) -> ForecastConfig:
    from forecasting import ForecastConfig

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


def report(
    result: BacktestResult, quantile: float, seconds: float, series: Series, trace: str = ""
) -> dict[str, Any]:
    """The JSON document: scores by model, cost, and what answered."""
    # `forecaster` first (what would have been served), then the ensemble, then the rest by name.
    order = sorted(result.scores, key=lambda n: (n != FORECASTER, n != ENSEMBLE, n))
    models = {
        name: {
            "mase": result.scores[name].mase,
            "coverage": result.scores[name].coverage,
            "pinball": result.scores[name].pinball,
            "under_provision_rate": result.scores[name].under_rate,
            "origins": result.scores[name].origins,
        }
        for name in order
    }
    fits = result.origins + result.skipped
    return {
        "trace": trace,
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


def _answered(answered: Mapping[str, int]) -> str:
    total = sum(answered.values())
    parts = ", ".join(f"{name} {count}" for name, count in sorted(answered.items(), key=lambda i: -i[1]))
    return f"{parts} (of {total} origins)" if parts else "none"


def table(document: Mapping[str, Any]) -> str:
    """The scores as a table, with a word on what the rows are."""
    models: Mapping[str, Mapping[str, float]] = document["models"]
    lines = [f"{'model':<16} {'MASE':>7} {'coverage':>9} {'pinball':>8} {'under-prov':>10}"]
    for name, s in models.items():
        lines.append(
            f"{name:<16} {s['mase']:>7.3f} {s['coverage']:>9.3f} {s['pinball']:>8.3f} "
            f"{s['under_provision_rate']:>10.3f}"
        )
    lines.append(
        f"{document['origins']} origins at q={document['quantile']}; "
        f"{document['fit_seconds_per_series']:.2f} s per fit; answered by: {_answered(document['answered'])}"
    )
    if FORECASTER in models:
        lines.append(
            "forecaster: what the scaler would have served, the model that answered at each origin "
            "(fallbacks included) at the adaptive conformal quantile; the other rows at the plain quantile."
        )
        if ENSEMBLE in models and models[FORECASTER] == models[ENSEMBLE]:
            lines.append(
                "  Identical to `ensemble` here: the ensemble answered at every scored origin, and the "
                "adaptive quantile gave the same bounds as the plain one."
            )
    return "\n".join(lines)


def plot(path: Path, series: Series, paths: list[ScoredPath], document: Mapping[str, Any]) -> None:
    """The trace around the scored origins, and at each origin the forecast the scaler would have
    served (mean, and the band up to the quantile), with the forecaster's scores in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from forecasting.base import DAY_S

    quantile = document["quantile"]
    step = series.step_s
    first = min((origin for origin, _, _ in paths), default=max(0, len(series) - 1))
    start = max(0, first - round(DAY_S / step / 4))
    hours = (series.start_s + step * (np.arange(len(series)) + 0.5) - series.end_s) / 3600
    figure, axes = plt.subplots(figsize=(11, 4.5))
    shown = slice(start, len(series))
    actual = np.where(series.observed[shown], series.values[shown], np.nan)
    axes.plot(hours[shown], actual, color="0.35", lw=1, label=f"actual ({document['trace']})")
    for i, (origin, mean, upper) in enumerate(paths):
        x = hours[origin : origin + mean.size]
        first_label = i == 0
        axes.axvline(hours[origin] - step / 7200, color="0.85", lw=0.6, zorder=0)
        if mean.size == 1:
            axes.vlines(x, mean, upper, color="tab:blue", alpha=0.5, lw=3)
            axes.plot(x, mean, "o", ms=3, color="tab:blue", label="forecast mean" if first_label else None)
            axes.plot(
                x, upper, "_", ms=8, color="tab:orange", label=f"q={quantile} bound" if first_label else None
            )
        else:
            axes.fill_between(x, mean, upper, color="tab:blue", alpha=0.2, lw=0)
            axes.plot(x, mean, color="tab:blue", lw=1.2, label="forecast mean" if first_label else None)
            axes.plot(
                x, upper, color="tab:orange", lw=1, label=f"q={quantile} bound" if first_label else None
            )
    scores = document["models"].get(FORECASTER)
    horizon = format_duration(document["horizon_steps"] * step)
    title = (
        f"{document['trace']}: the forecaster at {len(paths)} scored origins, "
        f"{horizon} ahead at {format_duration(step)} steps"
    )
    if scores is not None:
        title += (
            f"\nMASE {scores['mase']:.2f} (below 1 beats repeating yesterday) · coverage "
            f"{scores['coverage']:.2f} (target {quantile}) · under-provisioned "
            f"{scores['under_provision_rate']:.1%} · pinball {scores['pinball']:.2f}"
        )
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("hours before the end of the trace (grey lines: forecast origins)")
    axes.set_ylabel("load (the trace's units)")
    axes.legend(loc="best", fontsize=8, framealpha=0.9)  # where it hides the least of the trace
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from scaler.traces import load_trace

    try:
        given_step_s = _duration("--step", args.step) if args.step is not None else None
        horizon_s = _duration("--horizon", args.horizon)
        if not 0.5 <= args.quantile < 1:
            raise UsageError(f"--quantile {args.quantile}: expected a quantile in [0.5, 1)")
        if args.seasonality not in ("daily,weekly", "daily", "none"):
            raise UsageError(f"--seasonality {args.seasonality}: expected daily,weekly, daily or none")
        if args.origins < 1:
            raise UsageError(f"--origins {args.origins}: expected at least 1")
        output_file("--json", args.json)
        if args.plot is not None:
            output_file("--plot", args.plot)
        trace = load_trace(args.trace)
        if given_step_s is not None and given_step_s < trace.step_s * 0.99:
            raise UsageError(
                f"--step {format_duration(given_step_s)} is finer than the trace's spacing of "
                f"{format_duration(trace.step_s)}: every step between two samples would be a gap; "
                f"use --step {format_duration(trace.step_s)} or coarser"
            )
    except ValueError as exc:  # UsageError, TraceError, and output_file's
        print(f"prescaler backtest: {exc}", file=sys.stderr)
        return 2
    from forecasting import backtest, prepare

    step_s = given_step_s if given_step_s is not None else max(MIN_STEP_S, trace.step_s)
    steps, rounded = horizon_steps(horizon_s, step_s)
    config = _config(step_s, steps, args.seasonality)
    series = prepare(trace.at_s, trace.values, step_s, season_steps=config.season_steps(step_s))
    chosen = "" if given_step_s is not None else " (the trace's spacing, at least 5m; --step to change)"
    print(
        f"{trace.name}: {len(series)} points at {format_duration(step_s)} steps{chosen}; scoring "
        f"{format_duration(steps * step_s)} ahead ({steps} step{'s' if steps > 1 else ''}) at q={args.quantile}",
        file=sys.stderr,
    )
    if rounded:
        print(f"note: {rounded}", file=sys.stderr)
    paths: list[ScoredPath] = []
    started = time.perf_counter()
    result = backtest(
        series,
        config,
        quantile=args.quantile,
        origins=args.origins,
        progress=_progress,
        record=lambda origin, mean, upper: paths.append((origin, mean, upper)),
    )
    document = report(result, args.quantile, time.perf_counter() - started, series, trace.name)
    document["horizon_steps"] = steps
    scored = bool(document["models"])
    if not scored:
        print(
            f"prescaler backtest: no origin could be scored: {len(series)} points at "
            f"{format_duration(step_s)} ({format_duration(len(series) * step_s)}) leave no origin with "
            f"a model's history before it and --horizon {format_duration(steps * step_s)} after it"
            + "".join(f"; {note}" for note in series.notes),
            file=sys.stderr,
        )
    else:
        print(table(document))
    # Strict JSON: what could not be measured is null, never NaN.
    args.json.write_text(json.dumps(_nulls(document), indent=2, allow_nan=False) + "\n")
    print(f"scores: {args.json}")
    if args.plot is not None and scored:
        plot(args.plot, series, paths, document)
        print(f"plot: {args.plot}")
    return 0 if scored else 1


def _nulls(value: object) -> object:
    """`value` with every non-finite number (NaN, infinity) as None, and numpy numbers as floats."""
    if isinstance(value, dict):
        return {key: _nulls(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nulls(item) for item in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None
