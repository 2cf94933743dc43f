"""Predictive and shadow mode through the refresher, on replayed traces and a fake clock."""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from forecasting.forecaster import Forecaster
from forecasting.prepare import prepare
from scaler.errors import SourceUnreachable
from scaler.forecast_pool import ForecastPool
from scaler.history import History
from scaler.leadtime import (
    LeadBound,
    flat_in_flight,
    forecast_config,
    in_flight_bound,
    in_flight_centre,
    measured_service_time_s,
)
from scaler.refresher import Refresher, TargetKey
from scaler.registry import open_sources
from scaler.settings import Settings
from scaler.sources.base import Source
from scaler.sources.replay import ReplaySource
from scaler.telemetry import Telemetry
from scaler.trigger import TriggerConfig, parse_trigger
from tests.servers import DAY, EPOCH, Counts, FakeClock, diurnal, side_query_refresher, walk


def make(trace_dir: Path, clock: FakeClock, **meta: str) -> tuple[Refresher, CollectorRegistry]:
    config = parse_trigger(
        {"source": "replay", "trace": "diurnal.csv", "threshold": "10", "step": "5m", "history": "7d", **meta}
    )
    # speed 1 and a period of exactly 10 days: the replay at unix time t is the trace at t.
    source = ReplaySource(trace_dir / "diurnal.csv", clock=clock)
    registry = CollectorRegistry()
    pool = ForecastPool(1, executor=ThreadPoolExecutor(1))
    key = TargetKey("serving", "llm", "ab" * 32)
    refresher = Refresher(key, config, source, Telemetry(registry), max_age_s=600, pool=pool, wall=clock)
    return refresher, registry


async def test_predictive_value_rises_ahead_of_the_morning_ramp_by_the_lead_time(trace_dir: Path) -> None:
    clock = FakeClock()
    refresher, registry = make(trace_dir, clock, mode="predictive", leadTime="1h", refitInterval="6h")
    day8 = EPOCH + 8 * DAY
    seen = await walk(refresher, clock, day8 + 3 * 3600, 60)

    def first_above(column: int, level: float) -> float:
        return next(t for t, *values in seen if values[column - 1] >= level)

    observed_at = first_above(1, 40.0)
    predicted_at = first_above(2, 40.0)
    lead = observed_at - predicted_at
    assert 1800 <= lead <= 5400, f"rose {lead / 60:.0f} min ahead; expected about 60"
    assert all(value >= observed for _, observed, value in seen)
    assert registry.get_sample_value(
        "prescaler_target_value",
        {"namespace": "serving", "name": "llm", "metric": "prescaler", "kind": "bound"},
    )
    assert registry.get_sample_value("prescaler_refits_total", {"outcome": "ok"}) >= 1
    assert registry.get_sample_value("prescaler_time_to_first_forecast_seconds_count") == 1


async def test_shadow_answers_reactively_and_exports_the_forecast_and_its_accuracy(trace_dir: Path) -> None:
    clock = FakeClock()
    refresher, registry = make(trace_dir, clock, mode="shadow", leadTime="30m", refitInterval="6h")
    seen = await walk(refresher, clock, EPOCH + 8 * DAY + 6 * 3600, 24)
    assert all(value == observed for _, observed, value in seen)
    labels = {"namespace": "serving", "name": "llm", "metric": "prescaler"}
    assert registry.get_sample_value("prescaler_target_value", {**labels, "kind": "forecast"}) is not None
    mase = registry.get_sample_value("prescaler_forecast_quality", {**labels, "score": "mase"})
    coverage = registry.get_sample_value("prescaler_forecast_quality", {**labels, "score": "coverage"})
    assert mase is not None and mase < 1.0  # beats persistence on a clean daily cycle
    assert coverage is not None and 0.0 <= coverage <= 1.0
    # The served quantity's own score: the bound, in the trigger's units, against the observed peak.
    served = registry.get_sample_value("prescaler_bound_coverage", labels)
    assert refresher.predictor is not None and refresher.predictor.served.evaluations >= 12
    assert served == refresher.predictor.served.coverage
    assert served is not None and served >= 0.5  # a clean daily cycle at q = 0.9
    # Which pipeline is served, each one's cost; no_forecast needs `rateQuery`, so it has none here.
    chosen = refresher.describe()["served_bound"]["pipeline"]
    assert refresher.describe()["served_bound"]["no_forecast_rise_rps"] is None
    for kind in ("forecast", "no_forecast", "reactive"):
        flag = registry.get_sample_value("prescaler_pipeline", {**labels, "kind": kind})
        assert flag == (1.0 if kind == chosen else 0.0)
    cost = registry.get_sample_value("prescaler_pipeline_cost", {**labels, "kind": "forecast"})
    assert cost is not None and cost > 0
    assert registry.get_sample_value("prescaler_pipeline_cost", {**labels, "kind": "no_forecast"}) is None


