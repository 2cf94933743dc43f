"""A fake of the pynvml module, for tests and benchmarks without a GPU.

It raises pynvml's own NVMLError subclasses (building them needs no library) and mirrors the calls
the exporter makes. State is plain attributes that a test changes between sampling steps:
`gpu.lost = True` makes every call on that GPU fail with GPU_IS_LOST, `gpu.activity[...]` sets
what the next GPM sample pair will report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pynvml

from scaler.gpu.model import NO_POD, PodRef

GPM_METRICS = (
    pynvml.NVML_GPM_METRIC_SM_UTIL,
    pynvml.NVML_GPM_METRIC_SM_OCCUPANCY,
    pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL,
    pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL,
)


def nvml_error(code: int) -> pynvml.NVMLError:
    """The NVMLError subclass real pynvml raises for `code`, e.g. NVMLError_GpuIsLost."""
    return pynvml.NVMLError(code)


@dataclass
class FakeMig:
    """A MIG GPU instance of a FakeGpu."""

    gpu_instance_id: int
    uuid: str
    name: str = "NVIDIA H200 MIG 1g.18gb"
    memory_total: int = 18 * 2**30
    memory_used: int = 2**30
    activity: dict[int, float] = field(default_factory=dict)
    """GPM metric id -> percentage the next sample pair reports."""


@dataclass
class FakeGpu:
    """One fake physical GPU; `gpm=False` plays a pre-Hopper GPU."""

    uuid: str
    name: str = "NVIDIA H200"
    gpm: bool = True
    gpm_denied: bool = False
    """GPM is listed as supported but sampling fails with NO_PERMISSION (a locked-down container)."""
    memory_total: int = 141 * 2**30
    memory_used: int = 10 * 2**30
    power_mw: int = 350_000
    utilization_gpu: int = 28
    activity: dict[int, float] = field(default_factory=dict)
    migs: list[FakeMig] = field(default_factory=list)
    lost: bool = False


@dataclass
class FakeSample:
    """A GPM sample buffer; `Get` copies the device's activity into it."""

    owner: str = ""
    activity: dict[int, float] = field(default_factory=dict)
    taken: int = 0
    freed: bool = False


@dataclass
class FakeMetric:
    # Field names are the C struct's.
    metricId: int = 0  # noqa: N815
    nvmlReturn: int = 0  # noqa: N815
    value: float = 0.0


class FakeMetricsGet:
    """Stands in for the ctypes struct nvmlGpmMetricsGet_t."""

    def __init__(self) -> None:
        self.version = 0
        self.numMetrics = 0
        self.sample1: Any = None
        self.sample2: Any = None
        self.metrics = [FakeMetric() for _ in range(8)]


