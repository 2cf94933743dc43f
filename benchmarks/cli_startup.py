"""CLI start-up: wall time of `prescaler --help`, `--version` and `call --help` against `python -c pass`.

Each command runs as a new process, as a user types it (the venv's `prescaler` script), `--runs` times,
round-robin so that a busy neighbour slows every command alike; the report gives the median and the
slowest run, and each median as a multiple of the interpreter's own start-up measured in the same run.
`import forecasting` is the reference for what every command paid before the imports were made lazy.
With `--demo`, `make demo` (the what-if simulation a new user runs first) is timed once too, so that
the time its help line claims is a measured one.

    python -m benchmarks.cli_startup --demo --out /tmp/cli_startup.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._provenance import ROOT, commit, emit

TARGET_S = 1.0
"""Acceptance (issue #14): each light command under 1 s."""


def _commands() -> dict[str, list[str]]:
    prescaler = str(Path(sys.executable).with_name("prescaler"))
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "prescaler --help": [prescaler, "--help"],
        "prescaler --version": [prescaler, "--version"],
        "prescaler call --help": [prescaler, "call", "--help"],
        "python -c 'import forecasting' (reference)": [sys.executable, "-c", "import forecasting"],
    }


def _time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10, help="runs of each command (default 10)")
    parser.add_argument("--demo", action="store_true", help="time `make demo` once as well")
    parser.add_argument("--out", type=Path, help="write the markdown results here")
    args = parser.parse_args(argv)
    commands = _commands()
    for command in commands.values():
        _time(command)  # the first run fills the OS page cache and writes the .pyc files
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            seconds[name].append(_time(command))
    base = statistics.median(seconds["python -c pass"])
    lines = [
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit {commit()}",
        f"- {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {os.getloadavg()[0]:.2f} at the end; {args.runs} runs each",
        "",
        "| command | median (s) | slowest (s) | median / `python -c pass` |",
        "|---|---|---|---|",
    ]
    for name, values in seconds.items():
        median = statistics.median(values)
        lines.append(f"| `{name}` | {median:.3f} | {max(values):.3f} | {median / base:.1f} |")
    light = [n for n in seconds if n.startswith("prescaler")]
    slowest = max(statistics.median(seconds[n]) for n in light)
    verdict = "meets" if slowest < TARGET_S else "misses"
    lines += ["", f"- slowest prescaler command: {slowest:.3f} s median; {verdict} the {TARGET_S:g} s target"]
    if args.demo:
        with tempfile.TemporaryDirectory() as folder:
            # -o: the installed venv counts as up to date (no reinstall inside the measurement).
            demo_s = _time(
                ["make", "-s", "-C", str(ROOT), "-o", ".venv/bin/prescaler", "demo", f"DEMO_DIR={folder}"]
            )
        lines.append(f"- `make demo`: {demo_s:.0f} s, one run")
    emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
