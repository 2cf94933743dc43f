"""Online calibration of what is served: the in-flight bound KEDA receives, scored per target. Pure.

The forecaster's quantile bands are calibrated on the forecast series (the arrival rate, at the coarse
step), but what KEDA is sent is another quantity: the largest in-flight load expected over the lead
time, after Little's law and the Poisson spread of the requests in service. Its coverage on traffic
never tuned on can sit far from the `quantile` asked for (it falls when the level shifts over days), so
the served bound is corrected after the fact, on its own outcomes:

- served = centre + scale x margin, where the centre is the largest forecast mean in flight over the
  lead time and the margin is the bound above it (the forecast's band and the Poisson spread);
- each served bound is scored when its lead time has passed: covered when the highest in-flight value
  observed in the window stayed at or below it;
- the log of the scale moves by `gain` x (miss - (1 - quantile)) at every window scored (adaptive
  conformal inference in the form of online quantile tracking), so that the share of windows missed
  follows 1 - quantile and the correction follows drift and level shifts as they happen: a run of
  misses widens the margin within a lead time, and covered windows narrow it again slowly.

The scale is kept within [MIN_SCALE, MAX_SCALE]; the coverage over the newest `window` scores is what
`prescaler_bound_coverage` exports. Both the live predictor and the simulator keep one per target, so
what is simulated is what is served.

With an error budget (`sloQuery`, `errorBudget`) the quantity aimed at is the SLO itself, not a
coverage: `SloControl` scales the whole served bound by a factor whose log moves by `gain` x (the
violating share read - the budget) at every read, so that the share's average follows the budget
(integral control; each violation raises the bound at once, and budget left unspent lowers it
slowly). The coverage correction is then off (its scale stays 1, still scored), since two
controllers of the same margin would work against each other. What learning costs can be counted: while
the factor stays inside its limits, the reads' sum is their count x the budget plus ln(factor) / gain
exactly, so a target whose every minute is read `reads a minute` times violates ln(factor) / (gain x
reads a minute) minutes more (or fewer) than its budget on its way from 1 to the factor it needs. A
larger gain learns faster but reacts to verdicts that arrive a lead time after the margin they judge;
on the development windows it cost more, and at 600 s violated more.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

GAIN = 0.01
"""Step of the log scale per scored window, chosen on the development windows (benchmarks/README.md,
"Gains of the online corrections")."""
MIN_SCALE, MAX_SCALE = 0.05, 20.0
"""The correction's range: the margin is never cut below 1/20 of the band, nor raised past 20x."""
SLO_GAIN = 0.03
"""`SloControl`'s step of the log factor per read of the violating share, chosen on the development
windows (benchmarks/README.md, "Gains of the online corrections")."""
MIN_FACTOR, MAX_FACTOR = 0.25, 4.0
"""`SloControl`'s range: the served bound between a quarter and four times the quantile's."""


class _LogFactor:
    """A factor whose log moves by `gain` x (outcome - `aim`) at each step, within `bounds`: online
    quantile tracking, so that the outcomes' mean follows `aim`. `name`/`setting` name what was
    configured when it is out of (0, 1)."""

    def __init__(
        self, name: str, setting: float, aim: float, window: int, gain: float, bounds: tuple[float, float]
    ) -> None:
        if not 0.0 < setting < 1.0:
            raise ValueError(f"{name} {setting} must be within (0, 1)")
        if window < 1 or not gain >= 0.0:
            raise ValueError(f"window {window} must be >= 1 and gain {gain} >= 0")
        self._aim, self._gain = aim, gain
        self._low, self._high = math.log(bounds[0]), math.log(bounds[1])
        self._log = 0.0

    @property
    def value(self) -> float:
        return math.exp(self._log)

    def step(self, outcome: float) -> None:
        self._log = min(self._high, max(self._low, self._log + self._gain * (outcome - self._aim)))

    @property
    def at_limit(self) -> int:
        """-1 at the lower limit, 1 at the upper one, else 0."""
        return -1 if self._log <= self._low else 1 if self._log >= self._high else 0


class LeadWindows(Generic[T]):
    """Lead-time windows waiting for their outcome: the peak of the values observed in (made, due].

    A window made now holds the index of the next value observed; it is due at the first value
    observed at or after its due time (that value included), and its peak is the largest value from
    its index on, taken with one `max` over a slice at that time, not updated at every step. Windows
    are kept in a heap by due time, so lead times that differ (`leadTime: auto`) cost nothing more.
    Each window carries a `payload` (what was served)."""

    def __init__(self) -> None:
        self._values: list[float] = []
        self._offset = 0
        """Index of `_values[0]` among all values observed (older ones are dropped)."""
        self._heap: list[tuple[float, int, int, T]] = []
        self._made = 0

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, due_s: float, payload: T) -> None:
        heapq.heappush(self._heap, (due_s, self._made, self._offset + len(self._values), payload))
        self._made += 1

    def observe(self, at_s: float, value: float) -> list[tuple[float, T]]:
        """Take the value observed at `at_s`; the (peak, payload) of every window now due, in due order."""
        values, heap = self._values, self._heap
        values.append(value)
        done = []
        while heap and heap[0][0] <= at_s:
            _, _, index, payload = heapq.heappop(heap)
            start = index - self._offset
            done.append((max(values[start:]) if start < len(values) else -math.inf, payload))
        if not heap:
            self._offset += len(values)
            values.clear()
        elif len(values) > 64 and len(values) > 2 * len(heap):
            oldest = min(entry[2] for entry in heap) - self._offset
            if oldest > 0:
                del values[:oldest]
                self._offset += oldest
        return done


