"""The deployment being scaled: replicas that start, become ready, and serve one FIFO queue. Pure.

The model, per tick of `tick_s`:

- The requests arriving in a tick are one cohort, spread evenly over the tick.
- Each ready replica runs `concurrency` requests at once, each for `service_time_s`. Together the
  ready replicas are a fluid server of `ready * concurrency / service_time_s` requests/s that starts
  the queued requests first come, first served, from one queue shared by every ready replica (a
  global queue: a request waits only while every slot is busy, as behind a least-outstanding-requests
  balancer; per-pod queues behind a random or round-robin balancer wait longer, so this is the
  kinder of the two). Latency = wait in the queue + `service_time_s`.
- Start-up: each replica draws its own delay from a lognormal with median `startup_delay_s` and 95th
  percentile `startup_p95_s` (the k-th replica of a run gets the k-th draw of the run's seed, so every
  policy meets the same delays in the same order). A replica asked for at t is billed from t and
  serves from the first tick at or after t + its delay. Scale-down removes pending and starting
  replicas first (newest first), then ready ones, as a ReplicaSet does; requests running on a removed
  replica finish (graceful termination).
- Bounded waiting: a request not started `client_timeout_s` after it arrived gives up (the client's
  timeout) and counts as dropped; with `max_queue`, a tick's arrivals that would overfill the queue are
  dropped at once (HTTP 503). Dropped requests violate the SLO.
- GPU nodes (with `gpus_per_node`): a replica runs on a node with a free GPU; one without stays
  pending, the Cluster Autoscaler adds the nodes the pending replicas need, each ready
  `node_startup_s` later, and the replica's own start-up begins when its node is ready. A node left
  unneeded (the replicas fit on fewer) for `node_scale_down_unneeded_s` is removed (CA's
  `--scale-down-unneeded-time`). Replicas are packed onto as few nodes as possible. GPU-hours are then
  billed per node (starting or ready), not per replica.

Waits are exact for the fluid queue at each cohort edge (the request that arrives at a tick's start);
within a cohort the wait is taken as linear between its two edges (see `scaler.sim.outcomes`).
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from scaler.sim.service import ClusterConfig

# Queues shorter than this (in requests) are empty: float noise when arrivals equal capacity exactly.
EPS = 1e-9
_DRAWS = 256  # start-up delays drawn at a time

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class ClusterLog(NamedTuple):
    """What happened in each tick of one run (index k is the tick starting at start + k * tick_s)."""

    offered: FloatArray
    """Requests that arrived."""
    admitted: FloatArray
    """Requests that entered the queue and were not dropped later (offered - dropped)."""
    dropped: FloatArray
    """Requests turned away by a full queue or given up after the client timeout, by arrival tick."""
    timed_out: FloatArray
    """Of `dropped`, those that gave up after the client timeout."""
    edge_wait_s: FloatArray
    """Wait of the request at each cohort edge; one more entry than ticks."""
    provisioned: IntArray
    """Replicas billed (pending, starting and ready)."""
    ready: IntArray
    """Replicas serving."""
    in_flight: FloatArray
    """Running + waiting requests at the tick's end."""
    billed_gpus: IntArray
    """GPUs billed: the replicas' GPUs, or with nodes every node's (starting or ready)."""
    nodes: IntArray
    """Nodes (starting or ready) with `gpus_per_node`; zeros without."""


