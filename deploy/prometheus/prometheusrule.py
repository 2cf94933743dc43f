"""Write the Prometheus Operator's PrometheusRule from prescaler-rules.yaml, so that both carry the same
alerts: `python deploy/prometheus/prometheusrule.py` (tests/test_deploy_rules.py checks it is current)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "prescaler-rules.yaml"
TARGET = HERE.parent / "kubernetes" / "components" / "prometheus-operator" / "prometheusrule.yaml"
HEADER = "# Written by deploy/prometheus/prometheusrule.py from deploy/prometheus/prescaler-rules.yaml: edit that.\n"


def prometheus_rule(rules: dict[str, Any]) -> dict[str, Any]:
    """The PrometheusRule object holding `rules`' groups."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "prescaler",
            "namespace": "keda",
            "labels": {"app.kubernetes.io/name": "prescaler"},
        },
        "spec": {"groups": rules["groups"]},
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the longer expressions) as literal blocks, as they are written by hand."""


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _string)


def render() -> str:
    """The text of the PrometheusRule manifest."""
    rules = yaml.safe_load(RULES.read_text())
    return HEADER + yaml.dump(prometheus_rule(rules), Dumper=_Dumper, sort_keys=False, width=120)


def main() -> int:
    TARGET.write_text(render())
    print(f"wrote {TARGET.relative_to(Path.cwd()) if TARGET.is_relative_to(Path.cwd()) else TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
