"""The proto is wire-identical to KEDA's: checked against the contract's table, not against itself."""

from __future__ import annotations

import struct

import pytest
from google.protobuf.descriptor import FieldDescriptor

from scaler._generated import externalscaler_pb2 as pb

# (message, field, type, number) exactly as KEDA-CONTRACT.md lists them.
CONTRACT = [
    ("ScaledObjectRef", "name", "string", 1),
    ("ScaledObjectRef", "namespace", "string", 2),
    ("ScaledObjectRef", "scalerMetadata", "map<string,string>", 3),
    ("IsActiveResponse", "result", "bool", 1),
    ("GetMetricSpecResponse", "metricSpecs", "repeated MetricSpec", 1),
    ("MetricSpec", "metricName", "string", 1),
    ("MetricSpec", "targetSize", "int64", 2),
    ("MetricSpec", "targetSizeFloat", "double", 3),
    ("GetMetricsRequest", "scaledObjectRef", "ScaledObjectRef", 1),
    ("GetMetricsRequest", "metricName", "string", 2),
    ("GetMetricsResponse", "metricValues", "repeated MetricValue", 1),
    ("MetricValue", "metricName", "string", 1),
    ("MetricValue", "metricValue", "int64", 2),
    ("MetricValue", "metricValueFloat", "double", 3),
]
_SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_DOUBLE: "double",
}


def _describe(field: FieldDescriptor) -> str:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        return f"map<{_SCALARS[key.type]},{_SCALARS[value.type]}>"
    base = field.message_type.name if field.message_type is not None else _SCALARS[field.type]
    return f"repeated {base}" if field.is_repeated else base


@pytest.mark.parametrize(
    ("message", "name", "kind", "number"), CONTRACT, ids=[f"{m}.{f}" for m, f, _, _ in CONTRACT]
)
def test_field_matches_contract(message: str, name: str, kind: str, number: int) -> None:
    field = pb.DESCRIPTOR.message_types_by_name[message].fields_by_name[name]
    assert (field.number, _describe(field)) == (number, kind)


def test_messages_have_no_extra_fields() -> None:
    for message in {m for m, _, _, _ in CONTRACT}:
        fields = set(pb.DESCRIPTOR.message_types_by_name[message].fields_by_name)
        assert fields == {f for m, f, _, _ in CONTRACT if m == message}, message


def test_service_name_methods_and_order() -> None:
    assert pb.DESCRIPTOR.package == "externalscaler"
    service = pb.DESCRIPTOR.services_by_name["ExternalScaler"]
    assert service.full_name == "externalscaler.ExternalScaler"
    shape = [
        (m.name, m.input_type.name, m.output_type.name, m.server_streaming, m.client_streaming)
        for m in service.methods
    ]
    assert shape == [
        ("IsActive", "ScaledObjectRef", "IsActiveResponse", False, False),
        ("StreamIsActive", "ScaledObjectRef", "IsActiveResponse", True, False),
        ("GetMetricSpec", "ScaledObjectRef", "GetMetricSpecResponse", False, False),
        ("GetMetrics", "GetMetricsRequest", "GetMetricsResponse", False, False),
        ("StreamMetricSpec", "ScaledObjectRef", "GetMetricSpecResponse", True, False),
    ]


def _len(field: int, payload: bytes) -> bytes:
    return bytes([field << 3 | 2, len(payload)]) + payload


def test_hand_encoded_keda_request_decodes() -> None:
    """Bytes laid out by hand from the field numbers, as KEDA's Go client would send them."""
    entry = _len(1, b"query") + _len(2, b"up")
    ref = _len(1, b"llm") + _len(2, b"serving") + _len(3, entry)
    raw = _len(1, ref) + _len(2, b"s0-prescaler"[3:])
    request = pb.GetMetricsRequest.FromString(raw)
    assert request.scaledObjectRef.name == "llm"
    assert request.scaledObjectRef.namespace == "serving"
    assert dict(request.scaledObjectRef.scalerMetadata) == {"query": "up"}
    assert request.metricName == "prescaler"


def test_response_bytes_match_hand_encoding() -> None:
    answer = pb.GetMetricsResponse(
        metricValues=[pb.MetricValue(metricName="m", metricValue=5, metricValueFloat=2.5)]
    )
    value = _len(1, b"m") + bytes([2 << 3 | 0, 5]) + bytes([3 << 3 | 1]) + struct.pack("<d", 2.5)
    assert answer.SerializeToString() == _len(1, value)
