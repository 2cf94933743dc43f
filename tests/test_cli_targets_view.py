"""The `/targets` entry of a forecasting target: its model, bound and reason beside what is served."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from scaler.forecast_pool import ForecastPool
from scaler.refresher import Refresher, TargetKey
from scaler.sources.replay import ReplaySource
from scaler.telemetry import Telemetry
from scaler.trigger import parse_trigger
from tests.servers import FakeClock, walk

DAY = 86400.0
EPOCH = 1_700_438_400.0


async def test_a_shadow_target_shows_its_model_and_bound_beside_the_reactive_answer(tmp_path: Path) -> None:
    at = EPOCH + np.arange(0, 10 * DAY, 300.0)
    values = 50 + 40 * np.sin(2 * np.pi * at / DAY)
    rows = "\n".join(f"{a:.0f},{v:.4f}" for a, v in zip(at, values, strict=True))
    (tmp_path / "load.csv").write_text("timestamp,value\n" + rows + "\n")
    clock = FakeClock()
    config = parse_trigger(
        {
            "source": "replay",
            "trace": "load.csv",
            "threshold": "10",
            "step": "5m",
            "history": "7d",
            "mode": "shadow",
            "refitInterval": "6h",
        }
    )
    refresher = Refresher(
        TargetKey("serving", "llm", "cd" * 32),
        config,
        ReplaySource(tmp_path / "load.csv", clock=clock),
        Telemetry(CollectorRegistry()),
        max_age_s=600,
        pool=ForecastPool(1, executor=ThreadPoolExecutor(1)),
        wall=clock,
    )
    await walk(refresher, clock, EPOCH + 8 * DAY, 2)
    view = refresher.describe()
    json.dumps(view, allow_nan=False)  # JSON as served: no NaN
    assert view["mode"] == "shadow" and view["namespace"] == "serving" and view["name"] == "llm"
    assert view["served"] == view["observed"] and view["reason"] == "observed"  # shadow serves reactively
    assert isinstance(view["model"], str) and view["model"]
    assert isinstance(view["bound"], float) and view["bound"] > 0
    assert isinstance(view["forecast"], str) and view["model"] in view["forecast"]
    assert view["last_error"] is None and view["unavailable"] is None
    clock.advance(601)  # older than max age: the view says why KEDA gets UNAVAILABLE
    stale = refresher.describe()
    assert stale["served"] is None and "StaleValue" in str(stale["unavailable"])
    await refresher.aclose()
