"""Playout (``pyvoip_fast.media.playout``): one frame per tick, time-stretching driven by the jitter buffer."""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import numpy as np
import pytest

from pyvoip_fast import codecs
from pyvoip_fast.media.jitter import JitterBuffer, TimeStretchJitterBuffer
from pyvoip_fast.media.playout import Playout
from pyvoip_fast.media.receiver import RtpReceiver

RATE = 8000
FRAME = 160
TICK = FRAME / RATE


class PassThrough:
    """A concealer that changes nothing: a good frame comes out as is, a lost one is silence."""

    latency_samples = 0

    def __init__(self) -> None:
        self.lost_calls = 0
        self.good_calls = 0
        self.lost_at: List[int] = []  # good frames played before each loss

    def good(self, frame: np.ndarray) -> np.ndarray:
        self.good_calls += 1
        return frame

    def lost(self) -> np.ndarray:
        self.lost_calls += 1
        self.lost_at.append(self.good_calls)
        return np.zeros(FRAME, dtype=np.int16)

    def lost_inside(self) -> int:
        """Losses concealed between two real frames (not the tail after the stream ended)."""
        return sum(1 for g in self.lost_at if g < self.good_calls)


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonic 'syllables' (gliding pitch about 150 Hz) of 250-350 ms with 60-150 ms pauses, a little noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = 150 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = np.zeros(n)
    pos = 400
    while pos < n:
        length = int(rng.uniform(0.25, 0.35) * RATE)
        env[pos : pos + length] = np.sin(np.pi * np.arange(min(length, n - pos)) / length)
        pos += length + int(rng.uniform(0.06, 0.15) * RATE)
    x = 6000 * voiced * env + rng.normal(0, 20, n)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def decode(payload: bytes) -> np.ndarray:
    return np.frombuffer(payload, dtype=np.int16)


