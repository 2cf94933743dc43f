"""What the runs of a knob sweep share: fits, bounds and paths that depend on the demand and the
settings, not on the knob. Pure.

The arrival rate a policy sees does not depend on its scaling (dropped requests count too), so
everything predictive and its relatives compute from the rate alone is the same in every run of a
sweep on the same demand: the ensemble's fits (a fit does not depend on the quantile), the fine
samples prepared for a forecast, a fine forecast before its margins, a lead-time bound at one
quantile and lead time, Holt-Winters' hourly path; and, between runs with other Poisson seeds on
the same past, the ensemble members' fits (`members`: a member is fitted on the history two days
before the refit, the past alone early in a window). `FitCache` keeps them by keys made from the data
and the settings they depend on, so one cache may serve runs on different demands, knobs and
start-ups; a run that takes from it decides exactly as one that computes everything itself
(tests/test_sim_speed.py).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from forecasting.finescale import FineLevel
from forecasting.forecaster import Forecaster
from forecasting.models import FitMemo
from forecasting.prepare import Series, prepare
from scaler.history import History
from scaler.leadtime import LeadBound

FloatArray = npt.NDArray[np.float64]

FitKey = tuple[object, ...]


class FitCache:
    """What runs on the same demand share (see the module docstring), each kind by its own keys."""

    def __init__(self, members: FitMemo | None = None) -> None:
        """`members`: the ensemble members' fits, kept by what each is fitted on; pass one to
        caches of runs on the same past with other seeds (their members are fitted on the past
        alone for two days of simulated time); None: this cache's own."""
        self.members: FitMemo = {} if members is None else members
        self._fits: dict[FitKey, tuple[dict[str, str], float, object, str]] = {}
        self.bounds: dict[FitKey, LeadBound] = {}
        """Lead-time bounds by (fit, time, quantile, lead time, step, recent samples): the same for
        every run at that quantile and lead time."""
        self.paths: dict[FitKey, FloatArray] = {}
        """Other baselines' forecast paths by what they were fitted on (Holt-Winters)."""
        self.peaks: dict[FitKey, float] = {}
        """Holt-Winters' largest point forecast over the lead time, by path, time and lead time."""
        self.histories: dict[FitKey, History] = {}
        """Rate histories bootstrapped from the past, by the past and the trigger's step and history."""
        self._fine: dict[FitKey, Series] = {}
        self.levels: dict[FitKey, FineLevel] = {}
        """Fine forecasts before their margins, shared by forecasters at different quantiles."""
        self.hits = 0

    def fine(self, at_s: FloatArray, values: FloatArray, step_s: float) -> Series:
        """The recent samples (`at_s` = step start times) prepared at `step_s`, as
        `scaler.leadtime.lead_bound` prepares them: the same for every run at that time, whatever
        its quantile or lead time."""
        key = (float(at_s[0]) if at_s.size else math.nan, at_s.size, step_s, values.tobytes())
        found = self._fine.get(key)
        if found is None:
            found = self._fine[key] = prepare(at_s + step_s / 2, values, step_s)
        return found

    def __contains__(self, key: FitKey) -> bool:
        return key in self._fits

    def get(self, key: FitKey, forecaster: Forecaster) -> bool:
        """Load the fit for `key` into `forecaster` (after its adaptive step); False when absent."""
        found = self._fits.get(key)
        if found is None:
            return False
        specs, selected_at_s, fitted, _ = found
        forecaster._specs = dict(specs)
        forecaster._selected_at_s = selected_at_s
        forecaster._fitted = fitted  # type: ignore[assignment]
        self.hits += 1
        return True

    def put(self, key: FitKey, forecaster: Forecaster) -> None:
        self._fits[key] = (
            dict(forecaster._specs),
            forecaster._selected_at_s,
            forecaster._fitted,
            forecaster.model,
        )
