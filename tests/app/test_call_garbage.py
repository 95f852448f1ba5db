"""An ended call leaves no reference cycles: its objects are freed when the last reference goes.

A listener sets up and ends calls all the time. When every ended call was a cycle (the session's parts holding its
bound methods, the call and its SIP dialog holding each other's), the collector's older generations found
100,000-200,000 such objects at once at a hundred calls a second and stopped every call's media for 100-400 ms
(``benchmarks/README.md``, twenty-fifth session). ``media.session._unlink``, ``Pacer.stop`` and ``Call._close``
let go of those references; these tests run real calls between two phones on loopback with the collector off and
then ask it what it would have had to collect.
"""

from __future__ import annotations

import asyncio
import collections
import gc
from typing import Any, Dict, List

import numpy as np

from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.audio import ToneSource

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def _unreachable() -> Dict[str, int]:
    """What a full collection finds unreachable now, by type (the collector was off: everything since)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found: List[Any] = list(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
    return dict(collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in found))


def _with_collector_off(body: Any) -> Dict[str, int]:
    """Run the coroutine function ``body()`` with the collector off; it returns ``_unreachable()`` taken at the
    point it chooses (while the phones and the loop, which are not a call's, are still up)."""
    gc.collect()
    gc.disable()
    try:
        result: Dict[str, int] = asyncio.run(asyncio.wait_for(body(), 30.0))
    finally:
        gc.enable()
    return result


def test_calls_ended_either_way_leave_no_cycles() -> None:
    async def body() -> Dict[str, int]:
        async with Phone("127.0.0.1", 0, timers=FAST) as alice, Phone("127.0.0.1", 0, user="bob",
                                                                       timers=FAST) as bob:
            for k in range(3):
                answering = asyncio.create_task(bob.answer(source=ToneSource(440.0)))
                a = await alice.call(bob.local_address, hangup_when_done=False)
                b = await answering
                frames = b.audio_in(max_queue=50)
                await a.play(np.zeros(800, dtype=np.int16))
                a.send_dtmf("5")
                await asyncio.sleep(0.3)
                frames.close()
                caller, callee = (a, b) if k % 2 == 0 else (b, a)
                await caller.hangup()
                await callee.wait_done(timeout=5.0)
                assert a.stats.packets_received > 0 and b.stats.packets_received > 0  # still readable
            del a, b, answering, frames, caller, callee
            await asyncio.sleep(0.1)
            return _unreachable()

    garbage = _with_collector_off(body)
    ours = {k: v for k, v in garbage.items() if k.startswith("pyvoip_fast")}
    assert not ours, ours
    assert sum(garbage.values()) == 0, garbage


def test_a_stopped_pacer_lets_go_of_its_stages() -> None:
    from pyvoip_fast.media.clock import MediaClock, Pacer

    async def body() -> Dict[str, int]:
        clock = MediaClock.for_loop()
        seen: List[int] = []

        class Owner:
            def stage(self, n: int, deadline: float) -> None:
                seen.append(n)

        owner = Owner()
        pacer = Pacer(clock, 0.02, None, stages=(owner.stage, owner.stage))
        await asyncio.sleep(0.1)
        pacer.stop()
        assert seen and not pacer.stages and not pacer.running
        before = len(seen)
        pacer.callback(10**6, 0.0)  # a stopped pacer's callback does nothing
        assert len(seen) == before and 10**6 not in seen
        del owner, pacer
        found = _unreachable()
        clock.close()
        return found

    assert _with_collector_off(body) == {}
