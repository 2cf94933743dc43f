"""A closed-loop simulator of a GPU inference Deployment scaled by KEDA + HPA. Pure: no I/O.

    trace (requests/s) --demand--> arrivals per tick
        --> cluster (replicas, start-up delay, FIFO queue, latency)  --Signals-->  policy
        <-- autoscaler (KEDA activation/cooldown, HPA tolerance/stabilization/rate limits)  <--metric--

Modules, one concept each:

- `cluster`     the service: replicas, start-up delay, queueing, latency (`ClusterConfig`)
- `autoscaler`  KEDA's scale loop and fallback, the HPA's legacy path or `behavior` (`ScalingConfig`)
- `interface`   what a policy sees through the metric pipeline (`PipelineConfig`, `Signals`) and
                answers (`Answer`); the `Policy` protocol
- `policies`    reactive, fixed buffer, oracle
- `baselines`   reactive on rate, no_forecast, Crane DSP, AWS-style
- `predictive`, `holt_winters`  prescaler's predictive mode; the Holt-Winters anchor
- `trigger_settings`  the trigger a simulated user writes (`PredictiveSettings`, `trigger_config`)
- `samples`     what the simulated predictor keeps: past rates, bootstrap history, time in service
- `demand`      a trace as demand: rescale, resample to the tick, sample arrivals
- `outcomes`    GPU-hours, cost, SLO-violating minutes, series for plots (`Outcome`)
- `run`         `simulate(trace, policies, cluster, scaling, seed=...)`
- `sweep`       a policy's frontier over its knob; GPU-hours at an SLO budget
- `shared`      what the runs of a sweep share (`FitCache`: fits, bounds, paths)
- `compare`     every policy on one window, swept, read at equal SLO
- `readings`    a comparison's equal-SLO ratios, its JSON and table

Example::

    trace = rescale_to_peak(load_trace(path), peak_replicas=20, capacity_per_replica=cluster.capacity_rps)
    outcomes = simulate(trace, baselines(target=6.0), cluster, ScalingConfig(), seed=1)
"""

from scaler.sim.autoscaler import SCALE_DOWN, SCALE_UP, ScalingConfig, ScalingPolicy, ScalingRules
from scaler.sim.demand import rates_per_tick, rescale_to_peak, sample_arrivals
from scaler.sim.interface import Answer, Metric, PipelineConfig, Policy, PolicyFactory, Scenario, Signals
from scaler.sim.outcomes import MinuteSeries, Outcome, TickSeries
from scaler.sim.service import ClusterConfig

# The submodule `baselines` is loaded first, so that the function `baselines` bound next keeps the
# name: a submodule loaded later would replace the package's attribute with itself.
from scaler.sim import baselines as _baselines_module  # noqa: F401  # isort: skip
from scaler.sim.policies import Oracle, Reactive, baselines, fixed_buffer, oracle, reactive
from scaler.sim.run import prepare, run_policy, simulate
from scaler.sim.sweep import SweepPoint, frontier, gpu_hours_at_budget

__all__ = [
    "SCALE_DOWN",
    "SCALE_UP",
    "Answer",
    "ClusterConfig",
    "Metric",
    "MinuteSeries",
    "Oracle",
    "Outcome",
    "PipelineConfig",
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
    "baselines",
    "fixed_buffer",
    "frontier",
    "gpu_hours_at_budget",
    "oracle",
    "prepare",
    "rates_per_tick",
    "reactive",
    "rescale_to_peak",
    "run_policy",
    "sample_arrivals",
    "simulate",
]
