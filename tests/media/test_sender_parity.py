"""The sender's compiled common slot (``media._sender.SenderCore``) against the whole Python slot.

The compiled base writes the header of the common slot in place and sends it; its twin sends every slot to
``RtpSender._send_slot_rest``, the whole Python slot, which is what a slot means. Each example drives one sender
of each with the same slots (hypothesis): in order, late (skipped slots), repeated, with DTMF digits queued, a
transmit that sometimes refuses, a source that ends, fails or (live) has nothing to say, a payload-type and
codec change, a rebase and an encoder that gives a bytearray. Every datagram sent and every field must be the same.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Iterator, List, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast import _compat, codecs
from pyvoip_fast.media import _sender_py
from pyvoip_fast.media.sender import RtpSender

pytestmark = pytest.mark.skipif(_compat.NO_EXTENSIONS or "_sender" in _compat.MISSING_EXTENSIONS,
                                reason="the compiled modules are off")


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


class _Source:
    """A file-like source: ``frames`` frames, then the end (or a failure, or, live, nothing to say)."""

    def __init__(self, frames: int, mode: int, rate: int = 8000) -> None:
        self.pcm = (np.sin(np.arange(frames * 160) / 7.0) * 8000).astype(np.int16)
        self.pos, self.eof, self.mode = 0, False, mode
        self.live = mode == 2

    def read(self, n: int) -> Any:
        if self.pos >= len(self.pcm):
            if self.mode == 1:
                raise OSError("disk gone")
            return self.pcm[:0]
        out = self.pcm[self.pos:self.pos + n]
        self.pos += n
        self.eof = self.mode == 0 and self.pos >= len(self.pcm)
        return out


class _OddEncoder:
    """An encoder that gives a bytearray (the compiled slot hands those to the Python send)."""

    def encode(self, pcm: Any) -> bytearray:
        return bytearray(np.asarray(pcm, dtype=np.int16).tobytes()[:40])


def _twin_class() -> Any:
    body = {k: v for k, v in RtpSender.__dict__.items() if k not in ("__dict__", "__weakref__")}
    return type("TwinRtpSender", (_sender_py.SenderCore,), body)


def _state(s: Any) -> Tuple[Any, ...]:
    return (s._seq, s._ts0, s._last_sent_n, s.marker_next, s.we_sent, s.sent_audio, s.first_sent_at, s.last_sent_at,
            s.skipped, s.stats.packet_count, s.stats.octet_count, s.source_done.done(), s.payload_type,
            s.frame_timestamps, None if s.dtmf is None else s.dtmf.busy)


step = st.tuples(
    st.integers(0, 30),  # 0-19 the next slot, 20-21 a late one, 22 repeated, 23 digits, 24 refuse, 25 new source,
    # 26 codec change, 27 rebase, 28 odd encoder, 29 skip report, 30 no source
    st.integers(1, 5),  # how late / which source mode / which digits
)


@settings(max_examples=120, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=120), seed=st.integers(0, 2**32 - 1))
def test_the_compiled_common_slot_is_the_python_slot(loop: asyncio.AbstractEventLoop,
                                                      steps: List[Tuple[int, int]], seed: int) -> None:
    sent: List[List[bytes]] = [[], []]
    refuse = [False]
    clock = [100.0]

    def transmit_to(k: int) -> Any:
        def transmit(buf: Any) -> bool:
            sent[k].append(bytes(buf))
            return not refuse[0]
        return transmit

    senders = []
    for k, cls in enumerate((RtpSender, _twin_class())):
        s = cls(0x1234ABCD, random.Random(seed), transmit_to(k), loop)
        s._now = lambda: clock[0]
        s.configure(codecs.PCMU, 0, 20, 101)
        s.set_source(_Source(40, 0))
        s.start(0.0)
        senders.append(s)
    a, b = senders
    n = 0
    for what, arg in steps:
        clock[0] += 0.02
        refuse[0] = False
        for s in senders:
            if what == 23:
                s.queue_dtmf("159#"[: arg % 4 + 1])
            elif what == 25:
                s.set_source(_Source(arg * 3, arg % 3))
            elif what == 26:
                s.configure(codecs.PCMA if arg % 2 else codecs.PCMU, 8 if arg % 2 else 0, 20, None if arg == 5 else 101)
            elif what == 27:
                s.rebase(n, n * 0.02, s.frame_timestamps, clock[0])
            elif what == 28:
                s._encoder = _OddEncoder()
            elif what == 29:
                s.on_skip(arg)
            elif what == 30:
                s.set_source(None)
        if what in (23, 25, 26, 28, 29, 30):
            continue
        if what == 27:
            n = 0
            continue
        n += arg if what in (20, 21) else 0 if what == 22 else 1
        refuse[0] = what == 24
        for s in senders:
            s.send_slot(n)
        assert sent[0] == sent[1], (what, n)
        assert _state(a) == _state(b), (what, n)
    assert sent[0] == sent[1]


def test_the_common_slot_is_sent_compiled(loop: asyncio.AbstractEventLoop) -> None:
    """A plain slot never reaches the Python slot (a subclass counts), and the packets are right."""

    class Counting(RtpSender):
        rest = 0

        def _send_slot_rest(self, n: int) -> None:
            self.rest += 1
            super()._send_slot_rest(n)

    out: List[bytes] = []
    s = Counting(0x99, random.Random(1), lambda buf: out.append(bytes(buf)) is None, loop)
    s.configure(codecs.PCMU, 0, 20, None)
    s.set_source(_Source(10, 0))
    for n in range(12):
        s.send_slot(n)
    assert s.rest == 2 and len(out) == 10  # the two slots after the source ended
    for i, pkt in enumerate(out):
        assert pkt[0] == 0x80 and (pkt[1] & 0x7F) == 0 and bool(pkt[1] & 0x80) == (i == 0)
        assert int.from_bytes(pkt[2:4], "big") == (s._seq - 10 + i) & 0xFFFF
        assert int.from_bytes(pkt[4:8], "big") == (s._ts0 + 160 * i) & 0xFFFFFFFF
        assert int.from_bytes(pkt[8:12], "big") == 0x99 and len(pkt) == 172
    assert s.stats.packet_count == 10 and s.source_done.done() and s.sent_audio


clip_case = st.tuples(
    st.integers(0, 7 * 160 + 3),  # clip length in samples: empty, short, whole frames, a partial last frame
    st.sampled_from(["PCMU", "PCMA", "odd"]),  # the encoder (odd: not G.711, the Python read and encode)
    st.sampled_from(["plain", "readonly", "strided"]),  # the array: as cached (read-only), writable, not contiguous
    st.lists(st.integers(0, 3), min_size=1, max_size=12),  # slot steps (0: repeated)
    st.integers(0, 8 * 160),  # where the clip starts playing (a seek before the first slot)
)


@settings(max_examples=150, deadline=None)
@given(case=clip_case, seed=st.integers(0, 2**32 - 1))
def test_a_clip_frame_encoded_in_place_is_the_python_read(loop: asyncio.AbstractEventLoop,
                                                           case: Tuple[Any, ...], seed: int) -> None:
    """A cached clip (``audio.clips.ClipSource``) with PCMU or PCMA: the compiled slot reads each whole frame from
    the clip's array in place and encodes it into the packet; the twin reads and encodes it in Python. Packets, the
    senders' fields and the clips' positions must be the same, up to and past the clip's padded last frame."""
    from pyvoip_fast.audio.clips import ClipSource

    length, enc, layout, steps, start = case
    rng = np.random.default_rng(seed % 2**32)
    base = rng.integers(-32768, 32768, 2 * length + 1).astype(np.int16)
    samples = base[: 2 * length : 2] if layout == "strided" else base[:length].copy()
    if layout == "readonly":
        samples.flags.writeable = False
    sent: List[List[bytes]] = [[], []]
    senders, clips = [], []
    for k, cls in enumerate((RtpSender, _twin_class())):
        s = cls(0x0BADCAFE, random.Random(seed), lambda buf, k=k: sent[k].append(bytes(buf)) is None, loop)
        s._now = lambda: 1.0
        s.configure(codecs.PCMA if enc == "PCMA" else codecs.PCMU, 8 if enc == "PCMA" else 0, 20, None)
        if enc == "odd":
            s._encoder = _OddEncoder()
        clip = ClipSource(samples)
        clip._pos = min(start, length)
        s.set_source(clip)
        s.start(0.0)
        senders.append(s)
        clips.append(clip)
    n = 0
    for step in steps:
        n += step
        for s in senders:
            s.send_slot(n)
        assert sent[0] == sent[1]
        assert _state(senders[0]) == _state(senders[1])
        assert (clips[0]._pos, clips[0].eof) == (clips[1]._pos, clips[1].eof)


