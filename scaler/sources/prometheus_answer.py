"""Decoding a Prometheus HTTP API answer, within limits, without trusting it.

Any server a trigger names can answer anything, so the body is checked before it is parsed: its
nesting depth (a body of `[[[[...` is refused in linear time instead of recursing), then the JSON
envelope, the result's shape and its series count. Messages describe what was wrong and never quote
the body: an error reaches the ScaledObject's events, and must not leak a page of whatever the
address serves. Prometheus' own error text is kept (it is how a user learns of a PromQL typo), but
only from a well-formed error envelope, shortened and stripped of control characters.
"""

from __future__ import annotations

import json
import re
from typing import Literal, NamedTuple, NotRequired, TypedDict, cast

import numpy as np

MAX_DEPTH = 16
"""Deepest nesting accepted; a Prometheus answer nests 6 levels (envelope to a range's pair)."""
MAX_ERROR_CHARS = 160
"""Characters of Prometheus' own `error` text kept in a message."""
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


class VectorElement(TypedDict):
    """One series of an instant vector: its labels and its `[unix_s, "value"]` pair."""

    metric: dict[str, str]
    value: list[float | str]


class MatrixElement(TypedDict):
    """One series of a range vector: its labels and its `[unix_s, "value"]` pairs, oldest first."""

    metric: dict[str, str]
    values: list[list[float | str]]


class QueryData(TypedDict):
    """`data` of a successful query; a scalar or string result is a bare `[unix_s, "value"]` pair."""

    resultType: Literal["vector", "scalar", "matrix", "string"]
    result: list[VectorElement] | list[MatrixElement] | list[float | str]


class ApiResponse(TypedDict):
    """The envelope of every `/api/v1` answer, success or error."""

    status: Literal["success", "error"]
    data: NotRequired[QueryData]
    errorType: NotRequired[str]
    error: NotRequired[str]
    warnings: NotRequired[list[str]]


RESULT_TYPES = ("vector", "scalar", "matrix", "string")

Points = list[tuple[float, float]]


class Answer(NamedTuple):
    """A decoded answer: the result type, how many series it had, and the first series' points."""

    kind: str
    series_count: int
    points: Points


class AnswerError(ValueError):
    """The body is Prometheus' error envelope, or not of the shape its API documents."""


def sanitized(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text` as printable ASCII of at most `limit` characters, for a message."""
    clean = _UNPRINTABLE.sub("?", text)
    return clean if len(clean) <= limit else clean[:limit] + "..."


def nesting_depth(body: bytes) -> int:
    """The deepest nesting of `[`/`{` outside strings: linear, in numpy, whatever the body."""
    openers = body.count(b"[") + body.count(b"{")
    if openers <= MAX_DEPTH:
        return openers  # an upper bound, and the common case: an instant answer opens 6
    bare = _STRING.sub(b'""', body)
    codes = np.frombuffer(bare, dtype=np.uint8)
    steps = ((codes == ord("[")) | (codes == ord("{"))).astype(np.int32)
    steps -= ((codes == ord("]")) | (codes == ord("}"))).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def decode(body: bytes, *, max_depth: int = MAX_DEPTH) -> Answer:
    """The answer in `body`; raises AnswerError describing (never quoting) what is wrong."""
    depth = nesting_depth(body)
    if depth > max_depth:
        raise AnswerError(f"the JSON nests {depth} levels deep; at most {max_depth} are accepted")
    try:
        parsed: object = json.loads(body)
    except (ValueError, RecursionError):
        raise AnswerError(f"the body ({len(body)} bytes) is not JSON") from None
    data = _envelope(parsed)
    kind = data["resultType"]
    result = data["result"]
    if kind == "string":
        return Answer(kind, 0, [])
    if kind == "scalar":
        return Answer(kind, 1, [_pair(result)])
    series = _list(result, "`data.result`")
    if not series:
        return Answer(kind, 0, [])
    # Only the first series is converted: more than one is refused by the caller, whatever it holds.
    first = series[0]
    if kind == "vector":
        return Answer(kind, len(series), [_pair(_member(first, "value"))])
    return Answer(kind, len(series), [_pair(pair) for pair in _list(_member(first, "values"), "`values`")])


def _envelope(body: object) -> QueryData:
    if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
        raise AnswerError("expected the JSON envelope of Prometheus' HTTP API (`status`, `data`)")
    envelope = cast(ApiResponse, body)
    if envelope["status"] == "error":
        kind, text = envelope.get("errorType", "error"), envelope.get("error", "")
        kind = kind if isinstance(kind, str) else "error"
        text = text if isinstance(text, str) else ""
        raise AnswerError(f"{sanitized(kind, 32)}: {sanitized(text) or '(no error text)'}")
    data = envelope.get("data")
    if not isinstance(data, dict) or data.get("resultType") not in RESULT_TYPES or "result" not in data:
        raise AnswerError("`data` is not an object with a known `resultType` and a `result`")
    return data


def _list(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise AnswerError(f"expected {what} to be a list, got {type(value).__name__}")
    return value


def _member(item: object, key: str) -> object:
    if not isinstance(item, dict) or key not in item:
        raise AnswerError(f"expected a series object with `{key}`")
    return cast(object, item[key])


def _pair(raw: object) -> tuple[float, float]:
    """`[unix_s, "value"]`; Prometheus sends values as strings so that NaN and ±Inf survive JSON."""
    if isinstance(raw, list) and len(raw) == 2:
        at_s, value = raw
        if isinstance(at_s, int | float) and not isinstance(at_s, bool) and isinstance(value, str):
            try:
                if len(value) <= 64:
                    return float(at_s), float(value)
            except ValueError:
                pass
    raise AnswerError('expected a [unix_s, "value"] pair')
