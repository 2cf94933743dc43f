"""What `/targets` shows of a target's predictive state: the bound it serves and how that bound is
corrected, and its measured lead time. Views only: nothing here changes what is served."""

from __future__ import annotations

import math

from scaler.choice import CANDIDATES
from scaler.predictor import Predictor
from scaler.readiness import ReadinessTracker
from scaler.trigger import TriggerConfig


def finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those are shown as null."""
    return value if value is not None and math.isfinite(value) else None


def describe_served(predictor: Predictor, config: TriggerConfig) -> dict[str, object]:
    """Which pipeline's bound is served and why (`scaler.choice`), and how it is corrected online
    (`scaler.calibration`, `scaler.bursts`)."""
    slo, choice = predictor.slo, predictor.choice
    burst = choice.burst(choice.serving)
    return {
        "pipeline": choice.serving,
        "pipeline_why": choice.serving_why,
        "pipeline_cost": {name: finite(choice.cost(name)) for name in CANDIDATES},
        "coverage_scale": round(predictor.served.scale, 4),
        "no_forecast_rise_rps": None if predictor.rise is None else round(predictor.rise, 6),
        "bound_coverage": finite(predictor.served.coverage),
        "quantile": config.quantile,
        "slo_factor": round(slo.factor, 4) if slo is not None else None,
        "slo_share": finite(slo.share) if slo is not None else None,
        "slo_held": slo.held if slo is not None else None,
        "error_budget": config.error_budget,
        "burst_reserve": None if burst is None else round(burst.value, 6),
        "bursts": None if burst is None else burst.bursts,
        "share_after_burst": None if burst is None else finite(burst.share_after),
    }


def describe_lead(readiness: ReadinessTracker, used_s: float) -> dict[str, object]:
    """`leadTime: auto`: the lead time used, and the start-ups it was measured from (`scaler.readiness`)."""
    estimate = readiness.estimate()
    return {
        "used_s": used_s,
        "measured": estimate.measured,
        "p50_s": finite(estimate.p50_s),
        "upper_s": finite(estimate.upper_s),
        "quantile": estimate.quantile,
        "startups": estimate.startups,
        "pending": readiness.pending,
    }
