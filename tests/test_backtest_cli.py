"""`prescaler backtest` on a small trace: the documented JSON, the table, the plot, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scaler.cli import main

DAY = 86400.0


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    at = 1_700_000_000 + np.arange(0, 4 * DAY, 300.0)
    rng = np.random.default_rng(3)
    values = 50 + 40 * np.sin(2 * np.pi * at / DAY) + rng.normal(0, 3, at.size)
    path = tmp_path / "load.csv"
    path.write_text(
        "timestamp,value\n" + "\n".join(f"{a:.0f},{v:.3f}" for a, v in zip(at, values, strict=True))
    )
    return path


def test_backtest_writes_scores_and_plot(
    trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, png = tmp_path / "scores.json", tmp_path / "band.png"
    code = main(["backtest", "--trace", str(trace), "--origins", "4", "--json", str(out), "--plot", str(png)])
    assert code == 0
    document = json.loads(out.read_text())
    assert {"ensemble", "seasonal_naive"} <= set(document["models"])
    for scores in document["models"].values():
        assert set(scores) >= {"mase", "coverage", "pinball", "under_provision_rate"}
    assert document["fit_seconds_per_series"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert "ensemble" in captured.out
    assert "4/4 origins" in captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--step", "soon"], "expected a duration", id="step"),
        pytest.param(["--quantile", "0.2"], "expected a quantile", id="quantile"),
        pytest.param(["--seasonality", "yearly"], "expected daily,weekly", id="seasonality"),
    ],
)
def test_bad_arguments_exit_2_naming_them(
    trace: Path, tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backtest", "--trace", str(trace), "--json", str(tmp_path / "x.json"), *args])
    assert code == 2
    assert message in capsys.readouterr().err


def test_missing_trace_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--trace", str(tmp_path / "nope.csv"), "--json", str(tmp_path / "x.json")])
    assert code == 2
    assert "nope.csv: no such file" in capsys.readouterr().err


def test_horizon_rounded_up_to_whole_steps_is_said(
    trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scores.json"
    code = main(["backtest", "--trace", str(trace), "--origins", "2", "--json", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert (
        "points at 5m steps (the trace's spacing, at least 5m; --step to change); scoring 5m ahead (1 step)"
        in err
    )
    assert "note: --horizon 3m is not a whole number of --step 5m: scoring 1 step ahead (5m)" in err
    assert json.loads(out.read_text())["horizon_steps"] == 1


def test_table_explains_the_forecaster_row_and_prints_no_python_dict(
    trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "backtest",
            "--trace",
            str(trace),
            "--origins",
            "3",
            "--horizon",
            "10m",
            "--json",
            str(tmp_path / "s.json"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines()[1:] if line and line.split()[0].isidentifier()]
    assert rows[:2] == ["forecaster", "ensemble"]
    assert "forecaster: what the scaler would have served" in out
    assert "answered by: " in out and "(of 3 origins)" in out
    assert "{" not in out and "}" not in out
    document = json.loads((tmp_path / "s.json").read_text())
    if document["models"]["forecaster"] == document["models"]["ensemble"]:
        assert "Identical to `ensemble` here" in out


def test_a_step_finer_than_the_trace_is_refused(
    trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backtest", "--trace", str(trace), "--step", "1m", "--json", str(tmp_path / "x.json")])
    assert code == 2
    assert capsys.readouterr().err == (
        "prescaler backtest: --step 1m is finer than the trace's spacing of 5m: every step between two samples "
        "would be a gap; use --step 5m or coarser\n"
    )


def test_the_plot_draws_what_was_served_at_each_scored_origin(trace: Path) -> None:
    from forecasting import ForecastConfig, backtest, prepare
    from scaler.traces import load_trace

    loaded = load_trace(trace)
    series = prepare(loaded.at_s, loaded.values, 300.0, season_steps=288)
    recorded: list[tuple[int, np.ndarray, np.ndarray]] = []
    result = backtest(
        series,
        ForecastConfig(weekly=False, horizon_steps=2),
        origins=3,
        record=lambda origin, mean, upper: recorded.append((origin, mean, upper)),
    )
    assert len(recorded) == result.origins == 3
    for origin, mean, upper in recorded:
        assert origin + 2 <= len(series)  # scored origins, never a forecast past the end
        assert mean.shape == upper.shape == (2,) and (upper >= mean).all()


def test_a_trace_too_short_to_score_exits_1_with_strict_json(
    trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An hour of samples: nothing can be scored, which is not a success, and what could not be
    measured is null in the JSON, not NaN (which strict parsers refuse)."""
    short = tmp_path / "hour.csv"
    short.write_text("\n".join(trace.read_text().splitlines()[:13]) + "\n")
    out = tmp_path / "scores.json"
    code = main(["backtest", "--trace", str(short), "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "no origin could be scored: 12 points at 5m (1h)" in err and "--horizon 5m" in err
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    document = json.loads(text)
    assert document["models"] == {}
