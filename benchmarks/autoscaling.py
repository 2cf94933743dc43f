"""Autoscaling on real traces: GPU-hours at equal SLO, on the pre-registered windows.

The protocol (benchmarks/windows.toml, committed before any mechanic or policy change): per trace,
development windows (defaults may be chosen on these only) and test windows (reported, never tuned
on); every test window with each of `test_seeds` Poisson seeds, at each start-up of `startups_s`.
Each (window, seed, start-up) is one `scaler.sim.compare.compare` with every baseline's knob swept
on the same sampled demand; its frontiers are read at the SLO budgets (`budget_shares` of the
minutes), as GPU-hours relative to the best tuned reactive baseline and to the oracle floor.

The jobs run in priority order (dev windows, then test windows with the kinds of trace taking turns,
each window with all its seeds and start-ups in a row); a window's jobs are one task, each seed's
on one `FitCache` (60 s and 180 s fit the same forecasts), the seeds sharing the members' fits. Each finished task's jobs are saved to
benchmarks/autoscaling_results.json at once, so a run cut short leaves every finished job and
`--resume` carries on from there. The README section says which jobs are missing.

    python -m benchmarks.autoscaling                 # the protocol, resumable with --resume
    python -m benchmarks.autoscaling --quick         # 1 window, 1 seed, 180 s: a few minutes
    python -m benchmarks.autoscaling --render        # rewrite the README section from the JSON
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import platform
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from benchmarks._autoscaling_report import markdown, write_section
from benchmarks._provenance import git
from forecasting.base import DAY_S, ForecastConfig
from forecasting.models import FitMemo
from scaler.leadtime import forecast_config
from scaler.sim import ClusterConfig
from scaler.sim.compare import FLOORS, Setup, compare
from scaler.sim.compare import POLICIES as ALL_POLICIES
from scaler.sim.demand import demand_at_step, rescaled
from scaler.sim.interface import Scenario
from scaler.sim.readings import settings_json, to_json
from scaler.sim.shared import FitCache
from scaler.sim.trigger_settings import PredictiveSettings
from scaler.traces import Trace, load_trace

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
WINDOWS = ROOT / "benchmarks" / "windows.toml"
README = ROOT / "benchmarks" / "README.md"
RESULTS = ROOT / "benchmarks" / "autoscaling_results.json"
PLOTS = ROOT / "benchmarks" / "plots"

STEP_S = 60.0
FIRST_STARTUP_S = 180.0
# The service: 8 slots, 1 s per request, p99 within 2 s (so a request may wait 1 s).
CLUSTER = ClusterConfig(concurrency=8, service_time_s=1.0, slo_s=2.0)
# The policies and how finely each knob is swept (the benchmark's grids are coarser than the
# simulate command's so that a job takes minutes; predictive's fits are shared across its sweep).
POLICIES = tuple(p for p in ALL_POLICIES if p not in (*FLOORS, "fixed_buffer"))
"""Every baseline the simulator has but the floors (always run) and the old fixed buffer."""
# Target-like knobs from 0.25x to 1.6x their default: at 0.5x (the simulate command's low end) most
# spiky windows and most 600 s jobs had no policy meeting the 0.1 % budget, nor some the 1 %, so
# nothing could be read there; predictive's grid reaches as far (a threshold of 0.35x, quantile 0.99).
SWEEP_POINTS = 12
SWEEP_RANGE = (0.25, 1.6)
QUANTILES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.97, 0.99)
THRESHOLD_SHARES = (0.35, 0.5, 0.75, 1.25, 1.6)


class Job(NamedTuple):
    trace: str
    split: str
    """`test` or `dev`."""
    start_day: float
    seed: int
    startup_s: float

    @property
    def key(self) -> str:
        return f"{self.trace}|{self.split}|{self.start_day:g}|{self.seed}|{self.startup_s:g}"


def protocol(path: Path = WINDOWS) -> dict[str, Any]:
    """The windows file, checked: a clear error naming the trace and key otherwise."""
    try:
        loaded = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SystemExit(f"{path}: {exc}") from None
    for name, spec in loaded.get("traces", {}).items():
        for key in ("kind", "paths", "history_days", "days", "dev", "test"):
            if key not in spec:
                raise SystemExit(f"{path}: trace {name} has no `{key}`")
    return loaded


def jobs(windows: dict[str, Any]) -> list[Job]:
    """Every job of the protocol, in priority order: the dev windows, then the test windows, the
    kinds of trace taking turns (so a run cut short still covers each kind), each window with all
    its seeds in a row (a table cell counts a window only once every seed of it ran) and every
    start-up (180 s first, then the longest)."""
    settings = windows["protocol"]
    startups = sorted(settings["startups_s"], key=lambda s: (s != FIRST_STARTUP_S, -s))
    seeds = {"test": list(settings["test_seeds"]), "dev": list(settings["dev_seeds"])}
    found = []
    for split in ("dev", "test"):
        by_kind: dict[str, list[tuple[str, float]]] = {}
        for name, spec in windows["traces"].items():
            by_kind.setdefault(spec["kind"], []).extend((name, float(day)) for day in spec[split])
        turns = itertools.zip_longest(*by_kind.values())
        for name, day in (window for turn in turns for window in turn if window is not None):
            found += [
                Job(name, split, day, int(seed), float(startup))
                for seed in seeds[split]
                for startup in startups
            ]
    return found


def tasks(found: list[Job]) -> list[list[Job]]:
    """`found` grouped into the tasks a worker runs, in the order their first job comes: the jobs of
    one window, all its seeds and start-ups, one after the other. Each seed's jobs run on one
    `FitCache`, whose keys hold the forecasting settings and lead time, so each start-up takes from
    it only what is the same for it (60 s and 180 s fit the same horizon in 300 s steps and share
    their fits; Holt-Winters' hourly path and the bootstrap history are shared by all three); the
    seeds share the ensemble members' fits, which for two days of simulated time see only the
    window's past (`forecasting.models.fit_member`)."""
    groups: dict[tuple[object, ...], list[Job]] = {}
    for job in found:
        groups.setdefault((job.trace, job.split, job.start_day), []).append(job)
    return list(groups.values())


def forecasting_settings(startup_s: float, peak: float) -> ForecastConfig:
    """The forecasting settings predictive fits with at this start-up (its lead time sets the horizon)."""
    setup = setup_for(startup_s, 1, peak)
    scenario = Scenario(0.0, 5.0, np.zeros(1), setup.cluster, setup.scaling)
    return forecast_config(setup.settings.trigger(scenario))


def load(spec: dict[str, Any], data: Path) -> Trace:
    """The spec's trace(s) as demand at STEP_S, summed over its files on their common minutes."""
    parts = []
    for relative in spec["paths"]:
        trace = load_trace(data / relative)
        resolution = spec.get("resolution_s")
        if resolution is not None:
            trace = demand_at_step(trace, float(resolution))
        parts.append(demand_at_step(trace, STEP_S))
    start = max(float(p.at_s[0]) for p in parts)
    end = min(float(p.at_s[-1]) for p in parts)
    total, at_s = None, None
    for part in parts:
        keep = (part.at_s >= start) & (part.at_s <= end)
        total = part.values[keep] if total is None else total + part.values[keep]
        at_s = part.at_s[keep]
    assert total is not None and at_s is not None
    return Trace(parts[0].name, at_s, total, STEP_S)


def setup_for(startup_s: float, seed: int, peak: float) -> Setup:
    cluster = dataclasses.replace(CLUSTER, startup_delay_s=startup_s)
    settings = PredictiveSettings(history_s=7 * DAY_S)
    return Setup(
        cluster,
        policies=POLICIES,
        settings=settings,
        sweep=True,
        sweep_points=SWEEP_POINTS,
        sweep_range=SWEEP_RANGE,
        seed=seed,
        quantiles=QUANTILES,
        threshold_shares=THRESHOLD_SHARES,
        budget_runs=True,
    )


_TRACES: dict[str, Trace] = {}


def run_task(group: list[Job], spec: dict[str, Any], data: Path, peak: float) -> list[dict[str, Any]]:
    """The jobs of one task (`tasks`): a `FitCache` per seed, the members' fits shared by all."""
    members: FitMemo = {}
    caches: dict[int, FitCache] = {}
    out = []
    for job in group:
        if job.seed not in caches:
            caches = {job.seed: FitCache(members)}  # a seed's jobs are in a row: drop the last one's
        out.append(run_job(job, spec, data, peak, caches[job.seed]))
    return out


def run_job(
    job: Job,
    spec: dict[str, Any],
    data: Path,
    peak: float,
    fits: FitCache | None = None,
    configure: Callable[[Setup], Setup] | None = None,
) -> dict[str, Any]:
    """One (window, seed, start-up): the simulate command's JSON, compacted, plus timing; `fits`
    shares fits with other jobs on the same window and seed; `configure` changes the protocol's
    setup (the development-window studies)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    if job.trace not in _TRACES:
        _TRACES[job.trace] = load(spec, data)
    trace = _TRACES[job.trace]
    first = float(trace.at_s[0])
    begin = first + job.start_day * DAY_S
    end = begin + float(spec["days"]) * DAY_S
    history = float(spec["history_days"]) * DAY_S
    before = (trace.at_s >= begin - history) & (trace.at_s < begin)
    inside = (trace.at_s >= begin) & (trace.at_s < end)
    past = Trace(trace.name, trace.at_s[before], trace.values[before], trace.step_s)
    window = Trace(trace.name, trace.at_s[inside], trace.values[inside], trace.step_s)
    setup = setup_for(job.startup_s, job.seed, peak)
    if configure is not None:
        setup = configure(setup)
    past, window = rescaled(past, window, peak_replicas=peak, cluster=setup.cluster)
    result = compare(past if past.values.size else None, window, setup, fits=fits)
    about = {
        "job": job._asdict(),
        "kind": spec["kind"],
        "key": job.key,
        "trace": {"name": job.trace, "start_day": job.start_day, "days": float(spec["days"])},
    }
    out = to_json(result, about)
    for details in out["policies"].values():
        details.pop("sweep", None)
    out["seconds"] = time.perf_counter() - started
    out["cpu_seconds"] = time.process_time() - cpu_started
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=DATA, help="the shared data folder (default ../shared/data)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--quick", action="store_true", help="one test window, seed 1, 180 s; writes nothing")
    parser.add_argument("--resume", action="store_true", help="keep the finished jobs in the results file")
    parser.add_argument("--deadline", type=float, help="stop starting jobs after this many minutes")
    parser.add_argument("--render", action="store_true", help="rewrite the README section from the results")
    args = parser.parse_args(argv)
    windows = protocol()
    all_jobs = jobs(windows)
    if args.render:
        render(json.loads(RESULTS.read_text()), windows, all_jobs)
        return 0
    peak = float(windows["protocol"]["peak_replicas"])
    todo = all_jobs[:1] if args.quick else all_jobs
    saved: dict[str, Any] = {"meta": {}, "runs": {}}
    if args.resume and RESULTS.exists():
        saved = json.loads(RESULTS.read_text())
        todo = [job for job in todo if job.key not in saved["runs"]]
    queue = tasks(todo)
    started = time.perf_counter()
    stopped = _Stopped()
    saved["meta"] = {
        "date": time.strftime("%Y-%m-%d"),
        "commit": source_commit(),
        "cpus": os.cpu_count() or 1,
        "python": platform.python_version(),
        "jobs": args.jobs,
        "jobs_in_protocol": len(all_jobs),
        "settings": settings_json(setup_for(FIRST_STARTUP_S, 1, peak)),
    }
    print(f"{len(todo)} jobs to run", file=sys.stderr, flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        pending: set[Future[list[dict[str, Any]]]] = set()

        def submit() -> None:
            while queue and len(pending) < args.jobs:
                if args.deadline is not None and time.perf_counter() - started > args.deadline * 60:
                    queue.clear()
                    return
                group = queue.pop(0)
                spec = windows["traces"][group[0].trace]
                pending.add(pool.submit(run_task, group, spec, args.data, peak))

        submit()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                pending.discard(future)
                for run in future.result():
                    saved["runs"][run["key"]] = run
                    print(f"{run['key']}: {run['seconds']:.0f} s", file=sys.stderr, flush=True)
                if not args.quick:
                    saved["meta"]["seconds"] = time.perf_counter() - started - stopped.seconds
                    saved["meta"]["stopped_seconds"] = stopped.seconds
                    RESULTS.write_text(json.dumps(saved, indent=None, default=_json_default) + "\n")
            submit()
    if args.quick:
        print(json.dumps(next(iter(saved["runs"].values()))["equal_slo"], indent=1, default=_json_default))
        return 0
    render(saved, windows, all_jobs)
    return 0


class _Stopped:
    """Time the run spent stopped (SIGSTOP, to leave the machine to other work, then SIGCONT): the
    gaps in a once-a-second heartbeat, so that the wall time reported is the time it ran."""

    def __init__(self) -> None:
        self.seconds = 0.0
        threading.Thread(target=self._beat, daemon=True).start()

    def _beat(self) -> None:
        last = time.perf_counter()
        while True:
            time.sleep(1.0)
            now = time.perf_counter()
            if now - last > 10.0:
                self.seconds += now - last - 1.0
            last = now


def source_commit() -> str:
    """The short commit, with "(plus uncommitted changes)" when a file this run executes (the
    project's modules it has loaded, and the windows file) differs from it; others' work in
    progress elsewhere in the tree does not count."""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    paths = [Path(getattr(m, "__file__", None) or "/") for m in list(sys.modules.values())]
    used = {
        path.resolve()
        for path in (WINDOWS, *paths)
        if path.resolve().is_relative_to(ROOT) and not path.resolve().is_relative_to(ROOT / ".venv")
    }
    changed = git("status", "--porcelain", "--", *sorted(str(p.relative_to(ROOT)) for p in used))
    return head + (" (plus uncommitted changes)" if changed else "")


def render(saved: dict[str, Any], windows: dict[str, Any], all_jobs: list[Job]) -> None:
    text = markdown(saved, windows, [job.key for job in all_jobs], PLOTS)
    write_section(text, README)
    print(text)


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
