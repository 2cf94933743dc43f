"""`prescaler call`: ask a running scaler what KEDA would be told, without KEDA or grpcurl.

Beside the answer it prints why: the scaler's `/targets` view of that target (mode, observed, bound,
served value, reason, model, last error, ages) from the HTTP port, when that port can be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import grpc
from google.protobuf import json_format

from scaler._generated import externalscaler_pb2 as pb
from scaler._generated import externalscaler_pb2_grpc as pb_grpc
from scaler.cli_types import seconds
from scaler.digest import metadata_digest
from scaler.units import parse_pairs

METHODS = ("GetMetricSpec", "GetMetrics", "IsActive")
EXAMPLE_TRACE = "elb_request_count_8c0756.csv"
EXAMPLE_METADATA = f"source=replay,trace={EXAMPLE_TRACE},threshold=50"
DEFAULT_HTTP_PORT = 8080


class UsageError(ValueError):
    """A flag's value that cannot be used; names the flag, the value and what was expected."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "call",
        help="call a running scaler as KEDA would and print the answer",
        description="Call GetMetricSpec, GetMetrics or IsActive on a running scaler and print the JSON "
        "answer, with the scaler's /targets view of the target (why the value is what it is).",
        epilog="Values with commas: --set 'query=sum by (a,b) (up)' or --metadata-json "
        '\'{"query": "sum by (a,b) (up)"}\'. --set is applied last and wins.',
    )
    parser.add_argument(
        "method", choices=(*METHODS, "all"), help="the RPC to call (all: the three, in KEDA's order)"
    )
    parser.add_argument(
        "--address", default="127.0.0.1:9090", help="HOST:PORT of the scaler (default 127.0.0.1:9090)"
    )
    parser.add_argument(
        "--namespace", default="default", help="the ScaledObject's namespace (default default)"
    )
    parser.add_argument("--name", default="example", help="the ScaledObject's name (default example)")
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--metadata",
        help="trigger metadata as k1=v1,k2=v2 (default, without --metadata-json or --set: the embedded "
        f"replay, {EXAMPLE_METADATA})",
    )
    given.add_argument(
        "--metadata-json",
        metavar="JSON",
        help='trigger metadata as a JSON object, {"query": "sum by (a,b) (up)", ...}, or @FILE holding one',
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one metadata key (repeatable); the value may hold commas and `=`",
    )
    parser.add_argument(
        "--http-address",
        help=f"host:port of the scaler's HTTP port for /targets (default: --address's host, port "
        f"{DEFAULT_HTTP_PORT})",
    )
    parser.add_argument("--no-targets", action="store_true", help="do not fetch the /targets view")
    parser.add_argument("--ca", type=Path, help="PEM CA to verify a TLS server with")
    parser.add_argument(
        "--cert", type=Path, help="PEM client certificate, for a mutual TLS server (KEDA's tlsClientCert)"
    )
    parser.add_argument("--key", type=Path, help="PEM private key of --cert (KEDA's tlsClientKey)")
    parser.add_argument(
        "--server-name",
        metavar="NAME",
        help="name to verify the server's certificate for, when --address is not one of its names "
        "(e.g. prescaler.keda.svc.cluster.local through kubectl port-forward)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=5.0,
        help="how long each call may take: seconds, or a duration such as 500ms or 5s (default 5s)",
    )
    parser.set_defaults(func=run)


def metadata_from(text: str | None, json_text: str | None, sets: Sequence[str]) -> dict[str, str]:
    """The metadata map from `--metadata`, `--metadata-json` and `--set` (applied last, in order)."""
    if text is not None:
        try:
            metadata = dict(parse_pairs(text))
        except ValueError as exc:
            raise UsageError(
                f"--metadata `{text}`: {exc}; for values with commas use --set KEY=VALUE or --metadata-json"
            ) from None
    elif json_text is not None:
        metadata = _json_metadata(json_text)
    elif not sets:
        metadata = dict(parse_pairs(EXAMPLE_METADATA))
    else:
        metadata = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set `{item}`: expected KEY=VALUE, e.g. --set 'query=sum(up)'")
        metadata[key.strip()] = value
    return metadata


