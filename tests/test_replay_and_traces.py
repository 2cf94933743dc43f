"""The replay source (the embedded default) and the trace loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scaler.errors import ConfigError, NullValueError
from scaler.settings import BUNDLED_TRACES, Settings
from scaler.sources.replay import ReplaySource, TraceCache, resolve_inside
from scaler.traces import Trace, TraceError, load_trace, parse_timestamp, regrid
from scaler.trigger import parse_trigger

BUNDLED = BUNDLED_TRACES / "elb_request_count_8c0756.csv"


def test_bundled_trace_loads_with_its_native_step() -> None:
    trace = load_trace(BUNDLED)
    assert trace.values.size == 4032
    assert trace.step_s == 300.0
    assert trace.values[:3].tolist() == [94.0, 56.0, 187.0]
    assert parse_timestamp("2014-04-10 00:04:00") == trace.at_s[0]


async def test_replay_serves_the_trace_on_the_wall_clock() -> None:
    trace = load_trace(BUNDLED)
    span = trace.at_s[-1] - trace.at_s[0] + trace.step_s
    # A clock that sits exactly on the trace's third point (one loop later).
    now = span * 5 + (trace.at_s[2] - trace.at_s[0])
    source = ReplaySource(BUNDLED, clock=lambda: now)
    sample = await source.sample()
    assert sample == (now, 187.0)
    halfway = ReplaySource(BUNDLED, clock=lambda: now + 150)
    assert (await halfway.sample()).value == pytest.approx((187.0 + trace.values[3]) / 2)


async def test_replay_history_matches_samples() -> None:
    source = ReplaySource(BUNDLED, speed=10.0, clock=lambda: 1000.0)
    series = await source.history(0.0, 1000.0, 100.0)
    assert series.at_s.tolist() == [float(t) for t in range(0, 1001, 100)]
    assert series.values[-1] == (await source.sample()).value


async def test_replay_gap_with_ignore_null_values_false(tmp_path: Path) -> None:
    trace = tmp_path / "gappy.csv"
    trace.write_text("timestamp,value\n0,1\n60,\n120,3\n")
    source = ReplaySource(trace, ignore_null_values=False, clock=lambda: 60.0)
    with pytest.raises(NullValueError, match="no value"):
        await source.sample()
    lenient = ReplaySource(trace, clock=lambda: 60.0)
    assert (await lenient.sample()).value == 0.0


async def test_targets_replaying_one_file_share_one_parse_until_it_changes(tmp_path: Path) -> None:
    parsed: list[Path] = []

    def counting(path: Path) -> Trace:
        parsed.append(path)
        return load_trace(path)

    traces = TraceCache(load=counting)
    path = tmp_path / "shared.csv"
    path.write_text("timestamp,value\n0,1\n60,2\n")
    for _ in range(3):
        assert (await ReplaySource(path, clock=lambda: 60.0, traces=traces).sample()).value == 2.0
    assert parsed == [path]
    path.write_text("timestamp,value\n0,1\n60,5\n120,6\n")  # changed on disk: parsed again
    assert (await ReplaySource(path, clock=lambda: 60.0, traces=traces).sample()).value == 5.0
    assert parsed == [path, path]


@pytest.mark.parametrize(
    ("relative", "message"),
    [
        pytest.param("../../etc/passwd", "outside the replay directory", id="dotdot"),
        pytest.param("/etc/passwd", "outside the replay directory", id="absolute"),
        pytest.param("missing.csv", "does not exist", id="missing"),
    ],
)
def test_replay_paths_stay_inside_the_replay_directory(relative: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_inside(BUNDLED_TRACES, relative)


def test_replay_from_config_uses_the_settings_directory(tmp_path: Path) -> None:
    (tmp_path / "mine.csv").write_text("timestamp,value\n0,1\n")
    config = parse_trigger({"source": "replay", "trace": "mine.csv", "threshold": "1", "replaySpeed": "2"})
    source = ReplaySource.from_config(config, Settings(replay_dir=tmp_path))
    assert (source.path, source.speed) == ((tmp_path / "mine.csv").resolve(), 2.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1700000000", 1_700_000_000.0, id="unix"),
        pytest.param("2023-11-16 18:15:46.6805900", 1700158546.68059, id="seven-fraction-digits"),
        pytest.param("2014-04-10T00:04:00+02:00", 1397081040.0, id="iso-offset"),
    ],
)
def test_timestamps(text: str, expected: float) -> None:
    assert parse_timestamp(text) == pytest.approx(expected)


def test_request_log_is_counted_per_bin_as_rate(tmp_path: Path) -> None:
    log = tmp_path / "requests.csv"
    log.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n0.5,1,1\n10,1,1\n61,1,1\n")
    trace = load_trace(log, step_s=60)
    assert trace.values.tolist() == [2 / 60, 1 / 60]


def test_servegen_folder_sums_clients(tmp_path: Path) -> None:
    (tmp_path / "chunk-0-trace.csv").write_text("0,1.5,1,Gamma,1,1\n600,2.0,1,Gamma,1,1\n")
    (tmp_path / "chunk-1-trace.csv").write_text("0,0.5,0,,0,0\n600,1.0,1,Weibull,1,1\n")
    trace = load_trace(tmp_path)
    assert trace.values.tolist() == [2.0, 3.0]
    assert trace.step_s == 600.0


def test_per_second_counts(tmp_path: Path) -> None:
    counts = tmp_path / "workload.txt"
    counts.write_text("1 2 3 4 5 6\n")
    trace = load_trace(counts, step_s=3)
    # Index 0 is 1995-07-01 04:00:01 UTC, one second past a multiple of 3 s: bins hold 2, 3 and 1 counts.
    assert trace.at_s[0] % 3 == 0
    assert trace.values.tolist() == [1.5, 4.0, 6.0]


def test_regrid_marks_empty_bins_nan() -> None:
    trace = load_trace(BUNDLED)
    coarse = regrid(trace._replace(at_s=trace.at_s[[0, 5]], values=trace.values[[0, 5]]), 300.0)
    assert coarse.values.size == 6
    assert np.isnan(coarse.values[1:5]).all()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("time,load\n1,2\n", "not recognised", id="header"),
        pytest.param("timestamp,value\nyesterday,2\n", "line 2", id="bad-time"),
        pytest.param("timestamp,value\n1,many\n", "`many` is not a number", id="bad-value"),
        pytest.param("timestamp,value\n", "no data rows", id="empty"),
    ],
)
def test_bad_traces_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(TraceError, match=message):
        load_trace(path)
