"""Hostile ScaledObject metadata: every value bounded, every problem INVALID_ARGUMENT naming the key,
in linear time, while the other targets keep answering."""

from __future__ import annotations

import asyncio
import json
import re
import time
import tracemalloc
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from scaler._generated import externalscaler_pb2 as pb
from scaler.errors import ConfigError
from scaler.registry import Registry
from scaler.settings import Settings
from scaler.sources.prometheus import PrometheusSource
from scaler.sources.prometheus_answer import AnswerError, decode
from scaler.telemetry import Telemetry
from scaler.trigger import TriggerConfig, parse_trigger
from tests.servers import running_app
from tests.strategies import hostile_metadata_maps, prometheus_bodies

PROM = {"serverAddress": "http://prometheus.test:9090", "query": "up", "threshold": "5"}
MB = 1_000_000


def ref(meta: dict[str, str], name: str = "hostile") -> pb.ScaledObjectRef:
    return pb.ScaledObjectRef(name=name, namespace="tenant", scalerMetadata=meta)


HOSTILE = [
    # 1. durations that backtracked quadratically in the old regex, and 1 MB ones
    pytest.param({"step": "5" * 40_000}, "`step`", id="step-40k-digits"),
    pytest.param({"mode": "predictive", "leadTime": "5" * MB}, "`leadTime`", id="lead-1MB"),
    pytest.param({"mode": "predictive", "history": "5" * MB}, "`history`", id="history-1MB"),
    pytest.param({"mode": "predictive", "refitInterval": "5" * MB}, "`refitInterval`", id="refit-1MB"),
    pytest.param({"rateQuery": "r", "serviceTime": "5" * MB}, "`serviceTime`", id="service-time-1MB"),
    pytest.param({"step": "1" * 63 + "s"}, "`step`", id="step-64-chars-too-long-a-number"),
    # 2. no bounds on history and step
    pytest.param({"mode": "predictive", "history": "1000w"}, "`history`", id="history-1000w"),
    pytest.param({"mode": "predictive", "history": "30d", "step": "1s"}, "250,000", id="history-points"),
    pytest.param(
        {"step": "1ms"}, "`step`: `1ms` is not valid; expected a duration from 1s to 1h", id="step-1ms"
    ),
    pytest.param({"step": "10ms", "timeout": "9ms"}, "`step`", id="step-10ms-timeout-9ms"),
    pytest.param({"step": "0.0000001ms"}, "`step`", id="step-tiny"),
    pytest.param({"timeout": "5ms"}, "`timeout`", id="timeout-5ms"),
    # 4. a 1 MB bad threshold
    pytest.param({"threshold": "x" * MB}, "`threshold`", id="threshold-1MB"),
    # 6. headers that would reshape the request or carry credentials
    pytest.param({"customHeaders": "Host=evil.test"}, "header `Host` cannot be set", id="host"),
    pytest.param({"customHeaders": "Authorization=Bearer x"}, "header `Authorization`", id="authorization"),
    pytest.param({"customHeaders": "cookie=a"}, "header `cookie`", id="cookie"),
    pytest.param({"customHeaders": "Content-Length=5"}, "header `Content-Length`", id="content-length"),
    pytest.param(
        {"customHeaders": "Transfer-Encoding=chunked"}, "header `Transfer-Encoding`", id="hop-by-hop"
    ),
    pytest.param({"customHeaders": "X-Tenant=caf\u00e9"}, "not printable ASCII", id="non-ascii-value"),
    pytest.param({"customHeaders": "X\u00e9=1"}, "not an HTTP token", id="non-ascii-name"),
    pytest.param({"customHeaders": ",".join(f"X-{n}=1" for n in range(40))}, "40 pairs", id="too-many"),
    pytest.param(
        {"queryParameters": "query=evil"}, "parameter `query` is set by the scaler", id="param-query"
    ),
    # 8. inputs that answered UNKNOWN or warmed up forever
    pytest.param({"serverAddress": "http://prometheus.test:99999"}, "port number", id="port-99999"),
    pytest.param({"serverAddress": "http://prometheus.test:abc"}, "port number", id="port-abc"),
    pytest.param({"serverAddress": "http://prometheus.test:-1"}, "port number", id="port-negative"),
    pytest.param({"serverAddress": "http://prometheus.test:0"}, "port number", id="port-0"),
    pytest.param({"serverAddress": "http://prom\tetheus.test:9090"}, "control characters", id="tab-in-url"),
    pytest.param({"serverAddress": "http://user:pw@prometheus.test"}, "no user or password", id="userinfo"),
    pytest.param({"serverAddress": "http://p.test/api/v1/admin?x="}, "no `?query`", id="query-in-url"),
    pytest.param({"serverAddress": "http://p.test/a/../api"}, "`..`", id="dotdot-in-url"),
    pytest.param({"threshold": "9.3e18"}, "`threshold`: `9.3e18` is not valid", id="threshold-int64"),
    pytest.param({"activationThreshold": "-1e300"}, "`activationThreshold`", id="activation-huge"),
    pytest.param({"query": "q" * MB}, "`query`: the value is 1000000 characters", id="query-1MB"),
    pytest.param({"query": "up\x00"}, "control characters", id="nul-in-query"),
    pytest.param({"metricName": "m" * 300}, "`metricName`", id="metric-name-long"),
    pytest.param({"replaySpeed": "1e300", "source": "replay", "trace": "t.csv"}, "`replaySpeed`", id="speed"),
    pytest.param({f"k{n}": "v" for n in range(70)}, "73 metadata keys; at most 64", id="too-many-keys"),
    pytest.param({"k" * 200: "v"}, "longer than 128 characters", id="long-key"),
]


