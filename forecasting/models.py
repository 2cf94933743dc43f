"""The ensemble's members: statsforecast models behind one small interface, every call guarded.

A member is fitted once, on the history up to the first calibration origin (`fit_member(...,
until=)`), and then forecasts from any later origin (`forecast_at(origin, h)`), the last being the end
of the series: every calibration error is then truly out of sample (split conformal), and the
rolling-origin calibration in forecasting.ensemble, dozens of origins per fit, re-estimates nothing.
statsforecast's `forward` applies a fitted model's parameters to new data, which is exactly that, and
costs a filter pass (about 0.1 ms for ETS; for Theta, statsforecast's 12 ms at 2,016 points are
recomputed in 2-3, the same floats: forecasting.theta). The parameters are a
day or two old at the end of the series, which costs little: load changes its level, not its dynamics.

Selection is the expensive part (AutoTheta's four variants, AutoETS's search); the selected variant
comes back as `spec` and a later `fit_member(..., spec=...)` re-estimates only that variant's
parameters. A spec names the seasons it was selected for (`288|AAND`): for other seasons it is
ignored and the search reruns.

Members (m = the main season in steps):

- `seasonal_naive`: the value one season earlier (`naive`, the last value, when m = 1).
- `auto_ets`: AutoETS. statsforecast's ETS, like R's `ets`, cannot fit seasons longer than 24 steps,
  so with m > 24 it is non-seasonal: it tracks the level, which matters most a few steps ahead.
- `auto_theta`: AutoTheta with its classical seasonal decomposition, on the last 7 seasons: its cost
  grows faster than the length (`forward` decomposes again and its residual pass is quadratic; see
  forecasting.theta) and its single seasonal profile gains nothing from older weeks.
- `mstl`: MSTL (daily, plus weekly seasons when given) with an AutoETS trend. The MSTL class decomposes
  again on every `forward` (0.3 s), so the decomposition from the fit is kept: its seasonal
  components continue periodically past the fit's end, and the trend model's `forward` runs on the
  series minus them. (Seasonal components from a decomposition of the whole series would leak the
  future into the calibration origins through loess smoothing: MSTL covered 66 % at a nominal 90 % on
  nyc_taxi that way.) STL's loess is evaluated every `season / 10` points (R's default `jump`s): 9x
  faster at m = 288, and the seasonal components move by under 1e-4 of their range. A fresh trend
  model each fit: MSTL's default `trend_forecaster` instance is shared between all MSTL objects.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np
from statsforecast.models import MSTL, AutoETS, AutoTheta, SeasonalNaive

from forecasting.base import FloatArray, IntArray
from forecasting.theta import forward_mean

ETS_MAX_SEASON = 24
THETA_SEASONS = 7
T = TypeVar("T")


class ModelError(Exception):
    """A model could not be fitted or gave no usable forecast; the message names the model and why."""


class Member(Protocol):
    """A fitted ensemble member."""

    @property
    def name(self) -> str: ...

    @property
    def spec(self) -> str:
        """The selected variant, to pass back to `fit_member` on the next refit."""
        ...

    def forecast_at(self, origin: int, h: int) -> FloatArray:
        """Forecast steps `origin .. origin + h - 1` from the first `origin` points of the fitted series."""
        ...


def guarded(what: str, call: Callable[[], T]) -> T:
    """`call()`, with any exception turned into a ModelError naming `what`; warnings are silenced
    (optimisers in statsforecast warn on overflow while exploring parameters)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return call()
        except Exception as exc:
            raise ModelError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _finite(name: str, origin: int, values: Any, h: int) -> FloatArray:
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (h,) or not np.isfinite(out).all():
        raise ModelError(f"{name} forecast from origin {origin} is not {h} finite values")
    return out


def _reuse(spec: str | None, seasons: str) -> str | None:
    """The selection part of `spec` if it was made for `seasons`, else None (select again)."""
    if spec is None:
        return None
    key, _, selected = spec.partition("|")
    return selected if key == seasons and selected else None


class SeasonalNaiveMember:
    """The value one season earlier; with season 1, the last value."""

    def __init__(self, y: FloatArray, season: int) -> None:
        self._y = y
        self._model = SeasonalNaive(season_length=season)
        self.name = "seasonal_naive" if season > 1 else "naive"
        self.spec = f"{season}|"

    def forecast_at(self, origin: int, h: int) -> FloatArray:
        out = guarded(self.name, lambda: self._model.forecast(y=self._y[:origin], h=h)["mean"])
        return _finite(self.name, origin, out, h)


class ForwardMember:
    """A statsforecast model fitted on the series (its last `window` points), forecasting prefixes with
    `forward` (on the `window` points before the origin)."""

    def __init__(self, name: str, spec: str, model: Any, y: FloatArray, window: int) -> None:
        self.name = name
        self.spec = spec
        self._model = model
        self._y = y
        self._window = window

    def forecast_at(self, origin: int, h: int) -> FloatArray:
        recent = self._y[max(0, origin - self._window) : origin]
        out = guarded(self.name, lambda: self._forward(recent, h))
        return _finite(self.name, origin, out, h)

    def _forward(self, recent: FloatArray, h: int) -> FloatArray:
        mean: FloatArray = self._model.forward(y=recent, h=h)["mean"]
        return mean


