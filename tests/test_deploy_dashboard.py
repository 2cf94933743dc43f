"""deploy/grafana/prescaler.json is what its generator writes, and every metric the dashboard and the
alert rules query is one a running prescaler exports: a real App with replay targets (reactive and
predictive) is called over gRPC and its /metrics scraped."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import ref, running_app
from tests.test_deploy_rules import RULES, load_module

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "prescaler.json"
METRIC = re.compile(r"\b(prescaler_[a-z_]+)\b")
SELECTOR = re.compile(r"\b(prescaler_[a-z_]+)\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_]+)\s*(?:=~|!~|!=|=)")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_expressions() -> Iterator[str]:
    board = dashboard()
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["query"]["query"]


def rule_expressions() -> Iterator[str]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["expr"]


def test_the_committed_dashboard_is_the_generators_output() -> None:
    generator = load_module(ROOT / "deploy" / "grafana" / "generate.py")
    assert DASHBOARD.read_text() == generator.render(), "run `python deploy/grafana/generate.py`"


def test_the_dashboard_is_laid_out_and_shows_what_the_issue_asks() -> None:
    board = dashboard()
    panels = board["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        assert panel["type"] == "row" or panel["targets"], panel["title"]
    expressions = "\n".join(dashboard_expressions())
    for wanted in (
        'kind="observed"',
        'kind="value"',
        'kind="forecast"',
        'kind="bound"',
        "prescaler_decisions_total",
        'score="coverage"',
        "prescaler_refits_total",
        'code="UNAVAILABLE"',
        "prescaler_rpc_duration_seconds_bucket",
        "prescaler_source_errors_total",
    ):
        assert wanted in expressions, wanted
    names = {variable["name"] for variable in board["templating"]["list"]}
    assert {"datasource", "namespace", "name"} <= names


async def scrape_running_prescaler() -> str:
    """/metrics of a real App after KEDA's three calls for a reactive and a predictive replay target."""
    from scaler._generated import externalscaler_pb2 as pb

    trace = {"source": "replay", "trace": "elb_request_count_8c0756.csv", "threshold": "50"}
    async with running_app(real_sources=True, forecast_workers=1) as running:
        for name, mode in (("reactive", "reactive"), ("predictive", "predictive")):
            scaled = ref({**trace, "mode": mode}, name=name)
            spec = await running.stub.GetMetricSpec(scaled, timeout=5.0)
            request = pb.GetMetricsRequest(scaledObjectRef=scaled, metricName=spec.metricSpecs[0].metricName)
            await running.stub.GetMetrics(request, timeout=5.0)
            await running.stub.IsActive(scaled, timeout=5.0)
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{running.ports.http}/metrics", timeout=5.0)
        answer.raise_for_status()
        return answer.text


async def test_every_metric_queried_is_exported_by_a_running_prescaler() -> None:
    text = await scrape_running_prescaler()
    exported: set[str] = set()
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        exported.add(family.name)
        if family.type == "counter":
            exported.add(family.name + "_total")
        if family.type == "histogram":
            exported.update(family.name + suffix for suffix in HISTOGRAM_SUFFIXES)
        for sample in family.samples:
            exported.add(sample.name)
            labels.setdefault(sample.name, set()).update(sample.labels)
    # Per-target series exist: the targets were answered.
    assert (
        "prescaler_target_value" in labels
        and {"namespace", "name", "metric", "kind"} <= labels["prescaler_target_value"]
    )
    expressions = [*dashboard_expressions(), *rule_expressions()]
    queried = {name for expr in expressions for name in METRIC.findall(expr)}
    assert len(queried) >= 12
    assert queried <= exported, f"not exported: {sorted(queried - exported)}"
    # Label names in selectors exist on the series, where the scrape has some.
    for expr in expressions:
        for name, matchers in SELECTOR.findall(expr):
            if name in labels:
                used = set(MATCHER.findall(matchers))
                assert used <= labels[name], f"{expr}: {sorted(used - labels[name])} not labels of {name}"
