"""The whole path KEDA exercises: gRPC -> registry -> refresher -> a real Prometheus."""

from __future__ import annotations

import socket

import grpc
import pytest

from scaler._generated import externalscaler_pb2 as pb
from tests.prometheus_server import LoadedPrometheus
from tests.servers import ref, running_app

pytestmark = pytest.mark.prometheus


def _meta(url: str, query: str, **extra: str) -> dict[str, str]:
    return {"serverAddress": url, "query": query, "threshold": "10", **extra}


async def test_get_metrics_answers_the_prometheus_value(prometheus_url: LoadedPrometheus) -> None:
    query = f"sum({prometheus_url.selector})"
    async with running_app(real_sources=True) as run:
        spec = await run.stub.GetMetricSpec(ref(_meta(prometheus_url.url, query)))
        answer = await run.stub.GetMetrics(
            pb.GetMetricsRequest(
                scaledObjectRef=ref(_meta(prometheus_url.url, query)), metricName="prescaler"
            )
        )
        active = await run.stub.IsActive(ref(_meta(prometheus_url.url, query)))
    assert spec.metricSpecs[0].targetSizeFloat == 10.0
    assert answer.metricValues[0].metricValueFloat == pytest.approx(prometheus_url.values[-1])
    assert active.result is True


@pytest.mark.parametrize(
    ("query_of", "extra", "code", "text"),
    [
        pytest.param(
            lambda p: p.multi_metric, {}, grpc.StatusCode.FAILED_PRECONDITION, "3 series", id="several-series"
        ),
        pytest.param(
            lambda p: p.nan_metric,
            {"ignoreNullValues": "false"},
            grpc.StatusCode.UNAVAILABLE,
            "ignoreNullValues",
            id="nan-not-ignored",
        ),
        pytest.param(
            lambda p: "absent_metric_name",
            {"ignoreNullValues": "false"},
            grpc.StatusCode.UNAVAILABLE,
            "ignoreNullValues",
            id="empty-not-ignored",
        ),
    ],
)
async def test_prometheus_answers_that_cannot_be_used(
    prometheus_url: LoadedPrometheus,
    query_of: object,
    extra: dict[str, str],
    code: grpc.StatusCode,
    text: str,
) -> None:
    meta = _meta(prometheus_url.url, query_of(prometheus_url), **extra)  # type: ignore[operator]
    async with running_app(real_sources=True) as run:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(meta)), timeout=10)
    assert caught.value.code() == code
    assert text in (caught.value.details() or "")


async def test_nan_and_empty_count_as_zero_by_default(prometheus_url: LoadedPrometheus) -> None:
    async with running_app(real_sources=True) as run:
        for query in (prometheus_url.nan_metric, "absent_metric_name"):
            answer = await run.stub.IsActive(ref(_meta(prometheus_url.url, query)), timeout=10)
            assert answer.result is False


async def test_unreachable_prometheus_is_unavailable_naming_the_address() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    async with running_app(real_sources=True) as run:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await run.stub.IsActive(ref(_meta(closed, "up")), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert closed in (caught.value.details() or "")
