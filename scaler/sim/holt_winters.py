"""An anchor baseline users know: a Holt-Winters-only predictor, as predictive-HPA projects use.

Additive Holt-Winters (statsforecast `HoltWinters`, ETS AAA) refitted every `refitInterval` on the
same history as prescaler's predictive policy, and its point forecast over the lead time provisioned
as is: no ensemble, no conformal margin, no level correction from the fine samples. statsforecast's
ETS only fits seasons of up to 24 steps, so the daily season is fitted at one-hour steps (24 per day);
the hourly path is interpolated through the bins' centres as `forecasting.finescale` does.

Everything else (sampling per step, Little's law with the measured time in service unless
`serviceTime` is set, `scaler.policy.decide`) is `Predictive`'s, with
the plain HPA those projects drive: no `replicasQuery`, so its default `threshold` is 0.9 x a
replica's concurrency (`scaler.sim.predictive.THRESHOLD_SHARE_BLIND`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from statsforecast.models import HoltWinters as StatsHoltWinters

from forecasting.base import DAY_S, FloatArray
from forecasting.finescale import CoarsePath
from forecasting.models import ModelError, guarded
from forecasting.prepare import prepare
from scaler.leadtime import RETRY_S
from scaler.sim.interface import PolicyFactory
from scaler.sim.predictive import Predictive
from scaler.sim.shared import FitCache, FitKey
from scaler.sim.trigger_settings import PredictiveSettings
from scaler.traces import Trace
from scaler.trigger import TriggerConfig

HOUR_S = 3600.0
SEASON_STEPS = round(DAY_S / HOUR_S)
# Points of the path over the lead time at which its largest value is sought.
LEAD_POINTS = 16


class HoltWintersPolicy(Predictive):
    """`Predictive` with its forecast replaced by an hourly Holt-Winters point forecast."""

    def __init__(
        self,
        config: TriggerConfig,
        *,
        past: Trace | None = None,
        start_s: float,
        fits: FitCache | None = None,
    ) -> None:
        super().__init__(config, past=past, start_s=start_s, fits=fits)
        self._path: CoarsePath | None = None
        self._path_key: FitKey | None = None

    def _maybe_refit(self, now_s: float) -> None:
        if now_s < self._next_fit_s:
            return
        config = self.config
        at_s, values = self._rates.window()
        hourly = prepare(at_s + config.step_s / 2, values, HOUR_S, season_steps=SEASON_STEPS)
        # Up to the next refit and the lead time after it, and one spare.
        steps = math.ceil((config.refit_interval_s + config.lead_time_s) / HOUR_S) + 1
        key = ("holt_winters", hourly.end_s, steps, hourly.values.size, float(np.nansum(hourly.values)))
        cache = self._fits.paths if self._fits is not None else {}
        try:
            path = cache[key] if key in cache else _forecast(hourly.values, steps)
        except ModelError:
            self.fits["failed"] += 1
            self._next_fit_s = now_s + RETRY_S
            return
        cache[key] = path
        recent = hourly.values[-2:].copy()
        self._path = CoarsePath(HOUR_S, hourly.end_s, recent, path, np.zeros(steps))
        self._path_key = key
        self.fits["holt_winters"] += 1
        self._fitted = True
        self._next_fit_s = now_s + config.refit_interval_s

    def _bound(self, now_s: float) -> float | None:
        """W x the largest point forecast of the rate over [now, now + leadTime]."""
        path, config = self._path, self.config
        scale = self._service_time()
        if path is None or scale is None:
            return None
        # The largest forecast over the lead time depends on the demand only: shared by a sweep.
        key = (self._path_key, now_s, config.lead_time_s)
        peaks = self._fits.peaks if self._fits is not None else {}
        peak = peaks.get(key)
        if peak is None:
            times = now_s + np.linspace(0.0, config.lead_time_s, LEAD_POINTS)
            peak = peaks[key] = float(np.max(path.at(times)))
        return peak * scale


def _forecast(y: FloatArray, steps: int) -> FloatArray:
    """Holt-Winters' point forecast of the next `steps` hours; ModelError when it cannot be made."""
    if y.size < 2 * SEASON_STEPS:
        raise ModelError(f"holt_winters: needs {2 * SEASON_STEPS} hourly points, has {y.size}")
    model = StatsHoltWinters(season_length=SEASON_STEPS, error_type="A")
    mean = guarded("holt_winters", lambda: model.forecast(y=y, h=steps)["mean"])
    path = np.asarray(mean, dtype=np.float64)
    if path.shape != (steps,) or not np.isfinite(path).all():
        raise ModelError(f"holt_winters: the forecast is not {steps} finite values")
    return np.maximum(path, 0.0)


def holt_winters(
    past: Trace | None, settings: PredictiveSettings | None = None, *, fits: FitCache | None = None
) -> PolicyFactory:
    """The Holt-Winters baseline with `predictive`'s settings, without the replicas (its `quantile`
    is not used)."""
    chosen = dataclasses.replace(settings or PredictiveSettings(), replicas_known=False)
    return lambda scenario: HoltWintersPolicy(
        chosen.trigger(scenario), past=past, start_s=scenario.start_s, fits=fits
    )
