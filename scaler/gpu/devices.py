"""Discovery of the GPUs NVML can see and, on GPUs in MIG mode, their GPU instances."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from scaler.gpu.errors import GpuUnavailable
from scaler.gpu.model import DeviceInfo
from scaler.gpu.nvml_api import Nvml, error_code, reason_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Device:
    """A device to sample, with the NVML handles needed to read it."""

    info: DeviceInfo
    handle: Any
    """NVML handle of this GPU or MIG instance."""
    parent: Any
    """Handle of the physical GPU: the device itself, or a MIG instance's parent."""
    gpu_instance_id: int | None
    """GPU instance id of a MIG instance (for nvmlGpmMigSampleGet); None for a whole GPU."""
    gpm: bool
    """Whether the physical GPU supports GPM (Hopper and later, when not denied)."""
    mig_parent: bool
    """A GPU in MIG mode: its activity is reported per instance, only memory and power here."""


def open_devices(nvml: Nvml) -> list[Device]:
    """Initialise NVML and list every GPU and MIG instance; GpuUnavailable when there are none.

    Raises GpuUnavailable, with the NVML error named, when the library or driver is missing.
    """
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise GpuUnavailable(
            f"NVML could not be initialised ({reason_of(exc)}: {exc}); the exporter needs the NVIDIA "
            "driver and libnvidia-ml.so.1 in the container (nvidia runtime, NVIDIA_VISIBLE_DEVICES)"
        ) from exc
    try:
        devices = discover(nvml)
    except nvml.NVMLError as exc:
        nvml.nvmlShutdown()
        raise GpuUnavailable(f"NVML could not list the GPUs ({reason_of(exc)}: {exc})") from exc
    if not devices:
        nvml.nvmlShutdown()
        raise GpuUnavailable(
            "NVML found 0 GPUs; check NVIDIA_VISIBLE_DEVICES and the pod's nvidia.com/gpu request"
        )
    return devices


def discover(nvml: Nvml) -> list[Device]:
    """Every visible GPU in NVML index order, each followed by its MIG instances when MIG is on."""
    devices: list[Device] = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        info = DeviceInfo(index, nvml.nvmlDeviceGetUUID(handle), nvml.nvmlDeviceGetName(handle), "")
        gpm = _gpm_supported(nvml, handle, info)
        mig_on = _mig_enabled(nvml, handle)
        devices.append(Device(info, handle, handle, None, gpm, mig_on))
        if mig_on:
            devices.extend(_mig_instances(nvml, handle, index, gpm))
    return devices


def _mig_instances(nvml: Nvml, parent: Any, index: int, gpm: bool) -> list[Device]:
    instances: list[Device] = []
    for slot in range(nvml.nvmlDeviceGetMaxMigDeviceCount(parent)):
        try:
            handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, slot)
        except nvml.NVMLError as exc:
            # Slots are sparse: an unused slot answers NOT_FOUND.
            if error_code(exc) == nvml.NVML_ERROR_NOT_FOUND:
                continue
            raise
        instance_id = nvml.nvmlDeviceGetGpuInstanceId(handle)
        info = DeviceInfo(
            index, nvml.nvmlDeviceGetUUID(handle), nvml.nvmlDeviceGetName(handle), str(instance_id)
        )
        instances.append(Device(info, handle, parent, instance_id, gpm, False))
    return instances


def _mig_enabled(nvml: Nvml, handle: Any) -> bool:
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError as exc:
        if error_code(exc) in (nvml.NVML_ERROR_NOT_SUPPORTED, nvml.NVML_ERROR_FUNCTION_NOT_FOUND):
            return False
        raise
    return bool(current == nvml.NVML_DEVICE_MIG_ENABLE)


def _gpm_supported(nvml: Nvml, handle: Any, info: DeviceInfo) -> bool:
    try:
        supported = bool(nvml.nvmlGpmQueryDeviceSupport(handle).isSupportedDevice)
    except nvml.NVMLError as exc:
        # Drivers before R520 lack the function; containers may be denied it.
        logger.warning(
            "GPU %s (%s): GPM support query failed (%s); SM activity falls back to utilization rates",
            info.gpu,
            info.name,
            reason_of(exc),
        )
        return False
    if not supported:
        logger.warning(
            "GPU %s (%s) has no GPM (it needs Hopper or later): prescaler_gpu_sm_active falls back to "
            "nvmlDeviceGetUtilizationRates, labelled source=utilization_rates, which counts time any "
            "kernel ran, not SMs busy; a trickle of tiny kernels reads as a busy GPU",
            info.gpu,
            info.name,
        )
    return supported
