"""Shared fixtures; each group below is self-contained."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from scaler.traces import load_trace
from tests.prometheus_server import (
    TRACE_FILE,
    LoadedPrometheus,
    PrometheusMissingError,
    backfilled_prometheus,
    binaries,
    describe,
    fixture_series,
    shift_for,
)
from tests.servers import DAY, EPOCH, diurnal

# --- Property tests ------------------------------------------------------------------------------
# `make test` (and so CI) draws the same examples on every run, so a run that passes passes again and a
# failure reproduces; HYPOTHESIS_PROFILE=explore draws new ones, ten times as many, to look for cases.

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# --- Real Prometheus server (tests/prometheus_server.py) -----------------------------------------
# Tests marked `prometheus` fail, never skip, when the binaries are missing: CI installs them.


def _require_prometheus_binaries() -> None:
    try:
        binaries()
    except PrometheusMissingError as exc:
        message = str(exc)
    else:
        return
    pytest.fail(message, pytrace=False)


@pytest.fixture(autouse=True)
def _prometheus_binaries_for_marked_tests(request: pytest.FixtureRequest) -> None:
    """Fail a `@pytest.mark.prometheus` test up front, with the install hint, if a binary is missing."""
    if request.node.get_closest_marker("prometheus") is not None:
        _require_prometheus_binaries()


@pytest.fixture(scope="session")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedPrometheus]:
    """A Prometheus server holding the test data set; yields its URL and what it holds.

    The EC2 CPU trace is shifted to end about two minutes before the session started, as
    `prescaler_test_load{trace="ec2_cpu"}`; `prescaler_test_multi` has three series (instance a, b, c)
    and `prescaler_test_nan` ends in NaN, both over the trace's last hour. See LoadedPrometheus.
    """
    _require_prometheus_binaries()
    trace = load_trace(TRACE_FILE)
    shift_s = shift_for(trace, time.time())
    workdir = tmp_path_factory.mktemp("prometheus")
    with backfilled_prometheus(fixture_series(trace, shift_s), workdir) as url:
        yield describe(url, trace, shift_s)


# --- A replayed diurnal trace (predictive and shadow mode on a fake clock) ----------------------


@pytest.fixture
def trace_dir(tmp_path: Path) -> Path:
    """A folder with `diurnal.csv`: ten days of `tests.servers.diurnal` at 5 min, for replay sources."""
    at = EPOCH + np.arange(0, 10 * DAY, 300.0)
    rows = "\n".join(f"{a:.0f},{v:.4f}" for a, v in zip(at, diurnal(at), strict=True))
    (tmp_path / "diurnal.csv").write_text("timestamp,value\n" + rows + "\n")
    return tmp_path
