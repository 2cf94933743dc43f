"""The per-target families' pre-rendered text says what the registry says, parses as Prometheus
text, and forgets an evicted target."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scaler.target_series import TargetFamily, TargetSeries

ODD = ("ns", 'so "quoted" \\ back\nslash', "m")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def setup() -> tuple[CollectorRegistry, TargetSeries, TargetFamily, TargetFamily]:
    registry = CollectorRegistry()
    Gauge("prescaler_other", "Not per target.", registry=registry).set(3)
    values = TargetFamily("prescaler_target_value", 'Per target "values".\nSecond line.', "kind")
    active = TargetFamily("prescaler_target_active", "Per target: 1 when active.")
    series = TargetSeries(registry, values, active)
    for n in range(50):
        target = ("ns", f"so-{n}", "m")
        values.set(target, n / 7, "observed")
        values.set(target, float(n), "value")
        active.set(target, 1 if n % 2 else 0)
    values.set(ODD, math.inf, "observed")
    values.set(ODD, math.nan, "value")
    active.set(ODD, -0.5)
    return registry, series, values, active


def fast_text(registry: CollectorRegistry, series: TargetSeries) -> str:
    with series.rendered_apart():
        rest = generate_latest(registry)
    return (rest + series.render()).decode()


def test_the_rendered_text_has_the_same_samples_as_the_registry() -> None:
    registry, series, _, _ = setup()
    fast = samples(fast_text(registry, series))
    slow = samples(generate_latest(registry).decode())
    assert fast.keys() == slow.keys() and len(fast) == 1 + 50 * 3 + 3
    for key, value in slow.items():
        assert fast[key] == value or (math.isnan(fast[key]) and math.isnan(value)), key
    assert (
        fast[
            (
                "prescaler_target_value",
                (("kind", "observed"), ("metric", "m"), ("name", ODD[1]), ("namespace", "ns")),
            )
        ]
        == math.inf
    )


def test_each_family_is_written_once_and_apart_only_in_its_thread() -> None:
    registry, series, _, _ = setup()
    text = fast_text(registry, series)
    assert text.count("# TYPE prescaler_target_value gauge") == 1
    assert text.count("# TYPE prescaler_other gauge") == 1
    with series.rendered_apart():
        assert "prescaler_target_value" not in generate_latest(registry).decode()
    assert "prescaler_target_value" in generate_latest(registry).decode()  # back after the block
    assert (
        registry.get_sample_value(
            "prescaler_target_active", {"namespace": "ns", "name": "so-3", "metric": "m"}
        )
        == 1
    )


def test_a_changed_value_is_rendered_and_a_forgotten_target_is_gone() -> None:
    registry, series, values, _ = setup()
    values.set(("ns", "so-1", "m"), 42.0, "value")
    fast = samples(fast_text(registry, series))
    key = (
        "prescaler_target_value",
        (("kind", "value"), ("metric", "m"), ("name", "so-1"), ("namespace", "ns")),
    )
    assert fast[key] == 42.0 and values.value(("ns", "so-1", "m"), "value") == 42.0
    series.forget(("ns", "so-1", "m"))
    text = fast_text(registry, series)
    assert 'name="so-1"' not in text and 'name="so-2"' in text
    assert registry.get_sample_value("prescaler_target_value", dict(key[1])) is None


def test_edge_numbers_and_an_empty_family_parse() -> None:
    registry = CollectorRegistry()
    values = TargetFamily("prescaler_target_value", "Values.", "kind")
    empty = TargetFamily("prescaler_bound_coverage", "No target has one yet.")
    series = TargetSeries(registry, values, empty)
    for kind, number in (("zero", -0.0), ("big", 1e16), ("int64", float(2**63)), ("tiny", 5e-324)):
        values.set(("ns", "so", "m"), number, kind)
    text = fast_text(registry, series)
    assert "# TYPE prescaler_bound_coverage gauge\n" in text  # an empty family still says what it is
    found = {s.labels["kind"]: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert found == {"zero": -0.0, "big": 1e16, "int64": float(2**63), "tiny": 5e-324}
