"""Trigger metadata -> TriggerConfig, by table."""

from __future__ import annotations

import pytest

from scaler.errors import ConfigError
from scaler.trigger import TriggerConfig, parse_trigger

PROM = {"serverAddress": "http://prometheus.monitoring:9090", "query": "sum(vllm:num_requests_waiting)"}
AUTO = {
    "mode": "predictive",
    "leadTime": "auto",
    "replicasQuery": 'kube_deployment_status_replicas{deployment="vllm"}',
    "readyQuery": 'kube_deployment_status_replicas_ready{deployment="vllm"}',
}


def _parse(**meta: str) -> TriggerConfig:
    return parse_trigger({**PROM, "threshold": "8", **meta})


@pytest.mark.parametrize(
    ("meta", "field", "expected"),
    [
        pytest.param({}, "threshold", 8.0, id="threshold"),
        pytest.param({}, "activation_threshold", 0.0, id="activation-default-0"),
        pytest.param({"activationThreshold": "2.5"}, "activation_threshold", 2.5, id="activation"),
        pytest.param({}, "ignore_null_values", True, id="ignore-null-default-true"),
        pytest.param({"ignoreNullValues": "false"}, "ignore_null_values", False, id="ignore-null-false"),
        pytest.param({"ignoreNullValues": "FALSE"}, "ignore_null_values", False, id="bool-case-insensitive"),
        pytest.param({}, "timeout_s", 3.0, id="timeout-default"),
        pytest.param({"timeout": "1500"}, "timeout_s", 1.5, id="timeout-bare-ms"),
        pytest.param({"timeout": "2s"}, "timeout_s", 2.0, id="timeout-duration"),
        pytest.param({"step": "1m30s"}, "step_s", 90.0, id="step-go-duration"),
        pytest.param({}, "metric_name", "prescaler", id="metric-name-default"),
        pytest.param({"metricName": "vllm-waiting"}, "metric_name", "vllm-waiting", id="metric-name"),
        pytest.param(
            {"customHeaders": "X-Scope-OrgID=team-a,X-Env=prod"},
            "custom_headers",
            (("X-Scope-OrgID", "team-a"), ("X-Env", "prod")),
            id="custom-headers",
        ),
        pytest.param(
            {"queryParameters": "dedup=true"}, "query_parameters", (("dedup", "true"),), id="params"
        ),
        pytest.param(
            {"prometheusUnsafeSsl": "true"}, "prometheus_unsafe_ssl", True, id="prometheus-unsafe-ssl"
        ),
        pytest.param(
            {"unsafeSsl": "true"}, "prometheus_unsafe_ssl", False, id="kedas-unsafe-ssl-is-not-ours"
        ),
        pytest.param({"mode": "predictive"}, "mode", "predictive", id="predictive"),
        pytest.param({"mode": "shadow"}, "mode", "shadow", id="shadow"),
        pytest.param({}, "lead_time_s", 180.0, id="lead-time-default"),
        pytest.param({"leadTime": "10m"}, "lead_time_s", 600.0, id="lead-time"),
        pytest.param({}, "history_s", 7 * 86400.0, id="history-default"),
        pytest.param({"history": "14d"}, "history_s", 14 * 86400.0, id="history"),
        pytest.param({}, "quantile", 0.9, id="quantile-default"),
        pytest.param({}, "seasonality", ("daily", "weekly"), id="seasonality-default"),
        pytest.param(
            {"seasonality": "weekly,daily"}, "seasonality", ("daily", "weekly"), id="seasonality-order"
        ),
        pytest.param({"seasonality": "none"}, "seasonality", (), id="seasonality-none"),
        pytest.param({"signal": "gpu_sm"}, "signal", "gpu_sm", id="signal-gpu"),
        pytest.param(
            {"rateQuery": "sum(rate(vllm:request_success_total[1m]))", "serviceTime": "4s"},
            "service_time_s",
            4.0,
            id="little",
        ),
        pytest.param(
            {"mode": "predictive", "replicasQuery": 'kube_deployment_status_replicas{deployment="vllm"}'},
            "replicas_query",
            'kube_deployment_status_replicas{deployment="vllm"}',
            id="replicas-query",
        ),
        pytest.param({}, "lead_time_auto", False, id="lead-time-measured-only-when-asked"),
        pytest.param({**AUTO}, "lead_time_auto", True, id="lead-time-auto"),
        pytest.param({**AUTO}, "lead_time_s", 180.0, id="lead-time-auto-default-fallback"),
        pytest.param({**AUTO, "leadTimeFallback": "7m"}, "lead_time_s", 420.0, id="lead-time-fallback"),
        pytest.param({**AUTO, "leadTime": " auto "}, "lead_time_auto", True, id="lead-time-auto-spaces"),
        pytest.param({**AUTO}, "ready_query", AUTO["readyQuery"], id="ready-query"),
        pytest.param({}, "pipeline", "auto", id="pipeline-default-auto"),
        pytest.param({"mode": "predictive", "pipeline": "forecast"}, "pipeline", "forecast", id="pipeline"),
        pytest.param({}, "burst_reserve", False, id="burst-reserve-default-off"),
        pytest.param(
            {"mode": "predictive", "burstReserve": "true"}, "burst_reserve", True, id="burst-reserve"
        ),
        pytest.param({}, "slo_query", None, id="slo-query-default-none"),
        pytest.param(
            {"mode": "shadow", "sloQuery": "slo:violating", "errorBudget": "0.001"},
            "error_budget",
            0.001,
            id="error-budget",
        ),
        pytest.param({}, "tolerance", 0.1, id="tolerance-default"),
        pytest.param(
            {"mode": "shadow", "replicasQuery": "kube_deployment_status_replicas", "hpaTolerance": "0.05"},
            "tolerance",
            0.05,
            id="tolerance",
        ),
        pytest.param(
            {"scalerAddress": "prescaler:9090", "enableTLS": "true"}, "mode", "reactive", id="keda-keys"
        ),
        pytest.param(
            {"serverAddressFromEnv": "http://other:9090"},
            "server_address",
            "http://other:9090",
            id="from-env-alias",
        ),
    ],
)
def test_valid_metadata(meta: dict[str, str], field: str, expected: object) -> None:
    merged = {**PROM, "threshold": "8", **meta}
    if "serverAddressFromEnv" in meta:
        del merged["serverAddress"]
    assert getattr(parse_trigger(merged), field) == expected


