"""`prescaler serve` as a user runs it: the embedded default, the announcement, SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import grpc
import pytest

from scaler._generated import externalscaler_pb2 as pb
from scaler._generated import externalscaler_pb2_grpc as pb_grpc
from scaler.call import EXAMPLE_METADATA
from scaler.units import parse_pairs
from tests.serve_process import start_serve, stop


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], int, int, list[str]]]:
    running = start_serve()
    try:
        yield running.process, running.grpc_port, running.http_port, running.banner
    finally:
        stop(running)


def test_serve_announces_answers_the_example_and_drains_on_sigterm(
    served: tuple[subprocess.Popen[str], int, int, list[str]],
) -> None:
    process, grpc_port, http_port, lines = served
    assert any("prescaler call all" in line for line in lines)
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)
        ref = pb.ScaledObjectRef(
            name="example", namespace="default", scalerMetadata=dict(parse_pairs(EXAMPLE_METADATA))
        )
        spec = stub.GetMetricSpec(ref, timeout=10)
        value = stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref, metricName="prescaler"), timeout=10)
    assert spec.metricSpecs[0].targetSizeFloat == 50.0
    # The bundled ELB trace ranges from 1 to 656 requests per 5 minutes.
    assert 1.0 <= value.metricValues[0].metricValueFloat <= 656.0
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=5) as answer:
        assert answer.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as answer:
        assert b'prescaler_rpc_duration_seconds_count{code="OK",method="GetMetrics"} 1.0' in answer.read()
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    assert process.stdout is not None
    assert "shutting down" in process.stdout.read()


def test_bad_flag_exits_2_with_the_reason() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scaler", "serve", "--tls-cert", "x.pem"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--tls-cert and --tls-key go together" in done.stderr
