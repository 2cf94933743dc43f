"""The SLO signal a policy observes during a run (`Signals.slo_violating`, scaler.sim.run): each
arrival minute's verdict, the same as `summarize` gives it after the run, shown once the minute's
outcome is final and not before."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from scaler.sim import ClusterConfig, Outcome, Reactive, ScalingConfig, Scenario, Signals, prepare, run_policy
from scaler.sim.cluster import Cluster, ClusterLog
from scaler.sim.outcomes import MinuteJudge, max_wait_s, summarize
from scaler.traces import Trace

# One replica: 10 slots x 1 s per request = 10 requests/s, 50 per 5-s tick. A request may wait 1 s.
CLUSTER = ClusterConfig(
    concurrency=10, service_time_s=1.0, startup_delay_s=180.0, startup_p95_s=270.0, slo_s=2.0
)
TICK_S, SCRAPE_S, PER_MINUTE = 5.0, 15.0, 12


def trace_of(*segments: tuple[float, float], step_s: float = 5.0) -> Trace:
    values = np.concatenate([np.full(round(duration / step_s), rate) for duration, rate in segments])
    return Trace("test", step_s * np.arange(values.size, dtype=np.float64), values, step_s)


# Quiet, a ramp to 4x in two steps that reactive meets a start-up late, quiet again, a second burst.
RAMP = trace_of((600, 10.0), (120, 25.0), (480, 40.0), (600, 10.0), (180, 35.0), (420, 10.0))


class Recording(Reactive):
    """Reactive, keeping every scrape it observes."""

    def __init__(self, target: float) -> None:
        super().__init__(target)
        self.seen: list[Signals] = []

    def observe(self, signals: Signals) -> None:
        self.seen.append(signals)
        super().observe(signals)


def _run(
    cluster: ClusterConfig, trace: Trace = RAMP, target: float = 10.0
) -> tuple[Scenario, Outcome, list[Signals]]:
    scenario = prepare(trace, cluster, ScalingConfig(), seed=3)
    policy = Recording(target)
    outcome = run_policy(scenario, "reactive", policy)
    assert outcome.slo_violation_minutes == int(outcome.minutes.violating.sum())
    return scenario, outcome, policy.seen


def _shown(scenario: Scenario, outcome: Outcome, seen: list[Signals]) -> list[tuple[float, int]]:
    """(scrape time, minute shown) of every scrape after the first final minute, each shown verdict
    checked against the run's outcome; NaN (both fields) before the first."""
    first = next(i for i, s in enumerate(seen) if not math.isnan(s.slo_violating))
    assert all(math.isnan(s.slo_violating) and math.isnan(s.slo_minute_s) for s in seen[:first])
    shown = []
    for signals in seen[first:]:
        minute = (signals.slo_minute_s - scenario.start_s) / 60.0
        assert minute == int(minute)
        assert signals.slo_violating == float(outcome.minutes.violating[int(minute)])
        # Not before its last tick's far edge (the next minute's first request) has been served.
        assert signals.at_s >= scenario.start_s + 60.0 * (minute + 1) + TICK_S
        shown.append((signals.at_s, int(minute)))
    minutes = [m for _, m in shown]
    assert minutes == sorted(minutes)
    # As soon as final: a scrape that finds nobody waiting shows the newest minute whose ticks,
    # and the first request after them, were all served (the scrape's own tick may not be).
    idle = 0
    for signals in seen:
        ticks = round((signals.at_s - scenario.start_s) / TICK_S)
        if signals.waiting == 0 and (ticks - 1) // PER_MINUTE >= 1:
            assert (signals.slo_minute_s - scenario.start_s) / 60.0 == (ticks - 1) // PER_MINUTE - 1
            idle += 1
    assert idle > len(seen) / 3
    return shown


