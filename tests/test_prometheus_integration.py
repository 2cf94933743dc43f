"""PrometheusSource against a real Prometheus server holding a backfilled diurnal trace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from scaler.errors import (
    NullValueError,
    QueryShapeError,
    SourceResponseError,
    SourceTimeout,
    SourceUnreachable,
)
from scaler.settings import Settings
from scaler.sources.lean_transport import LeanTransport
from scaler.sources.prometheus import PrometheusSource
from scaler.trigger import TriggerConfig
from tests.prometheus_server import MULTI_VALUES, LoadedPrometheus, free_port

pytestmark = pytest.mark.prometheus

LOOKBACK_S = 300.0
"""Prometheus' default lookback: an instant selector takes the newest sample at most 5 minutes old."""


def trigger(address: str, query: str, **overrides: Any) -> TriggerConfig:
    values: dict[str, Any] = {"threshold": 1.0, "server_address": address, "query": query}
    return TriggerConfig(**(values | overrides))


@asynccontextmanager
async def opened(
    prom: LoadedPrometheus, query: str, *, at_s: float | None = None, **overrides: Any
) -> AsyncIterator[PrometheusSource]:
    """A source on the test server whose clock stands at `at_s` (default: the trace's last sample)."""
    config = trigger(prom.url, query, **overrides)
    # The production transport, so every test here also checks it against a real Prometheus (keep-alive,
    # chunked range answers of 10,000 points).
    transport = LeanTransport()
    now_s = prom.end_s if at_s is None else at_s
    source = PrometheusSource(config, transport=transport, clock=lambda: now_s)
    try:
        yield source
    finally:
        await source.aclose()
        await transport.aclose()


def expected_at(prom: LoadedPrometheus, grid_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """What Prometheus evaluates the trace to at each time: its newest sample within the lookback."""
    index = np.searchsorted(prom.at_s, grid_s, side="right") - 1
    fresh = (index >= 0) & (grid_s - prom.at_s[np.maximum(index, 0)] <= LOOKBACK_S)
    return np.where(fresh, prom.values[np.maximum(index, 0)], np.nan)


# --- sample() ----------------------------------------------------------------------------------


async def test_sample_is_the_traces_last_value(prometheus_url: LoadedPrometheus) -> None:
    async with opened(prometheus_url, prometheus_url.selector, at_s=prometheus_url.end_s + 30) as source:
        sample = await source.sample()
    assert sample.at_s == prometheus_url.end_s + 30
    assert sample.value == prometheus_url.values[-1]


@pytest.mark.parametrize("index", [0, 1000, 2016, -2])
@pytest.mark.parametrize("offset_s", [0.0, 299.0])
async def test_sample_at_trace_times(prometheus_url: LoadedPrometheus, index: int, offset_s: float) -> None:
    at_s = float(prometheus_url.at_s[index]) + offset_s
    async with opened(prometheus_url, prometheus_url.selector, at_s=at_s) as source:
        assert (await source.sample()).value == prometheus_url.values[index]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("sum(prescaler_test_multi)", sum(MULTI_VALUES.values()), id="sum-of-three"),
        pytest.param('prescaler_test_multi{instance="b"}', MULTI_VALUES["b"], id="one-of-three"),
        pytest.param("scalar(sum(prescaler_test_multi))", sum(MULTI_VALUES.values()), id="scalar"),
        pytest.param("2 * 3", 6.0, id="literal-scalar"),
        pytest.param("-1 * sum(prescaler_test_multi)", -sum(MULTI_VALUES.values()), id="negative"),
    ],
)
async def test_sample_aggregations(prometheus_url: LoadedPrometheus, query: str, expected: float) -> None:
    async with opened(prometheus_url, query) as source:
        assert (await source.sample()).value == expected


async def test_sum_of_the_trace(prometheus_url: LoadedPrometheus) -> None:
    async with opened(prometheus_url, f"sum({prometheus_url.metric})") as source:
        assert (await source.sample()).value == prometheus_url.values[-1]


async def test_three_series_is_a_shape_error(prometheus_url: LoadedPrometheus) -> None:
    async with opened(prometheus_url, prometheus_url.multi_metric) as source:
        with pytest.raises(QueryShapeError, match=r"query `prescaler_test_multi` returned 3 series; it must"):
            await source.sample()


