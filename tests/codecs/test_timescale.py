"""Time-scale modification (``pyvoip_fast.codecs.timescale``): lengths, seamless joins, pitch kept, classes, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from helpers import skip_or_fail
from pyvoip_fast import _compat
from pyvoip_fast.codecs import timescale
from pyvoip_fast.codecs.timescale import accelerate, expand

RATE = 8000


def tone(freq: float, seconds: float = 0.06, rate: int = RATE, amp: float = 8000.0, harmonics: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = sum(amp / k * np.sin(2 * np.pi * k * freq * t + 0.3 * k) for k in range(1, harmonics + 1))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def frequency(x: np.ndarray, rate: int = RATE) -> float:
    """The strongest frequency of ``x``, refined by parabolic interpolation of a zero-padded spectrum."""
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x)), 16 * len(x)))
    i = int(np.argmax(spec[1:-1])) + 1
    a, b, c = np.log(spec[i - 1 : i + 2] + 1e-12)
    return (i + 0.5 * (a - c) / (a - 2 * b + c)) * rate / (16 * len(x))


def max_step(x: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(x.astype(np.float64)))))


@pytest.mark.parametrize("fn,sign", [(accelerate, -1), (expand, +1)])
@pytest.mark.parametrize("freq", [110.0, 200.0, 310.0])
def test_a_tone_changes_length_by_whole_periods_and_keeps_pitch_and_continuity(fn, sign, freq) -> None:
    x = tone(freq, 0.5, harmonics=3)
    keep = 200
    r = fn(x, RATE, keep=keep)
    assert r.kind == "voiced"
    assert len(r.samples) == len(x) + sign * r.change
    assert timescale.min_lag(RATE) <= r.change <= timescale.max_lag(RATE)
    periods = r.change * freq / RATE
    assert abs(periods - round(periods)) < 0.05, periods  # whole pitch periods
    assert np.array_equal(r.samples[:keep], x[:keep])  # the history is untouched
    assert max_step(r.samples) <= max_step(x) * 1.02 + 2  # no step at the joins
    assert abs(frequency(r.samples) - frequency(x)) < 0.5, (frequency(r.samples), frequency(x))


def test_expand_then_accelerate_keeps_the_tone_at_16k() -> None:
    x = tone(180.0, 0.3, rate=16000, harmonics=4)
    longer = expand(x, 16000, keep=400)
    assert longer.change > 0 and longer.kind == "voiced"
    shorter = accelerate(longer.samples, 16000, keep=400)
    assert shorter.change > 0
    assert timescale.max_lag(16000) == 240 and timescale.min_lag(16000) == 40
    assert len(shorter.samples) == len(x) + longer.change - shorter.change
    assert abs(frequency(shorter.samples, 16000) - 180.0) < 1.0
    assert max_step(shorter.samples) <= max_step(x) * 1.02 + 2


@pytest.mark.parametrize("fn,sign", [(accelerate, -1), (expand, +1)])
def test_silence_is_stretched_in_the_largest_chunks(fn, sign) -> None:
    x = np.zeros(800, dtype=np.int16)
    r = fn(x, RATE, keep=200)  # 15 ms of lag + 5 ms of window of history: expand may look back the longest lag
    assert r.kind == "quiet" and r.change == timescale.max_lag(RATE)
    assert len(r.samples) == 800 + sign * r.change and not np.any(r.samples)


@pytest.mark.parametrize("fn,sign", [(accelerate, -1), (expand, +1)])
def test_quiet_background_noise_is_stretched_whatever_its_correlation(fn, sign) -> None:
    x = np.rint(np.random.default_rng(1).normal(0, 40, 800)).astype(np.int16)
    r = fn(x, RATE, keep=200)
    assert r.kind == "quiet" and r.change > 0 and len(r.samples) == 800 + sign * r.change


@pytest.mark.parametrize("fn,sign", [(accelerate, -1), (expand, +1)])
def test_loud_white_noise_is_unvoiced_and_keeps_its_level(fn, sign) -> None:
    x = np.rint(np.random.default_rng(2).normal(0, 3000, 1600)).astype(np.int16)
    r = fn(x, RATE, keep=300)
    assert r.kind == "unvoiced" and r.change > 0 and len(r.samples) == 1600 + sign * r.change
    level = np.std(x.astype(float))
    joined = r.samples[300:460].astype(float)  # the splice region: equal-power fade, no dip
    assert 0.75 * level < np.std(joined) < 1.25 * level


@pytest.mark.parametrize("fn", [accelerate, expand])
def test_a_loud_onset_is_refused(fn) -> None:
    """Neither quiet, nor periodic across the splice, nor noise-like (a word starting): nothing is changed."""
    x = np.concatenate((np.zeros(300, np.int16), tone(150.0, 0.1, harmonics=3)))
    r = fn(x, RATE, keep=300)
    assert r.kind == "refused" and r.change == 0 and np.array_equal(r.samples, x)


def test_voiced_false_leaves_voiced_speech_alone_but_still_takes_silence() -> None:
    x = tone(150.0, 0.2, harmonics=3)
    assert accelerate(x, RATE, keep=200, voiced=False).kind == "refused"
    assert expand(x, RATE, keep=200, voiced=False).change == 0
    assert accelerate(np.zeros(400, np.int16), RATE, voiced=False).kind == "quiet"


def test_max_change_caps_the_lag() -> None:
    x = tone(200.0, 0.2)  # period 40 samples
    r = accelerate(x, RATE, keep=100, max_change=50)
    assert r.change == 40
    assert accelerate(x, RATE, keep=100, max_change=timescale.min_lag(RATE) - 1).kind == "refused"


def test_a_high_correlation_threshold_refuses_a_gliding_pitch() -> None:
    t = np.arange(1600) / RATE
    x = np.rint(8000 * np.sin(2 * np.pi * (100 * t + 3000 * t * t))).astype(np.int16)  # 100 Hz + 6 kHz/s glide
    assert accelerate(x, RATE, keep=400, min_correlation=0.9999).kind == "refused"


def test_float_input_gives_float64_output() -> None:
    x = tone(200.0, 0.1).astype(np.float32)
    r = expand(x, RATE, keep=200)
    assert r.samples.dtype == np.float64 and len(r.samples) == len(x) + r.change
    assert np.allclose(r.samples[:200], x[:200])


@pytest.mark.parametrize("fn", [accelerate, expand])
def test_too_short_input_is_refused_not_an_error(fn) -> None:
    for n in (0, 1, 10, 40):
        r = fn(np.ones(n, dtype=np.int16) * 1000, RATE)
        assert r.change == 0 and len(r.samples) == n


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"rate": 44100}, ValueError, "rate must be one of"),
        ({"rate": True}, ValueError, "rate must be one of"),
        ({"x": np.zeros((2, 400), np.int16)}, ValueError, "one-dimensional"),
        ({"x": np.zeros(400, np.int32)}, TypeError, "int16 or floating-point"),
        ({"x": [0] * 400}, TypeError, "numpy array"),
        ({"x": np.array([0.0, np.nan] * 200)}, ValueError, "NaN"),
        ({"keep": -1}, ValueError, "keep must be"),
        ({"keep": 401}, ValueError, "keep must be"),
        ({"keep": 1.5}, ValueError, "keep must be"),
        ({"max_change": 0}, ValueError, "max_change"),
        ({"min_correlation": 1.5}, ValueError, "min_correlation"),
        ({"quiet_level": -1.0}, ValueError, "quiet_level"),
    ],
)
@pytest.mark.parametrize("fn", [accelerate, expand])
def test_bad_arguments_raise_specific_errors(fn, kwargs, exc, match) -> None:
    args = {"x": np.zeros(400, np.int16), "rate": RATE}
    args.update(kwargs)
    x, rate = args.pop("x"), args.pop("rate")
    with pytest.raises(exc, match=match):
        fn(x, rate, **args)


def test_lag_helpers_check_the_rate() -> None:
    assert (timescale.min_lag(8000), timescale.max_lag(8000)) == (20, 120)
    with pytest.raises(ValueError, match="rate"):
        timescale.max_lag(11025)


@settings(max_examples=150, deadline=None)
@given(
    x=arrays(np.int16, st.integers(0, 900)),
    keep_share=st.floats(0.0, 1.0),
    rate=st.sampled_from([8000, 16000]),
    grow=st.booleans(),
    cap=st.one_of(st.none(), st.integers(1, 300)),
)
def test_any_int16_input_never_crashes_and_gives_the_promised_length(x, keep_share, rate, grow, cap) -> None:
    keep = int(keep_share * len(x))
    r = (expand if grow else accelerate)(x, rate, keep=keep, max_change=cap)
    assert r.samples.dtype == np.int16
    assert len(r.samples) == len(x) + (r.change if grow else -r.change)
    assert r.kind in ("quiet", "voiced", "unvoiced", "refused")
    assert (r.change == 0) == (r.kind == "refused")
    assert 0 <= r.change <= min(timescale.max_lag(rate), cap or 10**9)
    if r.change:
        assert r.change >= timescale.min_lag(rate)
    assert np.array_equal(r.samples[:keep], x[:keep])


# ------------------------------------------------------------------ the compiled lag search (``_timescale``)

def _brute_force(x: np.ndarray, centre: int, half: int, lo: int, hi: int, sign: int) -> tuple:
    """The lag search written out: exact integer sums, then the longest local maximum within the tolerance."""
    a = [int(v) for v in x[centre - half : centre + half]]
    ea = sum(v * v for v in a)
    corr = []
    for lag in range(lo, hi + 1):
        w = [int(v) for v in x[centre - half + sign * lag : centre + half + sign * lag]]
        energy = float(sum(v * v for v in w)) * float(ea)
        dot = float(sum(p * q for p, q in zip(w, a)))
        corr.append(dot / (max(energy, 1e-12) ** 0.5) if energy > 1e-9 else 0.0)
    best = max(corr)
    peaks = [i for i, c in enumerate(corr) if c >= best - 0.02 and (i == 0 or c >= corr[i - 1])
             and (i == len(corr) - 1 or c >= corr[i + 1])]
    return lo + peaks[-1], corr[peaks[-1]]


def test_the_lag_search_follows_its_rule_to_the_bit(impl: str) -> None:
    m = _compat.module_for("_timescale", impl)
    rng = np.random.default_rng(5)
    speech = tone(140.0, 0.2, harmonics=4)
    cases = [(speech, 200, 40, 20, 120, +1), (speech, 800, 40, 20, 120, -1), (speech, 600, 80, 40, 240, +1)]
    for _ in range(40):
        x = (rng.standard_normal(700) * rng.choice([3, 300, 30000])).clip(-32768, 32767).astype(np.int16)
        if rng.integers(0, 4) == 0:
            x[rng.integers(0, 700):] = 0  # a window of silence: correlation 0
        half, lo = int(rng.integers(1, 60)), int(rng.integers(0, 30))
        hi = lo + int(rng.integers(0, 90))
        sign = int(rng.choice([1, -1]))
        centre = int(rng.integers(half + (hi if sign < 0 else 0), 700 - half - (hi if sign > 0 else 0) + 1))
        cases.append((x, centre, half, lo, hi, sign))
    for x, centre, half, lo, hi, sign in cases:
        assert m.best_lag(x, centre, half, lo, hi, sign) == _brute_force(x, centre, half, lo, hi, sign)
    # a 140 Hz tone: the longest lag within the tolerance of the best is a whole number of its periods
    lag, corr = m.best_lag(speech, 800, 40, 20, 120, -1)
    assert corr > 0.98 and abs(lag / (RATE / 140.0) - round(lag / (RATE / 140.0))) < 0.1


@settings(max_examples=150, deadline=None)
@given(data=st.data(), samples=arrays(np.int16, st.integers(2, 300),
                                      elements=st.sampled_from([-32768, -32767, -1, 0, 1, 32767, 12345, -4321])))
def test_the_lag_search_slides_its_window_energy_exactly(impl: str, data: st.DataObject,
                                                          samples: np.ndarray) -> None:
    """The shifted window's energy is carried from one lag to the next (a sample in, a sample out) rather than
    summed again: over full-scale samples, every width, both directions and lag ranges to the very edge, the
    result is still the written-out rule's."""
    m = _compat.module_for("_timescale", impl)
    n = len(samples)
    half = data.draw(st.integers(1, n // 2), label="half")
    sign = data.draw(st.sampled_from([1, -1]), label="sign")
    centre = data.draw(st.integers(half, n - half), label="centre")
    room = n - half - centre if sign > 0 else centre - half
    lo = data.draw(st.integers(0, room), label="lo")
    hi = data.draw(st.integers(lo, room), label="hi")
    assert m.best_lag(samples, centre, half, lo, hi, sign) == _brute_force(samples, centre, half, lo, hi, sign)


def test_the_lag_search_refuses_windows_outside_the_samples(impl: str) -> None:
    m = _compat.module_for("_timescale", impl)
    x = np.zeros(100, dtype=np.int16)
    assert m.best_lag(x, 50, 10, 0, 40, +1) == (40, 0.0)  # exactly up to the end: fits (silence: the longest lag)
    assert m.best_lag(x, 50, 10, 0, 40, -1) == (40, 0.0)  # exactly down to the start: fits
    for args, match in [((50, 10, 0, 41, +1), "do not fit 100 samples"), ((50, 10, 0, 41, -1), "do not fit"),
                        ((5, 10, 0, 1, +1), "do not fit"), ((95, 10, 0, 0, +1), "do not fit"),
                        ((50, 0, 0, 1, +1), "need half >= 1"), ((50, 10, -1, 1, +1), "0 <= lo <= hi"),
                        ((50, 10, 5, 4, +1), "0 <= lo <= hi"), ((50, 10, 0, 1, 2), r"sign \+1 or -1")]:
        with pytest.raises(ValueError, match=match):
            m.best_lag(x, *args)
    with pytest.raises(ValueError):
        m.best_lag(x.astype(np.float64), 50, 10, 0, 4, +1)  # int16 only
    with pytest.raises(ValueError):
        m.best_lag(np.zeros(200, dtype=np.int16)[::2], 50, 10, 0, 4, +1)  # contiguous only
    with pytest.raises(OverflowError):
        m.best_lag(x, 1 << 64, 10, 0, 4, +1)


def test_int16_and_float_input_are_stretched_alike() -> None:
    """int16 samples go through the compiled search, float ones through numpy: the same lags and results."""
    x = tone(180.0, 0.1, harmonics=3)
    for fn in (accelerate, expand):
        a, b = fn(x, RATE, keep=200), fn(x.astype(np.float64), RATE, keep=200)
        assert a.change == b.change > 0 and a.kind == b.kind
        assert np.array_equal(a.samples, np.clip(np.rint(b.samples), -32768, 32767).astype(np.int16))


def test_level_and_crossfade_follow_their_rules_to_the_bit(impl: str) -> None:
    import math

    m = _compat.module_for("_timescale", impl)
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(400) * 9000).clip(-32768, 32767).astype(np.int16)
    x[:4] = [32767, 32767, -32768, -32768]
    for start, stop in ((0, 0), (5, 6), (0, 400), (37, 211)):
        seg = [int(v) for v in x[start:stop]]
        want = (sum(v * v for v in seg) / len(seg) if seg else 0.0,
                sum((p < 0) != (q < 0) for p, q in zip(seg, seg[1:])) / (len(seg) - 1) if len(seg) > 1 else 0.0)
        assert m.level(x, start, stop) == want
    for equal_power in (False, True):
        for a, b, n in ((0, 2, 2), (10, 90, 80), (100, 40, 120), (0, 0, 0)):
            out = np.full(130, 7, dtype=np.int16)
            m.crossfade(x, out, 5, a, b, n, equal_power)
            want = []
            for k in range(n):
                w = (k + 0.5) / n
                wout, win = (math.cos(0.5 * math.pi * w), math.sin(0.5 * math.pi * w)) if equal_power else (1 - w, w)
                want.append(min(32767, max(-32768, round(float(x[a + k]) * wout + float(x[b + k]) * win))))
            assert out[5 : 5 + n].tolist() == want and (out[:5] == 7).all() and (out[5 + n :] == 7).all()
    # two full-scale samples faded with equal power sum past full scale: saturated, not wrapped
    out = np.zeros(1, dtype=np.int16)
    m.crossfade(np.array([32767, 32767], dtype=np.int16), out, 0, 0, 1, 1, True)
    assert out[0] == 32767


def test_level_and_crossfade_refuse_what_does_not_fit(impl: str) -> None:
    m = _compat.module_for("_timescale", impl)
    x = np.zeros(50, dtype=np.int16)
    out = np.zeros(20, dtype=np.int16)
    for start, stop in ((-1, 3), (4, 3), (0, 51)):
        with pytest.raises(ValueError, match="need 0 <= start <= stop <= 50"):
            m.level(x, start, stop)
    for at, a, b, n in ((0, 0, 0, -1), (1, 0, 0, 20), (0, 31, 0, 20), (0, 0, 31, 20), (-1, 0, 0, 1)):
        with pytest.raises(ValueError, match="does not fit"):
            m.crossfade(x, out, at, a, b, n, False)
    frozen = np.zeros(20, dtype=np.int16)
    frozen.flags.writeable = False
    with pytest.raises(ValueError):
        m.crossfade(x, frozen, 0, 0, 0, 5, False)
    with pytest.raises(ValueError):
        m.level(x.astype(np.int32), 0, 5)


def test_stretching_gives_the_same_samples_on_both_implementations() -> None:
    if _compat.implementation() != "cython":
        skip_or_fail("the compiled modules are not built")
    rng = np.random.default_rng(13)
    inputs = [tone(120.0 + 40 * k, 0.06, harmonics=3) for k in range(6)]
    inputs += [(rng.standard_normal(480) * level).clip(-32768, 32767).astype(np.int16) for level in (50, 3000, 30000)]
    results = []
    for impl in ("cython", "python"):
        saved = timescale._timescale
        timescale._timescale = _compat.module_for("_timescale", impl)
        try:
            got = []
            for x in inputs:
                for fn in (accelerate, expand):
                    for voiced in (True, False):
                        r = fn(x, RATE, keep=280, voiced=voiced, min_correlation=0.75)
                        got.append((r.samples.tobytes(), r.change, r.kind))
            results.append(got)
        finally:
            timescale._timescale = saved
    assert results[0] == results[1]
    assert {k for _s, _c, k in results[0]} >= {"voiced", "quiet", "refused"}


# ------------------------------------------------------------------ a whole attempt in one call (``stretch``)

_LEVELS = st.sampled_from([0, 1, 40, 300, 3000, 32767])


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(0, 700), scale=_LEVELS, period=st.floats(12.0, 250.0),
       grow=st.booleans(), voiced=st.booleans(), min_correlation=st.sampled_from([0.0, 0.5, 0.75, 0.9, 1.0]),
       quiet_level=st.sampled_from([0.0, 200.0, 5000.0, 1e9]))
