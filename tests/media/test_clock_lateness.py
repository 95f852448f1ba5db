"""The media clock measures how late each callback really ran (``MediaClock.lateness``), and the overload control
counts that lateness as load: a callback that runs after many others is late even when the event loop is not."""

from __future__ import annotations

import asyncio
import time
from typing import List

from mediakit import run
from pyvoip_fast.app.load import LoadMonitor
from pyvoip_fast.media.clock import LATENESS_BINS, MediaClock, Pacer
from pyvoip_fast.sip.admission import Admission


def test_lateness_counts_the_time_spent_in_earlier_callbacks_of_the_same_wake_up() -> None:
    async def main() -> List[float]:
        clock = MediaClock()
        done = asyncio.Event()
        ran: List[float] = []
        due = clock.time() + 0.05

        def slow(_when: float) -> None:
            time.sleep(0.003)  # 3 ms of work in each callback
            ran.append(_when)
            if len(ran) == 10:
                done.set()

        for _ in range(10):
            clock.call_at(due, slow)
        await asyncio.wait_for(done.wait(), 2)
        assert sum(clock.lateness) == 10 and len(clock.lateness) == LATENESS_BINS + 1
        worst = clock.take_worst_lateness()
        assert clock.take_worst_lateness() == 0.0  # read and reset
        p50, p99, top = clock.lateness_percentiles(50, 99, 100)
        clock.close()
        return [worst, p50, p99, top]

    worst, p50, p99, top = run(main())
    # the tenth callback ran after nine others of 3 ms each: at least 27 ms late; the middle one about 12 ms
    assert worst >= 0.027 and top >= 27.0 and p99 == top
    assert 10.0 <= p50 <= 25.0


def test_the_load_monitor_takes_media_lateness_as_load() -> None:
    class Late:
        """A clock's lateness histogram that the test fills: the loop itself stays idle."""

        def __init__(self) -> None:
            self.lateness = [0] * (LATENESS_BINS + 1)

    async def main() -> List[bool]:
        admission = Admission()
        late = Late()
        monitor = LoadMonitor(admission, max_lag=0.01, interval=0.02, window=0.1, clock=late)
        monitor.start()
        late.lateness[1] += 500  # packets on time
        await asyncio.sleep(0.1)
        states = [admission.overloaded]
        late.lateness[500] += 500  # packets 50 ms late: the loop itself is idle
        await asyncio.sleep(0.05)
        states.append(admission.overloaded)
        late.lateness[1] += 500  # on time again
        await asyncio.sleep(0.3)  # the window forgets the late ones: taking calls again
        states.append(admission.overloaded)
        monitor.stop()
        return states

    assert run(main()) == [False, True, False]


class _Histogram:
    """The part of ``MediaClock`` the load monitor reads: the cumulative lateness histogram (0.1 ms bins)."""

    def __init__(self) -> None:
        self.lateness = [0] * (LATENESS_BINS + 1)

    def packets(self, n: int, late_ms: float) -> None:
        self.lateness[min(int(late_ms * 10), LATENESS_BINS)] += n


def test_the_load_monitor_decides_on_the_99th_percentile_of_the_window_not_the_worst_packet() -> None:
    async def main() -> List[bool]:
        admission = Admission()
        clock = _Histogram()
        monitor = LoadMonitor(admission, max_lag=0.002, interval=0.02, window=0.1, clock=clock, min_packets=100)
        monitor.start()
        states = []
        for _ in range(8):  # on time, with one packet 50 ms late among a thousand (a garbage collection)
            clock.packets(999, 0.3)
            clock.packets(1, 50.0)
            await asyncio.sleep(0.02)
        states.append(admission.overloaded)
        for _ in range(8):  # 3 % of the packets 5 ms late: the process is past what it can carry
            clock.packets(970, 0.3)
            clock.packets(30, 5.0)
            await asyncio.sleep(0.02)
        states.append(admission.overloaded and monitor.from_media and 0.004 < monitor.figure < 0.006)
        for _ in range(10):  # on time again: the window forgets, calls are taken
            clock.packets(1000, 0.3)
            await asyncio.sleep(0.02)
        states.append(admission.overloaded)
        monitor.stop()
        return states

    assert run(main()) == [False, True, False]


