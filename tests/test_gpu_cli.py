"""`prescaler gpu-exporter`: flags, exit status without a GPU, serve-scrape-SIGTERM, the benchmarks."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from scaler.gpu import cli
from tests.fakes_nvml import FakeNvml

REPO = Path(__file__).resolve().parent.parent


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="prescaler")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["gpu-exporter", *argv])


def test_defaults() -> None:
    args = parse()

    assert (args.host, args.port, args.interval) == ("0.0.0.0", 9400, 1.0)
    assert (args.attribution, args.pod_resources_refresh) == ("auto", 10.0)
    assert args.pod_resources_socket == "/var/lib/kubelet/pod-resources/kubelet.sock"
    assert args.allow_no_gpu is False
    assert args.func is cli.run


def test_durations_take_the_usual_syntax() -> None:
    assert parse("--interval", "500ms", "--pod-resources-refresh", "1m").interval == 0.5
    assert parse("--pod-resources-refresh", "1m").pod_resources_refresh == 60.0


def test_a_bad_interval_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse("--interval", "soon")

    assert exit_info.value.code == 2
    assert "`soon`: expected a duration" in capsys.readouterr().err


def test_no_driver_exits_2_and_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.run(parse("--attribution", "none"), {}, nvml=FakeNvml(library=False))

    assert status == cli.EXIT_CANNOT_START == 2
    err = capsys.readouterr().err
    assert "libnvidia-ml.so.1" in err
    assert "--allow-no-gpu" in err


def test_sidecar_without_downward_api_variables_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.run(parse("--attribution", "sidecar"), {"POD_NAME": "llm-0"}, nvml=FakeNvml())

    assert status == 2
    assert "POD_NAMESPACE" in capsys.readouterr().err


SERVE = """
import logging, os, sys
from tests.test_gpu_cli import parse
from scaler.gpu import cli
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
sys.exit(cli.run(parse(*sys.argv[1:]), os.environ))
"""


def test_serves_metrics_over_http_and_stops_cleanly_on_sigterm() -> None:
    # Real pynvml: without a driver (CI) this is the --allow-no-gpu path, on a GPU machine the GPUs.
    flags = ["--allow-no-gpu", "--host", "127.0.0.1", "--port", "0", "--attribution", "none"]
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, *flags], cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        log = []
        for line in process.stderr:
            log.append(line)
            if "serving /metrics on" in line:
                break
        port = int(log[-1].rsplit(":", 1)[1])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            body = response.read().decode()
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=30)[1]
    finally:
        process.kill()
        process.wait()

    assert "prescaler_gpu_up{" in body
    assert "# TYPE prescaler_gpu_errors_total counter" in body
    assert process.returncode == 0, "".join(log) + rest
    assert "stopped" in rest


def test_probe_help_runs_without_a_gpu() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_probe.py", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "--out" in result.stdout


def test_scrape_benchmark_with_eight_fake_gpus_meets_its_target() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_scrape.py", "--scrapes", "20", "--steps", "20"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 fake GPUs" in result.stdout
    assert "-> within" in result.stdout