def test_with_client_timeouts_every_minute_is_shown_within_the_timeout_and_as_summarize_judges_it() -> None:
    scenario, outcome, seen = _run(CLUSTER)
    assert outcome.timed_out > 100 and 5 <= outcome.slo_violation_minutes <= 40
    shown = _shown(scenario, outcome, seen)
    # Final within the timeout (30 s = 6 ticks) and a tick after the minute's end: shown at the
    # next scrape, unless a newer minute is final by then (the older one is skipped, never late).
    limit_s = 60.0 + (math.ceil(30.0 / TICK_S) + 1) * TICK_S + SCRAPE_S
    for minute in range(outcome.minutes.at_s.size):
        due_s = scenario.start_s + 60.0 * minute + limit_s
        if due_s <= seen[-1].at_s:
            assert any(m >= minute for at_s, m in shown if at_s <= due_s), minute
    verdicts = {minute: float(outcome.minutes.violating[minute]) for _, minute in shown}
    assert set(verdicts.values()) == {0.0, 1.0}
    assert len(verdicts) >= outcome.minutes.at_s.size - 3  # one or two skipped at most, the last not final


def test_without_a_client_timeout_a_minute_is_shown_only_once_its_backlog_is_served() -> None:
    patient = dataclasses.replace(CLUSTER, client_timeout_s=None)
    scenario, outcome, seen = _run(patient, target=12.0)
    assert outcome.dropped == 0 and outcome.slo_violation_minutes >= 5
    assert max(outcome.minutes.quantile_latency_s) > 60.0  # requests waited over a minute
    shown = _shown(scenario, outcome, seen)
    # Some minutes became final (and shown) only long after they ended: their requests waited.
    first_seen: dict[int, float] = {}
    for at_s, minute in shown:
        first_seen.setdefault(minute, at_s)
    delays = [at_s - (scenario.start_s + 60.0 * (m + 1)) for m, at_s in first_seen.items()]
    assert max(delays) > 60.0
    assert min(delays) == TICK_S + 10.0  # quiet minutes: the scrape after their far edge's tick


def test_a_run_without_violations_shows_only_met_minutes_after_the_first_minute() -> None:
    calm = trace_of((1800, 12.0))
    scenario, outcome, seen = _run(dataclasses.replace(CLUSTER, initial_replicas=3), trace=calm, target=4.0)
    assert outcome.slo_violation_minutes == 0
    shown = _shown(scenario, outcome, seen)
    assert {s.slo_violating for s in seen if not math.isnan(s.slo_violating)} == {0.0}
    assert shown[0] == (scenario.start_s + 75.0, 0)  # minute 0 is final after tick 12 (its far edge)
    assert sum(math.isnan(s.slo_violating) for s in seen) == 4  # scrapes at 15, 30, 45 and 60 s
    assert [m for _, m in shown][-1] == outcome.minutes.at_s.size - 2  # the last is never final


@pytest.mark.parametrize(
    ("timeout_s", "max_queue"),
    [
        pytest.param(30.0, None, id="client-timeout"),
        pytest.param(None, None, id="no-timeout"),
        pytest.param(10.0, 2, id="full-queue-and-timeout"),
    ],
)
def test_settled_ticks_records_never_change_afterwards(
    timeout_s: float | None, max_queue: int | None
) -> None:
    """The records below `settled_ticks` (edges up to it) are the log's at the end; with nobody
    waiting, every tick but the last is settled."""
    config = dataclasses.replace(CLUSTER, client_timeout_s=timeout_s, max_queue=max_queue)
    rng = np.random.default_rng(11)
    ticks = 400
    arrivals = rng.uniform(0, 120, ticks) * (np.arange(ticks) % 100 < 60)
    cluster = Cluster(config, TICK_S, ticks, 2, seed=1)
    snapshots, calm = [], []
    for tick in range(ticks):
        if tick % 40 == 0:  # stalls at zero replicas, scale-ups that start later
            cluster.scale(tick, int(rng.integers(0, 6)))
        cluster.step(tick, float(arrivals[tick]))
        settled = cluster.settled_ticks
        offered, admitted, dropped, edges = cluster.records
        calm.append((cluster.calm_from, tick))
        snapshots.append(
            (settled, offered[:settled], admitted[:settled], dropped[:settled], edges[: settled + 1])
        )
        if cluster.waiting == 0 and cluster.ready > 0:
            assert settled == tick
    log = cluster.log()
    assert [s[0] for s in snapshots] == sorted(s[0] for s in snapshots)
    assert snapshots[-1][0] >= ticks - 20
    for settled, offered, admitted, dropped, edges in snapshots:
        assert offered == log.offered[:settled].tolist()
        assert admitted == log.admitted[:settled].tolist()
        assert dropped == log.dropped[:settled].tolist()
        assert edges == log.edge_wait_s[: settled + 1].tolist()
    assert log.dropped.sum() > 0 if timeout_s is not None else log.dropped.sum() == 0
    # From `calm_from` on, up to the tick just stepped, nobody waited and nothing was dropped.
    for calm_from, tick in calm:
        assert not log.edge_wait_s[calm_from : tick + 1].any() and not log.dropped[calm_from : tick + 1].any()
    assert sum(calm_from <= tick for calm_from, tick in calm) > ticks / 4


