"""Predictive and shadow mode against a real Prometheus backfilled with a real diurnal trace."""

from __future__ import annotations

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
from scaler.refresher import Refresher, TargetKey
from scaler.sources.prometheus import PrometheusSource
from scaler.telemetry import Telemetry
from scaler.traces import load_trace
from scaler.trigger import parse_trigger
from tests.prometheus_server import Backfill, backfilled_prometheus, shift_for
from tests.servers import FakeClock, walk

pytestmark = pytest.mark.prometheus

TAXI = Path(__file__).parent / "fixtures" / "nyc_taxi_10d.csv"
QUERY = "last_over_time(prescaler_test_taxi[30m])"


class Taxi(NamedTuple):
    url: str
    shift_s: float
    start_s: float


@pytest.fixture(scope="module")
def taxi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Taxi]:
    trace = load_trace(TAXI)
    shift = shift_for(trace, time.time())
    series = [Backfill("prescaler_test_taxi", {}, (trace.at_s + shift).tolist(), trace.values.tolist())]
    with backfilled_prometheus(series, tmp_path_factory.mktemp("taxi")) as url:
        yield Taxi(url, shift, float(trace.at_s[0] + shift))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield http


def _refresher(
    taxi: Taxi, http: httpx.AsyncClient, clock: FakeClock, mode: str
) -> tuple[Refresher, CollectorRegistry]:
    config = parse_trigger(
        {
            "serverAddress": taxi.url,
            "query": QUERY,
            "threshold": "1000",
            "mode": mode,
            "step": "5m",
            "leadTime": "1h",
            "history": "7d",
            "refitInterval": "6h",
        }
    )
    registry = CollectorRegistry()
    source = PrometheusSource(config, client=http, clock=clock)
    pool = ForecastPool(1, executor=ThreadPoolExecutor(1))
    refresher = Refresher(
        TargetKey("serving", "taxi", "cd" * 32),
        config,
        source,
        Telemetry(registry),
        max_age_s=900,
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
    taxi: Taxi, client: httpx.AsyncClient
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


async def test_shadow_equals_reactive_and_exports_the_forecast(taxi: Taxi, client: httpx.AsyncClient) -> None:
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
