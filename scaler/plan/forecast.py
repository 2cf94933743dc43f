"""The hourly demand forecast a plan is sized on: the project's ensemble at a one-hour step. Pure.

    trace (requests/s, any step) -> hourly mean rate (forecasting.prepare) + intra-hour peak factors
        -> cleaned (scaler.plan.clean: outage hours made missing, the level after the last shift)
        -> ensemble fitted with a weekly season (daily when the history is too short for it)
        -> one season ahead (mean, calibrated upper quantile), brought to the recent level,
           tiled over the horizon -> growth (the history's trend, or the user's)
        -> rolling backtest (MASE, coverage) on the cleaned history

Choices the ensemble does not make for a plan:

- **Season.** The main season is a week (168 h), so that the seasonal naive, AutoTheta and MSTL
  members all forecast the weekday/weekend shape; it needs two weeks before the first calibration
  origin plus a week of calibration (about 3.3 weeks). With less history the season is a day.
- **Beyond one season.** The ensemble is calibrated one season ahead (its conformal margins per lead
  hour); later seasons repeat that forecast, and their margins grow with the square root of the
  number of seasons ahead (a level that wanders like a random walk), so a 4-week plan's last week
  has twice the first week's margin.
- **Level.** The models follow the last hours (AutoETS and AutoTheta most), which is right for the
  scaler's next minutes and wrong for weeks: a dip in the last two hours would be planned for a month.
  Where the one-season forecast's mean is below the history's recent level (`recent_level`: the
  median of the last three weeks' means, or of the last week's daily means with less history), it
  is scaled up to it. Only up: a forecast above that level costs money, not the SLO, and a real drop
  is found as a level shift (`scaler.plan.clean`) before the fit. The rule (median of three weeks,
  up only) was chosen on the development windows of benchmarks/plan_fleet.py (`loop --dev`), against
  the mean of the last week and against scaling both ways, before the evaluated windows were run.
- **Growth.** A factor (1 + g)^(t / month) from the history's end: g from `--growth`, or fitted as
  the log-linear trend of the history's one-week moving average once it holds eight weeks. Over
  fewer weeks a "trend" is mostly the season of the year (August's holidays, September's return):
  on the NYC taxi windows of the benchmark the 5-week trends (-4 % to -7 % a month) made the plans
  miss more SLO hours than no trend, so none is applied below eight weeks.
- **Peaks within the hour.** The hourly mean hides ramps and bursts finer than an hour. Where the
  trace is finer, each hour's peak (its highest sample over its mean) is measured, and the upper
  quantile of that ratio per hour of day multiplies the upper bound the replicas are sized on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forecasting import ForecastConfig, Forecaster, Series, backtest, prepare
from forecasting.base import MEMBERS
from scaler.plan.clean import Shift, clean
from scaler.plan.queueing import FloatArray
from scaler.traces import Trace

HOUR_S = 3600.0
DAY_H = 24
WEEK_H = 168
MONTH_H = 730.0
# Calibration origins of the final fit, and the fewest usable.
ORIGINS, MIN_ORIGINS = 24, 8
BACKTEST_STRIDE_H = 24
MAX_HISTORY_H = 10 * WEEK_H
TREND_MIN_H = 8 * WEEK_H
LEVEL_WEEKS = 3

Progress = Callable[[str], None]


class HistoryError(ValueError):
    """The history cannot support a forecast; says how much it has and needs."""


@dataclass(frozen=True, slots=True)
class Backtest:
    """The forecaster's rolling-origin scores on the history, one season ahead."""

    mase: float
    """Mean absolute error / the in-sample seasonal naive's; below 1 beats repeating last season."""
    coverage: float
    """Share of actuals at or below the upper bound (should be about the quantile)."""
    origins: int


