"""Predictive and shadow mode against a real Prometheus backfilled with a real diurnal trace."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from scaler.forecast_pool import ForecastPool
from scaler.policy import Decision
from scaler.refresher import Refresher, TargetKey
from scaler.registry import open_sources
from scaler.settings import Settings
from scaler.sources.lean_transport import LeanTransport
from scaler.sources.prometheus import PrometheusSource
from scaler.telemetry import Telemetry
from scaler.traces import load_trace
from scaler.trigger import parse_trigger
from tests.prometheus_server import Backfill, backfilled_prometheus, shift_for
from tests.servers import FakeClock, walk

pytestmark = pytest.mark.prometheus

TAXI = Path(__file__).parent / "fixtures" / "nyc_taxi_10d.csv"
QUERY = "last_over_time(prescaler_test_taxi[30m])"
REPLICAS = 'last_over_time(kube_deployment_status_replicas{deployment="taxi"}[30m])'
THRESHOLD = 100.0
# The replicas series: 5 % short of the load's worth, within the HPA's 10 % tolerance.
SHORT = 0.95


class Taxi(NamedTuple):
    url: str
    shift_s: float
    start_s: float


@pytest.fixture(scope="module")
def taxi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Taxi]:
    trace = load_trace(TAXI)
    shift = shift_for(trace, time.time())
    at_s = (trace.at_s + shift).tolist()
    replicas = np.floor(SHORT * trace.values / THRESHOLD).tolist()
    series = [
        Backfill("prescaler_test_taxi", {}, at_s, trace.values.tolist()),
        Backfill("kube_deployment_status_replicas", {"deployment": "taxi"}, at_s, replicas),
    ]
    with backfilled_prometheus(series, tmp_path_factory.mktemp("taxi")) as url:
        yield Taxi(url, shift, float(trace.at_s[0] + shift))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncBaseTransport]:
    """The production transport, shared by the test's sources as the scaler's are."""
    transport = LeanTransport()
    yield transport
    await transport.aclose()


def _refresher(
    taxi: Taxi, http: httpx.AsyncBaseTransport, clock: FakeClock, mode: str, **extra: str
) -> tuple[Refresher, CollectorRegistry]:
    config = parse_trigger(
        {
            **extra,
            "serverAddress": taxi.url,
            "query": QUERY,
            "threshold": repr(THRESHOLD),
            "mode": mode,
            "step": "5m",
            "leadTime": "1h",
            "history": "7d",
            "refitInterval": "6h",
        }
    )
    registry = CollectorRegistry()
    sources = open_sources(
        config, Settings(), lambda c, _s, _ns: PrometheusSource(c, transport=http, clock=clock)
    )
    pool = ForecastPool(1, executor=ThreadPoolExecutor(1))
    refresher = Refresher(
        TargetKey("serving", "taxi", "cd" * 32),
        config,
        sources.signal,
        Telemetry(registry),
        max_age_s=900,
        replicas_source=sources.replicas,
        pool=pool,
        wall=clock,
    )
    return refresher, registry


def _onset(times: np.ndarray, series: np.ndarray, observed: np.ndarray) -> float:
    """When `series` has risen, after its own low, by a quarter of the observed morning ramp."""
    low = int(np.argmin(series))
    rise = 0.25 * (observed.max() - observed.min())
    return float(times[low + int(np.argmax(series[low:] >= series[low] + rise))])


async def test_predictive_value_rises_ahead_of_the_morning_ramp(
    taxi: Taxi, client: httpx.AsyncBaseTransport
) -> None:
    clock = FakeClock()
    refresher, registry = _refresher(taxi, client, clock, "predictive")
    # Day 9 of the trace (7 days of history before it), from 01:00 to 11:00 trace time.
    seen = await walk(refresher, clock, taxi.start_s + 8 * 86400 + 3600, 120)
    times = np.array([t for t, _, _ in seen])
    observed = np.array([o for _, o, _ in seen])
    value = np.array([v for _, _, v in seen])
    ahead_s = _onset(times, observed, observed) - _onset(times, value, observed)
    assert 1800 <= ahead_s <= 5400, f"rose {ahead_s / 60:.0f} min ahead of the ramp; lead time is 60 min"
    assert (value >= observed).all()
    assert registry.get_sample_value("prescaler_refits_total", {"outcome": "ok"}) == 2  # at 01:00 and 07:00


async def test_shadow_equals_reactive_and_exports_the_forecast(
    taxi: Taxi, client: httpx.AsyncBaseTransport
) -> None:
    clock = FakeClock()
    refresher, registry = _refresher(taxi, client, clock, "shadow")
    seen = await walk(refresher, clock, taxi.start_s + 8 * 86400 + 3600, 48)
    assert all(value == observed for _, observed, value in seen)
    labels = {"namespace": "serving", "name": "taxi", "metric": "prescaler"}
    bound = registry.get_sample_value("prescaler_target_value", {**labels, "kind": "bound"})
    observed = registry.get_sample_value("prescaler_target_value", {**labels, "kind": "observed"})
    assert bound is not None and observed is not None
    assert (
        registry.get_sample_value("prescaler_forecast_quality", {**labels, "score": "coverage"}) is not None
    )


async def _decisions(refresher: Refresher, clock: FakeClock, start_s: float, steps: int) -> list[Decision]:
    clock.now_s = start_s
    decisions = []
    for _ in range(steps):
        await refresher.refresh()
        assert refresher.predictor is not None
        await refresher.predictor.settled()
        decisions.append(refresher.current())
        clock.advance(300.0)
    return decisions


async def test_values_within_the_hpas_tolerance_are_raised_past_it(
    taxi: Taxi, client: httpx.AsyncBaseTransport
) -> None:
    clock = FakeClock()
    refresher, _ = _refresher(taxi, client, clock, "predictive", replicasQuery=REPLICAS)
    decisions = await _decisions(refresher, clock, taxi.start_s + 8 * 86400 + 3600, 24)
    raised = [d for d in decisions if d.reason.endswith("+tolerance")]
    assert raised
    for decision in decisions:
        assert decision.value >= decision.observed
        # The replicas series at the same time, as the fixture wrote it.
        replicas = math.floor(SHORT * decision.observed / THRESHOLD)
        within = replicas * THRESHOLD < decision.value <= replicas * 1.1 * THRESHOLD
        assert not within, f"{decision}: the HPA would keep {replicas} replicas"
        if decision in raised:
            assert decision.value == (math.floor(round(replicas * THRESHOLD * 1000 * 1.1, 6)) + 1.25) / 1000


async def test_unreadable_replicas_leave_the_value_unraised_and_are_logged(
    taxi: Taxi, client: httpx.AsyncBaseTransport, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    several = 'last_over_time({__name__=~"prescaler_test_taxi|kube_deployment_status_replicas"}[30m])'
    refresher, registry = _refresher(taxi, client, clock, "predictive", replicasQuery=several)
    decisions = await _decisions(refresher, clock, taxi.start_s + 8 * 86400 + 3600, 4)
    assert [d.reason for d in decisions if "+" in d.reason] == []
    assert "reading the replicas (`replicasQuery`) failed" in caplog.text and "2 series" in caplog.text
    assert caplog.text.count("reading the replicas") == 1  # once, not every step
    assert registry.get_sample_value("prescaler_replicas_errors_total", {"error": "QueryShapeError"}) == 4
    # The signal itself was read fine.
    assert (
        registry.get_sample_value(
            "prescaler_source_errors_total", {"source": "prometheus", "error": "QueryShapeError"}
        )
        is None
    )


async def test_an_empty_replicas_result_is_unknown_not_zero_replicas(
    taxi: Taxi, client: httpx.AsyncBaseTransport, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    mistyped = 'kube_deployment_status_replicas{deployment="taxy"}'  # matches nothing
    refresher, registry = _refresher(taxi, client, clock, "predictive", replicasQuery=mistyped)
    decisions = await _decisions(refresher, clock, taxi.start_s + 8 * 86400 + 3600, 3)
    assert [d.reason for d in decisions if "+" in d.reason] == []
    assert "returned no series" in caplog.text
    assert registry.get_sample_value("prescaler_replicas_errors_total", {"error": "NullValueError"}) == 3
