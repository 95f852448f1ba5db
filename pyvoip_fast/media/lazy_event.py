"""An ``asyncio.Event`` that allocates its waiter queue only when somebody waits.

A call holds several events (the peer is lost, the peer's RTCP BYE came, the call is done, a streamed playback has
room) and most of them are never awaited: the callers of a busy process wait on callbacks instead. The stock event
builds an empty ``deque`` for its waiters at once, about 0.6 KB each; this one keeps an empty tuple until the first
``wait()``. ``set``, ``clear``, ``is_set`` and ``repr`` are the stock methods, which only read the waiters.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Literal

__all__ = ["LazyEvent"]


class LazyEvent(asyncio.Event):
    """``asyncio.Event`` with the same behaviour and no waiter queue until the first ``wait()``."""

    def __init__(self) -> None:
        # not super().__init__(): it would build the deque this class exists to avoid (the loop binding is the
        # class attribute ``_loop = None`` of asyncio's mixin, set on first wait as before)
        self._value = False
        self._waiters = ()  # type: ignore[assignment]  # read only: iterated by set(), tested by __repr__

    async def wait(self) -> Literal[True]:
        if not self._value and not isinstance(self._waiters, collections.deque):
            self._waiters = collections.deque()
        return await super().wait()
