"""Rolling-origin backtest: fit on the history up to each origin, score the next `horizon_steps`.

One `Forecaster` walks the origins forward in time, as in production: it selects models at the first
origin and again once its selection is a day old, and refits with the kept selection in between.
Every candidate of each fit is scored: `forecaster` (what would have answered, fallbacks included,
its upper bound at the quantile adaptive conformal serves), `ensemble`, the simple model
(`seasonal_naive` or `naive`) and each member (their upper bounds at the plain conformal quantile).

Scores, over observed actuals only:

- `mase`: mean absolute error over the horizon divided by the in-sample MAE of the seasonal naive
  forecast (one season back; one step back without a season) on the history at that origin, averaged
  over origins. Below 1: better than repeating yesterday in-sample.
- `pinball`: the quantile loss of the upper bound at `quantile`, scaled like MASE.
- `coverage`: the share of actuals at or below the upper bound (should be about `quantile`).
- `under_rate`: the share of actuals above what the scaler would provision at the origin, the maximum
  of the upper bound over the horizon.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from forecasting.base import BoolArray, FloatArray, ForecastConfig
from forecasting.conformal import DEFAULT_QUANTILE, check_quantile, upper_bound
from forecasting.ensemble import seasons_for
from forecasting.forecaster import Forecaster
from forecasting.prepare import Series

Baseline = Callable[[Series, int, float], tuple[FloatArray, FloatArray]]
"""(history, horizon_steps, quantile) -> (mean, upper) for the steps after the history."""


class Scores(NamedTuple):
    mase: float
    pinball: float
    coverage: float
    under_rate: float
    origins: int


class BacktestResult(NamedTuple):
    scores: dict[str, Scores]
    """By model name."""
    origins: int
    """Origins scored; origins where no model answered are counted in `skipped`."""
    skipped: int
    answered: dict[str, int]
    """How often each model answered (the fallback chain at work)."""
    select_s: float
    """Mean seconds of a fit that ran model selection."""
    refit_s: float
    """Mean seconds of a fit that reused the kept selection (NaN if none did)."""


@dataclass
class _Tally:
    mase: list[float] = field(default_factory=list)
    pinball: list[float] = field(default_factory=list)
    covered: int = 0
    under: int = 0
    points: int = 0

    def add(
        self,
        actual: FloatArray,
        mean: FloatArray,
        upper: FloatArray,
        provisioned: float,
        scale: float,
        quantile: float,
    ) -> None:
        """One origin's observed actuals, the forecast for them and what the scaler provisions."""
        error = actual - upper
        self.mase.append(float(np.abs(actual - mean).mean()) / scale)
        self.pinball.append(float(np.maximum(quantile * error, (quantile - 1) * error).mean()) / scale)
        self.covered += int((actual <= upper).sum())
        self.under += int((actual > provisioned).sum())
        self.points += actual.size

    def scores(self) -> Scores:
        return Scores(
            float(np.mean(self.mase)),
            float(np.mean(self.pinball)),
            self.covered / self.points,
            self.under / self.points,
            len(self.mase),
        )


def backtest(
    series: Series,
    config: ForecastConfig | None = None,
    *,
    quantile: float = DEFAULT_QUANTILE,
    origins: int = 24,
    stride_steps: int | None = None,
    budget_s: float | None = None,
    baselines: Mapping[str, Baseline] | None = None,
    progress: Callable[[int, int], None] | None = None,
    record: Callable[[int, FloatArray, FloatArray], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> BacktestResult:
    """Score forecasts from `origins` origins `stride_steps` apart, the last one `horizon_steps` before
    the end. The default stride is the horizon or a 24th of the season, whichever is longer: the scored
    windows then follow one another without overlap, and every hour of a daily season is scored
    equally often once there are 24 origins. `baselines` are models outside the ensemble, scored on the
    same origins (a benchmark's Prophet). `progress(done, total)` is called after each origin;
    `record(origin, mean, upper)` with what `forecaster` served at each scored origin (a plot)."""
    config = config or ForecastConfig()
    check_quantile(quantile)
    h, n = config.horizon_steps, len(series)
    season = config.season_steps(series.step_s)
    stride = stride_steps or max(1, h, season // 24)
    cuts = [o for o in n - h - stride * np.arange(origins)[::-1] if o > 0]
    forecaster = Forecaster(config)
    tallies: dict[str, _Tally] = {}
    answered: dict[str, int] = {}
    fit_s: dict[bool, list[float]] = {True: [], False: []}
    scored = 0
    for done, origin in enumerate(cuts, start=1):
        train = series.window(0, int(origin))
        result = forecaster.fit(train, budget_s=budget_s, clock=clock)
        answered[result.model] = answered.get(result.model, 0) + 1
        observed = series.observed[origin : origin + h]
        scale = _naive_mae(train, season if seasons_for(len(train), season, config) else 1)
        if result.answer is not None and observed.any() and scale > 0:
            fit_s[result.reselected].append(result.fit_s)
            scored += 1
            actual = series.values[origin : origin + h]
            served = forecaster.served_quantile(quantile)
            named = {**result.candidates, "forecaster": result.answer}
            for name, candidate in named.items():
                # What answered is served as the scaler serves it (adaptive conformal included);
                # the candidates keep the plain conformal quantile, for comparison.
                asked = served if name == "forecaster" else quantile
                upper = upper_bound(candidate.mean, candidate.residuals, asked)
                if record is not None and name == "forecaster":
                    record(int(origin), candidate.mean, upper)
                _score(
                    tallies.setdefault(name, _Tally()),
                    candidate.mean,
                    upper,
                    actual,
                    observed,
                    scale,
                    quantile,
                )
            for name, baseline in (baselines or {}).items():
                mean, upper = baseline(train, h, quantile)
                _score(tallies.setdefault(name, _Tally()), mean, upper, actual, observed, scale, quantile)
        if progress is not None:
            progress(done, len(cuts))
    return BacktestResult(
        {name: tally.scores() for name, tally in tallies.items()},
        scored,
        len(cuts) - scored,
        answered,
        float(np.mean(fit_s[True])) if fit_s[True] else float("nan"),
        float(np.mean(fit_s[False])) if fit_s[False] else float("nan"),
    )


def _score(
    tally: _Tally,
    mean: FloatArray,
    upper: FloatArray,
    actual: FloatArray,
    observed: BoolArray,
    scale: float,
    quantile: float,
) -> None:
    tally.add(actual[observed], mean[observed], upper[observed], float(upper.max()), scale, quantile)


def _naive_mae(train: Series, lag: int) -> float:
    """In-sample MAE of the forecast `lag` steps back, over pairs of observed points."""
    if len(train) <= lag:
        return float("nan")
    both = train.observed[lag:] & train.observed[:-lag]
    if not both.any():
        return float("nan")
    return float(np.abs(train.values[lag:] - train.values[:-lag])[both].mean())
