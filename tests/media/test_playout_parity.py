"""The compiled playout and its pure-Python twin give the same frames for the same stream (hypothesis).

Speech from the bundled sample, PCMU-encoded as a peer sends it, reaches each side through a network that
jitters, loses, duplicates, reorders and drifts (the sender's clock runs fast or slow, so the buffer stretches and
shrinks the audio), with talk-spurt gaps and an SSRC change. Each example plays it three ways -- compiled playout
on the compiled buffer (the C entry points), compiled playout on the twin buffer (its Python methods), twin
playout on the twin buffer -- each with its own concealer and decoder, and requires the same frame (or None) at
every tick and the same state after it: samples held, playing, the concealed tail, the buffer's counters.
"""

from __future__ import annotations

import random
import wave
from typing import Any, List, Optional, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import SAMPLE
from pyvoip_fast import _compat
from pyvoip_fast.codecs import g711
from pyvoip_fast.codecs.plc import Concealer
from pyvoip_fast.codecs.plc_lookahead import LookaheadConcealer

FRAME, RATE = 160, 8000

pytestmark = pytest.mark.skipif(_compat.NO_EXTENSIONS or "_playout" in _compat.MISSING_EXTENSIONS,
                                reason="the compiled modules are off")


def _speech() -> np.ndarray:
    """The sample, looped to 30 s."""
    with wave.open(str(SAMPLE)) as w:
        return np.resize(np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), 30 * RATE)


SPEECH = _speech()


def _packets(rng: random.Random, frames: int, drift: float, jitter: float, loss: float) -> List[Tuple[Any, ...]]:
    start = rng.randrange(0, len(SPEECH) // FRAME - frames) * FRAME
    out = []
    ts, seq, ssrc = rng.randrange(1 << 32), rng.randrange(1 << 16), 0xABC
    slot = 0  # the sender's frame clock: a talk-spurt gap sends nothing for a while
    for i in range(frames):
        if i == frames // 2 and rng.random() < 0.3:
            ssrc, seq = 0xDEF, rng.randrange(1 << 16)  # a new stream (a transfer, a re-INVITE)
        if rng.random() < 0.02:
            gap = rng.randrange(2, 25)  # a talk-spurt gap
            ts += FRAME * gap
            slot += gap
        pcm = SPEECH[start + i * FRAME: start + (i + 1) * FRAME]
        payload = bytes(g711.ulaw_encode(pcm))
        sent = slot * 0.02 * drift
        slot += 1
        if rng.random() >= loss:
            at = sent + abs(rng.gauss(0.0, jitter)) + (0.15 if rng.random() < 0.01 else 0.0)
            out.append((at, seq & 0xFFFF, ts & 0xFFFFFFFF, payload, ssrc))
            if rng.random() < 0.02:
                out.append((at + 0.01, seq & 0xFFFF, ts & 0xFFFFFFFF, payload, ssrc))
        seq += 1
        ts += FRAME
    out.sort(key=lambda p: p[0])
    return out


def _decode(payload: bytes) -> np.ndarray:
    pcm = np.frombuffer(g711.ulaw_decode(payload), dtype=np.int16)
    return pcm if len(pcm) == FRAME else np.resize(pcm, FRAME)


def _play(playout_impl: str, jitter_impl: str, stretch: bool, look: int, packets: List[Tuple[Any, ...]],
          tick0: float) -> List[Any]:
    jm = _compat.module_for("_jitter", jitter_impl)
    pm = _compat.module_for("_playout", playout_impl)
    jb = (jm.TimeStretchJitterBuffer if stretch else jm.JitterBuffer)(min_delay=0.02, max_delay=0.3)
    concealer: Any = LookaheadConcealer(FRAME, RATE, look) if look >= 0 else Concealer(FRAME, RATE)
    po = pm.Playout(jb, _decode, concealer, FRAME, RATE)
    trace: List[Any] = []
    j = 0
    end = (packets[-1][0] if packets else 0.0) + 0.5
    k = 0
    while tick0 + k * 0.02 < end:
        now = tick0 + k * 0.02
        while j < len(packets) and packets[j][0] <= now:
            at, seq, ts, payload, ssrc = packets[j]
            jb.put(seq, ts, payload, at, ssrc=ssrc)
            j += 1
        out: Optional[np.ndarray] = po.tick(now)
        trace.append(None if out is None else out.tobytes())
        trace.append((po.held, po.playing, po.tail_concealed, jb.stats.as_dict()))
        k += 1
    return trace


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), stretch=st.booleans(), look=st.integers(-1, 2),
       drift=st.sampled_from([0.97, 0.999, 1.0, 1.001, 1.03]), jitter=st.sampled_from([0.0, 0.005, 0.03]),
       loss=st.sampled_from([0.0, 0.05, 0.2]))
def test_compiled_and_twin_play_the_same_frames(seed: int, stretch: bool, look: int, drift: float, jitter: float,
                                                loss: float) -> None:
    rng = random.Random(seed)
    packets = _packets(rng, 150, drift, jitter, loss)
    tick0 = 0.013 + rng.random() * 0.02
    want = _play("python", "python", stretch, look, packets, tick0)
    for playout_impl, jitter_impl in (("cython", "cython"), ("cython", "python")):
        got = _play(playout_impl, jitter_impl, stretch, look, packets, tick0)
        assert len(got) == len(want)
        for i, (a, b) in enumerate(zip(got, want)):
            assert a == b, (playout_impl, jitter_impl, i // 2, a if i % 2 else "frame", b if i % 2 else "")


def test_a_long_drift_exercises_every_change_in_both() -> None:
    """A 3 % fast sender over 20 s with jitter: the buffer grows, shrinks and trims in both, identically."""
    rng = random.Random(7)
    packets = _packets(rng, 1000, 0.97, 0.01, 0.02)
    want = _play("python", "python", True, 1, packets, 0.013)
    got = _play("cython", "cython", True, 1, packets, 0.013)
    assert got == want
    stats = want[-1][3]
    assert stats["shrunk"] > 0 and stats["stretched"] > 0 and stats["played"] > 900


def test_both_refuse_the_same_settings() -> None:
    for impl in ("cython", "python"):
        pm = _compat.module_for("_playout", impl)
        jm = _compat.module_for("_jitter", impl)
        with pytest.raises(ValueError):
            pm.Playout(jm.TimeStretchJitterBuffer(), _decode, Concealer(FRAME, RATE), 0, RATE)
        with pytest.raises(ValueError):
            pm.Playout(jm.TimeStretchJitterBuffer(), _decode, Concealer(FRAME, RATE), FRAME, 44100)
        pm.Playout(jm.JitterBuffer(), _decode, Concealer(FRAME, RATE), FRAME, 44100)  # whole frames: any rate
