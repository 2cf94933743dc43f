"""One reading per device per call, from NVML GPM where the GPU has it, utilization rates otherwise.

GPM metrics are computed between two GPM samples. Each device keeps the sample of the previous call
and a spare buffer, so a call takes one GPM sample per device and the metrics cover exactly the time
since the previous call (the sampling interval). The first call after start, or after a device error,
only primes: its reading has no GPM numbers yet.

Blocking NVML calls: run `sample()` off the event loop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from scaler.gpu.devices import Device
from scaler.gpu.model import DeviceFailure, Reading
from scaler.gpu.nvml_api import Nvml, error_code, reason_of

logger = logging.getLogger(__name__)


class GpmValues(NamedTuple):
    """GPM metrics over one sample pair, as ratios 0-1; None where NVML returned an error for one."""

    sm_active: float | None
    sm_occupancy: float | None
    tensor_active: float | None
    dram_active: float | None


class _GpmRefused(Exception):
    """GPM sampling was denied or is unsupported on this device; it stays on utilization rates."""


@dataclass(slots=True)
class _GpmBuffers:
    previous: Any
    spare: Any
    primed: bool = False
    """Whether `previous` holds a sample from the last call (else the next call only primes)."""


class NvmlSampler:
    """Reads the devices given; never raises NVMLError: a failing device yields a DeviceFailure."""

    def __init__(self, nvml: Nvml, devices: Sequence[Device]) -> None:
        self._nvml = nvml
        self._devices = tuple(devices)
        self._gpm: dict[str, _GpmBuffers] = {}
        self._no_gpm: set[str] = {d.info.uuid for d in devices if not d.gpm}
        self._metric_ids = (
            nvml.NVML_GPM_METRIC_SM_UTIL,
            nvml.NVML_GPM_METRIC_SM_OCCUPANCY,
            nvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL,
            nvml.NVML_GPM_METRIC_DRAM_BW_UTIL,
        )

    @property
    def devices(self) -> tuple[Device, ...]:
        return self._devices

    def sample(self) -> list[Reading | DeviceFailure]:
        """A Reading or a DeviceFailure for every device, in discovery order."""
        outcomes: list[Reading | DeviceFailure] = []
        for device in self._devices:
            try:
                outcomes.append(self._read(device))
            except self._nvml.NVMLError as exc:
                buffers = self._gpm.get(device.info.uuid)
                if buffers is not None:
                    buffers.primed = False
                outcomes.append(DeviceFailure(device.info, reason_of(exc)))
        return outcomes

    def close(self) -> None:
        """Free the GPM sample buffers; NVML itself is shut down by whoever initialised it."""
        for buffers in self._gpm.values():
            for sample in (buffers.previous, buffers.spare):
                try:
                    self._nvml.nvmlGpmSampleFree(sample)
                except self._nvml.NVMLError as exc:
                    logger.debug("freeing a GPM sample failed: %s", reason_of(exc))
        self._gpm.clear()

    def _read(self, device: Device) -> Reading:
        nvml = self._nvml
        memory = nvml.nvmlDeviceGetMemoryInfo(device.handle)
        power_mw = self._optional(nvml.nvmlDeviceGetPowerUsage, device.handle)
        rates = self._optional(nvml.nvmlDeviceGetUtilizationRates, device.handle)
        legacy = _ratio(rates.gpu) if rates is not None else None
        base = Reading(
            device.info,
            None,
            utilization_legacy=legacy,
            memory_used_bytes=float(memory.used),
            memory_total_bytes=float(memory.total),
            power_watts=power_mw / 1000.0 if power_mw is not None else None,
        )
        if device.mig_parent:
            return base
        if device.info.uuid not in self._no_gpm:
            try:
                gpm = self._gpm_values(device)
            except _GpmRefused:
                pass
            else:
                if gpm is None:
                    return replace(base, source="gpm")
                return replace(base, source="gpm", **gpm._asdict())
        if legacy is None:
            return base
        return replace(base, source="utilization_rates", sm_active=legacy)

    def _gpm_values(self, device: Device) -> GpmValues | None:
        """GPM metrics since the previous call; None while priming; _GpmRefused once GPM is denied."""
        nvml = self._nvml
        uuid = device.info.uuid
        try:
            buffers = self._gpm.get(uuid)
            if buffers is None:
                buffers = _GpmBuffers(nvml.nvmlGpmSampleAlloc(), nvml.nvmlGpmSampleAlloc())
                self._gpm[uuid] = buffers
            if device.gpu_instance_id is None:
                nvml.nvmlGpmSampleGet(device.handle, buffers.spare)
            else:
                nvml.nvmlGpmMigSampleGet(device.parent, device.gpu_instance_id, buffers.spare)
        except nvml.NVMLError as exc:
            if error_code(exc) not in (nvml.NVML_ERROR_NOT_SUPPORTED, nvml.NVML_ERROR_NO_PERMISSION):
                raise
            self._no_gpm.add(uuid)
            logger.warning(
                "GPU %s (%s%s): GPM sampling refused (%s); SM activity falls back to utilization rates, "
                "labelled source=utilization_rates, which counts time any kernel ran, not SMs busy",
                device.info.gpu,
                device.info.name,
                f", MIG {device.info.mig}" if device.info.mig else "",
                reason_of(exc),
            )
            raise _GpmRefused from exc
        newest = buffers.spare
        values = self._metrics(buffers.previous, newest) if buffers.primed else None
        buffers.spare, buffers.previous, buffers.primed = buffers.previous, newest, True
        return values

    def _metrics(self, older: Any, newer: Any) -> GpmValues:
        nvml = self._nvml
        request = nvml.c_nvmlGpmMetricsGet_t()
        request.version = nvml.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(self._metric_ids)
        request.sample1 = older
        request.sample2 = newer
        for slot, metric_id in enumerate(self._metric_ids):
            request.metrics[slot].metricId = metric_id
        nvml.nvmlGpmMetricsGet(request)
        values = [
            _ratio(metric.value) if metric.nvmlReturn == nvml.NVML_SUCCESS else None
            for metric in (request.metrics[slot] for slot in range(len(self._metric_ids)))
        ]
        return GpmValues(*values)

    def _optional(self, read: Any, handle: Any) -> Any:
        """`read(handle)`, or None where the device does not support it (power and rates of MIG)."""
        try:
            return read(handle)
        except self._nvml.NVMLError as exc:
            if error_code(exc) == self._nvml.NVML_ERROR_NOT_SUPPORTED:
                return None
            raise


def _ratio(percent: float) -> float | None:
    """NVML percentages (0-100) as a ratio 0-1, clamped; None for NaN or infinity."""
    value = float(percent)
    if not math.isfinite(value):
        return None
    return min(max(value / 100.0, 0.0), 1.0)