@pytest.mark.parametrize(("extra", "part"), HOSTILE)
async def test_hostile_metadata_is_invalid_argument_naming_the_key(extra: dict[str, str], part: str) -> None:
    async with running_app() as run:
        started = time.perf_counter()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await run.stub.GetMetricSpec(ref({**PROM, **extra}), timeout=5.0)
        elapsed = time.perf_counter() - started
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details() or ""
    assert part in details
    assert len(details) < 3000  # values are quoted truncated
    assert elapsed < 1.0


@pytest.mark.parametrize(
    ("trace", "part"),
    [
        pytest.param("a\x00b.csv", "control characters", id="nul"),
        pytest.param("loop.csv", "cannot be opened", id="symlink-loop"),
        pytest.param("n" * 300 + ".csv", "names of at most 255 bytes", id="name-too-long"),
        pytest.param("d" * 200 + "/" + "e" * 200 + "/x.csv", "does not exist", id="long-path"),
        pytest.param("d/" * 600, "at most 1024 are accepted", id="path-too-long"),
        pytest.param("sub", "is not a file", id="directory"),
        pytest.param("../outside.csv", "outside the replay directory", id="escape"),
    ],
)
async def test_bad_trace_paths_are_invalid_argument(tmp_path: Path, trace: str, part: str) -> None:
    (tmp_path / "loop.csv").symlink_to(tmp_path / "loop.csv")
    (tmp_path / "sub").mkdir()
    (tmp_path.parent / "outside.csv").write_text("timestamp,value\n2024-01-01 00:00:00,1\n")
    meta = {"source": "replay", "trace": trace, "threshold": "5"}
    async with running_app(real_sources=True, replay_dir=tmp_path) as run:
        for call in (run.stub.GetMetricSpec(ref(meta)), run.stub.IsActive(ref(meta))):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert part in (caught.value.details() or "")


