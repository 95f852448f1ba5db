"""``LookaheadConcealer``: the frame-by-frame concealer with lookahead that the live receiver and ``conceal`` share."""

from __future__ import annotations

from typing import Any, List, Optional

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import skip_or_fail
from pyvoip_fast.codecs.plc import Concealer
from pyvoip_fast.codecs.plc_lookahead import LookaheadConcealer
from pyvoip_fast.plc import conceal


def voiced(seconds: float, rate: int = 8000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * 6000 * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return np.clip(x + rng.normal(0, 100, len(t)), -32768, 32767).astype(np.int16)


def framed(x: np.ndarray, size: int, lost: List[bool]) -> List[Optional[np.ndarray]]:
    return [None if gone else x[i * size : (i + 1) * size] for i, gone in enumerate(lost)]


def drive(lc: LookaheadConcealer, frames: List[Optional[np.ndarray]], ahead_of) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = [lc.conceal(f, ahead_of(i)) for i, f in enumerate(frames)]
    out.append(lc.flush())
    return np.concatenate(out)[lc.latency_samples :]


@pytest.mark.parametrize("look", [1, 2, 3])
def test_given_the_true_future_it_is_conceal(look: int) -> None:
    x = voiced(3.0, seed=3)
    rng = np.random.default_rng(4)
    frames = framed(x, 160, list(rng.random(150) < 0.2))
    got = drive(LookaheadConcealer(160, 8000, look), frames, lambda i: frames[i + 1 : i + 1 + look])
    assert np.array_equal(got, conceal(frames, lookahead_frames=look))


def test_with_nothing_at_hand_it_is_the_plain_concealer() -> None:
    """A receiver whose jitter buffer holds nothing ahead gets exactly the lookahead-free concealment."""
    x = voiced(2.0, seed=5)
    rng = np.random.default_rng(6)
    frames = framed(x, 160, list(rng.random(100) < 0.25))
    lc = LookaheadConcealer(160, 8000, 2)
    got = drive(lc, frames, lambda i: [None, None])
    assert np.array_equal(got, conceal(frames, lookahead_frames=0))
    assert lc.interpolated_frames == 0 and lc.concealed_frames == sum(f is None for f in frames[1:])
    plain = Concealer(160, 8000)
    live = np.concatenate([plain.good(f) if f is not None else plain.lost() for f in frames])
    assert np.array_equal(got[: len(live) - 30], live[30:])


def test_interpolation_counts_and_the_frame_after_the_gap_is_played_even_if_the_buffer_lost_it() -> None:
    """The frame a gap was interpolated towards was seen: it plays in its slot even when the caller no longer
    has it there (a jitter buffer that dropped it), so the planned join holds."""
    x = voiced(1.0, seed=7)
    frames = framed(x, 160, [i == 20 for i in range(50)])
    lc = LookaheadConcealer(160, 8000, 1)
    ref = drive(LookaheadConcealer(160, 8000, 1), frames, lambda i: frames[i + 1 : i + 2])
    out = []
    for i, f in enumerate(frames):
        given_frame = None if i == 21 else f  # frame 21 was at hand at slot 20, gone at its own slot
        out.append(lc.conceal(given_frame, frames[i + 1 : i + 2]))
    out.append(lc.flush())
    got = np.concatenate(out)[30:]
    assert lc.interpolated_frames == 1 and lc.concealed_frames == 1
    assert np.array_equal(got, ref)
    # away from the gap the input is untouched, and the gap is neither silent nor louder than the signal
    assert np.array_equal(got[: 20 * 160 - 30], x[: 20 * 160 - 30])
    gap = got[20 * 160 : 21 * 160].astype(np.float64)
    assert 0.2 < np.sqrt(np.mean(gap**2)) / np.sqrt(np.mean(x[19 * 160 : 22 * 160].astype(np.float64) ** 2)) < 1.5


def test_a_partial_view_of_the_future_interpolates_only_when_the_next_good_frame_is_at_hand() -> None:
    x = voiced(1.0, seed=8)
    lost = [i in (10, 11, 12) for i in range(50)]
    frames = framed(x, 160, lost)
    lc = LookaheadConcealer(160, 8000, 2)
    # frame 13 "arrives" only in time for slot 12: slots 10 and 11 see nothing good ahead
    out = [lc.conceal(f, [None, None] if i in (10, 11) else frames[i + 1 : i + 3]) for i, f in enumerate(frames)]
    assert lc.interpolated_frames == 1 and lc.concealed_frames == 3
    assert all(len(o) == 160 and o.dtype == np.int16 for o in out)


def test_silence_before_the_first_frame_and_the_plain_interface() -> None:
    lc = LookaheadConcealer(160, 8000, 1)
    assert not lc.lost().any() and lc.concealed_frames == 0  # nothing to conceal from yet
    x = voiced(0.2, seed=9)
    a = lc.good(x[:160])
    assert len(a) == 160 and not a[:30].any() and np.array_equal(a[30:], x[:130])
    assert lc.lost().any() and lc.in_loss


@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        ({"frame_samples": 0}, ValueError, "positive"),
        ({"rate": 44100}, ValueError, "8000"),
        ({"lookahead_frames": -1}, ValueError, ">= 0"),
        ({"lookahead_frames": 1.0}, TypeError, "lookahead_frames"),
        ({"rate": True}, TypeError, "rate"),
    ],
)
def test_bad_arguments(kwargs: dict, exc: type, text: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(exc, match=text):
        LookaheadConcealer(**kwargs)


def test_frames_of_the_wrong_length_are_refused() -> None:
    lc = LookaheadConcealer(160, 8000, 1)
    with pytest.raises(ValueError, match="160 samples"):
        lc.conceal(np.zeros(80, np.int16))
    lc.good(np.zeros(160, np.int16))
    with pytest.raises(ValueError, match="160 samples"):
        lc.conceal(None, [np.zeros((2, 80), np.int16)])


@settings(max_examples=60, deadline=None)
@given(
    pattern=st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=80),
    look=st.integers(0, 3),
    rate=st.sampled_from([8000, 16000]),
    seed=st.integers(0, 2**16),
)
def test_any_loss_and_any_view_of_the_future_keep_the_promises(pattern, look, rate, seed) -> None:  # type: ignore[no-untyped-def]
    """Whatever subset of the future a jitter buffer happens to hold, every call gives one finite frame."""
    size = rate // 50
    rng = np.random.default_rng(seed)
    x = rng.integers(-32768, 32768, size * len(pattern)).astype(np.int16)
    frames = [None if gone else x[i * size : (i + 1) * size] for i, (gone, _a, _b) in enumerate(pattern)]
    lc = LookaheadConcealer(size, rate, look)
    for i, f in enumerate(frames):
        ahead = [g if pattern[i + 1 + j][1 + j % 2] else None for j, g in enumerate(frames[i + 1 : i + 1 + look])]
        out = lc.conceal(f, ahead)
        assert len(out) == size and out.dtype == np.int16
    assert len(lc.flush()) == lc.latency_samples