def test_a_whole_attempt_in_one_call_is_the_same_on_both_implementations(
        data: st.DataObject, n: int, scale: int, period: float, grow: bool, voiced: bool, min_correlation: float,
        quiet_level: float) -> None:
    """The compiled ``stretch`` against its twin, which takes the steps one at a time (``best_lag``, ``level``,
    ``crossfade``): periodic, noisy, full-scale and silent buffers of every length, any history, lag caps down to
    the shortest lag, both directions and every class."""
    if _compat.implementation() != "cython":
        skip_or_fail("the compiled modules are not built")
    shape = data.draw(st.sampled_from(["tone", "noise", "edges"]), label="shape")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    if shape == "tone":
        x = (scale * np.sin(2 * np.pi * np.arange(n) / period)).astype(np.int16)
    elif shape == "noise":
        x = (rng.standard_normal(n) * scale).clip(-32768, 32767).astype(np.int16)
    else:
        x = rng.choice(np.array([-32768, 32767, 0], dtype=np.int16), n)
    keep = data.draw(st.integers(0, n), label="keep")
    rate = data.draw(st.sampled_from(timescale.RATES), label="rate")
    lo, half = timescale.min_lag(rate), int(round(0.010 * rate)) // 2
    top = data.draw(st.integers(0, timescale.max_lag(rate)), label="top")
    args = (grow, keep, lo, top, half, min_correlation, quiet_level, voiced, 0.5, 0.3)
    got = _compat.module_for("_timescale", "cython").stretch(x, *args)
    want = _compat.module_for("_timescale", "python").stretch(x, *args)
    assert got[1:] == want[1:]
    if want[0] is None:
        assert got[0] is None and got[1:] == (0, "refused")
    else:
        assert got[0].dtype == np.int16 and np.array_equal(got[0], want[0])
        assert len(got[0]) == n + (got[1] if grow else -got[1]) and lo <= got[1] <= top
        assert np.array_equal(got[0][:keep], x[:keep])  # history is never changed


