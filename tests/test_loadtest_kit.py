"""The load-test kit end to end (the mock alone: test_loadtest_mock.py; the manifests:
test_loadtest_manifests.py).

This runs what docs/end-to-end.md describes, on loopback: the mock vLLM, a real
Prometheus scraping it every second, Locust headless replaying a compressed day of the NYC-taxi trace
(a subprocess: Locust runs on gevent, which is never imported here), and prescaler reading that
Prometheus, asked over gRPC as KEDA asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from scaler._generated import externalscaler_pb2 as pb
from scaler.loadtest.engine import MockConfig, MockVllm
from tests.mock_vllm_kit import LOCUST, LOCUSTFILE, sample, serving
from tests.scraping_prometheus import scraping_prometheus, wait_for_series
from tests.servers import ref, running_app

IN_FLIGHT_QUERY = "sum(vllm:num_requests_running) + sum(vllm:num_requests_waiting)"
DAY_S = 20.0
"""The compressed day Locust replays: the NYC-taxi trace's first day in 20 s."""
PEAK_USERS = 12
SERVICE_S = 0.5
"""The mock's service time, also Locust's pace: every user is always in flight (running or waiting)."""
POLL_S = 0.5
"""How often the test asks prescaler, as KEDA would (KEDA's own default is every 30 s)."""
LOCUST_LIMIT_S = 45.0
"""The Locust run is killed, and the test fails, past this (it stops by itself after DAY_S)."""


@dataclass(frozen=True, slots=True)
class Reading:
    at_s: float
    """Wall-clock time of the GetMetrics answer."""
    served: float
    """What prescaler answered: requests in flight as Prometheus scraped them."""
    in_flight: float
    """The mock's own running + waiting at that moment."""


@dataclass(frozen=True, slots=True)
class LocustSecond:
    at_s: float
    users: int
    requests: int
    failures: int


def locust_history(path: Path) -> list[LocustSecond]:
    """The aggregated rows of Locust's `--csv` stats history, one per second."""
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    return [
        LocustSecond(
            float(row["Timestamp"]),
            int(row["User Count"]),
            int(row["Total Request Count"]),
            int(row["Total Failure Count"]),
        )
        for row in rows
    ]


async def poll_while_locust_runs(
    locust: asyncio.subprocess.Process, ask: Callable[[], Awaitable[float]], in_flight: Callable[[], float]
) -> list[Reading]:
    readings = []
    deadline = time.monotonic() + LOCUST_LIMIT_S
    while locust.returncode is None and time.monotonic() < deadline:
        served = await ask()
        readings.append(Reading(time.time(), served, in_flight()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(locust.wait(), POLL_S)
    if locust.returncode is None:
        locust.kill()
        await locust.wait()
        raise AssertionError(f"Locust still ran after {LOCUST_LIMIT_S:g}s")
    return readings


def best_lag(readings: list[Reading]) -> tuple[int, float, float]:
    """Prescaler's answers lag the mock by a scrape and a step: the lag (in polls) at which they match
    the mock's in-flight best, with the mean absolute error and the correlation there."""
    served = np.array([r.served for r in readings])
    in_flight = np.array([r.in_flight for r in readings])
    scores = []
    for lag in range(int(4 / POLL_S) + 1):
        a, b = served[lag:], in_flight[: len(in_flight) - lag]
        flat = np.std(a) == 0 or np.std(b) == 0  # no load at all: nothing to correlate
        corr = 0.0 if flat else float(np.corrcoef(a, b)[0, 1])
        scores.append((float(np.mean(np.abs(a - b))), lag, corr))
    mae, lag, corr = min(scores)
    return lag, mae, corr


@pytest.mark.prometheus
async def test_getmetrics_follows_the_load_locust_generates(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    mock = MockVllm(MockConfig(slots=4, service_time_s=SERVICE_S), registry=registry)

    def in_flight() -> float:
        return sample(registry, "vllm:num_requests_running") + sample(registry, "vllm:num_requests_waiting")

    async with serving(mock) as mock_url:
        with scraping_prometheus([mock_url.removeprefix("http://")], tmp_path / "prometheus") as prom_url:
            await wait_for_series(prom_url, "vllm:num_requests_running")
            async with running_app(real_sources=True) as running:
                metadata = {
                    "serverAddress": prom_url,
                    "query": IN_FLIGHT_QUERY,
                    "threshold": "4",
                    "step": "1s",
                    "timeout": "800ms",
                }
                scaled_object = ref(metadata, name="mock-vllm", namespace="loadtest")
                request = pb.GetMetricsRequest(scaledObjectRef=scaled_object, metricName="prescaler")

                async def ask() -> float:
                    answer = await running.stub.GetMetrics(request, timeout=2.0)
                    (value,) = answer.metricValues
                    return float(value.metricValueFloat)

                assert await ask() == 0.0  # the mock is idle
                with (tmp_path / "locust.log").open("wb") as log:
                    locust = await asyncio.create_subprocess_exec(
                        *locust_command(mock_url, tmp_path / "locust"),
                        cwd=tmp_path,  # no locust.conf or pyproject.toml of ours is read
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, "PYTHONWARNINGS": "ignore"},
                    )
                    readings = await poll_while_locust_runs(locust, ask, in_flight)
    output = (tmp_path / "locust.log").read_text(errors="replace")
    assert locust.returncode == 0, f"locust exited with {locust.returncode}:\n{output[-3000:]}"
    seconds = locust_history(tmp_path / "locust_stats_history.csv")
    report(readings, seconds)

    # Locust replayed the day: from a trough of one user to about PEAK_USERS (it samples the shape
    # once a second), every request answered.
    assert 0.8 * PEAK_USERS <= max(s.users for s in seconds) <= PEAK_USERS
    assert min(s.users for s in seconds if s.users > 0) == 1
    assert seconds[-1].requests > 100
    assert seconds[-1].failures == 0
    assert sample(registry, "vllm:request_success_total", finished_reason="length") >= seconds[-1].requests

    # What prescaler answers KEDA is the mock's in-flight count, a scrape and a step late.
    lag, mae, corr = best_lag(readings)
    assert lag * POLL_S <= 3.0
    assert mae <= 0.15 * PEAK_USERS
    assert corr >= 0.9

    # And it follows the day: the evening peak well above the early-morning trough.
    served = [r.served for r in readings]
    peak = int(np.argmax(served))
    start = next(i for i, value in enumerate(served) if value > 0)
    trough = min(served[start:peak])
    assert served[peak] >= 0.75 * PEAK_USERS
    assert served[peak] >= 4 * max(trough, 1.0)
    assert readings[peak].at_s - readings[start].at_s >= 0.5 * DAY_S


def locust_command(host: str, csv_prefix: Path) -> list[str]:
    return [
        str(LOCUST),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "--day-minutes",
        repr(DAY_S / 60),
        "--peak-users",
        str(PEAK_USERS),
        "--pace",
        repr(SERVICE_S),
        "--csv",
        str(csv_prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]


def report(readings: list[Reading], seconds: list[LocustSecond]) -> None:
    """Printed for `pytest -s`: what Locust ran and what prescaler answered, second by second."""
    lag, mae, corr = best_lag(readings)
    print(f"\nlag {lag * POLL_S:g}s, mean abs error {mae:.2f}, correlation {corr:.3f}")
    t0 = readings[0].at_s
    users = {round(s.at_s - t0): s.users for s in seconds}
    for r in readings:
        print(
            f"{r.at_s - t0:6.1f}s users {users.get(round(r.at_s - t0), '-'):>3} "
            f"in flight {r.in_flight:4.0f} served {r.served:5.1f}"
        )
