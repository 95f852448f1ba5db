"""LazyEvent behaves as asyncio.Event and holds no waiter queue until somebody waits."""

from __future__ import annotations

import asyncio
import collections
import sys

import pytest

from pyvoip_fast.media.lazy_event import LazyEvent


def test_an_event_nobody_waited_on_holds_no_queue_and_is_smaller_than_the_stock_one():
    async def go():
        lazy, stock = LazyEvent(), asyncio.Event()
        assert not isinstance(lazy._waiters, collections.deque)
        assert sys.getsizeof(lazy._waiters) < sys.getsizeof(stock._waiters) // 4
        lazy.set()
        assert lazy.is_set() and await lazy.wait() is True  # set before anyone waited: no queue built for it
        assert not isinstance(lazy._waiters, collections.deque)
        lazy.clear()
        assert not lazy.is_set()
        assert "unset" in repr(lazy)
    asyncio.run(go())


def test_set_wakes_every_waiter_and_a_cancelled_waiter_leaves_the_queue():
    async def go():
        event = LazyEvent()
        woken = []

        async def waiter(i):
            assert await event.wait() is True
            woken.append(i)

        tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
        quitter = asyncio.create_task(event.wait())
        await asyncio.sleep(0)
        assert len(event._waiters) == 4 and "waiters:4" in repr(event)
        quitter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await quitter
        assert len(event._waiters) == 3
        event.set()
        await asyncio.gather(*tasks)
        assert sorted(woken) == [0, 1, 2] and len(event._waiters) == 0
        event.clear()
        late = asyncio.create_task(event.wait())
        await asyncio.sleep(0)
        assert not late.done()
        event.set()
        assert await asyncio.wait_for(late, 1) is True
    asyncio.run(go())


def test_one_event_serves_waiters_on_two_loops_one_after_the_other_like_the_stock_one():
    event = LazyEvent()

    async def set_and_wait():
        asyncio.get_running_loop().call_soon(event.set)
        return await event.wait()

    assert asyncio.run(set_and_wait()) is True
    event.clear()
    with pytest.raises(RuntimeError):  # the stock event is bound to the first loop that waited on it, so is this
        asyncio.run(set_and_wait())
