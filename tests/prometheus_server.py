"""A real Prometheus server for integration tests, loaded with known series by backfilling.

`backfilled_prometheus(series, workdir)` writes the series as OpenMetrics, turns them into TSDB blocks
with `promtool tsdb create-blocks-from openmetrics`, starts `prometheus` on a free loopback port with no
scrape targets, waits for `/-/ready`, yields the base URL and stops the process afterwards.
`fixture_series` and `describe` are the data set of the `prometheus_url` fixture (tests/conftest.py).

Both binaries come from Debian's `prometheus` package (CI installs it); without them the tests fail, they
are never skipped.
"""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import httpx
import numpy as np
import numpy.typing as npt

from scaler.traces import Trace

INSTALL_HINT = "install Debian's prometheus package (`apt-get install prometheus`), which provides both"
READY_TIMEOUT_S = 30.0
"""Longest wait for `/-/ready`; it takes well under a second with the test data set."""
STOP_TIMEOUT_S = 10.0
"""Time prometheus gets to exit after SIGTERM before it is killed."""
RETENTION = "100y"
"""Prometheus deletes blocks older than its retention window, backfilled or not."""

TRACE_FILE = Path(__file__).parent / "fixtures" / "ec2_cpu_utilization_5f5533.csv"
LOAD_METRIC = "prescaler_test_load"
LOAD_LABELS = {"trace": "ec2_cpu"}
MULTI_METRIC = "prescaler_test_multi"
MULTI_VALUES = {"a": 1.0, "b": 2.0, "c": 4.0}
NAN_METRIC = "prescaler_test_nan"
EXTRA_POINTS = 12
"""The three-series and NaN metrics cover the trace's last EXTRA_POINTS timestamps."""
END_BEFORE_NOW_S = 120.0
"""The shifted trace ends about this long before the wall-clock time of the test session's start."""


class PrometheusMissingError(RuntimeError):
    """`prometheus` or `promtool` is not installed."""


class Backfill(NamedTuple):
    """One series to load: its metric name, labels, and samples (unix seconds, ascending)."""

    metric: str
    labels: Mapping[str, str]
    at_s: Sequence[float]
    values: Sequence[float]


@dataclass(frozen=True, slots=True)
class LoadedPrometheus:
    """A running Prometheus and what it holds; all times are unix seconds after the shift."""

    url: str
    """Base URL, e.g. `http://127.0.0.1:40123`."""
    metric: str
    """Metric name of the trace, `prescaler_test_load`."""
    selector: str
    """Selector of exactly the trace series: `prescaler_test_load{trace="ec2_cpu"}`."""
    shift_s: float
    """Added to every trace timestamp (a whole number of minutes); Prometheus time = trace time + shift_s."""
    start_s: float
    """Time of the trace's first sample in Prometheus."""
    end_s: float
    """Time of the trace's last sample in Prometheus; the other metrics end here too."""
    step_s: float
    """The trace's sample spacing (300 s)."""
    at_s: npt.NDArray[np.float64]
    """Every sample time of the trace in Prometheus, ascending."""
    values: npt.NDArray[np.float64]
    """The trace's values, as in the CSV."""
    multi_metric: str
    """Metric with three series, instance a, b and c, constant at MULTI_VALUES."""
    nan_metric: str
    """Metric with one series whose last value (at end_s) is NaN; 1.0 before that."""


def binaries() -> tuple[str, str]:
    """Paths of `prometheus` and `promtool`; PrometheusMissingError naming what to install if absent."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        missing = [
            name for name, path in (("prometheus", prometheus), ("promtool", promtool)) if path is None
        ]
        raise PrometheusMissingError(f"{' and '.join(missing)} not found on PATH; {INSTALL_HINT}")
    return prometheus, promtool


def shift_for(trace: Trace, now_s: float) -> float:
    """Whole minutes to add to the trace's times so that it ends END_BEFORE_NOW_S or a little more before `now_s`."""
    return math.floor((now_s - END_BEFORE_NOW_S - float(trace.at_s[-1])) / 60.0) * 60.0