def test_a_clip_is_read_in_place(loop: asyncio.AbstractEventLoop) -> None:
    """The whole frames of a clip never reach the Python read (a subclass counts); the padded last frame does."""
    from pyvoip_fast.audio.clips import ClipSource

    class Counting(RtpSender):
        reads = 0

        def _read_source(self) -> Any:
            self.reads += 1
            return super()._read_source()

    pcm = (np.sin(np.arange(10 * 160 + 40) / 3.0) * 12000).astype(np.int16)
    pcm.flags.writeable = False
    out: List[bytes] = []
    s = Counting(0x99, random.Random(1), lambda buf: out.append(bytes(buf)) is None, loop)
    s.configure(codecs.PCMU, 0, 20, None)
    s.set_source(ClipSource(pcm))
    for n in range(13):
        s.send_slot(n)
    assert s.reads == 1 and len(out) == 11 and s.source_done.done()
    assert b"".join(p[12:] for p in out) == codecs.g711.ulaw_encode(np.concatenate([pcm, np.zeros(120, np.int16)]))


class _Peer:
    """What the tick reads of the session's receiver: the peer's RTP address."""

    def __init__(self) -> None:
        self.remote_rtp: Any = ("127.0.0.1", 40000)


def test_the_tick_sends_only_what_the_session_allows(loop: asyncio.AbstractEventLoop) -> None:
    """The media tick's send stage (``tick``): a slot leaves only while the direction sends, the peer's address is
    known and proven, and there is audio or a digit to send; compiled and twin alike."""
    from pyvoip_fast.media.liveness import AddressProof

    def attempt(cls: Any, change: Any) -> Tuple[int, int]:
        sent: List[bytes] = []
        s = cls(0x1234ABCD, random.Random(7), lambda buf: sent.append(bytes(buf)) or True, loop)
        s.configure(codecs.PCMU, 0, 20, 101)
        s.set_source(_Source(40, 0))
        s.start(0.0)
        s.sending, s.remote_of, s.proof = True, _Peer(), AddressProof()
        change(s)
        s.tick(1, 0.02)
        return len(sent), (sent[0][1] & 0x7F) if sent else -1

    def unproven(s: Any) -> None:
        s.proof.reset(False)

    def heard(s: Any) -> None:
        s.proof.reset(False)
        s.proof.heard(("127.0.0.1", 40000))

    def digit_only(s: Any) -> None:
        s.set_source(None)
        s.queue_dtmf("5")

    cases = [
        (lambda s: None, (1, 0)),
        (lambda s: setattr(s, "sending", False), (0, -1)),  # recvonly or inactive
        (lambda s: setattr(s, "remote_of", None), (0, -1)),
        (lambda s: setattr(s.remote_of, "remote_rtp", None), (0, -1)),  # no address yet
        (lambda s: s.set_source(None), (0, -1)),  # nothing to say
        (digit_only, (1, 101)),  # a digit goes out without audio
        (unproven, (0, -1)),  # an answerer before the ACK: the address is not proven
        (heard, (1, 0)),  # ... until the peer was heard from it
        (lambda s: setattr(s, "proof", None), (1, 0)),  # no proof given: no address check
    ]
    for k, (change, want) in enumerate(cases):
        assert attempt(RtpSender, change) == want == attempt(_twin_class(), change), k
