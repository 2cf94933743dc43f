"""Fleet mode: 200 services planned on a Dask LocalCluster on loopback equal the single-process plans;
the services file and `--services` / `--dask` end to end."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster

from forecasting import Series
from scaler.cli import main
from scaler.plan.core import PlanOptions, to_json
from scaler.plan.fleet import Job, connect, load_services, plan_fleet
from scaler.plan.forecast import hourly
from scaler.plan.profile import PlanInputError, load_prices, load_profile
from scaler.traces import load_trace

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "nyc_taxi_7w.csv"
PROFILE = ROOT / "deploy" / "plan" / "profile.example.yaml"
PRICES = ROOT / "deploy" / "plan" / "prices.example.yaml"
# The cheapest adequate path: seasonal naive only, no backtest, no simulator check, a week ahead.
FAST = PlanOptions(horizon_h=168, members=(), backtest_origins=0, sim_check=False)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def jobs(count: int) -> list[Job]:
    """`count` services: the bundled diurnal history (four weeks), each scaled, shifted and noised differently."""
    trace = load_trace(FIXTURE)
    rows = 28 * 48
    base = trace._replace(at_s=trace.at_s[:rows], values=trace.values[:rows] / 300)
    series, peak = hourly(base, FAST.quantile)
    # Deterministic service: its latency tail is closed-form, which halves the sizing time; the
    # services-file test below runs the example profile's numerical path on the cluster.
    profile = dataclasses.replace(load_profile(PROFILE), service_time_cv=0.0, load_test=())
    rng = np.random.default_rng(3)
    out = []
    for i in range(count):
        values = (
            np.roll(series.values, i % 24) * (0.05 + 2 * rng.random()) * rng.lognormal(0, 0.1, len(series))
        )
        varied = Series(series.start_s, series.step_s, values, series.observed)
        out.append(Job(f"svc-{i:03d}", varied, peak, profile))
    return out


def test_two_hundred_services_on_a_local_cluster_equal_the_single_process_plans(client: Client) -> None:
    prices = load_prices(PRICES)
    work = jobs(200)
    seen: list[str] = []
    local = plan_fleet(work, prices, FAST)
    remote = plan_fleet(work, prices, FAST, client=client, progress=seen.append)
    assert [p.name for p in remote] == [j.name for j in work]
    assert [to_json(p) for p in remote] == [to_json(p) for p in local]
    assert len(seen) == 200 and seen[-1].startswith("planned 200/200 on the cluster")
    # The services differ, so equal plans are not a coincidence of equal inputs.
    assert len({p.cost.monthly for p in local}) == 200


def cli(argv: list[str]) -> int:
    """`prescaler plan ARGV`."""
    return main(["plan", *argv], environ={})


def write_services(folder: Path) -> Path:
    trace = load_trace(FIXTURE)
    rows = 28 * 48
    for i, factor in enumerate((1 / 300, 1 / 900, 1 / 100)):
        lines = [
            f"{int(t)},{v * factor:.4f}" for t, v in zip(trace.at_s[:rows], trace.values[:rows], strict=True)
        ]
        (folder / f"s{i}.csv").write_text("timestamp,value\n" + "\n".join(lines) + "\n")
    (folder / "small.yaml").write_text(
        PROFILE.read_text().replace("slots_per_replica: 16", "slots_per_replica: 8")
    )
    text = (
        "services:\n"
        "  - {name: chat, trace: s0.csv, profile: small.yaml}\n"
        f"  - {{name: embed, trace: s1.csv, profile: {PROFILE}}}\n"
        "  - name: code\n    trace: s2.csv\n    profile: {gpus_per_replica: 2, slots_per_replica: 32, service_time_s: 4,\n"
        "              service_time_cv: 0.5, startup_s: 5m, slo: {quantile: 0.99, seconds: 20}}\n"
    )
    path = folder / "services.yaml"
    path.write_text(text)
    return path


def test_services_file_through_the_cli_single_process_and_on_dask(tmp_path: Path, client: Client) -> None:
    services = write_services(tmp_path)
    common = [
        "--services",
        str(services),
        "--prices",
        str(PRICES),
        "--horizon",
        "7d",
        "--models",
        "seasonal_naive",
    ]
    common += ["--backtest-origins", "0", "--no-sim-check"]
    assert cli([*common, "--json", str(tmp_path / "one.json"), "--report", str(tmp_path / "fleet.md")]) == 0
    address = client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    assert cli([*common, "--json", str(tmp_path / "dask.json"), "--dask", address]) == 0
    one = json.loads((tmp_path / "one.json").read_text())
    assert one == json.loads((tmp_path / "dask.json").read_text())
    assert list(one["services"]) == ["chat", "embed", "code"]
    assert one["services"]["code"]["profile"]["gpus_per_replica"] == 2
    assert one["fleet"]["monthly"] == pytest.approx(
        sum(s["cost"]["monthly"] for s in one["services"].values())
    )
    report = (tmp_path / "fleet.md").read_text()
    assert "| chat |" in report and "**all 3**" in report


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("services: []\n", "`services` is required", id="empty"),
        pytest.param("services:\n  - {name: a, profile: p.yaml}\n", "exactly one of `trace`", id="no-source"),
        pytest.param("services:\n  - {name: a, trace: a.csv, profile: missing.yaml}\n", "cannot be read", id="profile-file"),
        pytest.param("services:\n  - {name: a, trace: a.csv, profile: {slots_per_replica: 2}}\n", "`gpus_per_replica` is required", id="inline"),
        pytest.param("services:\n  - {name: a, trace: a.csv, profile: {}, colour: red}\n", "unknown keys ['colour']", id="unknown"),
    ],
)  # fmt: skip
def test_bad_services_file_names_the_entry(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(text)
    with pytest.raises(PlanInputError, match="services") as info:
        load_services(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_a_service_with_too_little_history_is_named_in_the_error() -> None:
    good = jobs(1)[0]
    short = Job("tiny", good.series.window(-40, None), good.peak_factor, good.profile)
    with pytest.raises(
        PlanInputError, match=r"service tiny: the history holds 40 hours; a plan needs at least 79"
    ):
        plan_fleet([good, short], load_prices(PRICES), FAST)


def test_no_scheduler_at_the_dask_address_is_a_connection_error_naming_it() -> None:
    with pytest.raises(ConnectionError, match=r"--dask tcp://127.0.0.1:1: no Dask scheduler answered"):
        connect("tcp://127.0.0.1:1", timeout_s=0.5)