class BoundCalibration:
    """The served bound's correction and its coverage, over the last `window` scored windows.

    `quantile` is the coverage aimed at; `gain` 0 scores without correcting (the scale stays 1).
    `serve` and `actual` keep their own windows; `correct` and `score` let several calibrations share
    one `LeadWindows` (`scaler.choice`)."""

    def __init__(self, quantile: float, *, window: int, gain: float = GAIN) -> None:
        self.quantile = quantile
        # A miss is an outcome of 1, aimed at a rate of 1 - quantile.
        self._scale = _LogFactor("quantile", quantile, 1.0 - quantile, window, gain, (MIN_SCALE, MAX_SCALE))
        self._windows: LeadWindows[float] = LeadWindows()
        self._scores: deque[bool] = deque(maxlen=window)
        self._covered = 0

    @property
    def scale(self) -> float:
        """The factor the margin above the centre is served with (1 before any correction)."""
        return self._scale.value

    def correct(self, centre: float, bound: float, factor: float = 1.0) -> float:
        """The corrected bound, times `factor` (`SloControl`'s)."""
        return (centre + self.scale * max(0.0, bound - centre)) * factor

    def serve(self, made_s: float, due_s: float, centre: float, bound: float, factor: float = 1.0) -> float:
        """The corrected bound for the window (made_s, due_s], recorded to be scored by `actual`."""
        served = self.correct(centre, bound, factor)
        if math.isfinite(served):
            self._windows.add(due_s, served)
        return served

    def actual(self, at_s: float, value: float) -> None:
        """Score the windows `serve` recorded with the in-flight value observed at `at_s`."""
        if math.isfinite(value):
            for peak, served in self._windows.observe(at_s, value):
                self.score(peak <= served)

    def score(self, covered: bool) -> None:
        """One window's outcome: counted, and the scale moved towards the quantile."""
        scores = self._scores
        if len(scores) == scores.maxlen:
            self._covered -= int(scores[0])
        scores.append(covered)
        self._covered += int(covered)
        self._scale.step(0.0 if covered else 1.0)

    @property
    def evaluations(self) -> int:
        return len(self._scores)

    @property
    def coverage(self) -> float:
        """Share of the scored windows whose peak stayed within the served bound; NaN before any."""
        return self._covered / len(self._scores) if self._scores else math.nan


def learning_minutes(factor: float, gain: float, reads_per_minute: float) -> float:
    """The violating minutes over the budget (under it, when negative) that `SloControl`'s factor
    accounts for by moving from 1 to `factor`, each minute's verdict read `reads_per_minute` times and
    the factor inside its limits throughout (the module docstring)."""
    return math.log(factor) / (gain * reads_per_minute)


class SloControl:
    """The served bound scaled so that the violating share `sloQuery` reads averages `budget`."""

    def __init__(self, budget: float, *, gain: float = SLO_GAIN, window: int = 1) -> None:
        self.budget, self.gain = budget, gain
        self._factor = _LogFactor("error budget", budget, budget, window, gain, (MIN_FACTOR, MAX_FACTOR))
        self._reads: deque[float] = deque(maxlen=window)
        self._sum = 0.0

    @property
    def factor(self) -> float:
        """What the quantile's bound is multiplied by (1 before any read)."""
        return self._factor.value

    def observe(self, share: float) -> None:
        """One read of the violating share (in [0, 1]; anything else is not a read)."""
        if not 0.0 <= share <= 1.0:
            return
        reads = self._reads
        if len(reads) == reads.maxlen:
            self._sum -= reads[0]
        reads.append(share)
        self._sum += share
        self._factor.step(share)

    def serve(self, bound: float) -> float:
        return bound * self.factor

    @property
    def held(self) -> str | None:
        """Why the factor is held at one of its limits, in words; None while it is inside them."""
        limit = self._factor.at_limit
        if limit < 0:
            return (
                f"at its floor ({MIN_FACTOR:g}x): the SLO holds even with the bound cut this far, and the "
                "observed value is never undercut, so the budget stays partly unspent"
            )
        if limit > 0:
            return (
                f"at its ceiling ({MAX_FACTOR:g}x): the SLO is violated more often than the budget allows "
                "even so; a larger margin does not buy it (compare leadTime with the replicas' start-up, "
                "and the capacity the bound asks for with maxReplicaCount)"
            )
        return None

    @property
    def reads(self) -> int:
        return len(self._reads)

    @property
    def share(self) -> float:
        """The mean violating share over the newest `window` reads; NaN before any."""
        return self._sum / len(self._reads) if self._reads else math.nan
