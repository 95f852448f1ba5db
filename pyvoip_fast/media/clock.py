"""The shared media clock: one deadline heap and one timer per event loop, and the ``Pacer`` that runs on it.

Strategy
--------
- **One media clock per event loop** (``MediaClock``): a heap of absolute deadlines on ``loop.time()`` served by
  a single timer, so N concurrent streams cost one timer and one wake-up per distinct deadline, not N tasks
  sleeping. On Linux asyncio loops the timer is a timerfd armed at the absolute deadline (it wakes the loop within
  the kernel's timer slack, ~50 us); elsewhere a ``loop.call_at`` timer. The clock runs entries due within
  ``early`` (0.5 ms) of a wake-up together; the ``call_at`` fallback also wakes ``early`` ahead, because epoll
  sleeps in whole milliseconds and waiting for the exact instant would make every packet up to 1 ms late.
- **Each stream owns a ``Pacer``** that computes its n-th deadline as ``start + n·ptime`` by multiplication (no
  accumulated drift over hours). A late wake-up sends every due packet, at most ``max_burst`` (3) at once;
  beyond that the schedule skips forward and the skip is reported, so the sender can set the RTP marker bit
  (the gap shows as a timestamp jump, like a silence period, not as loss).
- **Pacers that share an instant share a wake-up** (``_TickGroup``), and those that split their slot into stages
  (a media session: send, receive, play out) run stage by stage across the group, so each stage's code runs for
  one call after another while it is hot. Sending goes first: every call's packet leaves before the group's
  receiving and playout, and the lateness counted is the send's. A wake-up that serves several groups (the clock
  fell behind: a burst of signalling, a busy processor) sends for all of them before any group receives or plays
  out, so a late clock catches up on its sending first.

The timerfd calls are the compiled ``pyvoip_fast.net._udp`` (or its twin), loaded through ``_compat``; a tick
group's loop over its members at each wake-up, and the pacers' fields, are the compiled ``pyvoip_fast.media._ticks``
(or its twin).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import os
import sys
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from .. import _compat

logger = logging.getLogger(__name__)
_udp = _compat.load("_udp")
if TYPE_CHECKING:
    from ._ticks_py import PacerCore as _PacerCore, TickGroupCore as _TickGroupCore
else:
    _PacerCore = _compat.load("_ticks").PacerCore
    _TickGroupCore = _compat.load("_ticks").TickGroupCore

__all__ = ["MediaClock", "ClockEntry", "Pacer", "LATENESS_BINS", "GRID", "loop_time"]

#: bins of 0.1 ms in the clock's lateness histogram (the last one counts everything from 100 ms up)
LATENESS_BINS = 1000
#: the grid media sessions start their pacers on (``MediaClock.on_grid``): 20 ms streams share 10 phases. Each
#: wake-up costs about 50 us of its own (the timer, the event loop) however many calls it serves, and a loaded
#: process has a wake-up per phase; 2 ms halves those of a 1 ms grid, while the calls of one phase still send
#: within a fraction of a millisecond
GRID = 0.002
#: pacers whose slot phases agree to this (seconds) share one clock entry
_PHASE_STEP = 1e-5
#: what a tick group's first part hands its second: the staged members and the most stages any of them has
_Staged = Tuple[List[Any], int]


class ClockEntry:
    """A scheduled callback on a ``MediaClock``; ``cancel()`` it to drop it."""

    __slots__ = ("_item", "_clock")

    def __init__(self, item: List[Any], clock: "Optional[MediaClock]" = None) -> None:
        self._item = item
        self._clock = clock

    @property
    def when(self) -> float:
        """The deadline (``loop.time()`` seconds)."""
        return float(self._item[0])

    @property
    def cancelled(self) -> bool:
        """True once cancelled or already run."""
        return self._item[2] is None

    def cancel(self) -> None:
        """Cancel the callback (a no-op when it already ran)."""
        if self._item[2] is not None:
            self._item[2] = None
            if self._clock is not None:
                self._clock._cancelled()


class MediaClock:
    """One deadline heap and one timer for every media stream of an event loop.

    ``call_at(when, callback)`` schedules ``callback(when)``; callbacks run in deadline order. At each wake-up
    every entry whose deadline is at most ``early`` seconds ahead runs, then the ``flush`` hooks run (e.g. a
    batched sender), then the timer is re-armed for the earliest remaining deadline.

    The timer is a Linux ``timerfd`` on CLOCK_MONOTONIC armed at the absolute deadline and watched with
    ``loop.add_reader`` when the loop is a standard asyncio loop (whose ``time()`` is that clock): it wakes the
    loop within the kernel's timer slack (about 50 us) of the deadline. Elsewhere (another OS, uvloop, a custom
    clock) it is a ``loop.call_at`` timer armed ``early`` ahead, because epoll sleeps in whole milliseconds.
    The timerfd exists only while something is scheduled, so an idle clock holds no descriptor.

    Use ``MediaClock.for_loop()`` to get the loop's shared instance.

    Args:
        loop: the event loop (the running one when omitted).
        early: how far ahead of its deadline an entry may run (seconds; default 0.5 ms): entries due within
            ``early`` of a wake-up share it.
        precise: use a timerfd when the platform and loop allow it (default); ``False`` forces ``call_at``.
    """

    def __init__(
        self, loop: Optional[asyncio.AbstractEventLoop] = None, *, early: float = 0.0005, precise: bool = True
    ) -> None:
        if early < 0:
            raise ValueError(f"early must not be negative, got {early!r}")
        self.loop = loop or asyncio.get_running_loop()
        #: the loop's time as a plain function: ``time.monotonic`` itself for asyncio's own loops (whose ``time()``
        #: returns it), so the media tick reads the clock without a Python call; ``loop.time`` for other loops
        self.now: Callable[[], float] = loop_time(self.loop)
        self.early = early
        self._heap: List[List[Any]] = []
        self._groups: Dict[Tuple[float, int], _TickGroup] = {}
        self._counter = 0
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_when = math.inf
        self._flush_hooks: List[Callable[[], None]] = []
        self._precise = bool(precise) and _timerfd_usable(self.loop)
        self._tfd = -1
        self._tfd_finalizer: "Optional[weakref.finalize[Any, Any]]" = None
        self._live = 0  # entries scheduled and neither run nor cancelled
        self._running = False  # inside _run: a callback's own signalling must not run the clock again
        #: wake-ups served and callbacks run (for benchmarks and tests)
        self.wakeups = 0
        self.callbacks_run = 0
        #: how late callbacks ran after their deadline: counts per 0.1 ms bin (the last bin: 100 ms or more)
        self.lateness = [0] * (LATENESS_BINS + 1)
        #: the worst lateness (seconds) since ``take_worst_lateness()`` last read it (the load monitor does)
        self.worst_recent = 0.0

    @classmethod
    def for_loop(cls, loop: Optional[asyncio.AbstractEventLoop] = None) -> "MediaClock":
        """The loop's shared clock (created on first use; it lives as long as the loop)."""
        loop = loop or asyncio.get_running_loop()
        clock = getattr(loop, _SHARED_CLOCK_ATTR, None)
        if clock is None:
            clock = _SHARED_CLOCKS.get(loop)
        if not isinstance(clock, MediaClock):
            clock = cls(loop)
            try:
                setattr(loop, _SHARED_CLOCK_ATTR, clock)
            except AttributeError:  # a loop without instance attributes (a compiled loop class)
                _SHARED_CLOCKS[loop] = clock
        return clock

    def note_lateness(self, late: float) -> None:
        """Count one callback that ran ``late`` seconds after its deadline (for callbacks a tick group runs)."""
        if late > 0.0:
            self.lateness[min(int(late * 10000.0), LATENESS_BINS)] += 1
            if late > self.worst_recent:
                self.worst_recent = late
        else:
            self.lateness[0] += 1

    @staticmethod
    def on_grid(t: float) -> float:
        """``t`` rounded up to the clock's ``GRID`` (2 ms): pacers of one period started on the grid share at most
        period / GRID wake-ups between them (see ``Pacer``)."""
        return math.ceil(t / GRID - 1e-6) * GRID

    def balanced_start(self, now: float, period: float) -> float:
        """The first slot for a new stream of ``period`` from ``now`` on: the grid point within one period
        whose phase serves the fewest streams so far (the earliest of equals).

        Calls that arrive at a steady rate (a load generator's 10 calls a second, every 100 ms: a multiple of
        20 ms) would otherwise all land on the same phase, and one wake-up would serve every call while the
        other 9 serve none: the last calls of that wake-up go out milliseconds late. Balanced, each wake-up
        serves about one tenth of the calls. The first packet waits at most one period for it.
        """
        first = self.on_grid(now)
        best, fewest = first, None
        for k in range(max(1, int(round(period / GRID)))):
            start = first + k * GRID
            group = self._groups.get(self._key(period, start))
            members = len(group.members) if group is not None else 0
            if fewest is None or members < fewest:
                best, fewest = start, members
                if members == 0:
                    break
        return best

    @staticmethod
    def _key(period: float, start: float) -> Tuple[float, int]:
        steps = round(period / _PHASE_STEP)
        return (period, round((start % period) / _PHASE_STEP) % steps if steps else 0)

    def _group_for(self, period: float, start: float) -> "_TickGroup":
        key = self._key(period, start)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _TickGroup(self, key)
        return group

    def take_worst_lateness(self) -> float:
        """The worst lateness (seconds) since the last call, and start again from zero."""
        worst, self.worst_recent = self.worst_recent, 0.0
        return worst

    def lateness_percentiles(self, *points: float) -> List[float]:
        """Lateness at each percentile of ``points`` (0-100) over every callback run so far, in milliseconds
        (upper edge of the 0.1 ms bin it falls in; 0.0 when nothing ran)."""
        total = sum(self.lateness)
        out: List[float] = []
        for p in points:
            if total == 0:
                out.append(0.0)
                continue
            rank = max(1, math.ceil(total * p / 100.0))
            seen = 0
            for i, n in enumerate(self.lateness):
                seen += n
                if seen >= rank:
                    out.append((i + 1) / 10.0)
                    break
        return out

    @property
    def precise(self) -> bool:
        """True when wake-ups come from a timerfd (see the class notes)."""
        return self._precise

    def time(self) -> float:
        """The clock's time base: ``loop.time()`` (monotonic seconds)."""
        return self.loop.time()

    def __len__(self) -> int:
        """Entries scheduled and not yet run or cancelled."""
        return self._live

    def call_at(self, when: float, callback: Callable[[float], None], *, measured: bool = True) -> ClockEntry:
        """Schedule ``callback(when)`` at the absolute time ``when`` (``loop.time()`` seconds).

        Args:
            when: the deadline.
            callback: called with ``when``.
            measured: count the callback's lateness in ``lateness`` (a tick group counts its members instead).

        Returns:
            a handle whose ``cancel()`` drops the callback.
        """
        self._counter += 1
        item = [when, self._counter, callback, measured]
        heapq.heappush(self._heap, item)
        self._live += 1
        # inside a run the timer is armed once at its end, for the earliest entry left (a tick group reschedules
        # itself while the groups after it are still due: arming here too would cost a system call per wake-up)
        if when < self._timer_when and not self._running:
            self._arm(when)
        return ClockEntry(item, self)

    def catch_up(self) -> None:
        """Run what is due now without waiting for the timer's wake-up.

        asyncio runs every callback that became ready before it looks at the timer again, so a burst of signalling
        (a few SIP messages, a call being set up) delays every packet due meanwhile by the whole burst. Work that
        takes long calls this between its steps (the user agent does, before each SIP message and action): media
        then waits for one step at most.
        """
        if not self._running and self._timer_when <= self.loop.time() + self.early:
            self._run()

    def _cancelled(self) -> None:
        self._live -= 1
        if self._live <= 0:  # nothing left to run: drop the cancelled entries and release the timer now
            self._live = 0
            self._heap.clear()
            self.close()

    def add_flush(self, hook: Callable[[], None]) -> None:
        """Run ``hook()`` after the callbacks of each wake-up (used by batched senders)."""
        self._flush_hooks.append(hook)

    def remove_flush(self, hook: Callable[[], None]) -> None:
        """Undo ``add_flush`` (missing hooks are ignored)."""
        try:
            self._flush_hooks.remove(hook)
        except ValueError:
            pass

    def close(self) -> None:
        """Release the timerfd now (it is also released when nothing is scheduled, or with the clock)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_when = math.inf
        self._close_timerfd()

    def _open_timerfd(self) -> bool:
        try:
            fd = _udp.timer_open()
        except OSError as exc:  # no timerfd here after all: fall back for good
            logger.debug("media clock: timerfd unavailable (%s); using loop.call_at", exc)
            self._precise = False
            return False
        try:
            self.loop.add_reader(fd, self._on_timerfd)
        except Exception:
            os.close(fd)
            self._precise = False
            return False
        self._tfd = fd
        self._tfd_finalizer = weakref.finalize(self, _close_fd, fd)
        return True

    def _close_timerfd(self) -> None:
        fd, self._tfd = self._tfd, -1
        if fd < 0:
            return
        if self._tfd_finalizer is not None:
            self._tfd_finalizer.detach()
            self._tfd_finalizer = None
        if not self.loop.is_closed():
            self.loop.remove_reader(fd)
        os.close(fd)

    def _arm(self, when: float) -> None:
        self._timer_when = when
        if self._precise and (self._tfd >= 0 or self._open_timerfd()):
            _udp.timer_arm(self._tfd, max(when, 1e-6))
            return
        if self._timer is not None:
            self._timer.cancel()
        # wake up `early` ahead: epoll rounds its timeout up to the next millisecond
        self._timer = self.loop.call_at(when - self.early, self._run)

    def _on_timerfd(self) -> None:
        if _udp.timer_ack(self._tfd) or self.loop.time() >= self._timer_when:
            self._run()

    def _run(self) -> None:
        self._running = True
        try:
            self._run_due()
        finally:
            self._running = False

    def _run_due(self) -> None:
        self._timer = None
        self._timer_when = math.inf
        self.wakeups += 1
        heap = self._heap
        now = self.loop.time()
        limit = now + self.early
        pop = heapq.heappop
        ran = 0
        note = self.note_lateness
        clock = self.loop.time
        later: List[Tuple[_TickGroup, _Staged]] = []
        while heap and heap[0][0] <= limit:
            item = pop(heap)
            cb = item[2]
            if cb is None:
                continue
            item[2] = None
            self._live -= 1
            ran += 1
            if item[3]:
                note(clock() - item[0])  # when this one really runs: after the callbacks before it
            try:
                group = getattr(cb, "__self__", None)
                if type(group) is _TickGroup:  # sending first: the group's later stages wait for the other groups
                    rest = group._fire_first()
                    if rest is not None:
                        later.append((group, rest))
                else:
                    cb(item[0])
            except Exception:  # a broken stream must not stop every other stream
                logger.exception("media clock callback %r failed", cb)
        for group, rest in later:
            try:
                group._fire_rest(rest)
            except Exception:
                logger.exception("media clock tick group %r failed", group)
        self.callbacks_run += ran
        for hook in self._flush_hooks:
            try:
                hook()
            except Exception:
                logger.exception("media clock flush hook %r failed", hook)
        # drop cancelled entries at the top so the timer is not armed for nothing
        while heap and heap[0][2] is None:
            pop(heap)
        if heap:
            if heap[0][0] < self._timer_when:  # armed here, once: ``call_at`` does not arm inside a run
                self._arm(heap[0][0])
        elif self._timer_when == math.inf:
            self._close_timerfd()


#: attribute under which an event loop keeps its shared MediaClock (so the clock lives and dies with the loop)
_SHARED_CLOCK_ATTR = "_pyvoip_fast_media_clock"
#: the same for loops that take no attributes (the clock refers to its loop, so such an entry lives as long as
#: the process; one per loop)
_SHARED_CLOCKS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MediaClock]" = weakref.WeakKeyDictionary()


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def loop_time(loop: Any) -> Callable[[], float]:
    """``loop.time`` as a plain function: ``time.monotonic`` itself for asyncio's own loops (their ``time()``
    returns it), which a hot path calls without a Python frame; ``loop.time`` for any other loop."""
    if isinstance(loop, asyncio.BaseEventLoop) and type(loop).time is asyncio.BaseEventLoop.time:
        return time.monotonic
    now: Callable[[], float] = loop.time
    return now


def _timerfd_usable(loop: asyncio.AbstractEventLoop) -> bool:
    """A timerfd deadline matches ``loop.time()`` only for asyncio's own loops on Linux (CLOCK_MONOTONIC)."""
    if not sys.platform.startswith("linux") or not hasattr(_udp, "timer_open"):
        return False
    if not isinstance(loop, asyncio.BaseEventLoop) or type(loop).time is not asyncio.BaseEventLoop.time:
        return False
    return time.get_clock_info("monotonic").implementation.startswith("clock_gettime(CLOCK_MONOTONIC")


