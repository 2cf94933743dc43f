"""Wire a run together: trace -> demand -> (policy -> KEDA/HPA -> cluster) per tick -> Outcome. Pure.

Within a tick starting at t: the HPA syncs (every `hpa_sync_s`), then KEDA polls (every
`polling_interval_s`), both reading `policy.metric(t)` (unless the scaler is down: KEDA's
`fallback`, see `scaler.sim.autoscaler`); the Deployment is rescaled; the cluster serves the tick's
arrivals; at each scrape (every `scrape_interval_s`, `PipelineConfig`) the policy observes what
Prometheus shows then, the SLO's verdict of the newest arrival minute whose outcome is final
included (`outcomes.MinuteJudge`). The first sync and poll come one period after the start.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from scaler.sim.autoscaler import Autoscaler, ScalingConfig
from scaler.sim.cluster import Cluster
from scaler.sim.demand import rates_per_tick, sample_arrivals
from scaler.sim.interface import PipelineConfig, Policy, PolicyFactory, Scenario, Signals
from scaler.sim.outcomes import MINUTE_S, MinuteJudge, Outcome, against_reference, summarize
from scaler.sim.service import ClusterConfig
from scaler.traces import Trace

DEFAULT_TICK_S = 5.0


def _ticks_per(period_s: float, tick_s: float, name: str) -> int:
    ticks = round(period_s / tick_s)
    if ticks < 1 or not math.isclose(ticks * tick_s, period_s, rel_tol=1e-9):
        raise ValueError(f"{name} ({period_s} s) must be a whole number of ticks of {tick_s} s")
    return ticks


def prepare(
    trace: Trace,
    cluster: ClusterConfig,
    scaling: ScalingConfig,
    *,
    seed: int = 0,
    tick_s: float = DEFAULT_TICK_S,
    poisson: bool = True,
    pipeline: PipelineConfig | None = None,
    outages: tuple[tuple[float, float], ...] = (),
) -> Scenario:
    """The fixed inputs of a run: `trace` (requests/s) resampled to `tick_s` and sampled with `seed`
    (which also draws the replicas' start-up delays); `outages` are offsets in s from the trace's
    start, [start, end), in which the scaler answers UNAVAILABLE."""
    pipe = pipeline or PipelineConfig()
    for period_s, name in (
        (MINUTE_S, "a minute"),
        (scaling.hpa_sync_s, "hpa_sync_s"),
        (scaling.polling_interval_s, "polling_interval_s"),
        (pipe.scrape_interval_s, "scrape_interval_s"),
    ):
        _ticks_per(period_s, tick_s, name)
    arrivals = sample_arrivals(rates_per_tick(trace, tick_s), tick_s, seed, poisson=poisson)
    start_s = float(trace.at_s[0])
    spans = tuple((start_s + a, start_s + b) for a, b in outages)
    return Scenario(start_s, tick_s, arrivals, cluster, scaling, pipe, spans, seed)


def _initial_replicas(scenario: Scenario) -> int:
    cluster, scaling = scenario.cluster, scenario.scaling
    if cluster.initial_replicas is not None:
        return cluster.initial_replicas
    first = float(scenario.arrivals[0]) / (cluster.capacity_rps * scenario.tick_s)
    return min(max(math.ceil(first - 1e-9), scaling.min_replica_count), scaling.max_replica_count)


class _Scraper:
    """Prometheus and kube-state-metrics between the cluster and the policy (`PipelineConfig`)."""

    def __init__(self, pipeline: PipelineConfig, start_s: float, cluster: Cluster) -> None:
        samples = round(pipeline.rate_window_s / pipeline.scrape_interval_s)
        self._window_s = pipeline.rate_window_s
        self._counter: deque[tuple[float, float]] = deque([(start_s, 0.0)], maxlen=samples + 1)
        counts = (cluster.ready, cluster.replicas)
        self._replicas: deque[tuple[int, int]] = deque([counts], maxlen=pipeline.replicas_lag_scrapes + 1)
        self._start_s = start_s
        self._per_minute = round(MINUTE_S / cluster.tick_s)
        self._judge = MinuteJudge(cluster.config, self._per_minute, cluster.records)
        # The newest final minute's verdict and start (`Signals.slo_violating`), the oldest minute
        # not judged yet, and the ticks that must have run before it can be final (its far edge is
        # the next minute's first): until then a scrape does not look.
        self._slo = (math.nan, math.nan)
        self._slo_next = 0
        self._slo_due = self._per_minute + 1

    def _judge_newest(self, minute: int, cluster: Cluster) -> None:
        self._slo = (self._judge.violating(minute, cluster.calm_from), self._start_s + minute * MINUTE_S)
        self._slo_next = minute + 1
        self._slo_due = (minute + 2) * self._per_minute + 1

    def scrape(self, at_s: float, ticks: int, cluster: Cluster) -> Signals:
        """What Prometheus shows at `at_s`, after the cluster's first `ticks` ticks."""
        if ticks >= self._slo_due:
            newest = cluster.settled_ticks // self._per_minute - 1
            if newest >= self._slo_next:
                self._judge_newest(newest, cluster)
        slo_violating, slo_minute_s = self._slo
        counter = self._counter
        counter.append((at_s, cluster.offered_total))
        # The oldest sample within the rate window (the newest, just appended, always is).
        after_s = at_s - self._window_s + 1e-9
        for sample in counter:
            if sample[0] > after_s:
                break
        first_s, first = sample
        rate = (cluster.offered_total - first) / (at_s - first_s) if at_s > first_s else 0.0
        self._replicas.append((cluster.ready, cluster.replicas))
        ready, replicas = self._replicas[0]
        # Positional: a scrape's Signals cost half as much as with keywords (5760 a simulated day).
        return Signals(
            at_s,
            cluster.in_flight,
            cluster.waiting,
            rate,
            ready,
            replicas,
            replicas,
            slo_violating,
            slo_minute_s,
        )


def _down(outages: tuple[tuple[float, float], ...], now_s: float) -> bool:
    return any(start <= now_s < end for start, end in outages)


def run_policy(scenario: Scenario, name: str, policy: Policy) -> Outcome:
    """Simulate one policy on `scenario`."""
    dt, start_s, scaling = scenario.tick_s, scenario.start_s, scenario.scaling
    arrivals = scenario.arrivals.tolist()
    replicas = _initial_replicas(scenario)
    cluster = Cluster(scenario.cluster, dt, len(arrivals), replicas, seed=scenario.seed)
    autoscaler = Autoscaler(scaling, replicas, start_s)
    hpa_every = _ticks_per(scaling.hpa_sync_s, dt, "hpa_sync_s")
    keda_every = _ticks_per(scaling.polling_interval_s, dt, "polling_interval_s")
    scrape_every = _ticks_per(scenario.pipeline.scrape_interval_s, dt, "scrape_interval_s")
    scraper = _Scraper(scenario.pipeline, start_s, cluster)
    target = policy.target
    if not target >= 0.001:
        raise ValueError(f"policy {name}: target is {target}; it must be at least 0.001 (KEDA's precision)")
    outages = scenario.outages
    fallback = scaling.fallback_replicas
    failures, scale_events = 0, 0
    for tick, arriving in enumerate(arrivals):
        now_s = start_s + tick * dt
        hpa, keda = tick % hpa_every == 0, tick % keda_every == 0
        if tick and (hpa or keda):
            current = cluster.replicas
            desired = current
            if outages and _down(outages, now_s):
                failures += 1
                if hpa and fallback is not None and failures >= scaling.fallback_failure_threshold:
                    desired = autoscaler.hpa_sync(now_s, fallback * target, target, current)
            else:
                failures = 0
                answer = policy.metric(now_s)
                if hpa:
                    desired = autoscaler.hpa_sync(now_s, answer.value, target, current)
                if keda:
                    desired = autoscaler.keda_poll(now_s, answer.active, desired)
            if desired != current:
                cluster.scale(tick, desired)
                scale_events += 1
        cluster.step(tick, arriving)
        if (tick + 1) % scrape_every == 0:
            policy.observe(scraper.scrape(start_s + (tick + 1) * dt, tick + 1, cluster))
    return summarize(name, cluster.log(), scale_events, scenario.cluster, start_s=start_s, tick_s=dt)


def simulate(
    trace: Trace,
    policies: Mapping[str, PolicyFactory],
    cluster: ClusterConfig,
    scaling: ScalingConfig,
    *,
    seed: int = 0,
    tick_s: float = DEFAULT_TICK_S,
    poisson: bool = True,
    reference: str | None = "oracle",
    pipeline: PipelineConfig | None = None,
) -> dict[str, Outcome]:
    """Run every policy on the same sampled demand; over-provisioning is relative to `reference`."""
    inputs = prepare(trace, cluster, scaling, seed=seed, tick_s=tick_s, poisson=poisson, pipeline=pipeline)
    outcomes = {name: run_policy(inputs, name, make(inputs)) for name, make in policies.items()}
    return against_reference(outcomes, reference)
