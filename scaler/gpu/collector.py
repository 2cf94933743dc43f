"""The Prometheus side: the latest Snapshot served from memory, so a scrape costs no NVML call.

A scrape never serves a stale number as fresh: once the snapshot is older than `max_age_s`, the
value series vanish and every device reports `prescaler_gpu_up 0` until sampling catches up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scaler.gpu.model import NO_POD, DeviceInfo, Snapshot

DEVICE_LABELS = ("gpu", "uuid", "name", "mig", "namespace", "pod", "container")
ERROR_LABELS = ("gpu", "uuid", "mig", "reason")


class _Family(NamedTuple):
    name: str
    help: str
    field: str
    """The Reading attribute holding the value."""
    sourced: bool
    """Whether the series carry a `source` label (gpm or utilization_rates)."""


FAMILIES = (
    _Family(
        "prescaler_gpu_sm_active", "Fraction of SMs busy over the sample period (0-1).", "sm_active", True
    ),
    _Family(
        "prescaler_gpu_sm_occupancy",
        "Resident warps over the theoretical maximum (0-1).",
        "sm_occupancy",
        True,
    ),
    _Family(
        "prescaler_gpu_tensor_active", "Fraction of time tensor cores were busy (0-1).", "tensor_active", True
    ),
    _Family("prescaler_gpu_dram_active", "DRAM bandwidth used over the peak (0-1).", "dram_active", True),
    _Family(
        "prescaler_gpu_utilization_legacy",
        "nvmlDeviceGetUtilizationRates().gpu as 0-1: time any kernel ran, however small.",
        "utilization_legacy",
        False,
    ),
    _Family("prescaler_gpu_memory_used_bytes", "Device memory in use.", "memory_used_bytes", False),
    _Family("prescaler_gpu_memory_total_bytes", "Device memory in total.", "memory_total_bytes", False),
    _Family("prescaler_gpu_power_watts", "Power draw of the board.", "power_watts", False),
)
UP = "prescaler_gpu_up"
ERRORS = "prescaler_gpu_errors"
DURATION = "prescaler_gpu_sample_duration_seconds"


class GpuCollector(Collector):
    """Turns the latest Snapshot into metric families; `publish` and `count_error` feed it."""

    def __init__(self, *, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age_s = max_age_s
        """A snapshot older than this is not served."""
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._errors: dict[tuple[str, str, str, str], float] = {}
        self._lock = threading.Lock()

    def publish(self, snapshot: Snapshot) -> None:
        """Serve `snapshot` from now on (called by the sampling loop)."""
        self._snapshot = snapshot

    def count_error(self, device: DeviceInfo | None, reason: str) -> None:
        """Add one to prescaler_gpu_errors_total; `device=None` for errors of no one device."""
        key = ("", "", "", reason) if device is None else (str(device.gpu), device.uuid, device.mig, reason)
        with self._lock:
            self._errors[key] = self._errors.get(key, 0.0) + 1.0

    def describe(self) -> Iterable[Metric]:
        # Names only, so that registering does not run collect().
        for family in FAMILIES:
            yield GaugeMetricFamily(family.name, family.help)
        yield GaugeMetricFamily(UP, "")
        yield CounterMetricFamily(ERRORS, "")
        yield GaugeMetricFamily(DURATION, "")

    def collect(self) -> Iterable[Metric]:
        snapshot = self._snapshot
        fresh = snapshot is not None and self._clock() - snapshot.taken_at_s <= self._max_age_s
        if snapshot is not None and fresh:
            yield from self._values(snapshot)
        yield self._up(snapshot, fresh)
        errors = CounterMetricFamily(
            ERRORS, "NVML and pod-resources errors, by device and NVML error.", labels=ERROR_LABELS
        )
        with self._lock:
            counts = list(self._errors.items())
        for labels, count in counts:
            errors.add_metric(labels, count)
        yield errors
        duration = GaugeMetricFamily(DURATION, "Wall time of the last sampling step over all devices.")
        if snapshot is not None:
            duration.add_metric((), snapshot.duration_s)
        yield duration

    def _values(self, snapshot: Snapshot) -> Iterator[Metric]:
        labelled = [(reading, _labels(reading.device, snapshot)) for reading in snapshot.readings]
        for family in FAMILIES:
            names = (*DEVICE_LABELS, "source") if family.sourced else DEVICE_LABELS
            metric = GaugeMetricFamily(family.name, family.help, labels=names)
            for reading, labels in labelled:
                value: float | None = getattr(reading, family.field)
                if value is None:
                    continue
                metric.add_metric((*labels, reading.source or "") if family.sourced else labels, value)
            yield metric

    def _up(self, snapshot: Snapshot | None, fresh: bool) -> Metric:
        up = GaugeMetricFamily(
            UP,
            "1 when the device was read in the last sample and that sample is fresh.",
            labels=DEVICE_LABELS,
        )
        if snapshot is None:
            return up
        if not snapshot.nvml_ok:
            up.add_metric(("",) * len(DEVICE_LABELS), 0.0)
        for reading in snapshot.readings:
            up.add_metric(_labels(reading.device, snapshot), 1.0 if fresh else 0.0)
        for failure in snapshot.failures:
            up.add_metric(_labels(failure.device, snapshot), 0.0)
        return up


def _labels(device: DeviceInfo, snapshot: Snapshot) -> tuple[str, ...]:
    pod = snapshot.pods.get(device.uuid, NO_POD)
    return (str(device.gpu), device.uuid, device.name, device.mig, pod.namespace, pod.pod, pod.container)
