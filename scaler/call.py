"""`prescaler call`: ask a running scaler what KEDA would be told, without KEDA or grpcurl."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping
from pathlib import Path

import grpc
from google.protobuf import json_format

from scaler._generated import externalscaler_pb2 as pb
from scaler._generated import externalscaler_pb2_grpc as pb_grpc
from scaler.units import parse_pairs

METHODS = ("GetMetricSpec", "GetMetrics", "IsActive")
EXAMPLE_METADATA = "source=replay,trace=elb_request_count_8c0756.csv,threshold=50"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "call",
        help="call a running scaler as KEDA would and print the answer",
        description="Call GetMetricSpec, GetMetrics or IsActive on a running scaler and print the JSON answer.",
    )
    parser.add_argument(
        "method", choices=(*METHODS, "all"), help="the RPC to call (all: the three, in KEDA's order)"
    )
    parser.add_argument("--address", default="127.0.0.1:9090", help="host:port of the scaler")
    parser.add_argument("--namespace", default="default", help="the ScaledObject's namespace")
    parser.add_argument("--name", default="example", help="the ScaledObject's name")
    parser.add_argument(
        "--metadata",
        default=EXAMPLE_METADATA,
        help="trigger metadata as k1=v1,k2=v2 (default: the embedded replay)",
    )
    parser.add_argument("--ca", type=Path, help="PEM CA to verify a TLS server with")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before giving up")
    parser.set_defaults(func=run)


async def call(
    channel: grpc.aio.Channel, method: str, ref: pb.ScaledObjectRef, metric_name: str, timeout_s: float
) -> str:
    """One RPC's answer as JSON text."""
    stub = pb_grpc.ExternalScalerStub(channel)
    if method == "GetMetricSpec":
        answer: object = await stub.GetMetricSpec(ref, timeout=timeout_s)
    elif method == "GetMetrics":
        request = pb.GetMetricsRequest(scaledObjectRef=ref, metricName=metric_name)
        answer = await stub.GetMetrics(request, timeout=timeout_s)
    else:
        answer = await stub.IsActive(ref, timeout=timeout_s)
    return json.dumps(json_format.MessageToDict(answer, always_print_fields_with_no_presence=True))  # type: ignore[arg-type]


async def _run(args: argparse.Namespace) -> int:
    metadata = dict(parse_pairs(args.metadata))
    ref = pb.ScaledObjectRef(name=args.name, namespace=args.namespace, scalerMetadata=metadata)
    if args.ca is not None:
        channel = grpc.aio.secure_channel(args.address, grpc.ssl_channel_credentials(args.ca.read_bytes()))
    else:
        channel = grpc.aio.insecure_channel(args.address)
    methods = METHODS if args.method == "all" else (args.method,)
    async with channel:
        for method in methods:
            try:
                print(
                    f"{method}: {await call(channel, method, ref, metadata.get('metricName', 'prescaler'), args.timeout)}"
                )
            except grpc.aio.AioRpcError as exc:
                print(f"{method}: {exc.code().name}: {exc.details()}")
                return 1
    return 0


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    return asyncio.run(_run(args))
