"""KEDA's scale loop and the HPA it drives, as they act on one Deployment. Pure.

Follows KEDA's `scale_executor.RequestScale` and the HPA controller (`replica_calculator.go`
`GetExternalPerPodMetricReplicas`, `horizontal.go` `stabilizeRecommendationWithBehaviors` and
`convertDesiredReplicasWithBehaviorRate`), for an external trigger with metricType AverageValue:

- KEDA, every `polling_interval_s`: active with 0 replicas -> max(1, minReplicaCount); inactive, with
  minReplicaCount 0, and not active for longer than `cooldown_period_s` -> 0; active -> remember when.
- HPA, every `hpa_sync_s` while replicas > 0: desired = ceil(value / target) unless
  |value / (target * current) - 1| <= tolerance. Then one of two paths, as the controller has:
  - without `behavior` (KEDA leaves it unset unless the ScaledObject's `advanced` block gives one, and
    the API server does not default it): the legacy path, `normalizeDesiredReplicas`: the largest
    recommendation of the last `downscale_stabilization_s` (the controller's
    `--horizontal-pod-autoscaler-downscale-stabilization`, 5 min), and at most max(2 x current, 4)
    replicas per sync (`scaleUpLimitFactor`, `scaleUpLimitMinimum`);
  - with `behavior`: the scale-down recommendation is the largest of its window's, the scale-up one
    the smallest of its window's; the change per period is limited by the behavior's policies.
  The result is clamped to [max(1, minReplicaCount), maxReplicaCount].
- KEDA's `fallback`: while the scaler answers UNAVAILABLE, the HPA's metric read fails and it keeps
  the replicas (and KEDA's scale loop neither activates nor deactivates); from the
  `fallback_failure_threshold`-th failed read in a row KEDA serves `fallback_replicas` x target
  instead, so the HPA moves to `fallback_replicas` under its usual rules.

Times are the caller's clock in seconds; windows and periods count samples strictly newer than
`now - window`, as Kubernetes' `After(cutoff)` does.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from scaler.trigger import HPA_TOLERANCE


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """One HPA `behavior` policy: change by at most `value` pods or percent per `period_s`."""

    kind: Literal["Pods", "Percent"]
    value: int
    period_s: float


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """HPA `behavior.scaleUp` or `behavior.scaleDown`."""

    stabilization_window_s: float
    policies: tuple[ScalingPolicy, ...]
    select: Literal["Max", "Min", "Disabled"] = "Max"
    """`Max`: the policy allowing the largest change applies; `Min`: the smallest; `Disabled`: none."""


SCALE_UP = ScalingRules(0.0, (ScalingPolicy("Pods", 4, 15.0), ScalingPolicy("Percent", 100, 15.0)))
"""Kubernetes' default: no stabilization; at most max(4 pods, 100 %) more per 15 s."""

SCALE_DOWN = ScalingRules(300.0, (ScalingPolicy("Percent", 100, 15.0),))
"""Kubernetes' default: the largest recommendation of the last 300 s; down to any count per 15 s."""


LEGACY_SCALE_UP_FACTOR, LEGACY_SCALE_UP_MINIMUM = 2, 4
DOWNSCALE_STABILIZATION_S = 300.0
# KEDA's default `fallback.failureThreshold`.
FALLBACK_FAILURE_THRESHOLD = 3


