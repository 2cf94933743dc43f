"""A fixed-step ring buffer of one target's load signal; no I/O.

Slot k holds the sample for the step that starts at `k * step_s` (unix time). Steps that got no
sample stay NaN, so a gap is visible to the forecaster rather than papered over. Memory is fixed:
`capacity` float64 slots per target (7 days at 15 s is 40,320 slots, 315 KiB).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


class History:
    """The last `capacity` steps of a signal, aligned to multiples of `step_s`."""

    __slots__ = ("_last_step", "_values", "capacity", "step_s")

    def __init__(self, step_s: float, capacity: int) -> None:
        if step_s <= 0 or capacity <= 0:
            raise ValueError(f"step_s and capacity must be > 0, got {step_s} and {capacity}")
        self.step_s = step_s
        self.capacity = capacity
        self._values = np.full(capacity, np.nan)
        self._last_step: int | None = None

    def __len__(self) -> int:
        """Steps covered from the oldest kept slot to the newest sample, gaps included."""
        return 0 if self._last_step is None else self.capacity

    def append(self, at_s: float, value: float) -> None:
        """Record `value` for the step holding `at_s`; a sample older than the newest step is kept
        if its slot is still in the window (a late answer), and dropped otherwise."""
        step = math.floor(at_s / self.step_s)
        value = value if math.isfinite(value) else math.nan
        if self._last_step is None:
            self._last_step = step
        elif step > self._last_step:
            # Clear the slots of the skipped steps: they had no sample.
            if step - self._last_step >= self.capacity:
                self._values.fill(math.nan)
            else:
                for k in range(1, step - self._last_step):
                    self._values[(self._last_step + k) % self.capacity] = math.nan
            self._last_step = step
        elif self._last_step - step >= self.capacity:
            return
        self._values[step % self.capacity] = value

    def extend(self, at_s: npt.NDArray[np.float64], values: npt.NDArray[np.float64]) -> None:
        """Append many samples in time order (a bootstrap from a range query). Only those that can
        still be in the window are appended: a long bootstrap costs the window's size, not its own."""
        if at_s.size and at_s.size == values.size:
            recent = at_s > at_s[-1] - self.capacity * self.step_s
            at_s, values = at_s[recent], values[recent]
        for at, value in zip(at_s.tolist(), values.tolist(), strict=True):
            self.append(at, value)

    def window(self, steps: int | None = None) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(step start times, values) of the newest `steps` steps, oldest first, NaN in gaps."""
        if self._last_step is None:
            empty = np.empty(0)
            return empty, empty
        count = self.capacity if steps is None else max(0, min(steps, self.capacity))
        first = self._last_step - count + 1
        steps_idx = np.arange(first, self._last_step + 1)
        return (steps_idx * self.step_s).astype(np.float64), self._values[steps_idx % self.capacity].copy()

    def latest(self) -> float:
        """The newest step's value (NaN when there is none)."""
        if self._last_step is None:
            return math.nan
        return float(self._values[self._last_step % self.capacity])