def test_the_judge_gives_summarizes_verdict_at_every_kind_of_minute() -> None:
    """Hand-made minutes around the SLO: none late, all late, drops, ticks partly late near the 1 %
    allowance on both sides, and drops closer to it than float sums differ by (summarize's own
    computation decides those)."""
    rng = np.random.default_rng(5)
    wait_s = max_wait_s(CLUSTER)
    minutes = 400
    ticks = minutes * PER_MINUTE
    offered = rng.uniform(40, 60, ticks)
    dropped = np.zeros(ticks)
    edges = np.zeros(ticks + 1)
    for minute, kind in enumerate(rng.integers(0, 6, minutes)):
        first = minute * PER_MINUTE
        span = slice(first, first + PER_MINUTE)
        if kind == 1:  # every request late
            edges[span] = rng.uniform(wait_s, 40.0, PER_MINUTE)
        elif kind == 2:  # one edge a little past the wait: two ticks partly late, about 1 % in all
            edges[span] = rng.uniform(0, 0.9 * wait_s, PER_MINUTE)
            edges[first + int(rng.integers(1, PER_MINUTE))] = wait_s * (1 + rng.uniform(0, 0.2))
        elif kind == 3:  # no wait, drops about 1 % of the requests
            dropped[span] = offered[span] * rng.uniform(0, 0.02) * (rng.random(PER_MINUTE) < 0.5) * 2
        elif kind == 4:  # waits around the SLO's
            edges[span] = rng.uniform(0, 2 * wait_s, PER_MINUTE)
        elif kind == 5:  # drops a hair's breadth from the allowance: only the full sum decides
            offered[span] = 100.0
            allowed = (1 - CLUSTER.slo_quantile) * 100.0 * PER_MINUTE * (1 + 1e-9)
            dropped[span] = allowed / PER_MINUTE * (1 + float(rng.choice([-1e-14, 0.0, 1e-14])))
    admitted = offered - dropped
    log = ClusterLog(
        offered=offered,
        admitted=admitted,
        dropped=dropped,
        timed_out=dropped,
        edge_wait_s=edges,
        provisioned=np.ones(ticks, dtype=np.int64),
        ready=np.ones(ticks, dtype=np.int64),
        in_flight=np.zeros(ticks),
        billed_gpus=np.ones(ticks, dtype=np.int64),
        nodes=np.zeros(ticks, dtype=np.int64),
    )
    expected = summarize("p", log, 0, CLUSTER, start_s=0.0, tick_s=TICK_S).minutes.violating
    judge = MinuteJudge(
        CLUSTER, PER_MINUTE, (offered.tolist(), admitted.tolist(), dropped.tolist(), edges.tolist())
    )
    judged = [judge.violating(m) for m in range(minutes)]
    assert judged == expected.astype(np.float64).tolist()
    assert 0.2 * minutes < sum(judged) < 0.8 * minutes


def test_nothing_is_settled_while_the_first_requests_wait() -> None:
    cluster = Cluster(dataclasses.replace(CLUSTER, client_timeout_s=None), TICK_S, 3, 0)
    cluster.step(0, 10.0)
    cluster.step(1, 10.0)
    assert cluster.settled_ticks == 0
    cluster.scale(2, 1)
    cluster.step(2, 0.0)  # the replica starts later: still waiting
    assert cluster.settled_ticks == 0 and cluster.waiting == 20.0
