"""GetMetrics under load: prescaler with N warm replay targets, against a bare grpc.aio echo server.

Two processes. This one runs the server under test: prescaler's App with the default source
catalog and N ScaledObjects whose triggers replay the bundled trace, or the echo server of
`_grpc_echo.py`. A spawned client process drives it with grpc.aio over one channel, keeping
`--concurrency` calls in flight for `--duration-s` seconds, round-robin over the targets, and times
every call as it sees it. The cases run echo, N=1, N=100, N=1000, echo: on a shared machine the two
echo runs bracket the rest, and their mean is the ceiling prescaler is compared with.

    .venv/bin/python benchmarks/grpc_load.py [--quick] [--out results.md]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import numpy as np
from _grpc_echo import EchoServer, fixed_response
from _provenance import commit, emit
from google import protobuf

from scaler._generated import externalscaler_pb2 as pb
from scaler._generated import externalscaler_pb2_grpc as pb_grpc
from scaler.server.app import App
from scaler.settings import Settings

NAMESPACE = "bench"
METRIC_NAME = "prescaler"
# A trigger as KEDA forwards it: its `metadata:` map plus KEDA's own scalerAddress. Reactive mode,
# so that no forecasting runs in the background: this measures the GetMetrics path itself.
METADATA = {
    "scalerAddress": "prescaler.keda.svc.cluster.local:9090",
    "mode": "reactive",
    "source": "replay",
    "trace": "elb_request_count_8c0756.csv",
    "threshold": "100",
}
# The echo server answers with a value of the trace's magnitude, so both responses are the same size.
ECHO_VALUE = 143.25
# Targets whose first read is still running answer UNAVAILABLE; warming retries them this long.
WARM_LIMIT_S = 300.0
P99_LIMIT_MS = 5.0
MIN_ECHO_SHARE = 0.60
# The two echo runs bracket the others; when they differ by more than this, the machine was busy.
ECHO_AGREEMENT = 0.10


def target_names(n: int) -> tuple[str, ...]:
    """N distinct ScaledObject names of one width, so every request has the same size."""
    return tuple(f"so-{i:05d}" for i in range(n))


def scaled_object(name: str) -> pb.ScaledObjectRef:
    return pb.ScaledObjectRef(name=name, namespace=NAMESPACE, scalerMetadata=METADATA)


def get_metrics_request(name: str) -> pb.GetMetricsRequest:
    return pb.GetMetricsRequest(scaledObjectRef=scaled_object(name), metricName=METRIC_NAME)


# --- the client process -------------------------------------------------------------------------


class Warm(NamedTuple):
    """Command: GetMetricSpec, then GetMetrics until OK, once for each target."""

    port: int
    names: tuple[str, ...]


class Load(NamedTuple):
    """Command: GetMetrics round-robin over `names`; calls started in the warm-up are not counted."""

    port: int
    names: tuple[str, ...]
    concurrency: int
    warmup_s: float
    duration_s: float


class Measured(NamedTuple):
    """What the client saw during one Load."""

    rps: float
    p50_ms: float
    p99_ms: float
    all_calls: int
    """Calls completed in the whole Load, the unmeasured start included."""
    client_cpu_us: float
    """The client process's CPU time per call of the whole Load."""
    response_bytes: int


class Failed(NamedTuple):
    message: str


async def _warm(command: Warm) -> float:
    start = time.perf_counter()
    # A busy server may answer late, and a target whose first read is still running answers
    # UNAVAILABLE: both are retried until WARM_LIMIT_S; any other status fails the run.
    retry = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    slots = asyncio.Semaphore(64)

    async def answered(call: Callable[[Any], Awaitable[object]], message: object) -> None:
        async with slots:
            while True:
                try:
                    await call(message)
                    return
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in retry or time.perf_counter() - start > WARM_LIMIT_S:
                        raise
                await asyncio.sleep(0.1)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{command.port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)
        spec, metrics = partial(stub.GetMetricSpec, timeout=10), partial(stub.GetMetrics, timeout=10)
        # As KEDA polls: GetMetricSpec first (it starts tracking), then GetMetrics.
        await asyncio.gather(*(answered(spec, scaled_object(n)) for n in command.names))
        await asyncio.gather(*(answered(metrics, get_metrics_request(n)) for n in command.names))
    return time.perf_counter() - start


