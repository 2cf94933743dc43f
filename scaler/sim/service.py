"""The simulated inference service's configuration: one replica's slots and service time, its start-up
delay, the SLO, the client's timeout, GPU nodes and prices. Pure; `scaler.sim.cluster` runs it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

# The default 95th percentile of the start-up delay, as a multiple of its median.
STARTUP_P95_RATIO = 1.5
CLIENT_TIMEOUT_S = 30.0
NODE_STARTUP_S = 300.0
NODE_SCALE_DOWN_UNNEEDED_S = 600.0
_Z95 = NormalDist().inv_cdf(0.95)


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """The inference service: what one replica can do, what it costs, and the latency it promises."""

    concurrency: int = 8
    """Requests one replica runs at once (batch slots)."""

    service_time_s: float = 2.0
    """Time one request occupies a slot; also the latency of a request that does not wait."""

    startup_delay_s: float = 120.0
    """Median start-up delay: from the replica being asked for to it serving (scheduling, image pull,
    model load); billed."""

    startup_p95_s: float | None = None
    """95th percentile of the start-up delay (lognormal); None: STARTUP_P95_RATIO x the median;
    equal to the median for a fixed delay."""

    slo_s: float = 5.0
    """Latency objective for queueing + service at `slo_quantile`; must exceed `service_time_s`."""

    slo_quantile: float = 0.99
    """A minute violates the SLO when more than 1 - this of its requests are slower than `slo_s`."""

    client_timeout_s: float | None = CLIENT_TIMEOUT_S
    """A request still waiting this long after it arrived is dropped (the client gave up); None: never."""

    max_queue: int | None = None
    """Waiting requests allowed per ready replica (one replica's worth while none is ready, so that
    load can still wake a workload at zero); None for no limit (the client timeout still applies)."""

    gpus_per_replica: int = 1
    """GPUs each replica holds while provisioned (starting or ready)."""

    gpus_per_node: int | None = None
    """GPUs per node, to simulate nodes and the Cluster Autoscaler; None: replicas billed on their own."""

    node_startup_s: float = NODE_STARTUP_S
    """From the Cluster Autoscaler asking for a node to it taking pods (with `gpus_per_node`)."""

    node_scale_down_unneeded_s: float = NODE_SCALE_DOWN_UNNEEDED_S
    """How long a node must be unneeded before the Cluster Autoscaler removes it."""

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
        if self.startup_p95_s is not None and not self.startup_delay_s <= self.startup_p95_s < math.inf:
            problems.append(
                f"startup_p95_s is {self.startup_p95_s}; it must be at least the median "
                f"startup_delay_s ({self.startup_delay_s})"
            )
        if not self.slo_s > self.service_time_s:
            problems.append(f"slo_s ({self.slo_s}) must exceed service_time_s ({self.service_time_s})")
        if not 0 < self.slo_quantile < 1:
            problems.append(f"slo_quantile is {self.slo_quantile}; it must be in (0, 1)")
        if self.client_timeout_s is not None and not self.client_timeout_s > 0:
            problems.append(f"client_timeout_s is {self.client_timeout_s}; it must be > 0 or None")
        if self.max_queue is not None and self.max_queue < 0:
            problems.append(f"max_queue is {self.max_queue}; it must be >= 0 or None")
        if self.gpus_per_replica < 0 or self.usd_per_gpu_hour < 0:
            problems.append("gpus_per_replica and usd_per_gpu_hour must be >= 0")
        if self.gpus_per_node is not None and not self.gpus_per_node >= max(1, self.gpus_per_replica):
            problems.append(
                f"gpus_per_node is {self.gpus_per_node}; it must hold at least one replica "
                f"({self.gpus_per_replica} GPUs)"
            )
        if self.node_startup_s < 0 or self.node_scale_down_unneeded_s < 0:
            problems.append("node_startup_s and node_scale_down_unneeded_s must be >= 0")
        if self.initial_replicas is not None and self.initial_replicas < 0:
            problems.append(f"initial_replicas is {self.initial_replicas}; it must be >= 0 or None")
        if problems:
            raise ValueError("ClusterConfig: " + "; ".join(problems))

    @property
    def capacity_rps(self) -> float:
        """Requests/s one ready replica completes when busy."""
        return self.concurrency / self.service_time_s

    @property
    def startup_p95(self) -> float:
        """The start-up delay's 95th percentile in s (the default ratio applied)."""
        if self.startup_p95_s is not None:
            return self.startup_p95_s
        return self.startup_delay_s * STARTUP_P95_RATIO

    @property
    def startup_sigma(self) -> float:
        """The lognormal start-up delay's sigma (0: fixed)."""
        if self.startup_delay_s <= 0:
            return 0.0
        return math.log(self.startup_p95 / self.startup_delay_s) / _Z95

    @property
    def replicas_per_node(self) -> int | None:
        """Replicas one node holds; None without nodes."""
        if self.gpus_per_node is None:
            return None
        return self.gpus_per_node // max(1, self.gpus_per_replica)
