"""Value types shared by the forecasting modules: the configuration and the results.

All are immutable. Arrays inside them are the caller's to read, not to write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

DAY_S = 86_400.0
MEMBERS = ("auto_ets", "mstl", "auto_theta")
COMBINATIONS = ("median", "inverse_error")


@dataclass(frozen=True, slots=True)
class ForecastConfig:
    """How the coarse (seasonal) model is chosen, fitted and calibrated."""

    season_s: float = DAY_S
    """The main season; `season_s / step_s` steps. Daily load cycles are the norm for inference traffic."""

    weekly: bool = True
    """Add a weekly season (7 main seasons) to MSTL once the history holds two weeks."""

    horizon_steps: int = 24
    """Coarse steps forecast and calibrated at each fit (2 h at 5 min): covers the refit interval plus
    the scale-up lead time."""

    members: tuple[str, ...] = MEMBERS
    """Ensemble members besides the seasonal naive one, fitted in this order (cheapest first, so that a
    time budget drops the dearest: AutoTheta)."""

    combination: str = "median"
    """`median` of the members, or `inverse_error` weights; see forecasting.ensemble for the choice."""

    calibration_origins: int = 48
    """Rolling origins whose errors calibrate the upper quantile and weigh the members."""

    calibration_stride_steps: int | None = None
    """Steps between calibration origins; None: one hour of the main season (season / 24)."""

    min_calibration_origins: int = 8
    """Fewer usable origins than this and no forecast is made (the caller stays reactive)."""

    min_points: int = 30
    """Shortest history worth a model, in steps; the history must also span one season."""

    max_history_s: float = 17 * DAY_S
    """Older points are not fitted: cost grows with length and old traffic describes an old service."""

    reselect_after_s: float = DAY_S
    """Rerun model selection (the expensive Auto* search) when the kept selection is older than this;
    in between, a refit reuses the selected specs and only re-estimates parameters."""

    level_window_s: float = 120.0
    """Fine-step observations this recent set the level correction and its slope; also the span of
    the local level the fine samples' noise is measured around. Two minutes: a ramp must be seen well
    within a pod's start-up. In the simulator (180 s start-up, q 0.95) a 300 s window left 9 SLO
    minutes on NASA and 5 on ServeGen, 120 s left 3 and 7 at about the same GPU-hours."""

    level_half_life_s: float = 600.0
    """The level correction halves over this much forecast lead time."""

    reanchor_margins: bool = True
    """Once fine samples re-anchor the level, size the margin by the lead time from now rather than by
    the time since the coarse fit's end: an hour after a fit the level correction is as fresh as just
    after it, and the coarse margin of an hour-ahead forecast would provision for an error it has
    already removed. False: by the time since the fit."""

    level_trend: bool = True
    """Fit the level correction as a line over `level_window_s` and carry its slope forward (at most
    `level_window_s` ahead); False: the window's mean gap, flat."""

    adapt_rate: float = 0.005
    """Adaptive conformal step: at each fit the quantile served moves by this much per actual that
    the previous fit's upper bound missed, minus (1 - quantile) per actual scored (0: no adaptation;
    see forecasting.forecaster)."""

    def __post_init__(self) -> None:
        problems = []
        if self.season_s <= 0:
            problems.append(f"season_s is {self.season_s}; it must be > 0")
        if self.horizon_steps < 1:
            problems.append(f"horizon_steps is {self.horizon_steps}; it must be >= 1")
        if not 0 <= self.adapt_rate < 1:
            problems.append(f"adapt_rate is {self.adapt_rate}; it must be in [0, 1)")
        unknown = sorted(set(self.members) - set(MEMBERS))
        if unknown:
            problems.append(f"members {unknown} are unknown; expected some of {list(MEMBERS)}")
        if self.combination not in COMBINATIONS:
            problems.append(f"combination is `{self.combination}`; expected one of {list(COMBINATIONS)}")
        if self.min_calibration_origins < 2 or self.calibration_origins < self.min_calibration_origins:
            problems.append(
                f"calibration_origins {self.calibration_origins} and min_calibration_origins "
                f"{self.min_calibration_origins}: need 2 <= min <= origins"
            )
        if problems:
            raise ValueError("invalid ForecastConfig: " + "; ".join(problems))

    def season_steps(self, step_s: float) -> int:
        """The main season in steps of `step_s` (at least 1)."""
        return max(1, round(self.season_s / step_s))


class Forecast(NamedTuple):
    """A forecast on a regular grid: bin `i` starts at `start_s + i * step_s`.

    `upper` is the calibrated `quantile` of the load in each bin. `model` is `ensemble`, a member's
    name, `seasonal_naive`, `naive`, `constant` or `none`; with `none` there is no forecast and `mean`
    and `upper` hold the last observed value (0 without one), so that a caller that ignores `model`
    still scales reactively. `reason` says why this model answered.
    """

    mean: FloatArray
    upper: FloatArray
    quantile: float
    model: str
    reason: str
    step_s: float
    start_s: float


class MemberReport(NamedTuple):
    """One model's part in a fit: its selected spec, whether it is used and why not."""

    name: str
    spec: str
    ok: bool
    reason: str
    fit_s: float
    mae: float


class Candidate(NamedTuple):
    """A model's forecast from the end of the fitted series and its rolling-origin errors.

    `residuals[j, k]` is actual minus forecast `k + 1` steps after calibration origin `j`; NaN where
    the actual was not observed.
    """

    name: str
    mean: FloatArray
    residuals: FloatArray
