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
