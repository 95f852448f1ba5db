"""RFC 4733 telephone-events: payload encoding, the sender's packet schedule and the receiver's de-duplication."""

from __future__ import annotations

import random
from typing import List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyvoip_fast.media.dtmf import DIGITS, DtmfReceiver, DtmfSender, decode_event, encode_event
from pyvoip_fast.errors import ParseError


def test_encode_exact_bytes() -> None:
    # event 1, E=1, R=0, volume 10, duration 800 -> 01 8a 03 20
    assert encode_event(1, True, 10, 800) == b"\x01\x8a\x03\x20"
    assert encode_event(11, False, 63, 0) == b"\x0b\x3f\x00\x00"
    assert encode_event(255, False, 0, 65535) == b"\xff\x00\xff\xff"


@given(st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 65535))
def test_round_trip(event: int, end: bool, volume: int, duration: int) -> None:
    p = decode_event(encode_event(event, end, volume, duration))
    assert (p.event, p.end, p.volume, p.duration) == (event, end, volume, duration)
    assert p.digit == (DIGITS[event] if event < 16 else None)


def test_reserved_bit_ignored_on_receipt() -> None:
    p = decode_event(b"\x05\xca\x00\xa0")  # E=1, R=1, volume 10
    assert (p.event, p.end, p.volume, p.duration, p.digit) == (5, True, 10, 160, "5")


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"])
def test_decode_bad_length(data: bytes) -> None:
    with pytest.raises(ParseError, match=f"must be 4 bytes, got {len(data)}"):
        decode_event(data)


@pytest.mark.parametrize(
    "args", [(256, False, 0, 0), (-1, False, 0, 0), (1, False, 64, 0), (1, False, 0, 65536), (1, False, 0, -1)]
)
def test_encode_bad_fields(args: Tuple[int, bool, int, int]) -> None:
    with pytest.raises(ValueError):
        encode_event(*args)


def _drive(sender: DtmfSender, ticks: int, ts0: int = 1000) -> List[Optional[Tuple[bytes, bool, int]]]:
    return [sender.next_packet((ts0 + 160 * i) & 0xFFFFFFFF) for i in range(ticks)]


def test_sender_schedule_for_one_digit() -> None:
    s = DtmfSender(duration_ms=100, pause_ms=60, volume=10)
    assert not s.active and s.next_packet(0) is None
    s.queue("7")
    out = _drive(s, 12)
    pkts = [p for p in out[:7]]
    assert all(p is not None for p in pkts)
    decoded = [decode_event(p[0]) for p in pkts if p]
    # all packets carry the event's start timestamp; only the first has the marker
    assert [p[2] for p in pkts if p] == [1000] * 7
    assert [p[1] for p in pkts if p] == [True] + [False] * 6
    assert [d.duration for d in decoded] == [160, 320, 480, 640, 800, 800, 800]
    assert [d.end for d in decoded] == [False] * 4 + [True] * 3
    assert {d.event for d in decoded} == {7} and {d.volume for d in decoded} == {10}
    assert out[7:] == [None] * 5
    assert not s.active and not s.busy


def test_sender_pauses_between_digits_and_keeps_order() -> None:
    s = DtmfSender(duration_ms=60, pause_ms=40)
    s.queue("1#a")
    out = _drive(s, 40)
    starts = [(i, decode_event(p[0]).digit) for i, p in enumerate(out) if p and p[1]]
    assert [d for _, d in starts] == ["1", "#", "A"]
    # 3 tone packets + 2 end repeats, then 2 ticks (40 ms) of audio before the next digit
    assert [i for i, _ in starts] == [0, 7, 14]
    assert out[5] is None and out[6] is None
    # each event's packets share the timestamp of the tick where it started
    assert out[7] is not None and out[7][2] == 1000 + 7 * 160


def test_sender_timestamp_wraps() -> None:
    s = DtmfSender()
    s.queue("0")
    p = s.next_packet(0xFFFFFFF0)
    assert p is not None and p[2] == 0xFFFFFFF0


def test_sender_rejects_bad_digits_and_args() -> None:
    s = DtmfSender()
    with pytest.raises(ValueError, match="not a DTMF digit"):
        s.queue("12x")
    assert s.pending == 0  # nothing queued on error
    with pytest.raises(ValueError):
        DtmfSender(volume=64)
    with pytest.raises(ValueError):
        DtmfSender(duration_ms=9000)
    with pytest.raises(ValueError):
        DtmfSender(pause_ms=-1)


def test_receiver_reports_each_press_once_with_duration() -> None:
    s = DtmfSender(duration_ms=100, pause_ms=60)
    s.queue("159#")
    r = DtmfReceiver()
    got = []
    for p in _drive(s, 60):
        if p is None:
            continue
        for _ in range(2):  # every packet duplicated by the network
            d = r.feed(p[2], p[0], p[1])
            if d:
                got.append(d)
    assert got == ["1", "5", "9", "#"]
    assert r.digits == "159#"
    assert r.events == [("1", 100.0), ("5", 100.0), ("9", 100.0), ("#", 100.0)]


def test_receiver_reordered_and_lost_end_packets() -> None:
    s = DtmfSender(duration_ms=100, pause_ms=60)
    s.queue("23")
    pkts = [p for p in _drive(s, 40) if p]
    rnd = random.Random(4)
    first, second = pkts[:7], pkts[7:]
    first = first[:4]  # every end packet of "2" lost
    rnd.shuffle(second)  # "3" arrives shuffled
    r = DtmfReceiver()
    got = [d for p in first + second if (d := r.feed(p[2], p[0], p[1]))]
    assert got == ["2", "3"]
    r.flush()
    assert r.events == [("2", 80.0), ("3", 100.0)]


def test_receiver_ignores_non_dtmf_and_malformed() -> None:
    r = DtmfReceiver()
    assert r.feed(1, encode_event(16, False, 0, 160)) is None  # flash
    assert r.feed(1, b"\x01\x02") is None
    assert r.feed(1, b"") is None
    assert r.malformed == 2
    assert r.digits == ""
    # a straggler of a finished event does not re-trigger it
    assert r.feed(500, encode_event(4, True, 10, 800), True) == "4"
    assert r.feed(500, encode_event(4, False, 10, 160), True) is None
    assert r.digits == "4"