def test_replay_source_needs_no_prometheus_keys() -> None:
    config = parse_trigger({"source": "replay", "trace": "x.csv", "threshold": "5", "replaySpeed": "60"})
    assert (config.source, config.trace, config.replay_speed) == ("replay", "x.csv", 60.0)


@pytest.mark.parametrize(
    ("meta", "fragments"),
    [
        pytest.param({"threshold": "0"}, ["`threshold`: `0`", "greater than 0"], id="threshold-zero"),
        pytest.param({"threshold": "abc"}, ["`threshold`: `abc`", "a number"], id="threshold-text"),
        pytest.param({"threshold": "inf"}, ["`threshold`: `inf`", "finite"], id="threshold-inf"),
        pytest.param({"activationThreshold": "-1"}, [], id="negative-activation-allowed"),
        pytest.param(
            {"ignoreNullValues": "maybe"}, ["`ignoreNullValues`: `maybe`", "true or false"], id="bool"
        ),
        pytest.param({"timeout": "soon"}, ["`timeout`: `soon`", "milliseconds"], id="timeout"),
        pytest.param(
            {"timeout": "20s"}, ["`timeout` (20s) must be shorter than `step` (15s)"], id="timeout-vs-step"
        ),
        pytest.param({"step": "0s"}, ["`step`: `0s`", "greater than zero"], id="step-zero"),
        pytest.param({"serverAddress": "prometheus:9090"}, ["`serverAddress`", "http://"], id="url-scheme"),
        pytest.param({"customHeaders": "novalue"}, ["`customHeaders`", "k1=v1"], id="pairs"),
        pytest.param(
            {"mode": "eager"}, ["`mode`: `eager`", "expected one of reactive, predictive, shadow"], id="mode"
        ),
        pytest.param({"quantile": "0.3"}, ["`quantile`: `0.3`", "[0.5, 1)"], id="quantile-low"),
        pytest.param({"quantile": "1"}, ["`quantile`: `1`"], id="quantile-one"),
        pytest.param(
            {"seasonality": "weekly"}, ["`seasonality`: `weekly`", "daily,weekly"], id="weekly-alone"
        ),
        pytest.param({"signal": "gpu"}, ["`signal`: `gpu`", "queue, gpu_sm"], id="signal"),
        pytest.param(
            {"serviceTime": "2s"}, ["`serviceTime` only applies with `rateQuery`"], id="service-time-alone"
        ),
        pytest.param(
            {"replicasQuery": "kube_deployment_status_replicas"},
            ["`replicasQuery` needs source `prometheus` and mode `predictive` or `shadow`"],
            id="replicas-query-reactive",
        ),
        pytest.param({"hpaTolerance": "1.5"}, ["`hpaTolerance`: `1.5`", "[0, 1)"], id="tolerance-range"),
        pytest.param(
            {"mode": "predictive", "hpaTolerance": "0.1"},
            ["`hpaTolerance` only applies with `replicasQuery`"],
            id="tolerance-alone",
        ),
        pytest.param(
            {"mode": "predictive", "leadTime": "2h"},
            ["`leadTime`: `2h` is not valid; expected a duration from 1ms to 1h"],
            id="lead-too-long",
        ),
        pytest.param(
            {"mode": "predictive", "leadTime": "2h"},
            ["`leadTime`: `2h` is not valid; expected a duration from 1ms to 1h, or `auto` to measure it"],
            id="lead-too-long-auto-named",
        ),
        pytest.param(
            {"leadTime": "automatic"},
            ["`leadTime`: `automatic` is not valid;", "or `auto` to measure it (with `readyQuery`)"],
            id="lead-auto-misspelt",
        ),
        pytest.param(
            {**AUTO, "readyQuery": ""},
            ["`readyQuery`: `` is not valid; expected a non-empty string"],
            id="ready-query-empty",
        ),
        pytest.param(
            {**AUTO, "readyQuery": "x" * 8193},
            ["`readyQuery`: the value is 8193 characters; at most 8192 are accepted"],
            id="ready-query-too-long",
        ),
        pytest.param(
            {**AUTO, "leadTimeFallback": "2h"},
            ["`leadTimeFallback`: `2h` is not valid; expected a duration from 1ms to 1h"],
            id="lead-fallback-too-long",
        ),
        pytest.param(
            {**AUTO, "leadTimeFallback": "auto"},
            ["`leadTimeFallback`: `auto` is not valid; expected a duration"],
            id="lead-fallback-not-auto",
        ),
        pytest.param(
            {"mode": "predictive", "leadTime": "auto", "replicasQuery": "kube_deployment_status_replicas"},
            [
                "`leadTime: auto` needs `readyQuery`, PromQL for the workload's ready replicas, e.g. "
                "`kube_deployment_status_replicas_ready`"
            ],
            id="lead-auto-needs-ready-query",
        ),
        pytest.param(
            {"mode": "predictive", "leadTime": "auto", "readyQuery": "kube_deployment_status_replicas_ready"},
            [
                "`leadTime: auto` needs `replicasQuery`, PromQL for the replicas asked for, e.g. "
                "`kube_deployment_status_replicas`: a start-up is timed from the replicas asked for rising"
            ],
            id="lead-auto-needs-replicas-query",
        ),
        pytest.param(
            {**AUTO, "mode": "reactive"},
            [
                "`replicasQuery` needs source `prometheus` and mode `predictive` or `shadow`; got source `prometheus`, mode `reactive`"
            ],
            id="lead-auto-reactive",
        ),
        pytest.param(
            {"mode": "predictive", "leadTime": "3m", "readyQuery": "kube_deployment_status_replicas_ready"},
            ["`readyQuery` only applies with `leadTime: auto`"],
            id="ready-query-alone",
        ),
        pytest.param(
            {"mode": "predictive", "leadTimeFallback": "3m"},
            ["`leadTimeFallback` only applies with `leadTime: auto`"],
            id="lead-fallback-alone",
        ),
        pytest.param(
            {"mode": "predictive", "refitInterval": "1d"},
            ["`refitInterval`: `1d` is not valid; expected a duration from 1m to 6h"],
            id="refit",
        ),
        pytest.param(
            {"mode": "predictive", "pipeline": "best"},
            ["`pipeline`: `best` is not valid; expected one of auto, forecast, no_forecast, reactive"],
            id="pipeline-unknown",
        ),
        pytest.param(
            {"mode": "predictive", "burstReserve": "sometimes"},
            ["`burstReserve`: `sometimes`", "true or false"],
            id="burst-reserve-not-a-bool",
        ),
        pytest.param(
            {"mode": "predictive", "pipeline": "no_forecast"},
            ["`pipeline: no_forecast` needs `rateQuery` (without it, it is `reactive`)"],
            id="pipeline-no-forecast-without-rate",
        ),
        pytest.param({"treshold": "5"}, ["unknown key `treshold`; did you mean `threshold`?"], id="typo"),
        pytest.param({"zzz": "5"}, ["unknown key `zzz`; known keys: threshold"], id="unknown-no-guess"),
        pytest.param({"Threshold": "5"}, ["did you mean `threshold`?"], id="wrong-case"),
        pytest.param({"source": "kafka"}, ["`source`: `kafka`", "prometheus, replay"], id="source"),
        pytest.param(
            {"queryFromEnv": "up"}, ["`query` and `queryFromEnv` both set"], id="both-env-and-plain"
        ),
    ],
)
def test_invalid_metadata_names_key_value_and_expectation(meta: dict[str, str], fragments: list[str]) -> None:
    merged = {**PROM, "threshold": "8", **meta}
    if not fragments:
        parse_trigger(merged)
        return
    with pytest.raises(ConfigError) as caught:
        parse_trigger(merged)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_every_bad_key_is_listed_in_one_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_trigger({"threshold": "x", "ignoreNullValues": "y", "step": "z", "bogus": "1"})
    problems = caught.value.problems
    assert len(problems) == 4
    assert {p.split(":")[0] for p in problems} >= {"`ignoreNullValues`", "`step`", "`threshold`"}
    assert any("unknown key `bogus`" in p for p in problems)


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        pytest.param({"threshold": "3"}, "`serverAddress` is required", id="prometheus-needs-address"),
        pytest.param({"threshold": "3", "source": "replay"}, "`trace` is required", id="replay-needs-trace"),
        pytest.param({}, "`threshold` is required", id="threshold-required"),
    ],
)
def test_required_keys(meta: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_trigger(meta)


def test_equal_metadata_gives_equal_config() -> None:
    assert _parse() == _parse()
    assert hash(_parse()) == hash(_parse())


def test_lead_time_auto_needing_both_queries_lists_both_in_one_error() -> None:
    with pytest.raises(ConfigError) as caught:
        _parse(mode="shadow", leadTime="auto")
    needs = [p for p in caught.value.problems if p.startswith("`leadTime: auto` needs")]
    assert [p.split("`")[3] for p in needs] == ["readyQuery", "replicasQuery"]


def test_a_numeric_lead_time_is_unchanged_by_auto() -> None:
    config = _parse(mode="predictive", leadTime="4m")
    assert (config.lead_time_s, config.lead_time_auto, config.ready_query) == (240.0, False, None)
    assert config != _parse(**AUTO, leadTimeFallback="4m")
