"""5,000 Prometheus-backed targets: memory per target, connections to Prometheus, time to create,
GetMetrics latency at KEDA's pace and saturated.

Three processes: `prescaler serve` (the server under test, its RSS read from /proc), a fake
Prometheus (`tests/hostile_prometheus.py`, behaviour `ok`: a valid one-series answer stamped at the
query's time), and this one, the load generator. Every target is a reactive trigger on that
Prometheus with its own query, so each one polls it every `step` (15 s) in the background.

1. Baseline: one target, GetMetrics at the pace the N targets will get, p99 measured.
2. Create: GetMetricSpec for each of N targets, then GetMetrics until every one answers OK.
3. Warm-up: `--warmup-s` at KEDA's pace, not measured (the server's heap settles after the
   creations, scaler.server.heap).
4. KEDA's pace: each target gets GetMetrics every 15 s and IsActive every 30 s (the HPA's and
   KEDA's polling), phases spread at random, for `--duration-s`; client-side connections to the fake
   Prometheus sampled every second.
5. Saturated: `--concurrency` GetMetrics in flight, round-robin over the targets.

    .venv/bin/python benchmarks/scale.py [--targets 5000] [--duration-s 60] [--out results.md]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import grpc
import numpy as np
from _provenance import commit, emit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _scale_clients import SCRAPE_EVERY_S, ref, start_probe, start_scraper  # noqa: E402

from scaler._generated import externalscaler_pb2 as pb  # noqa: E402
from scaler._generated import externalscaler_pb2_grpc as pb_grpc  # noqa: E402
from tests.hostile_prometheus import HostileProcess, established_to  # noqa: E402
from tests.serve_process import start_serve  # noqa: E402

P99_LIMIT_MS = 10.0
RSS_LIMIT_KB = 150.0
MAX_CONNECTIONS = 8  # the server's --prometheus-max-connections, checked below
GET_METRICS_EVERY_S = 15.0
STEP = "15s"
"""Each target's `step`: how often it polls Prometheus (`--step`)."""
IS_ACTIVE_EVERY_S = 30.0


class Options(NamedTuple):
    targets: int
    warmup_s: float
    duration_s: float
    saturate_s: float
    concurrency: int


def rss_kb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runqueue_wait_s(pid: int) -> float:
    """Seconds the process's threads have waited for a CPU while runnable (/proc/PID/task/*/schedstat):
    on a shared machine, the part of a latency that is not the process's own doing."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def server_buckets(http_port: int) -> dict[str, dict[float, float]]:
    """The server's own histograms: GetMetrics latency (OK answers), event-loop lag and garbage
    collector pauses (all generations), as cumulative counts per bucket bound (seconds)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found: dict[str, dict[float, float]] = {"rpc": {}, "lag": {}, "gc": {}}
    for line in text.splitlines():
        if line.startswith("prescaler_rpc_duration_seconds_bucket{"):
            if 'method="GetMetrics"' not in line or 'code="OK"' not in line:
                continue
            which = found["rpc"]
        elif line.startswith("prescaler_event_loop_lag_seconds_bucket{"):
            which = found["lag"]
        elif line.startswith("prescaler_gc_pause_seconds_bucket{"):
            which = found["gc"]
        else:
            continue
        bound = float(line.split('le="', 1)[1].split('"', 1)[0])
        which[bound] = which.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def bucket_max_ms(before: dict[float, float], after: dict[float, float]) -> float:
    """The upper bound of the bucket holding the longest of the observations between two scrapes."""
    counts = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    total = counts[-1][1] if counts else 0.0
    for bound, cumulative in counts:
        if total and cumulative >= total:
            return bound * 1000
    return float("nan")


def bucket_p99_ms(before: dict[float, float], after: dict[float, float]) -> float:
    """The upper bound of the bucket holding the 99th percentile of the calls between two scrapes."""
    counts = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    total = counts[-1][1] if counts else 0.0
    for bound, cumulative in counts:
        if total and cumulative >= 0.99 * total:
            return bound * 1000
    return float("nan")