def test_new_streams_take_the_least_loaded_phase_of_the_next_period() -> None:
    """Streams that all ask at the same instant (a load generator's steady rate) spread over the 10 phases (the 2 ms
    grid) of a 20 ms period instead of piling onto one wake-up; none waits more than a period for its first slot."""

    async def main() -> tuple:
        clock = MediaClock()
        now = clock.time()
        starts = []
        pacers = []
        for _ in range(60):
            start = clock.balanced_start(now, 0.02)
            starts.append(start)
            pacers.append(Pacer(clock, 0.02, lambda n, d: None, start=start))
        sizes = sorted(len(g.members) for g in clock._groups.values())
        for p in pacers:
            p.stop()
        return now, starts, sizes, len(clock._groups)

    now, starts, sizes, left = run(main())
    assert sizes == [6] * 10 and left == 0
    assert all(now <= s < now + 0.021 for s in starts)


def test_catch_up_runs_what_is_due_once_and_never_inside_a_callback() -> None:
    async def main() -> tuple:
        clock = MediaClock()
        ran: List[str] = []

        def first(_when: float) -> None:
            ran.append("first")
            clock.catch_up()  # signalling started by a media callback: the clock must not run itself again

        due = clock.time() + 0.005
        clock.call_at(due, first)
        clock.call_at(due, lambda _w: ran.append("second"))
        time.sleep(0.01)  # both are due now, and the loop has not looked at the timer yet
        clock.catch_up()
        after = list(ran)
        clock.catch_up()  # nothing due any more: nothing runs twice
        await asyncio.sleep(0.02)
        return after, ran

    after, ran = run(main())
    assert after == ["first", "second"] and ran == ["first", "second"]


def test_a_wake_up_arms_the_timer_once_however_many_tick_groups_reschedule() -> None:
    """Each wake-up serves one tick group, which reschedules itself a period later while the other groups are
    still due sooner: the timer is set once, at the end of the run, for the earliest of them (a system call per
    wake-up, not two)."""

    async def main() -> tuple:
        clock = MediaClock()
        armed: List[float] = []
        arm = clock._arm

        def counting_arm(when: float) -> None:
            armed.append(when)
            arm(when)

        clock._arm = counting_arm  # type: ignore[method-assign]
        now = clock.time()
        served: List[int] = []
        pacers = [Pacer(clock, 0.02, lambda n, d: served.append(n), start=clock.balanced_start(now, 0.02))
                  for _ in range(40)]
        await asyncio.sleep(0.25)
        wakeups_before, armed_before = clock.wakeups, len(armed)
        await asyncio.sleep(0.2)
        wakeups, arms = clock.wakeups - wakeups_before, len(armed) - armed_before
        for p in pacers:
            p.stop()
        return wakeups, arms, len(served), len(clock._groups)

    wakeups, arms, served, groups = run(main())
    assert served >= 40 * 10 and groups == 0
    assert wakeups >= 50  # 10 groups on the 2 ms grid: about 100 in 0.2 s
    assert arms <= wakeups + 1  # one per wake-up (before: two, the group's own and the run's)


def test_a_tick_group_counts_each_pacer_late_by_the_work_before_it_and_skips_after_a_stall() -> None:
    """Pacers of one phase share a wake-up: each slot is counted once in the lateness histogram, late by the
    callbacks before it in that wake-up; a wake-up that finds more slots due than ``max_burst`` (the loop was
    blocked) skips the oldest and reports it, and the schedule goes on. The clock reads ``time.monotonic``
    directly on asyncio's own loop."""
    async def main() -> None:
        clock = MediaClock()
        assert clock.now is time.monotonic and abs(clock.now() - asyncio.get_running_loop().time()) < 0.01
        slots: List[List[int]] = [[] for _ in range(5)]
        skipped: List[int] = []
        start = clock.balanced_start(clock.time() + 0.02, 0.02)

        def member(k: int):  # type: ignore[no-untyped-def]
            def tick(n: int, deadline: float) -> None:
                assert abs(deadline - (start + n * 0.02)) < 1e-9
                slots[k].append(n)
                time.sleep(0.002)  # 2 ms of work: the fifth member runs about 8 ms late
            return tick

        pacers = [Pacer(clock, 0.02, member(k), start=start, max_burst=2, on_skip=skipped.append) for k in range(5)]
        assert len(clock) == 1  # one clock entry for the five
        while len(slots[4]) < 4:
            await asyncio.sleep(0.005)
        counted = sum(clock.lateness)
        assert counted == sum(len(s) for s in slots)
        assert clock.take_worst_lateness() >= 0.008
        time.sleep(0.075)  # the loop blocked: about four slots of every member due at the next wake-up
        await asyncio.sleep(0.03)
        for p in pacers:
            p.stop()
        assert skipped and all(p.skipped >= 1 for p in pacers)
        for s in slots:
            assert s == sorted(s) and len(set(s)) == len(s)  # every slot at most once, in order
        clock.close()

    run(main())


