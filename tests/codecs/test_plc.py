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


# ------------------------------------------------------------------ the received-frame path (``_plc.Timeline``)

def _timeline(m: Any, hist_len: int = 64, frame_len: int = 16) -> Any:
    return m.Timeline(np.zeros(hist_len), np.zeros(frame_len), 4, 16, 8, 1.01, 2.5)


@pytest.mark.parametrize("impl", ["cython", "python"])
def test_timeline_tracks_the_background_by_its_rules(impl: str) -> None:
    """Floor down at once and up by at most ``rise`` per sample; a frame within ``margin`` times the floor is
    background: the energy moves 20 % towards it (the first one sets it) and never exceeds ``margin`` x floor."""
    m = _plc_module(impl)
    t = _timeline(m)
    assert t.floor < 0 and t.background_frame is None and t.seen == 0
    out = np.zeros(16, dtype=np.int16)
    assert t.push(np.full(16, 100, dtype=np.int16), out) is True  # the first frame sets floor and energy
    assert (t.floor, t.energy, t.seen) == (10000.0, 10000.0, 16)
    assert t.background_frame.tolist() == [100.0] * 16
    raised = 10000.0 * 1.01 ** 16
    assert t.push(np.full(16, 1000, dtype=np.int16), out) is False  # speech: the floor rises, no background
    assert t.floor == raised and t.energy == 10000.0 and t.background_frame.tolist() == [100.0] * 16
    assert out.tolist() == [100] * 4 + [1000] * 12  # the output lags the timeline by 4 samples
    assert t.push(np.full(16, 50, dtype=np.int16), out) is True  # quieter: the floor falls to it at once
    assert t.floor == 2500.0
    assert t.energy == min(10000.0 + 0.2 * (2500.0 - 10000.0), 2.5 * 2500.0) == 6250.0  # capped by the margin
    assert t.background_frame.tolist() == [50.0] * 16
    assert t.push(np.full(4, 9, dtype=np.int16), np.zeros(4, dtype=np.int16)) is False  # under min_samples
    assert t.seen == 48 and t.floor == 2500.0


@pytest.mark.parametrize("impl", ["cython", "python"])
def test_timeline_sums_the_energy_from_the_history_when_not_pushed_as_int16(impl: str) -> None:
    m = _plc_module(impl)
    t = _timeline(m, frame_len=8)
    m.push_float(t.hist, np.full(12, 0.5), np.zeros(12, dtype=np.int16), 4)
    assert t.track(12) is True and t.floor == 0.25 and t.seen == 12
    assert t.background_frame.tolist() == [0.5] * 8  # the newest samples, as many as the buffer holds
    # longer than the history: its whole history is measured (12 samples of 0.5 among 64), and it is quieter
    assert t.track(200) is True and t.seen == 212 and t.floor == 3.0 / 64
    assert t.energy == 2.5 * 3.0 / 64  # 0.25 moved 20 % towards 3/64, then capped by the margin


@pytest.mark.parametrize("impl", ["cython", "python"])
def test_timeline_refuses_what_it_cannot_use_and_changes_nothing(impl: str) -> None:
    m = _plc_module(impl)
    with pytest.raises(ValueError, match="delay must not be negative"):
        m.Timeline(np.zeros(8), np.zeros(4), -1, 4, 2, 1.01, 2.5)
    with pytest.raises(ValueError, match="frame_samples must be positive"):
        m.Timeline(np.zeros(8), np.zeros(4), 1, 0, 2, 1.01, 2.5)
    with pytest.raises(ValueError, match="min_samples must not be negative"):
        m.Timeline(np.zeros(8), np.zeros(4), 1, 4, -2, 1.01, 2.5)
    for rise, margin in ((0.0, 2.5), (float("nan"), 2.5), (1.01, float("inf")), (1.01, -1.0)):
        with pytest.raises(ValueError, match="rise and margin must be positive and finite"):
            m.Timeline(np.zeros(8), np.zeros(4), 1, 4, 2, rise, margin)
    with pytest.raises(ValueError):
        m.Timeline(np.zeros(8, dtype=np.float32), np.zeros(4), 1, 4, 2, 1.01, 2.5)  # float64 only
    frozen = np.zeros(8)
    frozen.flags.writeable = False
    with pytest.raises(ValueError):
        m.Timeline(frozen, np.zeros(4), 1, 4, 2, 1.01, 2.5)
    t = _timeline(m)
    t.push(np.full(16, 100, dtype=np.int16), np.zeros(16, dtype=np.int16))
    before = (t.hist.copy(), t.floor, t.energy, t.seen)
    with pytest.raises(ValueError, match="out holds 15 samples, the frame has 16"):
        t.push(np.full(16, 3, dtype=np.int16), np.zeros(15, dtype=np.int16))
    with pytest.raises(ValueError, match="does not fit a history of 64"):
        t.push(np.full(61, 3, dtype=np.int16), np.zeros(61, dtype=np.int16))
    with pytest.raises(ValueError):
        t.push(np.full(16, 3.0), np.zeros(16, dtype=np.int16))  # int16 frames only
    assert np.array_equal(t.hist, before[0]) and (t.floor, t.energy, t.seen) == before[1:]


