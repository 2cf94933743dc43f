"""`prescaler plan` end to end on a bundled trace: the three outputs, the JSON's cost, and bad input."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import yaml

from scaler import plan_cli
from scaler.cli import main
from scaler.plan.core import PlanOptions
from scaler.plan.profile import load_prices
from scaler.traces import load_trace
from tests.prometheus_server import LoadedPrometheus

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "nyc_taxi_7w.csv"
PROFILE = ROOT / "deploy" / "plan" / "profile.example.yaml"
PRICES = ROOT / "deploy" / "plan" / "prices.example.yaml"
HISTORY_DAYS = 35
# NYC taxi passengers per 30 min, read as requests/s and scaled so that the peak needs ~45 replicas.
SCALE = 1 / 300
KEYS = {"hours", "procurement", "cost", "profile", "prices", "forecast_backtest"}
HOUR_KEYS = {
    "start",
    "rate_mean",
    "rate_upper",
    "replicas",
    "replicas_naive",
    "reserved",
    "on_demand",
    "spot",
}


def plan(argv: Sequence[str]) -> int:
    """`prescaler plan ARGV`."""
    return main(["plan", *argv], environ={})


def write_history(path: Path) -> Path:
    trace = load_trace(FIXTURE)
    rows = HISTORY_DAYS * 48
    lines = [f"{int(t)},{v * SCALE:.4f}" for t, v in zip(trace.at_s[:rows], trace.values[:rows], strict=True)]
    path.write_text("timestamp,value\n" + "\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plan")
    history = write_history(out / "history.csv")
    code = plan(
        [
            "--trace", str(history), "--profile", str(PROFILE), "--prices", str(PRICES),
            "--horizon", "28d", "--backtest-origins", "2",
            "--json", str(out / "plan.json"), "--report", str(out / "plan.md"), "--plot", str(out / "plan.png"),
        ]
    )  # fmt: skip
    assert code == 0
    return out


def test_plan_writes_json_report_and_plot(outputs: Path) -> None:
    document = json.loads((outputs / "plan.json").read_text())
    assert set(document) == KEYS
    assert len(document["hours"]) == 28 * 24
    assert all(set(hour) == HOUR_KEYS for hour in document["hours"])
    assert set(document["procurement"]) == {"reserved", "spot_share"}
    assert set(document["procurement"]["reserved"]) == {"1y", "3y"}
    assert set(document["cost"]) == {
        "monthly",
        "per_million_requests",
        "all_on_demand_monthly",
        "naive_monthly",
    }
    assert set(document["forecast_backtest"]) == {"mase", "coverage"}
    assert 0 < document["forecast_backtest"]["mase"] < 1.5
    assert document["hours"][0]["start"] == "2014-08-05T00:00:00Z"
    report = (outputs / "plan.md").read_text()
    for heading in ("## What to buy", "## Why", "## How sure", "## Checked in the simulator"):
        assert heading in report
    assert "Reserve" in report and "MASE" in report
    png = (outputs / "plan.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000


def test_monthly_cost_is_the_sum_over_the_hours_at_the_given_prices(outputs: Path) -> None:
    document = json.loads((outputs / "plan.json").read_text())
    prices = load_prices(PRICES)
    gpus = document["profile"]["gpus_per_replica"]
    price = {t.term: t.price for t in prices.reserved}
    reserved_usd = sum(level * price[term] for term, level in document["procurement"]["reserved"].items())
    level = sum(document["procurement"]["reserved"].values())
    assert prices.spot is not None
    total = 0.0
    for hour in document["hours"]:
        assert hour["reserved"] == level
        assert hour["reserved"] + hour["on_demand"] + hour["spot"] >= hour["replicas"]
        total += gpus * (
            reserved_usd + hour["on_demand"] * prices.on_demand + hour["spot"] * prices.spot.price
        )
    hours = len(document["hours"])
    assert document["cost"]["monthly"] == pytest.approx(total * 730 / hours, rel=1e-9)
    everything_on_demand = (
        sum(h["replicas"] for h in document["hours"]) * gpus * prices.on_demand * 730 / hours
    )
    assert document["cost"]["all_on_demand_monthly"] == pytest.approx(everything_on_demand, rel=1e-9)
    requests = sum(h["rate_mean"] for h in document["hours"]) * 3600 * 730 / hours
    assert document["cost"]["per_million_requests"] == pytest.approx(
        document["cost"]["monthly"] / (requests / 1e6)
    )
    # Queueing theory and the procurement mix both pay off on this diurnal load.
    assert (
        document["cost"]["monthly"]
        < document["cost"]["naive_monthly"]
        < document["cost"]["all_on_demand_monthly"] * 1.2
    )
    replicas = np.array([h["replicas"] for h in document["hours"]])
    naive = np.array([h["replicas_naive"] for h in document["hours"]])
    assert replicas.sum() < naive.sum()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param({"slots_per_replica": 0}, "`slots_per_replica`: `0` is not valid; expected a whole number >= 1", id="slots"),
        pytest.param({"slo": {"quantile": 1.5, "seconds": 30}}, "`slo.quantile`: `1.5` is not valid; expected a number in (0, 1)", id="quantile"),
        pytest.param({"sevice_time_s": 2}, "unknown key `sevice_time_s`", id="typo"),
        pytest.param({"service_time_cv": 3.0}, "cannot be met at any replica count", id="infeasible"),
        pytest.param({"load_test": [{"rps_per_replica": 2, "service_time_s": 6}, {"rps_per_replica": 1, "service_time_s": 7}]}, "rows in increasing rps_per_replica", id="table-order"),
        pytest.param({"startup_s": "soon"}, "`startup_s`: `soon` is not valid", id="startup"),
        pytest.param({"slo": None}, "`slo` is required", id="slo-missing"),
        pytest.param("gpus_per_replica: [1\n", "line 2: not valid YAML", id="yaml"),
    ],
)  # fmt: skip
def test_bad_profile_is_one_line_naming_file_key_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object] | str, expected: str
) -> None:
    bad = tmp_path / "profile.yaml"
    if isinstance(change, str):
        bad.write_text(change)
    else:
        raw = yaml.safe_load(PROFILE.read_text())
        raw.update(change)
        bad.write_text(yaml.safe_dump({k: v for k, v in raw.items() if v is not None}))
    history = write_history(tmp_path / "h.csv")
    code = plan(["--trace", str(history), "--profile", str(bad), "--prices", str(PRICES)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and str(bad) in err[0] and expected in err[0], err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["--prices", "PRICES", "--profile", "PROFILE", "--prometheus", "http://x:9090"], "--prometheus needs --query", id="query"),
        pytest.param(["--prices", "PRICES", "--trace", "HISTORY"], "--profile is required", id="profile"),
        pytest.param(["--prices", "PRICES", "--profile", "PROFILE"], "the history is required", id="no-history"),
        pytest.param(["--prices", "PRICES", "--profile", "PROFILE", "--trace", "HISTORY", "--prometheus", "http://x:9090", "--query", "up"], "choose one", id="two-histories"),
        pytest.param(["--prices", "PRICES", "--profile", "PROFILE", "--trace", "HISTORY", "--query", "up"], "--query needs --prometheus", id="query-alone"),
        pytest.param(["--prices", "PRICES", "--profile", "PROFILE", "--trace", "HISTORY", "--horizon", "90m"], "whole number of hours", id="horizon"),
        pytest.param(["--prices", "PRICES", "--profile", "PROFILE", "--trace", "HISTORY", "--dask", "tcp://127.0.0.1:1"], "--dask plans many services", id="dask"),
        pytest.param(["--prices", "PROFILE", "--profile", "PROFILE", "--trace", "HISTORY"], "unknown key `gpus_per_replica`", id="prices-file"),
        pytest.param(["--prices", "PRICES", "--profile", "PROFILE", "--trace", "MISSING"], "no such file", id="trace"),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    history = write_history(tmp_path / "h.csv")
    names = {
        "PRICES": str(PRICES),
        "PROFILE": str(PROFILE),
        "HISTORY": str(history),
        "MISSING": str(tmp_path / "none.csv"),
    }
    code = plan([names.get(a, a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and expected in err[0]


def test_cli_defaults_are_the_planner_defaults() -> None:
    assert PlanOptions().quantile == plan_cli.DEFAULT_QUANTILE


def test_growth_flag_parses_rates_per_period() -> None:
    assert plan_cli.parse_growth("auto") is None
    assert plan_cli.parse_growth("5%/month") == pytest.approx(0.05)
    assert plan_cli.parse_growth("12%/year") == pytest.approx(1.12 ** (1 / 12) - 1)
    assert plan_cli.parse_growth("-1%/week") < 0
    with pytest.raises(argparse.ArgumentTypeError, match="5%/month"):
        plan_cli.parse_growth("fast")


@pytest.mark.prometheus
def test_plan_reads_its_history_from_a_real_prometheus(
    prometheus_url: LoadedPrometheus, tmp_path: Path
) -> None:
    # The EC2 CPU trace (14 days at 5 min) as if it were an arrival rate: a daily-season plan.
    out = tmp_path / "plan.json"
    code = plan(
        [
            "--prometheus", prometheus_url.url, "--query", 'prescaler_test_load{trace="ec2_cpu"}', "--since", "14d",
            "--profile", str(PROFILE), "--prices", str(PRICES), "--horizon", "2d",
            "--backtest-origins", "0", "--no-sim-check", "--json", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    document = json.loads(out.read_text())
    assert len(document["hours"]) == 48
    first = document["hours"][0]["start"]
    # The plan starts at the first whole hour after the history Prometheus returned.
    assert first.endswith(":00:00Z")
    assert max(h["replicas"] for h in document["hours"]) >= 2
    assert document["cost"]["monthly"] > 0
    # The same query as a service of a fleet, beside one read from a file.
    services = tmp_path / "services.yaml"
    write_history(tmp_path / "file.csv")
    services.write_text(
        "services:\n"
        f"  - {{name: prom, query: 'prescaler_test_load{{trace=\"ec2_cpu\"}}', profile: {PROFILE}}}\n"
        f"  - {{name: file, trace: file.csv, profile: {PROFILE}}}\n"
    )
    fleet_out = tmp_path / "fleet.json"
    code = plan(
        [
            "--services", str(services), "--prometheus", prometheus_url.url, "--since", "14d",
            "--prices", str(PRICES), "--horizon", "2d", "--backtest-origins", "0", "--no-sim-check",
            "--json", str(fleet_out),
        ]
    )  # fmt: skip
    assert code == 0
    fleet = json.loads(fleet_out.read_text())
    assert list(fleet["services"]) == ["prom", "file"]
    # Read from the same Prometheus a moment later (the same grid unless a 5-minute step began between).
    again = fleet["services"]["prom"]["hours"]
    assert len(again) == 48 and sum(h["replicas"] for h in again) == pytest.approx(
        sum(h["replicas"] for h in document["hours"]), rel=0.05
    )


def test_prometheus_that_does_not_answer_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = plan(
        [
            "--prometheus", "http://127.0.0.1:1", "--query", "up", "--profile", str(PROFILE), "--prices", str(PRICES),
        ]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert "127.0.0.1:1" in err[-1] and err[-1].startswith("prescaler plan:")
