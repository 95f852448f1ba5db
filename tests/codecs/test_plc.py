"""G.711 Appendix I style packet-loss concealment on 8 kHz int16 PCM."""

from __future__ import annotations

from typing import Any, Set

import numpy as np
import pytest

from helpers import skip_or_fail
from pyvoip_fast.codecs.plc import Concealer

FS = 8000
N = 160


def voiced(seconds: float = 2.0, f0: float = 140.0) -> np.ndarray:
    """A vowel-like periodic signal: harmonics of f0 with a slow amplitude wobble."""
    t = np.arange(int(seconds * FS)) / FS
    env = 1.0 + 0.1 * np.sin(2 * np.pi * 3 * t)
    x = env * (3000 * np.sin(2 * np.pi * f0 * t) + 1500 * np.sin(2 * np.pi * 2 * f0 * t + 0.3)
               + 800 * np.sin(2 * np.pi * 3 * f0 * t + 1.0))
    return np.rint(x).astype(np.int16)


def play(x: np.ndarray, lost: Set[int], conceal: bool) -> np.ndarray:
    """Frame by frame through a Concealer (or silence substitution); output re-aligned to the input."""
    c = Concealer(N)
    out = []
    for i, f in enumerate(x.reshape(-1, N)):
        if i in lost:
            out.append(c.lost() if conceal else np.zeros(N, np.int16))
        else:
            out.append(c.good(f) if conceal else f)
    y = np.concatenate(out).astype(np.float64)
    if conceal:
        d = c.latency_samples
        y = np.concatenate((y[d:], np.zeros(d)))
    return y


def snr(ref: np.ndarray, y: np.ndarray) -> float:
    e = ref.astype(np.float64) - y
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(np.sum(e**2), 1e-9)))


def test_loss_free_stream_is_bit_exact_and_delayed() -> None:
    x = voiced(1.0)
    c = Concealer()
    y = np.concatenate([c.good(f) for f in x.reshape(-1, N)])
    d = c.latency_samples
    assert d == 30  # 3.75 ms
    assert y.dtype == np.int16
    assert np.array_equal(y[d:], x[:-d])
    assert not y[:d].any()
    assert c.concealed_frames == 0


@pytest.mark.parametrize("lost, margin_db", [({20}, 15.0), ({20, 21}, 8.0), ({30, 31, 32}, 3.0)])
def test_concealment_beats_silence(lost: Set[int], margin_db: float) -> None:
    x = voiced()
    seg = slice(min(lost) * N, (max(lost) + 1) * N)
    with_plc = snr(x[seg], play(x, lost, True)[seg])
    silent = snr(x[seg], play(x, lost, False)[seg])
    assert silent == pytest.approx(0.0, abs=0.01)  # silence: all of the signal is error
    # the longer the loss, the more of it is attenuated on purpose (silence after 60 ms)
    assert with_plc > silent + margin_db


def test_attenuation_then_silence_after_60_ms() -> None:
    # 400 ms of audio before the loss: too little for a background estimate (500 ms), so there is no comfort
    # noise to fade to and the concealment fades to silence (test_plc_noise.py covers the comfort noise)
    x = voiced()
    c = Concealer()
    for f in x[: 20 * N].reshape(-1, N):
        c.good(f)
    y = np.concatenate([c.lost() for _ in range(6)]).astype(np.float64)  # 120 ms of loss
    d = c.latency_samples
    syn = y[d:]  # the synthetic part (the first d samples are real audio)
    peak = np.abs(x[: 20 * N]).max()
    block = [np.abs(syn[i : i + 80]).max() for i in range(0, 480, 80)]
    assert block[0] > 0.8 * peak  # full level for the first 10 ms
    # 20 % per 10 ms after the first 10 ms: each 10 ms block at most the ramp's starting gain
    for k in range(1, 6):
        assert block[k] <= (1.0 - 0.2 * (k - 1)) * peak * 1.15 + 1
    assert block[4] < 0.45 * peak
    assert not syn[480:].any()  # silence from 60 ms on
    assert c.concealed_frames == 6
    assert c.in_loss


@pytest.mark.parametrize("lost", [{20}, {20, 21, 22}, {20, 21, 22, 23, 24, 25, 26, 27}])
def test_no_clicks_at_joins(lost: Set[int]) -> None:
    x = voiced()
    y = play(x, lost, True)
    # the largest sample-to-sample step anywhere stays close to the signal's own largest step
    step_ref = np.abs(np.diff(x.astype(np.float64))).max()
    lo, hi = (min(lost) - 1) * N, (max(lost) + 2) * N
    assert np.abs(np.diff(y[lo:hi])).max() <= 1.3 * step_ref
    # and the output after the loss is the real signal again
    after = (max(lost) + 2) * N
    assert np.array_equal(y[after : after + 400], x[after : after + 400].astype(np.float64))


def test_pitch_found() -> None:
    for f0 in (80.0, 100.0, 160.0, 200.0):
        c = Concealer()
        for f in voiced(0.3, f0).reshape(-1, N):
            c.good(f)
        c.lost()
        assert abs(c._pitch - FS / f0) <= 1 or abs(c._pitch - 2 * FS / f0) <= 1