@dataclass(frozen=True, slots=True)
class ScalingConfig:
    """The ScaledObject's settings and the HPA behavior KEDA gives it (defaults are KEDA's and the HPA's)."""

    polling_interval_s: float = 30.0
    """KEDA `pollingInterval`: how often IsActive is asked (activation from and return to zero)."""

    cooldown_period_s: float = 300.0
    """KEDA `cooldownPeriod`: inactive this long -> back to 0 (only when minReplicaCount is 0)."""

    min_replica_count: int = 0
    """KEDA `minReplicaCount`; the HPA's own minimum is max(1, this)."""

    max_replica_count: int = 100
    """KEDA `maxReplicaCount`."""

    hpa_sync_s: float = 15.0
    """The HPA controller's sync period (`--horizontal-pod-autoscaler-sync-period`)."""

    tolerance: float = HPA_TOLERANCE
    """The HPA's tolerance: no change while the usage ratio is within 1 +/- this."""

    behavior: bool = False
    """Whether the ScaledObject sets `advanced.horizontalPodAutoscalerConfig.behavior`; without it
    the HPA takes its legacy path (see the module docstring)."""

    scale_up: ScalingRules = SCALE_UP
    """`behavior.scaleUp` (with `behavior`)."""

    scale_down: ScalingRules = SCALE_DOWN
    """`behavior.scaleDown` (with `behavior`)."""

    downscale_stabilization_s: float = DOWNSCALE_STABILIZATION_S
    """The controller's `--horizontal-pod-autoscaler-downscale-stabilization` (the legacy path)."""

    fallback_replicas: int | None = None
    """KEDA `fallback.replicas`; None: no `fallback` block (the HPA keeps the replicas while the
    scaler fails)."""

    fallback_failure_threshold: int = FALLBACK_FAILURE_THRESHOLD
    """KEDA `fallback.failureThreshold`: failed metric reads in a row before the fallback applies."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("polling_interval_s", "hpa_sync_s"):
            if not 0 < getattr(self, name) < math.inf:
                problems.append(f"{name} is {getattr(self, name)}; it must be > 0")
        if not 0 <= self.min_replica_count <= self.max_replica_count or self.max_replica_count < 1:
            problems.append(
                f"min_replica_count ({self.min_replica_count}) and max_replica_count "
                f"({self.max_replica_count}) must satisfy 0 <= min <= max, max >= 1"
            )
        if self.cooldown_period_s < 0 or self.tolerance < 0 or self.downscale_stabilization_s < 0:
            problems.append("cooldown_period_s, tolerance and downscale_stabilization_s must be >= 0")
        if self.fallback_failure_threshold < 1 or (self.fallback_replicas or 0) < 0:
            problems.append(
                f"fallback_failure_threshold ({self.fallback_failure_threshold}) must be >= 1 and "
                f"fallback_replicas ({self.fallback_replicas}) >= 0"
            )
        if problems:
            raise ValueError("ScalingConfig: " + "; ".join(problems))

    @property
    def hpa_min_replicas(self) -> int:
        """The HPA's minReplicas as KEDA sets it."""
        return max(1, self.min_replica_count)

    @property
    def down_window_s(self) -> float:
        """The scale-down stabilization window in effect."""
        return self.scale_down.stabilization_window_s if self.behavior else self.downscale_stabilization_s

    def without_down_stabilization(self) -> ScalingConfig:
        """These settings with no scale-down stabilization (what the clairvoyant floor is run with)."""
        if self.behavior:
            rules = dataclasses.replace(self.scale_down, stabilization_window_s=0.0)
            return dataclasses.replace(self, scale_down=rules)
        return dataclasses.replace(self, downscale_stabilization_s=0.0)

    def scale_up_reach(self, replicas: int) -> int:
        """The most replicas one HPA period can move to from `replicas` (> 0), by the rules in effect."""
        if not self.behavior:
            return max(LEGACY_SCALE_UP_FACTOR * replicas, LEGACY_SCALE_UP_MINIMUM)
        rules = self.scale_up
        return rate_limit(rules, replicas, [replicas] * len(rules.policies), up=True)


def _milli(number: float) -> int:
    """KEDA rounds metric values to 3 decimals; NaN, +-Inf and negatives become 0."""
    return round(number * 1000) if math.isfinite(number) and number > 0 else 0


def hpa_desired(value: float, target: float, current: int, tolerance: float) -> int:
    """Replicas the HPA's replica calculator proposes for an External AverageValue metric."""
    usage, per_pod = _milli(value), _milli(target)
    if per_pod <= 0:
        raise ValueError(f"target is {target}; an AverageValue target must be at least 0.001")
    if current > 0 and abs(1.0 - usage / (per_pod * current)) <= tolerance:
        return current
    return math.ceil(usage / per_pod)


