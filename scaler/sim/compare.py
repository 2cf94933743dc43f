"""Compare scaling policies on one load window: every policy on the same demand, each one's knob
swept, and GPU-hours at equal SLO. Pure: no I/O.

    trace -> `scaler.sim.demand` (`demand_at_step`, `split` into past | window, `rescaled`) -> `compare`
    -> `to_json`, `table`

The headline is GPU-hours at equal SLO (`scaler.sim.sweep`): each policy's frontier over its own
knob, read at SLO budgets of violating minutes per simulated day, beside the oracle floor (the
look-ahead `oracle` and the `clairvoyant`, which runs without the HPA's scale-down stabilization, as
if it announced every scale-down early enough that the window costs nothing).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from forecasting.base import DAY_S
from scaler.sim.autoscaler import SCALE_DOWN, ScalingConfig, ScalingRules
from scaler.sim.baselines import AwsStyle, CraneDSP, NoForecast, ReactiveRate
from scaler.sim.holt_winters import holt_winters
from scaler.sim.interface import PipelineConfig, PolicyFactory, Scenario
from scaler.sim.outcomes import Outcome, against_reference
from scaler.sim.policies import fixed_buffer, oracle, reactive
from scaler.sim.predictive import Predictive, predictive
from scaler.sim.run import prepare, run_policy
from scaler.sim.samples import past_rates
from scaler.sim.service import ClusterConfig
from scaler.sim.shared import FitCache
from scaler.sim.sweep import SweepPoint, budget_minutes_per_day, frontier, gpu_hours_at_budget, knob_ranges
from scaler.sim.trigger_settings import PredictiveSettings
from scaler.traces import Trace

POLICIES = (
    "reactive",
    "reactive_60s",
    "reactive_rate",
    "no_forecast",
    "predictive",
    "holt_winters",
    "crane_dsp",
    "aws_style",
    "fixed_buffer",
    "oracle",
    "clairvoyant",
)
REACTIVE = ("reactive", "reactive_60s", "reactive_rate")
"""The reactive baselines; the best tuned of them at each budget is the ratio's denominator."""
FLOORS = ("oracle", "clairvoyant")
"""Run in every comparison: the oracle floor."""
BUDGET_SHARES = (0.001, 0.01)
# Target-like knobs are swept from SWEEP_FROM to SWEEP_TO x their default, evenly on a log scale.
SWEEP_FROM, SWEEP_TO, SWEEP_POINTS = 0.5, 1.6, 12
QUANTILES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
LOWEST_QUANTILE = 0.5
"""The scaler refuses a `quantile` below this: a sweep that reaches it has covered the cheap end."""
# predictive's threshold, swept at its default quantile besides the quantiles, as shares of a replica.
THRESHOLD_SHARES = (0.6, 0.8, 1.25, 1.6, 2.0)
SCALE_DOWN_60S = ScalingRules(60.0, SCALE_DOWN.policies)
"""The explicit `behavior` reactive_60s runs with: a 60 s scale-down window, otherwise the defaults."""
CRANE_MARGIN = 0.05

