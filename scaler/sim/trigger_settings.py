"""The ScaledObject trigger a simulated user writes for prescaler's predictive mode. Pure.

`trigger_config` builds the metadata a user would write and parses it with the scaler's own parser
(`scaler.trigger.parse_trigger`), so its validation applies; `PredictiveSettings` are the choices a
user makes, turned into that trigger for a scenario's service.
"""

from __future__ import annotations

from dataclasses import dataclass

from forecasting.base import DAY_S
from scaler.bursts import BURST_BAND, HORIZON_S
from scaler.calibration import GAIN, SLO_GAIN
from scaler.sim.interface import Scenario
from scaler.trigger import HPA_TOLERANCE, TriggerConfig, parse_trigger
from scaler.units import format_duration

# The trigger's Prometheus fields must be set for `rateQuery` to be accepted; nothing is queried.
SIMULATED_ADDRESS = "http://simulated.invalid"
# The default threshold as a share of one replica's concurrency (see PredictiveSettings.threshold):
# the full concurrency when the replicas are known, else 0.9 of it.
THRESHOLD_SHARE, THRESHOLD_SHARE_BLIND = 1.0, 0.9
# What `sloQuery` reads in the simulation: the newest final minute's verdict (`Signals.slo_violating`).
SIMULATED_SLO_QUERY = "histogram_quantile(0.99, sum by (le) (rate(latency_bucket[1m]))) > bool 2"
# The query names the simulated trigger carries (nothing is queried).
SIMULATED_QUERIES = {"query": "in_flight", "rateQuery": "arrival_rate", "replicasQuery": "replicas"}


def trigger_config(
    *,
    threshold: float,
    lead_time_s: float,
    quantile: float = 0.9,
    refit_interval_s: float = 3600.0,
    history_s: float = 7 * DAY_S,
    service_time_s: float | None = None,
    step_s: float = 15.0,
    seasonality: str = "daily,weekly",
    activation_threshold: float = 0.0,
    replicas_known: bool = True,
    hpa_tolerance: float = HPA_TOLERANCE,
    lead_time_auto: bool = False,
    pipeline: str = "auto",
    error_budget: float | None = None,
    burst_reserve: bool = False,
) -> TriggerConfig:
    """The ScaledObject trigger a user would write for predictive mode on a rate query, parsed by
    the scaler's own parser (so its validation applies); `service_time_s` None: measured;
    `replicas_known`: with a `replicasQuery`, and `hpaTolerance` when not the HPA's default;
    `lead_time_auto`: `leadTime: auto` with `readyQuery`, `lead_time_s` its `leadTimeFallback`;
    `error_budget`: `sloQuery` (the newest final minute's verdict) with that `errorBudget`."""
    queries = dict(SIMULATED_QUERIES)
    if not replicas_known:
        del queries["replicasQuery"]
    elif hpa_tolerance != HPA_TOLERANCE:
        queries["hpaTolerance"] = repr(float(hpa_tolerance))
    lead = {"leadTime": format_duration(lead_time_s)}
    if lead_time_auto:
        lead = {"leadTime": "auto", "leadTimeFallback": format_duration(lead_time_s), "readyQuery": "ready"}
    metadata = {
        "mode": "predictive",
        "serverAddress": SIMULATED_ADDRESS,
        **queries,
        "threshold": repr(float(threshold)),
        "activationThreshold": repr(float(activation_threshold)),
        "step": format_duration(step_s),
        "timeout": format_duration(min(3.0, step_s / 2)),
        **lead,
        "quantile": repr(float(quantile)),
        "refitInterval": format_duration(refit_interval_s),
        "history": format_duration(history_s),
        "seasonality": seasonality,
        "pipeline": pipeline,
        "burstReserve": "true" if burst_reserve else "false",
    }
    if service_time_s is not None:
        metadata["serviceTime"] = format_duration(service_time_s)
    if error_budget is not None:
        metadata["sloQuery"] = SIMULATED_SLO_QUERY
        metadata["errorBudget"] = repr(float(error_budget))
    return parse_trigger(metadata)


