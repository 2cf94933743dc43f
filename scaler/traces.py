"""Load a load trace, a series of (timestamp, value), from the formats users and datasets use.

Accepted (the format is recognised from the file, not its name):

- `timestamp,value` CSV with a header (the user-facing format; also NAB): timestamps as unix
  seconds or ISO 8601 / `YYYY-MM-DD HH:MM:SS` (naive times are taken as UTC).
- A request log with a `TIMESTAMP` column and one row per request (Azure LLM inference traces):
  counted per `step_s` bin, as requests per second.
- Alibaba GenTD26 monitoring CSVs (`timestamp_anon`, `value`, ...): summed across containers per bin;
  for `qps.csv` only `Generative Requests` rows (the per-container serving QPS).
- A folder of ServeGen `chunk-*-trace.csv` files (no header; `timestamp,rate,...`): the clients'
  rates summed into the model's total request rate.
- NASA-HTTP `workload.txt`: one line of per-second request counts, on the time axis its SOURCE.md gives
  (the 3.4 days missing between its July and August logs left as a gap).

Values are returned as given except where noted; `at_s` is unix seconds, ascending.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

# NASA-HTTP `workload.txt` holds no timestamps; its time axis is the one the trace's SOURCE.md
# (shared/data/nasa_http_1995/SOURCE.md, "Time axis") reconstructs, in server-local time (UTC-4):
# index 0 is 1995-07-01 00:00:01 and the July log ends at index 2,381,543 (1995-07-28 13:32:24);
# the August log is joined on directly after it, so index 2,381,544 is 1995-08-01 00:00:01. The
# 3.4 days between are not in the file: they are put back as a gap (missing data, NaN once
# regridded), so that dates and weekdays after the join are the calendar's.
_NASA_LOCAL = timezone(timedelta(hours=-4))
NASA_START_S = datetime(1995, 7, 1, 0, 0, 1, tzinfo=_NASA_LOCAL).timestamp()
NASA_JOIN_INDEX = 2_381_544
"""The index of the August log's first second, `NASA_AUGUST_S`."""
NASA_AUGUST_S = datetime(1995, 8, 1, 0, 0, 1, tzinfo=_NASA_LOCAL).timestamp()


_Arrays = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


class TraceError(ValueError):
    """A trace file that cannot be read as a series; names the file, the line and the problem."""


class Trace(NamedTuple):
    """A load series; `step_s` is the median spacing of `at_s`."""

    name: str
    at_s: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    step_s: float


