"""The ScaledObject triggers prescaler tracks, keyed by (namespace, name, metadata hash).

A target starts lazily on the first RPC that names it (KEDA calls GetMetricSpec first), is
refreshed in the background by its Refresher, and is dropped after `idle_evict_s` without an RPC.
Metadata is parsed once per distinct map; a bad map is remembered as its ConfigError, whose text is
bounded (values are quoted truncated), so the cache's memory is bounded too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import NamedTuple

from scaler.digest import metadata_digest
from scaler.errors import ConfigError, SourceError, WarmingUp
from scaler.forecast_pool import ForecastPool
from scaler.policy import Decision
from scaler.refresher import Refresher, TargetKey
from scaler.settings import Settings
from scaler.sources.base import Source
from scaler.sources.catalog import SourceCatalog, SourceFactory
from scaler.telemetry import Telemetry
from scaler.trigger import TriggerConfig, parse_trigger

logger = logging.getLogger(__name__)

PARSE_CACHE_SIZE = 4096


class Sources(NamedTuple):
    """A trigger's sources, all on the same server with the same options; None where unused."""

    signal: Source
    """`query`."""
    rate: Source | None
    """`rateQuery`."""
    replicas: Source | None
    """`replicasQuery`: in predictive mode, and with `leadTime: auto` (the replicas asked for)."""
    ready: Source | None
    """`readyQuery`, with `leadTime: auto`."""
    slo: Source | None = None
    """`sloQuery`, with `errorBudget`."""


def open_sources(
    config: TriggerConfig, settings: Settings, factory: SourceFactory, namespace: str = ""
) -> Sources:
    """The trigger's sources (`Sources`)."""

    def side(query: str | None, ignore_null_values: bool = config.ignore_null_values) -> Source | None:
        if query is None:
            return None
        return factory(
            dataclasses.replace(config, query=query, ignore_null_values=ignore_null_values),
            settings,
            namespace,
        )

    # The replicas refine predictive answers and time start-ups; an empty result is unknown, not 0.
    counts = config.mode == "predictive" or config.lead_time_auto
    replicas = side(config.replicas_query, False) if counts else None
    ready = side(config.ready_query, False) if config.lead_time_auto else None
    # An empty SLO share (no requests in its window) is no read, not a share of 0.
    slo = side(config.slo_query, False)
    return Sources(factory(config, settings, namespace), side(config.rate_query), replicas, ready, slo)


class _Tracked:
    __slots__ = ("last_access_s", "leases", "refresher", "task")

    def __init__(self, refresher: Refresher, task: asyncio.Task[None], now_s: float) -> None:
        self.refresher = refresher
        self.task = task
        self.last_access_s = now_s
        self.leases = 0


