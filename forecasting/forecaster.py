"""`Forecaster`: one target's fitted forecasting state, small enough to pickle to a worker and back.

The refresher calls, per target:

- `fit(coarse_series)` in a worker process every few minutes (expensive: 0.3-1.3 s at 5 min / 7 days).
  The Auto* model selection runs at the first fit and again once the kept selection is older than
  `ForecastConfig.reselect_after_s`; the fits in between reuse the selected specs and re-estimate only
  their parameters, which is what keeps 1,000 targets within minutes on two cores.
- `update(fine_recent)` then `forecast(horizon_steps, quantile)` at every poll (cheap: no model runs).

What is kept after a fit is only what forecasting needs: the chosen forecast, its rolling-origin
errors, the last coarse values and the selected specs (a few kB); not the statsforecast models.

Adaptive conformal (Gibbs and Candes, 2021): the conformal margins are calibrated on the two days
before each fit, and load drifts (a noisier week, a new client), so a fixed quantile of past errors
covers more or less than asked on the days that follow. Each fit therefore first scores the previous
fit's upper bound on the actuals observed since, and moves the quantile it serves by
`ForecastConfig.adapt_rate` per miss minus `(1 - quantile)` per actual scored: more misses than
asked raise it, fewer lower it, so the long-run coverage tends to the quantile asked whatever the
drift. Asking for another quantile starts again from no shift.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forecasting.base import FloatArray, Forecast, ForecastConfig
from forecasting.conformal import DEFAULT_QUANTILE, check_quantile, margins, upper_bound
from forecasting.ensemble import EnsembleFit, fit_ensemble
from forecasting.finescale import CoarsePath, FineLevel, fine_forecast, fine_level
from forecasting.models import FitMemo, fit_member
from forecasting.prepare import Series

RECENT_STEPS = 4
# The quantile served is kept within these bounds (beyond 0.999 the margin is the largest error).
LOWEST_QUANTILE, HIGHEST_QUANTILE = 0.5, 0.999


@dataclass(frozen=True, slots=True)
class _Fitted:
    model: str
    reason: str
    step_s: float
    end_s: float
    recent: FloatArray
    mean: FloatArray
    residuals: FloatArray


class Forecaster:
    """Fit at a coarse step, forecast at the coarse step or, after `update`, at the fine one."""

    def __init__(
        self,
        config: ForecastConfig | None = None,
        *,
        levels: dict[tuple[object, ...], FineLevel] | None = None,
        members: FitMemo | None = None,
    ) -> None:
        """`levels`: where to keep the quantile-free part of fine forecasts (`FineLevel`) by what it
        is computed from, for forecasters that forecast the same fits and samples at other
        quantiles (a simulated sweep); None computes it at every forecast. `members`: where to keep
        the members' fits by what they are fitted on (`forecasting.models.fit_member`), for
        forecasters whose histories share a past (simulated runs with other seeds); None: not kept."""
        self.config = config or ForecastConfig()
        self._levels = levels
        self._members = members
        self._specs: dict[str, str] = {}
        self._selected_at_s = -math.inf
        self._fitted: _Fitted | None = None
        self._fine: Series | None = None
        self._asked: float | None = None
        self._shift = 0.0
        self._margins: tuple[_Fitted, float, FloatArray] | None = None

    @property
    def model(self) -> str:
        """What answers forecasts now: `ensemble`, a fallback, or `none`."""
        return self._fitted.model if self._fitted else "none"

    def served_quantile(self, quantile: float) -> float:
        """The quantile of past errors served for an ask of `quantile`: `quantile` plus the shift
        adaptive conformal has learned for it (asking another quantile resets the shift)."""
        check_quantile(quantile)
        if quantile != self._asked:
            self._asked, self._shift = quantile, 0.0
        return min(max(quantile + self._shift, LOWEST_QUANTILE), HIGHEST_QUANTILE)

    @property
    def specs(self) -> dict[str, str]:
        """The kept model selections, by member."""
        return dict(self._specs)

    def fit(
        self,
        series: Series,
        *,
        budget_s: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> EnsembleFit:
        """Fit on the coarse `series`; reselect models only when the kept selection is too old.

        With `budget_s`, members not started by then are skipped (the simple model always runs).
        """
        self._adapt(series)
        stale = series.end_s - self._selected_at_s >= self.config.reselect_after_s
        specs = None if stale or not self._specs else self._specs
        fit = fit_member if self._members is None else functools.partial(fit_member, memo=self._members)
        result = fit_ensemble(series, self.config, specs, budget_s=budget_s, clock=clock, fit=fit)
        if result.specs:
            self._specs = dict(result.specs)
            if result.reselected:
                self._selected_at_s = series.end_s
        answer = result.answer
        tail = series.values[-RECENT_STEPS:].copy()
        if answer is None:
            empty = np.zeros(0)
            self._fitted = _Fitted(
                "none", result.reason, series.step_s, series.end_s, tail, empty, empty[:, None]
            )
        else:
            self._fitted = _Fitted(
                result.model, result.reason, series.step_s, series.end_s, tail, answer.mean, answer.residuals
            )
        return result

    def _adapt(self, series: Series) -> None:
        """Score the previous fit's upper bound on the actuals `series` holds after it; move the shift."""
        fitted, asked, rate = self._fitted, self._asked, self.config.adapt_rate
        if fitted is None or fitted.model == "none" or asked is None or rate == 0:
            return
        if fitted.step_s != series.step_s:
            return
        first = round((fitted.end_s - series.start_s) / series.step_s)
        count = min(fitted.mean.size, len(series) - first)
        if first < 0 or count <= 0:
            return
        seen = series.observed[first : first + count]
        upper = upper_bound(fitted.mean[:count], fitted.residuals, self.served_quantile(asked))
        missed = (series.values[first : first + count] > upper)[seen]
        shift = self._shift + rate * (float(missed.sum()) - (1 - asked) * missed.size)
        self._shift = min(max(shift, LOWEST_QUANTILE - asked), HIGHEST_QUANTILE - asked)

    def update(self, fine_recent: Series) -> None:
        """Keep the fine-step recent series: later forecasts are at its step, starting after it."""
        self._fine = fine_recent if len(fine_recent) else None

    def forecast(self, horizon_steps: int, quantile: float = DEFAULT_QUANTILE) -> Forecast:
        """The mean and calibrated upper `quantile` for the next `horizon_steps` steps."""
        served = self.served_quantile(quantile)
        if horizon_steps < 1:
            raise ValueError(f"horizon_steps is {horizon_steps}; it must be >= 1")
        fitted, fine = self._fitted, self._fine
        if fitted is None:
            return self._none("no model: not fitted yet", horizon_steps, quantile)
        if fitted.model == "none":
            return self._none(fitted.reason, horizon_steps, quantile)
        if fine is None:
            if horizon_steps > fitted.mean.size:
                raise ValueError(
                    f"horizon_steps is {horizon_steps}; the fit forecast {fitted.mean.size} steps of "
                    f"{fitted.step_s:g} s (ForecastConfig.horizon_steps)"
                )
            mean = fitted.mean[:horizon_steps]
            upper = upper_bound(mean, fitted.residuals, served)
            reason = f"{fitted.reason}{_served(quantile, served)}"
            return Forecast(mean, upper, quantile, fitted.model, reason, fitted.step_s, fitted.end_s)
        path = CoarsePath(
            fitted.step_s, fitted.end_s, fitted.recent, fitted.mean, self._margin(fitted, served)
        )
        result = fine_forecast(
            path,
            fine,
            horizon_steps,
            quantile,
            level_window_s=self.config.level_window_s,
            level_half_life_s=self.config.level_half_life_s,
            trend=self.config.level_trend,
            reanchor=self.config.reanchor_margins,
            level=self._level(path, fine, horizon_steps),
        )
        if result is None:
            reason = f"no model: the coarse forecast ends at {path.horizon_end_s:.0f}; refit"
            return self._none(reason, horizon_steps, quantile)
        reason = (
            f"{fitted.reason}{_served(quantile, served)}; "
            f"level {result.level:+.4g} from {result.points} fine points"
        )
        return Forecast(result.mean, result.upper, quantile, fitted.model, reason, fine.step_s, fine.end_s)

    def _level(self, path: CoarsePath, fine: Series, horizon_steps: int) -> FineLevel | None:
        """`fine_level` from `levels`, computed and kept there on a miss; None without `levels`."""
        levels = self._levels
        if levels is None:
            return None
        config = self.config
        key = (
            path.step_s,
            path.end_s,
            path.recent.tobytes(),
            path.mean.tobytes(),
            fine.start_s,
            fine.step_s,
            fine.values.tobytes(),
            fine.observed.tobytes(),
            horizon_steps,
            config.level_window_s,
            config.level_half_life_s,
            config.level_trend,
        )
        found = levels.get(key)
        if found is None:
            found = fine_level(
                path,
                fine,
                horizon_steps,
                level_window_s=config.level_window_s,
                level_half_life_s=config.level_half_life_s,
                trend=config.level_trend,
            )
            if found is not None:
                levels[key] = found
        return found

    def _margin(self, fitted: _Fitted, served: float) -> FloatArray:
        """`margins` of the fit at the served quantile, kept until either changes (forecasts at every
        poll between two fits ask for the same)."""
        kept = self._margins
        if kept is None or kept[0] is not fitted or kept[1] != served:
            kept = self._margins = (fitted, served, margins(fitted.residuals, served))
        return kept[2]

    def _none(self, reason: str, horizon_steps: int, quantile: float) -> Forecast:
        """No forecast: the last observed value held flat, so a caller that ignores `model` is reactive."""
        fine, fitted = self._fine, self._fitted
        if fine is not None:
            last, step_s, start_s = fine.values[-1], fine.step_s, fine.end_s
        elif fitted is not None:
            last = fitted.recent[-1] if fitted.recent.size else 0.0
            step_s, start_s = fitted.step_s, fitted.end_s
        else:
            last, step_s, start_s = 0.0, 0.0, 0.0
        flat = np.full(horizon_steps, float(last))
        return Forecast(flat, flat.copy(), quantile, "none", reason, step_s, start_s)


def _served(asked: float, served: float) -> str:
    return "" if served == asked else f"; errors' quantile {served:.3g} served for {asked:g} (adaptive)"
