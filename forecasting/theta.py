"""AutoTheta's `forward` (its fitted variant and parameters applied to a new window), computed as
statsforecast computes it, float for float, in a fraction of its time. Pure.

statsforecast's `forward` reruns `auto_theta` with the variant and parameters fixed: the seasonality
test (ACF at the season's lag), statsmodels' classical seasonal decomposition, then the theta
model's pass over the deseasonalized window. Two parts of that cost most of a calibration origin
(about 3 ms and 9 ms of its 11-13 at 2,016 points; here 2-3 ms in all):

- The decomposition's seasonal means: statsmodels takes each phase's mean with pandas' `nanmean`,
  one call per phase (288 a day at 5 min). Here the phases are summed side by side in the order
  numpy's pairwise sum adds one phase's values (`_phase_sums`), so each mean is the same float.
- The residual pass: statsforecast forecasts from every point by copying the history before it
  (quadratic in the window) to score in-sample errors that the forecast does not use. Here the
  state pass runs statsforecast's state equations once per point, operation for operation in
  Python floats (the same IEEE operations in the same order, `pow` from the same C library), and
  the forecast is statsforecast's own `forecast` from the last state; the in-sample error is only
  checked, as `auto_theta` checks it (a variant whose error is NaN or infinite, or whose one-step
  forecast hits the NA marker, is rejected).

The seasonality test and the trend filter are statsmodels' own calls. tests/test_forecasting_theta.py
holds `forward_mean` to statsforecast's `forward` and `seasonal_profile` to statsmodels'
`seasonal_decompose`, float for float.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import norm  # type: ignore[import-untyped]
from statsforecast._lib import theta as _theta
from statsforecast.utils import _repeat_val_seas, _seasonal_naive
from statsmodels.tsa.filters.filtertools import convolution_filter  # type: ignore[import-untyped]
from statsmodels.tsa.stattools import acf  # type: ignore[import-untyped]

from forecasting.base import FloatArray

SEASONAL_Z = float(norm.ppf(0.95))
"""The seasonality test's critical value (one-sided 95 %), as `auto_theta` computes it."""
# numpy's pairwise summation: fewer values than this are added one by one, up to BLOCK with eight
# accumulators, more split in two halves (numpy/_core/src/umath/loops_utils.h.src).
UNROLL, BLOCK = 8, 128


def forward_mean(model: dict[str, Any], y: FloatArray, h: int) -> FloatArray:
    """The mean of `AutoTheta.forward(y=y, h=h)` for the fitted `model` (`AutoTheta.model_`).

    Raises ValueError where `forward` raises (no usable fit of the variant on `y`)."""
    y = np.asarray(y, dtype=np.float64)
    season, variant, par = int(model["m"]), str(model["modeltype"]), model["par"]
    z, kind, ahead = _deseasoned(y, season)
    n = z.size
    if n <= 3:
        raise ValueError(f"theta needs more than 3 points, has {n}")
    level, alpha = float(par["initial_smoothed"]), float(par["alpha"])
    # `initparamtheta`: the simple variants fix theta at 2; a NaN parameter would be optimized.
    theta = 2.0 if variant in ("STM", "DSTM") else float(par["theta"])
    if math.isnan(level) or math.isnan(alpha) or math.isnan(theta):
        raise ValueError("theta's fitted parameters are not all set")
    code = getattr(_theta.ModelType, variant)
    states = np.zeros((n, 5))
    states[0] = _theta.init_state(z, code, level, alpha, theta)
    ahead_one = _states(z, states, variant in ("DSTM", "DOTM"), alpha, theta)
    if np.any(np.abs(ahead_one - _theta.NA) < _theta.TOL):
        raise ValueError("theta's one-step forecast reached its NA marker")
    errors = z[1:] - ahead_one
    mse = float(np.sum(np.square(errors[2:]))) / max(float(np.mean(np.abs(z))), _theta.TOL)
    if not math.isfinite(mse):
        raise ValueError("no model able to be fitted: theta's in-sample error is not finite")
    out = np.empty(h)
    _theta.forecast(states, n, code, out, alpha, theta)
    if kind:
        profile = _repeat_val_seas(ahead, h=h)
        out = out * profile if kind == "multiplicative" else out + profile
    return np.asarray(out, dtype=np.float64)


