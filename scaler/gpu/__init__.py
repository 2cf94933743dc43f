"""The GPU exporter: SM activity from NVML GPM, served as Prometheus metrics for the `gpu_sm` signal.

Data flows one way, as in the scaler::

    Exporter.run (event loop) --every interval, in a thread--> NvmlSampler.sample -> Snapshot
    Exporter.run --every attribution refresh--> KubeletPodResources.refresh (uuid -> pod)
    scrape -> GpuCollector.collect: the latest Snapshot from memory, dropped once it is stale

Modules, one concept each: `model` (value types), `errors`, `nvml_api` (the slice of pynvml used),
`devices` (discovery of GPUs and MIG instances), `nvml_sampler` (one reading per device),
`collector` (Prometheus families), `exporter` (the loop), `podresources` (kubelet gRPC client),
`cli` (the `gpu-exporter` subcommand). Nothing is imported here: the sampler path must stay
importable without grpc (benchmarks/gpu_probe.py runs it with only pynvml and prometheus-client).
"""
