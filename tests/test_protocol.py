"""The ExternalScaler contract through real gRPC on 127.0.0.1 (see KEDA-CONTRACT.md)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from scaler._generated import externalscaler_pb2 as pb
from scaler.errors import NullValueError, QueryShapeError, SourceUnreachable
from tests.servers import metadata, ref, running_app


async def _call_code(coro: object) -> grpc.StatusCode:
    try:
        await coro  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("threshold", "target_int", "target_float"),
    [
        pytest.param("10", 10, 10.0, id="integer"),
        pytest.param("0.4", 1, 0.4, id="below-one-int-field-is-1"),
        pytest.param("2.6", 3, 2.6, id="fraction-rounds"),
    ],
)
async def test_metric_spec_fills_both_target_fields(
    threshold: str, target_int: int, target_float: float
) -> None:
    async with running_app() as run:
        answer = await run.stub.GetMetricSpec(ref(metadata(threshold=threshold)))
    assert len(answer.metricSpecs) == 1
    spec = answer.metricSpecs[0]
    assert (spec.metricName, spec.targetSize, spec.targetSizeFloat) == ("prescaler", target_int, target_float)


async def test_metric_spec_is_stable_and_uses_metric_name() -> None:
    async with running_app() as run:
        meta = metadata(metricName="llm-queue")
        first = await run.stub.GetMetricSpec(ref(meta))
        second = await run.stub.GetMetricSpec(ref(meta))
    assert first == second
    assert first.metricSpecs[0].metricName == "llm-queue"


async def test_get_metrics_first_returns_one_value_with_both_fields() -> None:
    """KEDA does not promise IsActive or GetMetricSpec come first."""
    async with running_app() as run:
        run.sources.get("load").answer = 42.7
        request = pb.GetMetricsRequest(scaledObjectRef=ref(metadata()), metricName="prescaler")
        answer = await run.stub.GetMetrics(request)
    assert len(answer.metricValues) == 1
    value = answer.metricValues[0]
    assert (value.metricName, value.metricValue, value.metricValueFloat) == ("prescaler", 43, 42.7)


@pytest.mark.parametrize(
    ("observed", "activation", "active"),
    [
        pytest.param(0.0, "0", False, id="zero-load-inactive"),
        pytest.param(0.5, "0", True, id="any-load-active"),
        pytest.param(5.0, "5", False, id="equal-is-not-above"),
        pytest.param(5.01, "5", True, id="strictly-above"),
        pytest.param(-3.0, "0", False, id="negative-counts-as-zero"),
    ],
)
async def test_is_active_is_strictly_above_activation_threshold(
    observed: float, activation: str, active: bool
) -> None:
    async with running_app() as run:
        run.sources.get("load").answer = observed
        answer = await run.stub.IsActive(ref(metadata(activationThreshold=activation)))
    assert answer.result is active


async def test_negative_value_is_answered_as_zero() -> None:
    async with running_app() as run:
        run.sources.get("load").answer = -5.0
        request = pb.GetMetricsRequest(scaledObjectRef=ref(metadata()), metricName="prescaler")
        value = (await run.stub.GetMetrics(request)).metricValues[0]
    assert (value.metricValue, value.metricValueFloat) == (0, 0.0)


@pytest.mark.parametrize(
    "method", ["GetMetricSpec", "GetMetrics", "IsActive", "StreamIsActive", "StreamMetricSpec"]
)
async def test_bad_metadata_is_invalid_argument_naming_the_key(method: str) -> None:
    bad = metadata(threshold="lots", activationThreshold="NaN")
    async with running_app() as run:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            if method == "GetMetrics":
                await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(bad), metricName="x"))
            elif method.startswith("Stream"):
                async for _ in getattr(run.stub, method)(ref(bad)):
                    pass
            else:
                await getattr(run.stub, method)(ref(bad))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details() or ""
    assert "`threshold`: `lots`" in details
    assert "`activationThreshold`: `NaN`" in details


@pytest.mark.parametrize(
    ("error", "code", "text"),
    [
        pytest.param(
            SourceUnreachable("Prometheus at http://prometheus.test:9090 unreachable: connection refused"),
            grpc.StatusCode.UNAVAILABLE,
            "http://prometheus.test:9090",
            id="unreachable",
        ),
        pytest.param(
            QueryShapeError("query `load` returned 3 series; it must return 0 or 1"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "returned 3 series",
            id="several-series",
        ),
        pytest.param(
            NullValueError("query `load` returned NaN and ignoreNullValues is false"),
            grpc.StatusCode.UNAVAILABLE,
            "ignoreNullValues",
            id="null-not-ignored",
        ),
    ],
)
async def test_source_errors_map_to_documented_codes(
    error: Exception, code: grpc.StatusCode, text: str
) -> None:
    async with running_app() as run:
        run.sources.get("load").answer = error  # type: ignore[assignment]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await run.stub.IsActive(ref(metadata()))
    assert caught.value.code() == code
    assert text in (caught.value.details() or "")


async def test_first_read_that_hangs_answers_unavailable_within_the_deadline() -> None:
    async with running_app(rpc_deadline_s=0.3) as run:
        run.sources.get("load").hold = True
        started = asyncio.get_running_loop().time()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await run.stub.IsActive(ref(metadata()), timeout=5)
        elapsed = asyncio.get_running_loop().time() - started
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "did not finish" in (caught.value.details() or "")
    assert elapsed < 2.0


async def test_client_deadline_shorter_than_server_deadline_is_honoured() -> None:
    async with running_app(rpc_deadline_s=5.0) as run:
        run.sources.get("load").hold = True
        started = asyncio.get_running_loop().time()
        code = await _call_code(
            run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata())), timeout=0.3)
        )
        elapsed = asyncio.get_running_loop().time() - started
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert elapsed < 2.0


async def test_value_older_than_max_age_is_unavailable_not_stale() -> None:
    async with running_app(max_age_s=60.0) as run:
        source = run.sources.get("load")
        source.answer = 7.0
        assert (await run.stub.IsActive(ref(metadata()))).result is True
        source.answer = SourceUnreachable("Prometheus at http://prometheus.test:9090 unreachable")
        refresher = run.app.registry.track("serving", "llm", metadata())
        run.clock.advance(30)
        await refresher.refresh()
        assert (await run.stub.IsActive(ref(metadata()))).result is True  # 30 s old: still served
        run.clock.advance(31)
        await refresher.refresh()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata())))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    details = caught.value.details() or ""
    assert "max age" in details
    assert "http://prometheus.test:9090" in details


async def test_triggers_are_keyed_by_namespace_name_and_metadata() -> None:
    async with running_app() as run:
        run.sources.get("queue").answer = 3.0
        run.sources.get("rate").answer = 300.0
        queue = pb.GetMetricsRequest(scaledObjectRef=ref(metadata("queue")))
        rate = pb.GetMetricsRequest(scaledObjectRef=ref(metadata("rate")))
        values = [(await run.stub.GetMetrics(r)).metricValues[0].metricValueFloat for r in (queue, rate)]
        other_namespace = pb.GetMetricsRequest(scaledObjectRef=ref(metadata("queue"), namespace="b"))
        await run.stub.GetMetrics(other_namespace)
        tracked = run.sample("prescaler_tracked_targets")
    assert values == [3.0, 300.0]
    assert tracked == 3


async def test_stream_is_active_sends_current_state_then_changes() -> None:
    async with running_app() as run:
        source = run.sources.get("load")
        source.answer = 0.0
        stream = run.stub.StreamIsActive(ref(metadata()))
        first = await asyncio.wait_for(stream.read(), 5)
        refresher = run.app.registry.track("serving", "llm", metadata())
        await refresher.refresh()  # unchanged: nothing is sent
        source.answer = 12.0
        await refresher.refresh()
        second = await asyncio.wait_for(stream.read(), 5)
        stream.cancel()
    assert (first.result, second.result) == (False, True)


async def test_stream_metric_spec_sends_spec_at_once_and_ends_cleanly_on_shutdown() -> None:
    async with running_app() as run:
        stream = run.stub.StreamMetricSpec(ref(metadata(threshold="4")))
        first = await asyncio.wait_for(stream.read(), 5)
        unary = await run.stub.GetMetricSpec(ref(metadata(threshold="4")))
        run.app.service.stop_streams()
        end = await asyncio.wait_for(stream.read(), 5)
        code = await stream.code()
    assert first == unary
    assert end is grpc.aio.EOF
    assert code == grpc.StatusCode.OK


async def test_health_serving_then_not_serving_on_shutdown() -> None:
    async with running_app() as run:
        health = health_pb2_grpc.HealthStub(run.channel)
        name = "externalscaler.ExternalScaler"
        before = await health.Check(health_pb2.HealthCheckRequest(service=name))
        await run.app.health.enter_graceful_shutdown()
        after = await health.Check(health_pb2.HealthCheckRequest(service=name))
    assert before.status == health_pb2.HealthCheckResponse.SERVING
    assert after.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_reflection_lists_the_external_scaler_service() -> None:
    async with running_app() as run:
        stub = reflection_pb2_grpc.ServerReflectionStub(run.channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        answer = await responses.read()
        responses.cancel()
    names = {service.name for service in answer.list_services_response.service}
    assert {"externalscaler.ExternalScaler", "grpc.health.v1.Health"} <= names


async def test_idle_targets_are_evicted_and_their_series_removed() -> None:
    async with running_app(idle_evict_s=0.0) as run:
        run.sources.get("load").answer = 5.0
        await run.stub.IsActive(ref(metadata()))
        labels = {"namespace": "serving", "name": "llm", "metric": "prescaler"}
        assert run.sample("prescaler_target_active", labels) == 1
        await asyncio.sleep(0.01)
        evicted = await run.app.registry.evict_idle()
        assert evicted == 1
        assert run.sources.get("load").closed
        assert run.sample("prescaler_tracked_targets") == 0
        assert run.sample("prescaler_target_active", labels) is None


async def test_evicting_an_old_version_of_a_trigger_keeps_the_new_ones_series() -> None:
    """A ScaledObject whose metadata changed is tracked again under another digest but the same
    names; when its old version is evicted, the series are the new version's and stay."""
    async with running_app(idle_evict_s=0.05) as run:
        run.sources.get("load").answer = 5.0
        await run.stub.IsActive(ref(metadata(threshold="10")))
        await asyncio.sleep(0.1)
        await run.stub.IsActive(ref(metadata(threshold="2")))
        assert await run.app.registry.evict_idle() == 1
        labels = {"namespace": "serving", "name": "llm", "metric": "prescaler"}
        assert run.sample("prescaler_tracked_targets") == 1
        assert run.sample("prescaler_target_active", labels) == 1
        assert run.sample("prescaler_target_value", {**labels, "kind": "value"}) == 5.0
        await asyncio.sleep(0.1)
        assert await run.app.registry.evict_idle() == 1
        assert run.sample("prescaler_target_active", labels) is None


async def test_rpc_latency_histogram_labels_method_and_code() -> None:
    async with running_app() as run:
        run.sources.get("load").answer = 1.0
        await run.stub.IsActive(ref(metadata()))
        await _call_code(run.stub.IsActive(ref(metadata(threshold="-1"))))
        ok = run.sample("prescaler_rpc_duration_seconds_count", {"method": "IsActive", "code": "OK"})
        labels = {"method": "IsActive", "code": "INVALID_ARGUMENT"}
        # grpc.aio sends an aborted call's status before the handler's coroutine resumes to record it.
        for _ in range(100):
            bad = run.sample("prescaler_rpc_duration_seconds_count", labels)
            if bad is not None:
                break
            await asyncio.sleep(0.01)
    assert (ok, bad) == (1, 1)
