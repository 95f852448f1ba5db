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
  ``interval`` seconds over the window: a loop blocked by anything at all.

When that figure exceeds ``max_lag``, the admission control is marked overloaded and new INVITEs get
``503 Service Unavailable`` with ``Retry-After`` at once, without any per-call state (OPTIONS are still answered,
requests within calls already up pass). The mark clears once the figure is below half of ``max_lag`` (hysteresis,
so the answer does not flap).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Deque, List, Optional, Tuple

from ..sip.admission import Admission

logger = logging.getLogger("pyvoip_fast.app.useragent")

__all__ = ["LoadMonitor"]


class LoadMonitor:
    """Marks ``admission.overloaded`` from the event loop's lag (see the module notes).

    Args:
        admission: the admission control whose ``overloaded`` flag this drives.
        max_lag: seconds of lag beyond which new calls are refused.
        interval: seconds between two measurements.
        window: seconds of measurements the decision looks at.
        clock: the media clock whose lateness counts as load too (the Phone passes the loop's shared one).
        percentile: the share of the window's packets (0-100) that must have gone out within ``max_lag``.
        min_packets: fewer packets than this in the window count as no media (the timer decides).
    """

    def __init__(self, admission: Admission, *, max_lag: float, interval: float = 0.05, window: float = 1.0,
                 clock: Any = None, percentile: float = 99.0, min_packets: int = 200) -> None:
        if not max_lag > 0 or not interval > 0 or not window >= interval:
            raise ValueError("max_lag and interval must be positive, and window at least one interval")
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
        self.max_lag = float(max_lag)
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
        media = self._media_lateness(now) if self.clock is not None else None
        self.from_media = media is not None
        figure = self.figure = media if media is not None else self.lag
        what = f"{self.percentile:g}% of packets within" if self.from_media else "the event loop"
        if not self.admission.overloaded and figure > self.max_lag:
            self.admission.overloaded = True
            logger.warning("[SIP] Overloaded: %s %.1f ms (limit %.0f ms); new calls get 503", what,
                           figure * 1000.0, self.max_lag * 1000.0)
        elif self.admission.overloaded and figure < self.max_lag / 2:
            self.admission.overloaded = False
            logger.info("[SIP] Load back to normal (%s %.1f ms): taking new calls again", what, figure * 1000.0)
        self._due = now + self.interval
        self._handle = loop.call_at(self._due, self._tick)