Progress = Callable[[str], None]
Override = Callable[[ScalingConfig], ScalingConfig]


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything a comparison is run with, besides the demand."""

    cluster: ClusterConfig
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    policies: tuple[str, ...] = ("reactive", "predictive", "oracle")
    target: float | None = None
    """reactive's (and the other target-knob policies') default target; None: one replica's
    concurrency (reactive_rate: one replica's capacity in requests/s)."""
    settings: PredictiveSettings = field(default_factory=PredictiveSettings)
    """predictive's, no_forecast's, holt_winters' and aws_style's trigger settings."""
    sweep: bool = False
    """Sweep every policy's knob (frontiers and GPU-hours at equal SLO); off: one run each."""
    sweep_points: int = SWEEP_POINTS
    """Points of a target-like knob's sweep."""
    sweep_range: tuple[float, float] = (SWEEP_FROM, SWEEP_TO)
    """A target-like knob's sweep, from and to, as multiples of its default."""
    buffer: float = 0.3
    """fixed_buffer's headroom."""
    seed: int = 1
    tick_s: float = 5.0
    poisson: bool = True
    """Poisson arrivals around the trace's rate; False: exactly the rate (a fluid demand)."""
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    outages: tuple[tuple[float, float], ...] = ()
    """Spans (start, end) in s from the window's start in which the scaler answers UNAVAILABLE."""
    budget_shares: tuple[float, ...] = BUDGET_SHARES
    """SLO budgets as shares of the simulated minutes."""
    budget_runs: bool = False
    """Also run predictive once per budget with that `errorBudget` (`sloQuery` on the simulated SLO)."""
    quantiles: tuple[float, ...] = QUANTILES
    """predictive's quantiles swept."""
    threshold_shares: tuple[float, ...] = THRESHOLD_SHARES
    """predictive's thresholds swept (at its default quantile), as shares of its default threshold."""

    def __post_init__(self) -> None:
        low, high = self.sweep_range
        if not (0.0 < low < high < math.inf):
            raise ValueError(f"sweep_range {self.sweep_range}: expected (from, to) with 0 < from < to")

    def reactive_target(self) -> float:
        return float(self.cluster.concurrency) if self.target is None else self.target


class Knob(NamedTuple):
    name: str
    value: float


class Comparison(NamedTuple):
    """The outcome of every policy on one window, their sweeps and the equal-SLO readings."""

    outcomes: dict[str, Outcome]
    """Each policy at its default knob (FLOORS included)."""
    defaults: dict[str, Knob | None]
    sweeps: dict[str, list[SweepPoint]]
    """Every swept point per policy (the default's included); empty without `Setup.sweep`."""
    days: float
    budgets: list[tuple[float, float]]
    """(share of minutes, violating minutes per day) per budget."""
    forecasting: dict[str, dict[str, Any]]
    """Per forecasting policy: `Predictive.summary`."""
    budgeted: tuple[dict[str, Any], ...] = ()
    """predictive under each budget as `errorBudget` (`Setup.budget_runs`), JSON-ready."""

    def frontier(self, name: str) -> list[SweepPoint]:
        """`name`'s frontier: over its sweep, or its one default run."""
        points = self.sweeps.get(name) or [self.point(name)]
        return frontier(points)

    def point(self, name: str) -> SweepPoint:
        outcome, knob = self.outcomes[name], self.defaults.get(name)
        return SweepPoint(
            knob.name if knob else "",
            knob.value if knob else math.nan,
            outcome.gpu_hours,
            outcome.slo_violation_minutes,
        )

    def at_budget(self, name: str, per_day: float) -> float | None:
        """`name`'s GPU-hours at the budget; None outside its sweep (or without one)."""
        points = self.sweeps.get(name, [])
        return gpu_hours_at_budget(points, per_day, self.days, sweep_ranges(points)) if points else None

    def best_reactive(self, per_day: float) -> tuple[str, float] | None:
        """The cheapest tuned reactive baseline at the budget, among those that reach it."""
        found = [
            (n, g) for n in REACTIVE if n in self.sweeps and (g := self.at_budget(n, per_day)) is not None
        ]
        return min(found, key=lambda item: item[1]) if found else None


def sweep_ranges(points: list[SweepPoint]) -> dict[str, tuple[float, float]]:
    """Each knob's swept range; a quantile sweep reaching LOWEST_QUANTILE counts as covering the
    cheap end (nothing lower can be configured), so a budget met there is read there."""
    ranges = knob_ranges(points)
    if "quantile" in ranges and ranges["quantile"][0] <= LOWEST_QUANTILE:
        ranges["quantile"] = (-math.inf, ranges["quantile"][1])
    return ranges


class _Context(NamedTuple):
    setup: Setup
    past: Trace | None
    fits: FitCache
    past_in_flight: np.ndarray[Any, np.dtype[np.float64]] | None


def _target_grid(default: float, points: int, sweep_range: tuple[float, float]) -> list[float]:
    shares = np.geomspace(*sweep_range, max(2, points))
    return sorted({round(float(s) * default, 3) for s in shares} | {round(default, 3)})


def _settings(context: _Context, knob: Knob) -> PredictiveSettings:
    settings = context.setup.settings
    if knob.name == "quantile":
        return dataclasses.replace(settings, quantile=knob.value)
    return dataclasses.replace(settings, threshold=knob.value)


def _with_60s(scaling: ScalingConfig) -> ScalingConfig:
    return dataclasses.replace(scaling, behavior=True, scale_down=SCALE_DOWN_60S)


def _clairvoyant_scaling(scaling: ScalingConfig) -> ScalingConfig:
    return scaling.without_down_stabilization()


def _build(name: str, knob: Knob | None, context: _Context) -> tuple[PolicyFactory, Override | None]:
    """The factory for `name` at `knob` (None for the floors), and the scaling it runs under."""
    setup, past, fits = context.setup, context.past, context.fits
    value = knob.value if knob else math.nan
    if name == "reactive":
        return reactive(value), None
    if name == "reactive_60s":
        return reactive(value), _with_60s
    if name == "reactive_rate":
        return (lambda _: ReactiveRate(value)), None
    if name == "fixed_buffer":
        return fixed_buffer(value, setup.buffer), None
    if name == "oracle":
        return oracle(), None
    if name == "clairvoyant":
        return oracle(), _clairvoyant_scaling
    if name == "crane_dsp":
        seed = context.past_in_flight
        return (
            lambda scenario: CraneDSP(
                value, start_s=scenario.start_s, past_in_flight=seed, margin_fraction=CRANE_MARGIN
            )
        ), None
    assert knob is not None
    settings = _settings(context, knob)
    if name == "predictive":
        return predictive(past, settings, fits=fits), None
    if name == "holt_winters":
        return holt_winters(past, settings, fits=fits), None
    if name == "no_forecast":
        return (
            lambda scenario: NoForecast(
                settings.trigger(scenario),
                past=past,
                start_s=scenario.start_s,
                calibration_gain=settings.calibration_gain,
                burst_settings=(settings.burst_horizon_s, settings.burst_band),
            )
        ), None
    if name == "aws_style":
        return (
            lambda scenario: AwsStyle(settings.trigger(scenario), past=past, start_s=scenario.start_s)
        ), None
    raise ValueError(f"unknown policy {name!r}; expected one of {', '.join(POLICIES)}")


def default_knob(name: str, setup: Setup) -> Knob | None:
    """The knob `name` runs at without a sweep (None for the floors)."""
    cluster, settings = setup.cluster, setup.settings
    if name in FLOORS:
        return None
    if name == "reactive_rate":
        return Knob("target_rps", cluster.capacity_rps if setup.target is None else setup.target)
    if name in ("reactive", "reactive_60s", "fixed_buffer", "crane_dsp"):
        return Knob("target", setup.reactive_target())
    if name == "predictive":
        return Knob("quantile", settings.quantile)
    threshold = settings.threshold
    if threshold is None:
        threshold = float(cluster.concurrency) * (0.9 if name == "holt_winters" else 1.0)
    return Knob("threshold", threshold)


def knob_grid(name: str, setup: Setup) -> list[Knob]:
    """The values `name`'s knob is swept over (the default's included)."""
    default = default_knob(name, setup)
    if default is None:
        return []
    if name == "predictive":
        threshold = setup.settings.threshold or float(setup.cluster.concurrency)
        quantiles = [Knob("quantile", q) for q in sorted({*setup.quantiles, default.value})]
        thresholds = [Knob("threshold", round(s * threshold, 3)) for s in setup.threshold_shares]
        return quantiles + thresholds
    return [Knob(default.name, v) for v in _target_grid(default.value, setup.sweep_points, setup.sweep_range)]


def _run(
    scenario: Scenario, name: str, factory: PolicyFactory, override: Override | None
) -> tuple[Outcome, Any]:
    chosen = scenario if override is None else scenario._replace(scaling=override(scenario.scaling))
    policy = factory(chosen)
    return run_policy(chosen, name, policy), policy


def _budgeted(scenario: Scenario, context: _Context) -> list[dict[str, Any]]:
    """predictive once per SLO budget with that `errorBudget` (`Setup.budget_runs`): no knob to sweep."""
    found = []
    days = scenario.ticks * scenario.tick_s / DAY_S
    for share in context.setup.budget_shares:
        settings = dataclasses.replace(context.setup.settings, error_budget=share)
        factory = predictive(context.past, settings, fits=context.fits)
        outcome, policy = _run(scenario, f"predictive@budget {share:g}", factory, None)
        assert isinstance(policy, Predictive)
        found.append(
            {
                "budget_share_of_minutes": share,
                "gpu_hours": outcome.gpu_hours,
                "slo_violation_minutes": outcome.slo_violation_minutes,
                "violating_share_of_minutes": outcome.slo_violation_minutes / (days * 1440),
                "requests_over_slo_fraction": outcome.over_slo_fraction,
                "forecasting": policy.summary(),
            }
        )
    return found


def compare(
    past: Trace | None,
    window: Trace,
    setup: Setup,
    progress: Progress = lambda _: None,
    fits: FitCache | None = None,
) -> Comparison:
    """Every policy of `setup` (and the floors) on the same sampled demand; with `setup.sweep`, each
    one's knob swept. `fits` shares forecaster fits with other comparisons on the same demand."""
    unknown = [name for name in setup.policies if name not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policies {unknown}; expected some of {', '.join(POLICIES)}")
    scenario = prepare(
        window,
        setup.cluster,
        setup.scaling,
        seed=setup.seed,
        tick_s=setup.tick_s,
        poisson=setup.poisson,
        pipeline=setup.pipeline,
        outages=setup.outages,
    )
    past_in_flight = None
    if past is not None and past.values.size:
        _, rates = past_rates(past, before_s=float(window.at_s[0]), span_s=14 * DAY_S, step_s=60.0)
        past_in_flight = rates * setup.cluster.service_time_s
    context = _Context(setup, past, fits or FitCache(), past_in_flight)
    names = list(dict.fromkeys([*setup.policies, *FLOORS]))
    outcomes: dict[str, Outcome] = {}
    defaults: dict[str, Knob | None] = {}
    sweeps: dict[str, list[SweepPoint]] = {}
    forecasting: dict[str, dict[str, Any]] = {}
    for name in names:
        started = time.perf_counter()
        knob = default_knob(name, setup)
        factory, override = _build(name, knob, context)
        outcome, policy = _run(scenario, name, factory, override)
        outcomes[name], defaults[name] = outcome, knob
        if isinstance(policy, Predictive) and name in ("predictive", "no_forecast", "holt_winters"):
            forecasting[name] = policy.summary(calibrated=name != "holt_winters")
        if setup.sweep and knob is not None:
            points = [SweepPoint(knob.name, knob.value, outcome.gpu_hours, outcome.slo_violation_minutes)]
            for swept in knob_grid(name, setup):
                if swept == knob:
                    continue
                factory, override = _build(name, swept, context)
                result, _ = _run(scenario, f"{name}@{swept.value:g}", factory, override)
                points.append(
                    SweepPoint(swept.name, swept.value, result.gpu_hours, result.slo_violation_minutes)
                )
            sweeps[name] = points
        progress(f"{name}: {time.perf_counter() - started:.1f} s")
    days = scenario.ticks * scenario.tick_s / DAY_S
    budgets = [(share, budget_minutes_per_day(share)) for share in setup.budget_shares]
    budgeted = tuple(_budgeted(scenario, context)) if setup.budget_runs and "predictive" in names else ()
    return Comparison(
        against_reference(outcomes, "oracle"), defaults, sweeps, days, budgets, forecasting, budgeted
    )