class FakeNvml:
    """Quacks like the `pynvml` module for the calls in scaler.gpu."""

    NVMLError = pynvml.NVMLError
    NVML_SUCCESS = pynvml.NVML_SUCCESS
    NVML_ERROR_NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
    NVML_ERROR_NO_PERMISSION = pynvml.NVML_ERROR_NO_PERMISSION
    NVML_ERROR_NOT_FOUND = pynvml.NVML_ERROR_NOT_FOUND
    NVML_ERROR_FUNCTION_NOT_FOUND = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
    NVML_DEVICE_MIG_ENABLE = pynvml.NVML_DEVICE_MIG_ENABLE
    NVML_GPM_METRIC_SM_UTIL = pynvml.NVML_GPM_METRIC_SM_UTIL
    NVML_GPM_METRIC_SM_OCCUPANCY = pynvml.NVML_GPM_METRIC_SM_OCCUPANCY
    NVML_GPM_METRIC_ANY_TENSOR_UTIL = pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL
    NVML_GPM_METRIC_DRAM_BW_UTIL = pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL
    NVML_GPM_METRICS_GET_VERSION = pynvml.NVML_GPM_METRICS_GET_VERSION
    c_nvmlGpmMetricsGet_t = FakeMetricsGet  # noqa: N815

    def __init__(self, gpus: list[FakeGpu] | None = None, *, library: bool = True) -> None:
        self.gpus = gpus if gpus is not None else [FakeGpu("GPU-0000")]
        self.library = library
        """False plays a machine without libnvidia-ml.so.1."""
        self.initialised = 0
        self.samples: list[FakeSample] = []

    # Library and discovery.

    def nvmlInit(self) -> None:
        if not self.library:
            raise nvml_error(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.00.00"

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, handle: FakeGpu | FakeMig) -> str:
        self._check(handle)
        return handle.uuid

    def nvmlDeviceGetName(self, handle: FakeGpu | FakeMig) -> str:
        self._check(handle)
        return handle.name

    def nvmlDeviceGetMigMode(self, handle: FakeGpu) -> list[int]:
        self._check(handle)
        if not handle.gpm:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [1, 1] if handle.migs else [0, 0]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: FakeGpu) -> int:
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: FakeGpu, index: int) -> FakeMig:
        # Sparse like the real thing: instances sit in every other slot.
        if index % 2 or index // 2 >= len(handle.migs):
            raise nvml_error(pynvml.NVML_ERROR_NOT_FOUND)
        return handle.migs[index // 2]

    def nvmlDeviceGetGpuInstanceId(self, handle: FakeMig) -> int:
        return handle.gpu_instance_id

    # Readings.

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu | FakeMig) -> Any:
        self._check(handle)
        return pynvml.c_nvmlMemory_t(
            total=handle.memory_total, free=handle.memory_total - handle.memory_used, used=handle.memory_used
        )

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu | FakeMig) -> int:
        self._check(handle)
        if isinstance(handle, FakeMig):
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return handle.power_mw

    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu | FakeMig) -> Any:
        self._check(handle)
        if isinstance(handle, FakeMig) or handle.migs:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return pynvml.c_nvmlUtilization_t(gpu=handle.utilization_gpu, memory=0)

    # GPM.

    def nvmlGpmQueryDeviceSupport(self, handle: FakeGpu) -> Any:
        self._check(handle)
        return pynvml.c_nvmlGpmSupport_t(version=1, isSupportedDevice=int(handle.gpm))

    def nvmlGpmSampleAlloc(self) -> FakeSample:
        sample = FakeSample()
        self.samples.append(sample)
        return sample

    def nvmlGpmSampleFree(self, sample: FakeSample) -> None:
        sample.freed = True

    def nvmlGpmSampleGet(self, handle: FakeGpu, sample: FakeSample) -> FakeSample:
        self._check(handle)
        if not handle.gpm or handle.migs:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if handle.gpm_denied:
            raise nvml_error(pynvml.NVML_ERROR_NO_PERMISSION)
        return self._fill(sample, handle.uuid, handle.activity)

    def nvmlGpmMigSampleGet(self, handle: FakeGpu, gpu_instance_id: int, sample: FakeSample) -> FakeSample:
        self._check(handle)
        instance = next(m for m in handle.migs if m.gpu_instance_id == gpu_instance_id)
        return self._fill(sample, instance.uuid, instance.activity)

    def nvmlGpmMetricsGet(self, request: FakeMetricsGet) -> FakeMetricsGet:
        first, second = request.sample1, request.sample2
        assert request.version == pynvml.NVML_GPM_METRICS_GET_VERSION
        assert first is not second, "a GPM metric needs two distinct samples"
        assert first.owner == second.owner, "samples of different devices"
        assert first.taken < second.taken, "sample1 must be the older one"
        assert not first.freed, "sample1 was freed"
        assert not second.freed, "sample2 was freed"
        for metric in request.metrics[: request.numMetrics]:
            if metric.metricId in second.activity:
                metric.value = second.activity[metric.metricId]
                metric.nvmlReturn = pynvml.NVML_SUCCESS
            else:
                metric.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
        return request

    def _fill(self, sample: FakeSample, owner: str, activity: dict[int, float]) -> FakeSample:
        sample.owner = owner
        sample.activity = dict(activity)
        sample.taken = max((s.taken for s in self.samples), default=0) + 1
        return sample

    def _check(self, handle: FakeGpu | FakeMig) -> None:
        if self.initialised <= 0:
            raise nvml_error(pynvml.NVML_ERROR_UNINITIALIZED)
        parent = next((g for g in self.gpus if handle is g or handle in g.migs), None)
        if parent is None or parent.lost:
            raise nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)


def activity(sm: float, occupancy: float, tensor: float, dram: float) -> dict[int, float]:
    """GPM percentages (0-100) in the order SM util, SM occupancy, tensor util, DRAM bandwidth."""
    return dict(zip(GPM_METRICS, (sm, occupancy, tensor, dram), strict=True))


def h200s(count: int) -> list[FakeGpu]:
    """`count` busy fake H200s with distinct UUIDs."""
    return [FakeGpu(f"GPU-{i:04d}-fake", activity=activity(60.0, 40.0, 30.0, 20.0)) for i in range(count)]


class FakeClock:
    """A monotonic clock that moves only when told to (for the exporter's `clock=`)."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def series(
    uuid: str,
    *,
    gpu: int = 0,
    name: str = "NVIDIA H200",
    mig: str = "",
    pod: PodRef = NO_POD,
    source: str | None = None,
) -> dict[str, str]:
    """The labels of a device's series, for `registry.get_sample_value`; `source` for activity families."""
    labels = {
        "gpu": str(gpu),
        "uuid": uuid,
        "name": name,
        "mig": mig,
        "namespace": pod.namespace,
        "pod": pod.pod,
        "container": pod.container,
    }
    return labels if source is None else {**labels, "source": source}