def test_an_interpolated_gap_keeps_the_background_estimate_for_later_long_losses() -> None:
    """After a gap filled towards the next frame, a long loss still fades to comfort noise at the background level
    (the concealer is restarted on what was played, not replaced), never to silence."""
    rng = np.random.default_rng(11)
    size, n = 160, 150
    x = np.clip(rng.normal(0, 300, size * n), -32768, 32767).astype(np.int16)  # 2.4 s of background noise
    t = np.arange(size * 40) / 8000
    x[size * 60 : size * 100] = (6000 * np.sin(2 * np.pi * 150 * t)).astype(np.int16)  # then a tone
    lost = [i == 100 or i >= 110 for i in range(n)]  # one gap at the tone's end, interpolated; then a long loss
    frames = framed(x, size, lost)
    lc = LookaheadConcealer(size, 8000, 1)
    assert lc._c.background_rms is None
    out = np.concatenate([lc.conceal(f, frames[i + 1 : i + 2]) for i, f in enumerate(frames)])
    assert lc.interpolated_frames == 1
    bg = lc._c.background_rms
    assert bg is not None and 150 < bg < 600
    tail = out[size * 130 :].astype(np.float64)  # 200 ms into the long loss
    assert 0.3 * 300 < np.sqrt(np.mean(tail**2)) < 3 * 300


def test_restart_takes_the_played_timeline_and_ends_the_loss() -> None:
    c = Concealer(160, 8000)
    x = voiced(0.5, seed=12)
    for i in range(10):
        c.good(x[i * 160 : (i + 1) * 160])
    c.lost()
    assert c.in_loss
    played = x[: 10 * 160]
    c.restart(played)
    assert not c.in_loss
    # the newest latency_samples of what was played come out first, then the next frame
    nxt = c.good(x[1600:1760])
    assert np.array_equal(nxt[:30], played[-30:]) and np.array_equal(nxt[30:], x[1600:1730])
    with pytest.raises(ValueError, match="1-D"):
        c.restart(np.zeros((2, 2)))
    assert c.history_samples >= 3 * c.pitch_max


class _Frame(np.ndarray):
    """An int16 frame of another array class: it takes the concealer's checked path, not the inlined one."""


