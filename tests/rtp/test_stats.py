"""RFC 3550 appendix A receiver statistics, checked against the appendix formulas on generated streams.

Streams are generated with a known ground truth (which packets were sent, dropped, duplicated, reordered and
when they arrived); the expected numbers are computed from that truth, and from a literal transcription of the
A.1 ``update_seq`` code for the streams without duplicates.
"""

from __future__ import annotations

import math
import random
from types import ModuleType
from typing import Dict, List, Tuple

import pytest

from pyvoip_fast import _compat
from pyvoip_fast.rtp import stats

RATE = 8000
PTIME = 0.02
SAMPLES = 160


IMPLS = ["python"] if _compat.NO_EXTENSIONS else ["cython", "python"]


@pytest.fixture
def m(impl: str) -> ModuleType:
    return _compat.module_for("_stats", impl)


Packet = Tuple[int, int, float]  # (extended seq, timestamp, arrival)


def make_stream(
    n: int,
    seq0: int,
    ts0: int,
    *,
    drop: Tuple[int, ...] = (),
    dup: Tuple[int, ...] = (),
    swap: Tuple[int, ...] = (),
    delays: Dict[int, float] | None = None,
) -> List[Packet]:
    """n packets of 20 ms; ``drop``/``dup`` by index; ``swap`` i exchanges the arrival order of i and i+1."""
    delays = delays or {}
    order = list(range(n))
    for i in swap:
        order[i], order[i + 1] = order[i + 1], order[i]
    out: List[Packet] = []
    for k, i in enumerate(order):
        if i in drop:
            continue
        pkt = (seq0 + i, (ts0 + i * SAMPLES) & 0xFFFFFFFF, 100.0 + k * PTIME + delays.get(i, 0.0))
        out.append(pkt)
        if i in dup:
            out.append((pkt[0], pkt[1], pkt[2] + 0.001))
    return out


def feed(rs: object, stream: List[Packet]) -> List[int]:
    return [rs.update(s & 0xFFFF, ts, t, SAMPLES) for s, ts, t in stream]  # type: ignore[attr-defined]


def reference_a1(seqs: List[int]) -> Tuple[int, int]:
    """RFC 3550 A.1 ``init_seq``/``update_seq`` transcribed literally; returns (received, expected)."""
    MAX_DROPOUT, MAX_MISORDER, MIN_SEQUENTIAL, MOD = 3000, 100, 2, 1 << 16
    s: Dict[str, int] = {}

    def init_seq(seq: int) -> None:
        s.update(base_seq=seq, max_seq=seq, bad_seq=MOD + 1, cycles=0, received=0)

    def update_seq(seq: int) -> int:
        udelta = (seq - s["max_seq"]) & 0xFFFF
        if s["probation"]:
            if seq == (s["max_seq"] + 1) & 0xFFFF:
                s["probation"] -= 1
                s["max_seq"] = seq
                if s["probation"] == 0:
                    init_seq(seq)
                    s["received"] += 1
                    return 1
            else:
                s["probation"] = MIN_SEQUENTIAL - 1
                s["max_seq"] = seq
            return 0
        elif udelta < MAX_DROPOUT:
            if seq < s["max_seq"]:
                s["cycles"] += MOD
            s["max_seq"] = seq
        elif udelta <= MOD - MAX_MISORDER:
            if seq == s["bad_seq"]:
                init_seq(seq)
            else:
                s["bad_seq"] = (seq + 1) & (MOD - 1)
                return 0
        s["received"] += 1
        return 1

    init_seq(seqs[0])
    s["max_seq"] = (seqs[0] - 1) & 0xFFFF
    s["probation"] = MIN_SEQUENTIAL
    for q in seqs:
        update_seq(q)
    return s["received"], s["cycles"] + s["max_seq"] - s["base_seq"] + 1


