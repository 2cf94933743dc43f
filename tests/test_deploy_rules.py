"""deploy/prometheus: the alert rules pass `promtool check rules` and their unit tests (each alert fires
on a series that should fire it and not on one that should not), and the Prometheus Operator's
PrometheusRule carries the same groups."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.prometheus_server import binaries

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "prescaler-rules.yaml"
RULE_TESTS = RULES_DIR / "prescaler-rules.test.yaml"


def load_module(path: Path) -> ModuleType:
    """A generator script under deploy/ (not a package), imported by path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    _, tool = binaries()
    return subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=60, cwd=RULES_DIR)


@pytest.mark.prometheus
def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = [
        rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]
    assert f"SUCCESS: {len(alerts)} rules found" in result.stdout


@pytest.mark.prometheus
def test_rules_pass_their_promtool_unit_tests() -> None:
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = {
        rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    }
    assert {
        "PrescalerAnsweringUnavailable",
        "PrescalerSourceErrors",
        "PrescalerSourcesStale",
        "PrescalerRefitsFailing",
        "PrescalerForecastWorseThanReactive",
        "PrescalerForecastBandTooNarrow",
    } <= alerts
    fired: dict[str, int] = {}
    quiet: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            if check["exp_alerts"]:
                fired[check["alertname"]] = fired.get(check["alertname"], 0) + 1
                # The case's input has more series than alerts expected: one stays quiet.
                assert len(case["input_series"]) > len(check["exp_alerts"])
            else:
                quiet.add(check["alertname"])
    assert set(fired) == alerts
    assert quiet >= alerts, "each alert is also checked before its `for:` has passed"


def test_the_prometheusrule_is_the_rules_file() -> None:
    generator = load_module(RULES_DIR / "prometheusrule.py")
    assert generator.TARGET.read_text() == generator.render(), (
        "run `python deploy/prometheus/prometheusrule.py`"
    )
    rule = yaml.safe_load(generator.TARGET.read_text())
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
