"""ScaledObject trigger metadata -> a frozen, typed TriggerConfig.

KEDA forwards the trigger's `metadata:` map as strings. `parse_trigger` turns it into a
`TriggerConfig` once per distinct map, and lists every problem in one ConfigError, each naming
the key, the value and what was expected. Each field declares its key, default and parser in its
`field(metadata=...)`, the way KEDA's typed config declares them in struct tags.

Names and semantics mirror KEDA's Prometheus scaler (serverAddress, query, threshold, ...), so
that moving a trigger from `type: prometheus` to `type: external` changes little.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scaler.errors import ConfigError
from scaler.units import format_duration, parse_bool, parse_duration_s, parse_float, parse_pairs

# Keys KEDA itself puts in (or users copy from KEDA's examples); accepted and not used here.
KEDA_KEYS = frozenset({"scalerAddress", "enableTLS"})
ENV_SUFFIX = "FromEnv"
MODES = ("reactive",)
FUTURE_MODES = ("predictive", "shadow")
SOURCES = ("prometheus", "replay")
_METRIC_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,126}[A-Za-z0-9])?$")


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if value not in options:
            raise ValueError("expected one of " + ", ".join(options))
        return value

    return parse


def _mode(text: str) -> str:
    value = text.strip()
    if value in FUTURE_MODES:
        raise ValueError(
            "expected `reactive`; `predictive` and `shadow` need the forecasting engine, "
            "which this version does not have yet"
        )
    return _choice(MODES)(value)


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("expected a non-empty string")
    return text.strip()


def _url(text: str) -> str:
    value = text.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL such as http://prometheus.monitoring:9090")
    return value


def _metric_name(text: str) -> str:
    value = text.strip()
    if not _METRIC_NAME.match(value):
        raise ValueError("expected 1-128 letters, digits, `_`, `.` or `-`, starting and ending alphanumeric")
    return value


def _positive(text: str) -> float:
    value = parse_float(text)
    if value <= 0:
        raise ValueError("expected a number greater than 0 (one replica's share of the load)")
    return value


def _non_negative(text: str) -> float:
    value = parse_float(text)
    if value < 0:
        raise ValueError("expected a number >= 0")
    return value


def _timeout_s(text: str) -> float:
    return parse_duration_s(text, bare_unit_s=0.001)


def _key(name: str, parse: Callable[[str], Any], *, required: bool = False) -> dict[str, Any]:
    return {"key": name, "parse": parse, "required": required}


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    """One trigger's settings, validated; equal metadata gives an equal (and equally hashed) config."""

    threshold: float = field(metadata=_key("threshold", _positive, required=True))
    """One replica's share of the load (the HPA AverageValue target). Required, > 0."""

    mode: str = field(default="reactive", metadata=_key("mode", _mode))
    """`reactive`: answer with the observed value, as KEDA's Prometheus scaler does."""

    source: str = field(default="prometheus", metadata=_key("source", _choice(SOURCES)))
    """Where the load signal comes from: a Prometheus query, or a replayed trace file."""

    metric_name: str = field(default="prescaler", metadata=_key("metricName", _metric_name))
    """Name returned by GetMetricSpec; KEDA shows it to the HPA as `s<index>-<name>`."""

    activation_threshold: float = field(default=0.0, metadata=_key("activationThreshold", parse_float))
    """IsActive is true when the value is strictly greater than this."""

    step_s: float = field(default=15.0, metadata=_key("step", parse_duration_s))
    """How often the signal is sampled in the background, and the history's resolution."""

    server_address: str | None = field(default=None, metadata=_key("serverAddress", _url))
    """Prometheus base URL (source=prometheus)."""

    query: str | None = field(default=None, metadata=_key("query", _text))
    """PromQL instant query; must return 0 or 1 series (source=prometheus)."""

    ignore_null_values: bool = field(default=True, metadata=_key("ignoreNullValues", parse_bool))
    """Empty/NaN results count as 0 when true (KEDA's default); are an error when false."""

    timeout_s: float = field(default=3.0, metadata=_key("timeout", _timeout_s))
    """Per-request timeout towards the source: milliseconds, or a duration such as `5s`."""

    custom_headers: tuple[tuple[str, str], ...] = field(
        default=(), metadata=_key("customHeaders", parse_pairs)
    )
    """Extra HTTP headers, `k1=v1,k2=v2`. Never put credentials here: see the scaler's settings."""

    query_parameters: tuple[tuple[str, str], ...] = field(
        default=(), metadata=_key("queryParameters", parse_pairs)
    )
    """Extra URL query parameters for the Prometheus API, `k1=v1,k2=v2`."""

    unsafe_ssl: bool = field(default=False, metadata=_key("unsafeSsl", parse_bool))
    """Skip verification of the Prometheus server's certificate."""

    trace: str | None = field(default=None, metadata=_key("trace", _text))
    """Trace file, relative to the scaler's replay directory (source=replay)."""

    replay_speed: float = field(default=1.0, metadata=_key("replaySpeed", _positive))
    """Trace seconds played per wall-clock second (source=replay)."""

    def validate(self) -> list[str]:
        """Rules that span several keys; returns the problems found."""
        problems = []
        if self.source == "prometheus":
            for key, value in (("serverAddress", self.server_address), ("query", self.query)):
                if value is None:
                    problems.append(f"`{key}` is required when source is `prometheus`")
        if self.source == "replay" and self.trace is None:
            problems.append("`trace` is required when source is `replay`")
        if self.source == "prometheus" and self.timeout_s >= self.step_s:
            problems.append(
                f"`timeout` ({format_duration(self.timeout_s)}) must be shorter than "
                f"`step` ({format_duration(self.step_s)})"
            )
        return problems


_FIELDS = {f.metadata["key"]: f for f in dataclasses.fields(TriggerConfig)}


def known_keys() -> list[str]:
    """Every metadata key prescaler reads, in declaration order."""
    return list(_FIELDS)


def parse_trigger(metadata: Mapping[str, str]) -> TriggerConfig:
    """Parse a trigger's metadata map; raise ConfigError listing every bad key."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for raw_key, raw_value in sorted(metadata.items()):
        if raw_key in KEDA_KEYS:
            continue
        key = raw_key.removesuffix(ENV_SUFFIX) if raw_key.endswith(ENV_SUFFIX) else raw_key
        spec = _FIELDS.get(key)
        if spec is None:
            problems.append(f"unknown key `{raw_key}`; known keys: {', '.join(known_keys())}")
            continue
        if key in seen:
            problems.append(f"`{seen[key]}` and `{raw_key}` both set `{key}`; give only one")
            continue
        seen[key] = raw_key
        try:
            values[spec.name] = spec.metadata["parse"](raw_value)
        except ValueError as exc:
            problems.append(f"`{raw_key}`: `{raw_value}` is not valid; {exc}")
    for key, spec in _FIELDS.items():
        if spec.metadata["required"] and key not in seen:
            problems.append(f"`{key}` is required")
    if problems:
        raise ConfigError(problems)
    config = TriggerConfig(**values)
    problems = config.validate()
    if problems:
        raise ConfigError(problems)
    return config