def test_selector_exports_the_loaded_implementation() -> None:
    assert stats.ReceiverStats is _compat.load("_stats").ReceiverStats
    assert stats.STATUS_NAMES[stats.DUPLICATE] == "DUPLICATE"
    rb = stats.ReceiverStats().report_block(1)
    assert type(rb).__module__ == stats.ReceiverStats.__module__.replace("_stats", "_rtp")


def test_probation_then_clean_stream(m: ModuleType) -> None:
    rs = m.ReceiverStats(clock_rate=RATE)
    statuses = feed(rs, make_stream(50, 1000, 0))
    assert statuses[0] == m.PROBATION and set(statuses[1:]) == {m.ACCEPTED}
    assert rs.valid and rs.base_seq == 1001
    assert (rs.received, rs.expected, rs.cumulative_lost) == (49, 49, 0)
    assert rs.extended_max_seq == 1049
    assert rs.octets_received == 49 * SAMPLES
    assert rs.jitter == pytest.approx(0.0, abs=1e-6)
    assert rs.report_block(7).fraction_lost == 0


def test_known_loss_and_fraction_per_interval(m: ModuleType) -> None:
    drop = tuple(range(10, 200, 10))  # 19 packets lost out of 200
    stream = make_stream(200, 40000, 12345, drop=drop)
    rs = m.ReceiverStats(RATE)
    first, second = stream[:95], stream[95:]  # first interval ends with seq 40000+99 (index 99 received)
    feed(rs, first)
    lost_first = sum(1 for i in drop if 1 <= i <= first[-1][0] - 40000)
    expected_first = first[-1][0] - 40001 + 1
    assert rs.expected == expected_first and rs.cumulative_lost == lost_first
    rb = rs.report_block(0xABC)
    assert rb.fraction_lost == (lost_first << 8) // expected_first
    assert rb.cumulative_lost == lost_first and rb.highest_sequence == first[-1][0]
    feed(rs, second)
    assert (rs.received, rs.expected) == reference_a1([s for s, _, _ in stream])
    assert rs.cumulative_lost == len(drop)
    rb2 = rs.report_block(0xABC)
    lost_second = len(drop) - lost_first
    expected_second = 40199 - first[-1][0]
    assert rb2.fraction_lost == (lost_second << 8) // expected_second
    assert rs.report_block(0xABC).fraction_lost == 0  # an empty interval


def test_sequence_wrap_counts_a_cycle(m: ModuleType) -> None:
    stream = make_stream(300, 65400, 0, drop=(150, 151))
    rs = m.ReceiverStats(RATE)
    feed(rs, stream)
    assert rs.cycles == 1
    assert rs.extended_max_seq == 65400 + 299
    assert rs.report_block(1).highest_sequence == (1 << 16) | ((65400 + 299) & 0xFFFF)
    assert (rs.received, rs.expected) == reference_a1([s & 0xFFFF for s, _, _ in stream])
    assert rs.cumulative_lost == 2


def test_timestamp_wrap_does_not_disturb_jitter(m: ModuleType) -> None:
    stream = make_stream(100, 7, 2**32 - 50 * SAMPLES)  # the timestamp wraps half-way
    rs = m.ReceiverStats(RATE)
    feed(rs, stream)
    assert rs.jitter == pytest.approx(0.0, abs=1e-6)
    assert rs.received == 99


def test_hand_computed_jitter(m: ModuleType) -> None:
    # transit changes by +10 ms, 0, -10 ms, +5 ms: D = 80, 0, 80, 40 timestamp units (|D|)
    delays = {1: 0.0, 2: 0.010, 3: 0.010, 4: 0.0, 5: 0.005}
    rs = m.ReceiverStats(RATE)
    feed(rs, make_stream(6, 0, 0, delays=delays)[:2])  # probation packet + validating packet, same transit
    assert rs.jitter == pytest.approx(0.0, abs=1e-9)
    expected = 0.0
    for i, d in zip(range(2, 6), (80, 0, 80, 40)):
        feed(rs, make_stream(6, 0, 0, delays=delays)[i : i + 1])
        expected += (d - expected) / 16
        assert rs.jitter == pytest.approx(expected, abs=1e-6)
    # by hand: 80/16 = 5; 5 + (0-5)/16 = 4.6875; + (80-4.6875)/16 = 9.39453125; + (40-9.39453125)/16
    assert rs.jitter == pytest.approx(11.30737304, abs=1e-6)
    assert rs.jitter_seconds == pytest.approx(11.30737304 / 8000, abs=1e-9)
    assert rs.report_block(1).jitter == 11


