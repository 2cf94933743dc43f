"""A target's side queries: read beside its signal once per step, each failure counted and logged once.

- `replicasQuery`: the workload's replicas (a predictive value is raised past the HPA's tolerance);
- `readyQuery`: its ready replicas (`leadTime: auto` times start-ups from both counts);
- `sloQuery`: the SLO's violating share (`errorBudget` controls the margin with it).

Each only refines the answer: when one cannot be read, the step goes without it (as `WITHOUT` says),
the error is counted by class, logged when it changes, shown in `/targets`, and its recovery logged.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from scaler.errors import QueryShapeError, SourceError
from scaler.sources.base import Source
from scaler.telemetry import Telemetry

WITHOUT = {
    "replicasQuery": ("the replicas", "values are not raised past the HPA's tolerance"),
    "readyQuery": ("the ready replicas", "start-ups are not timed meanwhile"),
    "sloQuery": ("the SLO's violating share", "the margin holds still meanwhile"),
}
"""What each side query is, and what the target goes without while it cannot be read."""


class SideQueries:
    """The side queries' sources (None where unset), read with `value`/`count`; `errors` by key."""

    def __init__(
        self,
        sources: dict[str, Source | None],
        telemetry: Telemetry,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        unknown = set(sources) - set(WITHOUT)
        if unknown:
            raise ValueError(f"unknown side queries {sorted(unknown)}; expected some of {sorted(WITHOUT)}")
        self._sources = sources
        self._counters: dict[str, Counter] = {
            "replicasQuery": telemetry.replicas_errors,
            "readyQuery": telemetry.ready_errors,
            "sloQuery": telemetry.slo_errors,
        }
        self._log = log
        self.errors: dict[str, str] = {}
        """The last error reading each key, while it fails."""

    def has(self, key: str) -> bool:
        return self._sources.get(key) is not None

    async def count(self, key: str) -> int | None:
        """A replica count (`replicasQuery`, `readyQuery`); None when unset or unreadable."""
        value = await self.value(key)
        return None if value is None else round(value)

    async def value(self, key: str) -> float | None:
        """The query's value, finite (and for `sloQuery` a share in [0, 1]); None when unset or
        unreadable."""
        source = self._sources.get(key)
        if source is None:
            return None
        try:
            sample = await source.sample()
            if key == "sloQuery" and not 0.0 <= sample.value <= 1.0:
                raise QueryShapeError(f"`sloQuery` returned {sample.value:g}; it must be a share in [0, 1]")
        except (SourceError, QueryShapeError) as exc:
            self._counters[key].labels(type(exc).__name__).inc()
            what, without = WITHOUT[key]
            if self.errors.get(key) != str(exc):
                self._log.warning("reading %s (`%s`) failed; %s: %s", what, key, without, exc)
                self.errors[key] = str(exc)
            return None
        if self.errors.pop(key, None) is not None:
            self._log.info("reading %s works again", WITHOUT[key][0])
        return sample.value  # finite: the source refuses null values for these queries

    async def aclose(self) -> None:
        for source in self._sources.values():
            if source is not None:
                await source.aclose()