def test_silence_stays_silent_and_other_frame_sizes() -> None:
    for n in (80, 240, 480):
        c = Concealer(n)
        assert not c.good(np.zeros(n, np.int16)).any()
        out = c.lost()
        assert len(out) == n and out.dtype == np.int16 and not out.any()
    with pytest.raises(ValueError):
        Concealer(0)
    with pytest.raises(ValueError):
        Concealer().good(np.zeros((2, 80), np.int16))


def test_full_scale_does_not_wrap() -> None:
    x = np.tile(np.array([32767] * 40 + [-32768] * 40, dtype=np.int16), 20)
    c = Concealer()
    for f in x.reshape(-1, N):
        c.good(f)
    for _ in range(3):
        y = c.lost()
        assert y.dtype == np.int16
    y = c.good(x[:N])
    assert y.min() >= -32768 and y.max() <= 32767


# ------------------------------------------------------------------ the compiled timeline shift (``_plc``)

def _plc_module(impl: str) -> Any:
    """``codecs._plc`` (compiled) or its twin; a missing compiled build is a failure under CI=true."""
    from pyvoip_fast import _compat

    if impl == "cython" and _compat.implementation() != "cython":
        skip_or_fail("the compiled modules are not built")
    return _compat.module_for("_plc", impl)


@pytest.mark.parametrize("impl", ["cython", "python"])
def test_timeline_shift_rounds_half_to_even_and_saturates(impl: str) -> None:
    m = _plc_module(impl)
    hist = np.array([0.5, 1.5, -0.5, -2.5, 40000.0, -40000.0, np.nan, np.inf, 7.0, 8.0])
    out = np.zeros(4, dtype=np.int16)
    m.push_float(hist, np.array([1.0, 2.0, 3.0, 4.0]), out, 0)
    # the oldest four were shifted out; the newest four are handed out with no delay
    assert out.tolist() == [1, 2, 3, 4] and hist[:6].tolist()[:2] == [40000.0, -40000.0]
    out7 = np.zeros(7, dtype=np.int16)
    m.push_float(np.zeros(7), np.array([0.5, 1.5, -0.5, -2.5, 40000.0, -40000.0, np.nan]), out7, 0)
    # numpy's rint: half to even; beyond int16 saturates; NaN plays as 0
    assert out7.tolist() == [0, 2, 0, -2, 32767, -32768, 0]
    hist = np.arange(10, dtype=np.float64)
    out3 = np.zeros(3, dtype=np.int16)
    energy = m.push(hist, np.array([-9, 9, 9], dtype=np.int16), out3, 4)
    assert out3.tolist() == [6, 7, 8] and hist.tolist() == [3, 4, 5, 6, 7, 8, 9, -9, 9, 9]
    # a received frame's energy comes back with it (the background estimate reads it), exact even at full scale
    assert energy == 243.0
    loud = np.full(160, -32768, dtype=np.int16)
    assert m.push(np.zeros(400), loud, np.zeros(160, dtype=np.int16), 30) == 160 * 32768.0**2
    assert m.push(np.zeros(4), np.zeros(0, dtype=np.int16), np.zeros(0, dtype=np.int16), 0) == 0.0
    assert m.push_float(np.zeros(4), np.ones(2), np.zeros(2, dtype=np.int16), 0) is None


@pytest.mark.parametrize("impl", ["cython", "python"])
def test_timeline_shift_refuses_what_does_not_fit(impl: str) -> None:
    m = _plc_module(impl)
    hist = np.zeros(8)
    frame = np.zeros(4, dtype=np.int16)
    with pytest.raises(ValueError, match="out holds 3 samples, the frame has 4"):
        m.push(hist, frame, np.zeros(3, dtype=np.int16), 0)
    with pytest.raises(ValueError, match="does not fit a history of 8"):
        m.push(hist, frame, np.zeros(4, dtype=np.int16), 5)
    # a delay whose sum with the frame length overflows a C ssize_t is refused, not used (found by the fuzzer)
    with pytest.raises(ValueError, match="does not fit"):
        m.push(hist, frame, np.zeros(4, dtype=np.int16), (1 << 63) - 1)
    with pytest.raises(ValueError, match="must not be negative"):
        m.push(hist, frame, np.zeros(4, dtype=np.int16), -1)
    with pytest.raises(ValueError):
        m.push(hist, frame.astype(np.float64), np.zeros(4, dtype=np.int16), 0)  # push takes int16 frames only
    with pytest.raises(ValueError):
        m.push(hist, frame, np.zeros(8, dtype=np.int16)[::2], 0)  # out must be contiguous
    assert not hist.any()  # nothing was written by a refused call


def test_concealer_output_is_the_same_on_both_implementations() -> None:
    from pyvoip_fast import _compat
    from pyvoip_fast.codecs import plc

    _plc_module("cython")
    rng = np.random.default_rng(3)
    frames = [(rng.standard_normal(160) * 6000).astype(np.int16) for _ in range(60)]
    lost = {5, 6, 20, 21, 22, 23, 40}
    outputs = []
    for impl in ("cython", "python"):
        saved = plc._plc
        plc._plc = _compat.module_for("_plc", impl)
        try:
            c = Concealer(160, 8000)
            outputs.append(np.concatenate([c.lost() if i in lost else c.good(f) for i, f in enumerate(frames)]))
        finally:
            plc._plc = saved
    assert np.array_equal(outputs[0], outputs[1])
