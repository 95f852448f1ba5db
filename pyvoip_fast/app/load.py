"""Overload control from measured load: the event loop's lag and the media clock's lateness decide whether new
calls are taken.

Every call of a process shares one event loop; when it falls behind, every call's media is late. So the process's
load is measured where it hurts:

- **While media flows**, by how late the packets of every call went out: the shared media clock
  (``media.clock.MediaClock``) keeps a histogram of every packet's lateness, and the monitor takes the
  ``percentile`` (99th) of the packets of the last ``window`` seconds from it (the difference of two snapshots, so
  nothing is added per packet). A percentile, not the worst: one slow call set-up or one garbage collection
  delays a few packets once, which is no reason to turn callers away; a process past its capacity delays a steady
  share of them, and that is what the 99th percentile sees. A callback that runs after a thousand others is late
  even when the loop itself is not, so this also catches a loop that is busy rather than blocked.
- **Without media** (no call up, or a clock without a histogram), by the worst lag of a timer due every
  ``interval`` seconds over the window: a loop blocked by anything at all. That figure is the slowest callback
  of the window, so it counts only beyond a frame period (``NO_MEDIA_MIN_LAG``) whatever ``max_lag`` says: a
  shorter lag makes no packet late, and a caller's INVITEs alone keep a loop a millisecond or two behind.

When that figure exceeds ``max_lag``, the admission control is marked overloaded and new INVITEs get
``503 Service Unavailable`` with ``Retry-After`` at once, without any per-call state (OPTIONS are still answered,
requests within calls already up pass). The mark clears once the figure is below half of ``max_lag`` (hysteresis,
so the answer does not flap).

Lateness shows only once the process is full, and a second's measurement of it lags the calls admitted meanwhile:
under a steep rise of new calls admission lets in more than the process carries before it sees it. ``max_cpu``
looks ahead instead. The process's CPU over the window (``time.process_time``: its own CPU, user and system),
divided by the calls up or being set up over the window (their mean), is what a call costs here and now, set-ups
and everything else the process does included; ``max_cpu`` (a share of one core) divided by that cost is the
call budget, which the admission control applies to every new INVITE at once (``Admission.call_budget``, 503 at
or above it). The budget follows the measured cost: it is recomputed at every measurement, and with fewer than
``MIN_CALLS`` calls there is none (a few calls say nothing of the cost of many).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Tuple

from ..sip.admission import Admission

logger = logging.getLogger("pyvoip_fast.app.useragent")

__all__ = ["LoadMonitor", "MIN_CALLS", "NO_MEDIA_MIN_LAG"]

#: below this many calls (mean over the window) ``max_cpu`` sets no budget: their cost says little of many calls'
MIN_CALLS = 10
#: with no media flowing, the event loop's lag counts only beyond this (seconds; a frame period) whatever ``max_lag``
NO_MEDIA_MIN_LAG = 0.02


class LoadMonitor:
    """Marks ``admission.overloaded`` from the event loop's lag, and sets ``admission.call_budget`` from the calls'
    CPU cost (see the module notes).

    Args:
        admission: the admission control whose ``overloaded`` flag and ``call_budget`` this drives.
        max_lag: seconds of lag beyond which new calls are refused (None: lag is not watched).
        max_cpu: the share of one core (0-1] the calls may use (None: no call budget).
        calls: ``calls() -> int``, the calls up or being set up now (needed with ``max_cpu``).
        cpu_time: ``cpu_time() -> float``, the process's CPU seconds (``time.process_time``).
        interval: seconds between two measurements.
        window: seconds of measurements the decision looks at.
        clock: the media clock whose lateness counts as load too (the Phone passes the loop's shared one).
        percentile: the share of the window's packets (0-100) that must have gone out within ``max_lag``.
        min_packets: fewer packets than this in the window count as no media (the timer decides).

    Raises:
        ValueError: neither limit, a limit out of range, ``max_cpu`` without ``calls``, or an inconsistent window.
    """

    def __init__(self, admission: Admission, *, max_lag: Optional[float] = None, max_cpu: Optional[float] = None,
                 calls: Optional[Callable[[], int]] = None, cpu_time: Callable[[], float] = time.process_time,
                 interval: float = 0.05, window: float = 1.0, clock: Any = None, percentile: float = 99.0,
                 min_packets: int = 200) -> None:
        if max_lag is None and max_cpu is None:
            raise ValueError("give max_lag, max_cpu or both")
        if max_lag is not None and not max_lag > 0:
            raise ValueError(f"max_lag must be positive, got {max_lag!r}")
        if max_cpu is not None and not 0.0 < max_cpu <= 1.0:
            raise ValueError(f"max_cpu must be a share of one core in (0, 1], got {max_cpu!r}")
        if max_cpu is not None and calls is None:
            raise ValueError("max_cpu needs calls(): the calls whose cost it measures")
        if not interval > 0 or not window >= interval:
            raise ValueError("interval must be positive, and window at least one interval")
        if not 0.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
        self.percentile = float(percentile)
        self.min_packets = int(min_packets)
        #: snapshots of the clock's cumulative lateness histogram: (time, counts per 0.1 ms bin)
        self._hists: Deque[Tuple[float, List[int]]] = deque()
        #: the figure the last decision was made on (seconds), and whether it came from the media
        self.figure = 0.0
        self.from_media = False
        self.admission = admission
        self.max_lag = None if max_lag is None else float(max_lag)
        self.max_cpu = None if max_cpu is None else float(max_cpu)
        self._calls = calls
        self._cpu_time = cpu_time
        #: (time, CPU seconds, calls) at each measurement of the window, for the call budget
        self._cpu: Deque[Tuple[float, float, int]] = deque()
        #: the process's CPU share over the window and the cost of one call (shares of a core), when measured
        self.cpu_share: Optional[float] = None
        self.call_cost: Optional[float] = None
        self.interval = float(interval)
        self.window = float(window)
        self._samples: Deque[Tuple[float, float]] = deque()
        #: the media clock whose lateness counts as load too (anything with a ``lateness`` histogram), or None
        self.clock = clock
        self._handle: Optional[asyncio.TimerHandle] = None
        self._due = 0.0
        #: the worst lag seen since the start, in seconds
        self.worst = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self.interval
        self._handle = loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.admission.overloaded = False
        self.admission.call_budget = None

    @property
    def lag(self) -> float:
        """The worst lag of the timer over the current window, in seconds."""
        return max((lag for _, lag in self._samples), default=0.0)

    def _media_lateness(self, now: float) -> Optional[float]:
        """The ``percentile`` lateness (seconds) of the packets of the window, or None with too few of them."""
        hist = getattr(self.clock, "lateness", None)
        if hist is None:
            return None
        self._hists.append((now, list(hist)))
        while len(self._hists) > 2 and now - self._hists[1][0] >= self.window:
            self._hists.popleft()  # keep the newest snapshot that is at least a window old as the baseline
        base = self._hists[0][1]
        counts = [a - b for a, b in zip(hist, base)]
        total = sum(counts)
        if total < self.min_packets:
            return None
        rank = total * self.percentile / 100.0
        seen = 0
        for i, n in enumerate(counts):
            seen += n
            if seen >= rank:
                return i / 10000.0  # the bin's lower edge: bin i holds lateness in [i, i + 1) x 0.1 ms
        return len(counts) / 10000.0  # pragma: no cover - the loop always reaches the rank

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        lag = max(0.0, now - self._due)
        self.worst = max(self.worst, lag)
        self._samples.append((now, lag))
        while self._samples and now - self._samples[0][0] > self.window:
            self._samples.popleft()
        if self.max_cpu is not None:
            self.admission.call_budget = self._budget(now)
        if self.max_lag is not None:
            self._check_lag(now)
        self._due = now + self.interval
        self._handle = loop.call_at(self._due, self._tick)

    def _budget(self, now: float) -> Optional[int]:
        """The calls the process can carry within ``max_cpu`` at their cost over the window, or None."""
        assert self._calls is not None and self.max_cpu is not None
        cpu, calls = self._cpu_time(), int(self._calls())
        samples = self._cpu
        samples.append((now, cpu, calls))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()  # the baseline: the newest measurement at least a window old
        t0, cpu0, _ = samples[0]
        if now - t0 < self.window / 2:
            return None  # too short a history to say what a call costs
        share = self.cpu_share = max(0.0, (cpu - cpu0) / (now - t0))
        mean_calls = sum(k for _, _, k in samples) / len(samples)
        if mean_calls < MIN_CALLS or share <= 0.0:
            self.call_cost = None
            return None
        cost = self.call_cost = share / mean_calls
        budget = max(MIN_CALLS, int(self.max_cpu / cost + 1e-9))
        logger.debug("[SIP] %.0f %% CPU for %.0f calls: %.2f ms per call-second, budget %d calls", share * 100.0,
                     mean_calls, cost * 1000.0, budget)
        return budget

    def _check_lag(self, now: float) -> None:
        assert self.max_lag is not None
        media = self._media_lateness(now) if self.clock is not None else None
        self.from_media = media is not None
        figure = self.figure = media if media is not None else self.lag
        what = f"{self.percentile:g}% of packets within" if self.from_media else "the event loop"
        # without media the figure is the slowest callback of the window (one SIP message handled, a module imported
        # by a first call): below a frame period it makes no packet late, and a limit of a millisecond or two would
        # hold the mark for good while a caller's INVITEs keep the loop that busy, with no call ever let in
        limit = self.max_lag if self.from_media else max(self.max_lag, NO_MEDIA_MIN_LAG)
        if not self.admission.overloaded and figure > limit:
            self.admission.overloaded = True
            logger.warning("[SIP] Overloaded: %s %.1f ms (limit %.0f ms); new calls get 503", what,
                           figure * 1000.0, limit * 1000.0)
        elif self.admission.overloaded and figure < limit / 2:
            self.admission.overloaded = False
            logger.info("[SIP] Load back to normal (%s %.1f ms): taking new calls again", what, figure * 1000.0)
