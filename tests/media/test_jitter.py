"""Adaptive jitter buffer, driven with synthetic arrival times (no sleeping, no sockets).

Every test runs on the compiled buffer and on its pure-Python twin (``test_jitter_parity.py`` compares them).
"""

from __future__ import annotations

import random
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast import _compat
from pyvoip_fast.media.jitter import JitterBuffer

_IMPLS = ["python"] if _compat.NO_EXTENSIONS else ["cython", "python"]


@pytest.fixture(scope="module", autouse=True, params=_IMPLS)
def _implementation(request: pytest.FixtureRequest) -> Iterator[None]:
    """``JitterBuffer`` in this module is the compiled class, then the twin's."""
    chosen = _compat.module_for("_jitter", request.param).JitterBuffer
    saved = globals()["JitterBuffer"]
    globals()["JitterBuffer"] = chosen
    yield
    globals()["JitterBuffer"] = saved

F = 0.02  # frame period, s


def packet(i: int, seq0: int = 1000, ts0: int = 5000) -> Tuple[int, int, bytes]:
    return (seq0 + i) & 0xFFFF, (ts0 + 160 * i) & 0xFFFFFFFF, i.to_bytes(4, "big")


def simulate(
    jb: JitterBuffer,
    arrivals: Iterable[Tuple[float, int]],
    ticks: int,
    *,
    seq0: int = 1000,
    ts0: int = 5000,
    ssrc: Optional[int] = None,
    t0: float = 0.0105,
    ts_jump: Tuple[int, int] = (1 << 30, 0),
) -> Tuple[List[Tuple[str, Optional[int]]], List[str]]:
    """Feed (arrival time, packet index) and call get() every 20 ms; returns (playout, put statuses).

    ``ts_jump=(i, k)``: packets from index ``i`` on have their timestamp advanced by ``k`` frames (DTX).
    """
    pk = sorted(arrivals)
    out: List[Tuple[str, Optional[int]]] = []
    puts: List[str] = []
    j = 0
    for k in range(ticks):
        now = t0 + k * F
        while j < len(pk) and pk[j][0] <= now:
            a, i = pk[j]
            seq, ts, payload = packet(i, seq0, ts0)
            if i >= ts_jump[0]:
                ts = (ts + 160 * ts_jump[1]) & 0xFFFFFFFF
            puts.append(jb.put(seq, ts, payload, a, ssrc))
            j += 1
        st_, p = jb.get(now)
        out.append((st_, int.from_bytes(p, "big") if p is not None else None))
    return out, puts


def played(out: Sequence[Tuple[str, Optional[int]]]) -> List[int]:
    return [i for s, i in out if s == "frame" and i is not None]


def test_in_order_stream_plays_everything_in_order_after_prebuffering() -> None:
    jb = JitterBuffer(initial_delay=0.06)
    out, puts = simulate(jb, [(i * F, i) for i in range(100)], 120)
    assert set(puts) == {"ok"}
    assert out[0] == ("empty", None)
    first = next(k for k, (s, _) in enumerate(out) if s == "frame")
    assert 2 <= first <= 4  # 60 ms of pre-buffering
    assert played(out) == list(range(100))
    assert jb.stats.lost == 0 and jb.stats.late == 0 and jb.stats.played == 100


def test_reordering_is_undone() -> None:
    arr = []
    for i in range(0, 100, 2):  # each pair swapped, the second 15 ms late
        arr += [(i * F + 0.015, i), ((i + 1) * F, i + 1)]
    jb = JitterBuffer()
    out, puts = simulate(jb, arr, 120)
    assert played(out) == list(range(100))
    assert jb.stats.lost == 0 and jb.stats.late == 0


def test_duplicates_dropped() -> None:
    arr = [(i * F, i) for i in range(50)] + [(i * F + 0.005, i) for i in range(0, 50, 5)]
    jb = JitterBuffer()
    out, puts = simulate(jb, arr, 70)
    assert puts.count("duplicate") == 10
    assert played(out) == list(range(50))
    assert jb.stats.duplicates == 10


