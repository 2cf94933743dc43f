"""The planner's two inputs besides the load: a replica's load-test profile and the GPU prices.

Both are read from YAML (`deploy/plan/profile.example.yaml`, `deploy/plan/prices.example.yaml`,
documented key by key) into frozen dataclasses. Every problem of a file is reported at once, each
naming the file, the key, the value and what was expected::

    profile.yaml: `slo.quantile`: `1.5` is not valid; expected a number in (0, 1)

Unknown keys are errors too: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from scaler.plan.queueing import FloatArray, ServiceTime, service_tail
from scaler.units import parse_duration_s


class PlanInputError(ValueError):
    """A profile, price or services file that cannot be used; lists every problem."""


@dataclass(frozen=True, slots=True)
class LoadPoint:
    """One row of a load test: at `rps_per_replica` requests/s per replica, the mean service time."""

    rps_per_replica: float
    service_time_s: float


@dataclass(frozen=True, slots=True)
class Profile:
    """What one replica of the service is and does (from a load test), and the latency it promises."""

    gpus_per_replica: int
    """GPUs one replica holds (a vLLM tensor-parallel group counts all of them)."""
    slots_per_replica: int
    """Requests one replica serves at once (vLLM `max_num_seqs` as the load test saturated it)."""
    service_time_s: float
    """Mean seconds a request occupies a slot at light load."""
    service_time_cv: float
    """Coefficient of variation of the service time (standard deviation / mean); 0 is deterministic."""
    startup_s: float
    """From a replica asked for to it serving (node, image, weights): how long a lost spot replica
    leaves a hole, and how far ahead a schedule must ask."""
    slo_quantile: float
    """The latency SLO's quantile, e.g. 0.99."""
    slo_seconds: float
    """The latency (waiting + service) that quantile must stay within."""
    min_replicas: int = 1
    """Fewest replicas in any hour, even with no demand."""
    naive_safety_factor: float = 1.3
    """The rule of thumb's head-room: rate x this / a replica's throughput."""
    load_test: tuple[LoadPoint, ...] = ()
    """Optional latency-vs-load table: the mean service time at each per-replica rate (interpolated;
    held flat beyond its ends). Empty: `service_time_s` at every load."""

    @property
    def capacity_rps(self) -> float:
        """Requests/s one busy replica completes: slots / service time."""
        return self.slots_per_replica / self.service_time_s

    def service_time(self) -> ServiceTime:
        """Mean service time as a function of a replica's arrival rate."""
        if not self.load_test:
            mean_s = self.service_time_s
            return lambda rate: np.full_like(np.asarray(rate, dtype=np.float64), mean_s)
        xs = np.array([p.rps_per_replica for p in self.load_test])
        ys = np.array([p.service_time_s for p in self.load_test])

        def at(rate: FloatArray) -> FloatArray:
            result: FloatArray = np.interp(rate, xs, ys)
            return result

        return at

    @property
    def fastest_service_s(self) -> float:
        """The shortest mean service time the profile allows (bounds the replica search)."""
        return min([self.service_time_s, *(p.service_time_s for p in self.load_test)])

    def to_json(self) -> dict[str, Any]:
        """As the plan's JSON shows it (the file's keys)."""
        out = asdict(self)
        out["slo"] = {"quantile": out.pop("slo_quantile"), "seconds": out.pop("slo_seconds")}
        out["load_test"] = [asdict(p) for p in self.load_test]
        return out


@dataclass(frozen=True, slots=True)
class Spot:
    """Spot / preemptible GPUs."""

    price: float
    """USD per GPU-hour."""
    interruptions_per_hour: float
    """Expected interruptions per spot replica-hour (a 5 % hourly reclaim rate is 0.05)."""
    max_share: float
    """The most of an hour's serving replicas allowed on spot, in [0, 1]."""


@dataclass(frozen=True, slots=True)
class Term:
    """A reservation or committed-use term: `price` is its hourly-equivalent USD per GPU-hour."""

    term: str
    price: float