def test_jitter_matches_the_a8_formula_on_random_transit(m: ModuleType) -> None:
    rng = random.Random(5)
    delays = {i: rng.uniform(0, 0.03) for i in range(500)}
    stream = make_stream(500, 300, 999, delays=delays)
    rs = m.ReceiverStats(RATE)
    feed(rs, stream)
    j = 0.0
    for i in range(1, 500):
        d = abs((delays[i] - delays[i - 1]) * RATE)
        j += (d - j) / 16
    assert rs.jitter == pytest.approx(j, rel=1e-9)


def test_duplicates_are_recognised_and_not_counted(m: ModuleType) -> None:
    stream = make_stream(100, 500, 0, dup=(5, 6, 50, 99))
    rs = m.ReceiverStats(RATE)
    statuses = feed(rs, stream)
    assert statuses.count(m.DUPLICATE) == 4 and rs.duplicates == 4
    assert (rs.received, rs.expected, rs.cumulative_lost) == (99, 99, 0)
    # a late copy within the window is still recognised
    assert rs.update((500 + 40) & 0xFFFF, 40 * SAMPLES, 200.0, SAMPLES) == m.DUPLICATE
    # a copy of the probation packet (seen but not counted) is a duplicate too
    assert rs.update(500, 0, 200.1, SAMPLES) == m.DUPLICATE
    assert rs.duplicates == 6 and rs.received == 99


def test_reordering_is_counted_not_lost(m: ModuleType) -> None:
    stream = make_stream(100, 65500, 0, swap=(10, 30, 40, 70))  # crosses the wrap too
    rs = m.ReceiverStats(RATE)
    statuses = feed(rs, stream)
    assert rs.reordered == 4 and set(statuses[1:]) == {m.ACCEPTED}
    assert (rs.received, rs.expected, rs.cumulative_lost) == (99, 99, 0)
    assert (rs.received, rs.expected) == reference_a1([s & 0xFFFF for s, _, _ in stream])


def test_loss_reorder_and_duplication_together(m: ModuleType) -> None:
    rng = random.Random(11)
    n = 2000
    drop = tuple(i for i in range(2, n) if rng.random() < 0.05)
    dup = tuple(i for i in range(2, n) if i not in drop and rng.random() < 0.03)
    swap = tuple(sorted({i for i in range(3, n - 2, 7) if rng.random() < 0.3}))
    stream = make_stream(n, 12345, 777, drop=drop, dup=dup, swap=swap)
    rs = m.ReceiverStats(RATE)
    feed(rs, stream)
    highest = max(s for s, _, _ in stream)
    lost_truth = sum(1 for i in drop if 12345 + i <= highest)
    assert rs.expected == highest - 12346 + 1
    assert rs.cumulative_lost == lost_truth
    assert rs.duplicates == len(dup)
    unique = {s for s, _, _ in stream}
    assert rs.received == len(unique) - 1


def test_large_jump_is_bad_then_restarts(m: ModuleType) -> None:
    rs = m.ReceiverStats(RATE)
    feed(rs, make_stream(20, 100, 0))
    assert rs.received == 19
    assert rs.update(100 + 19 + 3000, 0, 1.0, 10) == m.BAD  # MAX_DROPOUT ahead: bad
    assert rs.received == 19
    assert rs.update(100 + 19 + 3001, 160, 1.02, 10) == m.RESTARTED  # the next in sequence: resync (A.1)
    assert rs.base_seq == 3120 and rs.received == 1 and rs.expected == 1
    assert rs.update(3121, 320, 1.04, 10) == m.ACCEPTED
    assert rs.update(3121 + 2999, 0, 1.06, 10) == m.ACCEPTED  # just inside MAX_DROPOUT: a loss
    assert rs.cumulative_lost == 2998


