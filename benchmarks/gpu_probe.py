"""What the exporter reports on a real GPU under heavy, tiny and no work, beside the legacy number.

Runs the exporter's sampling step in-process (a thread, every --interval) while this process loads
GPU --gpu in three phases:

1. heavy: a bf16 8192x8192 matmul loop (tensor cores, every SM busy);
2. tiny: a 1-element in-place add launched back to back (one block on one SM at a time);
3. idle: nothing.

It prints one row per phase, SM activity / SM occupancy / tensor activity from NVML GPM next to
`nvmlDeviceGetUtilizationRates` ("legacy"), the mean of the samples that lie wholly inside the
phase, plus driver, GPU and date; `--out` writes the same as markdown. Under 60 s in all.

Imports: pynvml (nvidia-ml-py), prometheus-client and scaler.gpu from this repository (no grpc
needed), and torch with CUDA, else cupy. Run from the repository root:

    python benchmarks/gpu_probe.py --out benchmarks/gpu_probe_results.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MATMUL_N = 8192
FIELDS = ("sm_active", "sm_occupancy", "tensor_active", "utilization_legacy")


@dataclass
class Backend:
    """One way to put work on the GPU; each load runs for about `seconds` and returns a note."""

    name: str
    heavy: Callable[[float], str]
    tiny: Callable[[float], str]
    sync: Callable[[], None]


@dataclass
class Recorder:
    """Calls `step` every `interval_s` in a thread and keeps (time, reading) of one GPU."""

    step: Callable[[], Any]
    interval_s: float
    gpu: int
    samples: list[tuple[float, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        next_s = time.monotonic()
        while not self._stop.is_set():
            snapshot = self.step()
            for reading in snapshot.readings:
                if reading.device.gpu == self.gpu and not reading.device.mig:
                    self.samples.append((snapshot.taken_at_s, reading))
            next_s += self.interval_s
            self._stop.wait(max(next_s - time.monotonic(), 0.0))

    def stop(self) -> None:
        self._stop.set()


def torch_backend(gpu: int) -> Backend | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        print("torch is installed but sees no CUDA device", file=sys.stderr)
        return None
    device = torch.device("cuda", gpu)
    a = torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=torch.bfloat16)
    b = torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=torch.bfloat16)
    c = torch.empty_like(a)
    x = torch.zeros(1, device=device)

    def heavy(seconds: float) -> str:
        return _matmul_loop(lambda: torch.matmul(a, b, out=c), sync, seconds)

    def tiny(seconds: float) -> str:
        return _tiny_loop(lambda: x.add_(1.0), sync, seconds)

    def sync() -> None:
        torch.cuda.synchronize(device)

    heavy(1.0)  # warm cuBLAS up outside the phases
    return Backend(f"torch {torch.__version__} (CUDA {torch.version.cuda}), bf16 matmul", heavy, tiny, sync)


def cupy_backend(gpu: int) -> Backend | None:
    try:
        import cupy
    except ImportError:
        return None
    cupy.cuda.Device(gpu).use()
    # cupy has no bf16 matmul; fp16 also runs on tensor cores.
    a = cupy.random.random((MATMUL_N, MATMUL_N), dtype=cupy.float32).astype(cupy.float16)
    b = cupy.random.random((MATMUL_N, MATMUL_N), dtype=cupy.float32).astype(cupy.float16)
    c = cupy.empty_like(a)
    x = cupy.zeros(1, dtype=cupy.float32)

    def heavy(seconds: float) -> str:
        return _matmul_loop(lambda: cupy.matmul(a, b, out=c), sync, seconds)

    def tiny(seconds: float) -> str:
        return _tiny_loop(lambda: x.__iadd__(1.0), sync, seconds)

    def sync() -> None:
        cupy.cuda.Device(gpu).synchronize()

    heavy(1.0)
    return Backend(f"cupy {cupy.__version__}, fp16 matmul (no bf16 in cupy)", heavy, tiny, sync)


def _matmul_loop(matmul: Callable[[], object], sync: Callable[[], None], seconds: float) -> str:
    started = time.monotonic()
    count = 0
    while time.monotonic() - started < seconds:
        for _ in range(10):
            matmul()
        sync()
        count += 10
    elapsed = time.monotonic() - started
    return f"{2 * MATMUL_N**3 * count / elapsed / 1e12:.0f} TFLOP/s"


def _tiny_loop(launch: Callable[[], object], sync: Callable[[], None], seconds: float) -> str:
    started = time.monotonic()
    count = 0
    while time.monotonic() - started < seconds:
        for _ in range(1000):
            launch()
        sync()
        count += 1000
    return f"{count / (time.monotonic() - started) / 1e3:.0f}k launches/s"


def mean_in(
    samples: list[tuple[float, Any]], start_s: float, end_s: float, interval_s: float
) -> dict[str, Any]:
    """Means of the readings whose whole sample period lies inside [start_s, end_s]."""
    inside = [r for t, r in samples if t - interval_s >= start_s and t <= end_s]
    means: dict[str, Any] = {
        "samples": len(inside),
        "source": ",".join(sorted({str(r.source) for r in inside})),
    }
    for name in FIELDS:
        values = [getattr(r, name) for r in inside if getattr(r, name) is not None]
        means[name] = statistics.fmean(values) if values else None
    return means


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="also write the table as markdown here")
    parser.add_argument("--gpu", type=int, default=0, help="NVML index of the GPU to load (default 0)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the heavy and tiny phases")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="length of the idle phase")
    parser.add_argument("--interval", type=float, default=1.0, help="sampling interval in seconds")
    args = parser.parse_args(argv)

    # CUDA then numbers GPUs as NVML does; set before torch or cupy initialise CUDA.
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    sys.path.insert(0, str(REPO))
    try:
        import pynvml
        from prometheus_client import CollectorRegistry

        from scaler.gpu.exporter import Exporter
    except ImportError as exc:
        print(f"gpu_probe needs nvidia-ml-py and prometheus-client: {exc}", file=sys.stderr)
        return 2

    backend = torch_backend(args.gpu) or cupy_backend(args.gpu)
    if backend is None:
        print("gpu_probe needs torch with CUDA, or cupy, to put work on the GPU", file=sys.stderr)
        return 2
    print(f"load generator: {backend.name}")

    exporter = Exporter(registry=CollectorRegistry(), interval_s=args.interval)
    exporter.start()
    driver = pynvml.nvmlSystemGetDriverVersion()
    recorder = Recorder(exporter.step, args.interval, args.gpu)
    thread = threading.Thread(target=recorder.run, name="sampler", daemon=True)
    thread.start()

    def idle(seconds: float) -> str:
        backend.sync()
        time.sleep(seconds)
        return "no work"

    phases = (
        (f"heavy: bf16 {MATMUL_N}x{MATMUL_N} matmul loop", backend.heavy, args.seconds),
        ("tiny: 1-element add, back to back", backend.tiny, args.seconds),
        ("idle", idle, args.idle_seconds),
    )
    windows = []
    try:
        for title, load, seconds in phases:
            print(f"phase {title} ({seconds:g} s) ...", flush=True)
            started = time.monotonic()
            note = load(seconds)
            windows.append((title, note, started, time.monotonic()))
        time.sleep(args.interval)  # let the sampler finish the last period
    finally:
        recorder.stop()
        thread.join()
        exporter.close()

    gpu_name = recorder.samples[-1][1].device.name if recorder.samples else "?"
    lines = [
        f"GPU {args.gpu}: {gpu_name}, driver {driver}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"load: {backend.name}; python {platform.python_version()}; sampling every {args.interval:g} s",
        "",
        "| phase | exporter SM activity | SM occupancy | tensor activity | legacy utilization "
        "| source | samples | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for title, note, started, ended in windows:
        m = mean_in(recorder.samples, started, ended, args.interval)
        lines.append(
            f"| {title} | {percent(m['sm_active'])} | {percent(m['sm_occupancy'])} "
            f"| {percent(m['tensor_active'])} | {percent(m['utilization_legacy'])} | {m['source']} "
            f"| {m['samples']} | {note} |"
        )
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if args.out is not None:
        args.out.write_text(f"# GPU exporter probe\n\n{text}")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
