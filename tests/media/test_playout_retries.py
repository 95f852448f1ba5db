"""Playout's time-stretching does not burn CPU on changes it cannot make, and the delay does not see-saw."""

from __future__ import annotations

from typing import List

import numpy as np

from pyvoip_fast.codecs import timescale
from pyvoip_fast.codecs.plc import Concealer
from pyvoip_fast.media import jitter, jitter_stats, playout
from pyvoip_fast.media.jitter import TimeStretchJitterBuffer
from pyvoip_fast.media.playout import Playout

RATE, FRAME = 8000, 160
TICK = FRAME / RATE


def buzz(seconds: float) -> np.ndarray:
    """Loud, aperiodic, not noise-like: a chirp sweeping fast (no pause, nothing to cut)."""
    t = np.arange(int(seconds * RATE)) / RATE
    return (9000 * np.sin(2 * np.pi * (200 * t + 900 * t * t))).astype(np.int16)


def drive(x: np.ndarray, monkeypatch, calls: List[float]):  # type: ignore[no-untyped-def]
    real = timescale.accelerate

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(playout.timescale, "accelerate", counting)
    jb = TimeStretchJitterBuffer(min_delay=0.02, max_delay=0.5, initial_delay=0.12)  # starts far too long
    po = Playout(jb, lambda p: np.frombuffer(p, dtype=np.int16), Concealer(FRAME, RATE), FRAME, RATE)
    frames = [x[i : i + FRAME].tobytes() for i in range(0, len(x) - FRAME + 1, FRAME)]
    tick = 0.005
    for i, f in enumerate(frames):
        jb.put(i, i * FRAME, f, i * TICK + 0.001, ssrc=3)
        po.tick(tick)
        tick += TICK
    return po, jb, len(frames)


def test_a_refused_shrink_is_retried_rarely_not_at_every_tick(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls: List[float] = []
    po, jb, ticks = drive(buzz(6.0), monkeypatch, calls)
    # the buffer wants to shrink for the whole call but nothing can be cut before the 2 s voiced wait: the
    # back-off (0.1 s, doubling, at most 1 s) keeps the analyses to a handful, not one per tick (300)
    assert 0 < len(calls) <= 20, len(calls)
    assert ticks == 300


def test_a_pause_is_tried_at_once_whatever_the_back_off(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    x = buzz(4.0)
    x[RATE * 3 : RATE * 3 + 1600] = 0  # a 200 ms pause at 3 s
    calls: List[float] = []
    po, jb, _ = drive(x, monkeypatch, calls)
    assert jb.stats.shrunk >= 1  # cut in the pause, although the back-off had grown to a second


def test_no_shrink_right_after_a_grow() -> None:
    jb = TimeStretchJitterBuffer(min_delay=0.02, max_delay=0.5, initial_delay=0.06)
    for i in range(5):
        jb.put(i, i * FRAME, b"\0" * 320, i * TICK, ssrc=1)
    jb.get(0.1)
    jb.advise(0.1, 0.0)  # as Playout does: advice, then the change, then its report
    jb.note_stretch(0.005)  # the delay grew now
    # holding half a second of audio, the delay is far too long: yet for two seconds it does not shrink back
    seen = []
    for k in range(1, 130):
        advice, _ = jb.advise(0.1 + k * TICK, 0.5)
        seen.append((k * TICK < jitter_stats.SHRINK_DWELL - 1e-9, advice))
    assert all(a != "shrink" for early, a in seen if early)
    assert any(a == "shrink" for early, a in seen if not early)


def test_a_thousand_refusals_in_a_row_do_not_overflow_the_back_off(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every shrink refused, in a pause (so each tick tries again): past 1,024 refusals in a row the back-off
    once computed 0.1 * 2**1024 and raised OverflowError mid-call. Compiled and twin alike."""
    from pyvoip_fast import _compat

    calls: List[float] = []

    def refusing(x, rate, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1.0)
        return timescale.Stretch(samples=x, change=0, kind="none")

    monkeypatch.setattr(playout.timescale, "accelerate", refusing)
    impls = ["python"] if _compat.NO_EXTENSIONS else ["cython", "python"]
    for impl in impls:
        calls.clear()
        jb = _compat.module_for("_jitter", impl).TimeStretchJitterBuffer(min_delay=0.02, max_delay=0.5,
                                                                          initial_delay=0.3)
        po = _compat.module_for("_playout", impl).Playout(jb, lambda p: np.frombuffer(p, dtype=np.int16),
                                                          Concealer(FRAME, RATE), FRAME, RATE)
        quiet = bytes(2 * FRAME)
        for i in range(1300):
            jb.put(i, i * FRAME, quiet, i * TICK + 0.001, ssrc=3)
            out = po.tick(0.005 + i * TICK)
            assert out is None or len(out) == FRAME
        assert len(calls) > 1100, (impl, len(calls))  # a retry at (nearly) every tick, none of them fatal


def test_quiet_means_every_sample_inside_the_level_in_both_implementations(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A refused change is retried at once when the next frame is quiet: all its samples strictly inside
    +-QUIET_RETRY_LEVEL (the compiled playout checks them in a loop, the twin with numpy's max and min)."""
    from pyvoip_fast import _compat
    from pyvoip_fast.media.playout_common import QUIET_RETRY_LEVEL

    calls: List[float] = []

    def refusing(x, rate, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1.0)
        return timescale.Stretch(samples=x, change=0, kind="none")

    monkeypatch.setattr(playout.timescale, "accelerate", refusing)
    counts = {}
    impls = ["python"] if _compat.NO_EXTENSIONS else ["cython", "python"]
    for impl in impls:
        for level in (QUIET_RETRY_LEVEL - 1, QUIET_RETRY_LEVEL, -QUIET_RETRY_LEVEL + 1, -QUIET_RETRY_LEVEL):
            calls.clear()
            jb = _compat.module_for("_jitter", impl).TimeStretchJitterBuffer(min_delay=0.02, max_delay=0.5,
                                                                              initial_delay=0.3)
            po = _compat.module_for("_playout", impl).Playout(jb, lambda p: np.frombuffer(p, dtype=np.int16),
                                                              Concealer(FRAME, RATE), FRAME, RATE)
            frame = np.zeros(FRAME, dtype=np.int16)
            frame[FRAME // 2] = level  # one sample at the level, the rest silent
            for i in range(300):
                jb.put(i, i * FRAME, frame.tobytes(), i * TICK + 0.001, ssrc=3)
                po.tick(0.005 + i * TICK)
            counts[impl, level] = len(calls)
    for impl in impls:
        quiet = [counts[impl, QUIET_RETRY_LEVEL - 1], counts[impl, -QUIET_RETRY_LEVEL + 1]]
        loud = [counts[impl, QUIET_RETRY_LEVEL], counts[impl, -QUIET_RETRY_LEVEL]]
        assert min(quiet) > 150 and max(loud) < 30, (impl, quiet, loud)
    assert len({tuple(counts[i, lv] for lv in sorted({k[1] for k in counts})) for i in impls}) == 1, counts