class Autoscaler:
    """KEDA + HPA state for one ScaledObject: recommendations, scale events, last active time."""

    def __init__(self, config: ScalingConfig, replicas: int, now_s: float) -> None:
        self.config = config
        self._last_active_s = now_s
        # As if the deployment had held its initial size before the trace starts.
        self._recommendations: deque[tuple[float, int]] = deque([(now_s, replicas)])
        self._ups: deque[tuple[float, int]] = deque()
        self._downs: deque[tuple[float, int]] = deque()
        periods = [
            policy.period_s for rules in (config.scale_up, config.scale_down) for policy in rules.policies
        ]
        self._event_memory_s = max(periods, default=0.0)

    def keda_poll(self, now_s: float, active: bool, current: int) -> int:
        """KEDA's scale loop: the replicas after one IsActive answer."""
        config = self.config
        if current == 0 and active:
            self._last_active_s = now_s
            return config.hpa_min_replicas
        if not active and current > 0 and config.min_replica_count == 0:
            if self._last_active_s + config.cooldown_period_s < now_s:
                return 0
            return current
        if not active and current < config.min_replica_count:
            return config.min_replica_count
        if active:
            self._last_active_s = now_s
        return current

    def hpa_sync(self, now_s: float, value: float, target: float, current: int) -> int:
        """One HPA sync: the replicas after it, given the metric's total `value` and per-replica `target`."""
        config = self.config
        if current == 0:
            return 0  # the HPA does not scale from zero; KEDA does
        if current > config.max_replica_count:
            desired = config.max_replica_count
        elif current < config.hpa_min_replicas:
            desired = config.hpa_min_replicas
        else:
            proposal = hpa_desired(value, target, current, config.tolerance)
            if config.behavior:
                desired = self._rate_limited(now_s, current, self._stabilized(now_s, current, proposal))
            else:
                desired = self._legacy(now_s, current, proposal)
        if desired > current:
            self._ups.append((now_s, desired - current))
        elif desired < current:
            self._downs.append((now_s, current - desired))
        return desired

    def _legacy(self, now_s: float, current: int, proposal: int) -> int:
        """`normalizeDesiredReplicas`: stabilize, then limit the scale-up, then clamp.

        The stabilized value is the largest recommendation within the window; here the
        recommendations are kept as a sliding-window maximum (oldest first, each larger than every
        later one: a recommendation no larger than a newer one can never be the largest again), so
        the front is the answer without a pass over the window at every sync."""
        window = self.config.downscale_stabilization_s
        kept = self._recommendations
        while kept and kept[0][0] <= now_s - window:
            kept.popleft()
        stabilized = max(proposal, kept[0][1]) if kept else proposal
        while kept and kept[-1][1] <= proposal:
            kept.pop()
        kept.append((now_s, proposal))
        config = self.config
        limit = max(LEGACY_SCALE_UP_FACTOR * current, LEGACY_SCALE_UP_MINIMUM)
        return min(max(min(stabilized, limit), config.hpa_min_replicas), config.max_replica_count)

    def _stabilized(self, now_s: float, current: int, proposal: int) -> int:
        up_window = self.config.scale_up.stabilization_window_s
        down_window = self.config.scale_down.stabilization_window_s
        up, down = proposal, proposal
        for at_s, recommendation in self._recommendations:
            if at_s > now_s - up_window:
                up = min(up, recommendation)
            if at_s > now_s - down_window:
                down = max(down, recommendation)
        self._recommendations.append((now_s, proposal))
        oldest = now_s - max(up_window, down_window)
        while self._recommendations and self._recommendations[0][0] <= oldest:
            self._recommendations.popleft()
        return min(max(current, up), down)

    def _rate_limited(self, now_s: float, current: int, desired: int) -> int:
        config = self.config
        if desired > current:
            limit = max(current, self._limit(config.scale_up, now_s, current, up=True))
            return min(desired, limit, config.max_replica_count)
        if desired < current:
            limit = min(current, self._limit(config.scale_down, now_s, current, up=False))
            return max(desired, limit, config.hpa_min_replicas)
        return desired

    def _limit(self, rules: ScalingRules, now_s: float, current: int, *, up: bool) -> int:
        for events in (self._ups, self._downs):
            while events and events[0][0] <= now_s - self._event_memory_s:
                events.popleft()
        starts = []
        for policy in rules.policies:
            added = sum(change for at_s, change in self._ups if at_s > now_s - policy.period_s)
            deleted = sum(change for at_s, change in self._downs if at_s > now_s - policy.period_s)
            starts.append(current - added + deleted)
        return rate_limit(rules, current, starts, up=up)


def rate_limit(rules: ScalingRules, current: int, period_starts: Sequence[int], *, up: bool) -> int:
    """The farthest `rules` let the HPA move from `current`, given the replicas at the start of each
    policy's period (`calculateScaleUpLimitWithScalingRules` / `...ScaleDownLimitWithBehaviors`)."""
    if rules.select == "Disabled" or not rules.policies:
        return current
    proposals = []
    for policy, start in zip(rules.policies, period_starts, strict=True):
        if policy.kind == "Pods":
            proposals.append(start + policy.value if up else start - policy.value)
        elif up:
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
        else:
            proposals.append(int(start * (1 - policy.value / 100)))
    # "Max" is the largest change: the highest limit up, the lowest limit down.
    largest_change = (rules.select == "Max") == up
    return max(proposals) if largest_change else min(proposals)