@pytest.mark.parametrize(
    ("query", "after_end_s"),
    [
        pytest.param("prescaler_test_nan", 0.0, id="nan-value"),
        pytest.param('prescaler_test_load{trace="absent"}', 0.0, id="no-such-series"),
        pytest.param('prescaler_test_load{trace="ec2_cpu"}', LOOKBACK_S + 60, id="stale-after-lookback"),
    ],
)
@pytest.mark.parametrize("ignore_null", [True, False])
async def test_null_results(
    prometheus_url: LoadedPrometheus, query: str, after_end_s: float, ignore_null: bool
) -> None:
    at_s = prometheus_url.end_s + after_end_s
    async with opened(prometheus_url, query, at_s=at_s, ignore_null_values=ignore_null) as source:
        if ignore_null:
            assert await source.sample() == (at_s, 0.0)
        else:
            with pytest.raises(NullValueError, match="ignoreNullValues is false"):
                await source.sample()


async def test_bad_query_reports_prometheus_error(prometheus_url: LoadedPrometheus) -> None:
    async with opened(prometheus_url, "sum(") as source:
        with pytest.raises(
            SourceResponseError, match=r"HTTP 400 Bad Request: bad_data: .*parse error"
        ) as caught:
            await source.sample()
    assert prometheus_url.url in str(caught.value)


# --- history() ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step_s", "offset_s"),
    [
        pytest.param(300.0, 0.0, id="5m-on-the-samples"),
        pytest.param(300.0, 150.0, id="5m-between-samples"),
        pytest.param(30.0, 0.0, id="30s-three-chunks"),
    ],
)
async def test_history_matches_the_trace(
    prometheus_url: LoadedPrometheus, step_s: float, offset_s: float
) -> None:
    end_s = prometheus_url.end_s - offset_s
    start_s = end_s - 7 * 86400
    async with opened(prometheus_url, prometheus_url.selector) as source:
        series = await source.history(start_s, end_s, step_s)
    np.testing.assert_array_equal(series.at_s, start_s + step_s * np.arange(series.at_s.size))
    assert series.at_s[-1] == end_s
    np.testing.assert_array_equal(series.values, expected_at(prometheus_url, series.at_s))
    if offset_s == 0.0 and step_s == prometheus_url.step_s:
        np.testing.assert_array_equal(series.values, prometheus_url.values[-series.values.size :])


async def test_history_before_the_data_is_nan(prometheus_url: LoadedPrometheus) -> None:
    start_s = prometheus_url.start_s - 3600
    async with opened(prometheus_url, prometheus_url.selector) as source:
        series = await source.history(start_s, prometheus_url.start_s, 600.0)
    assert np.isnan(series.values[:-1]).all()
    assert series.values[-1] == prometheus_url.values[0]


async def test_history_of_three_series_is_a_shape_error(prometheus_url: LoadedPrometheus) -> None:
    async with opened(prometheus_url, prometheus_url.multi_metric) as source:
        with pytest.raises(QueryShapeError, match="returned 3 series"):
            await source.history(prometheus_url.end_s - 3600, prometheus_url.end_s, 60.0)


# --- unreachable and silent servers ------------------------------------------------------------


async def test_closed_port_is_unreachable() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    source = PrometheusSource.from_config(trigger(address, "up"), Settings())
    try:
        with pytest.raises(SourceUnreachable, match=f"^prometheus {address}: ConnectError"):
            await source.sample()
    finally:
        await source.aclose()


@asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers; yields its URL."""
    handlers: set[asyncio.Task[None]] = set()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await reader.read()  # until the client hangs up
        finally:
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def test_silent_server_times_out() -> None:
    async with silent_server() as address:
        source = PrometheusSource.from_config(trigger(address, "up", timeout_s=0.2), Settings())
        started = time.monotonic()
        try:
            with pytest.raises(
                SourceTimeout, match=f"^prometheus {address}: no complete answer within the timeout of 200ms"
            ):
                await source.sample()
        finally:
            await source.aclose()
        assert time.monotonic() - started < 2.0