def start_server() -> tuple[subprocess.Popen[str], int, int]:
    running = start_serve(
        "--forecast-workers",
        "1",
        "--drain",
        "0",
        "--log-level",
        "WARNING",
        "--prometheus-max-connections",
        str(MAX_CONNECTIONS),
        stderr=subprocess.DEVNULL,
    )
    return running.process, running.grpc_port, running.http_port


def p99_ms(latencies: list[float]) -> float:
    return float(np.percentile(np.asarray(latencies) * 1000, 99)) if latencies else float("nan")


class Paced(NamedTuple):
    latencies: list[float]
    errors: int
    calls: int
    held: int
    """The most connections to Prometheus held at once."""
    lag_p99_ms: float
    """This process's own event-loop lag (a 100 ms timer): how much of its latencies is its own."""


async def paced(
    stub: pb_grpc.ExternalScalerStub, refs: Sequence[pb.ScaledObjectRef], duration_s: float, port: int
) -> Paced:
    """KEDA's pace over `refs`."""
    latencies: list[float] = []
    errors = 0
    calls = 0
    end = time.perf_counter() + duration_s
    rng = random.Random(1)

    async def one(target: pb.ScaledObjectRef) -> None:
        nonlocal errors, calls
        await asyncio.sleep(rng.uniform(0, GET_METRICS_EVERY_S))
        tick = 0
        while time.perf_counter() < end:
            started = time.perf_counter()
            try:
                await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=target), timeout=3.0)
                latencies.append(time.perf_counter() - started)
            except grpc.aio.AioRpcError:
                errors += 1
            calls += 1
            if tick % 2 == 0:
                try:
                    await stub.IsActive(target, timeout=3.0)
                except grpc.aio.AioRpcError:
                    errors += 1
                calls += 1
            tick += 1
            await asyncio.sleep(max(0.0, GET_METRICS_EVERY_S - (time.perf_counter() - started)))

    held = 0
    lags: list[float] = []

    async def lag() -> None:
        while time.perf_counter() < end:
            started = time.perf_counter()
            await asyncio.sleep(0.1)
            lags.append(time.perf_counter() - started - 0.1)

    async def watch() -> None:
        nonlocal held
        while time.perf_counter() < end:
            held = max(held, established_to(port))
            await asyncio.sleep(1.0)

    await asyncio.gather(watch(), lag(), *(one(target) for target in refs))
    return Paced(latencies, errors, calls, held, p99_ms(lags))


async def saturated(
    stub: pb_grpc.ExternalScalerStub, refs: Sequence[pb.ScaledObjectRef], seconds: float, concurrency: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    counter = iter(range(10**12))

    async def worker() -> None:
        while time.perf_counter() < end:
            target = refs[next(counter) % len(refs)]
            started = time.perf_counter()
            await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=target), timeout=3.0)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, len(latencies) / (time.perf_counter() - started)


async def create(stub: pb_grpc.ExternalScalerStub, refs: Sequence[pb.ScaledObjectRef]) -> float:
    """GetMetricSpec for every target, then GetMetrics until each answers OK; seconds taken."""
    started = time.perf_counter()
    gate = asyncio.Semaphore(16)

    async def one(target: pb.ScaledObjectRef) -> None:
        async with gate:
            await stub.GetMetricSpec(target, timeout=10.0)
            while True:
                try:
                    await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=target), timeout=3.0)
                    return
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    await asyncio.sleep(0.2)

    tasks = [asyncio.create_task(one(target)) for target in refs]
    for done, task in enumerate(asyncio.as_completed(tasks), start=1):
        await task
        if done % 1000 == 0 or done == len(refs):
            print(f"  created {done}/{len(refs)} targets ({time.perf_counter() - started:.1f} s)", flush=True)
    return time.perf_counter() - started


