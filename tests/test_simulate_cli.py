"""`prescaler simulate` (scaler.simulate_cli) on bundled and generated traces, and on a real Prometheus."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

import scaler
from scaler.calibration import MAX_FACTOR, MIN_FACTOR
from scaler.sim.compare import POLICIES, Setup
from scaler.sim.demand import demand_at_step, split
from scaler.sim.interface import Scenario
from scaler.simulate_cli import add_parser, setup_from_args
from scaler.traces import Trace, load_trace
from tests.prometheus_server import LoadedPrometheus

TAXI = Path(scaler.__file__).parent / "traces" / "nyc_taxi_10d.csv"
POLICY_KEYS = {
    "gpu_hours",
    "slo_violation_minutes",
    "requests_over_slo_fraction",
    "dropped_requests",
    "scale_events",
}
PNG = b"\x89PNG\r\n\x1a\n"


def simulate(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="prescaler")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["simulate", *argv])
    return int(args.func(args, {}))


def test_an_output_that_cannot_be_written_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "a folder"
    folder.mkdir()
    assert simulate(["--trace", str(TAXI), "--json", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"--json {folder}: is a folder; expected a file name" in err
    assert "simulated after" not in err  # refused before the trace was even read
    fresh = tmp_path / "new.json"
    assert simulate(["--trace", str(TAXI), "--json", str(fresh), "--plot", str(folder)]) == 2
    assert f"--plot {folder}: is a folder; expected a file name" in capsys.readouterr().err
    assert not fresh.exists()  # checking --json left nothing behind


def test_writes_the_documented_json_a_png_and_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, png = tmp_path / "results" / "out.json", tmp_path / "figures" / "out.png"  # folders created
    code = simulate(
        [
            *("--trace", str(TAXI), "--history", "3d", "--days", "0.25", "--refit-interval", "4h"),
            *("--policies", "reactive,no_forecast,predictive,oracle", "--sweep", "--sweep-points", "4"),
            *("--sweep-quantiles", "0.5,0.99", "--json", str(out), "--plot", str(png)),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result["policies"]) == {"reactive", "no_forecast", "predictive", "oracle", "clairvoyant"}
    for name, outcome in result["policies"].items():
        assert set(outcome) >= POLICY_KEYS, name
        frontier = outcome["frontier"]
        assert frontier, name
        assert set(frontier[0]) == {"knob", "value", "gpu_hours", "slo_violation_minutes"}
        hours = [p["gpu_hours"] for p in frontier]
        minutes = [p["slo_violation_minutes"] for p in frontier]
        assert hours == sorted(hours) and minutes == sorted(minutes, reverse=True), name
    assert {p["knob"] for p in result["policies"]["predictive"]["sweep"]} == {"quantile", "threshold"}
    assert [row["budget_minutes_per_day"] for row in result["equal_slo"]] == pytest.approx([1.44, 14.4])
    for row in result["equal_slo"]:
        assert set(row["gpu_hours"]) == {"reactive", "no_forecast", "predictive"}
        assert all(v is None or v > 0 for v in row["gpu_hours"].values())
    floor = result["oracle_floor"]
    assert floor["clairvoyant"] <= floor["lookahead"] == result["policies"]["oracle"]["gpu_hours"]
    settings = result["settings"]
    assert settings["cluster"]["client_timeout_s"] == 30.0 and settings["cluster"]["startup_p95_s"] == 270.0
    assert settings["pipeline"] == {
        "scrape_interval_s": 15.0,
        "rate_window_s": 60.0,
        "replicas_lag_scrapes": 1,
    }
    assert (
        settings["scaling"]["behavior"] is False and settings["scaling"]["downscale_stabilization_s"] == 300.0
    )
    assert settings["scaling"]["fallback_replicas"] is None and settings["sweep"] is True
    assert settings["predictive"]["measure_service_time"] is True
    assert result["trace"]["days"] == pytest.approx(0.25)
    assert result["trace"]["history_days"] == pytest.approx(3.0)
    assert png.read_bytes().startswith(PNG)
    stdout, stderr = capsys.readouterr()
    assert "predictive" in stdout and "oracle floor" in stdout and str(png) in stdout
    assert "clairvoyant:" in stderr


def test_policies_accepts_every_baseline_and_refuses_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="prescaler")
    add_parser(parser.add_subparsers(dest="command", required=True))
    every = ",".join(POLICIES)
    args = parser.parse_args(["simulate", "--trace", str(TAXI), "--json", "o.json", "--policies", every])
    assert args.policies == POLICIES and args.sweep is False
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--trace", str(TAXI), "--json", "o.json", "--policies", "prophet"])
    assert "expected a comma-separated list of reactive" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "check"),
    [
        pytest.param(
            ["--startup", "2m", "--startup-p95", "4m"], lambda s: s.cluster.startup_p95 == 240.0, id="p95"
        ),
        pytest.param(["--client-timeout", "10s"], lambda s: s.cluster.client_timeout_s == 10.0, id="timeout"),
        pytest.param(
            ["--scale-down-window", "60s"],
            lambda s: s.scaling.behavior and s.scaling.down_window_s == 60.0,
            id="behavior",
        ),
        pytest.param(
            ["--fallback-replicas", "5", "--scaler-outage", "1h+30m"],
            lambda s: s.scaling.fallback_replicas == 5 and s.outages == ((3600.0, 5400.0),),
            id="fallback",
        ),
        pytest.param(
            ["--gpus-per-node", "8", "--node-startup", "4m"],
            lambda s: s.cluster.gpus_per_node == 8 and s.cluster.node_startup_s == 240.0,
            id="nodes",
        ),
        pytest.param(
            ["--scrape-interval", "30s", "--rate-window", "2m"],
            lambda s: (s.pipeline.scrape_interval_s, s.pipeline.rate_window_s) == (30.0, 120.0),
            id="pipeline",
        ),
    ],
)
def test_every_mechanic_is_a_flag(flags: list[str], check: Callable[[Setup], bool]) -> None:
    parser = argparse.ArgumentParser(prog="prescaler")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["simulate", "--trace", str(TAXI), "--json", "o.json", *flags])
    assert check(setup_from_args(args))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(["--scaler-outage", "1h"], "expected START+DURATION", id="outage"),
        pytest.param(["--sweep-quantiles", "0.2,0.9"], "quantiles in [0.5, 1)", id="quantiles"),
        pytest.param(["--sweep-points", "0"], "whole number >= 1", id="points"),
        pytest.param(["--error-budget", "0"], "`0`: expected a share in (0, 0.5]", id="error-budget"),
        pytest.param(["--pipeline", "best"], "invalid choice: 'best'", id="pipeline"),
    ],
)
def test_bad_flags_name_the_value_and_the_expectation(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="prescaler")
    add_parser(parser.add_subparsers(dest="command", required=True))
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--trace", str(TAXI), "--json", "o.json", *flags])
    assert message in capsys.readouterr().err


def write_formats(folder: Path) -> dict[str, Path]:
    """Two hours of load in each format load_trace reads (besides timestamp,value)."""
    minutes = np.arange(180)
    paths = {}
    counts = np.tile([1, 0, 2, 1], 180 * 15)  # per-second counts, 1 request/s on average
    paths["nasa"] = folder / "workload.txt"
    paths["nasa"].write_text(" ".join(map(str, counts)))
    servegen = folder / "servegen"
    servegen.mkdir()
    for client in range(2):
        rows = [f"{600 * k},{5 + client + k % 3},1.0,Gamma,1.0,1.0" for k in range(18)]
        (servegen / f"chunk-{client}-trace.csv").write_text("\n".join(rows) + "\n")
    paths["servegen"] = servegen
    paths["requests"] = folder / "requests.csv"
    stamps = [f"2023-11-16 18:{m // 60:02d}:{m % 60:02d}.0000000" for m in range(0, 3600, 7)]
    stamps += [f"2023-11-16 19:{m // 60:02d}:{m % 60:02d}.0000000" for m in range(0, 3600, 3)]
    stamps += [f"2023-11-16 20:{m // 60:02d}:{m % 60:02d}.0000000" for m in range(0, 3600, 5)]
    paths["requests"].write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(f"{s},10,20\n" for s in stamps)
    )
    paths["gentd26"] = folder / "qps.csv"
    paths["gentd26"].write_text(
        "timestamp_anon,value,request_type\n"
        + "".join(f"{60 * m},{3 + m % 5},Generative Requests\n" for m in minutes)
    )
    return paths


@pytest.mark.parametrize("kind", ["nasa", "servegen", "requests", "gentd26"])
def test_every_trace_format_runs(kind: str, tmp_path: Path) -> None:
    path = write_formats(tmp_path)[kind]
    out = tmp_path / "out.json"
    code = simulate(
        ["--trace", str(path), "--history", "1h", "--policies", "reactive,oracle", "--json", str(out)]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["equal_slo"][0]["gpu_hours"] == {"reactive": None}  # no sweep: no reading
    assert result["policies"]["oracle"]["gpu_hours"] > 0


def test_demand_is_averaged_from_finer_traces_and_interpolated_from_coarser_ones() -> None:
    per_second = Trace("nasa", 600.0 + np.arange(240.0), np.tile([0.0, 2.0], 120), 1.0)
    averaged = demand_at_step(per_second, 60.0)
    assert averaged.step_s == 60.0 and averaged.values.tolist() == [1.0] * 4
    # Half-hourly values, one missing: each value stands at its half hour's centre, linear between.
    half_hours = Trace("t", np.array([0.0, 1800.0, 3600.0]), np.array([10.0, np.nan, 20.0]), 1800.0)
    interpolated = demand_at_step(half_hours, 600.0)
    assert interpolated.at_s.tolist() == [600.0 * k for k in range(9)]
    expected = [10.0, 10.0, 10 + 10 / 6, 10 + 20 / 6, 15.0, 15 + 10 / 6, 15 + 20 / 6, 20.0, 20.0]
    assert interpolated.values.tolist() == pytest.approx(expected)


def test_the_window_follows_the_history() -> None:
    trace = demand_at_step(load_trace(TAXI), 60.0)
    past, window = split(trace, history_s=7 * 86400.0, days=2.0)
    assert past.at_s[-1] + 60.0 == window.at_s[0] == trace.at_s[0] + 7 * 86400.0
    assert window.at_s.size == 2 * 1440


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--history", "30d"], "nothing is left to simulate", id="history longer than the trace"),
        pytest.param(
            ["--prometheus", "http://127.0.0.1:9"], "needs --query", id="prometheus without a query"
        ),
    ],
)
def test_unusable_input_exits_2_with_a_message(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = [] if "--prometheus" in argv else ["--trace", str(TAXI)]
    assert simulate([*source, *argv, "--json", str(tmp_path / "o.json")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.prometheus
def test_replays_a_prometheus_range_query(prometheus_url: LoadedPrometheus, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    code = simulate(
        [
            *("--prometheus", prometheus_url.url, "--query", prometheus_url.selector, "--since", "4d"),
            *("--history", "3d", "--days", "0.25", "--refit-interval", "2h"),
            *("--json", str(out)),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert prometheus_url.selector in result["trace"]["name"]
    assert result["trace"]["days"] == pytest.approx(0.25)
    assert result["trace"]["history_days"] == pytest.approx(3.0, abs=0.01)
    assert result["policies"]["predictive"]["forecasting"]["fits"]


def test_an_unreachable_prometheus_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = simulate(
        ["--prometheus", "http://127.0.0.1:9", "--query", "up", "--json", str(tmp_path / "o.json")]
    )
    assert code == 1
    assert "127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "threshold", "replicas_query"),
    [
        pytest.param([], 8.0, "replicas", id="replicas known: a replica's full concurrency"),
        pytest.param(["--no-replicas-query"], 7.2, None, id="blind: 0.9 x concurrency"),
        pytest.param(["--no-replicas-query", "--threshold", "6"], 6.0, None, id="threshold given"),
    ],
)
def test_the_replicas_query_sets_predictives_default_threshold(
    flags: list[str], threshold: float, replicas_query: str | None
) -> None:
    parser = argparse.ArgumentParser(prog="prescaler")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["simulate", "--trace", str(TAXI), "--json", "out.json", *flags])
    setup = setup_from_args(args)
    scenario = Scenario(0.0, 5.0, np.zeros(4), setup.cluster, setup.scaling)
    trigger = setup.settings.trigger(scenario)
    assert (trigger.threshold, trigger.replicas_query) == (threshold, replicas_query)


def test_lead_time_auto_measures_the_simulated_start_ups_within_a_day(tmp_path: Path) -> None:
    """`--lead-time auto`: predictive times the simulated replicas' start-ups from the Deployment's
    replica counts as scraped, and by the end of one day provisions ahead by their p90 (within 15 %),
    not by the 3 min fallback."""
    out = tmp_path / "out.json"
    startup, p95 = 180.0, 300.0
    code = simulate(
        [
            *("--trace", str(TAXI), "--history", "3d", "--days", "1", "--refit-interval", "6h"),
            *("--policies", "predictive", "--startup", f"{startup:g}s", "--startup-p95", f"{p95:g}s"),
            *("--lead-time", "auto", "--json", str(out)),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["settings"]["predictive"]["lead_time_auto"] is True
    assert result["settings"]["predictive"]["lead_time_s"] == 180.0  # the fallback
    lead = result["policies"]["predictive"]["forecasting"]["lead_time"]
    sigma = math.log(p95 / startup) / NormalDist().inv_cdf(0.95)
    p90 = startup * math.exp(sigma * NormalDist().inv_cdf(0.9))
    assert lead["measured"] is True and lead["startups"] >= 20
    assert abs(lead["used_s"] - p90) <= 0.15 * p90, (lead, p90)


def test_lead_time_auto_without_the_replicas_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    code = simulate(
        ["--trace", str(TAXI), "--lead-time", "auto", "--no-replicas-query", "--json", "/dev/null"]
    )
    assert code == 2
    assert "--lead-time auto times start-ups from the replicas asked for" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(("--lead-time", "2h"), "--lead-time 2h: expected a duration from 1ms to 1h", id="lead"),
        pytest.param(
            ("--lead-time", "auto", "--lead-time-fallback", "2h"),
            "--lead-time-fallback 2h: expected a duration from 1ms to 1h",
            id="fallback",
        ),
    ],
)
def test_a_lead_time_out_of_range_is_refused_by_its_flag_before_anything_runs(
    flags: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate(["--trace", str(TAXI), *flags, "--json", "/dev/null"]) == 2
    err = capsys.readouterr().err
    assert message in err and "simulate: reactive" not in err


def test_an_error_budget_controls_predictive_on_the_simulated_slo(tmp_path: Path) -> None:
    """`--error-budget`: predictive's trigger gets `sloQuery` (the simulated SLO, through the metric
    pipeline) and `errorBudget`; the JSON reports the factor it ended at and the share it read, which
    is the run's share of violating minutes as they became final."""
    out = tmp_path / "out.json"
    code = simulate(
        [
            *("--trace", str(TAXI), "--history", "3d", "--days", "1", "--refit-interval", "6h"),
            *("--policies", "predictive", "--threshold", "14", "--error-budget", "0.01"),
            *("--pipeline", "forecast", "--json", str(out)),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["settings"]["predictive"]["error_budget"] == 0.01
    assert result["settings"]["predictive"]["pipeline"] == "forecast"
    predictive = result["policies"]["predictive"]
    budget = predictive["forecasting"]["error_budget"]
    assert budget["budget"] == 0.01 and budget["factor"] > 0
    share = predictive["slo_violation_minutes"] / (result["days"] * 1440)
    assert budget["violating_share_read"] == pytest.approx(share, abs=0.01)
    assert predictive["forecasting"]["pipeline_share"] == {"forecast": 1.0}
    # What learning the factor cost: ln(factor) / (0.03 x 4 reads a minute); held only at a limit.
    assert budget["learning_minutes"] == pytest.approx(math.log(budget["factor"]) / 0.12, abs=0.01)
    assert (budget["held"] is None) == (MIN_FACTOR < budget["factor"] < MAX_FACTOR)


def test_burst_reserve_sets_the_key_and_reports_what_it_held(tmp_path: Path) -> None:
    """`--burst-reserve`: predictive's trigger gets `burstReserve: true` and the JSON reports its burst
    windows, the share of windows after a burst that were bursts, and the steps it held a reserve;
    without the flag the key is off and nothing is reported."""
    runs = {}
    for flag in ((), ("--burst-reserve",)):
        out = tmp_path / f"out{len(flag)}.json"
        code = simulate(
            [
                *("--trace", str(TAXI), "--history", "3d", "--days", "0.5", "--refit-interval", "6h"),
                *("--policies", "predictive", *flag, "--json", str(out)),
            ]
        )
        assert code == 0
        runs[bool(flag)] = json.loads(out.read_text())
    assert runs[True]["settings"]["predictive"]["burst_reserve"] is True
    assert runs[False]["settings"]["predictive"]["burst_reserve"] is False
    held = runs[True]["policies"]["predictive"]["forecasting"]["burst_reserve"]
    assert set(held) == {"bursts", "share_after_burst", "steps_share"}
    assert held["bursts"] >= 0 and 0.0 <= held["steps_share"] <= 1.0
    assert "burst_reserve" not in runs[False]["policies"]["predictive"]["forecasting"]
