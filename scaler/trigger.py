"""ScaledObject trigger metadata -> a frozen, typed TriggerConfig.

KEDA forwards the trigger's `metadata:` map as strings. `parse_trigger` turns it into a
`TriggerConfig` once per distinct map, and lists every problem in one ConfigError, each naming
the key, the value and what was expected. Each field declares its key, default and parser in its
`field(metadata=...)`, the way KEDA's typed config declares them in struct tags.

Names and semantics mirror KEDA's Prometheus scaler (serverAddress, query, threshold, ...), so
that moving a trigger from `type: prometheus` to `type: external` changes little.

Every namespace that can create a ScaledObject can send this metadata, so everything is bounded
before it is parsed: the number of keys, each key's and value's length (MAX_KEYS, MAX_KEY_CHARS,
MAX_VALUE_CHARS and tighter limits per key, all in `scaler.trigger_values`), every duration between a
minimum and a maximum, every number within what KEDA's int64 fields and milli-quantities hold. Messages show
values truncated (`shown`), so that a cached error holds bounded text.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scaler import trigger_values as values
from scaler.choice import PIPELINES
from scaler.errors import ConfigError
from scaler.trigger_values import (
    LEAD_AUTO,
    MAX_HISTORY_POINTS,
    MAX_KEY_CHARS,
    MAX_KEYS,
    MAX_LEAD_S,
    MAX_PAIRS_CHARS,
    MAX_PROBLEMS,
    MAX_REFIT_S,
    MAX_SERVICE_TIME_S,
    MAX_STEP_S,
    MAX_TIMEOUT_S,
    MAX_TRACE_CHARS,
    MAX_URL_CHARS,
    MAX_VALUE_CHARS,
    MIN_REFIT_S,
    MIN_STEP_S,
    MIN_TIMEOUT_S,
    SEASONS,
    SHOWN_CHARS,
    shown,
)
from scaler.units import format_duration, parse_bool

# Keys KEDA itself puts in (or users copy from KEDA's examples); accepted and not used here.
# `unsafeSsl` is KEDA's: it skips verifying *this scaler's* gRPC certificate and says nothing about
# Prometheus' (that is `prometheusUnsafeSsl`). `caCert`, `tlsClientCert`, `tlsClientKey` are KEDA's
# TriggerAuthentication parameters; KEDA forwards them when someone writes them into metadata.
KEDA_KEYS = frozenset({"scalerAddress", "enableTLS", "unsafeSsl", "caCert", "tlsClientCert", "tlsClientKey"})
ENV_SUFFIX = "FromEnv"
MODES = ("reactive", "predictive", "shadow")
SOURCES = ("prometheus", "replay")
SIGNALS = ("queue", "gpu_sm")
HPA_TOLERANCE = 0.1
"""The HPA's default tolerance (`--horizontal-pod-autoscaler-tolerance`)."""
DEFAULT_LEAD_S = 180.0
"""`leadTime` when absent, and `leadTimeFallback` when that is."""
_AUTO_NEEDS = (
    (
        "readyQuery",
        "ready_query",
        "the workload's ready replicas, e.g. `kube_deployment_status_replicas_ready`",
    ),
    ("replicasQuery", "replicas_query", "the replicas asked for, e.g. `kube_deployment_status_replicas`"),
)
"""The queries `leadTime: auto` reads: key, field, what it is (kube-state-metrics' names)."""
MAX_HISTORY_S = 35 * 86400.0
"""Default of the scaler's `--max-history`: five weeks, enough for a weekly season."""


