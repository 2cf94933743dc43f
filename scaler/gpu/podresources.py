"""DaemonSet attribution: which pod holds which GPU, from the kubelet's pod-resources API (v1 List).

The NVIDIA device plugin hands out GPUs by UUID (`GPU-...`), MIG instances by MIG UUID (`MIG-...`),
time-sliced replicas as `<uuid>::<n>`, and with DEVICE_ID_STRATEGY=index by NVML index. All four
are understood. A device held by several containers (time-slicing) is attributed to the first in
(namespace, pod, container) order, so that a sum over pods counts it once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import grpc

from scaler._generated import podresources_pb2, podresources_pb2_grpc
from scaler.gpu.errors import PodResourcesError
from scaler.gpu.model import DeviceInfo, PodRef

logger = logging.getLogger(__name__)

DEFAULT_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"


def device_owners(response: podresources_pb2.ListPodResourcesResponse) -> dict[str, PodRef]:
    """Device id (replica suffix removed) -> the container holding it. Pure."""
    holders: dict[str, list[PodRef]] = {}
    for pod in response.pod_resources:
        for container in pod.containers:
            ref = PodRef(pod.namespace, pod.name, container.name)
            for devices in container.devices:
                for device_id in devices.device_ids:
                    holders.setdefault(device_id.split("::", 1)[0], []).append(ref)
    return {device_id: min(refs) for device_id, refs in holders.items()}


class KubeletPodResources:
    """Attribution from `PodResourcesLister.List` on the kubelet's unix socket."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, *, timeout_s: float = 5.0) -> None:
        self._target = f"unix://{socket_path}"
        """gRPC target of the kubelet socket, mounted from the host."""
        self._timeout_s = timeout_s
        """Deadline of one List call."""
        self._owners: Mapping[str, PodRef] = {}
        self._channel: grpc.aio.Channel | None = None

    def pod_of(self, device: DeviceInfo) -> PodRef | None:
        owners = self._owners
        found = owners.get(device.uuid)
        if found is None and not device.mig:
            found = owners.get(str(device.gpu))
        return found

    async def refresh(self) -> None:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self._target)
        stub = podresources_pb2_grpc.PodResourcesListerStub(self._channel)
        try:
            response = await stub.List(podresources_pb2.ListPodResourcesRequest(), timeout=self._timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise PodResourcesError(
                f"kubelet pod-resources List on {self._target} failed: {exc.code().name} {exc.details()}; "
                "mount the host's /var/lib/kubelet/pod-resources into the exporter"
            ) from exc
        # Swapped whole: pod_of runs in the sampling thread.
        self._owners = device_owners(response)

    async def aclose(self) -> None:
        """Close the channel; refresh opens a new one if called again."""
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel = None
