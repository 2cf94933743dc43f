"""Fit the ensemble on a prepared series, calibrate it on rolling origins, and pick what answers.

The menu adapts to the history (m = the season in steps):

- fewer than `min_points` points, or less than one season: no model (the caller stays reactive);
- fewer than two seasons before the first calibration origin: non-seasonal members only, with `naive`
  (last value) as the simple model;
- two seasons or more: `seasonal_naive` plus the configured members; MSTL also gets the weekly season
  once two weeks are there.

A constant history is forecast as that constant (no model is fitted: some divide by its variance).

Every member is fitted on the history before the first of J calibration origins, then forecasts from
each origin (the last `horizon_steps` points are after the last one) and from the end of the series.
Those out-of-sample errors serve three purposes: the members' weights, the conformal margins
(forecasting.conformal) and the fallback test. The seasons in the menu are those the history before
the first origin supports (two days of calibration at 5 min: weekly MSTL needs 16 days in all).

Combination rule: the median of the members' forecasts (with four members, the mean of the middle two).
The alternative, weights inversely proportional to each member's rolling-origin MAE, was backtested on
the same 8 shared traces (benchmarks/forecast_accuracy.py, 24 origins, 2 h ahead): ensemble MASE
median vs inverse-error 0.456/0.397 (nyc_taxi), 0.350/0.360 (ec2_cpu), 1.819/1.891 (rds_cpu),
0.667/0.666 (elb), 1.143/1.100 (occupancy), 0.616/0.627 (twitter), 1.149/1.096 (servegen),
0.518/0.527 (nasa): four wins each, and the weights' 1.4 % geometric-mean gain comes from nyc_taxi
alone (without it the median is 0.2 % better). The median needs no weights estimated from 48 noisy
origins, ignores one member gone wild, and beat Prophet on 5 of 8 series against 4 for the weights.
The weighted rule stays available (`ForecastConfig.combination = "inverse_error"`).

Fallback chain: ensemble -> the simple model -> none. The simple model answers when every other member
failed or was skipped for time, or when the ensemble's rolling-origin MAE is worse than the simple
model's on the same origins; no model answers when the simple one cannot (history too short to
calibrate). Each reason is recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from forecasting.base import Candidate, FloatArray, ForecastConfig, IntArray, MemberReport
from forecasting.models import Member, ModelError, fit_member
from forecasting.prepare import Series

WEEK_SEASONS = 7


@dataclass(frozen=True, slots=True)
class EnsembleFit:
    """The outcome of one fit: `model` names the candidate that answers (or is `none`)."""

    model: str
    reason: str
    candidates: Mapping[str, Candidate] = field(default_factory=dict)
    members: tuple[MemberReport, ...] = ()
    specs: Mapping[str, str] = field(default_factory=dict)
    origins: int = 0
    fit_s: float = 0.0
    reselected: bool = True
    """The Auto* selection ran; False when every member reused a kept spec."""

    @property
    def answer(self) -> Candidate | None:
        return self.candidates.get(self.model)


class _Calibration:
    """The rolling origins and the actuals after each of them."""

    def __init__(self, series: Series, origins: IntArray, horizon: int) -> None:
        self.origins = origins
        index = self.origins[:, None] + np.arange(horizon)[None, :]
        self.actuals = np.where(series.observed[index], series.values[index], np.nan)


def seasons_for(n: int, season: int, config: ForecastConfig) -> tuple[int, ...]:
    """The seasons `n` steps of history support: none, daily, or daily and weekly. Members are fitted
    on the history before the first calibration origin, so that is the `n` that counts."""
    if season < 2 or n < 2 * season:
        return ()
    if config.weekly and n >= 2 * WEEK_SEASONS * season:
        return (season, WEEK_SEASONS * season)
    return (season,)


def fit_ensemble(
    series: Series,
    config: ForecastConfig,
    specs: Mapping[str, str] | None = None,
    *,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
    fit: Callable[[str, FloatArray, tuple[int, ...], str | None, int], Member] = fit_member,
) -> EnsembleFit:
    """Fit, calibrate and combine the members on `series`; reuse selections found in `specs`.

    Members not started within `budget_s` seconds are skipped. `fit` fits one member (tests pass fakes).
    """
    started = clock()
    keep = max(1, round(config.max_history_s / series.step_s))
    series = series.window(-keep, None)
    y, n, h = series.values, len(series), config.horizon_steps
    season = config.season_steps(series.step_s)
    if n < max(config.min_points, season):
        need = max(config.min_points, season)
        return EnsembleFit("none", f"no model: needs at least {need} points (one season), has {n}")
    if np.ptp(y) == 0:
        constant = np.full(h, y[-1])
        reason = f"constant series: forecast the constant {y[-1]:g}"
        return EnsembleFit(
            "constant", reason, {"constant": Candidate("constant", constant, np.zeros((1, h)))}
        )
    calibration = _origins(series, config)
    if calibration is None:
        need = config.min_points + h + config.min_calibration_origins - 1
        return EnsembleFit("none", f"no model: calibrating needs at least {need} points, has {n}")
    until = int(calibration.origins[0])
    seasons = seasons_for(until, season, config)
    names = ["seasonal_naive", *(m for m in config.members if seasons or m != "mstl")]
    fitted: dict[str, tuple[FloatArray, FloatArray]] = {}
    reports = []
    for name in names:
        spent = clock() - started
        if fitted and budget_s is not None and spent > budget_s:
            reports.append(
                MemberReport(name, "", False, f"skipped: time budget {budget_s:g} s spent", 0.0, np.nan)
            )
            continue
        t0 = clock()
        try:
            member = fit(name, y, seasons, (specs or {}).get(name), until)
            paths, final = _forecasts(member, calibration.origins, n, h)
        except ModelError as exc:
            reports.append(MemberReport(name, "", False, str(exc), clock() - t0, np.nan))
            if name == "seasonal_naive":
                return EnsembleFit(
                    "none", f"no model: the simple model failed: {exc}", members=tuple(reports)
                )
            continue
        name = member.name
        mae = _mae(calibration.actuals - paths)
        reports.append(MemberReport(name, member.spec, True, "", clock() - t0, mae))
        fitted[name] = (paths, final)
    candidates = {
        name: Candidate(name, final, calibration.actuals - paths) for name, (paths, final) in fitted.items()
    }
    model, reason, ensemble = _combine(config, fitted, reports, calibration, candidates[reports[0].name])
    if ensemble is not None:
        candidates["ensemble"] = ensemble
    chosen = {r.name: r.spec for r in reports if r.ok}
    reused = bool(specs) and all(spec == (specs or {}).get(name) for name, spec in chosen.items())
    elapsed = clock() - started
    return EnsembleFit(
        model, reason, candidates, tuple(reports), chosen, calibration.origins.size, elapsed, not reused
    )


def _origins(series: Series, config: ForecastConfig) -> _Calibration | None:
    n, h = len(series), config.horizon_steps
    room = n - h - config.min_points
    if room < 0:
        return None
    stride = config.calibration_stride_steps or max(1, config.season_steps(series.step_s) // 24)
    if room // stride + 1 < config.calibration_origins:
        stride = max(1, room // (config.calibration_origins - 1))
    count = min(config.calibration_origins, room // stride + 1)
    if count < config.min_calibration_origins:
        return None
    origins = (n - h - stride * np.arange(count)[::-1]).astype(np.int64)
    return _Calibration(series, origins, h)


def _forecasts(member: Member, origins: IntArray, n: int, h: int) -> tuple[FloatArray, FloatArray]:
    paths = np.stack([member.forecast_at(int(o), h) for o in origins])
    return np.maximum(paths, 0.0), np.maximum(member.forecast_at(n, h), 0.0)


def _mae(errors: FloatArray) -> float:
    scored = np.abs(errors[np.isfinite(errors)])
    return float(scored.mean()) if scored.size else float("nan")


def _combine(
    config: ForecastConfig,
    fitted: dict[str, tuple[FloatArray, FloatArray]],
    reports: list[MemberReport],
    calibration: _Calibration,
    simple: Candidate,
) -> tuple[str, str, Candidate | None]:
    """(the model that answers, why, the ensemble candidate if there is one)."""
    failed = "; ".join(f"{r.name}: {r.reason}" for r in reports if not r.ok)
    suffix = f" ({failed})" if failed else ""
    if len(fitted) < 2:
        return simple.name, f"{simple.name}: every other member failed{suffix}", None
    names = list(fitted)
    paths = np.stack([fitted[m][0] for m in names])
    finals = np.stack([fitted[m][1] for m in names])
    if config.combination == "median":
        path, final = np.median(paths, axis=0), np.median(finals, axis=0)
    else:
        maes = np.array([next(r.mae for r in reports if r.name == m) for m in names])
        weights = 1.0 / np.maximum(np.nan_to_num(maes, nan=np.inf), 1e-12)
        weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(names), 1 / len(names))
        path, final = np.tensordot(weights, paths, axes=1), np.tensordot(weights, finals, axes=1)
    ensemble = Candidate("ensemble", final, calibration.actuals - path)
    ensemble_mae, simple_mae = _mae(ensemble.residuals), _mae(simple.residuals)
    if ensemble_mae > simple_mae:
        why = f"the ensemble's rolling MAE {ensemble_mae:.4g} is worse than {simple_mae:.4g}"
        return simple.name, f"{simple.name}: {why}{suffix}", ensemble
    return "ensemble", f"{config.combination} of {', '.join(names)}{suffix}", ensemble
