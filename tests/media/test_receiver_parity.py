"""The receiver's compiled common packet (``media._receiver.ReceiverCore``) against the whole Python receive path.

The compiled base reads a plain RTP header in place and takes the packet without building an ``RtpPacket``; its
twin sends every datagram to ``RtpReceiver._on_datagram_rest``, the whole path, which is what a datagram means.
Each example drives one receiver of each with the same datagrams (hypothesis): a stream with loss, duplicates,
reordering, marker bits, SSRC changes, a payload type the peer switched to, telephone-events, packets with CSRCs,
padding or an extension, garbage, datagrams as bytearrays, strangers and a peer that moves, with pauses in receiving
and playout ticks in between. Every answer, every counter, the statistics, the jitter buffer's state and every frame
played must be the same.
"""

from __future__ import annotations

import math
import struct
from typing import Any, List, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast import _compat, codecs, rtp
from pyvoip_fast.media import _receiver_py
from pyvoip_fast.media.receiver import RtpReceiver

pytestmark = pytest.mark.skipif(_compat.NO_EXTENSIONS or "_receiver" in _compat.MISSING_EXTENSIONS,
                                reason="the compiled modules are off")

PEER = ("127.0.0.1", 40000)
MOVED = ("127.0.0.1", 40002)
STRANGER = ("127.0.0.1", 41000)


def _twin_class() -> Any:
    """``RtpReceiver`` on the twin base: every datagram takes the whole Python path."""
    slots = set(RtpReceiver.__slots__)
    body = {k: v for k, v in RtpReceiver.__dict__.items() if k not in slots and k not in ("__dict__", "__weakref__")}
    return type("TwinRtpReceiver", (_receiver_py.ReceiverCore,), body)


class _Counting(RtpReceiver):
    """The compiled receiver, counting the datagrams that took the Python path."""

    __slots__ = ("rest",)

    def _on_datagram_rest(self, data: Any, addr: Any, now: float) -> bool:
        self.rest += 1
        return super()._on_datagram_rest(data, addr, now)


def _receiver(cls: Any, digits: List[str]) -> Any:
    r = cls((0.02, 0.3, 0.04), on_latched=lambda: None, on_new_source=lambda: None, on_dtmf=digits.append)
    r.configure(codecs.PCMU, 0, 20, 101)
    r.set_remote(PEER, initial=True)
    r.new_stream()
    r.receiving = True
    return r


def _state(r: Any) -> Tuple[Any, ...]:
    rx = r.rx
    stats = None if rx is None else (rx.expected, rx.cumulative_lost, rx.duplicates, rx.reordered, rx.jitter,
                                     rx.received, rx.extended_max_seq, rx.cycles)
    jb = r.jb
    return (r.packets, r.octets, r.invalid, r.probation, r.remote_rtp, r.remote_ssrc, r._rx_pt, r.last_rtp_heard,
            r._latched, r.frames_played, r.totals(), stats, jb.stats.as_dict(), jb.depth, jb.delay, jb.ssrc)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _datagram(kind: int, pt: int, seq: int, ts: int, ssrc: int, marker: bool, body: bytes) -> Any:
    plain = rtp.build_packet(pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, body, marker)
    if kind == 0 or kind > 6:
        return bytes(plain)
    if kind == 1:  # a CSRC
        return bytes([0x81, plain[1]]) + bytes(plain[2:12]) + struct.pack("!I", 7) + bytes(plain[12:])
    if kind == 2:  # padding
        return bytes([0xA0]) + bytes(plain[1:]) + b"\0\0\3"
    if kind == 3:  # an extension
        return bytes([0x90]) + bytes(plain[1:12]) + b"\xbe\xde\0\1\x10\xaa\0\0" + bytes(plain[12:])
    if kind == 4:  # not RTP
        return body[:11] if len(body) % 2 else b"\x40" + bytes(plain[1:])
    if kind == 5:  # bytes of another type
        return bytearray(plain)
    return memoryview(bytes(plain))