async def test_a_burst_reserve_is_exported_and_described_and_zero_on_a_clean_daily_cycle(
    trace_dir: Path,
) -> None:
    """`burstReserve: true` on the replayed daily cycle: nothing bursts, so the reserve exported and
    shown in /targets is 0 and the values are those of the same target without it."""
    labels = {"namespace": "serving", "name": "llm", "metric": "prescaler"}
    answers = {}
    for flag in ("true", "false"):
        clock = FakeClock()
        refresher, registry = make(
            trace_dir, clock, mode="predictive", leadTime="30m", refitInterval="6h", burstReserve=flag
        )
        answers[flag] = await walk(refresher, clock, EPOCH + 8 * DAY + 6 * 3600, 24)
        served = refresher.describe()["served_bound"]
        reserve = registry.get_sample_value("prescaler_burst_reserve", labels)
        if flag == "true":
            assert reserve == 0.0
            assert served["burst_reserve"] == 0.0 and served["bursts"] == 0
        else:
            assert reserve is None and served["burst_reserve"] is None
    assert answers["true"] == answers["false"]


async def test_a_failing_fit_leaves_the_target_reactive_with_the_reason(trace_dir: Path) -> None:
    class Broken(ThreadPoolExecutor):
        def submit(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def, override]
            raise RuntimeError("worker died")

    clock = FakeClock(EPOCH + 8 * DAY)
    refresher, registry = make(trace_dir, clock, mode="predictive")
    assert refresher.predictor is not None
    refresher.predictor._pool = ForecastPool(1, executor=Broken(1))
    await refresher.refresh()
    await refresher.predictor.settled()
    await refresher.refresh()
    decision = refresher.current()
    assert (decision.reason, decision.value) == ("observed", decision.observed)
    assert registry.get_sample_value("prescaler_refits_total", {"outcome": "failed"}) == 1


def test_forecast_config_covers_refit_interval_plus_lead_time() -> None:
    config = parse_trigger(
        {"source": "replay", "trace": "x", "threshold": "1", "leadTime": "10m", "refitInterval": "1h"}
    )
    forecast = forecast_config(config)
    assert forecast.horizon_steps * 300 >= 3600 + 600
    assert forecast.weekly
    flat = forecast_config(
        parse_trigger({"source": "replay", "trace": "x", "threshold": "1", "seasonality": "none"})
    )
    assert (flat.season_s, flat.weekly) == (300.0, False)


def test_in_flight_bound_adds_the_poisson_spread_of_requests_in_service() -> None:
    flat = np.array([10.0, 10.0])
    exact = LeadBound(10.0, 10.0, "m", "", flat, flat, 0.9)  # a rate forecast with no error
    # 10 req/s x 2 s = 20 in flight on average; Poisson(20) at 0.9: 20 + 1.2816 x sqrt(20).
    assert in_flight_bound(exact, 2.0) == pytest.approx(20 + 1.2815516 * math.sqrt(20))
    wide = exact._replace(uppers=np.array([13.0, 12.0]), upper=13.0)
    # The rate's margin (3 x 2 = 6) and the Poisson spread add in quadrature, at the widest step.
    assert in_flight_bound(wide, 2.0) == pytest.approx(20 + math.hypot(6.0, 1.2815516 * math.sqrt(20)))
    # no_forecast's bound, computed without arrays, is the same float as a flat forecast's.
    for rate, scale, q in ((10.0, 2.0, 0.9), (0.0, 1.0, 0.5), (1234.5, 0.37, 0.98)):
        flat_lead = LeadBound(rate, rate, "none", "", np.array([rate]), np.array([rate]), q)
        assert flat_in_flight(rate, scale, q) == (
            in_flight_centre(flat_lead, scale),
            in_flight_bound(flat_lead, scale),
        )
    busy = LeadBound(1000.0, 1000.0, "m", "", np.full(2, 1000.0), np.full(2, 1000.0), 0.9)
    assert in_flight_bound(busy, 2.0) / 2000.0 < 1.03  # square-root staffing: relatively small
    assert in_flight_bound(LeadBound(None, math.nan, "none", "no model"), 2.0) is None


def test_littles_law_service_time_from_unqueued_times() -> None:
    in_flight, rate = History(15, 100), History(15, 100)
    for i in range(40):
        at = i * 15.0
        lam = 10.0 + i
        in_flight.append(at, lam * 2.0 * (1.5 if i % 4 == 0 else 1.0))  # 2 s in service, queueing at times
        rate.append(at, lam)
    assert measured_service_time_s(in_flight, rate) == pytest.approx(2.0)
    assert measured_service_time_s(History(15, 10), History(15, 10)) is None