def _key(
    name: str, parse: Callable[[str], Any], *, required: bool = False, max_chars: int = SHOWN_CHARS
) -> dict[str, Any]:
    return {
        "key": name,
        "parse": values.bounded(parse, max_chars),
        "required": required,
        "max_chars": max_chars,
    }


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    """One trigger's settings, validated; equal metadata gives an equal (and equally hashed) config."""

    threshold: float = field(metadata=_key("threshold", values.positive, required=True))
    """One replica's share of the load (the HPA AverageValue target). Required, > 0."""

    mode: str = field(default="reactive", metadata=_key("mode", values.choice(MODES)))
    """`reactive`: the observed value, as KEDA's Prometheus scaler. `predictive`: max(observed, the
    forecast's upper quantile over the lead time). `shadow`: answers reactively but computes, exports
    and scores the forecast, to judge it before trusting it."""

    source: str = field(default="prometheus", metadata=_key("source", values.choice(SOURCES)))
    """Where the load signal comes from: a Prometheus query, or a replayed trace file."""

    metric_name: str = field(
        default="prescaler", metadata=_key("metricName", values.metric_name, max_chars=128)
    )
    """Name returned by GetMetricSpec; KEDA shows it to the HPA as `s<index>-<name>`."""

    activation_threshold: float = field(
        default=0.0, metadata=_key("activationThreshold", values.bounded_number)
    )
    """IsActive is true when the value is strictly greater than this."""

    step_s: float = field(default=15.0, metadata=_key("step", values.duration(MIN_STEP_S, MAX_STEP_S)))
    """How often the signal is sampled in the background, and the history's resolution (1s to 1h)."""

    server_address: str | None = field(
        default=None, metadata=_key("serverAddress", values.url, max_chars=MAX_URL_CHARS)
    )
    """Prometheus base URL (source=prometheus)."""

    query: str | None = field(
        default=None, metadata=_key("query", values.non_empty_text, max_chars=MAX_VALUE_CHARS)
    )
    """PromQL instant query; must return 0 or 1 series (source=prometheus)."""

    ignore_null_values: bool = field(default=True, metadata=_key("ignoreNullValues", parse_bool))
    """Empty/NaN results count as 0 when true (KEDA's default); are an error when false."""

    timeout_s: float = field(
        default=3.0,
        metadata=_key("timeout", values.duration(MIN_TIMEOUT_S, MAX_TIMEOUT_S, bare_unit_s=0.001)),
    )
    """Deadline of each request to the source, from sending it to the end of the body:
    milliseconds, or a duration such as `5s` (10ms to 60s, shorter than `step`)."""

    custom_headers: tuple[tuple[str, str], ...] = field(
        default=(), metadata=_key("customHeaders", values.headers, max_chars=MAX_PAIRS_CHARS)
    )
    """Extra HTTP headers, `k1=v1,k2=v2` (at most 32; not Host, Authorization, Cookie, Content-Length
    or hop-by-hop headers). Credentials belong in the scaler's settings, never here."""

    query_parameters: tuple[tuple[str, str], ...] = field(
        default=(), metadata=_key("queryParameters", values.parameters, max_chars=MAX_PAIRS_CHARS)
    )
    """Extra URL query parameters for the Prometheus API, `k1=v1,k2=v2`."""

    prometheus_unsafe_ssl: bool = field(default=False, metadata=_key("prometheusUnsafeSsl", parse_bool))
    """Skip verification of the Prometheus server's TLS certificate (off by default). Not KEDA's
    `unsafeSsl`, which is about the scaler's own gRPC certificate and is ignored here."""

    signal: str = field(default="queue", metadata=_key("signal", values.choice(SIGNALS)))
    """What `query` measures: `queue` (requests in flight or waiting) or `gpu_sm` (SM activity, GPUs)."""

    lead_time_s: float = field(default=DEFAULT_LEAD_S, metadata=_key("leadTime", values.lead_time))
    """Pod start-up time to provision ahead of: the forecast is maximised over [now, now + leadTime].
    With `leadTime: auto` this holds `leadTimeFallback`, the value to use until start-ups are measured."""

    lead_time_auto: bool = field(default=False, metadata={"derived": True})
    """`leadTime: auto`: the lead time is a high percentile of the start-ups measured from
    `replicasQuery` rising to `readyQuery` rising (`scaler.readiness`). Set from `leadTime`; no key."""

    lead_time_fallback_s: float | None = field(
        default=None, metadata=_key("leadTimeFallback", values.duration(0.001, MAX_LEAD_S))
    )
    """With `leadTime: auto`, the lead time used until enough start-ups are measured and while they
    cannot be (None: DEFAULT_LEAD_S). Named after KEDA's `fallback`, the answer when a measurement is
    missing."""

    ready_query: str | None = field(
        default=None, metadata=_key("readyQuery", values.non_empty_text, max_chars=MAX_VALUE_CHARS)
    )
    """With `leadTime: auto`: the workload's ready replicas, e.g. kube-state-metrics'
    `kube_deployment_status_replicas_ready` (with `replicasQuery`
    `kube_deployment_status_replicas` of the same workload)."""

    history_s: float = field(
        default=7 * 86400.0, metadata=_key("history", values.duration(1.0, 1000 * 86400.0))
    )
    """Past loaded from the source at start and at each refit to fit the seasonal model; at most the
    scaler's `--max-history` and MAX_HISTORY_POINTS steps."""

    quantile: float = field(default=0.9, metadata=_key("quantile", values.quantile))
    """Upper quantile of the forecast to provision for; see the README on choosing it."""

    pipeline: str = field(default="auto", metadata=_key("pipeline", values.choice(PIPELINES)))
    """Which bound predictive mode serves (`scaler.choice`): `auto` (the default) the cheapest, on the
    target's own recent traffic, of `forecast`, `no_forecast` (the rate observed now through the same
    pipeline; with `rateQuery`) and `reactive`, at the coverage asked for; or the one named."""

    burst_reserve: bool = field(default=False, metadata=_key("burstReserve", parse_bool))
    """`true`: hold a reserve above the forecast and no_forecast bounds after a burst, when the
    target's bursts cluster (`scaler.bursts`); zero on traffic without bursts. Off by default: on the
    development windows it cost GPU-hours at equal SLO (benchmarks/README.md)."""

    slo_query: str | None = field(
        default=None, metadata=_key("sloQuery", values.non_empty_text, max_chars=MAX_VALUE_CHARS)
    )
    """Optional PromQL for the share (0 to 1) of requests, or of minutes, violating the latency SLO,
    e.g. `histogram_quantile(0.99, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket[1m])))
    > bool 2` (1 in a minute whose p99 exceeds 2 s). With `errorBudget`, the served bound is scaled
    online so that the share's average follows the budget (`scaler.calibration.SloControl`), in place
    of the coverage correction; `quantile` then only shapes the band. Read every step."""

    error_budget: float | None = field(default=None, metadata=_key("errorBudget", values.error_budget))
    """With `sloQuery`: the share it should average, e.g. `0.01` (1 % of minutes or requests)."""

    seasonality: tuple[str, ...] = field(default=SEASONS, metadata=_key("seasonality", values.seasonality))
    """Seasons to model: `daily`, `daily,weekly` (weekly needs two weeks of history) or `none`."""

    refit_interval_s: float = field(
        default=3600.0, metadata=_key("refitInterval", values.duration(MIN_REFIT_S, MAX_REFIT_S))
    )
    """How often the seasonal model is refitted (in a worker process)."""

    rate_query: str | None = field(
        default=None, metadata=_key("rateQuery", values.non_empty_text, max_chars=MAX_VALUE_CHARS)
    )
    """Optional arrival-rate query (requests/s). When set, the forecast is of the rate, converted to
    `query` units by Little's law (in flight = rate x time in service), so it does not erode when
    early capacity drains the queue."""

    service_time_s: float | None = field(
        default=None, metadata=_key("serviceTime", values.duration(0.001, MAX_SERVICE_TIME_S))
    )
    """Seconds a request spends in service, for Little's law; measured from history when absent."""

    replicas_query: str | None = field(
        default=None, metadata=_key("replicasQuery", values.non_empty_text, max_chars=MAX_VALUE_CHARS)
    )
    """Optional query for the workload's current replicas as the HPA counts them (the scale's
    status, e.g. kube-state-metrics' `kube_deployment_status_replicas`). In predictive mode, a value
    whose ratio to those replicas falls within the HPA's tolerance, yet needs more of them, is raised
    just past the tolerance (see `scaler.policy.past_tolerance`), so `threshold` can be a replica's
    full capacity. Accepted, and not read, in shadow mode, so that switching modes is one key."""

    hpa_tolerance: float | None = field(default=None, metadata=_key("hpaTolerance", values.tolerance))
    """The HPA's tolerance, with `replicasQuery` (None: HPA_TOLERANCE): the cluster's
    `--horizontal-pod-autoscaler-tolerance`, or the HPA's own scale-up tolerance."""

    trace: str | None = field(
        default=None, metadata=_key("trace", values.trace_path, max_chars=MAX_TRACE_CHARS)
    )
    """Trace file, relative to the scaler's replay directory (source=replay)."""

    replay_speed: float = field(default=1.0, metadata=_key("replaySpeed", values.replay_speed))
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
        problems.extend(self._lead_time_problems())
        problems.extend(self._slo_problems())
        if self.pipeline == "no_forecast" and self.rate_query is None:
            problems.append("`pipeline: no_forecast` needs `rateQuery` (without it, it is `reactive`)")
        if self.service_time_s is not None and self.rate_query is None:
            problems.append("`serviceTime` only applies with `rateQuery`")
        if self.mode != "reactive" and self.history_s < 2 * self.step_s:
            problems.append(f"`history` ({format_duration(self.history_s)}) must cover at least two steps")
        if self.mode != "reactive" and self.history_s / self.step_s > MAX_HISTORY_POINTS:
            problems.append(
                f"`history` ({format_duration(self.history_s)}) at `step` ({format_duration(self.step_s)}) "
                f"is {self.history_s / self.step_s:,.0f} points; at most {MAX_HISTORY_POINTS:,}: "
                "raise `step` or shorten `history`"
            )
        if self.source == "prometheus" and self.timeout_s >= self.step_s:
            problems.append(
                f"`timeout` ({format_duration(self.timeout_s)}) must be shorter than "
                f"`step` ({format_duration(self.step_s)})"
            )
        return problems

    def _slo_problems(self) -> list[str]:
        if (self.slo_query is None) != (self.error_budget is None):
            given, missing = (
                ("sloQuery", "errorBudget") if self.error_budget is None else ("errorBudget", "sloQuery")
            )
            return [
                f"`{given}` needs `{missing}`: the SLO's violating share is controlled to the error budget"
            ]
        if self.slo_query is not None and (self.source != "prometheus" or self.mode == "reactive"):
            return [
                "`sloQuery` needs source `prometheus` and mode `predictive` or `shadow`; "
                f"got source `{self.source}`, mode `{self.mode}`"
            ]
        return []

    def _lead_time_problems(self) -> list[str]:
        if not self.lead_time_auto:
            return [
                f"`{key}` only applies with `leadTime: {LEAD_AUTO}`"
                for key, value in (
                    ("readyQuery", self.ready_query),
                    ("leadTimeFallback", self.lead_time_fallback_s),
                )
                if value is not None
            ]
        return [
            f"`leadTime: {LEAD_AUTO}` needs `{key}`, PromQL for {what}: a start-up is timed from the "
            "replicas asked for rising to the ready ones rising"
            for key, name, what in _AUTO_NEEDS
            if getattr(self, name) is None
        ]


