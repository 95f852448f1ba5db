"""Lookahead concealment in the live playout: the receiver interpolates a gap towards the frame its jitter buffer
already holds, with exactly the algorithm of the offline ``conceal`` (no extra delay)."""

from __future__ import annotations

import asyncio
from typing import Callable, Dict, List, Optional, Set

import numpy as np
import pytest

from pyvoip_fast.codecs.plc import Concealer
from pyvoip_fast.codecs.plc_lookahead import LookaheadConcealer
from pyvoip_fast.media import MediaSession
from pyvoip_fast.media.jitter import JitterBuffer, TimeStretchJitterBuffer
from pyvoip_fast.media.playout import Playout
from pyvoip_fast.media.receiver import RtpReceiver
from pyvoip_fast.plc import conceal

RATE, FRAME = 8000, 160
TICK = FRAME / RATE


def voiced(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(130 + 25 * np.sin(2 * np.pi * 0.8 * t)) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 10)) * 5000 * (0.7 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return np.clip(np.rint(x + rng.normal(0, 50, len(t))), -32768, 32767).astype(np.int16)


class CountingDecoder:
    """Decodes raw int16 payloads and counts how often each payload was decoded."""

    def __init__(self) -> None:
        self.counts: Dict[bytes, int] = {}

    def __call__(self, payload: bytes) -> np.ndarray:
        self.counts[payload] = self.counts.get(payload, 0) + 1
        return np.frombuffer(payload, dtype=np.int16)


def play(x: np.ndarray, lost: Set[int], concealer: object, *, stretch: bool, delay: float = 0.015,
         decode: Optional[Callable[[bytes], np.ndarray]] = None) -> List[np.ndarray]:
    """Packets of ``x`` every 20 ms, arriving ``delay`` late (``lost`` ones never), through a jitter buffer pinned
    at 60 ms and a Playout ticking every 20 ms; the frames it plays."""
    frames = [x[i : i + FRAME].tobytes() for i in range(0, len(x) // FRAME * FRAME, FRAME)]
    cls = TimeStretchJitterBuffer if stretch else JitterBuffer
    jb = cls(min_delay=0.06, max_delay=0.06, initial_delay=0.06)
    po = Playout(jb, decode or CountingDecoder(), concealer, FRAME, RATE)
    out: List[np.ndarray] = []
    k, tick = 0, 0.003
    while tick < len(frames) * TICK + 0.5:
        while k < len(frames) and k * TICK + delay <= tick:
            if k not in lost:
                jb.put(k, k * FRAME, frames[k], k * TICK + delay, ssrc=1)
            k += 1
        o = po.tick(tick)
        if o is not None:
            out.append(o)
        tick += TICK
    return out


@pytest.mark.parametrize("look", [1, 2])
def test_the_live_playout_conceals_exactly_like_the_offline_function(look: int) -> None:
    """With the buffer holding the frames after each gap, the receiver's output is ``conceal(frames,
    lookahead_frames=L)`` sample for sample (delayed by the concealer's 3.75 ms)."""
    x = voiced(4.0, seed=1)
    rng = np.random.default_rng(2)
    count = len(x) // FRAME
    lost = {i for i in range(2, count - 3) if rng.random() < 0.12}
    lc = LookaheadConcealer(FRAME, RATE, look)
    played = np.concatenate(play(x, lost, lc, stretch=False))
    frames = [None if i in lost else x[i * FRAME : (i + 1) * FRAME] for i in range(count)]
    want = conceal(frames, lookahead_frames=look)
    d = lc.latency_samples
    assert np.array_equal(played[d : d + len(want) - FRAME], want[: len(want) - FRAME])
    assert lc.interpolated_frames >= len(lost) // 2
    # every loss concealed, and after the last packet the 60 ms the buffer waits before it calls the stream idle
    assert lc.concealed_frames == len(lost) + 3


def test_with_time_stretching_the_gaps_are_interpolated_too() -> None:
    x = voiced(4.0, seed=3)
    lost = {20, 50, 51, 90, 140}
    lc = LookaheadConcealer(FRAME, RATE, 1)
    out = play(x, lost, lc, stretch=True)
    assert all(len(o) == FRAME for o in out)
    # the first of the two-frame gap extrapolates (the next frame is not at hand yet); the stream's end adds three
    assert lc.concealed_frames == 5 + 3 and lc.interpolated_frames == 4


def test_a_payload_looked_at_ahead_is_decoded_once() -> None:
    """A stateful decoder (G.722) must see each payload once, in order: the frame decoded for a look ahead is
    reused when its slot comes."""
    x = voiced(2.0, seed=4)
    dec = CountingDecoder()
    lc = LookaheadConcealer(FRAME, RATE, 2)
    play(x, {10, 30, 31, 60}, lc, stretch=False, decode=dec)
    assert lc.interpolated_frames > 0
    assert max(dec.counts.values()) == 1 and len(dec.counts) == len(x) // FRAME - 4


class LoudConcealer(LookaheadConcealer):
    """A subclass whose ``conceal`` changes what is played (the compiled playout must call it, not skip it)."""

    def conceal(self, frame: Optional[np.ndarray], ahead: object = ()) -> np.ndarray:
        out: np.ndarray = super().conceal(frame, ahead)
        return out // 2


def test_a_concealer_whose_conceal_is_replaced_is_still_called() -> None:
    """The playout calls the compiled concealer's common frame directly only when ``conceal`` is the compiled
    one: a subclass's override, or one set on the instance, sees every frame."""
    x = voiced(1.0, seed=7)
    plain = np.concatenate(play(x, set(), LookaheadConcealer(FRAME, RATE, 1), stretch=False))
    halved = np.concatenate(play(x, set(), LoudConcealer(FRAME, RATE, 1), stretch=False))
    assert np.array_equal(halved, plain // 2) and np.any(plain)
    seen: List[int] = []
    lc = LookaheadConcealer(FRAME, RATE, 1)
    inner = lc.conceal

    def counting(frame: Optional[np.ndarray], ahead: object = ()) -> np.ndarray:
        seen.append(1)
        out: np.ndarray = inner(frame, ahead)
        return out

    lc.conceal = counting  # type: ignore[method-assign]
    out = play(x, set(), lc, stretch=False)
    assert len(seen) == len(out) > 40


def test_lookahead_makes_a_gap_closer_to_the_original_than_extrapolation() -> None:
    x = voiced(4.0, seed=5)
    rng = np.random.default_rng(6)
    lost = {i for i in range(3, 190) if rng.random() < 0.1}
    errors = []
    for c in (Concealer(FRAME, RATE), LookaheadConcealer(FRAME, RATE, 1)):
        y = np.concatenate(play(x, lost, c, stretch=False))[30 : 30 + len(x)].astype(np.float64)
        errors.append(float(np.sum((y - x[: len(y)]) ** 2)))
    assert errors[1] < 0.7 * errors[0], errors


def test_the_receiver_picks_its_concealer_from_plc_lookahead() -> None:
    from pyvoip_fast import codecs

    def receiver(look: int) -> RtpReceiver:
        r = RtpReceiver((0.02, 0.5, 0.06), on_latched=lambda: None, on_new_source=lambda: None,
                        on_dtmf=lambda d: None, plc_lookahead=look)
        r.configure(codecs.PCMU, 0, 20, None)
        r.new_stream()
        return r

    assert type(receiver(0).concealer) is Concealer
    two = receiver(2).concealer
    assert isinstance(two, LookaheadConcealer) and two.lookahead_frames == 2
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="plc_lookahead"):
            receiver(bad)  # type: ignore[arg-type]


def test_a_media_session_takes_plc_lookahead() -> None:
    async def main() -> None:
        default = await MediaSession.create("127.0.0.1")
        off = await MediaSession.create("127.0.0.1", plc_lookahead=0)
        try:
            assert default._receiver.plc_lookahead == 1 and off._receiver.plc_lookahead == 0
        finally:
            await default.stop()
            await off.stop()

    asyncio.run(main())
