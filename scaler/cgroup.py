"""The CPU and memory this process may use, from the container's cgroup limits.

`os.cpu_count()` is the node's cores: a pod limited to 2 CPUs on a 64-core node would start 63
forecast workers, each holding the forecasting libraries (~300 MB), and be killed for memory. The
default number of workers is sized here from what the container may use instead: the CPU quota
(cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`), the CPUs the process may run on
(`os.sched_getaffinity`), and the memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`).
Limits of every cgroup from the process's own up to the root apply; the smallest wins.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")

WORKER_BYTES = 300 * 1000**2
"""Resident memory of one forecast worker after its first fits (the forecasting libraries loaded)."""
SERVER_BYTES = 300 * 1000**2
"""Resident memory of the server process itself with a few hundred targets, left out of the budget."""
_UNLIMITED_V1 = 2**62
"""cgroup v1 writes "no limit" as a page-rounded 2**63 - 1; anything this large is no limit."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What the container may use, and where each figure was read."""

    cpus: float
    """CPUs the process may keep busy: the CPU quota or the CPUs it may run on, whichever is fewer."""
    cpus_from: str
    """Where `cpus` comes from, for the start-up log."""
    memory_bytes: int | None
    """The memory limit; None when there is none."""
    memory_from: str


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_paths(proc_cgroup: Path) -> dict[str, str]:
    """Controller (`cpu`, `memory`, or `` for cgroup v2) -> the process's cgroup path."""
    paths: dict[str, str] = {}
    for line in (_read(proc_cgroup) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            paths[controller] = parts[2]
    return paths


def _levels(mount: Path, own: str) -> Iterator[Path]:
    """The process's cgroup directory under `mount` and each parent up to `mount` itself, those that
    exist (inside a cgroup namespace the own path is `/`; without one it may not exist under the
    container's mount, whose root is then the container's cgroup)."""
    parts = [p for p in own.strip("/").split("/") if p and p != ".."]
    for depth in range(len(parts), -1, -1):
        level = mount.joinpath(*parts[:depth])
        if level.is_dir():
            yield level


def _v2_cpu(level: Path) -> float | None:
    quota, _, period = (_read(level / "cpu.max") or "max").partition(" ")
    if quota == "max" or not period:
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def _v1_cpu(level: Path) -> float | None:
    try:
        quota = int(_read(level / "cpu.cfs_quota_us") or "-1")
        period = int(_read(level / "cpu.cfs_period_us") or "0")
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _memory(level: Path, name: str) -> int | None:
    text = _read(level / name)
    if text is None or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 < value < _UNLIMITED_V1 else None


def read_limits(
    root: Path = CGROUP_ROOT,
    proc_cgroup: Path = PROC_SELF_CGROUP,
    affinity: Callable[[], int] = _affinity,
) -> Limits:
    """The container's limits; where no cgroup file is readable, the CPUs the process may run on and
    no memory limit."""
    own = _own_paths(proc_cgroup)
    cpus, cpus_from = float(affinity()), "its CPU affinity; no CPU quota"
    memory: int | None = None
    memory_from = "no memory limit"
    cpu_files: list[tuple[float | None, Path]]
    memory_files: list[tuple[int | None, Path]]
    if (root / "cgroup.controllers").is_file():  # cgroup v2: one unified hierarchy
        levels = list(_levels(root, own.get("", "/")))
        cpu_files = [(_v2_cpu(level), level / "cpu.max") for level in levels]
        memory_files = [(_memory(level, "memory.max"), level / "memory.max") for level in levels]
    else:  # cgroup v1: a hierarchy per controller
        names = ("cpu,cpuacct", "cpu")
        cpu_mount = next((root / n for n in names if (root / n).is_dir()), root / "cpu")
        cpu_files = [
            (_v1_cpu(level), level / "cpu.cfs_quota_us") for level in _levels(cpu_mount, own.get("cpu", "/"))
        ]
        memory_files = [
            (_memory(level, "memory.limit_in_bytes"), level / "memory.limit_in_bytes")
            for level in _levels(root / "memory", own.get("memory", "/"))
        ]
    for quota, where in cpu_files:
        if quota is not None and quota < cpus:
            cpus, cpus_from = quota, f"the CPU quota in {where}"
    for limit, where in memory_files:
        if limit is not None and (memory is None or limit < memory):
            memory, memory_from = limit, f"{where}"
    return Limits(cpus, cpus_from, memory, memory_from)


def forecast_workers(limits: Limits) -> int:
    """Worker processes the limits allow: one per CPU less one left to the server's event loop, and
    no more than fit in memory at `WORKER_BYTES` each beside the server; at least 1."""
    by_cpu = max(1, math.ceil(limits.cpus - 1e-9) - 1)
    if limits.memory_bytes is None:
        return by_cpu
    by_memory = (limits.memory_bytes - SERVER_BYTES) // WORKER_BYTES
    return max(1, min(by_cpu, by_memory))


def default_forecast_workers() -> int:
    """The `--forecast-workers` default: sized from this container's limits."""
    return forecast_workers(read_limits())


def explain(limits: Limits, workers: int) -> str:
    """One line for the start-up log: the limits read and the default they give."""
    memory = (
        "no memory limit"
        if limits.memory_bytes is None
        else f"a memory limit of {limits.memory_bytes / 1024**3:.2f} GiB in {limits.memory_from}"
    )
    default = forecast_workers(limits)
    chosen = "the default" if workers == default else f"set explicitly; the default would be {default}"
    return (
        f"{chosen}, from {limits.cpus:g} CPUs ({limits.cpus_from}) and {memory}, "
        f"at ~{WORKER_BYTES // 1000**2} MB per worker"
    )