_FIELDS = {f.metadata["key"]: f for f in dataclasses.fields(TriggerConfig) if "key" in f.metadata}


def known_keys() -> list[str]:
    """Every metadata key prescaler reads, in declaration order."""
    return list(_FIELDS)


def _unknown(raw_key: str) -> str:
    known = known_keys()
    by_lower = {key.lower(): key for key in known}
    guess = by_lower.get(raw_key.lower()) or next(iter(difflib.get_close_matches(raw_key, known, n=1)), None)
    hint = f"; did you mean `{guess}`?" if guess else f"; known keys: {', '.join(known)}"
    return f"unknown key `{shown(raw_key)}`{hint}"


def parse_trigger(metadata: Mapping[str, str], *, max_history_s: float = MAX_HISTORY_S) -> TriggerConfig:
    """Parse a trigger's metadata map; raise ConfigError listing every bad key (MAX_PROBLEMS at most).

    `max_history_s` is the scaler's `--max-history`: the longest `history` a trigger may ask for.
    """
    if len(metadata) > MAX_KEYS:
        raise ConfigError([f"the trigger has {len(metadata)} metadata keys; at most {MAX_KEYS} are accepted"])
    problems: list[str] = []
    values: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for raw_key, raw_value in sorted(metadata.items()):
        if len(raw_key) > MAX_KEY_CHARS:
            problems.append(f"key `{shown(raw_key)}` is longer than {MAX_KEY_CHARS} characters")
            continue
        if len(raw_value) > MAX_VALUE_CHARS and raw_key not in KEDA_KEYS:
            problems.append(
                f"`{raw_key}`: the value is {len(raw_value)} characters; at most {MAX_VALUE_CHARS} are accepted"
            )
            continue
        if raw_key in KEDA_KEYS:
            continue
        key = raw_key.removesuffix(ENV_SUFFIX) if raw_key.endswith(ENV_SUFFIX) else raw_key
        spec = _FIELDS.get(key)
        if spec is None:
            problems.append(_unknown(raw_key))
            continue
        if key in seen:
            problems.append(f"`{seen[key]}` and `{raw_key}` both set `{key}`; give only one")
            continue
        seen[key] = raw_key
        try:
            values[spec.name] = spec.metadata["parse"](raw_value)
        except ValueError as exc:
            problems.append(f"`{raw_key}`: `{shown(raw_value)}` is not valid; {exc}")
    for key, spec in _FIELDS.items():
        if spec.metadata["required"] and key not in seen:
            problems.append(f"`{key}` is required")
    if problems:
        raise ConfigError(_capped(problems))
    if values.get("lead_time_s") == LEAD_AUTO:
        values["lead_time_s"] = values.get("lead_time_fallback_s") or DEFAULT_LEAD_S
        values["lead_time_auto"] = True
    config = TriggerConfig(**values)
    problems = config.validate()
    if config.mode != "reactive" and config.history_s > max_history_s:
        problems.append(
            f"`history` ({format_duration(config.history_s)}) is longer than this scaler's --max-history "
            f"({format_duration(max_history_s)})"
        )
    if problems:
        raise ConfigError(problems)
    return config


def _capped(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    return [*problems[:MAX_PROBLEMS], f"and {len(problems) - MAX_PROBLEMS} more problems"]
