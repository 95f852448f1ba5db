"""Overload control from measured load: the event loop's lag and the media clock's lateness decide whether new
calls are taken.

Every call of a process shares one event loop; when it falls behind, every call's media is late. So the process's
load is measured where it hurts: a timer due every ``interval`` seconds records how late it fired, and the shared
media clock (``media.clock.MediaClock``) reports how late its packets went out since the last look (a callback
that runs after a thousand others is late even when the loop itself is not). When the worst of either over the
last ``window`` seconds exceeds ``max_lag``, the admission control is marked overloaded and new INVITEs
get ``503 Service Unavailable`` with ``Retry-After`` at once, without any per-call state (OPTIONS are still
answered, requests within calls already up pass). The mark clears once the worst lag of the window is below half of
``max_lag`` (hysteresis, so the answer does not flap).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Deque, Optional, Tuple

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
    """

    def __init__(self, admission: Admission, *, max_lag: float, interval: float = 0.05, window: float = 1.0,
                 clock: Any = None) -> None:
        if not max_lag > 0 or not interval > 0 or not window >= interval:
            raise ValueError("max_lag and interval must be positive, and window at least one interval")
        self.admission = admission
        self.max_lag = float(max_lag)
        self.interval = float(interval)
        self.window = float(window)
        self._samples: Deque[Tuple[float, float]] = deque()
        #: the media clock whose lateness counts as load too (anything with ``take_worst_lateness()``), or None
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
        """The worst lag of the current window, in seconds."""
        return max((lag for _, lag in self._samples), default=0.0)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        lag = max(0.0, now - self._due)
        if self.clock is not None:
            lag = max(lag, self.clock.take_worst_lateness())
        self.worst = max(self.worst, lag)
        self._samples.append((now, lag))
        while self._samples and now - self._samples[0][0] > self.window:
            self._samples.popleft()
        worst = self.lag
        if not self.admission.overloaded and worst > self.max_lag:
            self.admission.overloaded = True
            logger.warning("[SIP] Overloaded: the event loop is %.0f ms late (limit %.0f ms); new calls get 503",
                           worst * 1000.0, self.max_lag * 1000.0)
        elif self.admission.overloaded and worst < self.max_lag / 2:
            self.admission.overloaded = False
            logger.info("[SIP] Load back to normal (%.0f ms of lag): taking new calls again", worst * 1000.0)
        self._due = now + self.interval
        self._handle = loop.call_at(self._due, self._tick)
