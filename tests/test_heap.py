"""The server's heap policy: targets' long-lived objects frozen once they settle, full collections
on a schedule, collector pauses measured; and tracked targets' calls skip the metadata parse."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from scaler.digest import metadata_digest
from scaler.errors import ConfigError
from scaler.registry import PARSE_CACHE_SIZE, Registry
from scaler.server.heap import (
    DEFERRED_THRESHOLD,
    FULL_EVERY_S,
    SETTLE_MAX_WAIT_S,
    SETTLE_QUIET_S,
    THAW_DROPPED_MIN,
    HeapSettler,
    PauseRecorder,
    defer_full_collections,
)
from scaler.settings import Settings
from scaler.telemetry import Telemetry
from scaler.trigger import TriggerConfig, parse_trigger
from tests.servers import FakeClock


class RecordingCollector:
    """The `gc` calls a settle makes, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def collect(self, generation: int = 2) -> int:
        self.calls.append("collect" if generation == 2 else f"collect {generation}")
        return 0

    def freeze(self) -> None:
        self.calls.append("freeze")

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")

    def get_freeze_count(self) -> int:
        return 0


def settler() -> tuple[HeapSettler, RecordingCollector, FakeClock]:
    collector, clock = RecordingCollector(), FakeClock()
    return HeapSettler(collector=collector, clock=clock), collector, clock


def test_nothing_happens_while_no_target_was_created() -> None:
    heap, collector, clock = settler()
    clock.advance(FULL_EVERY_S - 1)
    assert heap.tick(0, 0, 0) is None and collector.calls == []


def test_a_settle_waits_for_the_creations_to_go_quiet_then_collects_and_freezes_once() -> None:
    heap, collector, clock = settler()
    for created in range(1, 6):  # a burst: one creation a second
        clock.advance(1)
        assert heap.tick(created, 0, created) is None
    clock.advance(SETTLE_QUIET_S - 1)
    assert heap.tick(5, 0, 5) is None  # 9 s since the last creation
    clock.advance(1)
    assert heap.tick(5, 0, 5) == "settle"
    assert collector.calls == ["collect", "freeze"]
    clock.advance(SETTLE_QUIET_S)
    assert heap.tick(5, 0, 5) is None  # settled: nothing new to freeze
    assert collector.calls == ["collect", "freeze"]


def test_a_fleet_that_never_stops_changing_still_settles_within_the_max_wait() -> None:
    heap, collector, clock = settler()
    first_change = clock() + 5
    created = 0
    while created < 100:  # a creation every 5 s: never quiet for 10 s
        clock.advance(5)
        created += 1
        if heap.tick(created, 0, created) == "settle":
            break
    assert clock() - first_change == SETTLE_MAX_WAIT_S
    assert collector.calls[-2:] == ["collect", "freeze"] and heap.settles == 1


def test_dropped_targets_are_thawed_and_collected_once_they_reach_the_share() -> None:
    heap, collector, clock = settler()
    tracked = 1000  # with 73 dropped the thaw needs max(64, 92.7) drops; with 147, max(64, 85.3)
    clock.advance(1)
    heap.tick(tracked, 0, tracked)
    clock.advance(SETTLE_QUIET_S)
    assert heap.tick(tracked, 0, tracked) == "settle"
    clock.advance(1)
    heap.tick(tracked, 73, tracked - 73)  # 73 dropped: their frozen cycles may wait
    clock.advance(SETTLE_QUIET_S)
    assert heap.tick(tracked, 73, tracked - 73) == "settle"
    assert collector.calls[-2:] == ["collect", "freeze"] and "unfreeze" not in collector.calls
    clock.advance(1)
    heap.tick(tracked, 147, tracked - 147)  # 74 more: the share is reached
    clock.advance(SETTLE_QUIET_S)
    assert heap.tick(tracked, 147, tracked - 147) == "settle"
    assert collector.calls[-3:] == ["unfreeze", "collect", "freeze"] and heap.thaws == 1


def test_a_full_collection_runs_on_schedule_when_nothing_changes() -> None:
    heap, collector, clock = settler()
    clock.advance(FULL_EVERY_S - 1)
    assert heap.tick(0, 0, 0) is None
    clock.advance(1)
    assert heap.tick(0, 0, 0) == "collect" and collector.calls == ["collect"]
    clock.advance(FULL_EVERY_S - 1)
    assert heap.tick(0, 0, 0) is None


def test_deferring_full_collections_keeps_the_young_thresholds() -> None:
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        defer_full_collections()
        assert gc.get_threshold() == (700, 10, DEFERRED_THRESHOLD)
    finally:
        gc.set_threshold(*saved)


