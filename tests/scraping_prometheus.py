"""A real Prometheus that scrapes live targets, for end-to-end tests (the load-test kit's).

`scraping_prometheus(targets, workdir)` starts Debian's `prometheus` on a free loopback port with one
static scrape job over `targets` at a short interval, waits for `/-/ready` and yields the base URL;
`wait_for_series` waits until a first scrape has stored a metric. Finding the binary, the free port, the
readiness wait and the shutdown are tests/prometheus_server.py's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.prometheus_server import binaries, running_prometheus

JOB = "loadtest"
SCRAPE_WAIT_S = 15.0
"""Longest wait for the first scrape to be stored; with a 1 s interval it takes one or two."""


@contextmanager
def scraping_prometheus(targets: Sequence[str], workdir: Path, *, interval_s: float = 1.0) -> Iterator[str]:
    """Run prometheus scraping `targets` (host:port, path /metrics) every `interval_s`; yields its URL."""
    prometheus, _ = binaries()
    workdir.mkdir(parents=True, exist_ok=True)
    interval = f"{round(interval_s * 1000)}ms"
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": list(targets)}]}],
    }
    # JSON is YAML: no YAML writer needed.
    with running_prometheus(prometheus, json.dumps(config, indent=2) + "\n", workdir) as url:
        yield url


async def wait_for_series(url: str, metric: str, *, timeout_s: float = SCRAPE_WAIT_S) -> None:
    """Wait until `metric` has a sample in Prometheus at `url`; RuntimeError naming the targets' last
    scrape errors if it has none within `timeout_s`. Async: the target may be served by this event loop."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            answer = (await client.get("/api/v1/query", params={"query": metric})).json()
            if answer["data"]["result"]:
                return
            await asyncio.sleep(0.2)  # polling a real scrape loop
        targets = (await client.get("/api/v1/targets")).json()["data"]["activeTargets"]
    errors = {t["scrapeUrl"]: t.get("lastError") or t["health"] for t in targets}
    raise RuntimeError(f"no sample of {metric} at {url} after {timeout_s:g}s; targets: {errors}")
