"""A closed-loop simulator of a GPU inference Deployment scaled by KEDA + HPA. Pure: no I/O.

    trace (requests/s) --demand--> arrivals per tick
        --> cluster (replicas, start-up delay, FIFO queue, latency)  --Signals-->  policy
        <-- autoscaler (KEDA activation/cooldown, HPA tolerance/stabilization/rate limits)  <--metric--

Modules, one concept each:

- `cluster`     the service: replicas, start-up delay, queueing, latency (`ClusterConfig`)
- `autoscaler`  KEDA's scale loop and the HPA (`ScalingConfig`, HPA `behavior` rules)
- `interface`   what a policy sees (`Signals`) and answers (`Answer`); the `Policy` protocol
- `policies`    reactive, fixed buffer, oracle
- `demand`      a trace as demand: rescale, resample to the tick, sample arrivals
- `outcomes`    GPU-hours, cost, SLO-violating minutes, series for plots (`Outcome`)
- `run`         `simulate(trace, policies, cluster, scaling, seed=...)`
- `sweep`       reactive over its target; its SLO minutes at equal GPU-hours

Example::

    trace = rescale_to_peak(load_trace(path), peak_replicas=20, capacity_per_replica=cluster.capacity_rps)
    outcomes = simulate(trace, baselines(target=6.0), cluster, ScalingConfig(), seed=1)
"""

from scaler.sim.autoscaler import SCALE_DOWN, SCALE_UP, ScalingConfig, ScalingPolicy, ScalingRules
from scaler.sim.cluster import ClusterConfig
from scaler.sim.demand import rates_per_tick, rescale_to_peak, sample_arrivals
from scaler.sim.interface import Answer, Metric, Policy, PolicyFactory, Scenario, Signals
from scaler.sim.outcomes import MinuteSeries, Outcome, TickSeries
from scaler.sim.policies import Oracle, Reactive, baselines, fixed_buffer, oracle, reactive
from scaler.sim.run import prepare, run_policy, simulate
from scaler.sim.sweep import AtGpuHours, SweepPoint, at_equal_gpu_hours, sweep_reactive

__all__ = [
    "SCALE_DOWN",
    "SCALE_UP",
    "Answer",
    "AtGpuHours",
    "ClusterConfig",
    "Metric",
    "MinuteSeries",
    "Oracle",
    "Outcome",
    "Policy",
    "PolicyFactory",
    "Reactive",
    "ScalingConfig",
    "ScalingPolicy",
    "ScalingRules",
    "Scenario",
    "Signals",
    "SweepPoint",
    "TickSeries",
    "at_equal_gpu_hours",
    "baselines",
    "fixed_buffer",
    "oracle",
    "prepare",
    "rates_per_tick",
    "reactive",
    "rescale_to_peak",
    "run_policy",
    "sample_arrivals",
    "simulate",
    "sweep_reactive",
]
