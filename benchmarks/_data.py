"""The shared traces the forecasting benchmarks run on, each prepared at its benchmark step.

Reads `../shared/data` relative to the project root (see /work/shared/DATA.md) with
`scaler.traces.load_trace`; the models only ever see `forecasting.prepare.Series`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from forecasting import Series, prepare
from scaler.traces import load_trace

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DAY_S = 86_400


class Spec(NamedTuple):
    name: str
    paths: tuple[str, ...]
    """Summed when more than one (ServeGen models)."""
    step_s: float
    character: str


SERIES = (
    Spec("nyc_taxi", ("nab/realKnownCause/nyc_taxi.csv",), 1800, "diurnal + weekly, 30 min"),
    Spec("ec2_cpu_5f5533", ("nab/realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv",), 300, "diurnal"),
    Spec("rds_cpu_cc0c53", ("nab/realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv",), 300, "diurnal"),
    Spec(
        "elb_requests_8c0756", ("nab/realAWSCloudwatch/elb_request_count_8c0756.csv",), 300, "diurnal, spiky"
    ),
    Spec("occupancy_6005", ("nab/realTraffic/occupancy_6005.csv",), 300, "rush hours, weekly"),
    Spec("twitter_goog", ("nab/realTweets/Twitter_volume_GOOG.csv",), 300, "spiky (viral)"),
    Spec("servegen_small_mid", ("servegen/language/m-small", "servegen/language/m-mid"), 600, "LLM, diurnal"),
    Spec("nasa_http", ("nasa_http_1995/workload.txt",), 300, "diurnal + weekly web"),
)


def load(spec: Spec, data: Path = DATA) -> Series:
    """The trace(s) of `spec` on its step, summed, prepared with a daily season."""
    totals: dict[float, float] = {}
    for relative in spec.paths:
        trace = load_trace(data / relative, step_s=spec.step_s)
        for at, value in zip(trace.at_s.tolist(), trace.values.tolist(), strict=True):
            totals[at] = totals.get(at, 0.0) + value
    at_s = np.array(sorted(totals), dtype=np.float64)
    values = np.array([totals[at] for at in sorted(totals)], dtype=np.float64)
    # Long gaps are filled from the day before; one longer than a day (NASA-HTTP's 3.4 days between its
    # July and August logs) from the week before, where that keeps more history than a day would.
    seasons = (round(DAY_S / spec.step_s), round(7 * DAY_S / spec.step_s))
    return max((prepare(at_s, values, spec.step_s, season_steps=s) for s in seasons), key=len)


def select(names: str | None) -> tuple[Spec, ...]:
    """The specs named in a comma-separated list (all when None); unknown names raise SystemExit."""
    if not names:
        return SERIES
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    known = {spec.name: spec for spec in SERIES}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise SystemExit(f"unknown series {unknown}; known: {', '.join(known)}")
    return tuple(known[name] for name in wanted)
