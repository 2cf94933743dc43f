"""DaemonSet attribution: a fake kubelet serving PodResourcesLister on a real unix socket."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from prometheus_client import CollectorRegistry

from scaler._generated import podresources_pb2 as pb
from scaler._generated import podresources_pb2_grpc as pb_grpc
from scaler.gpu.errors import PodResourcesError
from scaler.gpu.exporter import Exporter
from scaler.gpu.model import DeviceInfo, PodRef
from scaler.gpu.podresources import KubeletPodResources, device_owners
from tests.fakes_nvml import FakeClock, FakeGpu, FakeMig, FakeNvml, activity, series


def pod(namespace: str, name: str, *containers: tuple[str, str, list[str]]) -> pb.PodResources:
    """A pod whose containers are (name, resource name, device ids)."""
    return pb.PodResources(
        name=name,
        namespace=namespace,
        containers=[
            pb.ContainerResources(
                name=container, devices=[pb.ContainerDevices(resource_name=resource, device_ids=ids)]
            )
            for container, resource, ids in containers
        ],
    )


class FakeKubelet(pb_grpc.PodResourcesListerServicer):
    def __init__(self) -> None:
        self.pods: list[pb.PodResources] = []
        self.calls = 0

    async def List(
        self, request: pb.ListPodResourcesRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.ListPodResourcesResponse:
        self.calls += 1
        return pb.ListPodResourcesResponse(pod_resources=self.pods)


@dataclass
class Kubelet:
    path: str
    servicer: FakeKubelet
    server: grpc.aio.Server


@pytest.fixture
async def kubelet() -> AsyncIterator[Kubelet]:
    """A fake kubelet on a unix socket under /tmp (socket paths are limited to 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix="kubelet-", dir="/tmp") as directory:
        path = f"{directory}/kubelet.sock"
        servicer = FakeKubelet()
        server = grpc.aio.server()
        pb_grpc.add_PodResourcesListerServicer_to_server(servicer, server)
        server.add_insecure_port(f"unix://{path}")
        await server.start()
        try:
            yield Kubelet(path, servicer, server)
        finally:
            await server.stop(None)


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        pytest.param(
            [pod("x", "llm-0", ("server", "nvidia.com/gpu", ["GPU-a", "GPU-b"]))],
            {"GPU-a": PodRef("x", "llm-0", "server"), "GPU-b": PodRef("x", "llm-0", "server")},
            id="whole-gpus-by-uuid",
        ),
        pytest.param(
            [pod("x", "llm-1", ("server", "nvidia.com/mig-1g.18gb", ["MIG-m"]))],
            {"MIG-m": PodRef("x", "llm-1", "server")},
            id="mig-instance",
        ),
        pytest.param(
            [
                pod("x", "llm-b", ("server", "nvidia.com/gpu", ["GPU-a::1"])),
                pod("x", "llm-a", ("server", "nvidia.com/gpu", ["GPU-a::0"])),
            ],
            {"GPU-a": PodRef("x", "llm-a", "server")},
            id="time-sliced-replicas-count-once",
        ),
        pytest.param(
            [pod("y", "job", ("main", "nvidia.com/gpu", ["0"]), ("side", "example.com/nic", ["eth1"]))],
            {"0": PodRef("y", "job", "main"), "eth1": PodRef("y", "job", "side")},
            id="index-strategy-and-other-resources",
        ),
        pytest.param([pod("y", "cpu-only")], {}, id="no-devices"),
    ],
)
def test_device_owners(pods: list[pb.PodResources], expected: dict[str, PodRef]) -> None:
    assert device_owners(pb.ListPodResourcesResponse(pod_resources=pods)) == expected