async def _load(command: Load) -> Measured:
    requests = [get_metrics_request(name) for name in command.names]
    latencies_s: list[float] = []
    response_bytes = 0
    all_calls = 0
    turn = itertools.count()
    clock = time.perf_counter
    async with grpc.aio.insecure_channel(f"127.0.0.1:{command.port}") as channel:
        call = pb_grpc.ExternalScalerStub(channel).GetMetrics
        await channel.channel_ready()
        cpu_start, start = time.process_time(), clock()
        begin = start + command.warmup_s
        end = begin + command.duration_s

        async def caller() -> None:
            nonlocal response_bytes, all_calls
            while (started := clock()) < end:
                response = await call(requests[next(turn) % len(requests)], timeout=5)
                all_calls += 1
                if started >= begin:
                    latencies_s.append(clock() - started)
                if not response_bytes:
                    response_bytes = response.ByteSize()

        await asyncio.gather(*(caller() for _ in range(command.concurrency)))
        client_cpu_us = 1e6 * (time.process_time() - cpu_start) / all_calls
    p50, p99 = np.percentile(np.asarray(latencies_s), [50, 99]) * 1000
    rps = len(latencies_s) / command.duration_s
    return Measured(rps, float(p50), float(p99), all_calls, client_cpu_us, response_bytes)


def client_main(connection: Connection) -> None:
    """The client process: answer each command with its result, or Failed; stop on None."""
    while (command := connection.recv()) is not None:
        try:
            result: object = asyncio.run(_warm(command) if isinstance(command, Warm) else _load(command))
        except Exception as exc:
            result = Failed(f"{type(command).__name__}: {type(exc).__name__}: {exc}")
        connection.send(result)


class Client:
    """The spawned client process and its pipe; the server's event loop runs on while it works."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        # Daemonic: should this process fail before close(), the client must not keep it alive.
        self._process = context.Process(
            target=client_main, args=(child,), name="grpc-load-client", daemon=True
        )
        self._process.start()
        child.close()

    async def _ask(self, command: Warm | Load) -> object:
        self._connection.send(command)
        try:
            answer: object = await asyncio.to_thread(self._connection.recv)
        except (EOFError, ConnectionError) as exc:
            self._process.join(timeout=5)
            raise RuntimeError(
                f"the client process ended (exit code {self._process.exitcode}) without answering "
                f"{type(command).__name__}; its traceback is above"
            ) from exc
        if isinstance(answer, Failed):
            raise RuntimeError(f"the client process failed: {answer.message}")
        return answer

    async def warm(self, command: Warm) -> float:
        seconds = await self._ask(command)
        assert isinstance(seconds, float)
        return seconds

    async def load(self, command: Load) -> tuple[Measured, float]:
        """The client's measurement, and this (the server's) process's CPU time per call, in µs."""
        cpu_start = time.process_time()
        measured = await self._ask(command)
        assert isinstance(measured, Measured)
        return measured, 1e6 * (time.process_time() - cpu_start) / measured.all_calls

    def close(self) -> None:
        self._connection.send(None)
        self._process.join(timeout=10)


# --- the server process: cases --------------------------------------------------------------------


class Options(NamedTuple):
    sizes: tuple[int, ...]
    concurrency: int
    warmup_s: float
    duration_s: float


class Row(NamedTuple):
    case: str
    n: int | None
    measured: Measured
    server_cpu_us: float
    warm_s: float | None = None


async def echo_case(client: Client, options: Options, label: str) -> Row:
    server = EchoServer(fixed_response(METRIC_NAME, ECHO_VALUE))
    port = await server.start()
    try:
        names = target_names(max(options.sizes))
        load = Load(port, names, options.concurrency, options.warmup_s, options.duration_s)
        measured, server_cpu = await client.load(load)
    finally:
        await server.stop()
    return Row(label, None, measured, server_cpu)


async def prescaler_case(client: Client, options: Options, n: int) -> Row:
    app = App(Settings(host="127.0.0.1", grpc_port=0, metrics_port=0, grace_s=1.0))
    ports = await app.start()
    try:
        names = target_names(n)
        warm_s = await client.warm(Warm(ports.grpc, names))
        if len(app.registry) != n:
            raise RuntimeError(f"prescaler tracks {len(app.registry)} targets after warming; expected {n}")
        load = Load(ports.grpc, names, options.concurrency, options.warmup_s, options.duration_s)
        measured, server_cpu = await client.load(load)
    finally:
        await app.stop()
    return Row("prescaler", n, measured, server_cpu, warm_s)


async def run_cases(options: Options) -> list[Row]:
    """echo, prescaler at each N, echo again: one client process for all of them."""
    client = Client()
    try:
        rows = [await echo_case(client, options, "echo (before)")]
        for n in options.sizes:
            rows.append(await prescaler_case(client, options, n))
            print(f"N={n}: {rows[-1].measured.rps:.0f} rps", file=sys.stderr)
        rows.append(await echo_case(client, options, "echo (after)"))
    finally:
        client.close()
    return rows


# --- the report -----------------------------------------------------------------------------------


