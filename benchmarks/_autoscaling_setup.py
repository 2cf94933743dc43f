"""The autoscaling benchmark's scenario: the traces, the service, and the settings every policy gets.

The same for every trace (no per-trace tuning); `benchmarks.autoscaling` runs it and
`benchmarks._autoscaling_report` writes it up.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from forecasting.base import DAY_S
from scaler.sim import ClusterConfig
from scaler.sim.compare import demand_at_step
from scaler.sim.predictive import PredictiveSettings
from scaler.traces import Trace, load_trace

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
README = ROOT / "benchmarks" / "README.md"
RESULTS = ROOT / "benchmarks" / "autoscaling_results.json"
PLOTS = ROOT / "benchmarks" / "plots"
BEGIN, END = "<!-- autoscaling:begin -->", "<!-- autoscaling:end -->"
SECTION = "## Autoscaling: predictive vs reactive vs oracle"

STEP_S = 60.0
HISTORY_DAYS = 7.0
PEAK_REPLICAS = 20.0
STARTUPS_S = (60.0, 180.0, 600.0)
PLOTTED_STARTUP_S = 180.0
# The service: 8 slots, 1 s per request, p99 within 2 s (so a request may wait 1 s).
CLUSTER = ClusterConfig(concurrency=8, service_time_s=1.0, slo_s=2.0)
# The user-settable knobs, the same for every trace.
# `threshold` is left to its default: a replica's full concurrency for predictive, which knows the
# replicas (`replicasQuery`) and raises a value past the HPA's tolerance when it needs another one;
# 0.9 x that for holt_winters, which, like the predictive-HPA projects, does not.
SETTINGS = PredictiveSettings(
    replicas_known=True,
    quantile=0.9,
    refit_interval_s=3600.0,
    history_s=HISTORY_DAYS * DAY_S,
)


class Spec(NamedTuple):
    name: str
    paths: tuple[str, ...]
    """Summed when more than one (ServeGen: a model's clients)."""
    kind: str
    """`diurnal` (the acceptance applies), `spiky` or `noisy`."""
    note: str
    resolution_s: float | None = None
    """Average the trace to this step first (its load is then interpolated to STEP_S)."""


TRACES = (
    Spec("nyc_taxi", ("nab/realKnownCause/nyc_taxi.csv",), "diurnal", "NAB, 30 min, daily + weekly"),
    Spec("nasa_http", ("nasa_http_1995/workload.txt",), "diurnal", "NASA web server, 5 min means", 300.0),
    Spec(
        "servegen_llm",
        ("servegen/language/m-mid", "servegen/language/m-small"),
        "diurnal",
        "ServeGen m-mid + m-small LLM request rate, 10 min",
    ),
    Spec(
        "elb_requests", ("nab/realAWSCloudwatch/elb_request_count_8c0756.csv",), "spiky", "NAB AWS ELB, 5 min"
    ),
    Spec(
        "twitter_goog",
        ("nab/realTweets/Twitter_volume_GOOG.csv",),
        "spiky",
        "NAB tweets, 5 min, viral spikes",
    ),
    Spec("nasa_http_1min", ("nasa_http_1995/workload.txt",), "noisy", "NASA web server, 1 min means", 60.0),
)
QUICK = ("nyc_taxi", "elb_requests")
# A burst: demand up by BURST_RISE within BURST_OVER_MIN minutes; its aftermath: the next BURST_AFTER_MIN.
BURST_RISE, BURST_OVER_MIN, BURST_AFTER_MIN = 0.5, 5, 10


def load(spec: Spec, data: Path) -> Trace:
    """The spec's trace(s) as demand at STEP_S, summed over its files on their common minutes."""
    parts = []
    for relative in spec.paths:
        trace = load_trace(data / relative)
        if spec.resolution_s is not None:
            trace = demand_at_step(trace, spec.resolution_s)
        parts.append(demand_at_step(trace, STEP_S))
    start = max(float(p.at_s[0]) for p in parts)
    end = min(float(p.at_s[-1]) for p in parts)
    total = None
    for part in parts:
        keep = (part.at_s >= start) & (part.at_s <= end)
        total = part.values[keep] if total is None else total + part.values[keep]
        at_s = part.at_s[keep]
    assert total is not None
    return Trace(spec.name, at_s, total, STEP_S)