@dataclass(frozen=True, slots=True)
class Demand:
    """The hourly forecast over the horizon: hour j starts at `start_s + j * 3600`."""

    start_s: float
    mean: FloatArray
    """Forecast mean rate, requests/s, growth included."""
    upper: FloatArray
    """The rate the hour is sized for: the upper quantile of its mean rate x its peak factor."""
    quantile: float
    model: str
    reason: str
    season_h: int
    growth_per_month: float
    growth_source: str
    """`--growth` or `trend`."""
    peak_factor: FloatArray
    """Per hour of day (UTC), the intra-hour peak over mean applied to `upper`."""
    history: Series
    """The history as given (hourly, its last `MAX_HISTORY_H` hours at most)."""
    backtest: Backtest | None
    level_factor: float = 1.0
    """The factor applied to the ensemble's forecast: the recent level over its own, when above 1."""
    level_window_h: int = 0
    """Hours at the history's end the recent level is taken from (`recent_level`)."""
    missing_hours: int = 0
    """History hours absent from the input (long gaps filled from the previous season)."""
    suspect_hours: int = 0
    """History hours that look like an outage (`scaler.plan.clean.suspect_mask`), treated as missing."""
    suspect_until_s: float | None = None
    """The end of the last of them."""
    shift: Shift | None = None
    """The last level shift in the history, whose level the forecast follows."""
    fitted: Series | None = None
    """The history as fitted: cleaned (`scaler.plan.clean`); None where it is `history` unchanged."""


def hourly(trace: Trace, quantile: float) -> tuple[Series, FloatArray]:
    """The trace's hourly mean rate and its per-hour-of-day peak factors (ones for hourly or coarser data)."""
    at_s = np.asarray(trace.at_s, dtype=np.float64)
    values = np.asarray(trace.values, dtype=np.float64)
    # Long gaps are filled from the previous season and marked unobserved, where prepare can: from a
    # week earlier (same weekday) where that keeps at least as much history as a day earlier would (a
    # gap of days cannot be filled from the day before; prepare would drop the history before it).
    series = max((prepare(at_s, values, HOUR_S, season_steps=season) for season in (WEEK_H, DAY_H)), key=len)
    peak = np.ones(DAY_H)
    if trace.step_s < HOUR_S and at_s.size:
        good = np.isfinite(values) & (values >= 0)
        hour = np.floor(at_s[good] / HOUR_S).astype(np.int64)
        first = int(hour.min())
        index = hour - first
        count = np.bincount(index)
        total = np.bincount(index, weights=values[good])
        top = np.full(count.size, -np.inf)
        np.maximum.at(top, index, values[good])
        full = (count >= max(2, round(0.8 * HOUR_S / trace.step_s))) & (total > 0)
        ratio = np.where(full, top / np.where(total > 0, total / np.maximum(count, 1), 1.0), np.nan)
        of_day = (first + np.arange(count.size)) % DAY_H
        for h in range(DAY_H):
            seen = ratio[(of_day == h) & np.isfinite(ratio)]
            if seen.size:
                peak[h] = max(1.0, float(np.quantile(seen, quantile)))
    return series, peak


def trend_per_month(series: Series) -> float | None:
    """Growth per month from the log-linear trend of the one-week moving average; None under
    `TREND_MIN_H` of history."""
    y = series.values
    if y.size < TREND_MIN_H:
        return None
    smooth = np.convolve(y, np.ones(WEEK_H) / WEEK_H, mode="valid")
    if (smooth <= 0).any():
        return None
    t = np.arange(smooth.size, dtype=np.float64)
    slope = float(np.polyfit(t, np.log(smooth), 1)[0])
    return math.expm1(slope * MONTH_H)


