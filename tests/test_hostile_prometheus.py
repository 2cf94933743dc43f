"""A Prometheus that misbehaves on purpose: each answer is a typed error within the trigger's timeout,
and one target's hostile server never reaches another target's answers."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scaler._generated import externalscaler_pb2 as pb
from scaler.errors import (
    PrescalerError,
    QueryShapeError,
    SourceResponseError,
    SourceTimeout,
    SourceUnreachable,
    StaleSample,
)
from scaler.settings import Settings
from scaler.sources.prometheus import PrometheusSource
from scaler.trigger import TriggerConfig
from tests.hostile_prometheus import HostileProcess, HostilePrometheus, established_to
from tests.servers import running_app

LIMIT = 1024 * 1024
SETTINGS = Settings(prometheus_max_body=LIMIT, max_age_s=60.0)


def trigger(address: str, **overrides: Any) -> TriggerConfig:
    values: dict[str, Any] = {"threshold": 10.0, "server_address": address, "query": "up", "timeout_s": 1.0}
    return TriggerConfig(**(values | overrides))


@pytest.mark.parametrize(
    ("behaviour", "error", "parts"),
    [
        pytest.param("drip", SourceTimeout, ["no complete answer within the timeout of 1s"], id="drip"),
        pytest.param("endless", SourceResponseError, ["sent more than 1,048,576 bytes"], id="endless-body"),
        pytest.param(
            "huge", SourceResponseError, ["declares 104,857,600 bytes", "--prometheus-max-body"], id="huge"
        ),
        pytest.param(
            "huge-chunked", SourceResponseError, ["over the limit of 1,048,576 bytes"], id="huge-chunked"
        ),
        pytest.param(
            "nested", SourceResponseError, ["nests 100000 levels deep; at most 16"], id="nested-json"
        ),
        pytest.param(
            "series", QueryShapeError, ["returned 10000 series; it must return 0 or 1"], id="many-series"
        ),
        pytest.param(
            "stale", StaleSample, ["timestamp is 30d old, past the max age of 1m"], id="stale-timestamp"
        ),
        pytest.param("html", SourceResponseError, ["HTTP 200 OK", "is not JSON"], id="html-page"),
        pytest.param(
            "error", SourceResponseError, ["HTTP 400", "bad_data: bad??[31m query yyy"], id="error-text"
        ),
    ],
)
async def test_each_hostile_answer_is_a_typed_error_within_the_timeout(
    behaviour: str, error: type[PrescalerError], parts: list[str]
) -> None:
    # 1 s for the drip, which only the timeout ends; 5 s for the rest, which a loaded machine may need.
    timeout_s = 1.0 if behaviour == "drip" else 5.0
    async with HostilePrometheus() as server:
        source = PrometheusSource.from_config(
            trigger(server.address(behaviour), timeout_s=timeout_s), SETTINGS
        )
        started = time.perf_counter()
        try:
            with pytest.raises(error) as caught:
                await source.sample()
        finally:
            await source.aclose()
        elapsed = time.perf_counter() - started
    message = str(caught.value)
    for part in parts:
        assert part in message
    # Bounded: within the timeout (plus scheduling), no body quoted, no control characters.
    assert elapsed < timeout_s + 0.5
    assert len(message) < 400
    assert "SECRET-INTERNAL-PAGE" not in message
    assert not any(ord(c) < 32 for c in message)


async def test_a_body_that_drips_within_the_per_read_timeout_is_cut_at_the_total_deadline() -> None:
    # Each byte arrives well within httpx's per-read timeout; only a total deadline stops it.
    async with HostilePrometheus() as server:
        source = PrometheusSource.from_config(trigger(server.address("drip"), timeout_s=0.6), SETTINGS)
        started = time.perf_counter()
        with pytest.raises(SourceTimeout):
            await source.history(1000.0, 2000.0, 15.0)
        await source.aclose()
        assert time.perf_counter() - started < 1.1


async def test_targets_share_one_client_and_never_exceed_the_origins_connection_limit() -> None:
    async with (
        HostilePrometheus(slow_s=0.3) as server,
        running_app(real_sources=True, prometheus_max_connections=3, max_age_s=120.0) as run,
    ):
        calls = []
        for n in range(40):
            meta = {
                "serverAddress": server.address("slow"),
                "query": f"up{n}",
                "threshold": "1",
                "step": "1s",
                "timeout": "900ms",
            }
            ref = pb.ScaledObjectRef(name=f"so-{n}", namespace="default", scalerMetadata=meta)
            calls.append(run.stub.GetMetricSpec(ref))
        await asyncio.gather(*calls)
        held = []
        for _ in range(25):
            await asyncio.sleep(0.1)
            held.append(established_to(server.port))
        assert len(run.app.registry) == 40
        catalog = run.app.registry._catalog  # the production catalog the registry owns
        assert catalog is not None and len(catalog.clients) == 1
    # 40 targets polling every second, at most 3 connections held at once. (A request cut at its
    # deadline closes its connection; the server may still be finishing it, so its own count of
    # handlers can be higher for a moment.)
    assert server.stats.requests["slow"] >= 10
    assert 1 <= max(held) <= 3, held


async def test_prometheus_verification_stays_on_with_kedas_unsafe_ssl() -> None:
    ca = trustme.CA()  # a CA nobody trusts: the server's certificate is, for us, self-signed
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    async with HostilePrometheus(tls=tls) as server:
        address = server.address("ok")
        keda = PrometheusSource.from_config(trigger(address, timeout_s=2.0), SETTINGS)
        with pytest.raises(SourceUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
            await keda.sample()
        await keda.aclose()
        ours = PrometheusSource.from_config(trigger(address, prometheus_unsafe_ssl=True), SETTINGS)
        assert (await ours.sample()).value == 1.0
        await ours.aclose()


async def test_kedas_unsafe_ssl_in_metadata_leaves_prometheus_verification_on() -> None:
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    async with HostilePrometheus(tls=tls) as server, running_app(real_sources=True, max_age_s=120.0) as run:
        base = {"serverAddress": server.address("ok"), "query": "up", "threshold": "1", "enableTLS": "true"}
        keda = pb.ScaledObjectRef(
            name="keda", namespace="default", scalerMetadata={**base, "unsafeSsl": "true"}
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=keda))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "CERTIFICATE_VERIFY_FAILED" in (caught.value.details() or "")
        assert "prometheusUnsafeSsl" in (caught.value.details() or "")  # the hint names the right key
        ours = pb.ScaledObjectRef(
            name="ours", namespace="default", scalerMetadata={**base, "prometheusUnsafeSsl": "true"}
        )
        answer = await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ours))
        assert answer.metricValues[0].metricValueFloat == 1.0


def final_requests(server: HostileProcess) -> int:
    requests = server.final.get("requests", {})
    assert isinstance(requests, dict)
    return int(requests.get("ok range", 0))


async def test_other_targets_keep_answering_while_hostile_servers_misbehave() -> None:
    hostile = ("drip", "endless", "huge", "huge-chunked", "nested", "series", "stale", "html", "error")
    with HostileProcess() as server:
        async with running_app(
            real_sources=True, prometheus_max_body=4 * 1024 * 1024, rpc_deadline_s=2.0, max_age_s=120.0
        ) as run:

            def ref(name: str, behaviour: str) -> pb.ScaledObjectRef:
                meta = {
                    "serverAddress": server.address(behaviour),
                    "query": "up",
                    "threshold": "1",
                    "step": "1s",
                    "timeout": "900ms",
                }
                return pb.ScaledObjectRef(name=name, namespace=f"ns-{name}", scalerMetadata=meta)

            healthy = ref("healthy", "ok")
            await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=healthy))
            for behaviour in hostile:
                await run.stub.GetMetricSpec(ref(behaviour, behaviour))
            # A bootstrap at its limits: 35 days at 15 s, 201,600 points in 21 range queries.
            longest = {
                "serverAddress": server.address("ok"),
                "query": "demand",
                "threshold": "1",
                "mode": "shadow",
                "history": "35d",
            }
            await run.stub.GetMetricSpec(
                pb.ScaledObjectRef(name="boot", namespace="b", scalerMetadata=longest)
            )
            health = health_pb2_grpc.HealthStub(run.channel)
            latencies = []
            (boot,) = [t.refresher for k, t in run.app.registry._targets.items() if k.name == "boot"]
            assert boot.predictor is not None
            bootstrapped = boot.predictor.demand_history
            # At least 4 s, and until the bootstrap has landed in the target's history.
            deadline = time.perf_counter() + 4.0
            give_up = deadline + 60.0
            while time.perf_counter() < deadline or (
                len(bootstrapped) == 0 and time.perf_counter() < give_up
            ):
                started = time.perf_counter()
                answer = await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=healthy), timeout=2.0)
                latencies.append(time.perf_counter() - started)
                assert answer.metricValues[0].metricValueFloat == 1.0
                check = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2.0)
                assert check.status == health_pb2.HealthCheckResponse.SERVING
                await asyncio.sleep(0.05)
            codes = {}
            for behaviour in hostile:
                try:
                    await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(behaviour, behaviour)))
                    codes[behaviour] = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as exc:
                    codes[behaviour] = exc.code()
    assert final_requests(server) >= 21  # the bootstrap's 21 range queries ran meanwhile
    assert len(latencies) > 20
    # Every healthy answer well within KEDA's 3 s deadline, most in milliseconds.
    assert max(latencies) < 0.5, sorted(latencies)[-5:]
    assert sorted(latencies)[len(latencies) // 2] < 0.05
    expected = {b: grpc.StatusCode.UNAVAILABLE for b in hostile} | {
        "series": grpc.StatusCode.FAILED_PRECONDITION
    }
    assert codes == expected
