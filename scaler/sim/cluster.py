"""The deployment being scaled: replicas that start, become ready, and serve one FIFO queue. Pure.

The model, per tick of `tick_s`:

- The requests arriving in a tick are one cohort, spread evenly over the tick.
- Each ready replica runs `concurrency` requests at once, each for `service_time_s`. Together the
  ready replicas are a fluid server of `ready * concurrency / service_time_s` requests/s that starts
  the queued requests first come, first served. Latency = wait in the queue + `service_time_s`.
- A replica asked for at t is billed from t and serves from the first tick at or after
  t + `startup_delay_s`. Scale-down removes starting replicas first (newest first), then ready ones,
  as a ReplicaSet does; requests running on a removed replica finish (graceful termination).
- With `max_queue`, a tick's arrivals that would overfill the queue are dropped (HTTP 503).

Waits are exact for the fluid queue at each cohort edge (the request that arrives at a tick's start);
within a cohort the wait is taken as linear between its two edges (see `scaler.sim.outcomes`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

# Queues shorter than this (in requests) are empty: float noise when arrivals equal capacity exactly.
EPS = 1e-9
RATE_WINDOW_S = 60.0

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """The inference service: what one replica can do, what it costs, and the latency it promises."""

    concurrency: int = 8
    """Requests one replica runs at once (batch slots)."""

    service_time_s: float = 2.0
    """Time one request occupies a slot; also the latency of a request that does not wait."""

    startup_delay_s: float = 120.0
    """From the replica being asked for to it serving (scheduling, image pull, model load); billed."""

    slo_s: float = 5.0
    """Latency objective for queueing + service at `slo_quantile`; must exceed `service_time_s`."""

    slo_quantile: float = 0.99
    """A minute violates the SLO when more than 1 - this of its requests are slower than `slo_s`."""

    max_queue: int | None = None
    """Waiting requests allowed per ready replica (one replica's worth while none is ready, so that
    load can still wake a workload at zero); None for an unbounded queue."""

    gpus_per_replica: int = 1
    """GPUs each replica holds while provisioned (starting or ready)."""

    usd_per_gpu_hour: float = 3.0
    """Price of one GPU-hour, for `Outcome.cost_usd`."""

    initial_replicas: int | None = None
    """Ready replicas at the trace's start; None for enough to serve the first tick's demand."""

    def __post_init__(self) -> None:
        problems = []
        if self.concurrency < 1:
            problems.append(f"concurrency is {self.concurrency}; it must be at least 1")
        if not 0 < self.service_time_s < math.inf:
            problems.append(f"service_time_s is {self.service_time_s}; it must be > 0")
        if not 0 <= self.startup_delay_s < math.inf:
            problems.append(f"startup_delay_s is {self.startup_delay_s}; it must be >= 0")
        if not self.slo_s > self.service_time_s:
            problems.append(f"slo_s ({self.slo_s}) must exceed service_time_s ({self.service_time_s})")
        if not 0 < self.slo_quantile < 1:
            problems.append(f"slo_quantile is {self.slo_quantile}; it must be in (0, 1)")
        if self.max_queue is not None and self.max_queue < 0:
            problems.append(f"max_queue is {self.max_queue}; it must be >= 0 or None")
        if self.gpus_per_replica < 0 or self.usd_per_gpu_hour < 0:
            problems.append("gpus_per_replica and usd_per_gpu_hour must be >= 0")
        if self.initial_replicas is not None and self.initial_replicas < 0:
            problems.append(f"initial_replicas is {self.initial_replicas}; it must be >= 0 or None")
        if problems:
            raise ValueError("ClusterConfig: " + "; ".join(problems))

    @property
    def capacity_rps(self) -> float:
        """Requests/s one ready replica completes when busy."""
        return self.concurrency / self.service_time_s


class ClusterLog(NamedTuple):
    """What happened in each tick of one run (index k is the tick starting at start + k * tick_s)."""

    offered: FloatArray
    """Requests that arrived."""
    admitted: FloatArray
    """Requests that entered the queue (offered - dropped)."""
    dropped: FloatArray
    """Requests turned away by a full queue."""
    edge_wait_s: FloatArray
    """Wait of the request at each cohort edge; one more entry than ticks."""
    provisioned: IntArray
    """Replicas billed (starting + ready)."""
    ready: IntArray
    """Replicas serving."""
    in_flight: FloatArray
    """Running + waiting requests at the tick's end."""