async def run(options: Options) -> list[str]:
    with HostileProcess(fast=True) as prometheus:
        server, port, http_port = start_server()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.ExternalScalerStub(channel)
                address = prometheus.address("ok")
                one = [ref(address, 99_999, STEP)]
                await create(stub, one)
                rate = options.targets * (1 / GET_METRICS_EVERY_S + 1 / IS_ACTIVE_EVERY_S)
                print(
                    f"baseline: 1 target at {rate:.0f} calls/s for {options.duration_s / 3:.0f} s", flush=True
                )
                base, _ = await saturated_at(stub, one, options.duration_s / 3, rate)
                before = rss_kb(server.pid)
                print(f"creating {options.targets} targets", flush=True)
                refs = [ref(address, n, STEP) for n in range(options.targets)]
                create_s = await create(stub, refs)
                await asyncio.sleep(2.0)
                after = rss_kb(server.pid)
                # Not measured: the server's first minute with its targets (the heap settles once
                # the creations stop, scaler.server.heap), as a cluster's steady state follows it.
                print(f"warm-up at KEDA's pace for {options.warmup_s:.0f} s (not measured)", flush=True)
                await paced(stub, refs, options.warmup_s, prometheus.port)
                print(f"KEDA's pace for {options.duration_s:.0f} s", flush=True)
                cpu_before, wall_before = cpu_s(server.pid), time.perf_counter()
                waited_before = runqueue_wait_s(server.pid)
                buckets_before = await asyncio.to_thread(server_buckets, http_port)
                # The load generator's own collector would add its pauses to what it measures.
                gc.collect()
                gc.freeze()
                gc.disable()
                prober = start_probe(port, address, STEP, options.duration_s - 5)
                scraper = start_scraper(http_port, options.duration_s - 5)
                try:
                    latencies, errors, calls, held, own_lag_ms = await paced(
                        stub, refs, options.duration_s, prometheus.port
                    )
                finally:
                    gc.enable()
                probed, _ = await asyncio.to_thread(prober.communicate, None, 60)
                probe_ms = json.loads(probed.strip().splitlines()[-1])
                scraped, _ = await asyncio.to_thread(scraper.communicate, None, 60)
                scrapes = json.loads((scraped.strip().splitlines() or ['{"took_ms": [], "failed": -1}'])[-1])
                scrapes_ms, scrapes_failed = scrapes["took_ms"], scrapes["failed"]
                buckets_after = await asyncio.to_thread(server_buckets, http_port)
                server_p99 = bucket_p99_ms(buckets_before["rpc"], buckets_after["rpc"])
                lag_p99 = bucket_p99_ms(buckets_before["lag"], buckets_after["lag"])
                gc_max = bucket_max_ms(buckets_before["gc"], buckets_after["gc"])
                wall = time.perf_counter() - wall_before
                busy = (cpu_s(server.pid) - cpu_before) / wall
                waited = (runqueue_wait_s(server.pid) - waited_before) / wall
                rss_paced = rss_kb(server.pid)
                print(
                    f"saturated, {options.concurrency} in flight, for {options.saturate_s:.0f} s", flush=True
                )
                hot, rps = await saturated(stub, refs, options.saturate_s, options.concurrency)
        finally:
            server.terminate()
            server.wait(30)
    per_target = (rss_paced - before) / options.targets
    p99 = p99_ms(latencies)
    lines = [
        "| measure | value |",
        "|---|---|",
        f"| targets (reactive, Prometheus-backed, one query each, step {STEP}) | {options.targets:,} |",
        f"| time to create (GetMetricSpec, then GetMetrics until OK) | {create_s:.1f} s |",
        f"| server RSS before targets / after creating / after KEDA's pace | {before / 1024:.0f} / {after / 1024:.0f} / {rss_paced / 1024:.0f} MiB |",
        f"| memory per target | {per_target:.1f} KB |",
        f"| connections to Prometheus held at once (most seen, client side) | {held} (limit {MAX_CONNECTIONS}) |",
        f"| requests Prometheus received | {prometheus.final.get('requests', {})} |",
        f"| KEDA's pace: calls, errors | {calls:,}, {errors} |",
        f"| the server's /metrics scraped every {SCRAPE_EVERY_S:g} s meanwhile (another process): scrapes, failed, longest | {len(scrapes_ms)}, {scrapes_failed}, {max(scrapes_ms, default=float('nan')):.0f} ms |",
        f"| server CPU at KEDA's pace (polling Prometheus and answering) | {busy:.0%} of one core |",
        f"| server time runnable but waiting for a CPU meanwhile (other processes' load) | {waited:.0%} of the wall time |",
        f"| GetMetrics p50 / p99 at KEDA's pace, {options.targets:,} targets | {np.percentile(np.asarray(latencies) * 1000, 50):.2f} / {p99:.2f} ms |",
        f"| the load generator's own event-loop lag, p99 (part of its latencies is its own) | {own_lag_ms:.1f} ms |",
        f"| GetMetrics p50 / p99 seen by a separate light client (20/s) meanwhile | {np.percentile(probe_ms, 50):.2f} / {np.percentile(probe_ms, 99):.2f} ms |",
        f"| GetMetrics p99 as the server measures it (its histogram's bucket) | at most {server_p99:g} ms |",
        f"| the server's event-loop lag, p99 (a timer due every 100 ms; its histogram's bucket) | at most {lag_p99:g} ms |",
        f"| the server's longest garbage-collector pause (its histogram's bucket) | at most {gc_max:g} ms |",
        f"| GetMetrics p99, 1 target at the same call rate (same run) | {p99_ms(base):.2f} ms |",
        f"| ratio of the two p99s | {p99 / p99_ms(base):.2f}x |",
        f"| saturated: GetMetrics/s, p99 ({options.concurrency} in flight) | {rps:,.0f}/s, {p99_ms(hot):.2f} ms |",
        "",
        "Acceptance (issue: 5,000 Prometheus-backed reactive targets at KEDA's pace):",
        f"- GetMetrics p99 below {P99_LIMIT_MS:g} ms: {'holds' if p99 < P99_LIMIT_MS else 'FAILS'} ({p99:.2f} ms)",
        f"- memory below {RSS_LIMIT_KB:g} KB per target: {'holds' if per_target < RSS_LIMIT_KB else 'FAILS'} ({per_target:.1f} KB)",
        f"- connections to one Prometheus at most the per-origin limit: {'holds' if held <= MAX_CONNECTIONS else 'FAILS'} ({held} <= {MAX_CONNECTIONS})",
    ]
    return lines


