"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from scaler.trigger import known_keys

_VALUES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["0", "1", "-1", "2.5", "1e309", "nan", "inf", "true", "false", "15s", "1m", "0s", "500"]
    ),
    st.sampled_from(
        ["http://prometheus.test:9090", "reactive", "predictive", "replay", "prometheus", "a=b,c=d"]
    ),
)
_KEYS = st.one_of(
    st.sampled_from(known_keys()),
    st.sampled_from([k + "FromEnv" for k in known_keys()]),
    st.sampled_from(["scalerAddress", "enableTLS"]),
    st.text(min_size=1, max_size=12),
)


def metadata_maps() -> st.SearchStrategy[dict[str, str]]:
    """Trigger metadata maps, mostly plausible keys with wild values, sometimes valid."""
    valid_base = st.fixed_dictionaries(
        {
            "serverAddress": st.just("http://prometheus.test:9090"),
            "query": st.just("up"),
            "threshold": st.just("5"),
        }
    )
    noise = st.dictionaries(_KEYS, _VALUES, max_size=6)
    return st.one_of(noise, st.builds(lambda base, extra: {**base, **extra}, valid_base, noise))


_EDGE_NUMBERS = [
    "9.3e18",
    "-9.3e18",
    "9223372036854775807",
    "1e15",
    "1.0000001e15",
    "1e-320",
    "-0",
    "0x10",
    "1_000",
    "\u0661\u0662",
    " 5 ",
    "5\x00",
    "nan",
    "-inf",
]
_EDGE_DURATIONS = ["0.0000001ms", "1ms", "999ms", "1s", "1h", "1h1ms", "1000w", "1m1m", "1.5.5s", "ms", "5"]
_HOSTILE_VALUES = st.one_of(
    _VALUES,
    st.sampled_from(_EDGE_NUMBERS + _EDGE_DURATIONS),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.text(alphabet=st.sampled_from("\x00\t\r\n\x1b\u202e\ufeff,=\\\"'"), max_size=12),
    st.builds(
        lambda c, n: c * n, st.sampled_from(["5", "x", "\u00e9", "=,", "\x00"]), st.integers(0, 20_000)
    ),
)


def hostile_metadata_maps() -> st.SearchStrategy[dict[str, str]]:
    """Metadata a hostile tenant could send: huge, unicode, NUL, numeric and duration edges, on
    plausible keys and on a valid base."""
    keys = st.one_of(_KEYS, st.sampled_from(["unsafeSsl", "caCert", "prometheusUnsafeSsl"]))
    noise = st.dictionaries(keys, _HOSTILE_VALUES, max_size=8)
    base = {"serverAddress": "http://prometheus.test:9090", "query": "up", "threshold": "5"}
    return st.one_of(noise, st.builds(lambda extra: {**base, **extra}, noise))


_JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _envelope(result_type: str, result: object) -> bytes:
    import json

    return json.dumps({"status": "success", "data": {"resultType": result_type, "result": result}}).encode()


def prometheus_bodies() -> st.SearchStrategy[bytes]:
    """What a Prometheus (or anything at its address) could answer: raw bytes, any JSON, envelopes
    with wrong or right results, deep nesting."""
    import json

    return st.one_of(
        st.binary(max_size=200),
        _JSON.map(lambda value: json.dumps(value).encode()),
        st.builds(_envelope, st.sampled_from(["vector", "scalar", "matrix", "string", "x"]), _JSON),
        st.builds(
            lambda t, v: _envelope("vector", [{"metric": {}, "value": [t, v]}]),
            st.floats(allow_nan=False) | st.integers(),
            st.text(max_size=10) | st.sampled_from(["1", "NaN", "+Inf", "1e309"]),
        ),
        st.integers(1, 50_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 50_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    )


def series_with_gaps() -> st.SearchStrategy[list[float]]:
    """Sampled series of 1-200 values, a few of them NaN (steps with no sample)."""
    return st.lists(
        st.one_of(st.floats(0.0, 1e4), st.floats(0.0, 1e4), st.floats(0.0, 1e4), st.just(math.nan)),
        min_size=1,
        max_size=200,
    )