def test_late_packet_counted_and_dropped_loss_concealed() -> None:
    arr = [(i * F, i) for i in range(60) if i != 20] + [(20 * F + 0.5, 20)]  # 500 ms late
    jb = JitterBuffer(max_delay=0.2)
    out, puts = simulate(jb, arr, 80)
    assert "late" in puts
    assert 20 not in played(out)
    # slot 20 is a "lost" slot between 19 and 21
    seq = [(s, i) for s, i in out if s != "empty"]
    k = seq.index(("frame", 19))
    assert seq[k + 1] == ("lost", None) and seq[k + 2] == ("frame", 21)
    assert jb.stats.late == 1 and jb.stats.lost == 0  # it did arrive: late, not lost


def test_lost_packets_counted() -> None:
    missing = {10, 11, 30}
    jb = JitterBuffer()
    out, _ = simulate(jb, [(i * F, i) for i in range(60) if i not in missing], 80)
    assert played(out) == [i for i in range(60) if i not in missing]
    assert jb.stats.lost == 3
    assert sum(1 for s, _ in out if s == "lost") >= 3


def test_sequence_and_timestamp_wrap() -> None:
    jb = JitterBuffer()
    # seq wraps at 65535 after 5 packets, ts wraps at 2**32 after 10
    arr = [(i * F, i) for i in range(40)]
    arr[12], arr[13] = (arr[12][0], 13), (arr[13][0], 12)  # reordered across the wraps
    out, puts = simulate(jb, arr, 60, seq0=65531, ts0=2**32 - 1600)
    assert set(puts) == {"ok"}
    assert played(out) == list(range(40))
    assert jb.stats.lost == 0 and jb.stats.resets == 0


def test_ssrc_change_is_a_new_stream() -> None:
    jb = JitterBuffer()
    out1, puts1 = simulate(jb, [(i * F, i) for i in range(30)], 35, ssrc=1)
    assert played(out1) == list(range(30))
    # the new source starts with unrelated sequence numbers and timestamps
    t1 = 35 * F
    out2, puts2 = simulate(jb, [(t1 + i * F, i) for i in range(30)], 40, seq0=7, ts0=123456789, ssrc=2,
                           t0=t1 + 0.0105)
    assert puts2[0] == "reset" and set(puts2[1:]) == {"ok"}
    assert played(out2) == list(range(30))
    assert jb.stats.resets == 1 and jb.stats.late == 0 and jb.stats.lost == 0


def test_big_sequence_jump_needs_confirmation() -> None:
    jb = JitterBuffer()
    for i in range(10):
        s, t, p = packet(i)
        assert jb.put(s, t, p, i * F) == "ok"
    assert jb.put(30000, 9_000_000, b"x", 0.2) == "invalid"  # a lone stray
    s, t, p = packet(10)
    assert jb.put(s, t, p, 0.2) == "ok"
    assert jb.put(40000, 7_000_000, b"a", 0.22) == "invalid"
    assert jb.put(40001, 7_000_160, b"b", 0.24) == "reset"  # confirmed: the source restarted
    assert jb.stats.resets == 1 and jb.stats.invalid == 2
    assert jb.depth == 2


def test_adapts_up_under_jitter_and_down_when_calm() -> None:
    rnd = random.Random(7)
    arr = []
    for i in range(2000):  # 40 s: calm 10 s, 0-100 ms jitter 10 s, calm 20 s
        jit = rnd.uniform(0, 0.1) if 500 <= i < 1000 else rnd.uniform(0, 0.002)
        arr.append((i * F + jit, i))
    jb = JitterBuffer(min_delay=0.02, max_delay=0.3, initial_delay=0.06)
    delays = {}
    pk = sorted(arr)
    j = 0
    late_after_warmup = 0
    for k in range(2010):
        now = 0.0105 + k * F
        while j < len(pk) and pk[j][0] <= now:
            a, i = pk[j]
            s, t, p = packet(i)
            r = jb.put(s, t, p, a)
            if r == "late" and 600 <= i < 1000:
                late_after_warmup += 1
            j += 1
        jb.get(now)
        if k in (450, 950, 1950):
            delays[k] = (jb.delay, jb.current_delay)
    calm_before, jittery, calm_after = delays[450], delays[950], delays[1950]
    assert calm_before[0] < 0.04
    assert jittery[0] >= 0.1 and jittery[1] is not None and jittery[1] >= 0.09
    # speech frames are only skipped while the excess is over 2.5 frames: back to within 50 ms of the target
    assert calm_after[0] < 0.04 and calm_after[1] is not None
    assert calm_after[1] < calm_after[0] + 0.051 and calm_after[1] < jittery[1] - 0.03
    # once adapted, the jittery phase loses (almost) nothing to lateness
    assert late_after_warmup <= 5
    assert jb.stats.stretched > 0 and jb.stats.shrunk > 0


