"""A reserve for bursts: capacity no seasonal model sees, held while a target's bursts cluster. Pure.

The calibrated bound (`scaler.calibration`) covers the lead-time peak at the quantile asked for, over
all windows alike. Event-driven traffic misses it in runs: one burst is followed by others within the
hour, while the hours between are calm. A bound corrected on all windows at once is then too wide in
the calm hours and too narrow after a burst. `BurstReserve` learns this from the target's own scored
windows and holds a reserve only after a burst, only when the target's bursts have been seen to
cluster:

- a window is a *burst* when its observed peak exceeded the bound by more than the bound's own
  margin again (peak > bound + BURST_BAND x (bound - centre)): a rise over the lead time at least
  twice what the band allows for, not one of the quantile's ordinary misses (for a Gaussian error at
  q = 0.9 that is 2.6 standard deviations, 0.5 % of windows);
- its *size* is the shortfall relative to the bound, (peak - bound) / bound, so that it carries over
  to the current level (a burst on twice the traffic is taken to be twice as large);
- a window made within `horizon_s` of the newest burst known when it is made is *after a burst*; the
  share of such windows that were bursts is p, counted with forgetting (halved past `window`);
- with p above the miss rate the quantile allows (1 - q), the q quantile of the lead-time peak after a
  burst lies among the bursts: the reserve is the bound x the burst sizes' quantile at 1 - (1 - q) / p,
  the mixture's quantile when the windows between bursts are covered. Otherwise it is 0.

So the reserve is zero by construction for traffic without bursts (no window qualifies; no window is
after one) and for bursts that do not cluster (p stays at the rare windows' rate); it is zero in the
calm hours, and it ends `horizon_s` after the last burst. The reserved bound is what is served and
scored for coverage, while bursts are judged against the bound without it, so holding a reserve
does not hide the bursts it was sized on.

Time of day is not a condition: bursts are learned from the windows the target scored, and a day-
long simulation shows no recurrence to learn; a live target with a burst at the same hour each day
sees it in the seasonal forecast instead.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import NamedTuple

HORIZON_S = 3600.0
"""How long after a burst a window counts as after a burst (chosen on the development windows)."""
BURST_BAND = 1.0
"""A burst exceeds the bound by more than this many times the bound's margin above its centre."""
MIN_AFTER = 40
"""Windows after bursts scored before a reserve is held (10 minutes at a 15 s step)."""
MAX_SIZES = 256
"""The newest bursts' sizes kept."""


class Reserve(NamedTuple):
    """A window's reserve and the context it was sized in (given back to `BurstReserve.score`)."""

    value: float
    """Added to the bound, in its units (0 without a reserve)."""
    after_burst: bool
    """Whether the window was made within the horizon of the newest burst known then."""


class BurstReserve:
    """One pipeline's burst statistics and the reserve they call for (see the module docstring)."""

    def __init__(
        self, quantile: float, *, window: int, horizon_s: float = HORIZON_S, band: float = BURST_BAND
    ) -> None:
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile {quantile} must be within (0, 1)")
        if window < 1 or not horizon_s >= 0.0 or not band >= 0.0:
            raise ValueError(f"window {window} must be >= 1, horizon_s {horizon_s} and band {band} >= 0")
        self._band = band
        self.quantile = quantile
        self._window = window
        self._horizon_s = horizon_s
        self._last_burst_s = -math.inf
        """When the newest burst window scored was made."""
        self._sizes: deque[float] = deque(maxlen=MAX_SIZES)
        self._sorted: list[float] = []
        self._after = 0.0
        self._after_bursts = 0.0
        self.bursts = 0
        """Burst windows scored."""
        self.value = 0.0
        """The newest reserve, in the bound's units."""

    @property
    def share_after(self) -> float:
        """Share of the windows after a burst that were bursts (NaN before any): p."""
        return self._after_bursts / self._after if self._after else math.nan

    def reserve(self, made_s: float, bound: float) -> Reserve:
        """The reserve on top of `bound` for the window made at `made_s`."""
        after = made_s - self._last_burst_s <= self._horizon_s
        value = 0.0
        miss = 1.0 - self.quantile
        if after and self._after >= MIN_AFTER and bound > 0.0 and self._after_bursts > miss * self._after:
            level = 1.0 - miss * self._after / self._after_bursts
            ordered = self._sorted
            value = bound * ordered[min(len(ordered) - 1, math.ceil(level * len(ordered)) - 1)]
        self.value = value
        return Reserve(value, after)

    def score(self, made_s: float, reserve: Reserve, peak: float, bound: float, centre: float) -> None:
        """A window's outcome: its observed `peak` against the `bound` without the reserve (and the
        bound's `centre`); `reserve` is what `reserve` returned for it."""
        if not (math.isfinite(peak) and math.isfinite(bound) and bound > 0.0):
            return
        burst = peak > bound + self._band * max(0.0, bound - centre)
        if reserve.after_burst:
            self._after += 1.0
            self._after_bursts += float(burst)
            if self._after > self._window:  # forgetting, so that p follows the newest bursts
                self._after /= 2.0
                self._after_bursts /= 2.0
        if burst:
            self.bursts += 1
            self._last_burst_s = max(self._last_burst_s, made_s)
            size = (peak - bound) / bound
            if len(self._sizes) == self._sizes.maxlen:
                del self._sorted[bisect.bisect_left(self._sorted, self._sizes[0])]
            self._sizes.append(size)
            bisect.insort(self._sorted, size)