def test_staged_pacers_of_a_group_run_stage_by_stage() -> None:
    """Pacers with stages: every member's first stage runs before any member's second; the lateness is counted once
    per slot, when its ``note_stage`` starts; a stage that raises does not stop the member's other stages or the
    other members; a pacer stopped in its first stage runs no further stage. A stall with skipped slots runs the
    whole ``callback`` instead, as before."""
    async def main() -> None:
        clock = MediaClock()
        order: List[str] = []
        start = clock.balanced_start(clock.time() + 0.02, 0.02)
        pacers: List[Pacer] = []

        def stage(name: str, k: int):  # type: ignore[no-untyped-def]
            def run(n: int, deadline: float) -> None:
                order.append(f"{name}{k}")
                if name == "b" and k == 1:
                    raise RuntimeError("a broken stage")
                if name == "a" and k == 2 and n >= 1:
                    pacers[2].stop()  # stopped in its first stage of slot 1: no "b2" or "c2" for that slot
            return run

        def whole(k: int):  # type: ignore[no-untyped-def]
            def run(n: int, deadline: float) -> None:
                order.append(f"all{k}")
            return run

        for k in range(3):
            pacers.append(Pacer(clock, 0.02, whole(k), start=start, max_burst=1,
                                stages=(stage("a", k), stage("b", k), stage("c", k)), note_stage=1))
        while len([x for x in order if x.startswith("a")]) < 5:  # slot 0 of the three, slot 1 of two (2 stopped)
            await asyncio.sleep(0.005)
        assert order[:9] == ["a0", "a1", "a2", "b0", "b1", "b2", "c0", "c1", "c2"]  # slot 0; "b1" raised
        assert order[9:14] == ["a0", "a1", "a2", "b0", "b1"]  # slot 1: pacer 2 stopped during "a2"
        assert sum(clock.lateness) == len([x for x in order if x.startswith("b")])  # once a slot, at its "b"
        time.sleep(0.07)  # a stall: the next wake-up skips slots and runs ``callback``
        await asyncio.sleep(0.03)
        assert "all0" in order and "all1" in order and pacers[0].skipped >= 1
        for p in pacers:
            p.stop()
        clock.close()
        try:
            Pacer(clock, 0.02, whole(0), stages=(stage("a", 0),), note_stage=1)
        except ValueError:
            pass
        else:
            raise AssertionError("a note_stage past the stages was accepted")
        try:
            Pacer(clock, 0.02, None)
        except ValueError:
            pass
        else:
            raise AssertionError("a pacer with neither a callback nor stages was accepted")

    run(main())


def test_a_late_wake_up_sends_for_every_due_group_before_any_group_receives() -> None:
    """Two tick groups (two phases of the 2 ms grid) both due at one wake-up, because the loop was blocked past
    both instants: every member's first stage, the send, runs before any member's later stages, across the groups,
    so the second group's packets do not wait for the first group's receiving and playout. Each slot is still
    served once and counted once."""
    async def main() -> List[str]:
        clock = MediaClock()
        order: List[str] = []
        first = clock.on_grid(clock.time() + 0.03)

        def stage(name: str, group: str):  # type: ignore[no-untyped-def]
            def run(n: int, deadline: float) -> None:
                if n == 0:
                    order.append(f"{name}{group}")
                    time.sleep(0.001)  # a millisecond of work in each stage
            return run

        pacers = [Pacer(clock, 0.02, None, start=start, stages=(stage("send", g), stage("recv", g), stage("play", g)))
                  for g, start in (("A", first), ("A", first), ("B", first + 0.004))]
        assert len(clock._groups) == 2
        counted = sum(clock.lateness)
        time.sleep(max(0.0, first + 0.006 - clock.time()))  # the loop blocked past both groups' first instant
        while len(order) < 9:
            await asyncio.sleep(0.002)
        for p in pacers:
            p.stop()
        assert sum(clock.lateness) - counted >= 3  # the three sends, counted when they ran
        clock.close()
        return order

    order = run(main())
    assert order[:3] == ["sendA", "sendA", "sendB"], order
    assert sorted(order[3:9]) == ["playA", "playA", "playB", "recvA", "recvA", "recvB"]
    assert order[3:5] == ["recvA", "recvA"] and order.index("recvB") > order.index("playA"), order
