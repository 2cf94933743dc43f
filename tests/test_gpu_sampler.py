"""NvmlSampler against the fake NVML: GPM pairs, fallback to utilization rates, MIG, device loss."""

from __future__ import annotations

import logging

import pytest

from scaler.gpu.devices import discover, open_devices
from scaler.gpu.errors import GpuUnavailable
from scaler.gpu.model import DeviceFailure, Reading
from scaler.gpu.nvml_sampler import NvmlSampler
from tests.fakes_nvml import FakeGpu, FakeMig, FakeNvml, activity


def sampler_for(nvml: FakeNvml) -> NvmlSampler:
    return NvmlSampler(nvml, open_devices(nvml))


def readings(outcomes: list[Reading | DeviceFailure]) -> dict[str, Reading]:
    return {o.device.uuid: o for o in outcomes if isinstance(o, Reading)}


def test_gpm_primes_on_the_first_call_then_reports_ratios_of_the_interval() -> None:
    gpu = FakeGpu("GPU-a", activity=activity(0.04, 1.5, 0.0, 0.2), utilization_gpu=28)
    sampler = sampler_for(FakeNvml([gpu]))

    first = readings(sampler.sample())["GPU-a"]
    gpu.activity = activity(81.0, 45.0, 63.0, 30.0)
    second = readings(sampler.sample())["GPU-a"]

    assert first.source == "gpm"
    assert first.sm_active is None, "one GPM sample is no measurement"
    assert first.utilization_legacy == pytest.approx(0.28)
    assert second.source == "gpm"
    assert (second.sm_active, second.sm_occupancy, second.tensor_active, second.dram_active) == pytest.approx(
        (0.81, 0.45, 0.63, 0.30)
    )
    assert second.memory_total_bytes == 141 * 2**30
    assert second.power_watts == pytest.approx(350.0)


def test_a_metric_nvml_cannot_compute_is_none_and_percentages_are_clamped() -> None:
    gpu = FakeGpu("GPU-a", activity={FakeNvml.NVML_GPM_METRIC_SM_UTIL: 100.4})
    sampler = sampler_for(FakeNvml([gpu]))

    sampler.sample()
    reading = readings(sampler.sample())["GPU-a"]

    assert reading.sm_active == 1.0
    assert reading.sm_occupancy is None
    assert reading.tensor_active is None


def test_pre_hopper_gpu_falls_back_to_utilization_rates_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    gpu = FakeGpu("GPU-old", name="Tesla T4", gpm=False, utilization_gpu=35)
    sampler = sampler_for(FakeNvml([gpu]))

    outcomes = [readings(sampler.sample())["GPU-old"] for _ in range(3)]

    assert {r.source for r in outcomes} == {"utilization_rates"}
    assert outcomes[0].sm_active == pytest.approx(0.35)
    assert outcomes[0].sm_occupancy is None
    assert len([r for r in caplog.records if "GPM" in r.getMessage()]) == 1


def test_gpm_denied_at_sampling_time_falls_back_for_good(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    gpu = FakeGpu("GPU-a", gpm_denied=True, utilization_gpu=50)
    sampler = sampler_for(FakeNvml([gpu]))

    outcomes = [readings(sampler.sample())["GPU-a"] for _ in range(3)]

    assert [r.source for r in outcomes] == ["utilization_rates"] * 3
    assert outcomes[2].sm_active == pytest.approx(0.5)
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1


def test_mig_instances_are_sampled_with_their_gpu_instance_id() -> None:
    migs = [FakeMig(1, "MIG-one", activity=activity(10, 5, 0, 1)), FakeMig(2, "MIG-two")]
    gpu = FakeGpu("GPU-p", migs=migs)
    nvml = FakeNvml([gpu, FakeGpu("GPU-q")])
    devices = open_devices(nvml)
    sampler = NvmlSampler(nvml, devices)

    sampler.sample()
    migs[1].activity = activity(90, 70, 50, 40)
    result = readings(sampler.sample())

    assert [d.info.uuid for d in devices] == ["GPU-p", "MIG-one", "MIG-two", "GPU-q"]
    assert [d.info.mig for d in devices] == ["", "1", "2", ""]
    assert {d.info.gpu for d in devices[:3]} == {0}
    parent = result["GPU-p"]
    assert parent.source is None, "a GPU in MIG mode reports activity per instance"
    assert parent.sm_active is None
    assert parent.power_watts == pytest.approx(350.0)
    assert result["MIG-one"].sm_active == pytest.approx(0.10)
    assert result["MIG-two"].sm_active == pytest.approx(0.90)
    assert result["MIG-two"].power_watts is None, "NVML has no power per MIG instance"
    assert result["MIG-two"].utilization_legacy is None


def test_a_lost_gpu_fails_alone_and_primes_again_when_it_returns() -> None:
    lost, healthy = FakeGpu("GPU-lost", activity=activity(50, 1, 1, 1)), FakeGpu("GPU-ok")
    sampler = sampler_for(FakeNvml([lost, healthy]))
    sampler.sample()

    lost.lost = True
    during = sampler.sample()
    lost.lost = False
    back = readings(sampler.sample())["GPU-lost"]
    again = readings(sampler.sample())["GPU-lost"]

    assert during[0] == DeviceFailure(during[0].device, "gpu_is_lost")
    assert isinstance(during[1], Reading)
    assert back.sm_active is None, "no GPM pair spans the outage"
    assert again.sm_active == pytest.approx(0.5)


def test_close_frees_every_gpm_buffer() -> None:
    nvml = FakeNvml([FakeGpu("GPU-a"), FakeGpu("GPU-b")])
    sampler = sampler_for(nvml)
    sampler.sample()

    sampler.close()

    assert len(nvml.samples) == 4
    assert all(s.freed for s in nvml.samples)


def test_no_library_is_gpu_unavailable_naming_the_nvml_error() -> None:
    with pytest.raises(GpuUnavailable, match="library_not_found"):
        open_devices(FakeNvml(library=False))


def test_no_gpu_is_gpu_unavailable_and_nvml_is_shut_down() -> None:
    nvml = FakeNvml([])

    with pytest.raises(GpuUnavailable, match="found 0 GPUs"):
        open_devices(nvml)
    assert nvml.initialised == 0


def test_discover_marks_gpm_support_per_gpu() -> None:
    nvml = FakeNvml([FakeGpu("GPU-h", gpm=True), FakeGpu("GPU-t", gpm=False)])
    nvml.nvmlInit()

    assert [(d.info.uuid, d.gpm) for d in discover(nvml)] == [("GPU-h", True), ("GPU-t", False)]
