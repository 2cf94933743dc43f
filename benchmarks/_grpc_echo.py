"""The ceiling for `grpc_load.py`: a bare grpc.aio server that answers GetMetrics with a fixed message.

It registers the ExternalScaler GetMetrics method path with a generic handler and nothing else: no
interceptor, no registry, no deadline. It parses each request and serialises the same response, the
least any Python gRPC server does per call, so that prescaler's rate over this one is the share
left after its own work.
"""

from __future__ import annotations

from typing import Any

import grpc

from scaler._generated import externalscaler_pb2 as pb

METHOD = "/externalscaler.ExternalScaler/GetMetrics"


def fixed_response(metric_name: str, value: float) -> pb.GetMetricsResponse:
    """A GetMetricsResponse shaped like prescaler's: one MetricValue, both number fields filled."""
    return pb.GetMetricsResponse(
        metricValues=[
            pb.MetricValue(metricName=metric_name, metricValue=round(value), metricValueFloat=value)
        ]
    )


class EchoServer:
    """`start()` binds 127.0.0.1 on a free port and returns it; `stop()` ends the server."""

    def __init__(self, response: pb.GetMetricsResponse) -> None:
        self.response = response
        self._server: grpc.aio.Server | None = None

    async def _answer(self, request: pb.GetMetricsRequest, context: Any) -> pb.GetMetricsResponse:
        return self.response

    async def start(self) -> int:
        handler = grpc.unary_unary_rpc_method_handler(
            self._answer,
            request_deserializer=pb.GetMetricsRequest.FromString,
            response_serializer=pb.GetMetricsResponse.SerializeToString,
        )
        service, method = METHOD.strip("/").split("/")
        # Created here, inside the running event loop the server must belong to (as App does).
        self._server = server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {method: handler}),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)