def fixture_series(trace: Trace, shift_s: float) -> list[Backfill]:
    """What the `prometheus_url` fixture loads: the shifted trace, three series, and one ending in NaN."""
    at_s = trace.at_s + shift_s
    tail = [float(t) for t in at_s[-EXTRA_POINTS:]]
    series = [Backfill(LOAD_METRIC, LOAD_LABELS, at_s.tolist(), trace.values.tolist())]
    for instance, value in MULTI_VALUES.items():
        series.append(Backfill(MULTI_METRIC, {"instance": instance}, tail, [value] * len(tail)))
    series.append(Backfill(NAN_METRIC, {}, tail, [1.0] * (len(tail) - 1) + [math.nan]))
    return series


def describe(url: str, trace: Trace, shift_s: float) -> LoadedPrometheus:
    """The LoadedPrometheus of `fixture_series(trace, shift_s)` served at `url`."""
    at_s = trace.at_s + shift_s
    labels = ",".join(f'{k}="{v}"' for k, v in LOAD_LABELS.items())
    return LoadedPrometheus(
        url=url,
        metric=LOAD_METRIC,
        selector=f"{LOAD_METRIC}{{{labels}}}",
        shift_s=shift_s,
        start_s=float(at_s[0]),
        end_s=float(at_s[-1]),
        step_s=trace.step_s,
        at_s=at_s,
        values=trace.values,
        multi_metric=MULTI_METRIC,
        nan_metric=NAN_METRIC,
    )


@contextmanager
def backfilled_prometheus(series: Iterable[Backfill], workdir: Path) -> Iterator[str]:
    """Run prometheus over `series` (backfilled into `workdir`); yields its base URL."""
    prometheus, promtool = binaries()
    data_dir = workdir / "data"
    openmetrics = workdir / "backfill.om"
    write_openmetrics(series, openmetrics)
    create_blocks(promtool, openmetrics, data_dir)
    config = "# No scrape targets: every series is backfilled.\nscrape_configs: []\n"
    with running_prometheus(prometheus, config, workdir, f"--storage.tsdb.retention.time={RETENTION}") as url:
        yield url


@contextmanager
def running_prometheus(prometheus: str, config: str, workdir: Path, *flags: str) -> Iterator[str]:
    """`prometheus` with `config` (YAML text) and its TSDB in `workdir`, on a free loopback port, until
    the block ends; yields its base URL."""
    config_path = workdir / "prometheus.yml"
    config_path.write_text(config)
    log_path = workdir / "prometheus.log"
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        prometheus,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address={url.removeprefix('http://')}",
        *flags,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        try:
            wait_ready(url, process, log_path)
            yield url
        finally:
            stop(process)


def write_openmetrics(series: Iterable[Backfill], path: Path) -> None:
    """Write `series` as an OpenMetrics text file, a family's series together, gauges, `# EOF` last."""
    families: dict[str, list[Backfill]] = {}
    for one in series:
        families.setdefault(one.metric, []).append(one)
    lines = []
    for metric, members in families.items():
        lines.append(f"# TYPE {metric} gauge")
        for one in members:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(one.labels.items()))
            name = f"{metric}{{{labels}}}" if labels else metric
            lines.extend(
                f"{name} {_number(value)} {at:.3f}" for at, value in zip(one.at_s, one.values, strict=True)
            )
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


def create_blocks(promtool: str, openmetrics: Path, data_dir: Path) -> None:
    """`promtool tsdb create-blocks-from openmetrics`; RuntimeError with promtool's output on failure."""
    command = [
        promtool,
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        "--quiet",
        str(openmetrics),
        str(data_dir),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {done.returncode}:\n{_tail(done.stdout + done.stderr)}"
        )


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it for a socket bound to 127.0.0.1:0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll `/-/ready` until it answers 200; RuntimeError with the log's tail if it never does."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with {process.returncode} before it was ready; "
                    f"its log ({log_path}) ends with:\n{_tail(log_path.read_text(errors='replace'))}"
                )
            try:
                if client.get(f"{url}/-/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # a server starting up, polled from a fixture, not a test
    raise RuntimeError(
        f"prometheus at {url} was not ready within {READY_TIMEOUT_S:g}s; "
        f"its log ({log_path}) ends with:\n{_tail(log_path.read_text(errors='replace'))}"
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT_S."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
