"""The per-target gauges, kept as pre-rendered exposition text.

With 5,000 targets these families are ~15,000 series. prometheus_client formats every sample at
every scrape, ~150 ms of CPU holding the interpreter (every RPC waits its turn meanwhile), once
per scrape interval. Here each target's lines are formatted when its values change (once per step,
on the event loop, microseconds each) and a scrape only joins them. The families are also a
regular collector on the registry, so `get_sample_value` and `generate_latest` see them as any
other metric; the /metrics endpoint asks the registry for everything else (`rendered_apart`) and
appends `render()`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

Target = tuple[str, str, str]
"""(namespace, name, metric): the labels every per-target series has."""
TARGET_LABELS = ("namespace", "name", "metric")


def _number(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class TargetFamily:
    """One gauge family with the target's labels and optionally one more (e.g. `kind`)."""

    def __init__(self, name: str, documentation: str, extra_label: str | None = None) -> None:
        self.name = name
        self.documentation = documentation
        self.extra_label = extra_label
        self._values: dict[Target, dict[str, float]] = {}
        # One string per target, replaced whole: a scrape in another thread reads a snapshot.
        self._text: dict[Target, str] = {}

    def set(self, target: Target, value: float, extra: str = "") -> None:
        """Set the target's series (the one with `extra` as its extra label's value)."""
        values = self._values.setdefault(target, {})
        if values.get(extra) == value:
            return
        values[extra] = value
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(TARGET_LABELS, target, strict=True))
        lines = []
        for one, number in values.items():
            more = f',{self.extra_label}="{_escape(one)}"' if self.extra_label else ""
            lines.append(f"{self.name}{{{labels}{more}}} {_number(number)}\n")
        self._text[target] = "".join(lines)

    def remove(self, target: Target) -> None:
        self._values.pop(target, None)
        self._text.pop(target, None)

    def value(self, target: Target, extra: str = "") -> float | None:
        return self._values.get(target, {}).get(extra)

    def family(self) -> GaugeMetricFamily:
        labels = [*TARGET_LABELS, *([self.extra_label] if self.extra_label else [])]
        family = GaugeMetricFamily(self.name, self.documentation, labels=labels)
        # Copies (atomic under the interpreter lock) of what the event loop may change meanwhile.
        for target, values in self._values.copy().items():
            for extra, number in values.copy().items():
                family.add_metric([*target, *([extra] if self.extra_label else [])], number)
        return family

    def render(self) -> str:
        help_text = self.documentation.replace("\\", "\\\\").replace("\n", "\\n")
        header = f"# HELP {self.name} {help_text}\n# TYPE {self.name} gauge\n"
        return header + "".join(list(self._text.values()))


class TargetSeries(Collector):
    """Every per-target family, registered on `registry` as one collector."""

    def __init__(self, registry: CollectorRegistry, *families: TargetFamily) -> None:
        self.families = families
        self._apart = threading.local()
        registry.register(self)

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(f.name, f.documentation) for f in self.families]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if getattr(self._apart, "on", False):
            return
        for family in self.families:
            yield family.family()

    @contextlib.contextmanager
    def rendered_apart(self) -> Iterator[None]:
        """While inside, this thread's collections of the registry leave these families out.
        For synchronous code only (an `await` inside would hide them from the whole loop)."""
        before = getattr(self._apart, "on", False)
        self._apart.on = True
        try:
            yield
        finally:
            self._apart.on = before

    def render(self) -> bytes:
        """The families in the Prometheus text format."""
        return "".join(f.render() for f in self.families).encode()

    def forget(self, target: Target) -> None:
        for family in self.families:
            family.remove(target)