async def test_a_1MB_duration_answers_invalid_argument_while_other_targets_keep_answering() -> None:
    async with running_app() as run:
        healthy = ref(PROM, "healthy")
        run.sources.get("up").answer = 7.0
        await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=healthy))
        latencies: list[float] = []
        codes: list[grpc.StatusCode] = []

        async def poll() -> None:
            for _ in range(40):
                started = time.perf_counter()
                answer = await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=healthy), timeout=2.0)
                latencies.append(time.perf_counter() - started)
                assert answer.metricValues[0].metricValueFloat == 7.0
                await asyncio.sleep(0.01)

        async def attack() -> None:
            for n in range(10):
                meta = {**PROM, "step": "5" * MB, "tag": str(n)}
                try:
                    await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(meta)), timeout=2.0)
                except grpc.aio.AioRpcError as exc:
                    codes.append(exc.code())

        await asyncio.gather(poll(), attack())
    assert codes == [grpc.StatusCode.INVALID_ARGUMENT] * 10
    assert max(latencies) < 0.5, sorted(latencies)[-3:]


def test_cached_parse_errors_hold_bounded_text() -> None:
    registry = Registry(Settings(), Telemetry(__import__("prometheus_client").CollectorRegistry()))
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for n in range(300):
        with pytest.raises(ConfigError) as caught:
            registry.config({**PROM, "threshold": f"{n}" + "x" * MB})
        assert len(str(caught.value)) < 500
        del caught
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # 300 cached errors of a 1 MB value each: well under 1 KB apiece (was 5.5 MB each).
    assert after - before < 300 * 2048


@settings(max_examples=300, deadline=None)
@given(meta=hostile_metadata_maps())
def test_any_metadata_parses_or_is_a_config_error(meta: dict[str, str]) -> None:
    started = time.perf_counter()
    try:
        config = parse_trigger(meta)
    except ConfigError as exc:
        assert exc.problems
        assert len(str(exc)) < 25 * 1200
    else:
        assert isinstance(config, TriggerConfig)
        assert 0 < config.threshold <= 1e15
        assert 1.0 <= config.step_s <= 3600.0
    assert time.perf_counter() - started < 0.2


@settings(max_examples=300, deadline=None)
@given(body=prometheus_bodies())
def test_any_prometheus_body_decodes_or_is_an_answer_error(body: bytes) -> None:
    try:
        answer = decode(body)
    except AnswerError as exc:
        assert len(str(exc)) < 400
    else:
        assert answer.kind in ("vector", "scalar", "matrix", "string")
        assert answer.series_count >= len(answer.points) > 0 or not answer.points


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=hostile_metadata_maps())
async def test_hostile_metadata_over_grpc_is_ok_or_invalid_argument(meta: dict[str, str]) -> None:
    async with running_app(rpc_deadline_s=1.0) as run:
        try:
            await run.stub.GetMetricSpec(ref(meta), timeout=5.0)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()


async def test_an_error_about_many_long_non_ascii_values_still_fits_a_status() -> None:
    """gRPC percent-encodes a status message; past the client's 8 KiB of headers the caller would get
    RESOURCE_EXHAUSTED instead of the error. The message is cut, and says how much is left out."""
    meta = {"customHeaders": "é" * 2078, "queryParameters": "ü" * 2000, "threshold": "€" * 4000}
    meta |= {f"unknownKey{n}": "x" for n in range(40)}
    async with running_app(rpc_deadline_s=1.0) as run:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await run.stub.GetMetricSpec(ref(meta), timeout=5.0)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    shown = caught.value.details() or ""
    assert shown.startswith("invalid trigger metadata: ")
    assert re.search(r"\.\.\. \([\d,]+ more characters\)$", shown)
    assert len(shown.encode()) <= 4096


def credentials(tmp_path: Path, entries: list[dict[str, Any]]) -> Settings:
    token = tmp_path / "token"
    token.write_text("s3cret")
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps([{"bearerTokenFile": str(token), **entry} for entry in entries]))
    return Settings(prometheus_credentials=path, max_age_s=float("inf"))