class Registry:
    """Targets by key; the gRPC handlers' only way to state."""

    def __init__(
        self,
        settings: Settings,
        telemetry: Telemetry,
        *,
        source_factory: SourceFactory | None = None,
        pool: ForecastPool | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        parse: Callable[..., TriggerConfig] = parse_trigger,
    ) -> None:
        self._pool = pool
        self._parse = parse
        self._settings = settings
        self._telemetry = telemetry
        # The production catalog is owned (and closed) here; an injected factory belongs to its caller.
        self._catalog: SourceCatalog | None = None
        if source_factory is None:
            source_factory = self._catalog = SourceCatalog(settings)
        self._source_factory = source_factory
        self._clock = clock
        self._wall = wall
        self._parsed: OrderedDict[str, TriggerConfig | ConfigError] = OrderedDict()
        self._targets: dict[TargetKey, _Tracked] = {}
        self._series_users: dict[tuple[str, str, str], int] = {}
        """Tracked targets per (namespace, name, metric): the names their per-target series share."""
        self.created_total = 0
        """Targets created so far (with `dropped_total`: what the server's heap settler watches)."""
        self.dropped_total = 0
        """Targets dropped so far (evicted, or closed with the registry)."""

    def __len__(self) -> int:
        return len(self._targets)

    def config(self, metadata: Mapping[str, str]) -> tuple[str, TriggerConfig]:
        """(digest, parsed config) of a metadata map; raises its ConfigError. Parsed once per map."""
        digest = metadata_digest(metadata)
        parsed = self._parsed.get(digest)
        if parsed is None:
            try:
                parsed = self._parse(metadata, max_history_s=self._settings.max_history_s)
            except ConfigError as exc:
                # A fresh error: the raised one's traceback holds the frames, and so the metadata.
                parsed = ConfigError(list(exc.problems))
            self._parsed[digest] = parsed
            if len(self._parsed) > PARSE_CACHE_SIZE:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(digest)
        if isinstance(parsed, ConfigError):
            raise ConfigError(list(parsed.problems))
        return digest, parsed

    def track(self, namespace: str, name: str, metadata: Mapping[str, str]) -> Refresher:
        """The target's refresher, started now if this is the first RPC naming it."""
        # A tracked target's metadata parsed once, when it was created: its calls skip the parse
        # cache, which holds fewer maps than a large cluster has targets.
        tracked = self._targets.get(TargetKey(namespace, name, metadata_digest(metadata)))
        now = self._clock()
        if tracked is None:
            digest, config = self.config(metadata)
            key = TargetKey(namespace, name, digest)
            try:
                sources = open_sources(config, self._settings, self._source_factory, namespace)
            except ValueError as exc:
                raise ConfigError([str(exc)]) from exc
            except OSError as exc:
                raise SourceError(f"{key}: cannot open its source: {exc}") from exc
            refresher = Refresher(
                key,
                config,
                sources.signal,
                self._telemetry,
                max_age_s=self._settings.max_age_s,
                rate_source=sources.rate,
                replicas_source=sources.replicas,
                ready_source=sources.ready,
                slo_source=sources.slo,
                pool=self._pool,
                wall=self._wall,
            )
            task = asyncio.create_task(refresher.run(), name=f"refresh {key}")
            tracked = self._targets[key] = _Tracked(refresher, task, now)
            series = (namespace, name, config.metric_name)
            self._series_users[series] = self._series_users.get(series, 0) + 1
            self.created_total += 1
            self._telemetry.tracked_targets.set(len(self._targets))
            logger.info(
                "tracking %s (%s, source %s, step %ss)", key, config.mode, config.source, config.step_s
            )
        tracked.last_access_s = now
        return tracked.refresher

    async def decision(
        self, namespace: str, name: str, metadata: Mapping[str, str], wait_s: float
    ) -> Decision:
        """The current decision; on a target's first call waits up to `wait_s` for its first read."""
        return await self.answer(self.track(namespace, name, metadata), wait_s)

    async def answer(self, refresher: Refresher, wait_s: float) -> Decision:
        """`refresher`'s current decision, waiting up to `wait_s` for its first read."""
        if refresher.decision is None:
            try:
                async with asyncio.timeout(wait_s):
                    await refresher.first_attempt()
            except TimeoutError:
                raise WarmingUp(
                    f"{refresher.key}: the first read of its signal did not finish within {wait_s:.1f}s"
                ) from None
        return refresher.current()

    @contextlib.asynccontextmanager
    async def leased(
        self, namespace: str, name: str, metadata: Mapping[str, str]
    ) -> AsyncIterator[Refresher]:
        """The target's refresher, kept from eviction while a stream holds it."""
        refresher = self.track(namespace, name, metadata)
        tracked = self._targets[refresher.key]
        tracked.leases += 1
        try:
            yield refresher
        finally:
            tracked.leases -= 1
            tracked.last_access_s = self._clock()

    def describe(
        self, namespace: str | None = None, name: str | None = None, limit: int = 1000
    ) -> dict[str, object]:
        """The `/targets` debug view: each tracked target (optionally only those of `namespace`
        and/or `name`) as `Refresher.describe` shows it, at most `limit` of them; O(targets)."""
        now = self._clock()
        shown: list[dict[str, object]] = []
        matched = 0
        for key, tracked in self._targets.items():
            if namespace is not None and key.namespace != namespace:
                continue
            if name is not None and key.name != name:
                continue
            matched += 1
            if len(shown) < limit:
                view = tracked.refresher.describe()
                view["since_last_rpc_s"] = round(now - tracked.last_access_s, 3)
                view["open_streams"] = tracked.leases
                shown.append(view)
        return {"tracked": len(self._targets), "matched": matched, "shown": len(shown), "targets": shown}

    async def evict_idle(self) -> int:
        """Drop targets without an RPC or open stream for `idle_evict_s`; returns how many."""
        limit = self._clock() - self._settings.idle_evict_s
        idle = [k for k, t in self._targets.items() if t.leases == 0 and t.last_access_s < limit]
        for key in idle:
            await self._drop(key)
            self._telemetry.evictions.inc()
            logger.info("stopped tracking %s: no RPC for %ss", key, self._settings.idle_evict_s)
        return len(idle)

    async def run_evictions(self, every_s: float = 30.0) -> None:
        """Background task: evict idle targets periodically."""
        while True:
            await asyncio.sleep(every_s)
            await self.evict_idle()

    async def _drop(self, key: TargetKey) -> None:
        tracked = self._targets.pop(key)
        self.dropped_total += 1
        tracked.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tracked.task
        await tracked.refresher.aclose()
        series = (key.namespace, key.name, tracked.refresher.config.metric_name)
        # The per-target series are named by namespace, name and metric: while the ScaledObject's new
        # metadata (another digest) is tracked under the same names, the series are its own.
        users = self._series_users.pop(series) - 1
        if users:
            self._series_users[series] = users
        else:
            self._telemetry.forget_target(*series)
        self._telemetry.tracked_targets.set(len(self._targets))

    async def aclose(self) -> None:
        """Stop every refresher and close every source, then the shared HTTP clients."""
        for key in list(self._targets):
            await self._drop(key)
        if self._catalog is not None:
            await self._catalog.aclose()