class _TickGroup(_TickGroupCore):
    """The pacers of one period whose slots fall on the same instants: one clock entry serves all of them.

    A thousand 20 ms calls started on the 2 ms grid make 10 groups, so the clock's heap holds 10 entries and each
    wake-up serves one group's members in one loop, instead of a heap push, a pop and a handle per call and slot.
    Each member still computes its own due slots from its own start, and its lateness is counted on its own.
    """

    __slots__ = ()  # (the fields are the base's)

    def __init__(self, clock: MediaClock, key: Optional[Tuple[float, int]]) -> None:
        self.clock = clock
        self.key = key
        self.members = {}  # pacer -> None, insertion ordered: members are served in the order they joined
        self.entry = None  # the ClockEntry of its next wake-up
        self.when = math.inf

    def add(self, pacer: "Pacer", first: float) -> None:
        self.members[pacer] = None
        if first < self.when:
            self._schedule(first)

    def remove(self, pacer: "Pacer") -> None:
        self.members.pop(pacer, None)
        if not self.members:
            if self.entry is not None:
                self.entry.cancel()
                self.entry = None
            self.when = math.inf
            if self.key is not None and self.clock._groups.get(self.key) is self:
                del self.clock._groups[self.key]


def _no_slot(n: int, deadline: float) -> None:
    """A stopped pacer's callback."""


