"""The capacity planner behind `prescaler plan`: from a service's history to GPUs, a purchase and dollars.

    history (requests/s) --forecast--> hourly demand band over the horizon (the forecasting ensemble)
        --queueing--> replicas per hour for the latency SLO (Erlang C), beside the naive rule
        --procurement--> reserved level (exact scan), spot with interruption extras, on-demand
        --core--> Plan: costs, JSON --report/plot--> markdown, PNG

Modules, one concept each:

- `queueing`     Erlang C, the waiting and latency tails, replica counts (pure math, no I/O)
- `profile`      the load-test profile and the prices, from YAML, with errors naming file, key, value
- `forecast`     the hourly demand forecast, its growth, intra-hour peaks and backtest
- `procurement`  the reserved / spot / on-demand mix and the cost-vs-reserved-level curve
- `core`         one service's `Plan` and its JSON
- `replay`       the plan through the simulator (`scaler.sim`)
- `report`, `plot`  markdown and figure
- `fleet`        many services, in this process or on a Dask cluster

Nothing is imported here, so that `scaler.plan.queueing` can be used without the forecasting stack.
"""
