"""The garbage collector of a listener that keeps serving: collections scan only the last second's objects.

A call holds no reference cycles once it has ended (``media.session._unlink``), so every call is freed by
reference counting and the collector is needed only for a stray cycle (an exception kept with its traceback, say).
CPython's collector does not know that: under load its middle and full collections scan every object of every
call up and of every ended call kept for RFC 6026's 32 s, and stop all media meanwhile. At 150 set-ups/s on the
development machine those were 30-73 ms every ten seconds or so, and each one skipped frames of every call.

``ServingCollector`` moves everything that has survived a second out of the collector's generations
(``gc.freeze``), once a second: young, middle and full collections then scan at most a second's worth of new
objects (a few milliseconds). What has been frozen is still freed by reference counting as usual; only a cycle
among frozen objects waits, for a *sweep* (``gc.unfreeze``, a full collection, ``gc.freeze``), which runs:

- when the listener has no call up (and has had one since the last sweep): a pause nobody hears;
- when the heap *per call kept* (calls up, and ended ones kept for their retransmissions) has doubled since the
  last sweep, looked at every ``check_every`` seconds: cycles leaking. More calls make more objects but not more
  per call, so a load that climbs is not swept (a sweep pauses everything for as long as it scans: 100 ms for the
  150,000 objects of 150 set-ups/s). The heap is measured by the blocks CPython's allocator has handed out
  (``sys.getallocatedblocks``: 0.2-0.3 ms for 4.5 million), not by counting the frozen objects
  (``gc.get_freeze_count`` walks them all: 10 ms for 1.5 million, and 16-18 ms of every call's media held up every
  ten seconds with 600 calls up, twenty-seventh session);
- at the latest ``longest`` seconds (an hour) after the last one, so that a stray cycle is freed within that time
  whatever the load.

Only the serving listener uses it (``pyvoip-fast listen --keep-serving``): a program with its own objects and
cycles keeps CPython's usual collector unless it starts one itself.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

__all__ = ["ServingCollector", "CollectorStats", "SERVING_GC_THRESHOLDS", "SWEEP_REASONS"]

logger = logging.getLogger("pyvoip_fast.app")

#: the thresholds while a listener keeps serving: a young collection every 1,000 objects more than were freed
#: (not 700), a middle one every 80 young ones, the oldest as rarely as CPython allows. With calls freed by
#: reference counting, set-ups and teardowns nearly cancel out in the young count, so a young collection finds
#: every object made since the last one: at 5,000 that was up to 30,000 objects and 6-19 ms with the media
#: waiting, at 1,000 at most 1.7-2.7 ms (twenty-fifth session, benchmarks/README.md)
SERVING_GC_THRESHOLDS = (1000, 80, 20)


#: why a sweep runs (``ServingCollector.tick``)
SWEEP_REASONS = ("idle", "growth", "longest")


@dataclass
class CollectorStats:
    """What the serving collector did: freezes, sweeps by reason, the objects they freed, the longest pause."""

    freezes: int = 0
    sweeps_by_reason: Dict[str, int] = field(default_factory=lambda: dict.fromkeys(SWEEP_REASONS, 0))
    collected: int = 0
    longest_sweep_ms: float = 0.0

    @property
    def sweeps(self) -> int:
        return sum(self.sweeps_by_reason.values())


class ServingCollector:
    """Freeze the survivors once a second and sweep when idle, grown or overdue (see the module's text).

    Args:
        busy: how many calls are up (or being set up) now; 0 makes the listener idle.
        kept: how many calls the process keeps (ended ones waiting for retransmissions too): what its objects
            grow with (default: ``busy``).
        period: seconds between freezes.
        growth: a sweep when the heap's blocks per call kept have grown by this fraction since the last sweep.
        check_every: seconds between two measures of the heap (``sys.getallocatedblocks``).
        longest: seconds after which a sweep runs whatever the load.
        clock: monotonic seconds.
    """

    #: allocated blocks (beyond those of start-up) below which growth is not looked at: about the 20,000 objects
    #: counted before (an object with its parts is two or three blocks)
    GROWTH_FLOOR = 60_000

    def __init__(self, busy: Callable[[], int], *, kept: Optional[Callable[[], int]] = None, period: float = 1.0,
                 growth: float = 1.0, check_every: float = 10.0, longest: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if period <= 0 or growth <= 0 or check_every <= 0 or longest <= 0:
            raise ValueError("period, growth, check_every and longest must be positive")
        self.busy = busy
        self.kept = kept if kept is not None else busy
        self.period = period
        self.growth = growth
        self.check_every = check_every
        self.longest = longest
        self.clock = clock
        self.stats = CollectorStats()
        self._old: Optional[Tuple[int, int, int]] = None
        self._handle: Optional[asyncio.TimerHandle] = None
        self._start_up = 0  # blocks allocated at the start (modules, the phone): never garbage
        self._per_call: Optional[float] = None  # blocks per call kept, first measured after the last sweep
        self._last_sweep = 0.0
        self._last_check = 0.0
        self._busy_since_sweep = False

    @property
    def running(self) -> bool:
        return self._old is not None

    def start(self, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        """Freeze what is alive now, set ``SERVING_GC_THRESHOLDS`` and freeze again every ``period`` seconds on
        ``loop`` (without a loop, ``tick`` is called by whoever started it)."""
        if self._old is not None:
            raise RuntimeError("the serving collector is already running")
        old = gc.get_threshold()
        self._old = (int(old[0]), int(old[1]), int(old[2]))
        gc.freeze()
        gc.set_threshold(*SERVING_GC_THRESHOLDS)
        now = self.clock()
        self._start_up = sys.getallocatedblocks()
        self._last_sweep = self._last_check = now
        if loop is not None:
            self._handle = loop.call_later(self.period, self._on_timer, loop)

    def stop(self) -> None:
        """Stop freezing, give every frozen object back to the collector and restore the old thresholds."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._old is not None:
            gc.unfreeze()
            gc.set_threshold(*self._old)
            self._old = None

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = loop.call_later(self.period, self._on_timer, loop)
        self.tick()

    def tick(self) -> Optional[str]:
        """Freeze the survivors, then sweep if one is due; returns why it swept (``"idle"``, ``"growth"``,
        ``"longest"``) or None."""
        gc.freeze()
        self.stats.freezes += 1
        now = self.clock()
        if self.busy() > 0:
            self._busy_since_sweep = True
        elif self._busy_since_sweep:
            return self._sweep("idle", now)
        if now - self._last_sweep >= self.longest:
            return self._sweep("longest", now)
        if now - self._last_check >= self.check_every:
            self._last_check = now
            grown = sys.getallocatedblocks() - self._start_up
            if grown >= self.GROWTH_FLOOR:
                per_call = grown / max(self.kept(), 1)
                if self._per_call is None:
                    self._per_call = per_call
                elif per_call > self._per_call * (1.0 + self.growth):
                    return self._sweep("growth", now)
        return None

    def _sweep(self, why: str, now: float) -> str:
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        pause = (time.perf_counter() - started) * 1000.0
        self._per_call = None  # counted again at the next check, without what this sweep freed
        self._last_sweep = self._last_check = now
        self._busy_since_sweep = False
        stats = self.stats
        stats.sweeps_by_reason[why] += 1
        stats.collected += found
        stats.longest_sweep_ms = max(stats.longest_sweep_ms, pause)
        logger.debug("[GC] Swept %d unreachable objects in %.1f ms (%s)", found, pause, why)
        return why
