"""`prescaler serve` as a child process, started the way a user starts it, ports read from its banner."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent


class Served(NamedTuple):
    process: subprocess.Popen[str]
    grpc_port: int
    http_port: int
    banner: list[str]
    """The lines printed up to `Stop with ...`."""


def start_serve(*flags: str, stderr: int | None = subprocess.STDOUT) -> Served:
    """`python -m scaler serve` on 127.0.0.1 with free ports and `flags`; returns once it listens."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scaler",
            "serve",
            "--host",
            "127.0.0.1",
            "--grpc-port",
            "0",
            "--metrics-port",
            "0",
            *flags,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Stop with"):
            break
    text = "".join(lines)
    grpc_port = re.search(r"gRPC\s+127\.0\.0\.1:(\d+)", text)
    http_port = re.search(r"HTTP\s+127\.0\.0\.1:(\d+)", text)
    if grpc_port is None or http_port is None:
        process.kill()
        process.wait(10)
        raise RuntimeError(f"prescaler serve did not start:\n{text}")
    return Served(process, int(grpc_port.group(1)), int(http_port.group(1)), lines)


def stop(served: Served) -> None:
    """Kill it if it still runs, and reap it."""
    if served.process.poll() is None:
        served.process.kill()
    served.process.wait(10)
    if served.process.stdout is not None:
        served.process.stdout.close()