@dataclass(frozen=True, slots=True)
class Prices:
    """GPU prices, USD per GPU-hour."""

    on_demand: float
    spot: Spot | None = None
    reserved: tuple[Term, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """As the plan's JSON shows it (the file's keys)."""
        return {
            "on_demand": self.on_demand,
            "spot": asdict(self.spot) if self.spot else None,
            "reserved": [asdict(t) for t in self.reserved],
        }


class _Reader:
    """Collects every problem of one file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def bad(self, key: str, value: object, expected: str) -> None:
        self.problems.append(f"`{key}`: `{value}` is not valid; expected {expected}")

    def mapping(self, raw: object, key: str, known: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(raw, Mapping):
            self.bad(key or "(top level)", raw, "a mapping of keys to values")
            return {}
        for name in raw:
            if name not in known:
                where = f"{key}.{name}" if key else str(name)
                self.problems.append(f"unknown key `{where}`; known keys: {', '.join(known)}")
        return raw

    def number(
        self,
        raw: Mapping[str, Any],
        key: str,
        check: Callable[[float], bool],
        expected: str,
        *,
        prefix: str = "",
        default: float | None = None,
        integer: bool = False,
    ) -> float:
        name = f"{prefix}{key}"
        if key not in raw:
            if default is None:
                self.problems.append(f"`{name}` is required; expected {expected}")
                return math.nan
            return default
        value = raw[key]
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and integer and not float(value).is_integer():
            ok = False
        if not ok or not math.isfinite(float(value)) or not check(float(value)):
            self.bad(name, value, expected)
            return math.nan
        return float(value)

    def seconds(self, raw: Mapping[str, Any], key: str, *, default: float) -> float:
        if key not in raw:
            return default
        value = raw[key]
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= 0
        ):
            return float(value)
        if isinstance(value, str):
            try:
                return parse_duration_s(value)
            except ValueError:
                pass
        self.bad(key, value, "seconds >= 0 or a duration such as 3m")
        return math.nan

    def finish(self) -> None:
        if self.problems:
            raise PlanInputError(f"{self.source}: " + "; ".join(self.problems))


PROFILE_KEYS = (
    "gpus_per_replica",
    "slots_per_replica",
    "service_time_s",
    "service_time_cv",
    "startup_s",
    "slo",
    "min_replicas",
    "naive_safety_factor",
    "load_test",
)
PRICES_KEYS = ("on_demand", "spot", "reserved")


def _positive(x: float) -> bool:
    return x > 0


def _non_negative(x: float) -> bool:
    return x >= 0


def parse_profile(raw: object, source: str) -> Profile:
    """A `Profile` from parsed YAML; `source` names the file in errors."""
    r = _Reader(source)
    top = r.mapping(raw, "", PROFILE_KEYS)
    gpus = r.number(top, "gpus_per_replica", _positive, "a whole number >= 1", integer=True)
    slots = r.number(top, "slots_per_replica", _positive, "a whole number >= 1", integer=True)
    mean_s = r.number(top, "service_time_s", _positive, "seconds > 0")
    cv = r.number(top, "service_time_cv", _non_negative, "a number >= 0 (0: every request takes as long)")
    startup_s = r.seconds(top, "startup_s", default=0.0)
    slo = r.mapping(top.get("slo"), "slo", ("quantile", "seconds")) if "slo" in top else {}
    if "slo" not in top:
        r.problems.append("`slo` is required; expected {quantile: 0.99, seconds: 2}")
    quantile = r.number(
        slo, "quantile", lambda x: 0 < x < 1, "a number in (0, 1)", prefix="slo.", default=0.99
    )
    seconds = r.number(slo, "seconds", _positive, "seconds > 0", prefix="slo.", default=math.inf)
    if "slo" in top and "seconds" not in slo:
        r.problems.append("`slo.seconds` is required; expected seconds > 0")
    least = r.number(top, "min_replicas", _non_negative, "a whole number >= 0", default=1, integer=True)
    safety = r.number(top, "naive_safety_factor", lambda x: x >= 1, "a number >= 1", default=1.3)
    points = _load_test(r, top.get("load_test", []))
    if math.isfinite(mean_s) and math.isfinite(seconds) and seconds <= mean_s:
        r.bad("slo.seconds", slo.get("seconds"), f"more than service_time_s ({mean_s:g})")
    r.finish()
    profile = Profile(
        int(gpus), int(slots), mean_s, cv, startup_s, quantile, seconds, int(least), safety, points
    )
    fastest = profile.fastest_service_s
    beyond = service_tail(seconds, fastest, cv)
    if beyond > 1 - quantile:
        raise PlanInputError(
            f"{source}: `slo`: {seconds:g} s at quantile {quantile:g} cannot be met at any replica count: "
            f"with service_time_s {fastest:g} and service_time_cv {cv:g}, P(service > {seconds:g} s) = "
            f"{beyond:.3g} already exceeds {1 - quantile:.3g}"
        )
    return profile


def _load_test(r: _Reader, raw: object) -> tuple[LoadPoint, ...]:
    if not isinstance(raw, list):
        r.bad("load_test", raw, "a list of {rps_per_replica, service_time_s}")
        return ()
    points = []
    for i, row in enumerate(raw):
        key = f"load_test[{i}]"
        item = r.mapping(row, key, ("rps_per_replica", "service_time_s"))
        x = r.number(item, "rps_per_replica", _non_negative, "requests/s >= 0", prefix=f"{key}.")
        y = r.number(item, "service_time_s", _positive, "seconds > 0", prefix=f"{key}.")
        points.append(LoadPoint(x, y))
    xs = [p.rps_per_replica for p in points]
    if any(b <= a for a, b in itertools.pairwise(xs)):
        r.bad("load_test", xs, "rows in increasing rps_per_replica")
    return tuple(points)


def parse_prices(raw: object, source: str) -> Prices:
    """`Prices` from parsed YAML; `source` names the file in errors."""
    r = _Reader(source)
    top = r.mapping(raw, "", PRICES_KEYS)
    on_demand = r.number(top, "on_demand", _positive, "USD per GPU-hour > 0")
    spot = None
    if top.get("spot") is not None:
        s = r.mapping(top["spot"], "spot", ("price", "interruptions_per_hour", "max_share"))
        spot = Spot(
            r.number(s, "price", _positive, "USD per GPU-hour > 0", prefix="spot."),
            r.number(s, "interruptions_per_hour", _non_negative, "a rate >= 0", prefix="spot."),
            r.number(s, "max_share", lambda x: 0 <= x <= 1, "a share in [0, 1]", prefix="spot."),
        )
    terms: list[Term] = []
    listed = top.get("reserved", [])
    if not isinstance(listed, list):
        r.bad("reserved", listed, "a list of {term, price}")
        listed = []
    for i, row in enumerate(listed):
        key = f"reserved[{i}]"
        item = r.mapping(row, key, ("term", "price"))
        name = item.get("term")
        if not isinstance(name, str | int) or not str(name).strip():
            r.bad(f"{key}.term", name, "a name such as 1y")
            name = "?"
        if str(name) in {t.term for t in terms}:
            r.bad(f"{key}.term", name, "a term not listed before")
        terms.append(
            Term(str(name), r.number(item, "price", _positive, "USD per GPU-hour > 0", prefix=f"{key}."))
        )
    r.finish()
    return Prices(on_demand, spot, tuple(terms))


def read_yaml(path: Path, what: str) -> object:
    """The parsed YAML of `path`; errors name the file (`what` says which input it is)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PlanInputError(f"{what} {path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlanInputError(f"{what} {path}{where}: not valid YAML: {problem}") from None


def load_profile(path: Path) -> Profile:
    """`parse_profile` of the YAML file at `path`."""
    return parse_profile(read_yaml(path, "profile"), str(path))


def load_prices(path: Path) -> Prices:
    """`parse_prices` of the YAML file at `path`."""
    return parse_prices(read_yaml(path, "prices"), str(path))
