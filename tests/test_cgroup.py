"""The forecast-worker default from the container's limits, on cgroup trees written as the kernel
writes them (v2 unified, v1 per controller, nested, unlimited)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaler import cgroup
from scaler.cgroup import Limits, explain, forecast_workers, read_limits
from scaler.settings import Settings

GIB = 1024**3


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def _limits(tmp_path: Path, files: dict[str, str], proc: str, cpus: int = 64) -> Limits:
    _write(tmp_path / "fs", files)
    (tmp_path / "proc").write_text(proc)
    return read_limits(tmp_path / "fs", tmp_path / "proc", affinity=lambda: cpus)


@pytest.mark.parametrize(
    ("files", "proc", "cpus", "memory", "workers"),
    [
        pytest.param(
            {"cgroup.controllers": "cpu memory", "cpu.max": "200000 100000", "memory.max": str(GIB)},
            "0::/\n",
            2.0,
            GIB,
            1,
            id="v2-2cpu-1gi",
        ),
        pytest.param(
            {"cgroup.controllers": "cpu memory", "cpu.max": "400000 100000", "memory.max": str(GIB)},
            "0::/\n",
            4.0,
            GIB,
            2,
            id="v2-memory-caps-cpu",
        ),
        pytest.param(
            {"cgroup.controllers": "cpu memory", "cpu.max": "150000 100000", "memory.max": "max"},
            "0::/\n",
            1.5,
            None,
            1,
            id="v2-fractional-cpu-no-memory-limit",
        ),
        pytest.param(
            {"cgroup.controllers": "", "cpu.max": "max 100000", "memory.max": "max"},
            "0::/\n",
            64.0,
            None,
            63,
            id="v2-unlimited-uses-affinity",
        ),
        pytest.param(
            {
                "cgroup.controllers": "cpu memory",
                "kubepods/cpu.max": "300000 100000",
                "kubepods/pod1/cpu.max": "max 100000",
                "kubepods/pod1/memory.max": str(8 * GIB),
            },
            "0::/kubepods/pod1\n",
            3.0,
            8 * GIB,
            2,
            id="v2-parent-limit-applies",
        ),
        pytest.param(
            {
                "cpu,cpuacct/cpu.cfs_quota_us": "600000",
                "cpu,cpuacct/cpu.cfs_period_us": "100000",
                "memory/memory.limit_in_bytes": str(4 * GIB),
            },
            "4:memory:/\n3:cpu,cpuacct:/\n",
            6.0,
            4 * GIB,
            5,
            id="v1",
        ),
        pytest.param(
            {
                "cpu/cpu.cfs_quota_us": "-1",
                "cpu/cpu.cfs_period_us": "100000",
                "memory/memory.limit_in_bytes": "9223372036854771712",
            },
            "4:memory:/docker/abc\n1:cpu:/docker/abc\n",
            64.0,
            None,
            63,
            id="v1-unlimited-own-path-not-mounted",
        ),
    ],
)
def test_limits_and_workers(
    tmp_path: Path,
    files: dict[str, str],
    proc: str,
    cpus: float,
    memory: int | None,
    workers: int,
) -> None:
    limits = _limits(tmp_path, files, proc)
    assert (limits.cpus, limits.memory_bytes) == (cpus, memory)
    assert forecast_workers(limits) == workers


def test_affinity_below_the_quota_wins(tmp_path: Path) -> None:
    limits = _limits(tmp_path, {"cgroup.controllers": "cpu", "cpu.max": "800000 100000"}, "0::/\n", cpus=3)
    assert limits.cpus == 3 and forecast_workers(limits) == 2
    assert "affinity" in limits.cpus_from


def test_no_cgroup_files_at_all(tmp_path: Path) -> None:
    limits = read_limits(tmp_path / "absent", tmp_path / "absent-proc", affinity=lambda: 4)
    assert limits == Limits(4.0, limits.cpus_from, None, "no memory limit")
    assert forecast_workers(limits) == 3


def test_tiny_memory_still_gets_one_worker() -> None:
    assert forecast_workers(Limits(8.0, "q", 256 * 1024**2, "m")) == 1


def test_the_startup_line_says_what_was_read(tmp_path: Path) -> None:
    limits = _limits(
        tmp_path,
        {"cgroup.controllers": "cpu memory", "cpu.max": "400000 100000", "memory.max": str(GIB)},
        "0::/\n",
    )
    line = explain(limits, 2)
    assert line.startswith("the default, from 4 CPUs (the CPU quota in ")
    assert "cpu.max" in line and "a memory limit of 1.00 GiB" in line and "~300 MB per worker" in line
    assert explain(limits, 6).startswith("set explicitly; the default would be 2")


def test_settings_default_is_the_cgroup_sizing() -> None:
    assert Settings().forecast_workers == cgroup.default_forecast_workers() >= 1