def test_misorder_limit(m: ModuleType) -> None:
    rs = m.ReceiverStats(RATE)
    feed(rs, make_stream(300, 0, 0, drop=(150, 199, 200)))
    assert rs.update(299 - 99, 0, 10.0, 1) == m.ACCEPTED  # 99 behind the highest: late, counted
    assert rs.reordered == 1
    assert rs.update(299 - 100, 0, 10.0, 1) == m.BAD  # MAX_MISORDER (100) behind: bad (A.1 uses <=)
    assert rs.update(150, 0, 10.0, 1) == m.BAD
    assert rs.cumulative_lost == 2


def test_probation_restarts_on_a_gap(m: ModuleType) -> None:
    rs = m.ReceiverStats(RATE)
    assert rs.update(10, 0, 0.0, 1) == m.PROBATION
    assert rs.update(20, 0, 0.02, 1) == m.PROBATION
    assert not rs.valid and rs.expected == 0 and rs.received == 0
    assert rs.update(21, 0, 0.04, 1) == m.ACCEPTED
    assert rs.valid and rs.base_seq == 21
    rs.reset()
    assert not rs.valid and rs.received == 0 and rs.duplicates == 0
    assert rs.update(65535, 0, 0.0, 1) == m.PROBATION and rs.update(0, 0, 0.02, 1) == m.ACCEPTED
    assert rs.extended_max_seq == 0 and rs.cycles == 0


def test_cumulative_lost_clamps_in_the_report(m: ModuleType) -> None:
    rs = m.ReceiverStats(RATE)
    feed(rs, make_stream(2, 0, 0))
    seq = 1
    for _ in range(3000):  # 2999 lost per step, 3000 steps: ~9 M lost > 2**23 - 1
        seq += 2999
        rs.update(seq & 0xFFFF, 0, 0.0, 0)
    assert rs.cumulative_lost > 0x7FFFFF
    assert rs.report_block(1).cumulative_lost == 0x7FFFFF


@pytest.mark.parametrize(
    "args, exc, message",
    [
        ((65536, 0, 0.0, 0), ValueError, "sequence_number must be in 0..65535, got 65536"),
        ((-1, 0, 0.0, 0), ValueError, "sequence_number must be in 0..65535, got -1"),
        ((0, 2**32, 0.0, 0), ValueError, "rtp_timestamp must be in 0..4294967295, got 4294967296"),
        ((0, 0, 0.0, -1), ValueError, "payload_octets must be in 0..65535, got -1"),
        ((0, 0, "1.0", 0), TypeError, "must be real number, not str"),
        ((1.5, 0, 0.0, 0), TypeError, "'float' object cannot be interpreted as an integer"),
    ],
)
def test_update_argument_errors(m: ModuleType, args: tuple, exc: type, message: str) -> None:
    rs = m.ReceiverStats(RATE)
    with pytest.raises(exc) as info:
        rs.update(*args)
    assert str(info.value) == message
    assert rs.received == 0 and not rs.valid


def test_constructor_and_report_errors(m: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"^clock_rate must be in 1..2147483647, got 0$"):
        m.ReceiverStats(0)
    rs = m.ReceiverStats(48000)
    assert rs.clock_rate == 48000
    with pytest.raises(ValueError, match=r"^lsr must be in 0..4294967295, got -1$"):
        rs.report_block(1, lsr=-1)


def test_sender_stats(m: ModuleType) -> None:
    ss = m.SenderStats()
    for _ in range(50):
        ss.on_sent(160)
    assert (ss.packet_count, ss.octet_count) == (50, 8000)
    ss.on_sent(2**32 - 8000)  # the 32-bit counts wrap (RFC 3550 §6.4.1 fields)
    assert (ss.packet_count, ss.octet_count) == (51, 0)
    with pytest.raises(ValueError, match=r"^payload_octets must be >= 0, got -5$"):
        ss.on_sent(-5)
    ss.reset()
    assert (ss.packet_count, ss.octet_count) == (0, 0)
    assert "packet_count=0" in repr(ss)