def run(
    x: np.ndarray,
    delay_of: Callable[[int], float],
    *,
    stretch: bool = True,
    phase: float = 0.007,
    tail: float = 0.6,
    initial_delay: float = 0.06,
    concealer: Optional[PassThrough] = None,
) -> Tuple[Playout, List[Optional[np.ndarray]], List[Tuple[float, Optional[float], float]]]:
    """Packets of ``x`` sent every 20 ms, each delayed by ``delay_of(i)``; playout ticks every 20 ms from ``phase``.
    Returns the playout, each tick's output and (tick, measured delay, target) per tick."""
    frames = [x[i : i + FRAME].tobytes() for i in range(0, len(x) // FRAME * FRAME, FRAME)]
    arrivals = [i * TICK + delay_of(i) for i in range(len(frames))]
    order = sorted(range(len(frames)), key=lambda i: arrivals[i])
    jb = (TimeStretchJitterBuffer if stretch else JitterBuffer)(min_delay=0.02, max_delay=0.5,
                                                                          initial_delay=initial_delay)
    po = Playout(jb, decode, concealer or PassThrough(), FRAME, RATE)
    outs: List[Optional[np.ndarray]] = []
    trace: List[Tuple[float, Optional[float], float]] = []
    k = 0
    tick = phase
    end = max(arrivals) + tail
    while tick < end:
        while k < len(order) and arrivals[order[k]] <= tick:
            i = order[k]
            jb.put(i, i * FRAME, frames[i], arrivals[i], ssrc=7)
            k += 1
        out = po.tick(tick)
        outs.append(out)
        trace.append((tick, jb.current_delay, jb.delay))
        tick += TICK
    return po, outs, trace


def test_a_steady_stream_plays_every_frame_once_bit_exact_without_stretching() -> None:
    x = speechlike(3.0)
    po, outs, _ = run(x, lambda i: 0.015, initial_delay=0.02)  # starts at its target: nothing to adapt
    played = np.concatenate([o for o in outs if o is not None])
    assert all(o is None or len(o) == FRAME for o in outs)
    start = int(np.flatnonzero(played)[0]) - int(np.flatnonzero(x)[0])
    assert start == 0  # nothing is cut from the start either
    assert np.array_equal(played[: len(x)], x)  # no frame dropped, inserted or altered
    assert po.jb.stats.stretched == po.jb.stats.shrunk == 0 and po.jb.stats.late == 0


def test_under_uniform_0_to_60_ms_delay_few_packets_are_late_and_the_delay_converges() -> None:
    rng = np.random.default_rng(5)
    x = speechlike(20.0, seed=1)
    delays = rng.uniform(0.0, 0.06, len(x) // FRAME)
    po, outs, trace = run(x, lambda i: float(delays[i]))
    jb = po.jb
    sent = len(delays)
    assert jb.stats.late <= 0.01 * sent, jb.stats.late
    # no frame dropped or inserted wholesale: every packet is played once (or is one of the few late ones), no
    # slot is concealed, and the changes are small splices, a few per ten seconds
    assert jb.stats.played + jb.stats.late == sent and jb.stats.lost == 0
    assert po.concealer.lost_inside() == jb.stats.late  # a late packet is concealed; nothing else is
    assert 0 < jb.stats.stretched + jb.stats.shrunk < 40
    assert all(o is None or len(o) == FRAME for o in outs)
    # after the first 3 s: the audio delay sits at the target or above it by less than a frame (tick grid) plus
    # the residue not yet trimmed; the target itself follows the real spread (99.5th percentile: ~60 ms)
    settled = [(d, t) for (tick, d, t) in trace if tick > 3.0 and d is not None]
    assert all(t - 0.002 <= d <= t + TICK + 0.016 for d, t in settled), max(d - t for d, t in settled)
    assert all(0.055 <= t <= 0.065 for _, t in settled)
    mean_delay = float(np.mean([d for d, _ in settled]))
    spread = delays - delays.min()
    assert mean_delay <= 1.3 * np.percentile(spread, 95) + TICK / 2, mean_delay  # the grid phase aside


def test_the_delay_grows_with_jitter_and_comes_back_down_by_stretching_alone() -> None:
    rng = np.random.default_rng(9)
    x = speechlike(60.0, seed=2)
    count = len(x) // FRAME
    delays = np.where((np.arange(count) >= 300) & (np.arange(count) < 700), rng.uniform(0.0, 0.1, count),
                      rng.uniform(0.0, 0.005, count))  # rough from 6 s to 14 s
    po, outs, trace = run(x, lambda i: float(delays[i]))
    jb = po.jb
    calm = [d for (tick, d, _) in trace if 4.0 < tick < 6.0 and d is not None]
    rough = [d for (tick, d, _) in trace if 11.0 < tick < 14.0 and d is not None]
    calm_again = [d for (tick, d, _) in trace if 55.0 < tick < 60.0 and d is not None]
    assert max(calm) < 0.045 and min(rough) > 0.085 and max(calm_again) < 0.045, (calm, rough, calm_again)
    assert jb.stats.stretched > 0 and jb.stats.shrunk > 0
    assert jb.stats.late <= 0.01 * count  # the jump up costs a few late packets, no more
    assert po.concealer.lost_inside() == jb.stats.late
    assert all(o is None or len(o) == FRAME for o in outs)


def test_changes_land_in_pauses_first() -> None:
    """Shrinking waits for a pause or an unvoiced sound: the frames where samples were removed are quiet."""
    x = speechlike(12.0, seed=3)
    count = len(x) // FRAME
    rng = np.random.default_rng(4)
    delays = np.where(np.arange(count) < 150, rng.uniform(0.0, 0.1, count), rng.uniform(0.0, 0.005, count))
    removed: List[int] = []

    class Recording(TimeStretchJitterBuffer):
        def note_stretch(self, seconds: float) -> None:
            super().note_stretch(seconds)
            if seconds < 0:
                removed.append(self.stats.played)

    import pyvoip_fast.media.playout as playout_mod  # noqa: F401 - the class under test

    frames = [x[i : i + FRAME].tobytes() for i in range(0, count * FRAME, FRAME)]
    arrivals = [i * TICK + float(delays[i]) for i in range(count)]
    order = sorted(range(count), key=lambda i: arrivals[i])
    jb = Recording(min_delay=0.02, max_delay=0.5, initial_delay=0.06)
    po = Playout(jb, decode, PassThrough(), FRAME, RATE)
    k, tick = 0, 0.003
    while tick < max(arrivals) + 0.5:
        while k < count and arrivals[order[k]] <= tick:
            i = order[k]
            jb.put(i, i * FRAME, frames[i], arrivals[i], ssrc=7)
            k += 1
        po.tick(tick)
        tick += TICK
    assert len(removed) >= 3
    levels = [float(np.sqrt(np.mean(x[(n - 2) * FRAME : (n + 1) * FRAME].astype(float) ** 2))) for n in removed]
    assert np.median(levels) < 1000, levels  # around the cut: mostly pauses or syllable edges, not vowels


def test_whole_frame_mode_is_the_old_receiver_behaviour() -> None:
    """Without time-stretching: losses before the first frame are not played, a lost frame is concealed."""
    x = speechlike(2.0)
    conceal = PassThrough()
    frames = [x[i : i + FRAME].tobytes() for i in range(0, len(x) // FRAME * FRAME, FRAME)]
    jb = JitterBuffer(min_delay=0.02, max_delay=0.3, initial_delay=0.04)
    po = Playout(jb, decode, conceal, FRAME, RATE)
    assert not po.stretching and po.tick(0.0) is None
    for i in range(0, 40):
        if i != 10:  # packet 10 is lost
            jb.put(i, i * FRAME, frames[i], i * TICK + 0.001, ssrc=1)
    outs = [po.tick(0.0005 + n * TICK) for n in range(45)]
    got = [o for o in outs if o is not None]
    assert conceal.lost_calls >= 1 and po.tail_concealed >= 0 and po.playing
    assert all(len(o) == FRAME for o in got)


def test_a_new_stream_waits_for_its_first_frame_again() -> None:
    x = speechlike(1.0)
    jb = TimeStretchJitterBuffer(min_delay=0.02, max_delay=0.3, initial_delay=0.04)
    po = Playout(jb, decode, PassThrough(), FRAME, RATE)
    for i in range(10):
        jb.put(i, i * FRAME, x[i * FRAME : (i + 1) * FRAME].tobytes(), i * TICK, ssrc=1)
    for n in range(6):
        po.tick(0.05 + n * TICK)
    assert po.playing
    jb.put(500, 90000, x[:FRAME].tobytes(), 0.2, ssrc=2)  # another SSRC: a new stream
    po.tick(0.17)
    assert not po.playing or jb.stats.resets == 1


def test_bad_arguments() -> None:
    jb = TimeStretchJitterBuffer()
    with pytest.raises(ValueError, match="frame_samples"):
        Playout(jb, decode, PassThrough(), 0, RATE)
    with pytest.raises(ValueError, match="rate"):
        Playout(jb, decode, PassThrough(), FRAME, 44100)
    with pytest.raises(ValueError, match="quantile"):
        TimeStretchJitterBuffer(quantile=0.0)
    with pytest.raises(ValueError, match="margin"):
        JitterBuffer(margin=-0.01)
    Playout(JitterBuffer(), decode, PassThrough(), FRAME, 44100)  # whole frames: any rate


def test_advice_and_statistics_of_the_time_stretch_buffer() -> None:
    jb = TimeStretchJitterBuffer(min_delay=0.02, max_delay=0.3, initial_delay=0.06)
    assert jb.advise(0.0, 0.0) == ("", 0.0)  # not playing
    assert jb.delay == pytest.approx(0.06)  # before any packet: the initial delay, no extra frame of margin
    jb.note_stretch(0.005)
    jb.note_stretch(-0.01)
    jb.note_stretch(0.0)
    assert (jb.stats.stretched, jb.stats.shrunk) == (1, 1)
    for i in range(5):
        jb.put(i, i * FRAME, b"\0" * 320, i * TICK, ssrc=3)
    assert jb.get(0.06) == ("frame", b"\0" * 320)  # starts at the target, not half a frame under it
    advice, amount = jb.advise(0.08, 0.0075)  # take delay at the target, 7.5 ms of residue held
    assert advice == "trim" and amount == pytest.approx(0.0075)
    assert jb.current_delay == pytest.approx(0.08 + 0.0075 - 0.02)


def test_the_receiver_plays_through_playout_with_time_stretching() -> None:
    rx = RtpReceiver((0.02, 0.3, 0.04), on_latched=lambda: None, on_new_source=lambda: None, on_dtmf=lambda d: None)
    rx.configure(codecs.PCMU, 0, 20, None)
    rx.new_stream()
    assert isinstance(rx.jb, TimeStretchJitterBuffer)
    written: List[np.ndarray] = []

    class Sink:
        def write(self, pcm: np.ndarray) -> None:
            written.append(pcm)

    rx.sink = Sink()
    enc = codecs.PCMU.encoder()
    x = speechlike(1.0)
    for i in range(50):
        rx.jb.put(i, i * FRAME, bytes(enc.encode(x[i * FRAME : (i + 1) * FRAME])), i * TICK, ssrc=9)
    for n in range(55):
        rx.playout(0.041 + n * TICK)
    assert rx.frames_played == len(written) >= 48 and all(len(w) == FRAME for w in written)
    assert rx.tail_concealed == 0 or rx.tail_concealed <= 5