class Cluster:
    """Replicas and queue of one run; `scale` between ticks, `step` through them, `log` at the end."""

    # Slots: CPython 3.11 shares an instance dict's keys among a class's instances up to 30 names;
    # past that, every attribute access in `step` is ~15 % slower.
    __slots__ = (
        "_admitted",
        "_billed",
        "_draws",
        "_dropped",
        "_edge_wait",
        "_in_flight",
        "_node_ticks",
        "_nodes",
        "_nodes_ready",
        "_nodes_starting",
        "_offered",
        "_pending",
        "_per_node",
        "_provisioned",
        "_queue",
        "_ready",
        "_rng",
        "_starting",
        "_ticks_done",
        "_timed_out",
        "_timeout_ticks",
        "_unneeded_since",
        "_unneeded_ticks",
        "calm_from",
        "config",
        "offered_total",
        "ready",
        "running",
        "tick_s",
        "waiting",
    )

    def __init__(
        self, config: ClusterConfig, tick_s: float, ticks: int, replicas: int, *, seed: int = 0
    ) -> None:
        self.config = config
        self.tick_s = tick_s
        self.ready = replicas
        self.waiting = 0.0
        self.running = 0.0
        self.offered_total = 0.0
        """Requests arrived so far (the `requests_total` counter a scrape reads)."""
        self.calm_from = 0
        """From this tick on, every request started as it arrived (each edge waited 0) and none was
        dropped: two ticks after the last that ended with requests queued or turned away."""
        self._rng = np.random.default_rng(seed)
        self._draws: list[int] = []
        self._starting: list[int] = []  # tick at which each starting replica is ready, oldest first
        self._pending = 0  # replicas waiting for a node
        self._per_node = config.replicas_per_node
        self._nodes_ready = 0 if self._per_node is None else -(-replicas // self._per_node)
        self._nodes_starting: list[int] = []
        self._node_ticks = math.ceil(config.node_startup_s / tick_s - EPS)
        self._unneeded_since: int | None = None
        self._unneeded_ticks = math.ceil(config.node_scale_down_unneeded_s / tick_s - EPS)
        timeout = config.client_timeout_s
        self._timeout_ticks = None if timeout is None else max(1, math.ceil(timeout / tick_s - EPS))
        # Cohorts waiting, oldest first: [arrival tick, requests left, started].
        self._queue: deque[list[float]] = deque()
        self._offered = [0.0] * ticks
        self._admitted = [0.0] * ticks
        self._dropped = [0.0] * ticks
        self._timed_out = [0.0] * ticks
        self._edge_wait = [0.0] * (ticks + 1)
        self._provisioned = [0] * ticks
        self._ready = [0] * ticks
        self._in_flight = [0.0] * ticks
        self._billed = [0] * ticks
        self._nodes = [0] * ticks
        self._ticks_done = 0

    @property
    def replicas(self) -> int:
        """Replicas provisioned: the Deployment's replicas, pending, starting or ready."""
        return self.ready + len(self._starting) + self._pending

    @property
    def in_flight(self) -> float:
        """Running + waiting requests."""
        return self.running + self.waiting

    @property
    def nodes(self) -> int:
        """Nodes starting or ready (0 without nodes)."""
        return self._nodes_ready + len(self._nodes_starting)

    @property
    def settled_ticks(self) -> int:
        """Ticks, from the first, whose records are final: each one's requests all started or were
        dropped, and so was the first request of the tick after it (its far edge)."""
        queue = self._queue
        if not queue:
            return self._ticks_done - 1 if self._ticks_done else 0
        arrived, _, started = queue[0]
        # Only the oldest cohort can have started; its edge is then final, but not its drops.
        return int(arrived) if started or not arrived else int(arrived) - 1

    @property
    def records(self) -> tuple[list[float], list[float], list[float], list[float]]:
        """The per-tick lists `log` is made of, in place (read them, never write): offered, admitted
        and dropped requests, and the edges' waits (one more); final below `settled_ticks` (edges: up
        to it)."""
        return self._offered, self._admitted, self._dropped, self._edge_wait

    def _startup_ticks(self) -> int:
        if not self._draws:
            config = self.config
            sigma = config.startup_sigma
            if sigma == 0:
                delays = np.full(_DRAWS, config.startup_delay_s)
            else:
                delays = config.startup_delay_s * np.exp(sigma * self._rng.standard_normal(_DRAWS))
            ticks = np.ceil(delays / self.tick_s - EPS).astype(np.int64)
            self._draws = ticks[::-1].tolist()
        return self._draws.pop()

    def scale(self, tick: int, replicas: int) -> None:
        """Set the Deployment's replicas at the start of `tick`."""
        if replicas > self.replicas:
            added = replicas - self.replicas
            if self._per_node is None:
                self._starting.extend(tick + self._startup_ticks() for _ in range(added))
            else:
                self._pending += added
                self._schedule(tick)
            return
        excess = self.replicas - replicas
        unplaced = min(excess, self._pending)
        self._pending -= unplaced
        excess -= unplaced
        while excess and self._starting:
            self._starting.pop()
            excess -= 1
        self.ready -= excess

    def _schedule(self, tick: int) -> None:
        """Place pending replicas on free GPUs; ask the Cluster Autoscaler for nodes for the rest."""
        per_node = self._per_node
        if per_node is None:
            return
        placed = self.ready + len(self._starting)
        free = max(0, self._nodes_ready * per_node - placed)
        moving = min(free, self._pending)
        if moving:
            self._pending -= moving
            self._starting.extend(tick + self._startup_ticks() for _ in range(moving))
        wanted = -(-(placed + moving + self._pending) // per_node)
        if self._pending and wanted > self.nodes:
            self._nodes_starting.extend([tick + self._node_ticks] * (wanted - self.nodes))

    def _nodes_step(self, tick: int) -> None:
        per_node = self._per_node
        if per_node is None:
            return
        while self._nodes_starting and self._nodes_starting[0] <= tick:
            self._nodes_starting.pop(0)
            self._nodes_ready += 1
        self._schedule(tick)
        needed = -(-(self.ready + len(self._starting)) // per_node)
        if self._nodes_ready <= needed:
            self._unneeded_since = None
        elif self._unneeded_since is None:
            self._unneeded_since = tick
        elif tick - self._unneeded_since >= self._unneeded_ticks:
            self._nodes_ready, self._unneeded_since = needed, None

    def step(self, tick: int, arrivals: float) -> None:
        """Serve tick `tick` (ticks in order, each once) with `arrivals` new requests."""
        self._nodes_step(tick)
        starting = self._starting
        if starting and min(starting) <= tick:
            still = [at for at in starting if at > tick]
            self.ready += len(starting) - len(still)
            self._starting = still
        dt, ready, queue = self.tick_s, self.ready, self._queue
        start_s = tick * dt
        self._give_up(tick)
        mu = ready * self.config.concurrency / self.config.service_time_s
        capacity = mu * dt
        admitted, dropped = arrivals, 0.0
        left = self.waiting + arrivals - capacity
        if left > EPS:
            limit = self._queue_limit(ready)
            if left > limit:
                self.calm_from = tick + 2
                dropped = min(arrivals, left - limit)
                admitted = arrivals - dropped
        if queue or admitted > 0 or mu == 0:
            queue.append([float(tick), admitted, 0.0])
        self.waiting += admitted
        served, waits = 0.0, self._edge_wait
        while queue and mu > 0:
            cohort = queue[0]
            if not cohort[2]:
                if served > capacity + EPS:
                    break
                arrived = int(cohort[0])
                waits[arrived] = max(0.0, start_s + served / mu - arrived * dt)
                cohort[2] = 1.0
            # min(cohort[1], room) without a builtin call per cohort and tick (the same value).
            room = capacity - served
            take = room if room < cohort[1] else cohort[1]
            cohort[1] -= take
            served += take
            if cohort[1] > EPS:
                break
            queue.popleft()
        if queue:
            self.waiting = max(0.0, self.waiting - served)
            self.calm_from = tick + 2
        else:
            self.waiting = 0.0
        self.running = served / dt * self.config.service_time_s
        self.offered_total += arrivals
        self._record(tick, arrivals, admitted, dropped)

    def _give_up(self, tick: int) -> None:
        """Drop the cohorts whose first request has waited the client timeout by the tick's start."""
        if self._timeout_ticks is None:
            return
        queue, last = self._queue, tick - self._timeout_ticks
        while queue and queue[0][0] <= last:
            arrived_f, left, started = queue.popleft()
            arrived = int(arrived_f)
            if not started:
                self._edge_wait[arrived] = (tick - arrived) * self.tick_s
            self._admitted[arrived] -= left
            self._dropped[arrived] += left
            self._timed_out[arrived] += left
            self.waiting = max(0.0, self.waiting - left)
        if not queue:
            self.waiting = 0.0

    def log(self) -> ClusterLog:
        """The run's record; requests still queued count as waiting until the end of the trace."""
        end_s = self._ticks_done * self.tick_s
        waits = list(self._edge_wait)
        for arrived, _, started in self._queue:
            if not started:
                waits[int(arrived)] = end_s - arrived * self.tick_s
        return ClusterLog(
            offered=np.asarray(self._offered, dtype=np.float64),
            admitted=np.asarray(self._admitted, dtype=np.float64),
            dropped=np.asarray(self._dropped, dtype=np.float64),
            timed_out=np.asarray(self._timed_out, dtype=np.float64),
            edge_wait_s=np.asarray(waits, dtype=np.float64),
            provisioned=np.asarray(self._provisioned, dtype=np.int64),
            ready=np.asarray(self._ready, dtype=np.int64),
            in_flight=np.asarray(self._in_flight, dtype=np.float64),
            billed_gpus=np.asarray(self._billed, dtype=np.int64),
            nodes=np.asarray(self._nodes, dtype=np.int64),
        )

    def _queue_limit(self, ready: int) -> float:
        if self.config.max_queue is None:
            return math.inf
        return float(self.config.max_queue * max(1, ready))

    def _record(self, tick: int, offered: float, admitted: float, dropped: float) -> None:
        self._offered[tick] = offered
        self._admitted[tick] = admitted
        self._dropped[tick] = dropped
        replicas = self.replicas
        self._provisioned[tick] = replicas
        self._ready[tick] = self.ready
        self._in_flight[tick] = self.running + self.waiting
        if self._per_node is None:
            self._billed[tick] = replicas * self.config.gpus_per_replica
        else:
            self._nodes[tick] = self.nodes
            self._billed[tick] = self.nodes * (self.config.gpus_per_node or 0)
        self._ticks_done = tick + 1
