"""The side processes of benchmarks/scale.py, each its own process so that its work is not the load
generator's: a light GetMetrics client (as KEDA is), and Prometheus scraping the server's /metrics.

    python benchmarks/_scale_clients.py probe PORT ADDRESS STEP SECONDS
    python benchmarks/_scale_clients.py scrape HTTP_PORT SECONDS
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scaler._generated import externalscaler_pb2 as pb
from scaler._generated import externalscaler_pb2_grpc as pb_grpc

SCRAPE_EVERY_S = 15.0
"""A Prometheus scraping the server's own /metrics (the ServiceMonitor's interval in deploy/kubernetes)."""
PROBE_RATE = 20.0
"""The light client's GetMetrics calls per second."""


def ref(address: str, n: int, step: str) -> pb.ScaledObjectRef:
    """Target `n` of the benchmark: a reactive trigger with its own query, polling every `step`."""
    meta = {
        "scalerAddress": "prescaler.keda:9090",
        "serverAddress": address,
        "query": f'sum(vllm:num_requests_running{{model="m{n:05d}"}})',
        "threshold": "8",
        "step": step,
    }
    return pb.ScaledObjectRef(name=f"so-{n:05d}", namespace=f"ns-{n % 50:02d}", scalerMetadata=meta)


async def probe(port: int, address: str, step: str, seconds: float, rate: float) -> None:
    """A light client of its own (another process, like KEDA): GetMetrics on 10 of the targets at
    `rate` per second, one at a time; prints its latencies, in ms, as one line of JSON."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)
        targets = [ref(address, n, step) for n in range(10)]
        latencies = []
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end:
            started = time.perf_counter()
            await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=targets[n % 10]), timeout=3.0)
            latencies.append((time.perf_counter() - started) * 1000)
            n += 1
            await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
    print(json.dumps(latencies))


def scrape(http_port: int, seconds: float) -> None:
    """Prometheus' scrape of the server's /metrics every `SCRAPE_EVERY_S` (another process);
    prints how long each took, in ms, and how many failed, as one line of JSON."""
    took = []
    end = time.perf_counter() + seconds
    time.sleep(random.Random(2).uniform(0, SCRAPE_EVERY_S))
    failed = 0
    while time.perf_counter() < end:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as answer:
                answer.read()
            took.append((time.perf_counter() - started) * 1000)
        except (OSError, urllib.error.URLError):
            failed += 1
        time.sleep(SCRAPE_EVERY_S)
    print(json.dumps({"took_ms": took, "failed": failed}))


def start_scraper(http_port: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "scrape", str(http_port), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )


def start_probe(port: int, address: str, step: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "probe", str(port), address, step, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:
        port, address, step, seconds = sys.argv[2:6]
        asyncio.run(probe(int(port), address, step, float(seconds), PROBE_RATE))
    elif sys.argv[1:2] == ["scrape"]:
        scrape(int(sys.argv[2]), float(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