def test_timeline_gives_the_same_bits_on_both_implementations() -> None:
    """Speech, silence, clipped and cross-faded (float) frames of several lengths: the timeline, the output and the
    estimate agree to the bit after every frame."""
    import copy

    rng = np.random.default_rng(11)
    frames = []
    for i in range(400):
        n = (160, 160, 160, 80, 30, 200)[int(rng.integers(0, 6))]
        level = (3, 300, 3000, 32767)[i % 4] if i % 7 else 0
        frames.append((rng.standard_normal(n) * level).clip(-32768, 32767))
    states = []
    for impl in ("cython", "python"):
        m = _plc_module(impl)
        t = m.Timeline(np.zeros(391), np.zeros(160), 30, 160, 40, 10.0 ** (3.0 / 10.0 / 8000), 2.5)
        seen = []
        for i, f in enumerate(frames):
            out = np.zeros(len(f), dtype=np.int16)
            if len(f) <= 361 and i % 5:
                took = t.push(np.rint(f).astype(np.int16), out)
            else:
                m.push_float(t.hist, f, out, 30)
                took = t.track(len(f))
            frame = t.background_frame
            seen.append((took, out.tobytes(), t.hist.tobytes(), t.floor, t.energy, t.seen,
                         None if frame is None else frame.tobytes()))
        twin = copy.deepcopy(t)  # a copy holds copies of the arrays and continues alike
        assert twin.hist is not t.hist and twin.floor == t.floor and twin.seen == t.seen
        a, b = np.zeros(160, dtype=np.int16), np.zeros(160, dtype=np.int16)
        t.push(np.full(160, 7, dtype=np.int16), a)
        twin.push(np.full(160, 7, dtype=np.int16), b)
        assert np.array_equal(a, b) and twin.energy == t.energy
        states.append(seen)
    assert states[0] == states[1]


def test_a_copied_concealer_keeps_its_own_timeline() -> None:
    import copy

    c = Concealer(N)
    for f in voiced(0.2).reshape(-1, N):
        c.good(f)
    twin = copy.deepcopy(c)
    assert twin._timeline.hist is twin._hist and twin._hist is not c._hist
    f = voiced(0.04)[:N]
    assert np.array_equal(c.good(f), twin.good(f)) and np.array_equal(c.lost(), twin.lost())


def test_a_long_loss_imports_nothing_while_it_is_concealed() -> None:
    """The first long loss of a process must not import numpy's random or FFT modules inside the media tick: that
    import (about 12 ms) would make every call of the process late. Checked in a fresh interpreter, where nothing
    else has loaded them."""
    import subprocess
    import sys

    probe = (
        "import sys, numpy as np\n"
        "from pyvoip_fast.codecs.plc_lookahead import LookaheadConcealer\n"
        "c = LookaheadConcealer(160, 8000)\n"
        "t = np.arange(160 * 60)\n"
        "x = (3000 * np.sin(2 * np.pi * 200 * t / 8000) * (t < 160 * 30) + 60 * np.sin(t * 1.7)"
        " + 40 * np.cos(t * 2.9)).astype(np.int16)\n"
        "for i in range(50): c.good(x[i * 160:(i + 1) * 160])\n"
        "before = set(sys.modules)\n"
        "out = [c.lost() for _ in range(30)]\n"
        "assert max(abs(int(v)) for f in out[-5:] for v in f) > 0, 'no comfort noise: the noise path did not run'\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported during the loss: {done.stdout.strip()}"