def _states(z: FloatArray, states: FloatArray, damped: bool, alpha: float, theta: float) -> FloatArray:
    """statsforecast's state pass (`update` from row 0, its equations operation for operation) over
    `z`; writes the last row of `states` and returns each step's one-step forecast (rows 1 on)."""
    level, meany, an, bn = (float(v) for v in states[0, :4])
    keep, trend = 1 - alpha, 1 - 1 / theta
    values = z.tolist()
    ahead = [0.0] * len(values)
    mu = float(states[0, 4])
    for i in range(1, len(values)):
        value = values[i]
        mu = level + trend * (an * keep**i + bn * (1 - keep ** (i + 1)) / alpha)
        ahead[i] = mu
        level, meany, before = alpha * value + keep * level, (i * meany + value) / (i + 1), meany
        if damped:
            bn = ((i - 1) * bn + 6 * (value - before) / (i + 1)) / (i + 2)
            an = meany - bn * (i + 2) / 2
    states[-1] = (level, meany, an, bn, mu)
    return np.asarray(ahead[1:], dtype=np.float64)


def _deseasoned(y: FloatArray, season: int) -> tuple[FloatArray, str, FloatArray]:
    """`y` as `auto_theta` fits it, the decomposition used (`multiplicative`, `additive`, or `` when
    the seasonality test finds none) and the seasonal profile one season past `y`."""
    decompose = False
    if season >= 4 and y.size >= 2 * season:
        r = acf(y, nlags=season, fft=False)[1:]
        stat = np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / len(y))
        decompose = bool(np.abs(r[-1]) / stat > SEASONAL_Z)
    if not decompose:
        return y, "", np.zeros(0)
    kind = "multiplicative" if min(y) > 0 else "additive"
    profile = seasonal_profile(y, season, kind)
    if kind == "multiplicative" and any(profile < 0.01):
        kind = "additive"
        profile = seasonal_profile(y, season, kind)
    values = y - profile if kind == "additive" else y / profile
    ahead = _seasonal_naive(y=profile, h=season, season_length=season, fitted=False)["mean"]
    return np.asarray(values, dtype=np.float64), kind, np.asarray(ahead, dtype=np.float64)


def seasonal_profile(x: FloatArray, period: int, kind: str) -> FloatArray:
    """`statsmodels.tsa.seasonal.seasonal_decompose(x, model=kind, period=period).seasonal` for a
    1-D `x` (a centred moving average as the trend, no extrapolation)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("the seasonal decomposition does not handle missing values")
    if kind == "multiplicative" and np.any(x <= 0):
        raise ValueError("a multiplicative decomposition needs positive values")
    if x.size < 2 * period:
        raise ValueError(f"a decomposition needs {2 * period} points (two periods), has {x.size}")
    if period % 2 == 0:
        filt = np.array([0.5] + [1] * (period - 1) + [0.5]) / period
    else:
        filt = np.repeat(1.0 / period, period)
    trend = convolution_filter(x, filt, 2)
    detrended = x / trend if kind == "multiplicative" else x - trend
    averages = _phase_means(detrended, period)
    if kind == "multiplicative":
        averages /= np.mean(averages, axis=0)
    else:
        averages -= np.mean(averages, axis=0)
    return np.asarray(np.tile(averages.T, x.size // period + 1).T[: x.size], dtype=np.float64)


def _phase_means(x: FloatArray, period: int) -> FloatArray:
    """`pandas.core.nanops.nanmean(x[i::period])` for each phase i: NaN set to 0 and summed as
    numpy sums one phase, divided by the phase's count of numbers (NaN for none)."""
    out = np.empty(period)
    rows = math.ceil(x.size / period)
    full = x.size - (rows - 1) * period
    padded = np.full(rows * period, np.nan)
    padded[: x.size] = x
    grid = padded.reshape(rows, period)
    # Phases below `full` hold `rows` values, the others one fewer: summed in two groups.
    for table in (grid[:, :full], grid[: rows - 1, full:]):
        if table.shape[1] == 0:
            continue
        phases = slice(0, full) if table.shape[0] == rows else slice(full, period)
        missing = np.isnan(table)
        # numpy's reduction adds the pairwise sum to its identity, 0.
        sums = 0.0 + _phase_sums(np.where(missing, 0.0, table))
        numbers = (table.shape[0] - missing.sum(axis=0)).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[phases] = np.where(numbers > 0, sums / numbers, np.nan)
    return out


def _phase_sums(table: FloatArray) -> FloatArray:
    """Each column's sum, added in the order numpy's pairwise summation adds a 1-D array."""
    n = table.shape[0]
    if n < UNROLL:
        total = np.zeros(table.shape[1])
        for row in table:
            total = total + row
        return total
    if n <= BLOCK:
        acc = [table[j].copy() for j in range(UNROLL)]
        i = UNROLL
        while i < n - n % UNROLL:
            for j in range(UNROLL):
                acc[j] = acc[j] + table[i + j]
            i += UNROLL
        total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        for row in table[i:]:
            total = total + row
        return np.asarray(total, dtype=np.float64)
    half = n // 2
    half -= half % UNROLL
    return np.asarray(_phase_sums(table[:half]) + _phase_sums(table[half:]), dtype=np.float64)
