"""Scrape cost of the GPU exporter with fake GPUs: ms per scrape, and the cost of one sampling step.

A scrape renders the latest snapshot from memory, so its cost is prometheus-client's text rendering
of ~11 families x N devices. The sampling step is timed against the fake NVML of tests/fakes_nvml.py,
so it measures the exporter's own Python per device; a real NVML adds its calls on top (~3 us for a
utilization-rates call, one GPM sample and one metrics computation per device).

    .venv/bin/python benchmarks/gpu_scrape.py [--gpus 8] [--scrapes 2000] [--steps 2000]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from scaler.gpu.exporter import Exporter  # noqa: E402
from tests.fakes_nvml import FakeNvml, h200s  # noqa: E402

TARGET_SCRAPE_MS = 50.0


def per_call_s(call: Callable[[], object], count: int, repeats: int = 5) -> float:
    """Median over `repeats` rounds of the mean seconds per call in a round of `count` calls."""
    rounds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(count):
            call()
        rounds.append((time.perf_counter() - started) / count)
    return statistics.median(rounds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gpus", type=int, default=8, help="fake GPUs (default %(default)s)")
    parser.add_argument("--scrapes", type=int, default=2000, help="scrapes per round (default %(default)s)")
    parser.add_argument(
        "--steps", type=int, default=2000, help="sampling steps per round (default %(default)s)"
    )
    args = parser.parse_args(argv)

    registry = CollectorRegistry()
    exporter = Exporter(registry=registry, nvml=FakeNvml(h200s(args.gpus)))
    exporter.start()
    exporter.step()
    exporter.step()  # the second step completes the first GPM pair
    body = generate_latest(registry)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))

    scrape_s = per_call_s(lambda: generate_latest(registry), args.scrapes)
    step_s = per_call_s(exporter.step, args.steps)
    exporter.close()

    print(f"python {platform.python_version()} on {platform.machine()}, {args.gpus} fake GPUs")
    print(f"scrape:        {scrape_s * 1e3:.3f} ms ({series} series, {len(body)} bytes)")
    print(f"sampling step: {step_s * 1e3:.3f} ms, {step_s / args.gpus * 1e6:.1f} us per GPU (fake NVML)")
    verdict = "within" if scrape_s * 1e3 < TARGET_SCRAPE_MS else "OVER"
    print(f"target: scrape under {TARGET_SCRAPE_MS:g} ms -> {verdict}")
    return 0 if verdict == "within" else 1


if __name__ == "__main__":
    sys.exit(main())
