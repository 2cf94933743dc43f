"""What a scaling policy sees of the simulated service and how it answers KEDA. Pure types only.

A policy is one object per run (it keeps its own history):

- `observe(signals)` once per tick, with what Prometheus would show at `signals.at_s`;
- `metric(now_s)` at every HPA sync and KEDA poll: the GetMetrics value (a total over the workload)
  and the IsActive answer;
- `target`: one replica's share of that value (the HPA AverageValue target). It never changes during
  a run: KEDA passes a new target to the HPA only when the ScaledObject changes.

Only the past reaches a policy through `observe`; a clairvoyant baseline must be handed the demand
explicitly by its factory, from the `Scenario`. `scaler.policy.Decision` is a valid `Answer`, so a
policy can return the scaler's real decision rule unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from scaler.sim.autoscaler import ScalingConfig
from scaler.sim.service import ClusterConfig

SCRAPE_INTERVAL_S = 15.0
RATE_WINDOW_S = 60.0
REPLICAS_LAG_SCRAPES = 1


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """The metric pipeline every policy sees the service through (Prometheus and kube-state-metrics).

    - Every `scrape_interval_s` Prometheus scrapes the service's gauges (in flight, waiting) and its
      `requests_total` counter; a policy observes each scrape once, and nothing between them.
    - A rate is `rate(requests_total[rate_window_s])`: over the scrapes in (t - window, t], the
      counter's increase divided by the time between the first and the last of them (Prometheus
      extrapolates a full window to its edges, which gives this); 0 with fewer than two scrapes.
    - Replica counts come from kube-state-metrics, which Prometheus scrapes too: each scrape shows
      the counts `replicas_lag_scrapes` scrapes earlier.
    - The latency SLO (a trigger's `sloQuery`) as a recording rule like
      `histogram_quantile(0.99, sum(rate(latency_bucket[1m]))) > bool slo` shows it, for the newest
      minute whose requests have all finished: per arrival minute, the verdict that
      `scaler.sim.outcomes.summarize` gives it after the run, shown from the first scrape after that
      minute's last request (and the first of the minute after it) started or was dropped. With the
      client timeout that is at most timeout + a tick + a scrape after the minute's end; without
      one, as long as its requests wait.
    """

    scrape_interval_s: float = SCRAPE_INTERVAL_S
    rate_window_s: float = RATE_WINDOW_S
    replicas_lag_scrapes: int = REPLICAS_LAG_SCRAPES

    def __post_init__(self) -> None:
        if not (0 < self.scrape_interval_s < math.inf and self.rate_window_s >= 2 * self.scrape_interval_s):
            raise ValueError(
                f"PipelineConfig: scrape_interval_s ({self.scrape_interval_s}) must be > 0 and "
                f"rate_window_s ({self.rate_window_s}) at least two scrape intervals"
            )
        if self.replicas_lag_scrapes < 0:
            raise ValueError(
                f"PipelineConfig: replicas_lag_scrapes is {self.replicas_lag_scrapes}; it must be >= 0"
            )


class Signals(NamedTuple):
    """The service's gauges at one instant, as a Prometheus scrape shows them (`PipelineConfig`),
    and the latency SLO's verdict as a recording rule like `histogram_quantile(...) > bool slo`
    shows it, for the newest minute whose requests have all finished (`slo_violating`)."""

    at_s: float
    """Unix time of the scrape."""
    in_flight: float
    """Requests running or waiting (e.g. vLLM running + waiting)."""
    waiting: float
    """Requests waiting for a slot."""
    arrival_rate: float
    """Requests/s arriving (`rate(requests_total[1m])`, see `PipelineConfig`), dropped ones included."""
    ready_replicas: int
    """Replicas serving (`kube_deployment_status_replicas_ready`), one scrape late."""
    desired_replicas: int
    """The Deployment's replicas (`kube_deployment_spec_replicas`), one scrape late."""
    current_replicas: int
    """Pods that exist, pending, starting or ready (`kube_deployment_status_replicas`), one scrape
    late; pods are created at once here, so this equals `desired_replicas`."""
    slo_violating: float = math.nan
    """1.0 if the newest arrival minute whose outcome is final violated the SLO (more than
    1 - `slo_quantile` of its requests slower than `slo_s` or dropped, exactly as
    `Outcome.slo_violation_minutes` counts it), 0.0 if it did not; NaN before any minute is final.
    A minute is final once every request arriving in it, and the first one after it, started or was
    dropped; its verdict shows from the next scrape on, until a newer minute is final."""
    slo_minute_s: float = math.nan
    """Unix time of that minute's start (a new value: a new verdict; a recording rule's sample
    timestamp); NaN before any minute is final."""


class Answer(Protocol):
    """What KEDA reads from a policy at a poll."""

    @property
    def value(self) -> float:
        """GetMetrics: the metric's total over the workload, in `target` units."""
        ...

    @property
    def active(self) -> bool:
        """IsActive."""
        ...


class Metric(NamedTuple):
    """The built-in policies' `Answer`."""

    value: float
    active: bool


class Policy(Protocol):
    """A scaling policy under simulation; see the module docstring for when each member is used."""

    @property
    def target(self) -> float:
        """One replica's share of `value` (> 0); constant during a run."""
        ...

    def observe(self, signals: Signals) -> None:
        """Take in one tick's signals (ticks in order, each once)."""
        ...

    def metric(self, now_s: float) -> Answer:
        """The answer for a KEDA/HPA poll at `now_s`, from what was observed up to `now_s`."""
        ...


class Scenario(NamedTuple):
    """One simulated run's fixed inputs: the realised demand and the settings."""

    start_s: float
    """Unix time of the first tick's start."""
    tick_s: float
    """Simulation step."""
    arrivals: npt.NDArray[np.float64]
    """Requests arriving in each tick (the demand after sampling; identical for every policy)."""
    cluster: ClusterConfig
    scaling: ScalingConfig
    pipeline: PipelineConfig = PipelineConfig()
    outages: tuple[tuple[float, float], ...] = ()
    """Spans [start, end) of unix time in which the scaler answers UNAVAILABLE (KEDA's `fallback`)."""
    seed: int = 0
    """Seed of the replicas' start-up delays."""

    @property
    def ticks(self) -> int:
        """Number of ticks."""
        return int(self.arrivals.size)


PolicyFactory = Callable[[Scenario], Policy]
"""Builds a fresh policy for one run. Only baselines meant to see the future may read `arrivals`."""
