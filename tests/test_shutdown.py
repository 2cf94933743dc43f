"""Shutdown as Kubernetes does it: NOT_SERVING observable for the drain window while RPCs are still
answered; fits cancelled; worker processes gone with their parent, even after SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scaler._generated import externalscaler_pb2 as pb
from scaler._generated import externalscaler_pb2_grpc as pb_grpc
from tests.serve_process import start_serve, stop
from tests.servers import running_app

PREDICTIVE = {"source": "replay", "trace": "nyc_taxi_10d.csv", "threshold": "5", "mode": "predictive"}


async def test_not_serving_is_observable_during_the_drain_while_rpcs_are_answered() -> None:
    async with running_app(drain_s=1.5) as run:
        ref = pb.ScaledObjectRef(
            name="so",
            namespace="default",
            scalerMetadata={"serverAddress": "http://p:9090", "query": "up", "threshold": "1"},
        )
        run.sources.get("up").answer = 3.0
        await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref))
        health = health_pb2_grpc.HealthStub(run.channel)
        stopping = asyncio.create_task(run.app.stop())
        await asyncio.sleep(0.3)
        check = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
        answer = await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref), timeout=1.0)
        assert answer.metricValues[0].metricValueFloat == 3.0
        with pytest.raises(urllib.error.HTTPError) as caught:
            await asyncio.to_thread(
                urllib.request.urlopen, f"http://127.0.0.1:{run.ports.http}/healthz", timeout=2
            )
        assert caught.value.code == 503
        caught.value.close()
        assert not stopping.done()
        await stopping
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref), timeout=1.0)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def children_of(pid: int) -> set[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def serving_a_fit() -> Iterator[tuple[subprocess.Popen[str], set[int]]]:
    """`prescaler serve` with a predictive target whose first fit is running in worker processes."""
    running = start_serve("--forecast-workers", "1", "--drain", "0", "--grace", "1s")
    process, port = running.process, running.grpc_port
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            ref = pb.ScaledObjectRef(name="fit", namespace="default", scalerMetadata=PREDICTIVE)
            pb_grpc.ExternalScalerStub(channel).GetMetricSpec(ref, timeout=10)
        deadline = time.monotonic() + 30
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2:  # the worker and the resource tracker
            workers = children_of(process.pid)
            time.sleep(0.2)
        assert workers, "no worker process started"
        yield process, workers
    finally:
        stop(running)


def test_workers_die_with_a_sigkilled_server(serving_a_fit: tuple[subprocess.Popen[str], set[int]]) -> None:
    process, workers = serving_a_fit
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    # At once, not when the worker's import or fit ends (seconds later) and it finds its pipe closed.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.1)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []


def test_sigterm_during_a_fit_exits_at_once(serving_a_fit: tuple[subprocess.Popen[str], set[int]]) -> None:
    process, workers = serving_a_fit
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    assert time.monotonic() - started < 4.0  # a 1 s grace, no waiting for the fit
    time.sleep(0.5)
    assert [pid for pid in workers if alive(pid)] == []