def test_idle_stream_goes_empty_and_next_spurt_prebuffers() -> None:
    jb = JitterBuffer(max_delay=0.2)
    # talk spurt 2 continues the sequence numbers; its timestamps jump with the 1.6 s of silence (DTX)
    arr = [(i * F, i) for i in range(20)] + [(2.0 + (i - 20) * F, i) for i in range(20, 40)]
    out, _ = simulate(jb, arr, 150, ts_jump=(20, 80))
    states = [s for s, _ in out]
    assert played(out) == list(range(40))
    idle = states[40:95]
    assert "empty" in idle  # idle between the spurts, not "lost" forever
    assert jb.stats.lost == 0


def test_silence_detector_used_for_shrinking() -> None:
    calls = []

    def silent(p: bytes) -> bool:
        calls.append(p)
        return True

    jb = JitterBuffer(initial_delay=0.2, max_delay=0.3, silence_detector=silent)
    out, _ = simulate(jb, [(i * F, i) for i in range(200)], 210)
    assert calls and jb.stats.shrunk >= 5
    assert jb.current_delay is not None and jb.current_delay < 0.1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 0.12), st.booleans(), st.booleans()), min_size=5, max_size=120),
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
)
def test_any_arrival_pattern_plays_increasing_unique_frames(
    pattern: List[Tuple[float, bool, bool]], seq0: int, ts0: int
) -> None:
    arr = []
    for i, (jit, drop, dup) in enumerate(pattern):
        if drop:
            continue
        arr.append((i * F + jit, i))
        if dup:
            arr.append((i * F + jit + 0.001, i))
    jb = JitterBuffer()
    out, puts = simulate(jb, arr, len(pattern) + 30, seq0=seq0, ts0=ts0)
    p = played(out)
    assert p == sorted(set(p))
    st_ = jb.stats
    assert st_.played == len(p)
    unique = len({i for _, i in arr})
    assert st_.received + st_.late + st_.overflow + st_.invalid == unique
    assert st_.duplicates == len(arr) - unique
    # everything accepted was played, skipped to shrink, dropped as late at playout, or is still buffered
    assert st_.received <= st_.played + st_.shrunk + st_.late + jb.depth


def test_a_long_call_keeps_its_memory_bounded_and_still_sees_duplicates_and_losses() -> None:
    """An hour-long call must not grow per-packet memory: the buffer remembers SEEN_WINDOW sequence numbers, which
    still catches every duplicate it could play and every loss it counts."""
    from pyvoip_fast.media.jitter import SEEN_WINDOW

    n = 3000  # a minute of 20 ms packets
    arr = [(i * F, i) for i in range(n) if i != 2500] + [(2990 * F + 0.005, 2990)]  # one loss, one duplicate
    jb = JitterBuffer()
    out, puts = simulate(jb, arr, n + 20)
    assert len(jb._seen) == SEEN_WINDOW and len(jb._lost_seqs) <= SEEN_WINDOW
    assert puts.count("duplicate") == 1 and jb.stats.lost == 1
    assert played(out) == [i for i in range(n) if i != 2500]


def test_a_sender_whose_clock_runs_slow_keeps_the_transit_window_small() -> None:
    """Every transit longer than the one before (the sender's clock 0.1 % slow, sipp's pacing, a drifting phone)
    used to keep one entry per packet of the 10 s window: 500 tuples, about 50 KB a call. Coalesced, about ten,
    and the minimum is still the fastest packet of the last window (give or take a tenth of it)."""
    jb = JitterBuffer(window=10.0)
    arr = [(i * F * 1.001, i) for i in range(3000)]
    out, _ = simulate(jb, arr, 3000)
    assert jb._transit.entries <= 12
    assert played(out) == list(range(len(played(out)))) and len(played(out)) > 2900
    # the remembered minimum is a transit from the last window: within 10-11 s of the newest packet
    newest = arr[-1][0]
    assert newest - 11.0 <= jb._transit.oldest[0] <= newest - 9.0 + 1e-9
    # and a faster packet still takes over at once
    jb.put(*packet(3000)[:2], b"x", 3000 * F * 1.001 - 0.5)
    assert jb._transit.entries == 1 and jb._transit.min_transit < 0.0