@pytest.mark.parametrize(
    ("namespace", "address", "expected"),
    [
        pytest.param("team-a", "http://p.test:9090", "Bearer s3cret", id="listed-namespace"),
        pytest.param("team-b", "http://p.test:9090", None, id="other-namespace"),
        pytest.param("team-a", "http://p.test:9090/api/v1/admin/tsdb", None, id="other-path"),
    ],
)
async def test_credentials_serve_only_their_namespaces_and_path(
    tmp_path: Path, namespace: str, address: str, expected: str | None
) -> None:
    settings_ = credentials(tmp_path, [{"serverAddress": "http://p.test:9090", "namespaces": ["team-a"]}])
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"status": "success", "data": {"resultType": "vector", "result": []}}
        return httpx.Response(200, json=body)

    config = TriggerConfig(threshold=1.0, server_address=address, query="up")
    source = PrometheusSource.from_config(
        config, settings_, namespace=namespace, transport=httpx.MockTransport(answer)
    )
    await source.sample()
    await source.aclose()
    assert seen[0].headers.get("authorization") == expected
    assert seen[0].url.path == address.removeprefix("http://p.test:9090") + "/api/v1/query"


@pytest.mark.parametrize(
    ("value", "as_float", "as_int"),
    [
        pytest.param(1e300, 9.2e15, 9_200_000_000_000_000, id="huge-is-capped-for-keda-milli-quantities"),
        pytest.param(9.2e15, 9.2e15, 9_200_000_000_000_000, id="the-cap"),
        pytest.param(float("nan"), 0.0, 0, id="nan"),
        pytest.param(float("inf"), 0.0, 0, id="inf"),
        pytest.param(-3.0, 0.0, 0, id="negative"),
        pytest.param(52.4375, 52.4375, 52, id="ordinary"),
    ],
)
def test_values_sent_fit_kedas_int64_thousandths(value: float, as_float: float, as_int: int) -> None:
    from scaler.server.handlers import metric_value

    sent = metric_value("m", value)
    assert (sent.metricValueFloat, sent.metricValue) == (as_float, as_int)
    assert sent.metricValueFloat * 1000 < 2**63


async def test_a_metrics_scrape_of_many_targets_does_not_stall_the_answers() -> None:
    async with running_app() as run:
        for n in range(5000):  # the series 5,000 targets export
            for kind in ("observed", "value"):
                run.app.telemetry.target_value.set(("ns", f"so-{n}", "prescaler"), 1.0, kind)
        run.sources.get("up").answer = 2.0
        healthy = ref(PROM, "healthy")
        await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=healthy))
        url = f"http://127.0.0.1:{run.ports.http}/metrics"

        def scrape() -> float:
            started = time.perf_counter()
            for _ in range(20):  # long enough for several answers meanwhile
                with __import__("urllib.request").request.urlopen(url, timeout=10) as answer:
                    assert b'so-4999"' in answer.read()
            return time.perf_counter() - started

        scraping = asyncio.ensure_future(asyncio.to_thread(scrape))
        latencies = []
        while not scraping.done():
            started = time.perf_counter()
            await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=healthy), timeout=2.0)
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)
        took = await scraping
    # The text is written off the event loop: answers keep coming while it is (several, and none
    # waiting for half the scrapes).
    assert len(latencies) >= 3
    assert max(latencies) < took / 2, (max(latencies), took)


async def test_the_event_loops_lag_is_measured() -> None:
    async with running_app() as run:
        await asyncio.sleep(0.35)
        quiet = run.sample("prescaler_event_loop_lag_seconds_count")
        time.sleep(0.3)  # a stall of the loop, as a blocking call would cause  # noqa: ASYNC251
        await asyncio.sleep(0.25)
        slow = run.sample("prescaler_event_loop_lag_seconds_bucket", {"le": "0.1"})
        total = run.sample("prescaler_event_loop_lag_seconds_count")
    assert quiet is not None and quiet >= 2
    assert total is not None and slow is not None and total - slow >= 1  # one tick was late by > 0.1 s
