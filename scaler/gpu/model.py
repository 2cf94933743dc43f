"""Value types shared by the sampler, the collector and the attribution sources; no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

ActivitySource = Literal["gpm", "utilization_rates"]
"""Where an activity number came from: NVML GPM counters, or the legacy `nvmlDeviceGetUtilizationRates`."""


class DeviceInfo(NamedTuple):
    """What identifies a GPU or a MIG instance in every series."""

    gpu: int
    """NVML index of the physical GPU (a MIG instance carries its parent's index)."""
    uuid: str
    """`GPU-...`, or `MIG-...` for a MIG instance; what the NVIDIA device plugin hands to pods."""
    name: str
    """Product name, e.g. `NVIDIA H200`."""
    mig: str
    """GPU instance id of a MIG instance; empty for a whole GPU."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One completed sample of one device; None where the device cannot tell (e.g. power of a MIG slice)."""

    device: DeviceInfo
    source: ActivitySource | None
    """Where the activity fields come from; None when the device reports none (a GPU in MIG mode)."""
    sm_active: float | None = None
    """Fraction of SMs busy over the sample period, 0-1 (with `utilization_rates`: busy time, not SMs)."""
    sm_occupancy: float | None = None
    """Resident warps over the theoretical maximum, 0-1 (GPM only)."""
    tensor_active: float | None = None
    """Fraction of SM time issuing any tensor-core instruction, 0-1 (GPM only)."""
    dram_active: float | None = None
    """DRAM bandwidth used over the peak, 0-1 (GPM only)."""
    utilization_legacy: float | None = None
    """`nvmlDeviceGetUtilizationRates().gpu` as 0-1: time any kernel ran, however small."""
    memory_used_bytes: float | None = None
    memory_total_bytes: float | None = None
    power_watts: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceFailure:
    """A device that could not be read this time; its value series vanish until it reads again."""

    device: DeviceInfo
    reason: str
    """The NVML error in snake case, e.g. `gpu_is_lost`."""


class PodRef(NamedTuple):
    """The container a device is attributed to."""

    namespace: str
    pod: str
    container: str


NO_POD = PodRef("", "", "")
"""The labels of a device no known container holds."""


class Snapshot(NamedTuple):
    """Everything one sampling step produced; what a scrape serves until it is too old."""

    taken_at_s: float
    """Clock reading (monotonic seconds) when the step finished."""
    duration_s: float
    """How long the step took."""
    readings: tuple[Reading, ...]
    failures: tuple[DeviceFailure, ...]
    pods: Mapping[str, PodRef]
    """Attribution by device uuid; a device that is absent belongs to no known pod."""
    nvml_ok: bool = True
    """False while NVML could not be opened (only with `allow_no_gpu`)."""


class Attribution(Protocol):
    """Tells which container holds a device."""

    def pod_of(self, device: DeviceInfo) -> PodRef | None:
        """The container holding `device`, or None when it is not known to be held."""
        ...

    async def refresh(self) -> None:
        """Re-read the assignment; raises PodResourcesError when it cannot."""
        ...


class StaticAttribution:
    """Every device belongs to one container (sidecar mode), or to none (`pod=None`)."""

    def __init__(self, pod: PodRef | None = None) -> None:
        self._pod = pod

    def pod_of(self, device: DeviceInfo) -> PodRef | None:
        return self._pod

    async def refresh(self) -> None:
        return None