def test_both_implementations_agree_packet_by_packet() -> None:
    rng = random.Random(2024)
    impls = [_compat.module_for("_stats", i) for i in (IMPLS[0], "python")]
    objs = [mod.ReceiverStats(RATE) for mod in impls]
    seq, ts, t = 65000, 2**32 - 20000, 50.0
    for step in range(20000):
        r = rng.random()
        if r < 0.03:
            s = (seq - rng.randint(1, 120)) & 0xFFFF  # late / duplicate / too late
        elif r < 0.035:
            s = (seq + rng.randint(2900, 9000)) & 0xFFFF  # big jumps (bad, sometimes restart)
        else:
            seq = (seq + (2 if rng.random() < 0.05 else 1)) & 0xFFFF
            s = seq
        ts = (ts + SAMPLES) & 0xFFFFFFFF
        t += PTIME + rng.uniform(-0.004, 0.004)
        got = [o.update(s, ts, t, 160) for o in objs]
        assert got[0] == got[1], step
        if step % 997 == 0:
            b = [o.report_block(9) for o in objs]
            assert [getattr(b[0], f) for f in b[0]._fields] == [getattr(b[1], f) for f in b[1]._fields]
    fields = ["received", "expected", "cumulative_lost", "extended_max_seq", "duplicates", "reordered",
              "octets_received", "valid", "base_seq", "cycles"]
    assert [getattr(objs[0], f) for f in fields] == [getattr(objs[1], f) for f in fields]
    assert objs[0].jitter == pytest.approx(objs[1].jitter, rel=1e-12)


# -- found by the coverage-guided run of the compiled modules (tests/fuzz/atheris_compiled.py) -----------------

@pytest.mark.parametrize("arrival", [math.nan, math.inf, -math.inf])
def test_an_arrival_time_that_is_not_finite_is_refused(m: ModuleType, arrival: float) -> None:
    s = m.ReceiverStats(8000)
    for seq in range(4):
        s.update(seq, seq * 160, seq * 0.02, 160)
    before = (s.received, s.jitter, s.extended_max_seq)
    with pytest.raises(ValueError, match="finite"):
        s.update(4, 640, arrival, 160)
    assert (s.received, s.jitter, s.extended_max_seq) == before


def test_arrival_times_too_far_apart_for_a_double_leave_the_jitter_finite(m: ModuleType) -> None:
    """Finite arrivals whose difference times the clock rate overflows a double: the jitter estimate stays as it
    was (it used to become infinite, then NaN, and the compiled module cast it to an integer: undefined)."""
    s = m.ReceiverStats(8000)
    for seq, arrival in enumerate([0.0, 0.02, -1e308, 1e308, 1e308, -1e308]):
        s.update(seq, seq * 160, arrival, 160)
        assert math.isfinite(s.jitter)
    block = s.report_block(1)
    assert 0 <= block.jitter <= 0xFFFFFFFF


def test_payload_octets_beyond_one_datagram_are_refused(m: ModuleType) -> None:
    """The octet count is a 64-bit integer in the compiled module: an unbounded size overflowed it (and differed
    from the twin's unbounded int). One RTP payload never exceeds a datagram."""
    s = m.ReceiverStats(8000)
    for seq in range(4):
        s.update(seq, seq * 160, seq * 0.02, 0xFFFF)
    counted = s.octets_received
    assert counted > 0 and counted % 0xFFFF == 0
    with pytest.raises(ValueError, match="0..65535"):
        s.update(4, 640, 0.08, 0x10000)
    with pytest.raises(ValueError, match="0..65535"):
        s.update(4, 640, 0.08, (1 << 63) - 1)
    assert s.octets_received == counted