async def test_the_real_worker_process_pool_fits_and_returns_the_forecaster() -> None:
    at = EPOCH + np.arange(0, 3 * DAY, 300.0)
    series = prepare(at, diurnal(at), 300.0, season_steps=288)
    pool = ForecastPool(1)
    try:
        outcome = await pool.fit(Forecaster(), series)
    finally:
        pool.close()
    assert outcome.model != "none"
    forecast = outcome.forecaster.forecast(6, 0.9)
    assert np.all(np.isfinite(forecast.upper)) and math.isfinite(outcome.seconds)
    assert np.all(forecast.upper >= forecast.mean)


def test_settings_default_pool_size_is_at_least_one() -> None:
    assert Settings().forecast_workers >= 1


async def test_lead_time_auto_provisions_ahead_by_the_measured_start_up(
    trace_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Replicas asked for every hour from day 7 on, each ready an hour later: once 5 start-ups are
    timed, the lead time is 1 h, not the 5 min fallback, and the value rises about an hour ahead of
    the morning ramp (as with `leadTime: 1h` above)."""
    caplog.set_level(logging.INFO, "scaler.refresher")
    clock = FakeClock()
    day7 = EPOCH + 7 * DAY

    def asked(t: float) -> float:
        return 1 + max(0, (t - day7) // 3600)

    replicas, ready = Counts(clock, asked), Counts(clock, lambda t: asked(t - 3600))
    meta = {"leadTime": "auto", "leadTimeFallback": "5m", "replicasQuery": "asked", "readyQuery": "ready"}
    refresher, registry = side_query_refresher(
        trace_dir, clock, meta, replicas_source=replicas, ready_source=ready
    )
    labels = {"namespace": "serving", "name": "llm", "metric": "prescaler"}

    def lead(kind: str) -> float | None:
        return registry.get_sample_value("prescaler_lead_time_seconds", {**labels, "kind": kind})

    await walk(refresher, clock, day7 - 600, 56)  # to 04:30 on day 7
    assert lead("used") == 300.0  # the fallback: 3 start-ups timed so far
    assert refresher.describe()["lead_time"] == {
        "used_s": 300.0,
        "measured": False,
        "p50_s": 3600.0,
        "upper_s": 3600.0,
        "quantile": 0.9,
        "startups": 3,
        "pending": 1,
    }
    day8 = EPOCH + 8 * DAY
    seen = await walk(refresher, clock, day8 + 3 * 3600, 60)
    assert lead("used") == 3600.0 and lead("p50") == 3600.0
    timed = registry.get_sample_value("prescaler_lead_time_startups", {**labels, "kind": "timed"})
    assert timed is not None and timed >= 5
    assert caplog.text.count("lead time measured: 1h (p90 of") == 1  # when it changed, not every step

    def first_above(column: int, level: float) -> float:
        return next(t for t, *values in seen if values[column - 1] >= level)

    ahead = first_above(1, 40.0) - first_above(2, 40.0)
    assert 1800 <= ahead <= 5400, f"rose {ahead / 60:.0f} min ahead; expected about 60"

    # A ready count that cannot be read stops the timing, is logged once, and keeps the lead time.
    ready.failing = SourceUnreachable("prometheus http://prometheus.test:9090: connection refused")
    await walk(refresher, clock, clock.now_s, 3)
    assert registry.get_sample_value("prescaler_ready_errors_total", {"error": "SourceUnreachable"}) == 4
    assert caplog.text.count("reading the ready replicas (`readyQuery`) failed") == 1
    assert lead("used") == 3600.0


@pytest.mark.parametrize("mode", ["predictive", "shadow"])
def test_lead_time_auto_opens_both_replica_counts_in_either_mode(mode: str) -> None:
    meta = {
        "serverAddress": "http://prometheus.test:9090",
        "query": "load",
        "threshold": "10",
        "mode": mode,
        "leadTime": "auto",
        "replicasQuery": "asked",
        "readyQuery": "ready",
    }
    opened: list[tuple[str | None, bool]] = []

    def factory(config: TriggerConfig, settings: Settings, namespace: str = "") -> Source:
        opened.append((config.query, config.ignore_null_values))
        return Counts(FakeClock(), lambda t: 1.0)

    sources = open_sources(parse_trigger(meta), Settings(), factory)
    assert sources.replicas is not None and sources.ready is not None and sources.rate is None
    # An empty count is unknown, not 0 replicas, whatever ignoreNullValues says for the signal.
    assert opened == [("asked", False), ("ready", False), ("load", True)]