async def test_refresh_lists_pods_over_the_unix_socket(kubelet: Kubelet) -> None:
    kubelet.servicer.pods = [pod("x", "llm-0", ("server", "nvidia.com/gpu", ["GPU-a", "1"]))]
    attribution = KubeletPodResources(kubelet.path)

    try:
        await attribution.refresh()
    finally:
        await attribution.aclose()

    assert attribution.pod_of(DeviceInfo(0, "GPU-a", "NVIDIA H200", "")) == PodRef("x", "llm-0", "server")
    assert attribution.pod_of(DeviceInfo(1, "GPU-b", "NVIDIA H200", "")) == PodRef("x", "llm-0", "server")
    assert attribution.pod_of(DeviceInfo(2, "GPU-c", "NVIDIA H200", "")) is None


async def test_exporter_labels_each_device_with_the_pod_holding_it(kubelet: Kubelet) -> None:
    llm0, llm1 = PodRef("x", "llm-0", "server"), PodRef("x", "llm-1", "server")
    kubelet.servicer.pods = [
        pod("x", "llm-0", ("server", "nvidia.com/gpu", ["GPU-a"])),
        pod("x", "llm-1", ("server", "nvidia.com/mig-1g.18gb", ["MIG-m"])),
    ]
    gpus = [
        FakeGpu("GPU-a", activity=activity(70, 1, 1, 1)),
        FakeGpu("GPU-free"),
        FakeGpu("GPU-p", migs=[FakeMig(5, "MIG-m", activity=activity(30, 1, 1, 1))]),
    ]
    registry, clock = CollectorRegistry(), FakeClock()
    attribution = KubeletPodResources(kubelet.path)
    exporter = Exporter(registry=registry, nvml=FakeNvml(gpus), attribution=attribution, clock=clock)
    exporter.start()
    mig_m = series("MIG-m", gpu=2, name="NVIDIA H200 MIG 1g.18gb", mig="5", pod=llm1, source="gpm")

    def value(name: str, labels: dict[str, str]) -> float | None:
        return registry.get_sample_value(name, labels)

    try:
        await exporter.refresh_attribution()
        exporter.step()
        clock.advance(1.0)
        exporter.step()
        assigned = (
            value("prescaler_gpu_sm_active", series("GPU-a", pod=llm0, source="gpm")),
            value("prescaler_gpu_sm_active", mig_m),
            value("prescaler_gpu_up", series("GPU-free", gpu=1)),
        )
        kubelet.servicer.pods = []  # llm-0 and llm-1 were deleted
        await exporter.refresh_attribution()
        clock.advance(1.0)
        exporter.step()
    finally:
        await attribution.aclose()
        exporter.close()

    assert assigned == (pytest.approx(0.7), pytest.approx(0.3), 1.0)
    assert value("prescaler_gpu_sm_active", series("GPU-a", pod=llm0, source="gpm")) is None
    assert value("prescaler_gpu_sm_active", series("GPU-a", source="gpm")) == pytest.approx(0.7)


async def test_an_unreachable_kubelet_is_counted_and_the_last_assignment_kept(kubelet: Kubelet) -> None:
    kubelet.servicer.pods = [pod("x", "llm-0", ("server", "nvidia.com/gpu", ["GPU-a"]))]
    registry = CollectorRegistry()
    attribution = KubeletPodResources(kubelet.path, timeout_s=2.0)
    exporter = Exporter(registry=registry, nvml=FakeNvml([FakeGpu("GPU-a")]), attribution=attribution)
    try:
        await exporter.refresh_attribution()
        await kubelet.server.stop(None)  # the kubelet restarts
        with pytest.raises(PodResourcesError, match=r"kubelet\.sock failed: UNAVAILABLE"):
            await attribution.refresh()
        await exporter.refresh_attribution()
        await exporter.refresh_attribution()
    finally:
        await attribution.aclose()

    errors = registry.get_sample_value(
        "prescaler_gpu_errors_total", {"gpu": "", "uuid": "", "mig": "", "reason": "pod_resources"}
    )
    assert errors == 2.0
    assert attribution.pod_of(DeviceInfo(0, "GPU-a", "NVIDIA H200", "")) == PodRef("x", "llm-0", "server")
