"""The identity of a trigger's metadata map: what tells two versions of one ScaledObject apart."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def metadata_digest(metadata: Mapping[str, str]) -> str:
    """A stable hash of a metadata map (order-independent), the same on every replica."""
    # Each key and value length-prefixed: no value can pass for a separator (NUL included).
    hasher = hashlib.sha256()
    for key, value in sorted(metadata.items()):
        for text in (key.encode(), value.encode()):
            hasher.update(len(text).to_bytes(8, "big") + text)
    return hasher.hexdigest()
