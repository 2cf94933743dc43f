"""The sampling loop: NVML in a worker thread every interval, the snapshot handed to the collector.

`step()` is one sampling step, synchronous and callable directly (tests drive it with a fake clock);
`run()` repeats it off the event loop until told to stop, and refreshes the pod attribution.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

import pynvml
from prometheus_client import CollectorRegistry

from scaler.gpu.collector import GpuCollector
from scaler.gpu.devices import open_devices
from scaler.gpu.errors import GpuUnavailable, PodResourcesError
from scaler.gpu.model import Attribution, DeviceFailure, PodRef, Reading, Snapshot, StaticAttribution
from scaler.gpu.nvml_api import Nvml, reason_of
from scaler.gpu.nvml_sampler import NvmlSampler

logger = logging.getLogger(__name__)

STALE_AFTER_INTERVALS = 3
"""A snapshot older than this many intervals is not served."""
NVML_RETRY_S = 10.0
"""With `allow_no_gpu`, how often opening NVML is tried again (a driver container may start later)."""


class Exporter:
    """Samples every visible GPU and MIG instance into `registry` (prescaler_gpu_* metrics)."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        nvml: Nvml = pynvml,
        interval_s: float = 1.0,
        attribution: Attribution | None = None,
        attribution_refresh_s: float = 10.0,
        allow_no_gpu: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nvml = nvml
        self._interval_s = interval_s
        """Time between sampling steps; also the period GPM metrics average over."""
        self._attribution = attribution or StaticAttribution()
        self._attribution_refresh_s = attribution_refresh_s
        """How often the device -> pod assignment is re-read."""
        self._allow_no_gpu = allow_no_gpu
        """Without NVML, serve only prescaler_gpu_up and the error counter instead of failing."""
        self._clock = clock
        self._sampler: NvmlSampler | None = None
        self._retry_at_s = 0.0
        self._refresh_at_s = -math.inf
        self._last_step_s: float | None = None
        self._attribution_failing = False
        self._down: set[str] = set()
        """Uuids of the devices that failed in the last step (to log changes once)."""
        self.collector = GpuCollector(max_age_s=STALE_AFTER_INTERVALS * interval_s, clock=clock)
        registry.register(self.collector)

    def start(self) -> None:
        """Open NVML and find the devices; GpuUnavailable unless `allow_no_gpu`. Blocking."""
        try:
            self._open()
        except GpuUnavailable as exc:
            if not self._allow_no_gpu:
                raise
            logger.error("%s; serving only prescaler_gpu_up and prescaler_gpu_errors_total", exc)

    def step(self) -> Snapshot:
        """Sample every device once and publish the result. Blocking: run it off the event loop."""
        started = self._last_step_s = self._clock()
        if self._sampler is None and started >= self._retry_at_s:
            # Only reached with allow_no_gpu: the driver may come up after the exporter.
            with contextlib.suppress(GpuUnavailable):
                self._open()
        if self._sampler is None:
            finished = self._clock()
            snapshot = Snapshot(finished, finished - started, (), (), {}, nvml_ok=False)
            self.collector.publish(snapshot)
            return snapshot
        outcomes = self._sampler.sample()
        readings = tuple(o for o in outcomes if isinstance(o, Reading))
        failures = tuple(o for o in outcomes if isinstance(o, DeviceFailure))
        for failure in failures:
            self.collector.count_error(failure.device, failure.reason)
        pods: dict[str, PodRef] = {}
        for outcome in outcomes:
            pod = self._attribution.pod_of(outcome.device)
            if pod is not None:
                pods[outcome.device.uuid] = pod
        finished = self._clock()
        snapshot = Snapshot(finished, finished - started, readings, failures, pods)
        self._log_changes(snapshot)
        self.collector.publish(snapshot)
        return snapshot

    async def refresh_attribution(self) -> None:
        """Re-read which pod holds which device; on failure keep the last answer and count the error."""
        self._refresh_at_s = self._clock() + self._attribution_refresh_s
        try:
            await self._attribution.refresh()
        except PodResourcesError as exc:
            self.collector.count_error(None, "pod_resources")
            if not self._attribution_failing:
                logger.warning("%s; keeping the last known device -> pod assignment", exc)
            self._attribution_failing = True
        else:
            if self._attribution_failing:
                logger.info("pod-resources answers again")
            self._attribution_failing = False

    async def run(self, stop: asyncio.Event) -> None:
        """Sample one interval after the previous step, again and again, until `stop` is set.

        The first step is immediate unless `step()` was called before. With `stop` already set, it
        takes that one step and returns. The attribution is refreshed whenever it is due.
        """
        while True:
            if self._last_step_s is not None:
                due_in_s = self._last_step_s + self._interval_s - self._clock()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(due_in_s, 0.0))
                if stop.is_set():
                    return
            if self._clock() >= self._refresh_at_s:
                await self.refresh_attribution()
            try:
                await asyncio.to_thread(self.step)
            except Exception:
                # A bug must not take the node's GPU metrics down with it; it shows in the counter.
                logger.exception("GPU sampling step failed")
                self.collector.count_error(None, "internal")

    def close(self) -> None:
        """Free GPM buffers and shut NVML down. Blocking."""
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None
            self._nvml.nvmlShutdown()

    def _open(self) -> None:
        try:
            devices = open_devices(self._nvml)
        except GpuUnavailable as exc:
            self._retry_at_s = self._clock() + NVML_RETRY_S
            cause = exc.__cause__
            self.collector.count_error(None, reason_of(cause) if cause is not None else "no_gpu")
            raise
        self._sampler = NvmlSampler(self._nvml, devices)
        self._down = set()
        logger.info("NVML opened: %d GPUs and MIG instances", len(devices))
        for device in devices:
            logger.info(
                "GPU %s%s %s (%s): %s",
                device.info.gpu,
                f" MIG {device.info.mig}" if device.info.mig else "",
                device.info.uuid,
                device.info.name,
                "GPM" if device.gpm else "utilization rates",
            )

    def _log_changes(self, snapshot: Snapshot) -> None:
        for failure in snapshot.failures:
            if failure.device.uuid not in self._down:
                logger.warning(
                    "GPU %s %s cannot be read (%s); its series are withdrawn until it reads again",
                    failure.device.gpu,
                    failure.device.uuid,
                    failure.reason,
                )
        for reading in snapshot.readings:
            if reading.device.uuid in self._down:
                logger.info("GPU %s %s reads again", reading.device.gpu, reading.device.uuid)
        self._down = {failure.device.uuid for failure in snapshot.failures}
