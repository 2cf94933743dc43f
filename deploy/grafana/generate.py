"""Write prescaler.json, the Grafana dashboard, from the panel list below:
`python deploy/grafana/generate.py` (tests/test_deploy_dashboard.py checks the committed file is current,
and that every metric it queries is one prescaler exports).

Per target (`$namespace`, `$name`): the observed load, the value served to KEDA and the forecast band
(mean and upper-quantile bound over the lead time); the forecast's coverage and MASE. For the service:
decision reasons, refits and their duration, UNAVAILABLE answers (KEDA's fallback), RPC latency and
rates, source errors. Decision reasons and refits are counted per service, not per target (their
metrics carry no target labels).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TARGET = Path(__file__).resolve().parent / "prescaler.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PER_TARGET = 'namespace=~"$namespace", name=~"$name"'
RATE = "$__rate_interval"

Panel = dict[str, Any]


def query(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def timeseries(
    title: str,
    description: str,
    targets: list[tuple[str, str]],
    *,
    unit: str = "short",
    width: int = 12,
    overrides: list[dict[str, Any]] | None = None,
    max_value: float | None = None,
    **extra: Any,
) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": {"lineWidth": 1, "fillOpacity": 0, "spanNulls": False},
    }
    if max_value is not None:
        defaults["max"] = max_value
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [query(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "gridPos": {"w": width, "h": 8},
        **extra,
    }


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def by_name(name: str, **properties: Any) -> dict[str, Any]:
    return {
        "matcher": {"id": "byRegexp", "options": name},
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def panels() -> list[Panel]:
    value = f"prescaler_target_value{{{PER_TARGET}"
    quality = f"prescaler_forecast_quality{{{PER_TARGET}"
    return [
        row("Per target: $namespace/$name"),
        timeseries(
            "Load, served value and forecast band: $name",
            "observed: the signal read now. served: what GetMetrics answers (KEDA divides it by the "
            "threshold). forecast: the mean forecast at the lead time; bound: its upper quantile over "
            "[now, now + leadTime], the top of the band, with the burst reserve (predictive and "
            "shadow mode only). burst reserve: the part of the bound held after a burst when the "
            "target's bursts cluster (0 between them).",
            [
                (f'{value}, kind="observed"}}', "{{metric}} observed"),
                (f'{value}, kind="value"}}', "{{metric}} served"),
                (f'{value}, kind="forecast"}}', "{{metric}} forecast mean"),
                (f'{value}, kind="bound"}}', "{{metric}} bound"),
                (f"prescaler_burst_reserve{{{PER_TARGET}}}", "{{metric}} burst reserve"),
            ],
            width=24,
            repeat="name",
            repeatDirection="v",
            overrides=[
                by_name(
                    ".* bound$",
                    **{"custom.fillOpacity": 10, "custom.lineStyle": {"fill": "dash", "dash": [6, 4]}},
                ),
                by_name(".* served$", **{"custom.lineWidth": 2}),
            ],
        ),
        timeseries(
            "Active (IsActive)",
            "1 while IsActive answers true: what wakes a workload scaled to zero.",
            [(f"prescaler_target_active{{{PER_TARGET}}}", "{{namespace}}/{{name}} {{metric}}")],
            max_value=1,
        ),
        timeseries(
            "Bound coverage and MASE (last day)",
            "bound coverage: share of lead-time windows in which the observed signal stayed within the "
            "in-flight bound (the quantity predictive mode serves), in the trigger's units; compare "
            "with the trigger's quantile. forecast coverage: the same for the forecast of the demand "
            "series (the rate with rateQuery). mase: forecast error / persistence error at the lead "
            "time; below 1 the forecast beats reactive.",
            [
                (f"prescaler_bound_coverage{{{PER_TARGET}}}", "bound coverage {{name}} {{metric}}"),
                (f'{quality}, score="coverage"}}', "forecast coverage {{name}} {{metric}}"),
                (f'{quality}, score="mase"}}', "MASE {{name}} {{metric}}"),
            ],
        ),
        timeseries(
            "Served bound: pipeline and corrections",
            "pipeline: 1 for the bound served (forecast, no_forecast or reactive; pipeline: auto serves "
            "the cheapest on the target's own scored traffic at the coverage asked for). coverage scale: "
            "the factor on the margin that brings bound coverage to the quantile. slo factor and "
            "violating share, with sloQuery and errorBudget: the factor on the bound and the mean share "
            "read over the last day (compare with errorBudget).",
            [
                (f"prescaler_pipeline{{{PER_TARGET}}} == 1", "serving {{kind}} {{name}} {{metric}}"),
                (f"prescaler_margin_scale{{{PER_TARGET}}}", "{{kind}} scale {{name}} {{metric}}"),
                (f"prescaler_slo_violating_share{{{PER_TARGET}}}", "violating share {{name}} {{metric}}"),
            ],
        ),
        row("Decisions, fits and fallbacks (all targets)"),
        timeseries(
            "Decision reasons",
            "Which term won each decision, by mode: observed, forecast, and +tolerance when a value "
            "was raised past the HPA's tolerance (replicasQuery). Counted for all targets together.",
            [(f"sum by (mode, reason) (rate(prescaler_decisions_total[{RATE}]))", "{{mode}}: {{reason}}")],
            unit="ops",
            width=8,
        ),
        timeseries(
            "Refits",
            "Seasonal model refits by outcome; a failed one is retried after 5 minutes and the target "
            "keeps its last fit (or answers reactively before its first).",
            [(f"sum by (outcome) (increase(prescaler_refits_total[{RATE}]))", "{{outcome}}")],
            width=8,
        ),
        timeseries(
            "Refit duration and time to first forecast (p95)",
            "Worker time of one refit, and from a target's first RPC to its first forecast.",
            [
                (
                    f"histogram_quantile(0.95, sum by (le) (rate(prescaler_refit_duration_seconds_bucket[{RATE}])))",
                    "refit p95",
                ),
                (
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(prescaler_time_to_first_forecast_seconds_bucket[{RATE}])))",
                    "first forecast p95",
                ),
            ],
            unit="s",
            width=8,
        ),
        timeseries(
            "Answers UNAVAILABLE (KEDA's fallback)",
            "Calls answered UNAVAILABLE: prescaler could not vouch for a value. After "
            "fallback.failureThreshold of them in a row KEDA scales to fallback.replicas.",
            [
                (
                    f'sum by (method) (rate(prescaler_rpc_duration_seconds_count{{code="UNAVAILABLE"}}[{RATE}]))',
                    "{{method}}",
                )
            ],
            unit="ops",
        ),
        timeseries(
            "Predictive answers from the observed value",
            "Share of predictive-mode decisions won by the observed value: the load is above the bound, "
            "or there is no forecast yet (first fit running, or the fallback to reactive).",
            [
                (
                    f'sum(rate(prescaler_decisions_total{{mode="predictive", reason=~"observed.*"}}[{RATE}])) '
                    f'/ sum(rate(prescaler_decisions_total{{mode="predictive"}}[{RATE}]))',
                    "observed share",
                )
            ],
            unit="percentunit",
        ),
        row("Service"),
        timeseries(
            "RPC latency",
            "Server-side latency of the unary ExternalScaler calls; answers come from a cache.",
            [
                (
                    f"histogram_quantile(0.99, sum by (le, method) (rate(prescaler_rpc_duration_seconds_bucket[{RATE}])))",
                    "p99 {{method}}",
                ),
                (
                    f"histogram_quantile(0.5, sum by (le, method) (rate(prescaler_rpc_duration_seconds_bucket[{RATE}])))",
                    "p50 {{method}}",
                ),
            ],
            unit="s",
            width=8,
        ),
        timeseries(
            "RPC rate by status",
            "Calls per second by method and status code.",
            [
                (
                    f"sum by (method, code) (rate(prescaler_rpc_duration_seconds_count[{RATE}]))",
                    "{{method}} {{code}}",
                )
            ],
            unit="ops",
            width=8,
        ),
        timeseries(
            "Source reads and errors",
            "Successful reads by source, failed reads by source and error class, and failed "
            "replicasQuery reads.",
            [
                (f"sum by (source) (rate(prescaler_samples_total[{RATE}]))", "reads {{source}}"),
                (
                    f"sum by (source, error) (rate(prescaler_source_errors_total[{RATE}]))",
                    "errors {{source}} {{error}}",
                ),
                (
                    f"sum by (error) (rate(prescaler_replicas_errors_total[{RATE}]))",
                    "replicasQuery errors {{error}}",
                ),
            ],
            unit="ops",
            width=8,
        ),
        timeseries(
            "Targets and streams",
            "Tracked targets per replica, open streams (StreamIsActive, StreamMetricSpec), and targets "
            "evicted after --idle-evict without an RPC.",
            [
                ("prescaler_tracked_targets", "tracked {{instance}}"),
                ("sum by (method) (prescaler_streams_open)", "streams {{method}}"),
                (f"sum(increase(prescaler_target_evictions_total[{RATE}]))", "evicted"),
            ],
            width=24,
        ),
    ]


def layout(items: list[Panel]) -> list[Panel]:
    """Place panels left to right, wrapping at Grafana's 24 columns; ids in order."""
    x = y = row_height = 0
    placed = []
    for number, panel in enumerate(items, start=1):
        grid = dict(panel["gridPos"])
        if x + grid["w"] > 24 or panel["type"] == "row":
            x, y = 0, y + row_height
            row_height = 0
        grid.update(x=x, y=y)
        x += grid["w"]
        row_height = max(row_height, grid["h"])
        if panel["type"] == "row":
            x, y, row_height = 0, y + grid["h"], 0
        placed.append({**panel, "id": number, "gridPos": grid})
    return placed


def variable(name: str, label: str, query_text: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query_text, "refId": name},
        "definition": query_text,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def dashboard() -> dict[str, Any]:
    return {
        "uid": "prescaler",
        "title": "prescaler",
        "description": "prescaler, the KEDA external scaler: per-target load, answers and forecasts; "
        "decisions, fits, fallbacks, RPCs and sources. Generated by deploy/grafana/generate.py.",
        "tags": ["prescaler", "keda", "autoscaling"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                },
                variable("namespace", "Namespace", "label_values(prescaler_target_value, namespace)"),
                variable(
                    "name",
                    "ScaledObject",
                    'label_values(prescaler_target_value{namespace=~"$namespace"}, name)',
                ),
            ]
        },
        "annotations": {"list": []},
        "panels": layout(panels()),
    }


def render() -> str:
    """The dashboard's JSON text, as committed."""
    return json.dumps(dashboard(), indent=2, sort_keys=False) + "\n"


def main() -> int:
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
