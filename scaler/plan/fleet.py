"""Many services at once: a services file, and their plans in this process or on a Dask cluster.

    services.yaml -> [Service(name, trace | query, profile)] -> load each history (the caller)
        -> plan_series per service: here, one after another, or as dask.distributed futures

A services file::

    services:
      - name: chat
        trace: traces/chat.csv          # relative to this file; or `query:` with --prometheus
        profile: profiles/chat.yaml     # a profile file (relative to this file) or an inline mapping

Each service's whole plan (forecast, backtest, sizing, procurement) runs as one task: the forecast is
nearly all of the work, and the task's inputs are its hourly history and profile (kilobytes). The
results are the same objects whichever way they ran; tests/test_plan_fleet.py checks it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecasting import Series
from scaler.plan.core import Plan, PlanOptions, plan_series
from scaler.plan.profile import PlanInputError, Prices, Profile, load_profile, parse_profile, read_yaml
from scaler.plan.queueing import FloatArray

if TYPE_CHECKING:
    from distributed import Client

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Service:
    """One entry of a services file."""

    name: str
    profile: Profile
    trace: Path | None
    query: str | None


@dataclass(frozen=True, slots=True)
class Job:
    """One service's planning task: everything a worker needs."""

    name: str
    series: Series
    peak_factor: FloatArray
    profile: Profile


def parse_services(raw: object, source: Path) -> list[Service]:
    """The services of a parsed services file at `source` (relative paths are from its folder)."""
    problems: list[str] = []
    base = source.parent
    entries = raw.get("services") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise PlanInputError(f"{source}: `services` is required; expected a non-empty list of services")
    if isinstance(raw, dict) and set(raw) - {"services"}:
        problems.append(f"unknown keys {sorted(set(raw) - {'services'})}; known keys: services")
    services: list[Service] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        key = f"services[{i}]"
        if not isinstance(entry, dict):
            problems.append(
                f"`{key}`: `{entry}` is not valid; expected a mapping with name, trace or query, profile"
            )
            continue
        unknown = sorted(set(entry) - {"name", "trace", "query", "profile"})
        if unknown:
            problems.append(f"unknown keys {unknown} in `{key}`; known keys: name, trace, query, profile")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or name in seen:
            problems.append(f"`{key}.name`: `{name}` is not valid; expected a name not used before")
            continue
        seen.add(name)
        trace, query = entry.get("trace"), entry.get("query")
        if (trace is None) == (query is None) or not isinstance(trace or query, str):
            problems.append(f"`{key}` ({name}): expected exactly one of `trace` (a file) or `query` (PromQL)")
            continue
        try:
            profile = _profile(entry.get("profile"), base, f"{source} {key}.profile")
        except PlanInputError as exc:
            problems.append(str(exc))
            continue
        services.append(Service(name, profile, base / trace if isinstance(trace, str) else None, query))
    if problems:
        raise PlanInputError(f"{source}: " + "; ".join(problems))
    return services


def _profile(raw: object, base: Path, where: str) -> Profile:
    if isinstance(raw, str):
        return load_profile(base / raw)
    if isinstance(raw, dict):
        return parse_profile(raw, where)
    raise PlanInputError(f"{where}: `{raw}` is not valid; expected a profile file name or an inline profile")


def load_services(path: Path) -> list[Service]:
    """`parse_services` of the YAML file at `path`."""
    return parse_services(read_yaml(path, "services"), path)


def run_job(job: Job, prices: Prices, options: PlanOptions) -> Plan:
    """One service's plan (what a worker runs); an unusable history is an error naming the service."""
    try:
        return plan_series(job.name, job.series, job.peak_factor, job.profile, prices, options)
    except ValueError as exc:
        raise PlanInputError(f"service {job.name}: {exc}") from None


def plan_fleet(
    jobs: Sequence[Job],
    prices: Prices,
    options: PlanOptions,
    *,
    client: Client | None = None,
    progress: Progress | None = None,
) -> list[Plan]:
    """Every job's plan, in order: in this process, or as futures on `client`'s cluster."""
    say = progress or (lambda _line: None)
    total = len(jobs)
    if client is None:
        plans = []
        for done, job in enumerate(jobs, start=1):
            plans.append(run_job(job, prices, options))
            say(f"planned {done}/{total}: {job.name}")
        return plans
    from distributed import as_completed

    futures = client.map(run_job, list(jobs), prices=prices, options=options, pure=False)
    index = {future.key: i for i, future in enumerate(futures)}
    results: list[Any] = [None] * total
    for done, future in enumerate(as_completed(futures), start=1):  # type: ignore[no-untyped-call]
        results[index[future.key]] = future.result()
        say(f"planned {done}/{total} on the cluster: {jobs[index[future.key]].name}")
    return results


def connect(address: str, *, timeout_s: float = 10.0) -> Client:
    """A client of the Dask scheduler at `address` (tcp://host:8786); ConnectionError if none answers."""
    from distributed import Client

    try:
        return Client(address, timeout=f"{timeout_s}s")  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConnectionError(f"--dask {address}: no Dask scheduler answered: {exc}") from None
