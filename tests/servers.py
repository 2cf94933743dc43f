"""Test helpers: a real prescaler App on 127.0.0.1 with scripted sources and clocks."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from prometheus_client import CollectorRegistry

from scaler._generated import externalscaler_pb2 as pb
from scaler._generated import externalscaler_pb2_grpc as pb_grpc
from scaler.errors import PrescalerError
from scaler.forecast_pool import ForecastPool
from scaler.refresher import Refresher, TargetKey
from scaler.server.app import App, Ports
from scaler.settings import Settings
from scaler.sources import Sample, Series, Source
from scaler.sources.replay import ReplaySource
from scaler.telemetry import Telemetry
from scaler.trigger import TriggerConfig, parse_trigger

# A replayed synthetic day (the `diurnal_trace_dir` fixture).
DAY = 86400.0
# A Monday 00:00 UTC; the synthetic day ramps up from 06:00 to 12:00.
EPOCH = 1_700_438_400.0


def diurnal(t: np.ndarray) -> np.ndarray:
    phase = ((t - EPOCH) % DAY) / DAY
    return 5.0 + 95.0 * np.clip(np.sin(2 * np.pi * (phase - 0.25)), 0.0, None)


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self, now_s: float = 1_700_000_000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class Counts:
    """A side query's value as a function of the (fake) time: `replicasQuery`, `readyQuery`, `sloQuery`."""

    def __init__(self, clock: FakeClock, count: Callable[[float], float]) -> None:
        self.clock, self.count = clock, count
        self.failing: PrescalerError | None = None

    async def sample(self) -> Sample:
        if self.failing is not None:
            raise self.failing
        return Sample(self.clock(), self.count(self.clock()))

    async def history(self, start_s: float, end_s: float, step_s: float) -> Series:
        raise NotImplementedError("not used by these tests")

    async def aclose(self) -> None:
        pass


class ScriptedSource:
    """A source whose next answer the test sets: a value, an exception, or `hold` (never answers)."""

    def __init__(self, clock: Callable[[], float], value: float | PrescalerError = 0.0) -> None:
        self.clock = clock
        self.answer: float | PrescalerError = value
        self.hold = False
        self.calls = 0
        self.closed = False

    async def sample(self) -> Sample:
        import asyncio

        self.calls += 1
        if self.hold:
            await asyncio.Event().wait()
        if isinstance(self.answer, PrescalerError):
            raise self.answer
        return Sample(self.clock(), self.answer)

    async def history(self, start_s: float, end_s: float, step_s: float) -> Series:
        raise NotImplementedError("not used by these tests")

    async def aclose(self) -> None:
        self.closed = True


class SourceBook:
    """source_factory for App: one ScriptedSource per trigger, found again by a `tag` metadata... or by query."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.by_query: dict[str, ScriptedSource] = {}

    def __call__(self, config: TriggerConfig, settings: Settings, namespace: str = "") -> Source:
        key = config.query or config.trace or ""
        source = self.by_query.get(key)
        if source is None:
            source = self.by_query[key] = ScriptedSource(self.clock)
        return source

    def get(self, query: str) -> ScriptedSource:
        if query not in self.by_query:
            self.by_query[query] = ScriptedSource(self.clock)
        return self.by_query[query]


def metadata(query: str = "load", **extra: str) -> dict[str, str]:
    """Valid Prometheus-trigger metadata (the source behind it is scripted)."""
    base = {"serverAddress": "http://prometheus.test:9090", "query": query, "threshold": "10"}
    base.update(extra)
    return base


def ref(meta: dict[str, str], name: str = "llm", namespace: str = "serving") -> pb.ScaledObjectRef:
    return pb.ScaledObjectRef(name=name, namespace=namespace, scalerMetadata=meta)


@dataclasses.dataclass
class Running:
    app: App
    ports: Ports
    channel: grpc.aio.Channel
    stub: pb_grpc.ExternalScalerStub
    clock: FakeClock
    sources: SourceBook
    metrics: CollectorRegistry

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.metrics.get_sample_value(name, labels or {})


@contextlib.asynccontextmanager
async def running_app(
    *,
    credentials: grpc.ChannelCredentials | None = None,
    target_host: str = "127.0.0.1",
    channel_options: list[tuple[str, Any]] | None = None,
    real_sources: bool = False,
    **overrides: Any,
) -> AsyncIterator[Running]:
    """A started App on free loopback ports and a channel to it; sources are scripted unless
    `real_sources` (then the production catalog and the real clock are used)."""
    clock = FakeClock()
    sources = SourceBook(clock)
    metrics = CollectorRegistry()
    fields: dict[str, Any] = {
        "host": "127.0.0.1",
        "grpc_port": 0,
        "metrics_port": 0,
        "grace_s": 1.0,
        "drain_s": 0.0,
    }
    fields.update(overrides)
    settings = Settings(**fields)
    if real_sources:
        app = App(settings, metrics=metrics)
    else:
        app = App(settings, metrics=metrics, source_factory=sources, wall=clock)
    ports = await app.start()
    address = f"{target_host}:{ports.grpc}"
    if credentials is None:
        channel = grpc.aio.insecure_channel(address, options=channel_options)
    else:
        channel = grpc.aio.secure_channel(address, credentials, options=channel_options)
    try:
        yield Running(app, ports, channel, pb_grpc.ExternalScalerStub(channel), clock, sources, metrics)
    finally:
        await channel.close()
        await app.stop()


async def walk(
    refresher: Refresher, clock: FakeClock, start_s: float, steps: int, step_s: float = 300.0
) -> list[tuple[float, float, float]]:
    """Refresh a predictive target every `step_s` of fake time from `start_s`, waiting for each refit
    (the fake clock runs faster than a fit); returns (time, observed, value) per step."""
    clock.now_s = start_s
    await refresher.refresh()
    assert refresher.predictor is not None
    await refresher.predictor.settled()
    seen = []
    for _ in range(steps):
        await refresher.refresh()
        await refresher.predictor.settled()
        decision = refresher.current()
        seen.append((clock.now_s, decision.observed, decision.value))
        clock.advance(step_s)
    return seen


PREDICTIVE_ON_PROMETHEUS = {
    "source": "prometheus",
    "serverAddress": "http://prometheus.test:9090",
    "query": "load",
    "threshold": "10",
    "step": "5m",
    "history": "7d",
    "mode": "predictive",
    "refitInterval": "6h",
}
"""A predictive trigger whose signal is the replayed diurnal trace and whose side queries the test scripts."""


def side_query_refresher(
    trace_dir: Path, clock: FakeClock, meta: dict[str, str], **sources: Source
) -> tuple[Refresher, CollectorRegistry]:
    """A predictive Refresher on `diurnal.csv` (`trace_dir` fixture) with `PREDICTIVE_ON_PROMETHEUS`
    plus `meta`, the side queries' `sources` (`replicas_source=`, `ready_source=`, `slo_source=`),
    a thread pool for fits and its own registry."""
    registry = CollectorRegistry()
    refresher = Refresher(
        TargetKey("serving", "llm", "ab" * 32),
        parse_trigger({**PREDICTIVE_ON_PROMETHEUS, **meta}),
        ReplaySource(trace_dir / "diurnal.csv", clock=clock),
        Telemetry(registry),
        max_age_s=600,
        pool=ForecastPool(1, executor=ThreadPoolExecutor(1)),
        wall=clock,
        **sources,  # type: ignore[arg-type]
    )
    return refresher, registry
