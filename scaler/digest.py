"""The identity of a trigger's metadata map: what tells two versions of one ScaledObject apart."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def metadata_digest(metadata: Mapping[str, str]) -> str:
    """A stable hash of a metadata map (order-independent), the same on every replica."""
    hasher = hashlib.sha256()
    for key, value in sorted(metadata.items()):
        hasher.update(key.encode() + b"\0" + value.encode() + b"\0")
    return hasher.hexdigest()