event = st.tuples(
    st.integers(0, 40),  # 0-29 the stream's next packet, 30-31 a stranger, 32 the peer moved, 33 pause, 34-40 tick
    st.integers(0, 16),  # datagram kind: 7 and up plain bytes, the common case
    st.sampled_from([-2, -1, 0, 2, 3] + [1] * 10),  # sequence step: mostly the next, sometimes a duplicate, a loss
    st.integers(0, 9),  # payload type: mostly PCMU, sometimes PCMA, telephone-event, unknown
    st.integers(0, 12),  # SSRC: mostly the stream's, sometimes a new one
    st.booleans(),  # marker
    st.integers(0, 200),  # payload length
)


@settings(max_examples=120, deadline=None)
@given(events=st.lists(event, min_size=1, max_size=150), seed=st.integers(0, 2**16))
def test_the_compiled_common_packet_is_the_python_path(events: List[Tuple[int, ...]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    digits_a: List[str] = []
    digits_b: List[str] = []
    a, b = _receiver(_Counting, digits_a), _receiver(_twin_class(), digits_b)
    a.rest = 0
    assert "pyvoip_fast.media._receiver" in {c.__module__ for c in type(a).__mro__}
    seq, ts, ssrc, now, source = 1000, 5000, 0x1234, 10.0, PEER
    for what, kind, step, ptc, ssrcc, marker, length in events:
        now += 0.02
        if what >= 34:
            outs = []
            for r in (a, b):
                got: List[Any] = []
                r.sink = type("Sink", (), {"write": lambda self, x, got=got: got.append(x.tobytes())})()
                r.playout(now + 0.003)
                outs.append(got)
            assert outs[0] == outs[1]
            continue
        if what == 33:
            a.receiving = b.receiving = not a.receiving
            continue
        if what == 32:
            source = MOVED
        seq += step
        ts += 160 * step
        if ssrcc == 0:
            ssrc = int(rng.integers(0, 2**32))
        pt = 8 if ptc == 7 else 101 if ptc == 8 else 96 if ptc == 9 else 0
        body = bytes(rng.integers(0, 256, length, dtype=np.uint8)) if pt != 101 else bytes([5, 0x80 if marker else 0,
                                                                                         0, 160])
        data = _datagram(kind, pt, seq, ts, ssrc, marker, body)
        addr = STRANGER if what in (30, 31) else source
        ra, rb = a.on_datagram(data, addr, now), b.on_datagram(data, addr, now)
        assert ra is rb
        assert _same(_state(a), _state(b)), (what, kind, pt)
    assert digits_a == digits_b
    handled = sum(1 for e in events if e[0] <= 32)
    assert a.rest <= handled  # (the compiled base took the others; the next test shows it takes the common ones)


def test_the_common_packet_is_taken_compiled() -> None:
    """Once latched, a plain packet of the stream never reaches the Python path (which a subclass can count)."""
    r = _receiver(_Counting, [])
    r.rest = 0
    for i in range(50):
        assert r.on_datagram(bytes(rtp.build_packet(0, i, 160 * i, 0x99, bytes(160), i == 0)), PEER, 1.0 + 0.02 * i)
    assert r.rest == 1  # the first packet: a new SSRC
    assert r.packets == 50 and r.octets == 50 * 160 and r.jb.stats.as_dict()["received"] == 50
    assert r.on_datagram(b"\x80\x00", PEER, 3.0) is False and r.invalid == 1 and r.rest == 2


@pytest.mark.parametrize("length, now", [(65535, 3.0), (65536, 3.0), (70000, 3.0), (160, math.inf),
                                         (160, math.nan)])
def test_edge_packets_meet_the_same_answer_as_the_python_path(length: int, now: float) -> None:
    """A payload the statistics cannot count (over 65,535 bytes) and an arrival time that is not finite, in the
    stream once it is latched: the compiled receiver and the Python path answer alike, a value or the same error."""
    outcomes = []
    for cls in (_Counting, _twin_class()):
        r = _receiver(cls, [])
        if cls is _Counting:
            r.rest = 0
        for i in range(3):
            r.on_datagram(bytes(rtp.build_packet(0, i, 160 * i, 0x99, bytes(160))), PEER, 1.0 + 0.02 * i)
        try:
            got: Any = r.on_datagram(bytes(rtp.build_packet(0, 3, 480, 0x99, bytes(length))), PEER, now)
        except ValueError as exc:
            got = ("ValueError", str(exc))
        outcomes.append((got, _state(r)))
    assert _same(outcomes[0], outcomes[1]), outcomes
