"""Refits at scale, through the scaler's own worker pool, and what they do to GetMetrics latency.

Two measurements in one run (issue #3):

1. **1,000 targets refitted**: 1,000 seven-day, 5-minute windows of the shared traces, fitted through
   `scaler.forecast_pool.ForecastPool` with 2 worker processes, as the refresher submits them: first
   from scratch (model selection included: the cost after a restart), then refitted with the kept
   selection (what every `refitInterval` costs).
2. **GetMetrics during refits**: prescaler's App serving `--targets` warm reactive targets, called by a
   separate client process at a steady rate (KEDA's pace: about 0.3 calls/s per ScaledObject), first
   idle, then while the App's own pool (default size) refits forecasters back to back. The p99 ratio
   is the acceptance: within 2x of idle.

    python -m benchmarks.refit_load --out /tmp/refit.md [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import platform
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import NamedTuple

import grpc
import numpy as np

from benchmarks._data import DATA
from benchmarks._provenance import commit, emit
from benchmarks.forecast_speed import targets
from forecasting import Forecaster, Series
from scaler._generated import externalscaler_pb2 as pb
from scaler._generated import externalscaler_pb2_grpc as pb_grpc
from scaler.forecast_pool import ForecastPool
from scaler.server.app import App
from scaler.settings import Settings

REFIT_TARGETS = 1000
REFIT_BUDGET_S = 600.0


def _ref(index: int) -> pb.ScaledObjectRef:
    meta = {"source": "replay", "trace": "elb_request_count_8c0756.csv", "threshold": "50"}
    return pb.ScaledObjectRef(name=f"llm-{index:04d}", namespace="bench", scalerMetadata=meta)


async def _steady(port: int, targets: int, rate: float, seconds: float) -> list[float]:
    """Open loop: start a GetMetrics every 1/rate s regardless of answers; latencies in ms."""
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)

        async def one(i: int) -> None:
            request = pb.GetMetricsRequest(scaledObjectRef=_ref(i % targets), metricName="prescaler")
            started = time.perf_counter()
            await stub.GetMetrics(request, timeout=5)
            latencies.append(1000 * (time.perf_counter() - started))

        calls = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            calls.append(asyncio.create_task(one(i)))
        await asyncio.gather(*calls)
    return latencies


def client_main(connection: Connection) -> None:
    """The client process: answers each (port, targets, rate, seconds) with the latencies."""
    while (job := connection.recv()) is not None:
        connection.send(asyncio.run(_steady(*job)))


class Latency(NamedTuple):
    calls: int
    p50_ms: float
    p99_ms: float


def _summary(latencies: list[float]) -> Latency:
    data = np.asarray(latencies)
    return Latency(data.size, float(np.percentile(data, 50)), float(np.percentile(data, 99)))


async def refit_all(series: list[Series], workers: int) -> tuple[float, float, list[str]]:
    """Seconds to fit every target from scratch, then to refit them all with the kept selection, on
    `workers` processes; and the models answering after the refit."""
    pool = ForecastPool(workers)
    try:
        await asyncio.gather(*(pool.fit(Forecaster(), s) for s in series[:workers]))  # start workers

        async def fit_all(
            forecasters: list[Forecaster], label: str
        ) -> tuple[float, list[Forecaster], list[str]]:
            done = 0

            async def fit(forecaster: Forecaster, target: Series) -> tuple[Forecaster, str]:
                nonlocal done
                outcome = await pool.fit(forecaster, target)
                done += 1
                if done % 50 == 0:
                    print(f"\r{label} {done}/{len(series)}", end="", file=sys.stderr)
                return outcome.forecaster, outcome.model

            started = time.perf_counter()
            results = await asyncio.gather(*(fit(f, s) for f, s in zip(forecasters, series, strict=True)))
            print(file=sys.stderr)
            return time.perf_counter() - started, [f for f, _ in results], [m for _, m in results]

        cold_s, fitted, _ = await fit_all([Forecaster() for _ in series], "fits with model selection")
        warm_s, _, models = await fit_all(fitted, "refits reusing the selection")
        return cold_s, warm_s, models
    finally:
        pool.close()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Footprint(NamedTuple):
    bytes_per_target: float
    """Resident memory added per warm reactive replay target (trace copy, history, state)."""
    first_forecast_s: float
    """A new predictive target's first RPC to its first forecast: 7 days of history at 15 s
    bootstrapped from its source, coarsened, fitted in a worker (already started)."""


async def _first_forecast_s(app: App, stub: pb_grpc.ExternalScalerAsyncStub) -> float:
    ref = _ref(9999)
    ref.scalerMetadata["mode"] = "predictive"
    started = time.perf_counter()
    await stub.GetMetricSpec(ref)
    refresher = app.registry.track(ref.namespace, ref.name, ref.scalerMetadata)
    await refresher.first_attempt()
    assert refresher.predictor is not None
    await refresher.predictor.settled()
    assert refresher.predictor.fitted, "the first fit failed"
    return time.perf_counter() - started


async def latency_under_refits(
    series: list[Series], targets_n: int, rate: float, seconds: float
) -> tuple[Latency, Latency, int, Footprint]:
    settings = Settings(host="127.0.0.1", grpc_port=0, metrics_port=0)
    app = App(settings)
    ports = await app.start()
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    client = context.Process(target=client_main, args=(theirs,), daemon=True)
    client.start()
    try:
        await asyncio.gather(*(app.pool.fit(Forecaster(), s) for s in series[: app.pool.workers]))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports.grpc}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)
            before = _rss_bytes()
            for i in range(targets_n):  # warm every target, as KEDA's first polls do
                await stub.GetMetricSpec(_ref(i))
                await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=_ref(i)), timeout=10)
            footprint = Footprint((_rss_bytes() - before) / targets_n, await _first_forecast_s(app, stub))
        loop = asyncio.get_running_loop()

        async def measure() -> Latency:
            ours.send((ports.grpc, targets_n, rate, seconds))
            return _summary(await loop.run_in_executor(None, ours.recv))

        idle = await measure()
        stop = asyncio.Event()
        fitted = 0

        async def keep_refitting() -> None:
            nonlocal fitted
            while not stop.is_set():
                await app.pool.fit(Forecaster(), series[fitted % len(series)])
                fitted += 1

        refitting = [asyncio.create_task(keep_refitting()) for _ in range(app.pool.workers)]
        busy = await measure()
        stop.set()
        await asyncio.gather(*refitting)
        return idle, busy, fitted, footprint
    finally:
        ours.send(None)
        client.join(10)
        await app.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--targets", type=int, default=100, help="warm targets KEDA polls (default 100)")
    parser.add_argument("--rate", type=float, default=300.0, help="GetMetrics per second (default 300)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each latency measurement")
    parser.add_argument("--quick", action="store_true", help="60 targets, 5 s measurements")
    parser.add_argument("--latency-only", action="store_true", help="skip the 1,000-target refit measurement")
    parser.add_argument("--out", type=Path, help="write the markdown results here")
    args = parser.parse_args(argv)
    count = 60 if args.quick else REFIT_TARGETS
    seconds = 5.0 if args.quick else args.seconds
    series = targets(count, args.data)
    load_before = os.getloadavg()
    cold_s, warm_s, models = (
        (math.nan, math.nan, []) if args.latency_only else asyncio.run(refit_all(series, 2))
    )
    idle, busy, fitted, footprint = asyncio.run(
        latency_under_refits(series, args.targets, args.rate, seconds)
    )
    ratio = busy.p99_ms / idle.p99_ms
    refit_rows = [
        f"| targets (7 days at 5 min each), through ForecastPool with 2 worker processes | {count} |",
        f"| first fits, model selection included (after a restart) | {cold_s:.0f} s "
        f"({count / cold_s:.2f} targets/s) |",
        f"| refits reusing the selection (every refitInterval) | {warm_s:.0f} s "
        f"({count / warm_s:.2f} targets/s; budget for {REFIT_TARGETS}: {REFIT_BUDGET_S:.0f} s) |",
        f"| models answering | {', '.join(f'{m} {models.count(m)}' for m in sorted(set(models)))} |",
    ]
    lines = [
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit {commit()}",
        f"- machine: {os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}; "
        f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}",
        "",
        "| measure | value |",
        "|---|---|",
        *([] if args.latency_only else refit_rows),
        f"| GetMetrics at {args.rate:.0f}/s over {args.targets} targets, idle: p50 / p99 | "
        f"{idle.p50_ms:.2f} / {idle.p99_ms:.2f} ms ({idle.calls} calls) |",
        f"| the same while the App's pool ({Settings().forecast_workers} worker) refits back to back | "
        f"{busy.p50_ms:.2f} / {busy.p99_ms:.2f} ms ({busy.calls} calls, {fitted} refits) |",
        f"| p99 during refits / p99 idle | {ratio:.2f} (acceptance: at most 2) |",
        f"| resident memory per tracked reactive replay target | {footprint.bytes_per_target / 1024:.0f} KiB |",
        f"| time to first forecast of a new predictive target (7 days bootstrapped at 15 s, fitted) | "
        f"{footprint.first_forecast_s:.1f} s |",
    ]
    text = "\n".join(lines) + "\n"
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
