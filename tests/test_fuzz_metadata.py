"""Random metadata maps never crash the server: every answer is OK or INVALID_ARGUMENT."""

from __future__ import annotations

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler._generated import externalscaler_pb2 as pb
from tests.servers import running_app
from tests.strategies import metadata_maps


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(maps=st.lists(metadata_maps(), min_size=1, max_size=1))
async def test_random_metadata_gives_ok_or_invalid_argument(maps: list[dict[str, str]]) -> None:
    async with running_app(rpc_deadline_s=1.0) as run:
        for meta in maps:
            ref = pb.ScaledObjectRef(name="fuzz", namespace="default", scalerMetadata=meta)
            calls = (
                run.stub.GetMetricSpec(ref),
                run.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref, metricName="prescaler")),
                run.stub.IsActive(ref),
            )
            for call in calls:
                try:
                    await call
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
                    assert exc.details()