def parse_timestamp(text: str) -> float:
    """Unix seconds from a number or an ISO-8601-like date-time (naive means UTC)."""
    raw = text.strip()
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        # Python 3.11's fromisoformat takes at most 6 fractional digits; Azure logs have 7.
        head, dot, frac = raw.partition(".")
        moment = datetime.fromisoformat(head + (dot + frac[:6] if dot else ""))
    except ValueError:
        raise ValueError(f"`{text}` is not a unix time or an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def load_trace(path: Path | str, *, step_s: float | None = None) -> Trace:
    """Read `path` (a file or a ServeGen folder); with `step_s`, put it on that regular grid."""
    path = Path(path)
    if path.is_dir():
        at_s, values = _servegen(path)
    elif not path.is_file():
        raise TraceError(f"trace {path}: no such file or folder")
    elif path.suffix == ".txt":
        at_s, values = _per_second_counts(path)
    else:
        at_s, values = _csv(path, step_s or 60.0)
    if at_s.size == 0:
        raise TraceError(f"trace {path}: holds no data rows")
    order = np.argsort(at_s, kind="stable")
    at_s, values = at_s[order], values[order]
    native = float(np.median(np.diff(at_s))) if at_s.size > 1 else 1.0
    trace = Trace(path.name, at_s, values, native)
    return regrid(trace, step_s) if step_s is not None else trace


def regrid(trace: Trace, step_s: float) -> Trace:
    """`trace` on a regular grid of `step_s`: the mean of the points in each bin, NaN where none fell."""
    start = math.floor(trace.at_s[0] / step_s) * step_s
    index = ((trace.at_s - start) // step_s).astype(np.int64)
    count = np.bincount(index).astype(np.float64)
    total = np.bincount(index, weights=np.nan_to_num(trace.values, nan=0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(count > 0, total / count, np.nan)
    at_s = start + step_s * np.arange(values.size, dtype=np.float64)
    return Trace(trace.name, at_s, values, step_s)


def _float(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise TraceError(f"{where}: `{text}` is not a number") from None


def _csv(path: Path, bin_s: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        rows = list(reader)
    lowered = [name.lower() for name in header]
    if lowered[:2] == ["timestamp", "value"]:
        return _timestamp_value(path, rows)
    if lowered and lowered[0] == "timestamp":
        return _arrivals(path, rows, bin_s)
    if "timestamp_anon" in lowered and "value" in lowered:
        return _summed_per_bin(path, header, rows, bin_s)
    raise TraceError(
        f"trace {path}: header {header} is not recognised; expected `timestamp,value` "
        "(or a request log with a TIMESTAMP column)"
    )


def _timestamp_value(path: Path, rows: list[list[str]]) -> _Arrays:
    at_s, values = [], []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        where = f"trace {path}, line {line}"
        if len(row) < 2:
            raise TraceError(f"{where}: expected `timestamp,value`, got {row}")
        try:
            at_s.append(parse_timestamp(row[0]))
        except ValueError as exc:
            raise TraceError(f"{where}: {exc}") from None
        values.append(_float(row[1], where) if row[1].strip() else math.nan)
    return np.asarray(at_s, dtype=np.float64), np.asarray(values, dtype=np.float64)


def _arrivals(path: Path, rows: list[list[str]], bin_s: float) -> _Arrays:
    times = []
    for line, row in enumerate(rows, start=2):
        if row:
            try:
                times.append(parse_timestamp(row[0]))
            except ValueError as exc:
                raise TraceError(f"trace {path}, line {line}: {exc}") from None
    stamps = np.sort(np.asarray(times, dtype=np.float64))
    start = math.floor(stamps[0] / bin_s) * bin_s
    counts = np.bincount(((stamps - start) // bin_s).astype(np.int64)).astype(np.float64)
    return start + bin_s * np.arange(counts.size, dtype=np.float64), counts / bin_s


def _summed_per_bin(path: Path, header: list[str], rows: list[list[str]], bin_s: float) -> _Arrays:
    col = {name.lower(): i for i, name in enumerate(header)}
    kind = col.get("request_type")
    picked = [r for r in rows if r and (kind is None or r[kind] == "Generative Requests")]
    at = np.asarray([_float(r[col["timestamp_anon"]], f"trace {path}") for r in picked], dtype=np.float64)
    vals = np.asarray([_float(r[col["value"]], f"trace {path}") for r in picked], dtype=np.float64)
    start = math.floor(at.min() / bin_s) * bin_s
    index = ((at - start) // bin_s).astype(np.int64)
    total = np.bincount(index, weights=vals)
    seen = np.bincount(index) > 0
    grid = start + bin_s * np.arange(total.size, dtype=np.float64)
    return grid[seen], total[seen].astype(np.float64)


def _servegen(folder: Path) -> _Arrays:
    files = sorted(folder.glob("chunk-*-trace.csv"))
    if not files:
        raise TraceError(f"trace {folder}: a folder must hold ServeGen chunk-*-trace.csv files")
    totals: dict[float, float] = {}
    for file in files:
        for at, rate in _headerless_pairs(file):
            totals[at] = totals.get(at, 0.0) + rate
    keys = sorted(totals)
    return np.asarray(keys, dtype=np.float64), np.asarray([totals[k] for k in keys], dtype=np.float64)


def _headerless_pairs(file: Path) -> Iterable[tuple[float, float]]:
    with file.open(newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if row:
                where = f"trace {file}, line {line}"
                yield _float(row[0], where), _float(row[1], where)


def _per_second_counts(path: Path) -> _Arrays:
    try:
        counts = np.asarray(path.read_text().split(), dtype=np.float64)
    except ValueError:
        raise TraceError(f"trace {path}: expected whitespace-separated per-second counts") from None
    at_s = _joined_seconds(
        counts.size, start_s=NASA_START_S, join_index=NASA_JOIN_INDEX, resume_s=NASA_AUGUST_S
    )
    return at_s, counts


def _joined_seconds(n: int, *, start_s: float, join_index: int, resume_s: float) -> npt.NDArray[np.float64]:
    """The times of `n` per-second counts from two logs joined end to end: consecutive seconds from
    `start_s`, and from index `join_index` on (when there are that many) consecutive from `resume_s`."""
    at_s = start_s + np.arange(n, dtype=np.float64)
    if n > join_index:
        at_s[join_index:] += resume_s - (start_s + join_index)
    return at_s
