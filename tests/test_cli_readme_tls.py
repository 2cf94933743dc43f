"""The README's TLS example gives KEDA its certificates as KEDA reads them: `caCert`, `tlsClientCert`
and `tlsClientKey` from a TriggerAuthentication's parameters, never from trigger metadata."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

README = Path(__file__).resolve().parents[1] / "README.md"
TLS_KEYS = {"caCert", "tlsClientCert", "tlsClientKey"}


def _documents() -> list[Any]:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if doc is not None]


def _mappings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _mappings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _mappings(value)


def test_tls_certificates_come_from_a_trigger_authentication() -> None:
    documents = _documents()
    triggers = [m for d in documents for m in _mappings(d) if m.get("type") == "external"]
    assert triggers, "the README shows external triggers"
    for trigger in triggers:
        assert not TLS_KEYS & set(trigger.get("metadata", {})), trigger
    authentications = {
        d["metadata"]["name"]: d
        for d in documents
        if isinstance(d, dict) and d.get("kind") in ("TriggerAuthentication", "ClusterTriggerAuthentication")
    }
    assert authentications, "the README shows a TriggerAuthentication"
    referenced = [t["authenticationRef"] for t in triggers if "authenticationRef" in t]
    assert referenced, "a trigger references it"
    for ref in referenced:
        auth = authentications[ref["name"]]
        assert auth["kind"] == ref.get("kind", "TriggerAuthentication")
        assert {p["parameter"] for p in auth["spec"]["secretTargetRef"]} == TLS_KEYS
