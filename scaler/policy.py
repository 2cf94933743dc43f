"""The decision rule: (observed value, optional forecast bound, TriggerConfig) -> Decision. Pure.

Reactive mode answers with what is observed now, as KEDA's Prometheus scaler does. The forecast
hook takes an upper bound of the load expected over the pod start-up lead time; the answer is never
below what is observed now, so a wrong forecast can delay a scale-down but never cause one.
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
    """Which term won and why, e.g. `observed` or `forecast(ensemble)`."""


def decide(
    at_s: float, observed: float, config: TriggerConfig, forecast_bound: float | None = None
) -> Decision:
    """The value KEDA should see now.

    `forecast_bound` is the chosen quantile of the forecast, maximised over [now, now + lead time];
    None in reactive mode or when no forecast is available.
    """
    seen = observed if math.isfinite(observed) and observed > 0 else 0.0
    value, reason = seen, "observed"
    if forecast_bound is not None and math.isfinite(forecast_bound) and forecast_bound > seen:
        value, reason = forecast_bound, "forecast"
    return Decision(at_s, value, value > config.activation_threshold, seen, reason)