def recent_level(series: Series) -> tuple[float, int]:
    """The level a plan is brought to and the hours at the history's end it is taken from: the median
    of the last three weeks' means (a holiday week among them does not set it), or with less history
    the median of the last week's daily means."""
    y = series.values
    if y.size >= LEVEL_WEEKS * WEEK_H:
        weeks = y[-LEVEL_WEEKS * WEEK_H :].reshape(LEVEL_WEEKS, WEEK_H).mean(axis=1)
        return float(np.median(weeks)), LEVEL_WEEKS * WEEK_H
    days = max(1, min(7, y.size // DAY_H))
    daily = y[-days * DAY_H :].reshape(days, DAY_H).mean(axis=1)
    return float(np.median(daily)), days * DAY_H


def config_for(n: int, *, members: tuple[str, ...] = MEMBERS) -> ForecastConfig:
    """The ensemble's configuration for `n` hours of history: weekly season if they allow, else daily."""
    for season in (WEEK_H, DAY_H):
        stride = max(1, season // 24)
        origins = min(ORIGINS, (n - 3 * season) // stride + 1)
        if origins >= MIN_ORIGINS:
            return ForecastConfig(
                season_s=season * HOUR_S,
                weekly=False,
                horizon_steps=season,
                members=members,
                calibration_origins=origins,
                calibration_stride_steps=stride,
                min_calibration_origins=MIN_ORIGINS,
                max_history_s=MAX_HISTORY_H * HOUR_S,
            )
    need = 3 * DAY_H + MIN_ORIGINS - 1
    raise HistoryError(
        f"the history holds {n} hours; a plan needs at least {need} (3.3 days; 3.3 weeks for a weekly season)"
    )


def _season_h(n: int) -> int | None:
    """The season `config_for(n)` chooses, None when `n` hours are too few for any."""
    try:
        return config_for(n).horizon_steps
    except HistoryError:
        return None


def forecast_demand(
    series: Series,
    peak_factor: FloatArray,
    *,
    horizon_h: int,
    quantile: float,
    growth_per_month: float | None = None,
    members: tuple[str, ...] = MEMBERS,
    backtest_origins: int = 4,
    progress: Progress | None = None,
) -> Demand:
    """Forecast `horizon_h` hours after `series` (hourly); score it with `backtest_origins` origins."""
    say = progress or (lambda _line: None)
    n = min(len(series), MAX_HISTORY_H)
    given = series.window(-n, None)
    cleaned = clean(given)
    series = cleaned.series
    config = config_for(n, members=members)
    season = config.horizon_steps
    shortest = n - season - BACKTEST_STRIDE_H * (backtest_origins - 1)
    while backtest_origins > 0 and _season_h(shortest) != season:
        backtest_origins -= 1
        shortest += BACKTEST_STRIDE_H
    if backtest_origins:
        config = config_for(shortest, members=members)
    scores = None
    if backtest_origins:
        say(f"backtest: {backtest_origins} origins, {season} h ahead each")
        result = backtest(
            series,
            config,
            quantile=quantile,
            origins=backtest_origins,
            stride_steps=BACKTEST_STRIDE_H,
            progress=lambda done, total: say(f"backtest origin {done}/{total}"),
        )
        got = result.scores.get("forecaster")
        if got is not None:
            scores = Backtest(got.mase, got.coverage, got.origins)
    say(f"fitting on {n} hours, season {season} h")
    forecaster = Forecaster(config)
    fitted = forecaster.fit(series)
    if fitted.answer is None:
        raise HistoryError(f"no forecast: {fitted.reason}")
    one = forecaster.forecast(season, quantile)
    # A plan spans weeks: not below the recent weeks' level, whatever the last hours did to the models'.
    recent, window_h = recent_level(series)
    expected = float(one.mean.mean())
    level = max(1.0, recent / expected) if expected > 0 else 1.0
    lead = np.arange(horizon_h)
    mean = one.mean[lead % season] * level
    margin = np.maximum(one.upper - one.mean, 0.0)[lead % season] * level * np.sqrt(1 + lead // season)
    if growth_per_month is None:
        trend = trend_per_month(series)
        growth, source = (
            (trend, "trend") if trend is not None else (0.0, "none: a trend needs eight weeks of history")
        )
    else:
        growth, source = growth_per_month, "--growth"
    factor = (1 + growth) ** ((lead + 0.5) / MONTH_H)
    start_s = series.end_s
    of_day = ((start_s / HOUR_S + lead) % DAY_H).astype(np.int64)
    upper = (mean + margin) * factor * peak_factor[of_day]
    return Demand(
        start_s,
        mean * factor,
        upper,
        quantile,
        one.model,
        one.reason,
        season,
        growth,
        source,
        peak_factor,
        given,
        scores,
        level,
        window_h,
        cleaned.missing_hours,
        cleaned.suspect_hours,
        cleaned.suspect_until_s,
        cleaned.shift,
        None if cleaned.series is given or np.array_equal(series.values, given.values) else series,
    )