class Cluster:
    """Replicas and queue of one run; `scale` between ticks, `step` through them, `log` at the end."""

    def __init__(self, config: ClusterConfig, tick_s: float, ticks: int, replicas: int) -> None:
        self.config = config
        self.tick_s = tick_s
        self.ready = replicas
        self.waiting = 0.0
        self.running = 0.0
        self.arrival_rate = 0.0
        self._startup_ticks = math.ceil(config.startup_delay_s / tick_s - EPS)
        self._starting: deque[int] = deque()  # tick at which each starting replica becomes ready
        self._admitted_total = 0.0  # since the queue was last empty
        self._edges: deque[tuple[int, float]] = deque()  # (tick, admitted_total at its start), unstarted
        self._recent: deque[float] = deque(maxlen=max(1, round(RATE_WINDOW_S / tick_s)))
        self._recent_sum = 0.0
        self._offered = [0.0] * ticks
        self._admitted = [0.0] * ticks
        self._dropped = [0.0] * ticks
        self._edge_wait = [0.0] * (ticks + 1)
        self._provisioned = [0] * ticks
        self._ready = [0] * ticks
        self._in_flight = [0.0] * ticks
        self._ticks_done = 0

    @property
    def replicas(self) -> int:
        """Replicas provisioned: the Deployment's replicas, starting or ready."""
        return self.ready + len(self._starting)

    @property
    def in_flight(self) -> float:
        """Running + waiting requests."""
        return self.running + self.waiting

    def scale(self, tick: int, replicas: int) -> None:
        """Set the Deployment's replicas at the start of `tick`."""
        while self.replicas < replicas:
            self._starting.append(tick + self._startup_ticks)
        while self.replicas > replicas and self._starting:
            self._starting.pop()
        if self.replicas > replicas:
            self.ready = replicas

    def step(self, tick: int, arrivals: float) -> None:
        """Serve tick `tick` (ticks in order, each once) with `arrivals` new requests."""
        starting = self._starting
        while starting and starting[0] <= tick:
            starting.popleft()
            self.ready += 1
        dt, ready = self.tick_s, self.ready
        start_s = tick * dt
        queued = self.waiting
        mu = ready * self.config.concurrency / self.config.service_time_s
        if queued > 0 or mu == 0:
            # The tick's first request cannot start on arrival; resolve its wait once it starts.
            self._edges.append((tick, self._admitted_total))
        capacity = mu * dt
        admitted, dropped = arrivals, 0.0
        if queued + arrivals <= capacity + EPS:
            served, left = queued + arrivals, 0.0
        else:
            served, left = capacity, queued + arrivals - capacity
            limit = self._queue_limit(ready)
            if left > limit:
                dropped = min(arrivals, left - limit)
                admitted, left = arrivals - dropped, left - dropped
        # Cumulative starts run from `started_before` to `started_before + served` over this tick.
        started_before = self._admitted_total - queued
        edges, waits = self._edges, self._edge_wait
        while mu > 0 and edges and edges[0][1] <= started_before + served + EPS:
            edge, position = edges.popleft()
            start_of_service = start_s + (position - started_before) / mu
            waits[edge] = max(0.0, start_of_service - edge * dt)
        self._admitted_total += admitted
        if left <= EPS and not edges:
            left, self._admitted_total = 0.0, 0.0  # keep the counters small while the queue is empty
        self.waiting = left
        self.running = served / dt * self.config.service_time_s
        self._record(tick, arrivals, admitted, dropped)

    def log(self) -> ClusterLog:
        """The run's record; requests still queued count as waiting until the end of the trace."""
        end_s = self._ticks_done * self.tick_s
        waits = list(self._edge_wait)
        for edge, _ in self._edges:
            waits[edge] = end_s - edge * self.tick_s
        return ClusterLog(
            offered=np.asarray(self._offered, dtype=np.float64),
            admitted=np.asarray(self._admitted, dtype=np.float64),
            dropped=np.asarray(self._dropped, dtype=np.float64),
            edge_wait_s=np.asarray(waits, dtype=np.float64),
            provisioned=np.asarray(self._provisioned, dtype=np.int64),
            ready=np.asarray(self._ready, dtype=np.int64),
            in_flight=np.asarray(self._in_flight, dtype=np.float64),
        )

    def _queue_limit(self, ready: int) -> float:
        if self.config.max_queue is None:
            return math.inf
        return float(self.config.max_queue * max(1, ready))

    def _record(self, tick: int, offered: float, admitted: float, dropped: float) -> None:
        recent = self._recent
        if len(recent) == recent.maxlen:
            self._recent_sum -= recent[0]
        recent.append(offered)
        self._recent_sum += offered
        self.arrival_rate = self._recent_sum / (len(recent) * self.tick_s)
        self._offered[tick] = offered
        self._admitted[tick] = admitted
        self._dropped[tick] = dropped
        self._provisioned[tick] = self.replicas
        self._ready[tick] = self.ready
        self._in_flight[tick] = self.running + self.waiting
        self._ticks_done = tick + 1
