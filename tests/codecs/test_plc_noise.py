"""The concealer's noise: LPC analysis (``codecs.lpc``), background estimate, noise mixing and comfort noise."""

from __future__ import annotations

import copy
from typing import List, Sequence, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.codecs import lpc
from pyvoip_fast.codecs.plc import COMFORT_MAX_RMS, Concealer


def toeplitz(c: np.ndarray) -> np.ndarray:
    i = np.arange(len(c))
    return c[np.abs(i[:, None] - i[None, :])]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def noise(seconds: float, level: float, seed: int, rate: int = 8000, cutoff_hz: float = 0.0) -> np.ndarray:
    """Gaussian noise of RMS ``level``; with ``cutoff_hz``, low-pass (nothing above it)."""
    w = np.random.default_rng(seed).standard_normal(int(seconds * rate))
    if cutoff_hz:
        spec = np.fft.rfft(w)
        spec[np.fft.rfftfreq(len(w), 1.0 / rate) > cutoff_hz] = 0.0
        w = np.fft.irfft(spec, len(w))
    return np.clip(np.rint(w / w.std() * level), -32768, 32767).astype(np.int16)


def tone(seconds: float, hz: float, amplitude: float, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def feed_then_lose(x: np.ndarray, lost: int, size: int = 160, rate: int = 8000) -> Tuple[Concealer, np.ndarray]:
    """``x`` frame by frame, then ``lost`` lost frames; returns the concealer and only the synthetic output (the
    held-back real samples at the start of the loss are cut off)."""
    c = Concealer(size, rate)
    for f in x[: len(x) // size * size].reshape(-1, size):
        c.good(f)
    y = np.concatenate([c.lost() for _ in range(lost)]).astype(np.float64)
    return c, y[c.latency_samples :]


def periodicity(y: np.ndarray, lo: int, hi: int) -> float:
    """The largest normalised correlation of ``y`` with itself ``lo .. hi`` samples later."""
    best = -1.0
    for lag in range(lo, hi + 1):
        a, b = y[lag:], y[:-lag]
        best = max(best, float(a @ b / (np.sqrt((a @ a) * (b @ b)) + 1e-9)))
    return best


# ------------------------------------------------------------------ codecs.lpc


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("order", [1, 2, 10, 12, 20])
def test_levinson_solves_the_normal_equations(seed: int, order: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(400) * rng.uniform(1, 5000)
    if seed % 2:  # coloured: a random two-pole filter, by recursion
        p1, p2 = rng.uniform(-1.5, 1.5), rng.uniform(-0.6, 0.3)
        for i in range(2, len(x)):
            x[i] += p1 * x[i - 1] + p2 * x[i - 2]
    r = lpc.autocorrelation(x, order)
    a, err, refl = lpc.levinson(r, order)
    direct = np.linalg.solve(toeplitz(r[:order]), -r[1 : order + 1])
    assert a[0] == 1.0 and len(a) == order + 1
    np.testing.assert_allclose(a[1:], direct, rtol=1e-7, atol=1e-9)
    # the prediction error energy is r0 + sum a_k r_k, and positive; every reflection coefficient below 1
    assert err == pytest.approx(r[0] + float(np.dot(a[1:], r[1:])), rel=1e-7)
    assert 0 < err <= r[0]
    assert np.all(np.abs(refl) < 1)


def test_autocorrelation_is_of_the_windowed_segment() -> None:
    x = np.random.default_rng(9).standard_normal(160)
    w = x * np.hanning(162)[1:-1]
    np.testing.assert_allclose(lpc.autocorrelation(x, 10), [w[: 160 - k] @ w[k:] for k in range(11)])
    assert lpc.autocorrelation(x[:3], 10)[3:].tolist() == [0.0] * 8  # lags beyond a short segment are 0
    assert not lpc.autocorrelation(np.zeros(0), 4).any()


def stability_inputs(rate: int) -> List[np.ndarray]:
    rng = np.random.default_rng(4)
    n = rate // 50
    t = np.arange(n) / rate
    return [
        rng.standard_normal(n) * 3000,  # random
        np.zeros(n),  # silent
        np.clip(rng.standard_normal(n) * 30000, -32768, 32767),  # clipped noise
        np.clip(20000 * np.sin(2 * np.pi * 200 * t) * 5, -32768, 32767),  # a clipped sine: almost a square wave
        np.full(n, 32767.0),  # full-scale DC
        20000 * np.sin(2 * np.pi * 1000 * t),  # a pure tone
        1000 * np.sin(2 * np.pi * 3999 * t * 8000 / rate),  # a tone near Nyquist (at 8 kHz)
        np.where(np.arange(n) % 80 == 0, 32767.0, 0.0),  # an impulse train
        np.array([5.0, -3.0, 2.0]),  # shorter than the order
    ]


@pytest.mark.parametrize("rate, order", [(8000, 10), (8000, 12), (16000, 20)])
def test_lpc_filter_is_stable(rate: int, order: int) -> None:
    for i, x in enumerate(stability_inputs(rate)):
        a, h = lpc.spectral_envelope(x, order, rate, 96)
        poles = np.roots(a) if np.any(a[1:]) else np.zeros(0)
        assert np.all(np.abs(poles) < 1.0), (i, np.abs(poles).max())
        assert np.all(np.isfinite(h)) and float(h @ h) == pytest.approx(1.0), i
    # the recursion never returns an unstable filter, even on an autocorrelation that is not one
    a, err, _ = lpc.levinson(np.array([1.0, 1.0, 1.0, 1.0]), 3)
    assert np.all(np.abs(np.roots(a)) < 1.0 + 1e-12) or not np.any(a[1:])
    a, err, _ = lpc.levinson(np.array([0.0, 0.0, 0.0]), 2)
    assert a.tolist() == [1.0, 0.0, 0.0] and err == 0.0


def test_envelope_filter_shapes_white_noise_like_the_segment() -> None:
    x = noise(0.05, 1000, 1, cutoff_hz=700)
    _, h = lpc.spectral_envelope(x, 10, 8000, 96)
    spec = np.abs(np.fft.rfft(h, 512)) ** 2
    f = np.fft.rfftfreq(512, 1 / 8000)
    assert spec[f < 1000].sum() > 0.9 * spec.sum()


# ------------------------------------------------------------------ background estimate and comfort noise


@pytest.mark.parametrize("rate", [8000, 16000])
def test_long_loss_after_noise_is_noise_at_the_background_level(rate: int) -> None:
    size = rate // 50
    level = 150.0  # background noise under the comfort noise's ceiling (COMFORT_MAX_RMS, -42 dBov)
    x = noise(1.5, level, 2, rate)
    c, y = feed_then_lose(x, 15, size, rate)  # 300 ms
    bg = c.background_rms
    assert bg is not None and 0.8 * level < bg < 1.2 * level
    tail = y[len(y) - 10 * size :]  # the last 200 ms: comfort noise only
    assert 0.5 * level < rms(tail) < 2.0 * level
    # every 20 ms of the loss is noise of about that level: no silence, no fade
    blocks = [rms(y[i : i + size]) for i in range(0, len(y) - size + 1, size)]
    assert min(blocks) > 0.5 * level and max(blocks) < 2.0 * level
    # and not a repeated snippet (buzz): no strong periodicity at any pitch lag, early or late in the loss
    p_lo, p_hi = rate // 200, int(rate * 0.015)
    assert periodicity(y[: 4 * size], p_lo, p_hi) < 0.5
    assert periodicity(tail, p_lo, p_hi) < 0.5


@pytest.mark.parametrize("rate", [8000, 16000])
def test_comfort_noise_never_exceeds_what_a_receiver_treats_as_silence(rate: int) -> None:
    """Louder "background" (a stream without a real pause: the quietest frames of speech) gives comfort noise
    at the ceiling, not at its own level: when such a stream stops, the wait for more still sounds like a pause."""
    size = rate // 50
    x = noise(1.5, 1500, 4, rate)
    c, y = feed_then_lose(x, 15, size, rate)
    assert c.background_rms is not None and c.background_rms > 1000
    assert rms(y[len(y) - 10 * size :]) <= COMFORT_MAX_RMS * 1.15 and COMFORT_MAX_RMS < 300


def test_long_loss_keeps_the_spectral_shape_of_low_pass_noise() -> None:
    def low_fraction(y: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(y)) ** 2
        return float(spec[np.fft.rfftfreq(len(y), 1 / 8000) < 1000].sum() / spec.sum())

    x = noise(1.5, 800, 3, cutoff_hz=800)
    _, y = feed_then_lose(x, 15)
    assert low_fraction(y[-1600:]) > 0.9  # the comfort noise, 100 ms onwards
    assert low_fraction(y[80:800]) > 0.9  # the start of the loss, where the signal's own noise is mixed in
    _, white = feed_then_lose(noise(1.5, 800, 3), 15)
    assert 0.1 < low_fraction(white[-1600:]) < 0.4  # white stays white: the measurement discriminates


@pytest.mark.parametrize("hz, amplitude", [(300.0, 2000.0), (1000.0, 8000.0), (440.0, 600.0)])
def test_long_loss_after_a_tone_is_never_louder_than_the_tone(hz: float, amplitude: float) -> None:
    x = tone(1.5, hz, amplitude)
    level = rms(x)
    _, y = feed_then_lose(x, 15)
    assert rms(y) <= level * 1.05
    assert rms(y[-1600:]) <= min(level, COMFORT_MAX_RMS) * 1.15  # comfort noise: at most the tone's level
    if level > COMFORT_MAX_RMS:
        # above the comfort noise's ceiling (-42 dBov) there is room: no 40 ms window louder than the tone
        assert max(rms(y[i : i + 320]) for i in range(0, len(y) - 320, 80)) <= level


def test_long_loss_after_silence_stays_silent() -> None:
    _, y = feed_then_lose(np.zeros(8000, np.int16), 15)
    assert not y.any()
    quiet = noise(1.5, 3, 5)  # near silence stays near silence
    _, y = feed_then_lose(quiet, 15)
    assert rms(y) < 6 and np.abs(y).max() < 40


def test_background_is_the_quiet_part_of_speech_like_input() -> None:
    """Bursts of a loud tone over quiet noise: the background is the noise, and the comfort noise after a loss in
    a burst is at the noise's level, not the tone's."""
    x = noise(2.0, 100, 6).astype(np.float64)
    t = np.arange(len(x)) / 8000
    bursts = (t % 0.5) > 0.3  # 300 ms of tone each half second
    x += np.where(bursts, 3000 * np.sin(2 * np.pi * 150 * t), 0.0)
    x = np.rint(x).astype(np.int16)
    c, y = feed_then_lose(x[: int(1.95 * 8000)], 15)  # the loss starts inside a burst
    assert c.background_rms is not None and 70 < c.background_rms < 150
    assert 50 < rms(y[-1600:]) < 200


def test_no_background_estimate_before_half_a_second() -> None:
    c, y = feed_then_lose(noise(0.4, 500, 7), 15)
    assert c.background_rms is None
    assert not y[-800:].any()  # without an estimate the concealment fades to silence, as it always did


def test_reentry_after_a_long_loss_is_smooth() -> None:
    x = noise(1.0, 200, 8).astype(np.float64)
    t = np.arange(8000 * 2) / 8000
    v = 3000 * np.sin(2 * np.pi * 140 * t) + 1500 * np.sin(2 * np.pi * 280 * t + 0.3)
    x = np.rint(np.concatenate((x, x[:8000] + v[8000:]))).astype(np.int16)
    frames = x.reshape(-1, 160)
    lost = set(range(60, 72))  # 240 ms inside the tone
    c = Concealer()
    y = np.concatenate([c.lost() if i in lost else c.good(f) for i, f in enumerate(frames)]).astype(np.float64)
    step_ref = np.abs(np.diff(x[7000:].astype(np.float64))).max()
    lo, hi = 59 * 160, 75 * 160
    assert np.abs(np.diff(y[lo:hi])).max() <= 1.3 * step_ref
    d = c.latency_samples
    after = 74 * 160
    assert np.array_equal(y[after + d : after + d + 400], x[after : after + 400].astype(np.float64))


# ------------------------------------------------------------------ determinism, deep copies, robustness


def drive(c: Concealer, frames: Sequence[np.ndarray], lost: Sequence[bool]) -> np.ndarray:
    return np.concatenate([c.lost() if gone else c.good(f) for f, gone in zip(frames, lost)])


def test_two_concealers_fed_alike_play_alike_and_a_deep_copy_continues_alike() -> None:
    x = noise(2.0, 400, 10).reshape(-1, 160)
    lost = [False] * 100
    for i in (30, 31, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 80):
        lost[i] = True
    a, b = drive(Concealer(), x, lost), drive(Concealer(), x, lost)
    assert np.array_equal(a, b) and np.abs(a[50 * 160 :]).max() > 0
    # a deep copy taken in the middle of a loss continues exactly as the original
    c = Concealer()
    drive(c, x[:53], lost[:53])
    assert c.in_loss
    twin = copy.deepcopy(c)
    assert np.array_equal(drive(c, x[53:], lost[53:]), drive(twin, x[53:], lost[53:]))
    # a different seed gives different noise
    assert not np.array_equal(drive(Concealer(seed=1), x, lost), a)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.sampled_from([8000, 16000]),
    ms=st.sampled_from([10, 20, 30]),
    data=st.data(),
)
def test_random_frames_and_losses_never_break_it(rate: int, ms: int, data: st.DataObject) -> None:
    size = rate * ms // 1000
    count = data.draw(st.integers(1, 60))
    seed = data.draw(st.integers(0, 2**32 - 1))
    lost = data.draw(st.lists(st.booleans(), min_size=count, max_size=count))
    kind = data.draw(st.sampled_from(["noise", "full", "silent", "dc"]))
    rng = np.random.default_rng(seed)
    if kind == "noise":
        x = rng.integers(-32768, 32768, size=(count, size)).astype(np.int16) >> rng.integers(0, 15)
    elif kind == "full":
        x = np.where(rng.random((count, size)) < 0.5, -32768, 32767).astype(np.int16)
    elif kind == "silent":
        x = np.zeros((count, size), np.int16)
    else:
        x = np.full((count, size), rng.integers(-32768, 32768), np.int16)
    c = Concealer(size, rate, seed=seed)
    for f, gone in zip(x, lost):
        y = c.lost() if gone else c.good(f)
        assert len(y) == size and y.dtype == np.int16
        assert np.all(np.isfinite(c._hist))
    if kind == "silent":
        assert not c._hist.any()


class _EveryLossTheLongWay(Concealer):
    """The concealer with every concealed sample computed through the fade's gains (no shortcut past 60 ms)."""

    __slots__ = ()

    def _synth(self, n: int) -> np.ndarray:
        return self._faded(n)


@settings(max_examples=40, deadline=None)
@given(
    rate=st.sampled_from([8000, 16000, 48000]),
    ms=st.sampled_from([10, 20, 30]),
    level=st.sampled_from([0, 30, 300, 3000]),
    seed=st.integers(0, 2**32 - 1),
    pattern=st.lists(st.tuples(st.integers(1, 60), st.integers(1, 20)), min_size=1, max_size=4),
)
def test_a_long_loss_past_the_fade_plays_what_the_fade_would(rate: int, ms: int, level: int, seed: int,
                                                             pattern: List[Tuple[int, int]]) -> None:
    """Past 60 ms a lost frame is only comfort noise (or silence): the shortcut gives the bits, the history and the
    noise generator's state of the general path, over losses that end and start again."""
    size = rate * ms // 1000
    fast, slow = Concealer(size, rate, seed=seed), _EveryLossTheLongWay(size, rate, seed=seed)
    x = noise(0.7, level, seed % 1000, rate) if level else np.zeros(int(0.7 * rate), np.int16)
    frames = list(x[: len(x) // size * size].reshape(-1, size))
    for f in frames:  # past half a second: a background estimate, so comfort noise when the level is not 0
        assert np.array_equal(fast.good(f), slow.good(f))
    k, comfort = 0, False
    for gone, good in pattern:
        for _ in range(gone):
            assert np.array_equal(fast.lost(), slow.lost())
        comfort |= fast._cn_rms > 0.0 and gone * ms > 60
        for _ in range(good):
            f = frames[k % len(frames)]
            k += 1
            assert np.array_equal(fast.good(f), slow.good(f))
        assert np.array_equal(fast._hist, slow._hist) and fast.concealed_frames == slow.concealed_frames
    assert fast._random().standard_normal() == slow._random().standard_normal()
    if level and max(g for g, _ in pattern) * ms > 60:
        assert comfort  # the shortcut's comfort noise was compared, not only its silence


def test_the_shortcut_takes_over_exactly_at_60_ms() -> None:
    c = Concealer(80, 8000)  # 10 ms frames: the sixth lost frame starts at 50 ms, the seventh at 60 ms
    for f in tone(0.3, 300.0, 8000.0).reshape(-1, 80):
        c.good(f)
    calls: List[int] = []
    original = Concealer._faded

    class Counting(Concealer):
        __slots__ = ()

        def _faded(self, n: int) -> np.ndarray:
            calls.append(self._erased)
            return original(self, n)

    d = Counting(80, 8000)
    for f in tone(0.3, 300.0, 8000.0).reshape(-1, 80):
        d.good(f)
    for _ in range(12):
        d.lost()
    assert calls == [0, 80, 160, 240, 320, 400]  # then 480 (60 ms) on: the shortcut
    assert d.concealed_frames == 12 and d._erased == 12 * 80
