"""Keep the cyclic garbage collector's pauses short when thousands of targets live in the heap.

Each tracked target holds a few dozen objects the collector must visit (its refresher, task,
coroutine, config, metric children); with 5,000 targets a full collection visits ~170,000 of them
and stops every RPC and poll for 50-200 ms. Those objects live as long as their target, so once the
set of targets has settled they are frozen (`gc.freeze()`): moved out of the collector's
generations, so collections scan only what is young. Freezing costs nothing when nothing dies:
memory is freed by reference counting regardless; only garbage *cycles* among frozen objects wait.
Those come from dropped targets, so once enough targets have been dropped since the last thaw, the
next settle thaws first and collects everything once. (A settle also freezes whatever short-lived
objects are in flight at that moment; their cycles, if any, wait for the next thaw too: bounded by
the settles, which follow changes to the set of targets.)

What is left young is each poll's churn: the timer, future and decision a target replaces every
step live 15 s, long enough to be promoted to the oldest generation, where the collector's own rule
(a full collection once the promoted objects reach a quarter of the old ones) would run a 50-100 ms
full collection every few seconds. So the server takes full collections off allocation pressure
(`defer_full_collections`) and runs one every `full_every_s` instead: garbage without cycles is
freed at once by reference counting either way; only cyclic garbage waits, for minutes at most.

The young generations' trigger fails in a steady state too: it counts allocations minus
deallocations, and when each step's new timers and decisions replace the last step's one for one,
the count stays near zero while the young generations fill with a whole step's objects (~40,000 at
5,000 targets), then one collection scans them all (~40 ms). So they are also collected every
`YOUNG_EVERY_S`: a collection then scans half a second's survivors, ~1 ms.

All of it runs on the event loop (a collection cannot run beside it: it holds the interpreter), a settle
at most once per `quiet_s` after a change, so a burst of creations (a deployment of many
ScaledObjects) pays one full collection at its end rather than many during it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from prometheus_client import Histogram

logger = logging.getLogger(__name__)

SETTLE_QUIET_S = 10.0
"""A settle waits until targets have been neither created nor dropped for this long..."""
SETTLE_MAX_WAIT_S = 300.0
"""...or at most this long after the first unsettled change (a fleet that never stops changing)."""
YOUNG_EVERY_S = 0.5
"""The young generations are collected on this clock as well as on the collector's own count."""
FULL_EVERY_S = 300.0
"""A full collection at least this often (the allocation-driven ones are deferred)."""
DEFERRED_THRESHOLD = 1_000_000
"""The oldest generation's threshold while deferred: young collections before a full one would run
by itself (about a week at a busy server's rate of two a second); `FULL_EVERY_S` comes first."""
PENDING_PAUSES = 10_000
"""Pauses kept between two drains at most (the oldest are dropped past it)."""
THAW_DROPPED_SHARE = 0.1
THAW_DROPPED_MIN = 64
"""Thaw (and collect the frozen cycles of dropped targets) once the targets dropped since the last
thaw reach this share of those tracked, and at least this many."""


class GcModule(Protocol):
    """The part of the `gc` module a settle uses (the module itself in production)."""

    def collect(self, generation: int = 2) -> int: ...
    def freeze(self) -> None: ...
    def unfreeze(self) -> None: ...
    def get_freeze_count(self) -> int: ...


def defer_full_collections() -> tuple[int, int, int]:
    """Stop the collector from running full collections on its own (`HeapSettler` runs them);
    returns the thresholds to restore."""
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], DEFERRED_THRESHOLD)
    return thresholds


