"""``conceal``: offline concealment of a whole stream, the live receiver's algorithm, optional lookahead."""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyvoip_fast.plc
from mediakit import snr_db, speech_like
from pyvoip_fast.codecs.plc import Concealer
from pyvoip_fast.codecs.plc_offline import conceal

Frames = List[Optional[np.ndarray]]


def frames_of(x: np.ndarray, size: int, lost: Sequence[bool]) -> Frames:
    return [None if gone else f for f, gone in zip(x.reshape(-1, size), lost)]


def like_the_receiver(frames: Frames, size: int, rate: int) -> np.ndarray:
    """What ``media.receiver.RtpReceiver.playout`` hands the sink: ``good()`` for a frame, ``lost()`` for a loss,
    nothing for a loss before the first frame (it is not playing yet); delayed by ``latency_samples``."""
    c = Concealer(size, rate)
    playing = False
    out = []
    for f in frames:
        if f is not None:
            playing = True
            out.append(c.good(f))
        elif playing:
            out.append(c.lost())
    return np.concatenate(out)


def random_loss(count: int, rate: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(count) < rate


def test_public_path_and_signature() -> None:
    assert pyvoip_fast.plc.conceal is conceal
    assert "conceal" in pyvoip_fast.plc.__all__ and "Concealer" in pyvoip_fast.plc.__all__


@pytest.mark.parametrize("rate, size", [(8000, 160), (8000, 80), (16000, 320), (16000, 160)])
@pytest.mark.parametrize("lookahead", [0, 1, 3])
def test_loss_free_input_comes_out_unchanged(rate: int, size: int, lookahead: int) -> None:
    x = speech_like(1.0, seed=5)
    if rate == 16000:
        x = np.repeat(x, 2)
    y = conceal(list(x.reshape(-1, size)), rate=rate, lookahead_frames=lookahead)
    assert y.dtype == np.int16
    assert np.array_equal(y, x)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rate, size", [(8000, 160), (16000, 320), (8000, 80)])
def test_lookahead_0_is_the_live_concealer_without_its_delay(seed: int, rate: int, size: int) -> None:
    x = speech_like(3.0, seed=seed)
    if rate == 16000:
        x = np.repeat(x, 2)
    count = len(x) // size
    lost = random_loss(count, 0.15, seed)
    lost[5:9] = True  # a burst past the 60 ms where the concealer falls silent
    lost[-2:] = True  # a loss at the end: the delayed samples still come out
    if seed % 2:
        lost[:3] = True  # losses before the first frame: the receiver plays nothing, we give silence
    frames = frames_of(x[: count * size], size, lost)
    live = like_the_receiver(frames, size, rate)
    d = Concealer(size, rate).latency_samples
    got = conceal(frames, rate=rate, lookahead_frames=0)
    lead = int(np.argmax(~lost)) * size
    assert not got[:lead].any()
    assert np.array_equal(got[lead : len(got) - d], live[d:])


@pytest.mark.parametrize("lookahead", [0, 1, 2])
def test_length_and_time_alignment(lookahead: int) -> None:
    x = speech_like(2.0, seed=7)
    lost = np.zeros(100, dtype=bool)
    lost[[20, 40, 41, 70]] = True
    y = conceal(frames_of(x, 160, lost), lookahead_frames=lookahead)
    assert len(y) == len(x) and y.dtype == np.int16
    # away from the gaps (the join cross-fades reach at most 3.75 ms back and 10 ms forward) the input is untouched
    touched = np.zeros(len(x), dtype=bool)
    for i in np.flatnonzero(lost):
        touched[i * 160 - 30 : (i + 1) * 160 + 80] = True
    assert np.array_equal(y[~touched], x[~touched])
    # and the concealed stretches line up with the original (no shift): correlation peaks at lag 0
    seg = slice(19 * 160, 22 * 160)
    a, b = x[seg].astype(np.float64), y[seg].astype(np.float64)
    lags = range(-40, 41)
    corr = [float(np.dot(a[50:-50], b[50 + k : len(b) - 50 + k])) for k in lags]
    assert list(lags)[int(np.argmax(corr))] == 0


@settings(max_examples=60, deadline=None)
@given(
    lost=st.lists(st.booleans(), min_size=1, max_size=40),
    lookahead=st.integers(0, 4),
    rate=st.sampled_from([8000, 16000]),
    ms=st.sampled_from([10, 20, 30]),
    seed=st.integers(0, 1000),
)
def test_any_loss_pattern_keeps_the_length(lost: List[bool], lookahead: int, rate: int, ms: int, seed: int) -> None:
    if all(lost):
        lost = [False] + lost[1:]
    size = rate * ms // 1000
    rng = np.random.default_rng(seed)
    x = speech_like(len(lost) * ms / 1000 + 0.05, seed=seed % 7)
    if rate == 16000:
        x = np.repeat(x, 2)
    x = (x[: len(lost) * size] * rng.uniform(0.0, 3.0)).clip(-32768, 32767).astype(np.int16)
    y = conceal(frames_of(x, size, lost), rate=rate, lookahead_frames=lookahead)
    assert y.dtype == np.int16 and len(y) == len(lost) * size
    if lookahead == 0:  # and it is still the live concealer
        frames = frames_of(x, size, lost)
        live = like_the_receiver(frames, size, rate)
        d = Concealer(size, rate).latency_samples
        lead = lost.index(False) * size
        assert np.array_equal(y[lead : len(y) - d], live[d:])


SNR_SEEDS = range(8)


def _snr_pair(seed: int) -> "tuple[float, float]":
    x = speech_like(4.0, seed=seed)
    lost = random_loss(200, 0.10, 1000 + seed)
    lost[0] = False
    frames = frames_of(x, 160, lost)
    return (snr_db(x, conceal(frames, lookahead_frames=0)), snr_db(x, conceal(frames, lookahead_frames=1)))


def test_lookahead_1_beats_lookahead_0_in_snr_at_10_percent_loss() -> None:
    """Measured on a speech-like signal, eight loss patterns: never worse, and better on average by over 1 dB
    (at the time of writing: +1.2 to +6 dB per pattern)."""
    pairs = [_snr_pair(seed) for seed in SNR_SEEDS]
    gains = [one - zero for zero, one in pairs]
    assert min(gains) >= 0.0, pairs
    assert float(np.mean(gains)) > 1.0, pairs


def test_interpolated_gap_has_no_click() -> None:
    """The joins at both ends of an interpolated gap are continuous: no sample step far beyond the signal's own."""
    t = np.arange(8000) / 8000
    x = np.rint(6000 * np.sin(2 * np.pi * 130 * t) + 2500 * np.sin(2 * np.pi * 260 * t + 0.4)).astype(np.int16)
    steady = float(np.max(np.abs(np.diff(x.astype(np.float64)))))
    for gap in ([20], [20, 21]):
        lost = np.zeros(50, dtype=bool)
        lost[gap] = True
        y = conceal(frames_of(x, 160, lost), lookahead_frames=2).astype(np.float64)
        region = y[gap[0] * 160 - 60 : (gap[-1] + 1) * 160 + 60]
        assert float(np.max(np.abs(np.diff(region)))) < 1.3 * steady
        assert snr_db(x[gap[0] * 160 : (gap[-1] + 1) * 160], y[gap[0] * 160 : (gap[-1] + 1) * 160]) > 10.0


def test_silence_stays_silent_and_full_scale_does_not_wrap() -> None:
    silent = [np.zeros(160, np.int16), None, np.zeros(160, np.int16), None, None]
    for look in (0, 1, 2):
        assert not conceal(silent, lookahead_frames=look).any()
    t = np.arange(3200) / 8000
    loud = np.where(np.sin(2 * np.pi * 100 * t) >= 0, 32767, -32768).astype(np.int16)
    lost = np.zeros(20, dtype=bool)
    lost[[5, 10, 11]] = True
    for look in (0, 1, 2):
        y = conceal(frames_of(loud, 160, lost), lookahead_frames=look)
        assert y.dtype == np.int16 and len(y) == len(loud)


def test_leading_and_trailing_losses() -> None:
    x = speech_like(0.4, seed=2)
    frames = frames_of(x, 160, [True, True] + [False] * 16 + [True, True])
    for look in (0, 1, 4):
        y = conceal(frames, lookahead_frames=look)
        assert not y[:320].any()  # nothing to conceal from yet
        assert np.array_equal(y[320 : 16 * 160], x[320 : 16 * 160])  # 3.75 ms before a loss may be cross-faded
        assert np.abs(y[-320:]).any()  # the trailing loss is extrapolated, not silenced


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        (([],), {}, ValueError, "empty"),
        (([None, None],), {}, ValueError, "every frame is lost"),
        (([np.zeros(160, np.int16), np.zeros(80, np.int16)],), {}, ValueError, "80 samples"),
        (([np.zeros(160, np.float64)],), {}, TypeError, "dtype"),
        (([np.zeros(160, np.int32)],), {}, TypeError, "dtype"),
        (([[0] * 160],), {}, TypeError, "not a numpy array"),
        (([np.zeros((2, 80), np.int16)],), {}, ValueError, "1-D"),
        (([np.zeros(0, np.int16)],), {}, ValueError, "empty arrays"),
        (([np.zeros(160, np.int16)],), {"lookahead_frames": -1}, ValueError, ">= 0"),
        (([np.zeros(160, np.int16)],), {"lookahead_frames": 1.5}, TypeError, "lookahead_frames"),
        (([np.zeros(160, np.int16)],), {"rate": 44100}, ValueError, "rate"),
        (([np.zeros(160, np.int16)],), {"rate": 8000.0}, TypeError, "rate"),
        ((np.zeros(160, np.int16).tobytes(),), {}, TypeError, "sequence"),
        ((None,), {}, TypeError, "sequence"),
    ],
)
def test_bad_input_is_refused_clearly(args: tuple, kwargs: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        conceal(*args, **kwargs)