class ThetaMember(ForwardMember):
    """AutoTheta fitted on the last `window` points before the first origin, forecasting from each
    origin on the `window` points before it as its `forward` does (`forecasting.theta.forward_mean`:
    the same floats, a fraction of the time)."""

    def __init__(self, spec: str, model: Any, y: FloatArray, window: int) -> None:
        super().__init__("auto_theta", spec, model, y, window)

    def _forward(self, recent: FloatArray, h: int) -> FloatArray:
        return forward_mean(self._model.model_, recent, h)


class MstlMember:
    """MSTL: the seasonal components continued as seasonal naive, plus the trend model's forecast."""

    def __init__(self, spec: str, seasonal: FloatArray, y: FloatArray, trend: Any, periods: tuple[int, ...]):
        self.name = "mstl"
        self.spec = spec
        self._seasonal = seasonal
        self._periods = periods
        self._trend = trend
        self._adjusted = y - self._season_at(np.arange(y.size))

    def _season_at(self, steps: IntArray) -> FloatArray:
        """The seasonal part at `steps`: as decomposed up to the fit's end, continued periodically after."""
        fitted = self._seasonal.shape[0]
        out = np.zeros(steps.size)
        for column, period in enumerate(self._periods):
            source = np.where(steps < fitted, steps, fitted - period + (steps - fitted) % period)
            out += self._seasonal[source, column]
        return out

    def forecast_at(self, origin: int, h: int) -> FloatArray:
        trend = guarded(self.name, lambda: self._trend.forward(y=self._adjusted[:origin], h=h)["mean"])
        out = np.asarray(trend, dtype=np.float64) + self._season_at(origin + np.arange(h))
        return _finite(self.name, origin, out, h)


Build = Callable[[FloatArray], Member]
"""A fitted model made into a member forecasting from the origins of a given series."""
FitMemo = dict[tuple[object, ...], Build]
"""Fitted members by what their fit depends on (`fit_member`'s `memo`)."""


def fit_member(
    name: str,
    y: FloatArray,
    seasons: tuple[int, ...],
    spec: str | None = None,
    until: int | None = None,
    *,
    memo: FitMemo | None = None,
) -> Member:
    """Fit member `name` on `y[:until]` with the given seasons (empty: non-seasonal), reusing `spec` if
    it was selected for them; the member then forecasts from any origin of `y`. `memo` keeps fits
    by what they depend on (the member, seasons, spec and `y[:until]`): series that differ only
    after `until` (simulated runs on the same past with other Poisson seeds) share them.

    Raises ModelError when the model cannot be fitted.
    """
    main = seasons[0] if seasons else 1
    until = y.size if until is None else until
    if name == "seasonal_naive":
        return SeasonalNaiveMember(y, main)
    if name not in ("auto_ets", "auto_theta", "mstl"):
        raise ModelError(f"member `{name}` is unknown")
    fitted = y[:until]
    key = (name, seasons, spec, until, fitted.tobytes())
    build = None if memo is None else memo.get(key)
    if build is None:
        build = _fit(name, fitted, seasons, spec)
        if memo is not None:
            memo[key] = build
    return build(y)


def _fit(name: str, y: FloatArray, seasons: tuple[int, ...], spec: str | None) -> Build:
    """Fit `name` on all of `y`."""
    main = seasons[0] if seasons else 1
    if name == "auto_ets":
        season = main if main <= ETS_MAX_SEASON else 1
        ets = _ets(season, _reuse(spec, str(season)))
        guarded("auto_ets fit", lambda: ets.fit(y=y))
        chosen = f"{season}|{ets.model_['components']}"
        return lambda series: ForwardMember(name, chosen, ets, series, series.size)
    if name == "auto_theta":
        theta = AutoTheta(season_length=main, model=_reuse(spec, str(main)))
        window = THETA_SEASONS * main
        guarded("auto_theta fit", lambda: theta.fit(y=y[-window:] if seasons else y))
        chosen = f"{main}|{theta.model_['modeltype']}"
        return lambda series: ThetaMember(chosen, theta, series, window if seasons else series.size)
    return _fit_mstl(y, seasons, spec)


def _ets(season: int, selected: str | None) -> Any:
    if selected is None:
        return AutoETS(season_length=season, model="ZZN" if season == 1 else "ZZZ")
    return AutoETS(season_length=season, model=selected[:3], damped=selected[3:] == "D")


def _fit_mstl(y: FloatArray, seasons: tuple[int, ...], spec: str | None) -> Build:
    if not seasons:
        raise ModelError("mstl needs a season; this history has none long enough")
    key = "+".join(str(s) for s in seasons)
    jump = max(1, math.ceil(min(seasons) / 10))
    model = MSTL(
        season_length=list(seasons),
        trend_forecaster=_ets(1, _reuse(spec, key)),
        stl_kwargs={"trend_jump": jump, "low_pass_jump": jump},
    )
    guarded("mstl fit", lambda: model.fit(y=y))
    seasonal = np.asarray(model.model_.filter(regex="^seasonal").to_numpy(), dtype=np.float64)
    trend = model.trend_forecaster
    chosen, periods = f"{key}|{trend.model_['components']}", tuple(sorted(seasons))
    return lambda series: MstlMember(chosen, seasonal, series, trend, periods)