@dataclass(frozen=True, slots=True)
class PredictiveSettings:
    """The trigger settings a user chooses for predictive mode; None takes the service's value."""

    threshold: float | None = None
    """`threshold`: in-flight requests per replica; None: one replica's concurrency with
    `replicas_known`, else THRESHOLD_SHARE_BLIND of it, since the HPA ignores a ratio within 10 %
    of 1 (its tolerance): at the full concurrency, a forecast up to 10 % above the replicas there
    are would not add one."""

    replicas_known: bool = True
    """Set `replicasQuery`, so that values are raised past the HPA's tolerance when they need more
    replicas (`scaler.policy.past_tolerance`)."""

    lead_time_s: float | None = None
    """`leadTime`; None: the start-up delay plus one KEDA polling interval. With `lead_time_auto`,
    the `leadTimeFallback`."""

    lead_time_auto: bool = False
    """`leadTime: auto`: the lead time measured from the replicas asked for and ready, as the
    Deployment's metrics show them (one scrape late), once 5 start-ups are timed."""

    quantile: float = 0.9
    """`quantile` of the forecast to provision for."""

    refit_interval_s: float = 3600.0
    """`refitInterval`, in simulated time."""

    history_s: float = 7 * DAY_S
    """`history` fitted at each refit."""

    measure_service_time: bool = True
    """Leave `serviceTime` unset, so that the time in service is measured (Little's law), as a user
    who does not know it would; False sets it to the service's exact value."""

    step_s: float = 15.0
    """`step`: how often the signals are sampled and a decision is made."""

    pipeline: str = "auto"
    """`pipeline`: `auto` serves the cheapest of the forecast, no_forecast and reactive bounds at the
    coverage asked for (`scaler.choice`); or the one named."""

    error_budget: float | None = None
    """`errorBudget` with `sloQuery` (`Signals.slo_violating`, the share of violating minutes): the
    margin is controlled to the budget instead of set by `quantile`; None: the quantile alone."""

    burst_reserve: bool = False
    """`burstReserve`: hold a reserve after bursts when they cluster (`scaler.bursts`); off, as served
    by default."""

    burst_horizon_s: float = HORIZON_S
    """How long a reserve is held after a burst (`scaler.bursts.HORIZON_S`, as served)."""

    burst_band: float = BURST_BAND
    """What a burst exceeds the bound by, in margins (`scaler.bursts.BURST_BAND`, as served)."""

    slo_gain: float = SLO_GAIN
    """`SloControl`'s gain (`scaler.calibration.SLO_GAIN`, as served)."""

    calibration_gain: float = GAIN
    """The served bound's correction gain (`scaler.calibration.GAIN`, as served); 0 serves the
    forecast's own band, scored but never corrected."""

    def trigger(self, scenario: Scenario) -> TriggerConfig:
        """The parsed trigger for `scenario`'s service."""
        cluster = scenario.cluster
        lead_s = self.lead_time_s
        if lead_s is None:
            lead_s = cluster.startup_delay_s + scenario.scaling.polling_interval_s
        share = THRESHOLD_SHARE if self.replicas_known else THRESHOLD_SHARE_BLIND
        return trigger_config(
            threshold=cluster.concurrency * share if self.threshold is None else self.threshold,
            lead_time_s=lead_s,
            quantile=self.quantile,
            refit_interval_s=self.refit_interval_s,
            history_s=self.history_s,
            service_time_s=None if self.measure_service_time else cluster.service_time_s,
            step_s=self.step_s,
            replicas_known=self.replicas_known,
            hpa_tolerance=scenario.scaling.tolerance,
            lead_time_auto=self.lead_time_auto,
            pipeline=self.pipeline,
            error_budget=self.error_budget,
            burst_reserve=self.burst_reserve,
        )