def load_average() -> str:
    """1, 5 and 15 minute load averages: other work on a shared machine shows here."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> list[str]:
    """Where and on what the numbers were measured."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model
        )
    return [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"commit: {commit()}",
        f"machine: {len(os.sched_getaffinity(0))} usable of {os.cpu_count()} CPUs ({model}); "
        f"load average before the run {load_average()}",
        f"software: {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"grpcio {grpc.__version__}, protobuf {protobuf.__version__}",
    ]


def render(rows: Sequence[Row], options: Options, about: Sequence[str]) -> str:
    """The markdown report: where, what, the table and the acceptance check."""
    echo = [r.measured.rps for r in rows if r.n is None]
    echo_rps = float(np.mean(echo))
    spread = (max(echo) - min(echo)) / echo_rps
    prescaler = [r for r in rows if r.n is not None]
    lines = [f"- {line}" for line in about]
    request_bytes = get_metrics_request(target_names(1)[0]).ByteSize()
    lines += [
        f"- load: 1 client process, 1 channel, {options.concurrency} calls in flight, round-robin over "
        f"the N targets; {options.duration_s:g} s measured per case after {options.warmup_s:g} s unmeasured",
        f"- messages: request {request_bytes} B; response {rows[0].measured.response_bytes} B (echo), "
        f"{prescaler[-1].measured.response_bytes} B (prescaler)",
        "- warming (GetMetricSpec + first GetMetrics per target): "
        + ", ".join(f"N={r.n} {r.warm_s:.1f} s" for r in prescaler),
        "- CPU µs/call: CPU time of the server's process (Python and gRPC's C-core threads) or the "
        "client's, over every call of the case; it depends less than rps on other work on the machine",
        "",
        "| case | N | rps | p50 ms | p99 ms | rps / echo rps | server CPU µs/call | client CPU µs/call |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m = r.measured
        lines.append(
            f"| {r.case} | {'-' if r.n is None else r.n} | {m.rps:.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} "
            f"| {m.rps / echo_rps:.2f} | {r.server_cpu_us:.0f} | {m.client_cpu_us:.0f} |"
        )
    largest = prescaler[-1]
    worst = min(prescaler, key=lambda r: r.measured.rps)
    p99_ok = largest.measured.p99_ms < P99_LIMIT_MS
    share_ok = worst.measured.rps / echo_rps >= MIN_ECHO_SHARE
    lines += [
        "",
        f"Echo ceiling (mean of the two echo runs): {echo_rps:.0f} rps; they differ by {spread:.0%} "
        + (
            f"(within {ECHO_AGREEMENT:.0%}: the load on the machine held steady)."
            if spread <= ECHO_AGREEMENT
            else f"(over {ECHO_AGREEMENT:.0%}: other work on the machine moved the numbers; repeat the run)."
        ),
        "",
        "Acceptance (issue #2):",
        "",
        f"- p99 at N={largest.n}: {largest.measured.p99_ms:.2f} ms, limit {P99_LIMIT_MS:g} ms: "
        + ("pass" if p99_ok else "FAIL"),
        f"- throughput at every N >= {MIN_ECHO_SHARE:.0%} of echo: lowest {worst.measured.rps / echo_rps:.0%} "
        f"(N={worst.n}): " + ("pass" if share_ok else "FAIL"),
    ]
    return "\n".join(lines) + "\n"


def parse_options(argv: Sequence[str]) -> tuple[Options, Path | None]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="1,100,1000", help="numbers of tracked ScaledObjects (default 1,100,1000)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight (default 8)")
    parser.add_argument("--duration-s", type=float, default=5.0, help="measured seconds per case (default 5)")
    parser.add_argument(
        "--warmup-s", type=float, default=1.0, help="unmeasured seconds before each (default 1)"
    )
    parser.add_argument("--quick", action="store_true", help="1 s per case after 0.2 s, for a smoke run")
    parser.add_argument("--out", type=Path, help="also write the markdown report to this file")
    args = parser.parse_args(argv)
    try:
        sizes = tuple(sorted(int(s) for s in args.sizes.split(",")))
    except ValueError:
        parser.error(f"--sizes: `{args.sizes}` is not valid; expected integers such as 1,100,1000")
    if sizes[0] < 1 or args.concurrency < 1 or args.duration_s <= 0 or args.warmup_s < 0:
        parser.error("--sizes and --concurrency must be >= 1, --duration-s > 0 and --warmup-s >= 0")
    duration_s, warmup_s = (1.0, 0.2) if args.quick else (args.duration_s, args.warmup_s)
    return Options(sizes, args.concurrency, warmup_s, duration_s), args.out


def main(argv: Sequence[str] | None = None) -> int:
    options, out = parse_options(sys.argv[1:] if argv is None else argv)
    about = machine()
    rows = asyncio.run(run_cases(options))
    about.append(f"load average after the run {load_average()}")
    emit(render(rows, options, about), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
