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
MODES = ("reactive", "predictive", "shadow")
SOURCES = ("prometheus", "replay")
SIGNALS = ("queue", "gpu_sm")
SEASONS = ("daily", "weekly")
HPA_TOLERANCE = 0.1
"""The HPA's default tolerance (`--horizontal-pod-autoscaler-tolerance`)."""
MAX_LEAD_S = 3600.0
MAX_REFIT_S = 6 * 3600.0
_METRIC_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,126}[A-Za-z0-9])?$")


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if value not in options:
            raise ValueError("expected one of " + ", ".join(options))
        return value

    return parse


def _quantile(text: str) -> float:
    value = parse_float(text)
    if not 0.5 <= value < 1:
        raise ValueError("expected a quantile in [0.5, 1), e.g. 0.9")
    return value


def _seasonality(text: str) -> tuple[str, ...]:
    if text.strip() == "none":
        return ()
    names = {part.strip() for part in text.split(",") if part.strip()}
    if not names or not names <= set(SEASONS) or "daily" not in names:
        raise ValueError("expected `daily`, `daily,weekly` or `none`")
    return tuple(season for season in SEASONS if season in names)


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


def _tolerance(text: str) -> float:
    value = parse_float(text)
    if not 0 <= value < 1:
        raise ValueError("expected a share in [0, 1), e.g. 0.1 (the HPA's default)")
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

    mode: str = field(default="reactive", metadata=_key("mode", _choice(MODES)))
    """`reactive`: the observed value, as KEDA's Prometheus scaler. `predictive`: max(observed, the
    forecast's upper quantile over the lead time). `shadow`: answers reactively but computes, exports
    and scores the forecast, to judge it before trusting it."""

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

    signal: str = field(default="queue", metadata=_key("signal", _choice(SIGNALS)))
    """What `query` measures: `queue` (requests in flight or waiting) or `gpu_sm` (SM activity, GPUs)."""

    lead_time_s: float = field(default=180.0, metadata=_key("leadTime", parse_duration_s))
    """Pod start-up time to provision ahead of: the forecast is maximised over [now, now + leadTime]."""

    history_s: float = field(default=7 * 86400.0, metadata=_key("history", parse_duration_s))
    """Past loaded from the source at start and at each refit to fit the seasonal model."""

    quantile: float = field(default=0.9, metadata=_key("quantile", _quantile))
    """Upper quantile of the forecast to provision for; see the README on choosing it."""

    seasonality: tuple[str, ...] = field(default=SEASONS, metadata=_key("seasonality", _seasonality))
    """Seasons to model: `daily`, `daily,weekly` (weekly needs two weeks of history) or `none`."""

    refit_interval_s: float = field(default=3600.0, metadata=_key("refitInterval", parse_duration_s))
    """How often the seasonal model is refitted (in a worker process)."""

    rate_query: str | None = field(default=None, metadata=_key("rateQuery", _text))
    """Optional arrival-rate query (requests/s). When set, the forecast is of the rate, converted to
    `query` units by Little's law (in flight = rate x time in service), so it does not erode when
    early capacity drains the queue."""

    service_time_s: float | None = field(default=None, metadata=_key("serviceTime", parse_duration_s))
    """Seconds a request spends in service, for Little's law; measured from history when absent."""

    replicas_query: str | None = field(default=None, metadata=_key("replicasQuery", _text))
    """Optional query for the workload's current replicas as the HPA counts them (the scale's
    status, e.g. kube-state-metrics' `kube_deployment_status_replicas`). In predictive mode, a value
    whose ratio to those replicas falls within the HPA's tolerance, yet needs more of them, is raised
    just past the tolerance (see `scaler.policy.past_tolerance`), so `threshold` can be a replica's
    full capacity. Accepted, and not read, in shadow mode, so that switching modes is one key."""

    hpa_tolerance: float | None = field(default=None, metadata=_key("hpaTolerance", _tolerance))
    """The HPA's tolerance, with `replicasQuery` (None: HPA_TOLERANCE): the cluster's
    `--horizontal-pod-autoscaler-tolerance`, or the HPA's own scale-up tolerance."""

    trace: str | None = field(default=None, metadata=_key("trace", _text))
    """Trace file, relative to the scaler's replay directory (source=replay)."""

    replay_speed: float = field(default=1.0, metadata=_key("replaySpeed", _positive))
    """Trace seconds played per wall-clock second (source=replay)."""

    @property
    def tolerance(self) -> float:
        """The HPA's tolerance the value is raised past (`hpaTolerance`, or the HPA's default)."""
        return HPA_TOLERANCE if self.hpa_tolerance is None else self.hpa_tolerance

    def validate(self) -> list[str]:
        """Rules that span several keys; returns the problems found."""
        problems = []
        if self.source == "prometheus":
            for key, value in (("serverAddress", self.server_address), ("query", self.query)):
                if value is None:
                    problems.append(f"`{key}` is required when source is `prometheus`")
        if self.source == "replay" and self.trace is None:
            problems.append("`trace` is required when source is `replay`")
        if self.rate_query is not None and self.source != "prometheus":
            problems.append("`rateQuery` needs source `prometheus`")
        if self.replicas_query is not None and (self.source != "prometheus" or self.mode == "reactive"):
            problems.append(
                "`replicasQuery` needs source `prometheus` and mode `predictive` or `shadow`; "
                f"got source `{self.source}`, mode `{self.mode}`"
            )
        if self.hpa_tolerance is not None and self.replicas_query is None:
            problems.append("`hpaTolerance` only applies with `replicasQuery`")
        if self.service_time_s is not None and self.rate_query is None:
            problems.append("`serviceTime` only applies with `rateQuery`")
        if self.mode != "reactive" and self.lead_time_s > MAX_LEAD_S:
            problems.append(
                f"`leadTime` ({format_duration(self.lead_time_s)}) must be at most {format_duration(MAX_LEAD_S)}"
            )
        if self.mode != "reactive" and self.refit_interval_s > MAX_REFIT_S:
            problems.append(
                f"`refitInterval` ({format_duration(self.refit_interval_s)}) must be at most "
                f"{format_duration(MAX_REFIT_S)}"
            )
        if self.mode != "reactive" and self.history_s < 2 * self.step_s:
            problems.append(f"`history` ({format_duration(self.history_s)}) must cover at least two steps")
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