def test_a_whole_attempt_refuses_arguments_that_do_not_fit(impl: str) -> None:
    m = _compat.module_for("_timescale", impl)
    x = np.zeros(100, dtype=np.int16)
    for keep, lo, top, half in ((-1, 20, 120, 40), (101, 20, 120, 40), (0, 0, 120, 40), (0, 20, -1, 40),
                                (0, 20, 120, 0)):
        with pytest.raises(ValueError, match="need 0 <= keep <= 100, lo >= 1, top >= 0 and half >= 1"):
            m.stretch(x, False, keep, lo, top, half, 0.9, 200.0, True, 0.5, 0.3)
    with pytest.raises(ValueError):
        m.stretch(x.astype(np.float64), False, 0, 20, 120, 40, 0.9, 200.0, True, 0.5, 0.3)  # int16 only
    with pytest.raises(TypeError):
        m.stretch(x, False, 0, 20, 120, 40, "0.9", 200.0, True, 0.5, 0.3)  # a string is no real number
    with pytest.raises(OverflowError):
        m.stretch(x, False, 1 << 64, 20, 120, 40, 0.9, 200.0, True, 0.5, 0.3)
    # windows and lags far longer than the samples (sums past C's limits if taken as given): refused
    for grow in (False, True):
        for lo, top, half in ((23, 94, 8461051983981228994), (23, (1 << 63) - 1, 40), ((1 << 63) - 1, (1 << 63) - 1, 1),
                              (1, (1 << 62) + 1, (1 << 62) + 1)):
            assert m.stretch(x, grow, 50, lo, top, half, 0.9, 200.0, True, 0.5, 0.3)[1:] == m.stretch(
                x, grow, 50, lo, min(top, 100), half, 0.9, 200.0, True, 0.5, 0.3)[1:]
            if half > 100 or lo > 100:
                assert m.stretch(x, grow, 50, lo, top, half, 0.9, 200.0, True, 0.5, 0.3) == (None, 0, "refused")
    # too short for any lag: refused, not an error; silence past the history: quiet, a whole lag removed
    assert m.stretch(x[:30], False, 0, 20, 120, 40, 0.9, 200.0, True, 0.5, 0.3) == (None, 0, "refused")
    # (the window around sample 40 leaves room for lags up to 20: the longest of equally good ones)
    samples, change, kind = m.stretch(x, False, 0, 20, 120, 40, 0.9, 200.0, True, 0.5, 0.3)
    assert (kind, change, len(samples)) == ("quiet", 20, 80)
