"""Parsing of the value syntaxes users already know from KEDA and Prometheus.

Pure functions that raise ValueError with a message saying what was expected; callers add the key.
"""

from __future__ import annotations

import math
import re

_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
MAX_DURATION_CHARS = 64
"""Longest duration text accepted: `1w2d3h4m5s6ms` is 13; anything near this is not a duration."""
MAX_NUMBER_CHARS = 64
"""Longest number text accepted (a float's shortest repr is at most 24 characters)."""
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_duration_s(text: str, *, bare_unit_s: float | None = None) -> float:
    """Seconds in a Go/Prometheus duration such as `15s`, `1m30s`, `500ms`, `7d`.

    With `bare_unit_s`, a bare number is accepted and multiplied by it (KEDA's `timeout`
    takes bare milliseconds: bare_unit_s=0.001). Linear in the text's length, and the text is
    at most MAX_DURATION_CHARS long: the value comes from any tenant's ScaledObject.
    """
    raw = text.strip()
    hint = " or a number of milliseconds" if bare_unit_s == 0.001 else ""
    if len(raw) > MAX_DURATION_CHARS:
        raise ValueError(f"expected a duration of at most {MAX_DURATION_CHARS} characters{hint}")
    if bare_unit_s is not None:
        try:
            number = float(raw)
        except ValueError:
            pass
        else:
            return _positive_finite(number * bare_unit_s, text)
    pos = 0
    total = 0.0
    while pos < len(raw):
        digits = _NUMBER.match(raw, pos)
        if digits is None:
            break
        pos = digits.end()
        # `ms` before `m`: the longest unit that matches wins.
        unit = raw[pos : pos + 2] if raw[pos : pos + 2] == "ms" else raw[pos : pos + 1]
        if unit not in _UNIT_S:
            pos = -1
            break
        total += float(digits.group()) * _UNIT_S[unit]
        pos += len(unit)
    if pos != len(raw) or not raw:
        raise ValueError(f"expected a duration such as 15s, 1m30s, 500ms or 7d{hint}")
    return _positive_finite(total, text)


def _positive_finite(seconds: float, text: str) -> float:
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("expected a duration greater than zero")
    return seconds


def parse_float(text: str) -> float:
    """A finite float; rejects NaN and infinities, which no threshold can mean."""
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"expected a number of at most {MAX_NUMBER_CHARS} characters")
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_bool(text: str) -> bool:
    """`true`/`false` (and 1/0, yes/no, on/off), case-insensitive, as Go's strconv.ParseBool is lenient."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true or false")


_SHOWN_PAIR = 40
"""Characters of a malformed pair quoted in its error (the whole value is quoted by the caller)."""


def parse_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """KEDA's `k1=v1,k2=v2` syntax (customHeaders, queryParameters); order kept, empty string allowed."""
    if not text.strip():
        return ()
    pairs: list[tuple[str, str]] = []
    for number, item in enumerate(text.split(","), 1):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            shown = item if len(item) <= _SHOWN_PAIR else f"{item[:_SHOWN_PAIR]}... (pair {number})"
            raise ValueError(f"expected k1=v1,k2=v2 pairs; `{shown}` is not KEY=VALUE")
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def format_duration(seconds: float) -> str:
    """The shortest readable form of a duration (for messages): 90 -> `1m30s`."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    parts = []
    rest = seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            count = int(rest // size)
            parts.append(f"{count}{unit}")
            rest -= count * size
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)