def test_every_collection_is_timed_by_generation_and_observed_at_the_drain() -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    recorder = PauseRecorder(telemetry.gc_pause)

    def full_pauses() -> float:
        value = registry.get_sample_value("prescaler_gc_pause_seconds_count", {"generation": "2"})
        return value or 0.0

    recorder.install()
    recorder.install()  # once only
    try:
        gc.collect()
        assert full_pauses() == 0.0  # timed, not yet observed: the callback takes no lock
        recorder.drain()
        after_one = full_pauses()
        assert after_one >= 1.0
        assert registry.get_sample_value("prescaler_gc_pause_seconds_sum", {"generation": "2"}) > 0
    finally:
        recorder.remove()
    gc.collect()
    recorder.drain()
    assert full_pauses() == after_one and recorder not in gc.callbacks


def test_a_collection_inside_the_histograms_lock_does_not_wait_for_it() -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    recorder = PauseRecorder(telemetry.gc_pause)
    recorder.install()
    try:
        # What prometheus_client does when it copies its children under its own lock: a collection
        # may start in any allocation there. Observing inside the callback would deadlock here.
        with telemetry.gc_pause._lock:
            gc.collect()
        recorder.drain()
        assert registry.get_sample_value("prescaler_gc_pause_seconds_count", {"generation": "2"}) >= 1
    finally:
        recorder.remove()


def replay_metadata(name: str) -> dict[str, str]:
    return {"source": "replay", "trace": "load.csv", "threshold": "10", "query": name}


async def test_a_tracked_targets_calls_do_not_parse_its_metadata_again(tmp_path: Path) -> None:
    (tmp_path / "load.csv").write_text("timestamp,value\n1700000000,5\n")
    parses: list[str] = []

    def counting(metadata: dict[str, str], **kwargs: float) -> TriggerConfig:
        parses.append(metadata["query"])
        return parse_trigger(metadata, **kwargs)

    registry = Registry(Settings(replay_dir=tmp_path), Telemetry(CollectorRegistry()), parse=counting)
    try:
        first = registry.track("ns", "so", replay_metadata("a"))
        assert registry.track("ns", "so", replay_metadata("a")) is first
        assert parses == ["a"] and (registry.created_total, registry.dropped_total) == (1, 0)
        # More distinct maps than the parse cache holds: the first target's calls still skip it.
        for n in range(PARSE_CACHE_SIZE + 1):
            registry.config(replay_metadata(f"other-{n}"))
        assert registry.track("ns", "so", replay_metadata("a")) is first
        assert parses.count("a") == 1
        # An invalid map is never tracked, so each of its calls is refused again.
        bad = {**replay_metadata("b"), "threshold": "ten"}
        for _ in range(2):
            with pytest.raises(ConfigError, match="threshold"):
                registry.track("ns", "so", bad)
        assert registry.created_total == 1
    finally:
        await registry.aclose()
    assert (registry.created_total, registry.dropped_total) == (1, 1)


def test_values_cannot_pass_for_separators_in_the_digest() -> None:
    assert metadata_digest({"query": "up\0threshold\x0099"}) != metadata_digest(
        {"query": "up", "threshold": "99"}
    )
    assert metadata_digest({"a": "1", "b": "2"}) == metadata_digest({"b": "2", "a": "1"})


def test_a_small_server_thaws_only_after_the_minimum_of_drops() -> None:
    heap, collector, clock = settler()
    clock.advance(1)
    heap.tick(100, THAW_DROPPED_MIN - 1, 100 - THAW_DROPPED_MIN + 1)  # far past 10 % of 37
    clock.advance(SETTLE_QUIET_S)
    assert heap.tick(100, THAW_DROPPED_MIN - 1, 37) == "settle" and heap.thaws == 0
    clock.advance(1)
    heap.tick(100, THAW_DROPPED_MIN, 36)
    clock.advance(SETTLE_QUIET_S)
    assert heap.tick(100, THAW_DROPPED_MIN, 36) == "settle" and heap.thaws == 1
    assert collector.calls[-3:] == ["unfreeze", "collect", "freeze"]


async def test_the_young_generations_are_collected_on_a_clock_and_the_tick_runs_less_often() -> None:
    collector, clock = RecordingCollector(), FakeClock()
    heap = HeapSettler(collector=collector, clock=clock, quiet_s=0.0)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)
        if len(slept) == 40:
            raise asyncio.CancelledError

    with contextlib.suppress(asyncio.CancelledError):
        await heap.run(lambda: (1, 0, 1), every_s=1.0, young_every_s=0.25, sleep=sleep)
    # 39 young collections, 0.25 s apart; a tick every 1 s: one creation seen at the first tick,
    # settled there (quiet_s 0), nothing since.
    assert slept == [0.25] * 40 and collector.calls.count("collect 1") == 39
    assert collector.calls[:6] == ["collect 1"] * 4 + ["collect", "freeze"]
    assert heap.settles == 1 and collector.calls.count("freeze") == 1
