"""Exporter + GpuCollector read through the registry, the way Prometheus sees them; fake NVML and clock."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from scaler.gpu.errors import GpuUnavailable, PodResourcesError
from scaler.gpu.exporter import NVML_RETRY_S, Exporter
from scaler.gpu.model import DeviceInfo, PodRef, StaticAttribution
from tests.fakes_nvml import FakeClock, FakeGpu, FakeMig, FakeNvml, activity, h200s, series

INTERVAL_S = 1.0


def error_count(
    registry: CollectorRegistry, reason: str, *, gpu: str = "", uuid: str = "", mig: str = ""
) -> float:
    labels = {"gpu": gpu, "uuid": uuid, "mig": mig, "reason": reason}
    return registry.get_sample_value("prescaler_gpu_errors_total", labels) or 0.0


class Rig:
    """An exporter on a fresh registry with a fake NVML and a fake clock."""

    def __init__(self, gpus: list[FakeGpu], **kwargs: object) -> None:
        self.nvml = FakeNvml(gpus)
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.exporter = Exporter(
            registry=self.registry, nvml=self.nvml, interval_s=INTERVAL_S, clock=self.clock, **kwargs
        )

    def tick(self, steps: int = 1) -> None:
        """`steps` sampling steps, one interval apart."""
        for _ in range(steps):
            self.clock.advance(INTERVAL_S)
            self.exporter.step()

    def value(self, name: str, labels: dict[str, str]) -> float | None:
        return self.registry.get_sample_value(name, labels)


def test_gpm_series_carry_source_gpm_and_ratios() -> None:
    gpu = FakeGpu("GPU-a", activity=activity(81, 45, 63, 30), utilization_gpu=97)
    rig = Rig([gpu])
    rig.exporter.start()

    rig.tick()
    assert rig.value("prescaler_gpu_sm_active", series("GPU-a", source="gpm")) is None, "still priming"
    rig.tick()

    assert rig.value("prescaler_gpu_sm_active", series("GPU-a", source="gpm")) == pytest.approx(0.81)
    assert rig.value("prescaler_gpu_sm_occupancy", series("GPU-a", source="gpm")) == pytest.approx(0.45)
    assert rig.value("prescaler_gpu_tensor_active", series("GPU-a", source="gpm")) == pytest.approx(0.63)
    assert rig.value("prescaler_gpu_dram_active", series("GPU-a", source="gpm")) == pytest.approx(0.30)
    assert rig.value("prescaler_gpu_utilization_legacy", series("GPU-a")) == pytest.approx(0.97)
    assert rig.value("prescaler_gpu_memory_used_bytes", series("GPU-a")) == 10 * 2**30
    assert rig.value("prescaler_gpu_memory_total_bytes", series("GPU-a")) == 141 * 2**30
    assert rig.value("prescaler_gpu_power_watts", series("GPU-a")) == pytest.approx(350.0)
    assert rig.value("prescaler_gpu_up", series("GPU-a")) == 1.0
    assert rig.value("prescaler_gpu_sample_duration_seconds", {}) == 0.0, "the fake clock stood still"


def test_without_gpm_sm_active_comes_from_utilization_rates_and_says_so() -> None:
    rig = Rig([FakeGpu("GPU-t4", name="Tesla T4", gpm=False, utilization_gpu=28)])
    rig.exporter.start()

    rig.tick(2)

    labels = series("GPU-t4", name="Tesla T4")
    assert rig.value("prescaler_gpu_sm_active", {**labels, "source": "utilization_rates"}) == pytest.approx(
        0.28
    )
    assert rig.value("prescaler_gpu_sm_active", {**labels, "source": "gpm"}) is None
    assert rig.value("prescaler_gpu_sm_occupancy", {**labels, "source": "utilization_rates"}) is None


def test_a_sample_older_than_three_intervals_is_not_served() -> None:
    rig = Rig([FakeGpu("GPU-a", activity=activity(50, 1, 1, 1))])
    rig.exporter.start()
    rig.tick(2)
    gpm = series("GPU-a", source="gpm")

    rig.clock.advance(3 * INTERVAL_S)
    at_limit = rig.value("prescaler_gpu_sm_active", gpm)
    rig.clock.advance(0.5)
    stale = rig.value("prescaler_gpu_sm_active", gpm)
    stale_up = rig.value("prescaler_gpu_up", series("GPU-a"))
    rig.tick()

    assert at_limit == pytest.approx(0.5)
    assert stale is None
    assert stale_up == 0.0
    assert rig.value("prescaler_gpu_sm_active", gpm) == pytest.approx(0.5)


def test_a_gpu_lost_mid_run_loses_its_series_and_counts_errors_until_it_returns() -> None:
    lost, healthy = FakeGpu("GPU-lost", activity=activity(50, 1, 1, 1)), FakeGpu("GPU-ok")
    rig = Rig([lost, healthy])
    rig.exporter.start()
    rig.tick(2)

    lost.lost = True
    rig.tick(2)

    assert rig.value("prescaler_gpu_sm_active", series("GPU-lost", source="gpm")) is None
    assert rig.value("prescaler_gpu_memory_used_bytes", series("GPU-lost")) is None
    assert rig.value("prescaler_gpu_up", series("GPU-lost")) == 0.0
    assert error_count(rig.registry, "gpu_is_lost", gpu="0", uuid="GPU-lost") == 2.0
    assert rig.value("prescaler_gpu_up", series("GPU-ok", gpu=1)) == 1.0
    assert rig.value("prescaler_gpu_memory_used_bytes", series("GPU-ok", gpu=1)) is not None

    lost.lost = False
    rig.tick(2)

    assert rig.value("prescaler_gpu_up", series("GPU-lost")) == 1.0
    assert rig.value("prescaler_gpu_sm_active", series("GPU-lost", source="gpm")) == pytest.approx(0.5)
    assert error_count(rig.registry, "gpu_is_lost", gpu="0", uuid="GPU-lost") == 2.0


def test_mig_instances_get_their_own_series_with_the_instance_id() -> None:
    gpu = FakeGpu("GPU-p", migs=[FakeMig(3, "MIG-x", activity=activity(20, 10, 5, 1))])
    rig = Rig([gpu])
    rig.exporter.start()

    rig.tick(2)

    mig = series("MIG-x", name="NVIDIA H200 MIG 1g.18gb", mig="3")
    assert rig.value("prescaler_gpu_sm_active", {**mig, "source": "gpm"}) == pytest.approx(0.2)
    assert rig.value("prescaler_gpu_memory_total_bytes", mig) == 18 * 2**30
    assert rig.value("prescaler_gpu_power_watts", series("GPU-p")) == pytest.approx(350.0)
    assert rig.value("prescaler_gpu_up", series("GPU-p")) == 1.0


def test_sidecar_attribution_labels_every_series_with_the_pod() -> None:
    pod = PodRef("x", "llm-0", "server")
    rig = Rig([FakeGpu("GPU-a", activity=activity(40, 1, 1, 1))], attribution=StaticAttribution(pod))
    rig.exporter.start()

    rig.tick(2)

    assert rig.value("prescaler_gpu_sm_active", series("GPU-a", pod=pod, source="gpm")) == pytest.approx(0.4)
    assert rig.value("prescaler_gpu_up", series("GPU-a", pod=pod)) == 1.0


def test_no_driver_is_a_startup_error_that_names_the_cause() -> None:
    rig = Rig([])
    rig.nvml.library = False

    with pytest.raises(GpuUnavailable, match="libnvidia-ml"):
        rig.exporter.start()
    assert error_count(rig.registry, "library_not_found") == 1.0


def test_allow_no_gpu_serves_only_up_and_errors_and_retries_nvml() -> None:
    rig = Rig([FakeGpu("GPU-late", activity=activity(30, 1, 1, 1))], allow_no_gpu=True)
    rig.nvml.library = False
    rig.exporter.start()

    rig.tick()
    text = generate_latest(rig.registry).decode()

    blank = {label: "" for label in series("")}
    assert rig.value("prescaler_gpu_up", blank) == 0.0
    assert "prescaler_gpu_sm_active{" not in text
    assert error_count(rig.registry, "library_not_found") == 1.0

    rig.nvml.library = True  # the driver container came up
    rig.tick(int(NVML_RETRY_S) + 1)

    assert rig.value("prescaler_gpu_up", blank) is None
    assert rig.value("prescaler_gpu_sm_active", series("GPU-late", source="gpm")) == pytest.approx(0.3)


def test_a_scrape_of_eight_gpus_serves_every_series_from_memory() -> None:
    rig = Rig(h200s(8))
    rig.exporter.start()
    rig.tick(2)
    calls_before = sum(s.taken for s in rig.nvml.samples)

    text = generate_latest(rig.registry).decode()

    assert sum(s.taken for s in rig.nvml.samples) == calls_before, "a scrape must not sample"
    lines = [line for line in text.splitlines() if line.startswith("prescaler_gpu_sm_active{")]
    assert len(lines) == 8
    assert all('source="gpm"' in line and line.endswith(" 0.6") for line in lines)
    for index in range(8):
        assert rig.value("prescaler_gpu_up", series(f"GPU-{index:04d}-fake", gpu=index)) == 1.0


class FailingAttribution:
    def __init__(self) -> None:
        self.calls = 0

    def pod_of(self, device: DeviceInfo) -> PodRef | None:
        return None

    async def refresh(self) -> None:
        self.calls += 1
        raise PodResourcesError("kubelet pod-resources List on unix:///nowhere failed: UNAVAILABLE")


async def test_run_with_stop_set_samples_once_and_survives_attribution_errors() -> None:
    attribution = FailingAttribution()
    rig = Rig([FakeGpu("GPU-a")], attribution=attribution)
    rig.exporter.start()
    stop = asyncio.Event()
    stop.set()

    await rig.exporter.run(stop)

    assert attribution.calls == 1
    assert error_count(rig.registry, "pod_resources") == 1.0
    assert rig.value("prescaler_gpu_up", series("GPU-a")) == 1.0


async def test_run_survives_a_step_that_raises_something_unexpected() -> None:
    rig = Rig([FakeGpu("GPU-a")])
    rig.exporter.start()

    def broken(handle: object) -> object:
        raise RuntimeError("a bug")

    rig.nvml.nvmlDeviceGetMemoryInfo = broken  # type: ignore[method-assign]
    stop = asyncio.Event()
    stop.set()

    await rig.exporter.run(stop)

    assert error_count(rig.registry, "internal") == 1.0


def test_close_frees_gpm_buffers_and_shuts_nvml_down() -> None:
    rig = Rig(h200s(2))
    rig.exporter.start()
    rig.tick(2)

    rig.exporter.close()

    assert rig.nvml.initialised == 0
    assert all(s.freed for s in rig.nvml.samples)


async def test_run_keeps_the_cadence_of_an_earlier_step_and_stops_without_another() -> None:
    rig = Rig([FakeGpu("GPU-a")])
    rig.exporter.start()
    rig.exporter.step()
    gpm_samples_taken = max(s.taken for s in rig.nvml.samples)
    stop = asyncio.Event()
    stop.set()

    await rig.exporter.run(stop)

    assert max(s.taken for s in rig.nvml.samples) == gpm_samples_taken