async def saturated_at(
    stub: pb_grpc.ExternalScalerStub, refs: Sequence[pb.ScaledObjectRef], seconds: float, rate: float
) -> tuple[list[float], float]:
    """GetMetrics at a fixed `rate` per second (open loop), for the baseline."""
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    interval = 1.0 / rate
    pending: set[asyncio.Task[None]] = set()

    async def call() -> None:
        started = time.perf_counter()
        await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=refs[0]), timeout=3.0)
        latencies.append(time.perf_counter() - started)

    next_at = time.perf_counter()
    while next_at < end:
        task = asyncio.create_task(call())
        pending.add(task)
        task.add_done_callback(pending.discard)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    await asyncio.gather(*pending)
    return latencies, rate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=5000)
    parser.add_argument(
        "--warmup-s", type=float, default=30.0, help="KEDA's pace before the measured phase (not measured)"
    )
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--saturate-s", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--step", default="15s", help="the targets' step (how often each polls Prometheus)")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown section here")
    args = parser.parse_args(argv)
    global STEP
    STEP = args.step
    options = Options(args.targets, args.warmup_s, args.duration_s, args.saturate_s, args.concurrency)
    lines = asyncio.run(run(options))
    about = (
        f"Commit {commit()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end."
    )
    emit("\n".join([about, "", *lines]), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
