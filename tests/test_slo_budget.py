"""An error budget in place of a quantile: `sloQuery` and `errorBudget` (`scaler.calibration.SloControl`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from scaler.calibration import MAX_FACTOR, MIN_FACTOR, SloControl
from scaler.errors import ConfigError, SourceUnreachable
from scaler.registry import open_sources
from scaler.settings import Settings
from scaler.sources.base import Source
from scaler.trigger import TriggerConfig, parse_trigger
from tests.servers import DAY, EPOCH, Counts, FakeClock, side_query_refresher, walk

LABELS = {"namespace": "serving", "name": "llm", "metric": "prescaler"}
SLO = {"sloQuery": "histogram_quantile(0.99, sum by (le) (rate(latency_bucket[1m]))) > bool 2"}


def test_the_factor_rises_with_each_violation_and_falls_while_the_budget_is_unspent() -> None:
    control = SloControl(0.01, gain=0.1, window=100)
    assert control.factor == 1.0 and math.isnan(control.share)
    control.observe(1.0)
    assert control.factor == pytest.approx(math.exp(0.1 * 0.99))
    for _ in range(99):
        control.observe(0.0)
    assert control.factor == pytest.approx(1.0)  # 1 violation in 100 reads: the budget, spent exactly
    assert control.share == pytest.approx(0.01)


def test_a_share_outside_0_1_is_not_a_read_and_the_factor_is_bounded() -> None:
    control = SloControl(0.5, gain=1.0, window=10)
    for bad in (math.nan, -0.1, 1.5, math.inf):
        control.observe(bad)
    assert control.reads == 0
    assert control.held is None
    for _ in range(50):
        control.observe(1.0)
    assert control.factor == pytest.approx(MAX_FACTOR)
    assert control.held is not None and control.held.startswith("at its ceiling (4x)")
    for _ in range(50):
        control.observe(0.0)
    assert control.factor == pytest.approx(MIN_FACTOR)
    assert control.held is not None and "never undercut" in control.held
    control.observe(1.0)  # one violation lifts it off the floor
    assert control.held is None


def test_integral_control_brings_the_violating_share_to_the_budget() -> None:
    """A plant where the chance of a violating minute halves with every 10 % more capacity: whatever
    the starting margin (too thin or too wide), the share read over a long run follows the budget."""
    rng = np.random.default_rng(11)
    for start in (0.3, 0.0001):  # violating 30 % of minutes, or almost never, at factor 1
        control = SloControl(0.01, window=200_000)
        for _ in range(200_000):
            chance = min(1.0, start * 0.5 ** (math.log(control.factor) / math.log(1.1)))
            control.observe(1.0 if rng.random() < chance else 0.0)
        assert control.share == pytest.approx(0.01, rel=0.3), start


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        pytest.param(
            {"mode": "predictive", **SLO},
            "`sloQuery` needs `errorBudget`: the SLO's violating share is controlled to the error budget",
            id="slo-query-alone",
        ),
        pytest.param(
            {"mode": "predictive", "errorBudget": "0.01"}, "`errorBudget` needs `sloQuery`", id="budget-alone"
        ),
        pytest.param(
            {"mode": "predictive", **SLO, "errorBudget": "0"},
            "`errorBudget`: `0` is not valid; expected a share in (0, 0.5], e.g. 0.01 for 1 %",
            id="budget-zero",
        ),
        pytest.param(
            {"mode": "predictive", **SLO, "errorBudget": "1%"},
            "`errorBudget`: `1%` is not valid",
            id="budget-percent-sign",
        ),
        pytest.param(
            {**SLO, "errorBudget": "0.01"},
            "`sloQuery` needs source `prometheus` and mode `predictive` or `shadow`; got source "
            "`prometheus`, mode `reactive`",
            id="slo-reactive",
        ),
        pytest.param(
            {"mode": "predictive", "sloQuery": "x" * 8193, "errorBudget": "0.01"},
            "`sloQuery`: the value is 8193 characters; at most 8192 are accepted",
            id="slo-query-too-long",
        ),
    ],
)
def test_bad_slo_keys_are_invalid_argument_naming_the_key(meta: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_trigger(
            {"serverAddress": "http://prometheus.test:9090", "query": "load", "threshold": "8", **meta}
        )
    assert fragment in str(raised.value)


@pytest.mark.parametrize("mode", ["predictive", "shadow"])
def test_slo_query_is_opened_without_null_values_in_either_mode(mode: str) -> None:
    meta = {"serverAddress": "http://p.test:9090", "query": "load", "threshold": "8", "mode": mode}
    opened: list[tuple[str | None, bool]] = []

    def factory(config: TriggerConfig, settings: Settings, namespace: str = "") -> Source:
        opened.append((config.query, config.ignore_null_values))
        return Counts(FakeClock(), lambda t: 0.0)

    sources = open_sources(parse_trigger({**meta, **SLO, "errorBudget": "0.01"}), Settings(), factory)
    assert sources.slo is not None
    # No requests in the query's window is no read, not a share of 0.
    assert (SLO["sloQuery"], False) in opened


async def test_the_served_bound_follows_the_violating_share_read_every_step(trace_dir: Path) -> None:
    clock = FakeClock()
    share = {"now": 1.0}
    slo = Counts(clock, lambda t: share["now"])
    meta = {**SLO, "errorBudget": "0.05"}
    refresher, registry = side_query_refresher(trace_dir, clock, meta, slo_source=slo)

    def margin(kind: str) -> float | None:
        return registry.get_sample_value("prescaler_margin_scale", {**LABELS, "kind": kind})

    day8 = EPOCH + 8 * DAY
    await walk(refresher, clock, day8, 12)  # every minute read violates
    rising = margin("slo")
    assert rising is not None and rising > 1.0
    assert registry.get_sample_value("prescaler_slo_violating_share", LABELS) == 1.0
    assert margin("coverage") == 1.0  # the coverage correction is off under an error budget
    described = refresher.describe()["served_bound"]
    assert described["slo_factor"] == pytest.approx(rising, rel=1e-3) and described["error_budget"] == 0.05
    assert described["slo_held"] is None  # rising, not yet at its ceiling
    share["now"] = 0.0
    await walk(refresher, clock, clock.now_s, 12)
    falling = margin("slo")
    assert falling is not None and falling < rising

    # A share that is not one is refused by name, counted, and holds the factor still.
    share["now"] = 7.0
    await walk(refresher, clock, clock.now_s, 2)  # 3 steps: now and 2 after
    assert registry.get_sample_value("prescaler_slo_errors_total", {"error": "QueryShapeError"}) == 3
    assert margin("slo") == falling
    assert "`sloQuery` returned 7" in (refresher.describe()["slo_error"] or "")
    slo.failing = SourceUnreachable("prometheus http://prometheus.test:9090: connection refused")
    await walk(refresher, clock, clock.now_s, 1)
    assert registry.get_sample_value("prescaler_slo_errors_total", {"error": "SourceUnreachable"}) == 2
    assert refresher.current().value >= refresher.current().observed  # still answering
