"""A new user's mistakes end in one line naming the flag and the value, never a traceback: run as
the user runs it, in a process of its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scaler.call import EXAMPLE_METADATA
from scaler.cli import _announce, example_metadata, main
from scaler.cli_types import output_file
from scaler.server.app import Ports
from scaler.settings import BUNDLED_TRACES, Settings


def _prescaler(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scaler", *argv], capture_output=True, text=True, timeout=90, check=False
    )


def _problems(stderr: str) -> list[str]:
    """The lines a user reads as the failure (log lines of the start-up are not)."""
    return [line for line in stderr.splitlines() if " INFO " not in line]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize("flag", ["--grpc-port", "--metrics-port"])
def test_a_busy_port_is_one_line_naming_its_flag(flag: str, busy_port: int) -> None:
    other = "--metrics-port" if flag == "--grpc-port" else "--grpc-port"
    done = _prescaler("serve", "--host", "127.0.0.1", flag, str(busy_port), other, "0")
    assert done.returncode == 1
    assert _problems(done.stderr) == [
        f"prescaler serve: {flag} {busy_port}: cannot listen on 127.0.0.1:{busy_port}: address already in use"
    ]
    assert "Traceback" not in done.stderr and "Event loop is closed" not in done.stderr
    # The start-up log says how the forecast workers were sized.
    assert "forecast workers: " in done.stderr and "MB per worker" in done.stderr


def test_a_missing_replay_dir_is_refused_at_start(tmp_path: Path) -> None:
    done = _prescaler("serve", "--replay-dir", str(tmp_path / "traces"))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"prescaler serve: --replay-dir: `{tmp_path / 'traces'}` is not a directory; replay triggers read "
        "traces from it"
    ]


def test_backtest_horizon_in_words_names_the_flag_and_value(tmp_path: Path) -> None:
    done = _prescaler(
        "backtest",
        "--trace",
        str(BUNDLED_TRACES / "nyc_taxi_10d.csv"),
        "--json",
        str(tmp_path / "x.json"),
        "--horizon",
        "5 minutes",
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "prescaler backtest: --horizon `5 minutes`: expected a duration such as 15s, 1m30s, 500ms or 7d"
    ]


@pytest.mark.parametrize(
    ("flag", "where", "problem"),
    [
        pytest.param(
            "--json", "missing/x.json", "the folder {tmp}/missing does not exist", id="json-no-folder"
        ),
        pytest.param(
            "--plot", "missing/x.png", "the folder {tmp}/missing does not exist", id="plot-no-folder"
        ),
        pytest.param("--json", ".", "is a folder; expected a file name", id="json-is-a-folder"),
    ],
)
def test_backtest_output_paths_are_refused_before_the_backtest_runs(
    flag: str, where: str, problem: str, tmp_path: Path
) -> None:
    outputs = {"--json": str(tmp_path / "x.json"), "--plot": str(tmp_path / "x.png")}
    outputs[flag] = str(tmp_path / where)
    trace = BUNDLED_TRACES / "nyc_taxi_10d.csv"
    done = _prescaler("backtest", "--trace", str(trace), *(w for f, p in outputs.items() for w in (f, p)))
    assert done.returncode == 2
    # One line, before any origin is scored (no progress bar, no file written).
    shown = str(tmp_path / where) if where != "." else str(tmp_path)
    assert done.stderr.splitlines() == [f"prescaler backtest: {flag} {shown}: {problem.format(tmp=tmp_path)}"]
    assert not (tmp_path / "x.json").exists()


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    # `prescaler call all | head -3`: the pipe's reader is gone before the answer is printed.
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as closed_pipe:
        done = subprocess.run(
            [sys.executable, "-m", "scaler", "call", "IsActive", "--address", "127.0.0.1:1"],
            stdout=closed_pipe,
            stderr=subprocess.PIPE,
            text=True,
            timeout=90,
            check=False,
        )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def _banner(replay_dir: Path, capsys: pytest.CaptureFixture[str], http: int = 8080) -> str:
    _announce(Settings(host="0.0.0.0", replay_dir=replay_dir))(Ports(9090, http))
    return capsys.readouterr().out


def test_banner_suggests_the_bundled_example_with_the_bundled_traces(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _banner(BUNDLED_TRACES, capsys)
    assert f"prescaler call all --address 127.0.0.1:9090 --metadata {EXAMPLE_METADATA}" in out
    assert "/targets" in out


def test_banner_suggests_a_trace_that_is_in_a_custom_replay_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.csv").write_text("timestamp,value\n0,1\n")
    out = _banner(tmp_path, capsys, http=18080)
    assert "trace=mine.csv" in out and "elb_request_count" not in out
    assert "--http-address 127.0.0.1:18080" in out
    assert example_metadata(tmp_path) == "source=replay,trace=mine.csv,threshold=50"


def test_banner_without_traces_suggests_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _banner(tmp_path, capsys)
    assert "prescaler call" not in out and f"No .csv trace in {tmp_path}" in out


@pytest.mark.parametrize(
    ("argv", "usage", "hint"),
    [
        pytest.param(
            ["serve", "--grpc-prot", "9191"],
            "usage: prescaler serve",
            "did you mean --grpc-port?",
            id="serve",
        ),
        pytest.param(
            ["call", "all", "--adress", "h:1"], "usage: prescaler call", "did you mean --address?", id="call"
        ),
        pytest.param(
            ["call", "all", "extra"], "usage: prescaler call", "unrecognized arguments: extra", id="word"
        ),
    ],
)
def test_a_misspelled_flag_gets_the_subcommands_usage_and_the_nearest_flag(
    argv: list[str], usage: str, hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert usage in err and hint in err and "Traceback" not in err


def test_serve_help_shows_durations_as_the_flags_take_them(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--rpc-deadline DURATION" in out
    assert "PRESCALER_RPC_DEADLINE; default 2s)" in out and "PRESCALER_MAX_HISTORY; default 35d)" in out


def test_simulate_refuses_a_quantile_outside_its_range_before_running(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--trace", "unused.csv", "--json", "unused.json", "--quantile", "1.5"])
    assert exited.value.code == 2
    assert "argument --quantile: `1.5`: expected a quantile in [0.5, 1)" in capsys.readouterr().err


def test_an_output_file_is_tried_and_nothing_is_left_behind(tmp_path: Path) -> None:
    """`output_file` tries the write itself, which holds for root too (a folder's mode does not)."""
    target = tmp_path / "made" / "x.json"
    with pytest.raises(ValueError, match=r"the folder .* does not exist"):
        output_file("--json", target)
    output_file("--json", target, make_folder=True)
    assert target.parent.is_dir() and not target.exists()
    target.write_text("kept")
    output_file("--json", target)
    assert target.read_text() == "kept"  # an existing file is appended to, never truncated
    with pytest.raises(ValueError, match=r"--json /proc/x\.json: cannot be written"):
        output_file("--json", Path("/proc/x.json"))
