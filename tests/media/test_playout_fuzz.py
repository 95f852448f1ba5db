"""Whatever a peer sends, in any order and timing, the playout gives a frame or nothing at each tick: no exception."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.codecs.plc_lookahead import LookaheadConcealer
from pyvoip_fast.media.jitter import TimeStretchJitterBuffer
from pyvoip_fast.media.playout import Playout

FRAME, RATE = 160, 8000

packets = st.lists(
    st.tuples(
        st.integers(0, 0xFFFF),  # sequence number
        st.integers(0, 0xFFFFFFFF),  # timestamp
        st.integers(0, 3),  # payload kind: silence, loud, noise, wrong length
        st.floats(0.0, 0.3),  # extra delay, s
        st.integers(0, 2),  # ssrc
    ),
    max_size=120,
)


def decode(payload: bytes) -> np.ndarray:
    """Like the receiver's: any payload becomes exactly one frame (padded or cut)."""
    pcm = np.frombuffer(payload[: len(payload) // 2 * 2], dtype=np.int16)
    out = np.zeros(FRAME, dtype=np.int16)
    out[: min(FRAME, len(pcm))] = pcm[:FRAME]
    return out


@settings(max_examples=200, deadline=None)
@given(stream=packets, sequential=st.booleans(), look=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_any_packet_stream_plays_whole_frames_or_nothing(stream, sequential, look, seed) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    jb = TimeStretchJitterBuffer(min_delay=0.02, max_delay=0.3, initial_delay=0.06)
    po = Playout(jb, decode, LookaheadConcealer(FRAME, RATE, look), FRAME, RATE)
    events = []
    for i, (seq, ts, kind, extra, ssrc) in enumerate(stream):
        if sequential:  # a real stream with jitter, losses and a few oddities
            seq, ts = (1000 + i) & 0xFFFF, (5000 + i * FRAME) & 0xFFFFFFFF
        if kind == 0:
            payload = bytes(2 * FRAME)
        elif kind == 1:
            payload = (9000 * np.sin(np.arange(FRAME) * 0.3 + i)).astype(np.int16).tobytes()
        elif kind == 2:
            payload = rng.integers(-32768, 32768, FRAME).astype(np.int16).tobytes()
        else:
            payload = bytes(rng.integers(0, 256, int(rng.integers(0, 500)), dtype=np.uint8))
        events.append((i * 0.02 + extra, seq, ts, payload, ssrc))
    events.sort(key=lambda e: e[0])
    k, tick = 0, 0.013
    end = (events[-1][0] if events else 0.0) + 1.0
    while tick < end:
        while k < len(events) and events[k][0] <= tick:
            at, seq, ts, payload, ssrc = events[k]
            jb.put(seq, ts, payload, at, ssrc=ssrc)
            k += 1
        out = po.tick(tick)
        assert out is None or (len(out) == FRAME and out.dtype == np.int16)
        tick += 0.02