@pytest.mark.parametrize("rate, look", [(8000, 1), (8000, 2), (16000, 1)])
def test_the_inlined_received_frame_path_gives_the_checked_paths_bits(rate: int, look: int) -> None:
    """A native int16 frame in a call already going skips the checks and the plain concealer's ``good``; through
    losses, interpolations, background noise and recoveries it must play exactly what the checked path plays."""
    size = rate // 50
    x = voiced(4.0, rate, seed=7)
    x[len(x) // 2 : len(x) // 2 + rate // 2] //= 64  # a quiet stretch: the background estimate takes it
    rng = np.random.default_rng(8)
    lost = list(rng.random(len(x) // size) < 0.15)
    frames = framed(x, size, lost)
    fast, checked = LookaheadConcealer(size, rate, look), LookaheadConcealer(size, rate, look)

    def ahead(i: int, wrap: bool) -> List[Optional[np.ndarray]]:
        nxt = frames[i + 1 : i + 1 + look]
        return [f.view(_Frame) if wrap and f is not None else f for f in nxt]

    for i, f in enumerate(frames):
        a = fast.conceal(f, ahead(i, False))
        b = checked.conceal(None if f is None else f.view(_Frame), ahead(i, True))
        assert a.dtype == np.int16 and np.array_equal(a, b), f"frame {i}"
    assert fast.concealed_frames == checked.concealed_frames > 0
    assert np.array_equal(fast.flush(), checked.flush())
    assert fast._c.background_rms == checked._c.background_rms is not None


class _Counting(LookaheadConcealer):
    """The compiled concealer, counting the frames that left the common path."""

    rest_calls = 0

    def _conceal_rest(self, frame: Any, ahead: Any) -> Any:
        self.rest_calls += 1
        return super()._conceal_rest(frame, ahead)


def _on_twin_core() -> Any:
    """``LookaheadConcealer`` built on the pure-Python twin of its compiled base, counting the frames that left the
    common path (``_conceal_rest``)."""
    from pyvoip_fast.codecs import _plc_py

    body = {k: v for k, v in LookaheadConcealer.__dict__.items() if k not in ("__dict__", "__weakref__")}
    twin = type("TwinLookaheadConcealer", (_plc_py.LookaheadCore,), body)

    def rest(self: Any, frame: Any, ahead: Any) -> Any:
        self.rest_calls = getattr(self, "rest_calls", 0) + 1
        return LookaheadConcealer._conceal_rest(self, frame, ahead)

    twin._conceal_rest = rest
    return twin


@settings(max_examples=40, deadline=None)
@given(
    losses=st.lists(st.integers(0, 5), min_size=20, max_size=120),
    look=st.integers(0, 3),
    rate=st.sampled_from([8000, 16000]),
    seed=st.integers(0, 2**16),
    quiet=st.booleans(),
)
def test_the_compiled_core_plays_what_its_twin_plays(losses, look, rate, seed, quiet) -> None:  # type: ignore[no-untyped-def]
    """The compiled base (``_plc.LookaheadCore``) and its twin, each on its own implementation of the plain
    concealer's timeline, give the same bits and counters through losses, interpolations, a quiet stretch the
    background estimate takes, and frames that are not plain int16 vectors; and both take the common path for
    every frame of a loss-free stretch."""
    from pyvoip_fast import _compat
    from pyvoip_fast.codecs import plc

    if _compat.implementation() != "cython":
        skip_or_fail("the compiled modules are not built")
    size = rate // 50
    x = voiced(len(losses) * 0.02 + 0.1, rate, seed=seed)
    if quiet:
        x[len(x) // 3 : len(x) // 2] //= 64
    lost = [k == 0 for k in losses]  # about one frame in six
    frames: List[Any] = framed(x, size, lost)
    for i in range(2, len(frames), 17):  # now and then a frame of another layout: the checked path
        if frames[i] is not None:
            frames[i] = frames[i].astype(np.int32) if i % 2 else frames[i].view(_Frame)
    twin_cls = _on_twin_core()
    compiled = _Counting(size, rate, look)
    saved = plc._plc
    plc._plc = _compat.module_for("_plc", "python")
    try:
        twin = twin_cls(size, rate, look)
        outs = []
        for i, f in enumerate(frames):
            ahead = frames[i + 1 : i + 1 + look]
            a, b = compiled.conceal(f, ahead), twin.conceal(f, ahead)
            assert np.array_equal(a, b) and a.dtype == b.dtype == np.int16, f"frame {i}"
            outs.append(a)
        assert np.array_equal(compiled.flush(), twin.flush())
    finally:
        plc._plc = saved
    assert type(twin._c._timeline).__module__.endswith("_plc_py")
    assert (compiled.concealed_frames, compiled.interpolated_frames, compiled._index, compiled._base) == (
        twin.concealed_frames, twin.interpolated_frames, twin._index, twin._base)
    assert np.array_equal(compiled._z, twin._z)
    assert compiled._c.background_rms == twin._c.background_rms
    # the twin left its common path only where a frame is not a plain one in a call going without a loss
    common = sum(1 for i, f in enumerate(frames) if i > 0 and f is not None and f.__class__ is np.ndarray
                 and f.dtype == np.int16 and frames[i - 1] is not None and not lost[i - 1])
    assert getattr(twin, "rest_calls", 0) <= len(frames) - common
    assert compiled.rest_calls <= len(frames) - common