class Pacer(_PacerCore):
    """A periodic schedule on a ``MediaClock``: slot n is due at ``start + n·period``.

    ``callback(n, deadline)`` runs for every slot. A wake-up that finds more than ``max_burst`` slots due runs only
    the last ``max_burst`` of them; the earlier ones are skipped (``skipped`` counts them and ``on_skip(k)``
    is told). The slot index keeps counting through skips, so timestamps derived from it stay on the timeline.

    Pacers of the same period whose slots fall on the same instants (start them at ``MediaClock.balanced_start``)
    share one clock entry: the clock wakes once per distinct instant and serves them together, in the order they
    started, each counted in the clock's lateness histogram on its own.

    A pacer with ``stages`` (callbacks of the same signature whose run in order is what ``callback`` does) has its
    usual slot run stage by stage with the other staged pacers of its group: every member's first stage, then every
    member's second, and so on, each stage in its own ``try``. A media session's tick is three such stages (send,
    receive, play out): the same code then runs for one call after another while it is still in the processor's
    caches, which costs measurably less than each call's three stages in turn. The slot's lateness is counted when
    its ``note_stage`` starts. A wake-up with skipped or several due slots calls ``callback`` as before. When one
    wake-up of a ``MediaClock`` serves several groups, every group's first stage runs before any group's second.

    Args:
        clock: the media clock.
        period: seconds between slots.
        callback: ``callback(n, deadline)``; None: the ``stages`` in order.
        start: time of slot 0 (default: now).
        max_burst: most slots served in one wake-up.
        on_skip: optional ``on_skip(count)``.
        stages: optional ``stage(n, deadline)`` callbacks, together equal to ``callback`` (see above).
        note_stage: the stage whose start counts as the slot's time (default the first).
    """

    __slots__ = ()  # (the fields are the base's: ``_ticks.PacerCore``)

    def __init__(
        self,
        clock: MediaClock,
        period: float,
        callback: Optional[Callable[[int, float], None]],
        *,
        start: Optional[float] = None,
        max_burst: int = 3,
        on_skip: Optional[Callable[[int], None]] = None,
        stages: Sequence[Callable[[int, float], None]] = (),
        note_stage: int = 0,
    ) -> None:
        if not period > 0:
            raise ValueError(f"period must be positive, got {period!r}")
        if max_burst < 1:
            raise ValueError(f"max_burst must be at least 1, got {max_burst!r}")
        if callback is None and not stages:
            raise ValueError("a pacer needs a callback or stages")
        self.clock = clock
        self.period = period
        self.callback: Callable[[int, float], None] = callback if callback is not None else self._run_stages
        self.start = clock.time() if start is None else start
        self.n = 0
        self.max_burst = max_burst
        self.skipped = 0
        self.on_skip = on_skip
        self.stages = tuple(stages)
        if self.stages and not 0 <= note_stage < len(self.stages):
            raise ValueError(f"note_stage must index one of the {len(self.stages)} stages, got {note_stage!r}")
        self.note_stage = note_stage
        # any clock with ``time``, ``early`` and ``call_at`` works (a simulated one in a benchmark); only a
        # ``MediaClock`` groups pacers and counts their lateness
        group_for = getattr(clock, "_group_for", None)
        self._note: Optional[Callable[[float], None]] = getattr(clock, "note_lateness", None)
        self._group: Optional[_TickGroup] = group_for(period, self.start) if group_for else _TickGroup(clock, None)
        self._group.add(self, self.start)

    @property
    def running(self) -> bool:
        """False after ``stop()``."""
        return self._group is not None

    def deadline(self, n: int) -> float:
        """The due time of slot ``n``."""
        return self.start + n * self.period

    def stop(self) -> None:
        """Cancel the schedule."""
        group, self._group = self._group, None
        if group is not None:
            group.remove(self)
        # what it would call holds its owner (and ``_run_stages`` the pacer itself): a stopped pacer lets go,
        # so the owner is freed by its last reference, not by a full collection
        self.callback, self.stages, self.on_skip = _no_slot, (), None

    def _run_stages(self, n: int, deadline: float) -> None:
        for stage in self.stages:
            stage(n, deadline)

    def _serve(self, limit: float) -> int:
        """Run the slots due by ``limit``; return how many ran."""
        start, period = self.start, self.period
        # slots due now: n .. last (inclusive)
        last = int((limit - start) / period)
        if start + last * period > limit:  # float guard
            last -= 1
        due = last - self.n + 1
        if due <= 0:
            return 0
        if due > self.max_burst:
            skip = due - self.max_burst
            self.n += skip
            self.skipped += skip
            if self.on_skip is not None:
                self.on_skip(skip)
        if self._note is not None:
            self._note(self.clock.time() - (start + self.n * period))
        ran = 0
        while self.n <= last and self._group is not None:
            n = self.n
            self.n = n + 1
            ran += 1
            try:
                self.callback(n, start + n * period)
            except Exception:  # a broken stream must not stop the others of its group
                logger.exception("media clock callback %r failed", self.callback)
        return ran
