"""What every metric source provides: the `Source` protocol and its value types."""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt


class Sample(NamedTuple):
    """One observation of the load signal."""

    at_s: float
    """Unix time the value refers to."""
    value: float
    """The load, in the trigger's units (the same units as `threshold`)."""


class Series(NamedTuple):
    """A stretch of the signal's past, oldest first; NaN where the source had no value."""

    at_s: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]


class Source(Protocol):
    """What the refresher needs from a source."""

    async def sample(self) -> Sample:
        """The value now; raises a SourceError (or QueryShapeError) when it cannot be known."""
        ...

    async def history(self, start_s: float, end_s: float, step_s: float) -> Series:
        """Values at every `step_s` from `start_s` to `end_s` (unix seconds), for bootstrapping."""
        ...

    async def aclose(self) -> None:
        """Release connections; the source is not used afterwards."""
        ...
