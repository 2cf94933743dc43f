"""The decision rule: (observed value, optional forecast bound, TriggerConfig) -> Decision. Pure.

Reactive mode answers with what is observed now, as KEDA's Prometheus scaler does. The forecast
hook takes an upper bound of the load expected over the pod start-up lead time; the answer is never
below what is observed now, so a wrong forecast can delay a scale-down but never cause one.

The HPA ignores a value whose ratio to `threshold` x current replicas is within its tolerance
(10 %): at 10 replicas, a load worth 10.8 leaves them at 10. Given the current replicas
(`replicasQuery`), such a value is raised just past the tolerance (`past_tolerance`), as a user
would otherwise do by lowering `threshold` to 0.9 x a replica's capacity, paying ~11 % more
replicas all the time instead of one more replica only when one is needed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from scaler.trigger import TriggerConfig


class Decision(NamedTuple):
    """What prescaler answers KEDA with for one target, and why."""

    at_s: float
    """Unix time of the observation the decision is based on."""
    value: float
    """Metric value returned by GetMetrics: a total over the workload, in `threshold` units."""
    active: bool
    """IsActive: `value > activationThreshold` (strict, as KEDA's scalers do)."""
    observed: float
    """The load observed at `at_s`."""
    reason: str
    """Which term won: `observed` or `forecast`, with `+tolerance` when the value was raised past
    the HPA's tolerance."""


def decide(
    at_s: float,
    observed: float,
    config: TriggerConfig,
    forecast_bound: float | None = None,
    replicas: int | None = None,
) -> Decision:
    """The value KEDA should see now.

    `forecast_bound` is the chosen quantile of the forecast, maximised over [now, now + lead time];
    None in reactive mode or when no forecast is available. `replicas`: the workload's current
    replicas (None: unknown, and the value is not adjusted to the HPA's tolerance).
    """
    seen = observed if math.isfinite(observed) and observed > 0 else 0.0
    value, reason = seen, "observed"
    if forecast_bound is not None and math.isfinite(forecast_bound) and forecast_bound > seen:
        value, reason = forecast_bound, "forecast"
    if replicas is not None:
        raised = past_tolerance(value, config.threshold, replicas, config.tolerance)
        if raised > value:
            value, reason = raised, f"{reason}+tolerance"
    return Decision(at_s, value, value > config.activation_threshold, seen, reason)


def past_tolerance(value: float, threshold: float, replicas: int, tolerance: float) -> float:
    """`value`, or, when it needs more than `replicas` replicas of `threshold` each but its ratio to
    them is within the HPA's `tolerance` (so the HPA would keep `replicas`), the smallest value in
    KEDA's thousandths whose ratio is surely past 1 + `tolerance`.

    Worked in thousandths, as KEDA hands the HPA milli-quantities: older KEDA truncates (`int64(v *
    1000)`), newer rounds (`%.3f`), the value and the target alike. A value is raised when it needs
    more replicas as either sends it, to just past the tolerance of each that needs more, and the
    raised value is the same thousandth either way. A ratio of exactly 1 + `tolerance` counts as
    within (Kubernetes 1.33+ compares inclusively; older versions' float arithmetic may not), so the
    HPA then asks ceil(replicas x (1 + tolerance)) or one more: at 10 replicas and the default
    tolerance, 11 cannot be asked for and 12 it is.
    """
    if replicas <= 0 or not math.isfinite(value) or value <= 0:
        return value
    past = 0
    for sent, target in (
        (round(value * 1000), max(round(threshold * 1000), 1)),  # newer KEDA
        (int(value * 1000), max(int(threshold * 1000), 1)),  # older KEDA
    ):
        if sent > replicas * target:  # more replicas needed, as this KEDA sends it
            past = max(past, math.floor(round(replicas * target * (1 + tolerance), 6)) + 1)
    if not past:
        return value
    # A quarter of a thousandth above `past`: truncated and rounded alike to `past`.
    return (past + 0.25) / 1000 if int(value * 1000) < past else value
