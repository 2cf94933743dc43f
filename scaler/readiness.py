"""Pod start-up times measured from two replica counts, for `leadTime: auto`. Pure: no I/O, no clock.

A `ReadinessTracker` is fed, every step, the replicas asked for (`replicasQuery`, e.g. kube-state-metrics'
`kube_deployment_status_replicas`) and the replicas ready (`readyQuery`,
`kube_deployment_status_replicas_ready`). When the count asked for rises at t0, each added replica is
pending from t0; when the ready count rises by k, k pending replicas are taken to be ready, and the
start-up of each is the time between the two samples. From the newest WINDOW start-ups it gives a high
percentile as the lead time, and their median and number as its spread.

Which pending replicas became ready the counts do not say. When all were asked for at one sample it
does not matter. When scale-ups overlap, matching the oldest first would pair the first replica ready
with the oldest request even when a newer one was the fast one: the mean stays exact but the spread
narrows. On the simulator's diurnal day (`_day` in tests/test_readiness.py, 12 seeds) the p90 came out
8 % low at 180 s start-ups and 11 % low at 600 s that way (medians), and within 1 % as done here: each
replica ready is drawn by its chance of having become ready since the last sample (its hazard), under a
lognormal fitted to the window (before MIN_STARTUPS, the prior: median = the fallback, sigma
PRIOR_SIGMA). With the model right, that is the exact conditional chance; a wrong prior does not hold
the estimate (tests/test_readiness.py). The draws are quasi-random, golden-ratio steps through [0, 1):
deterministic (equal samples, equal estimates) and evenly spread: on that day at 600 s start-ups they
cut the p90's error against the replicas' own start-ups from 4 +- 7 % to 1 +- 5 % (mean +- sd over 12
seeds) compared with pseudo-random draws.

How a start-up is counted: from the first sample that shows the count raised to the first sample that
shows the replica ready. Each end is late by up to one step after the event (uniformly, since the events
do not know the sampling phase), so on average the two delays cancel and the duration is unbiased, and
each one is off by less than one step. A replica that is ready by the sample that shows it asked for
counts as 0 s.

The counts are all there is, so the tracker keeps one invariant: the replicas it holds pending are
exactly the replicas asked for and not ready, max(0, desired - ready), after every sample.

- A fall in the count asked for cancels the newest pending replicas first, as a ReplicaSet deletes
  not-ready and newer pods first; they are counted in `cancelled`. They are the slow ones of their
  batch (the fast ones are ready), so dropping them would bias the percentiles low (on that day at 600 s
  start-ups, two in five replicas asked for are cancelled, and the median and the p90 came out 4 and
  5 % low). So each is kept as a start-up drawn from the model given that it is longer than it had been
  pending at the last sample (right-censored, imputed), once the window holds MIN_STARTUPS start-ups
  seen ready; before that it is only counted.
- Fewer pending than not ready (a ready replica lost its readiness, or the first sample starts with a
  deficit) adds pending replicas whose start is unknown: they are matched like the others and
  never timed. A restart is not a scale-up.
- A sample with either count missing, not finite, negative or above MAX_REPLICAS is skipped; counts are
  rounded to the nearest integer. Samples not newer than the last are skipped. After a gap of more than
  MAX_GAP_STEPS steps, the rises and readiness seen at the next sample are not timed (they happened
  somewhere in the gap), though they are still matched.
- A replica still pending `max_startup_s` after it was asked for (no quota, no GPUs, an image that does
  not exist) is a capacity problem, not a start-up to plan for: it is counted once in `stuck` and no
  longer timed.

Memory per tracker is bounded whatever the counts: at most MAX_PENDING_RUNS runs of pending replicas
(one per sample that added some; older ones merge, untimed, past that) and WINDOW durations.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from scaler.trigger_values import MAX_LEAD_S

WINDOW = 256
"""Start-ups kept, the newest. A full window's p90 has a standard error of about 3 % for lognormal
start-ups of the simulator's default spread (p95 = 1.5 x the median), before the matching's own noise;
and a slower image moves the p90 after a tenth of the window's replicas, within a day's scale-ups."""
MIN_STARTUPS = 5
"""Timed start-ups needed before the measurement replaces the fallback: below that a p90 is the
largest value seen, and one outlier sets the lead time."""
QUANTILE = 0.9
"""Share of new replicas that should be ready within the lead time. p90 rather than the median: a
replica slower than the lead time arrives after the load it was asked for, and the forecast's own
quantile does not cover that. Not p99: a window of WINDOW start-ups places a p99 on two or three of
them, and the time a replica takes in the slowest percent is usually not start-up but scheduling
trouble that no lead time fixes."""
MAX_GAP_STEPS = 2.0
"""A sample more than this many steps after the last valid one follows a gap: what it shows is not timed."""
MAX_PENDING_RUNS = 512
"""Runs of pending replicas kept (one per sample that added some)."""
MAX_DRAWN = 256
"""Replicas ready at one sample drawn by their chance; the rest are matched oldest first."""
PRIOR_SIGMA = 0.3
"""The model's log-spread until the window holds MIN_STARTUPS (0.25 is the simulator's default)."""
MIN_SIGMA = 0.05
MAX_SIGMA = 2.0
"""Bounds of the fitted log-spread: equal start-ups must not make the model a step (oldest first)."""
MAX_REPLICAS = 1_000_000
"""Counts above this are not replica counts (a query summing the wrong series): the sample is skipped."""
_NORMAL = NormalDist()
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(slots=True)
class _Run:
    """Replicas asked for at one sample and not yet ready (or cancelled)."""

    at_s: float
    count: int
    timed: bool


class LeadTimeEstimate(NamedTuple):
    """The measured start-ups of one workload, and the lead time they give."""

    lead_time_s: float
    """The lead time to use: `upper_s` once the window holds the minimum of start-ups seen ready,
    the fallback before."""
    measured: bool
    """Whether `lead_time_s` is measured (else it is the fallback)."""
    quantile: float
    """The percentile `upper_s` is, as a share (0.9)."""
    upper_s: float
    """That percentile of the start-ups in the window (NaN with none)."""
    p50_s: float
    """Their median (NaN with none)."""
    startups: int
    """Start-ups in the window (seen ready, and drawn for cancelled replicas)."""
    timed: int
    """Start-ups timed since the tracker started (the window holds the newest WINDOW)."""
    untimed: int
    """Replicas seen ready that were not timed: their start is unknown (restarts, the first sample, a
    gap) or they were stuck."""
    cancelled: int
    """Pending replicas cancelled by a fall in the count asked for before they were ready."""
    stuck: int
    """Replicas not ready `max_startup_s` after they were asked for."""
    skipped: int
    """Samples skipped: a count missing or not a replica count, or not newer than the last sample."""


class ReadinessTracker:
    """Times each new replica's start-up from samples of the replicas asked for and ready."""

    def __init__(
        self,
        *,
        step_s: float,
        fallback_s: float,
        quantile: float = QUANTILE,
        window: int = WINDOW,
        min_startups: int = MIN_STARTUPS,
        max_startup_s: float = MAX_LEAD_S,
    ) -> None:
        problems = []
        if not 0 < step_s < math.inf:
            problems.append(f"step_s is {step_s}; it must be > 0")
        if not 0 <= fallback_s < math.inf:
            problems.append(f"fallback_s is {fallback_s}; it must be >= 0")
        if not 0 < quantile < 1:
            problems.append(f"quantile is {quantile}; it must be in (0, 1)")
        if not 1 <= min_startups <= window:
            problems.append(f"min_startups is {min_startups}; it must be from 1 to window ({window})")
        if not 0 < max_startup_s < math.inf:
            problems.append(f"max_startup_s is {max_startup_s}; it must be > 0")
        if problems:
            raise ValueError("; ".join(problems))
        self.step_s = step_s
        self.fallback_s = fallback_s
        self.quantile = quantile
        self.min_startups = min_startups
        self.max_startup_s = max_startup_s
        self._durations: deque[float] = deque(maxlen=window)
        self._seen: deque[bool] = deque(maxlen=window)  # per duration: seen ready, or imputed
        self._runs: deque[_Run] = deque()
        self._pending = 0
        self._desired: int | None = None
        self._last_s = -math.inf
        self._timed = self._untimed = self._cancelled = self._stuck = self._skipped = 0
        self._estimate: LeadTimeEstimate | None = None
        self._u = 0.5  # the last share drawn

    def observe(self, at_s: float, desired: float | None, ready: float | None) -> None:
        """Take one sample: the replicas asked for and the replicas ready at `at_s` (None: not read)."""
        wanted, up = _count(desired), _count(ready)
        if wanted is None or up is None or not math.isfinite(at_s) or at_s <= self._last_s:
            self._skipped += 1
            return
        timed = self._desired is not None and at_s - self._last_s <= MAX_GAP_STEPS * self.step_s
        if self._desired is not None and wanted > self._desired:
            self._add(at_s, wanted - self._desired, timed=timed)
        elif self._desired is not None and wanted < self._desired:
            self._cancel(self._desired - wanted)
        self._expire(at_s)
        not_ready = max(0, wanted - up)
        if self._pending > not_ready:
            self._ready(at_s, self._pending - not_ready, timed=timed)
        elif self._pending < not_ready:
            self._add(at_s, not_ready - self._pending, timed=False)
        self._desired, self._last_s = wanted, at_s

    def estimate(self) -> LeadTimeEstimate:
        """The lead time and the spread of the start-ups in the window."""
        if self._estimate is None:
            durations = np.fromiter(self._durations, dtype=np.float64, count=len(self._durations))
            if durations.size:
                p50, upper = (float(v) for v in np.percentile(durations, [50.0, 100.0 * self.quantile]))
            else:
                p50 = upper = math.nan
            measured = sum(self._seen) >= self.min_startups
            self._estimate = LeadTimeEstimate(
                lead_time_s=upper if measured else self.fallback_s,
                measured=measured,
                quantile=self.quantile,
                upper_s=upper,
                p50_s=p50,
                startups=int(durations.size),
                timed=self._timed,
                untimed=self._untimed,
                cancelled=self._cancelled,
                stuck=self._stuck,
                skipped=self._skipped,
            )
        return self._estimate

    @property
    def pending(self) -> int:
        """Replicas asked for and not ready yet."""
        return self._pending

    def _add(self, at_s: float, count: int, *, timed: bool) -> None:
        runs = self._runs
        if runs and runs[-1].at_s == at_s and runs[-1].timed == timed:
            runs[-1].count += count
        else:
            runs.append(_Run(at_s, count, timed))
        if len(runs) > MAX_PENDING_RUNS:
            # Keep the counts and their order; lose the oldest two runs' timing.
            oldest = runs.popleft()
            runs[0] = _Run(oldest.at_s, oldest.count + runs[0].count, timed=False)
        self._pending += count
        self._estimate = None

    def _cancel(self, count: int) -> None:
        """Remove up to `count` pending replicas, newest first (the rest were ready ones). Each timed
        one is kept as a start-up longer than it had been pending at the last sample, drawn from the
        model (up to MAX_DRAWN per sample)."""
        runs = self._runs
        while count and runs:
            run = runs[-1]
            gone = min(count, run.count)
            if run.timed:
                self._cancelled += gone
            if run.timed and sum(self._seen) >= self.min_startups:
                mu, sigma = self._model()
                for _ in range(min(gone, MAX_DRAWN)):
                    self._keep(self._beyond(self._last_s - run.at_s, mu, sigma), seen=False)
            run.count -= gone
            count -= gone
            self._pending -= gone
            if not run.count:
                runs.pop()
        self._estimate = None

    def _ready(self, at_s: float, count: int, *, timed: bool) -> None:
        """`count` pending replicas became ready by `at_s`. With one run pending, which ones does not
        matter; with several, each is drawn by its chance of having become ready since the last sample
        (the hazard of the current model, `_model`), up to MAX_DRAWN, and the rest are the oldest."""
        if timed and len(self._runs) > 1:
            drawn = min(count, MAX_DRAWN)
            self._draw(at_s, drawn)
            count -= drawn
        runs = self._runs
        while count:
            run = runs[0]
            done = min(count, run.count)
            self._record(run, at_s, done, timed=timed)
            count -= done
            if not run.count:
                runs.popleft()
        self._estimate = None

    def _draw(self, at_s: float, count: int) -> None:
        # In arrays: a sample may draw MAX_DRAWN replicas among MAX_PENDING_RUNS runs, which as
        # Python lists took ~20 ms of the event loop; the sums are sequential either way.
        runs = list(self._runs)
        mu, sigma = self._model()
        chances = np.array([_chance(self._last_s - run.at_s, at_s - run.at_s, mu, sigma) for run in runs])
        counts = np.array([run.count for run in runs], dtype=np.float64)
        for _ in range(count):
            weights = counts * chances
            if not weights.any():  # beyond the model's tail: by count alone
                weights = counts
            cumulative = np.cumsum(weights)
            index = int(np.searchsorted(cumulative, self._share() * cumulative[-1], side="right"))
            # float rounding can point past the end, or at a run already used up.
            index = min(index, len(runs) - 1)
            if not counts[index]:
                index = int(np.flatnonzero(counts)[-1])
            self._record(runs[index], at_s, 1, timed=True)
            counts[index] -= 1
        self._runs = deque(run for run in runs if run.count)

    def _record(self, run: _Run, at_s: float, done: int, *, timed: bool) -> None:
        """`done` replicas of `run` became ready by `at_s`."""
        if timed and run.timed:
            # A batch ready at once is `done` equal start-ups; more than the window holds fill it.
            for _ in range(min(done, self._durations.maxlen or done)):
                self._keep(at_s - run.at_s, seen=True)
            self._timed += done
        else:
            self._untimed += done
        run.count -= done
        self._pending -= done

    def _share(self) -> float:
        """The next of an evenly spread sequence in [0, 1) (golden-ratio steps): a quasi-random draw."""
        self._u = (self._u + _GOLDEN) % 1.0
        return self._u

    def _keep(self, duration_s: float, *, seen: bool) -> None:
        self._durations.append(duration_s)
        self._seen.append(seen)

    def _beyond(self, age_s: float, mu: float, sigma: float) -> float:
        """A start-up drawn from lognormal(mu, sigma) given that it is longer than `age_s`, at most
        `max_startup_s` (beyond that it would have been stuck)."""
        low = 1.0 - _survival(age_s, mu, sigma)
        share = min(max(low + (1.0 - low) * self._share(), 1e-12), 1.0 - 1e-12)
        return min(math.exp(mu + sigma * _NORMAL.inv_cdf(share)), self.max_startup_s)

    def _model(self) -> tuple[float, float]:
        """(mu, sigma) of the lognormal that directs the draws: fitted to the window, or the prior."""
        if len(self._durations) < self.min_startups:
            return math.log(max(self.fallback_s, self.step_s)), PRIOR_SIGMA
        logs = np.log(np.maximum(np.fromiter(self._durations, dtype=np.float64), self.step_s / 2))
        return float(np.mean(logs)), float(np.clip(np.std(logs), MIN_SIGMA, MAX_SIGMA))

    def _expire(self, at_s: float) -> None:
        """Stop timing the replicas pending longer than `max_startup_s`."""
        for run in self._runs:
            if run.at_s >= at_s - self.max_startup_s:
                break
            if run.timed:
                run.timed = False
                self._stuck += run.count
                self._estimate = None


def _chance(since_s: float, until_s: float, mu: float, sigma: float) -> float:
    """P(a start-up ends in (since_s, until_s] | it had not by since_s), for a lognormal(mu, sigma)."""
    alive = _survival(since_s, mu, sigma)
    if alive < 1e-300:
        return 1.0
    return max(0.0, 1.0 - _survival(until_s, mu, sigma) / alive)


def _survival(age_s: float, mu: float, sigma: float) -> float:
    if age_s <= 0:
        return 1.0
    return 0.5 * math.erfc((math.log(age_s) - mu) / (sigma * math.sqrt(2.0)))


def _count(value: float | None) -> int | None:
    """A sampled value as a replica count; None when it is none."""
    if value is None or not 0 <= value <= MAX_REPLICAS:
        return None
    return round(value)


def lead_time_used(estimate: LeadTimeEstimate, step_s: float) -> float | None:
    """The lead time `leadTime: auto` provisions ahead by, once measured (None before: the fallback
    is used): at least one step, since a shorter start-up cannot be seen, and at most MAX_LEAD_S."""
    if not estimate.measured:
        return None
    return min(max(estimate.lead_time_s, step_s), MAX_LEAD_S)
