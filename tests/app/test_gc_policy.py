"""The serving listener's garbage collector (``app/gc_policy.py``): survivors are frozen once a second, so the
collector's own collections never scan them, and a sweep frees what cycles they hid, when idle, grown or due."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any, Iterator, List

import pytest

from pyvoip_fast.app.gc_policy import SERVING_GC_THRESHOLDS, ServingCollector


class _Node:
    """A member of a reference cycle; the list records its end."""

    def __init__(self, ended: List[str], name: str) -> None:
        self.other: Any = None
        weakref.finalize(self, ended.append, name)


def _cycle(ended: List[str], name: str) -> None:
    a, b = _Node(ended, name), _Node(ended, name)
    a.other, b.other = b, a


def _in_generations(obj: object) -> bool:
    return any(o is obj for gen in range(3) for o in gc.get_objects(gen))


@pytest.fixture
def clean_gc() -> Iterator[None]:
    before = gc.get_threshold()
    gc.collect()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        gc.collect()


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_start_freezes_what_is_alive_and_stop_gives_it_back(clean_gc: None) -> None:
    before = gc.get_threshold()
    kept = [object() for _ in range(3)], {"a": [1]}
    collector = ServingCollector(busy=lambda: 0)
    collector.start()
    assert collector.running and gc.get_threshold() == SERVING_GC_THRESHOLDS
    assert not _in_generations(kept[1])  # out of every collection
    with pytest.raises(RuntimeError, match="already running"):
        collector.start()
    collector.stop()
    assert not collector.running and gc.get_threshold() == before
    assert _in_generations(kept[1])
    collector.stop()  # twice is harmless


def test_each_tick_freezes_the_survivors_and_a_collection_no_longer_scans_them(clean_gc: None) -> None:
    clock = _Clock()
    collector = ServingCollector(busy=lambda: 1, clock=clock)
    collector.start()
    try:
        young = {"made": "after the start"}
        young["self"] = young  # type: ignore[assignment]
        assert _in_generations(young)
        clock.now += 1.0
        assert collector.tick() is None
        assert not _in_generations(young) and collector.stats.freezes == 1
        # a cycle made and dropped before a tick waits: no collection of the collector's own frees it
        ended: List[str] = []
        _cycle(ended, "hidden")
        clock.now += 1.0
        collector.tick()
        gc.collect()
        assert ended == []
        # frozen objects are still freed by reference counting
        plain: List[str] = []
        node = _Node(plain, "plain")
        clock.now += 1.0
        collector.tick()
        del node
        assert plain == ["plain"]
    finally:
        collector.stop()
    gc.collect()
    assert ended == ["hidden", "hidden"]  # given back by stop: collected as usual


def test_a_sweep_runs_when_the_listener_goes_idle_once(clean_gc: None) -> None:
    clock = _Clock()
    calls = [3]
    collector = ServingCollector(busy=lambda: calls[0], clock=clock)
    collector.start()
    try:
        ended: List[str] = []
        _cycle(ended, "call")
        clock.now += 1.0
        assert collector.tick() is None and ended == []
        calls[0] = 0
        clock.now += 1.0
        assert collector.tick() == "idle"
        assert ended == ["call", "call"] and collector.stats.collected >= 2
        assert collector.stats.sweeps_by_reason == {"idle": 1, "growth": 0, "longest": 0}
        clock.now += 1.0
        assert collector.tick() is None  # idle again, nothing has happened since: no second sweep
    finally:
        collector.stop()


def _objects(n: int) -> List[Any]:
    return [[x] for x in range(n)]


def test_under_load_a_sweep_runs_when_the_heap_per_call_kept_doubles(clean_gc: None) -> None:
    clock = _Clock()
    kept = [100]
    collector = ServingCollector(busy=lambda: 10, kept=lambda: kept[0], clock=clock, check_every=10.0)
    collector.start()
    held: List[Any] = []
    try:
        ended: List[str] = []
        _cycle(ended, "leaked")
        clock.now += 1.0
        assert collector.tick() is None  # frozen: the young collections below cannot free it
        held.append(_objects(ServingCollector.GROWTH_FLOOR))
        clock.now += 9.0
        assert collector.tick() is None  # the first measure: F objects (about 3F blocks) for 100 calls kept
        held.append(_objects(ServingCollector.GROWTH_FLOOR))
        kept[0] = 200  # twice the objects, twice the calls: a load that climbs, not a leak
        clock.now += 10.0
        assert collector.tick() is None and ended == []
        held.append(_objects(3 * ServingCollector.GROWTH_FLOOR))
        clock.now += 1.0
        assert collector.tick() is None  # counted only every check_every seconds
        clock.now += 9.0
        assert collector.tick() == "growth"  # 5F objects for 200 calls: 2.5 times as much per call
        assert ended == ["leaked", "leaked"] and collector.stats.sweeps_by_reason["growth"] == 1
        clock.now += 10.0
        assert collector.tick() is None  # counted afresh after a sweep
        assert collector.stats.longest_sweep_ms > 0
    finally:
        collector.stop()


def test_a_small_heap_is_not_looked_at(clean_gc: None) -> None:
    clock = _Clock()
    collector = ServingCollector(busy=lambda: 10, kept=lambda: 1, clock=clock, check_every=1.0)
    collector.start()
    held: List[Any] = []
    try:
        for _ in range(5):
            held.append(_objects(ServingCollector.GROWTH_FLOOR // 10))
            clock.now += 1.0
            assert collector.tick() is None
    finally:
        collector.stop()


def test_the_growth_check_does_not_walk_the_frozen_objects(clean_gc: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # gc.get_freeze_count walks every frozen object: 10 ms for 1.5 million, with every call's media waiting
    def walk() -> int:
        raise AssertionError("the frozen objects were counted one by one")

    monkeypatch.setattr(gc, "get_freeze_count", walk)
    clock = _Clock()
    collector = ServingCollector(busy=lambda: 10, kept=lambda: 1, clock=clock, check_every=1.0)
    collector.start()
    held: List[Any] = []
    try:
        held.append(_objects(ServingCollector.GROWTH_FLOOR))
        clock.now += 1.0
        assert collector.tick() is None  # measured (above the floor) without a walk
        held.append(_objects(3 * ServingCollector.GROWTH_FLOOR))
        clock.now += 1.0
        assert collector.tick() == "growth"
    finally:
        collector.stop()


def test_under_steady_load_a_sweep_runs_at_the_latest_after_longest(clean_gc: None) -> None:
    clock = _Clock()
    collector = ServingCollector(busy=lambda: 10, clock=clock, longest=60.0)
    collector.start()
    try:
        ended: List[str] = []
        _cycle(ended, "stray")
        for _ in range(59):
            clock.now += 1.0
            assert collector.tick() is None
        clock.now += 1.0
        assert collector.tick() == "longest"
        assert ended == ["stray", "stray"] and collector.stats.sweeps == 1
    finally:
        collector.stop()


def test_on_a_loop_it_ticks_by_itself_and_stops_cleanly(clean_gc: None) -> None:
    async def run() -> ServingCollector:
        collector = ServingCollector(busy=lambda: 1, period=0.02)
        collector.start(asyncio.get_running_loop())
        await asyncio.sleep(0.15)
        collector.stop()
        freezes = collector.stats.freezes
        await asyncio.sleep(0.06)
        assert collector.stats.freezes == freezes  # no tick after stop
        return collector

    collector = asyncio.run(run())
    assert collector.stats.freezes >= 3


@pytest.mark.parametrize("bad", [{"period": 0}, {"growth": -1.0}, {"check_every": 0}, {"longest": 0}])
def test_nonsense_settings_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        ServingCollector(busy=lambda: 0, **bad)
