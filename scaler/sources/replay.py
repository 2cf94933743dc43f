"""Replay a recorded trace as if it were the live signal: the embedded default, no Prometheus needed.

The trace is laid on the wall clock in a loop: at unix time t the value is the trace's value at
offset `(t * replaySpeed) mod span` from its first timestamp, linearly interpolated. The mapping
depends on the clock alone, so every scaler replica answers the same for the same moment.
Trace paths are resolved inside the scaler's replay directory and may not leave it. A file is parsed
once for every target that replays it (until it changes on disk), not once per target.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from scaler.errors import ConfigError, NullValueError, SourceUnreachable
from scaler.settings import Settings
from scaler.sources.base import Sample, Series
from scaler.traces import Trace, TraceError, load_trace
from scaler.trigger import TriggerConfig


class TraceCache:
    """Parsed trace files by (path, modification time, size), the `size` most recently used: a few
    files serve many targets. Thread-safe; the arrays are shared, so callers must not modify them."""

    def __init__(self, size: int = 8, load: Callable[[Path], Trace] = load_trace) -> None:
        self._size = size
        self._load = load
        self._parsed: OrderedDict[tuple[Path, int, int], Trace] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> Trace:
        """The parsed trace at `path`, parsed again only when the file has changed."""
        stat = path.stat()
        key = (path, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            trace = self._parsed.get(key)
            if trace is not None:
                self._parsed.move_to_end(key)
                return trace
        trace = self._load(path)
        with self._lock:
            self._parsed[key] = trace
            while len(self._parsed) > self._size:
                self._parsed.popitem(last=False)
        return trace


SHARED_TRACES = TraceCache()
"""The process's replay sources share this cache (the scaler's default)."""


def resolve_inside(root: Path, relative: str) -> Path:
    """`root / relative`, refusing any path (absolute, `..`, symlink) that ends outside `root`, and
    any that is not a readable file there; every refusal is a ConfigError naming `trace`."""
    base = root.resolve()
    shown = relative if len(relative) <= 64 else relative[:64] + "..."
    try:
        target = (base / relative).resolve()
        if not target.is_relative_to(base):
            raise ConfigError([f"`trace`: `{shown}` is outside the replay directory {base}"])
        exists, is_file = target.exists(), target.is_file()
    except (OSError, RuntimeError, ValueError) as exc:
        # A symlink loop (RuntimeError), a name too long (OSError), a NUL byte (ValueError).
        raise ConfigError([f"`trace`: `{shown}` cannot be opened in {base}: {type(exc).__name__}"]) from None
    if not exists:
        raise ConfigError([f"`trace`: `{shown}` does not exist in {base}; available: {_available(base)}"])
    if not is_file:
        raise ConfigError([f"`trace`: `{shown}` is not a file in {base}; available: {_available(base)}"])
    return target


def _available(base: Path, limit: int = 20) -> str:
    try:
        names = sorted(p.name for p in base.iterdir() if p.suffix in (".csv", ".txt"))
    except OSError:
        return "(the directory cannot be listed)"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return (", ".join(names[:limit]) or "none") + more


class ReplaySource:
    """A trace file served as a live signal."""

    def __init__(
        self,
        path: Path,
        *,
        speed: float = 1.0,
        ignore_null_values: bool = True,
        clock: Callable[[], float] = time.time,
        traces: TraceCache = SHARED_TRACES,
    ) -> None:
        self.path = path
        self._traces = traces
        self.speed = speed
        self.ignore_null_values = ignore_null_values
        self._clock = clock
        self._trace: Trace | None = None

    @classmethod
    def from_config(cls, config: TriggerConfig, settings: Settings) -> ReplaySource:
        assert config.trace is not None  # TriggerConfig.validate guarantees it for source=replay
        path = resolve_inside(settings.replay_dir, config.trace)
        return cls(path, speed=config.replay_speed, ignore_null_values=config.ignore_null_values)

    async def _loaded(self) -> Trace:
        if self._trace is None:
            try:
                self._trace = await asyncio.to_thread(self._traces.get, self.path)
            except (TraceError, OSError) as exc:
                raise SourceUnreachable(f"replay trace {self.path}: {exc}") from exc
        return self._trace

    def _values_at(self, trace: Trace, at_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        offsets = trace.at_s - trace.at_s[0]
        span = float(offsets[-1]) + trace.step_s
        position = np.mod(at_s * self.speed, span)
        # Close the loop: after the last point the value runs back towards the first one.
        xs = np.append(offsets, span)
        ys = np.append(trace.values, trace.values[0])
        return np.asarray(np.interp(position, xs, ys), dtype=np.float64)

    async def sample(self) -> Sample:
        trace = await self._loaded()
        now = self._clock()
        value = float(self._values_at(trace, np.array([now]))[0])
        if not math.isfinite(value):
            if not self.ignore_null_values:
                raise NullValueError(f"replay trace {self.path} has no value at {now:.0f}")
            value = 0.0
        return Sample(now, value)

    async def history(self, start_s: float, end_s: float, step_s: float) -> Series:
        trace = await self._loaded()
        at_s = np.arange(start_s, end_s + step_s / 2, step_s, dtype=np.float64)
        return Series(at_s, self._values_at(trace, at_s))

    async def aclose(self) -> None:
        self._trace = None
