"""`prescaler simulate` (scaler.simulate_cli) on bundled and generated traces, and on a real Prometheus."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import scaler
from scaler.sim.compare import demand_at_step, split
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


def test_writes_the_documented_json_a_png_and_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, png = tmp_path / "results" / "out.json", tmp_path / "figures" / "out.png"  # folders created
    code = simulate(
        [
            *("--trace", str(TAXI), "--history", "3d", "--days", "0.5", "--refit-interval", "2h"),
            *(
                "--policies",
                "reactive,fixed_buffer,predictive,holt_winters,oracle",
                "--sweep-targets",
                "4,6,8,10",
            ),
            *("--json", str(out), "--plot", str(png)),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result["policies"]) == {"reactive", "fixed_buffer", "predictive", "holt_winters", "oracle"}
    for outcome in result["policies"].values():
        assert set(outcome) >= POLICY_KEYS
    assert [p["target"] for p in result["reactive_sweep"]] == [4, 6, 8, 10]
    assert {"target", "gpu_hours", "slo_violation_minutes"} == set(result["reactive_sweep"][0])
    assert result["reactive_at_equal_gpu_hours"]["slo_violation_minutes"] >= 0
    assert result["settings"]["predictive"]["replicas_known"] is True
    assert result["trace"]["days"] == pytest.approx(0.5)
    assert result["trace"]["history_days"] == pytest.approx(3.0)
    assert result["policies"]["predictive"]["forecasting"]["fits"]["ensemble"] >= 1
    assert png.read_bytes().startswith(PNG)
    stdout, stderr = capsys.readouterr()
    assert "predictive" in stdout and "reactive at predictive's" in stdout and str(png) in stdout
    assert "[1/9] reactive" in stderr and "reactive sweep, target 10" in stderr


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
    assert result["reactive_at_equal_gpu_hours"] is None  # no predictive run
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
            *("--history", "3d", "--days", "0.25", "--refit-interval", "2h", "--sweep-targets", "6,8"),
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
