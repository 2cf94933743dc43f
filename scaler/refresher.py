"""One target's background loop: source -> history -> policy -> cached Decision.

The gRPC handlers never read a source: they read `Refresher.current()`, which is O(1). Each loop
iteration samples the signal, appends it to the target's history, and replaces the cached decision.
A failed read keeps the previous decision (it ages, and `current()` refuses it once it is older
than max age) and records the error, which is what KEDA sees when no fresh value is left.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from scaler.errors import PrescalerError, QueryShapeError, SourceError, StaleValue, WarmingUp
from scaler.history import History
from scaler.policy import Decision, decide
from scaler.sources.base import Source
from scaler.telemetry import Telemetry
from scaler.trigger import TriggerConfig
from scaler.units import format_duration

logger = logging.getLogger(__name__)

# History kept per target: one day at the trigger's step (the forecaster asks for more when it
# needs it, via the source's range query).
HISTORY_SPAN_S = 86400.0


class TargetKey(NamedTuple):
    """Identity of one trigger of one ScaledObject: KEDA may send several triggers per object."""

    namespace: str
    name: str
    digest: str
    """Hash of the trigger's metadata map."""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}#{self.digest[:8]}"


class _TargetLog(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: str, kwargs: object) -> tuple[str, object]:  # type: ignore[override]
        return f"[{self.extra['target'] if self.extra else '?'}] {msg}", kwargs


class Refresher:
    """Keeps one target's decision fresh; `run()` is its background task."""

    def __init__(
        self,
        key: TargetKey,
        config: TriggerConfig,
        source: Source,
        telemetry: Telemetry,
        *,
        max_age_s: float,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.key = key
        self.config = config
        self.source = source
        self.history = History(config.step_s, max(2, math.ceil(HISTORY_SPAN_S / config.step_s)))
        self.max_age_s = max_age_s
        self._telemetry = telemetry
        self._wall = wall
        self._sleep = sleep
        self._decision: Decision | None = None
        self._error: PrescalerError | None = None
        self._attempted = asyncio.Event()
        self._refreshed = asyncio.Event()
        self._log = _TargetLog(logger, {"target": str(key)})
        # Spread the targets' polls over the step instead of all at its start.
        self._phase_s = (int(key.digest[:8], 16) % 1000) / 1000 * config.step_s

    @property
    def decision(self) -> Decision | None:
        """The newest decision, fresh or not."""
        return self._decision

    def current(self) -> Decision:
        """The decision to answer with now; raises when there is no value prescaler can vouch for."""
        decision = self._decision
        if decision is None:
            if self._error is not None:
                raise type(self._error)(str(self._error))
            raise WarmingUp(f"{self.key}: no value yet; the first read of its signal is still running")
        age = self._wall() - decision.at_s
        if age > self.max_age_s:
            cause = f"; last error: {self._error}" if self._error is not None else ""
            raise StaleValue(
                f"{self.key}: newest value is {format_duration(age)} old, over the "
                f"{format_duration(self.max_age_s)} max age{cause}"
            )
        return decision

    async def first_attempt(self) -> None:
        """Wait until the first read has finished, successfully or not."""
        await self._attempted.wait()

    async def refreshed(self) -> None:
        """Wait until the next refresh has finished, successfully or not."""
        await self._refreshed.wait()

    async def refresh(self) -> None:
        """One iteration: read the signal and replace the decision (or record why not)."""
        source_kind = self.config.source
        try:
            sample = await self.source.sample()
        except (SourceError, QueryShapeError) as exc:
            self._telemetry.source_errors.labels(source_kind, type(exc).__name__).inc()
            if self._error is None or str(self._error) != str(exc):
                self._log.warning("reading the signal failed: %s", exc)
            self._error = exc
            self._wake()
            return
        finally:
            self._attempted.set()
        if self._error is not None:
            self._log.info("reading the signal works again")
        self._error = None
        self._telemetry.samples.labels(source_kind).inc()
        self.history.append(sample.at_s, sample.value)
        decision = decide(sample.at_s, sample.value, self.config)
        self._record(decision)

    def _record(self, decision: Decision) -> None:
        previous = self._decision
        self._decision = decision
        t = self._telemetry
        t.decisions.labels(self.config.mode, decision.reason).inc()
        labels = (self.key.namespace, self.key.name, self.config.metric_name)
        t.target_value.labels(*labels, "observed").set(decision.observed)
        t.target_value.labels(*labels, "value").set(decision.value)
        t.target_active.labels(*labels).set(1 if decision.active else 0)
        if previous is None or previous.active != decision.active or previous.reason != decision.reason:
            self._log.info(
                "now %s: value %.3f (%s), activation threshold %.3f",
                "active" if decision.active else "inactive",
                decision.value,
                decision.reason,
                self.config.activation_threshold,
            )
        self._wake()

    def _wake(self) -> None:
        # Wake every stream waiting on this target; each compares and sends only a change.
        event, self._refreshed = self._refreshed, asyncio.Event()
        event.set()

    async def run(self) -> None:
        """Refresh every step, aligned to the target's phase within the step, until cancelled."""
        step = self.config.step_s
        while True:
            try:
                await self.refresh()
            except Exception:
                # A bug must not end the loop silently: log it; the decision ages into UNAVAILABLE.
                self._log.exception("refresh failed unexpectedly")
            now = self._wall()
            delay = step - ((now - self._phase_s) % step)
            await self._sleep(delay if delay > 0.001 else step)