def _json_metadata(text: str) -> dict[str, str]:
    source = text
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise UsageError(f"--metadata-json {source}: cannot read {text[1:]}: {exc.strerror}") from None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--metadata-json `{source}`: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"--metadata-json `{source}`: expected a JSON object of key: value strings")
    metadata = {}
    for key, value in raw.items():
        # KEDA hands every value over as a string; numbers and booleans are written as they would be.
        if isinstance(value, bool):
            metadata[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            metadata[key] = str(value)
        else:
            raise UsageError(
                f"--metadata-json: `{key}` is {json.dumps(value)}; trigger metadata values are strings"
            )
    return metadata


def http_address(grpc_address: str, given: str | None) -> str:
    """Where /targets is: `given`, or the gRPC address's host on the default HTTP port."""
    if given:
        return given
    host = grpc_address.rsplit(":", 1)[0] if ":" in grpc_address else grpc_address
    return f"{host}:{DEFAULT_HTTP_PORT}"


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


async def targets_view(
    address: str, namespace: str, name: str, timeout_s: float, metadata: Mapping[str, str] | None = None
) -> str:
    """The scaler's /targets entries for the ScaledObject, as indented JSON, or a line saying why
    they could not be read. With `metadata`, only the entry tracking that metadata map is shown
    (others of the same name, e.g. an older version of the ScaledObject, are counted)."""
    import httpx

    url = f"http://{address}/targets?{urlencode({'namespace': namespace, 'name': name})}"
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            answer = await client.get(url)
        answer.raise_for_status()
        document: dict[str, Any] = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        return f"why: {url} not readable ({type(exc).__name__}: {exc}); pass --http-address HOST:PORT"
    entries = document.get("targets", [])
    others = 0
    if metadata is not None:
        digest = metadata_digest(metadata)[:12]
        mine = [entry for entry in entries if entry.get("digest") == digest]
        others, entries = len(entries) - len(mine), mine
    also = f"; {others} other target(s) of that name track other metadata" if others else ""
    if not entries:
        return f"why: {url} lists no target for this metadata (yet){also}"
    return f"why ({url}{also}):\n" + json.dumps(entries, indent=2)


def _pem(flag: str, path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot read it: {exc.strerror or exc}") from None


def check_address(flag: str, address: str) -> str:
    """`address` when it is HOST:PORT (or a gRPC target such as dns:///HOST:PORT or unix:PATH)."""
    if "://" in address or address.startswith("unix:"):
        return address
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{flag} {address}: expected HOST:PORT, e.g. 127.0.0.1:9090")
    return address


def _channel(args: argparse.Namespace) -> grpc.aio.Channel:
    """Plaintext, TLS (`--ca`) or mutual TLS (`--cert`/`--key` too), as the flags ask."""
    if (args.cert is None) != (args.key is None):
        raise UsageError("--cert and --key go together (the client certificate and its private key)")
    tls = args.ca is not None or args.cert is not None
    if not tls:
        if args.server_name is not None:
            raise UsageError(f"--server-name {args.server_name}: needs a TLS server (--ca, --cert/--key)")
        return grpc.aio.insecure_channel(args.address)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_pem("--ca", args.ca),
        private_key=_pem("--key", args.key),
        certificate_chain=_pem("--cert", args.cert),
    )
    options = [] if args.server_name is None else [("grpc.ssl_target_name_override", args.server_name)]
    return grpc.aio.secure_channel(args.address, credentials, options=options)


async def _run(args: argparse.Namespace) -> int:
    metadata = metadata_from(args.metadata, args.metadata_json, args.sets)
    ref = pb.ScaledObjectRef(name=args.name, namespace=args.namespace, scalerMetadata=metadata)
    check_address("--address", args.address)
    if args.http_address is not None:
        check_address("--http-address", args.http_address)
    channel = _channel(args)
    methods = METHODS if args.method == "all" else (args.method,)
    code, unreachable = 0, False
    async with channel:
        for method in methods:
            try:
                answer = await call(
                    channel, method, ref, metadata.get("metricName", "prescaler"), args.timeout
                )
                print(f"{method}: {answer}")
            except grpc.aio.AioRpcError as exc:
                print(f"{method}: {exc.code().name}: {exc.details()}")
                code = 1
                unreachable = exc.code() == grpc.StatusCode.UNAVAILABLE
                break
    if unreachable and args.http_address is None:
        # /targets on the guessed HTTP port could be another server's: not shown as this one's.
        print(f"why: not read; no scaler answered at {args.address} (pass --http-address to read it anyway)")
    elif not args.no_targets:
        address = http_address(args.address, args.http_address)
        print(await targets_view(address, args.namespace, args.name, args.timeout, metadata))
    return code


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        return asyncio.run(_run(args))
    except UsageError as exc:
        print(f"prescaler call: {exc}", file=sys.stderr)
        return 2