class HeapSettler:
    """Watches the totals of targets created and dropped; `settle_if_due` freezes the heap once
    they have settled."""

    def __init__(
        self,
        *,
        collector: GcModule = gc,
        clock: Callable[[], float] = time.monotonic,
        quiet_s: float = SETTLE_QUIET_S,
        max_wait_s: float = SETTLE_MAX_WAIT_S,
        full_every_s: float = FULL_EVERY_S,
    ) -> None:
        self._gc = collector
        self._clock = clock
        self._quiet_s = quiet_s
        self._max_wait_s = max_wait_s
        self._full_every_s = full_every_s
        self._last_full_s = clock()
        self._last_change_s: float | None = None
        self._first_unsettled_s: float | None = None
        self._seen = (0, 0)
        self._dropped_since_thaw = 0
        self.settles = 0
        self.thaws = 0
        self.collections = 0

    def observe(self, created: int, dropped: int) -> None:
        """Note the registry's running totals of targets created and dropped (a drop leaves its
        frozen cycles for the next thaw)."""
        _, seen_dropped = self._seen
        if (created, dropped) == self._seen:
            return
        self._dropped_since_thaw += max(0, dropped - seen_dropped)
        self._seen = (created, dropped)
        now = self._clock()
        self._last_change_s = now
        if self._first_unsettled_s is None:
            self._first_unsettled_s = now

    def due(self) -> bool:
        """Whether there are unsettled changes and they are quiet (or waited long) enough."""
        if self._first_unsettled_s is None or self._last_change_s is None:
            return False
        now = self._clock()
        return now - self._last_change_s >= self._quiet_s or now - self._first_unsettled_s >= self._max_wait_s

    def tick(self, created: int, dropped: int, tracked: int) -> str | None:
        """Note the totals, then settle if due (a full collection, thawing first when enough was
        dropped, then a freeze), else run the scheduled full collection if due. Returns what it did:
        "settle", "collect" or None."""
        self.observe(created, dropped)
        if self.due():
            self._settle(tracked)
            return "settle"
        if self._clock() - self._last_full_s >= self._full_every_s:
            self._collect()
            return "collect"
        return None

    def _settle(self, tracked: int) -> None:
        self._first_unsettled_s = None
        thaw = self._dropped_since_thaw >= max(THAW_DROPPED_MIN, THAW_DROPPED_SHARE * tracked)
        if thaw:
            self._gc.unfreeze()
            self._dropped_since_thaw = 0
            self.thaws += 1
        started = time.perf_counter()
        self._collect()
        self._gc.freeze()
        self.settles += 1
        logger.debug(
            "heap settled for %d targets (%s): %d objects frozen, %.0f ms",
            tracked,
            "thawed first" if thaw else "no thaw",
            self._gc.get_freeze_count(),
            1000 * (time.perf_counter() - started),
        )

    def _collect(self) -> None:
        self._gc.collect()
        self._last_full_s = self._clock()
        self.collections += 1

    def collect_young(self) -> None:
        """Collect the two young generations (what survives goes to the oldest, deferred one)."""
        self._gc.collect(1)

    async def run(
        self,
        totals: Callable[[], tuple[int, int, int]],
        every_s: float = 5.0,
        young_every_s: float = YOUNG_EVERY_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Background task: the young collections every `young_every_s`; every `every_s`, `tick`
        with `totals()` (created, dropped, tracked now)."""
        next_tick = self._clock() + every_s
        while True:
            await sleep(young_every_s)
            self.collect_young()
            if self._clock() >= next_tick:
                next_tick = self._clock() + every_s
                self.tick(*totals())


class PauseRecorder:
    """Times every collection while installed; `drain()` moves the times into `histogram` (label
    `generation`).

    The collector's callback only appends to a bounded deque: a collection can start inside any
    allocation, including one made while prometheus_client holds the histogram's (non-reentrant)
    lock, so observing there could wait forever on a lock its own thread holds.
    """

    def __init__(self, histogram: Histogram, clock: Callable[[], float] = time.perf_counter) -> None:
        self._histogram = histogram
        self._clock = clock
        self._started: float | None = None
        self._pending: deque[tuple[int, float]] = deque(maxlen=PENDING_PAUSES)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self._clock()
        elif self._started is not None:
            self._pending.append((info["generation"], self._clock() - self._started))
            self._started = None

    def drain(self) -> None:
        """Observe the pauses timed since the last drain (call it outside any collection)."""
        while self._pending:
            generation, seconds = self._pending.popleft()
            self._histogram.labels(str(generation)).observe(seconds)

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
        self.drain()
