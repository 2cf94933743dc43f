"""The limits on ScaledObject metadata, and the parsers of its value syntaxes (one per kind of value).

Every namespace that can create a ScaledObject can send its metadata, so every parser here is bounded:
lengths are checked before anything else, durations are parsed in linear time between a minimum and
a maximum, numbers stay within what KEDA's int64 fields and milli-quantities hold. Each parser raises
ValueError saying what was expected; `scaler.trigger` adds the key and quotes the value with `shown`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from scaler.units import format_duration, parse_duration_s, parse_float, parse_pairs

SEASONS = ("daily", "weekly")
MAX_LEAD_S = 3600.0
LEAD_AUTO = "auto"
"""`leadTime: auto`: measured from `replicasQuery` and `readyQuery` (`scaler.readiness`)."""
MAX_ERROR_BUDGET = 0.5
"""The largest `errorBudget`: a budget of most requests or minutes is not an SLO."""
MAX_REFIT_S = 6 * 3600.0
MIN_REFIT_S = 60.0
MIN_STEP_S = 1.0
MAX_STEP_S = 3600.0
MIN_TIMEOUT_S = 0.01
MAX_TIMEOUT_S = 60.0
MAX_SERVICE_TIME_S = 3600.0
MAX_HISTORY_POINTS = 250_000
"""`history` / `step` at most this: the bootstrap's memory and range queries are bounded by it."""
MAX_KEYS = 64
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 8192
"""Longest value of any key (a PromQL query); tighter limits apply per key."""
MAX_URL_CHARS = 2048
MAX_PAIRS = 32
MAX_PAIRS_CHARS = 4096
MAX_HEADER_VALUE_CHARS = 1024
MAX_TRACE_CHARS = 1024
MAX_NUMBER = 1e15
"""Largest |threshold| and |activationThreshold|: KEDA sends values as int64 thousandths."""
MAX_REPLAY_SPEED = 1e6
MAX_PROBLEMS = 20
"""Problems listed in one ConfigError; the rest are counted."""
SHOWN_CHARS = 64
"""Characters of a bad value quoted in a message."""
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "authorization",
        "proxy-authorization",
        "cookie",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers `customHeaders` may not set: routing, credentials (the scaler's settings hold those) and
hop-by-hop headers that would let a tenant reshape the request."""
RESERVED_PARAMETERS = frozenset({"query", "time", "start", "end", "step", "timeout"})
"""Query parameters the scaler sets itself; `queryParameters` may not override them."""
_METRIC_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,126}[A-Za-z0-9])?$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def shown(value: str) -> str:
    """A value as quoted in a message: at most SHOWN_CHARS characters, control characters escaped."""
    head = value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS]
    text = head.encode("unicode_escape").decode("ascii")
    return text if len(value) <= SHOWN_CHARS else f"{text}... ({len(value)} characters)"


def bounded(parse: Callable[[str], Any], limit: int) -> Callable[[str], Any]:
    def bounded(text: str) -> Any:
        if len(text) > limit:
            raise ValueError(f"is {len(text)} characters long; at most {limit} are accepted")
        return parse(text)

    return bounded


def duration(low_s: float, high_s: float, *, bare_unit_s: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        seconds = parse_duration_s(text, bare_unit_s=bare_unit_s)
        if not low_s <= seconds <= high_s:
            raise ValueError(
                f"expected a duration from {format_duration(low_s)} to {format_duration(high_s)}"
            )
        return seconds

    return parse


def lead_time(text: str) -> float | str:
    """A duration from 1ms to MAX_LEAD_S, or LEAD_AUTO."""
    if text.strip() == LEAD_AUTO:
        return LEAD_AUTO
    try:
        return duration(0.001, MAX_LEAD_S)(text)
    except ValueError as exc:
        raise ValueError(f"{exc}, or `{LEAD_AUTO}` to measure it (with `readyQuery`)") from None


def bounded_number(text: str) -> float:
    value = parse_float(text)
    if abs(value) > MAX_NUMBER:
        raise ValueError(f"expected a number between -{MAX_NUMBER:g} and {MAX_NUMBER:g}")
    return value


def choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if value not in options:
            raise ValueError("expected one of " + ", ".join(options))
        return value

    return parse


def quantile(text: str) -> float:
    value = parse_float(text)
    if not 0.5 <= value < 1:
        raise ValueError("expected a quantile in [0.5, 1), e.g. 0.9")
    return value


def error_budget(text: str) -> float:
    value = parse_float(text)
    if not 0 < value <= MAX_ERROR_BUDGET:
        raise ValueError(f"expected a share in (0, {MAX_ERROR_BUDGET:g}], e.g. 0.01 for 1 %")
    return value


def seasonality(text: str) -> tuple[str, ...]:
    if text.strip() == "none":
        return ()
    names = {part.strip() for part in text.split(",") if part.strip()}
    if not names or not names <= set(SEASONS) or "daily" not in names:
        raise ValueError("expected `daily`, `daily,weekly` or `none`")
    return tuple(season for season in SEASONS if season in names)


def non_empty_text(text: str) -> str:
    if not text.strip():
        raise ValueError("expected a non-empty string")
    if _CONTROL.search(text):
        raise ValueError("expected text without control characters (newlines and tabs are fine)")
    return text.strip()


def url(text: str) -> str:
    value = text.strip().rstrip("/")
    example = "http://prometheus.monitoring:9090"
    if _CONTROL.search(value) or any(c.isspace() for c in value):
        raise ValueError(f"expected a URL without spaces or control characters, such as {example}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL such as {example}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("expected a port number from 1 to 65535 after the host") from None
    if port == 0:
        raise ValueError("expected a port number from 1 to 65535 after the host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "expected no user or password in the URL; credentials belong in the scaler's "
            "--prometheus-credentials file"
        )
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError("expected no `?query` or `#fragment`; use `queryParameters` for parameters")
    if any(segment in (".", "..") for segment in parts.path.split("/")) or "%" in parts.path:
        raise ValueError("expected a plain path prefix without `.`, `..` or %-escapes")
    return value


def bounded_pairs(text: str) -> tuple[tuple[str, str], ...]:
    pairs = parse_pairs(text)
    if len(pairs) > MAX_PAIRS:
        raise ValueError(f"has {len(pairs)} pairs; at most {MAX_PAIRS} are accepted")
    return pairs


def headers(text: str) -> tuple[tuple[str, str], ...]:
    pairs = bounded_pairs(text)
    for name, value in pairs:
        if not _HEADER_NAME.match(name):
            raise ValueError(f"header name `{shown(name)}` is not an HTTP token of 1-64 characters")
        if name.lower() in FORBIDDEN_HEADERS:
            raise ValueError(
                f"header `{name}` cannot be set here (not allowed: {', '.join(sorted(FORBIDDEN_HEADERS))}); "
                "credentials belong in the scaler's --prometheus-credentials file"
            )
        if len(value) > MAX_HEADER_VALUE_CHARS or not _HEADER_VALUE.match(value):
            raise ValueError(
                f"header `{name}` has a value that is not printable ASCII of at most "
                f"{MAX_HEADER_VALUE_CHARS} characters"
            )
    return pairs


def parameters(text: str) -> tuple[tuple[str, str], ...]:
    pairs = bounded_pairs(text)
    for name, _ in pairs:
        if name in RESERVED_PARAMETERS:
            raise ValueError(
                f"parameter `{name}` is set by the scaler itself "
                f"(reserved: {', '.join(sorted(RESERVED_PARAMETERS))})"
            )
        if _CONTROL.search(name):
            raise ValueError(f"parameter name `{shown(name)}` has control characters")
    return pairs


def trace_path(text: str) -> str:
    value = non_empty_text(text)
    if "\x00" in value or any(len(part.encode()) > 255 for part in value.split("/")):
        raise ValueError("expected a relative file path without NUL and with names of at most 255 bytes")
    return value


def replay_speed(text: str) -> float:
    value = positive(text)
    if value > MAX_REPLAY_SPEED:
        raise ValueError(f"expected a speed of at most {MAX_REPLAY_SPEED:g}")
    return value


def metric_name(text: str) -> str:
    value = text.strip()
    if not _METRIC_NAME.match(value):
        raise ValueError("expected 1-128 letters, digits, `_`, `.` or `-`, starting and ending alphanumeric")
    return value


def positive(text: str) -> float:
    value = bounded_number(text)
    if value <= 0:
        raise ValueError("expected a number greater than 0 (one replica's share of the load)")
    return value


def tolerance(text: str) -> float:
    value = parse_float(text)
    if not 0 <= value < 1:
        raise ValueError("expected a share in [0, 1), e.g. 0.1 (the HPA's default)")
    return value
