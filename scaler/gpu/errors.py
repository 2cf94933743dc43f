"""Errors of the GPU exporter.

The tree::

    GpuExporterError
    ├── GpuUnavailable          no NVML library, no driver, or no GPU visible -> exit code 2
    └── PodResourcesError       the kubelet pod-resources API could not be listed

Kept apart from `scaler.errors`, whose gRPC status mapping imports grpc: the sampler runs where
only pynvml and prometheus-client are installed. None of these ever reaches a KEDA RPC.
"""

from __future__ import annotations


class GpuExporterError(Exception):
    """Base of every error the GPU exporter raises on purpose."""


class GpuUnavailable(GpuExporterError):
    """NVML cannot be used here: library missing, driver not loaded, or zero GPUs visible."""


class PodResourcesError(GpuExporterError):
    """The kubelet's pod-resources socket refused, timed out or answered with an error."""
