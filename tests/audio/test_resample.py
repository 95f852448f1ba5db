"""Rates are the codec's: ``resampled()`` on real signals (8 <-> 16 kHz), and every source and sink's ``rate``.

The resampled stream is compared with what it must be: one-shot ``scipy.signal.resample_poly`` of the whole
source signal (to a rounding step), its spectral peak, its sample count over many reads of odd sizes, its
smoothness across read boundaries (no click: no step larger than the signal's own largest step) and its end.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import List

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from pyvoip_fast import audio
from pyvoip_fast.audio import (
    TARGET_RATE,
    NullSink,
    ResampledSource,
    SilenceSource,
    TeeSink,
    ToneSource,
    WavRecorder,
    load_audio,
    open_source,
    resampled,
)


def peak_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def read_all(src: audio.RatedSource, sizes: List[int], limit: int) -> List[np.ndarray]:
    """Read with the sizes in turn (cycling) until the end or ``limit`` samples."""
    out: List[np.ndarray] = []
    total, i = 0, 0
    while total < limit:
        f = src.read(sizes[i % len(sizes)])
        if len(f) == 0:
            break
        out.append(f)
        total += len(f)
        i += 1
    return out


def max_step(freq: float, amplitude: float, rate: int) -> float:
    """The largest difference between neighbouring samples of a sine, in int16 units."""
    return 2 * amplitude * 32768 * math.sin(math.pi * freq / rate)


# ------------------------------------------------------------------------------------------ resampled()
def test_same_rate_is_the_source_itself() -> None:
    tone = ToneSource(1000)
    assert resampled(tone, TARGET_RATE) is tone
    wide = ToneSource(1000, rate=16000)
    assert resampled(wide, 16000) is wide


@pytest.mark.parametrize("sizes", [[320], [1, 7, 160, 333, 2, 640, 319], [4096]], ids=["320", "odd", "4096"])
def test_8k_tone_to_16k_equals_one_shot_resampling(sizes: List[int]) -> None:
    r = resampled(ToneSource(1000.0, amplitude=0.5), 16000)
    assert isinstance(r, ResampledSource) and r.rate == 16000 and r.in_rate == 8000
    frames = read_all(r, sizes, 32000)
    assert [len(f) for f in frames] == [sizes[i % len(sizes)] for i in range(len(frames))]  # exactly n each
    assert all(f.dtype == np.int16 for f in frames)
    got = np.concatenate(frames)
    assert len(got) >= 32000 and not r.eof

    # the same tone read in one go, resampled in one go: the stream equals it except where the one-shot
    # reference sees the end of its (truncated) input
    ref8 = ToneSource(1000.0, amplitude=0.5).read(len(got) // 2 + 100)
    ref = np.clip(np.rint(resample_poly(ref8 / 32768.0, 2, 1) * 32768), -32768, 32767).astype(np.int16)
    n = len(got) - 100
    assert np.abs(got[:n].astype(np.int32) - ref[:n]).max() <= 1

    body = got[200:32000]
    assert peak_hz(body, 16000) == pytest.approx(1000.0, abs=1.0)
    assert 0.49 * 32768 < np.abs(body).max() < 0.51 * 32768  # the level survives
    # no click anywhere, read boundaries included: no step beyond the 1 kHz sine's own at 16 kHz
    assert np.abs(np.diff(got[40:].astype(np.int32))).max() <= max_step(1000.0, 0.5, 16000) + 2


def test_16k_tone_to_8k_keeps_the_tone_and_removes_what_8k_cannot_carry() -> None:
    r = resampled(ToneSource(1000.0, amplitude=0.5, rate=16000), 8000)
    frames = read_all(r, [160], 16000)
    assert all(len(f) == 160 for f in frames) and len(frames) == 100
    got = np.concatenate(frames)
    assert peak_hz(got[100:], 8000) == pytest.approx(1000.0, abs=1.0)
    assert np.abs(np.diff(got[40:].astype(np.int32))).max() <= max_step(1000.0, 0.5, 8000) + 2

    # 5 kHz is above 8 kHz's Nyquist: without the low-pass it would fold to 3 kHz
    high = resampled(ToneSource(5000.0, amplitude=0.5, rate=16000), 8000)
    folded = np.concatenate(read_all(high, [160], 16000))[200:]
    assert np.abs(folded).max() < 0.01 * 0.5 * 32768  # > 40 dB down


def test_eof_propagates_and_the_tail_is_the_tones_end() -> None:
    tone = ToneSource(1000.0, amplitude=0.5, duration=0.5)  # 4000 samples at 8 kHz
    r = resampled(tone, 16000)
    frames = read_all(r, [320], 10**6)
    assert frames and all(len(f) == 320 for f in frames)  # the last read zero-padded, like every source
    assert r.eof and tone.eof
    assert r.duration == 0.5 and resampled(ToneSource(440), 16000).duration is None  # rate-independent
    assert len(r.read(320)) == 0 and len(r.read(1)) == 0  # then empty, for good
    got = np.concatenate(frames)
    assert 8000 <= len(got) <= 8000 + 2 * 320
    assert np.abs(got[7700:7960]).max() > 0.45 * 32768  # the tone lasts to its end...
    assert np.abs(got[8100:]).max() < 0.01 * 32768  # ...and stops there (only the filter's ringing, then zeros)
    assert list(r.frames()) == []  # frames() on an ended source: nothing


def test_a_16k_file_resampled_to_8k_equals_opening_it_at_8k(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    t = np.arange(16000 * 2) / 16000
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    path = tmp_path / "wide.wav"
    sf.write(str(path), x, 16000, subtype="PCM_16")
    with open_source(path, rate=16000) as wide:
        assert wide.passthrough
        r = resampled(wide, 8000)
        got = np.concatenate(list(r.frames()))  # frames(): 20 ms at the output rate
        assert r.eof
    direct = load_audio(path)  # FileSource resampling the file's float samples itself
    assert len(direct) == 16000 and len(got) >= len(direct)
    assert np.abs(got[: len(direct)].astype(np.int32) - direct).max() <= 1
    # past the file's end: the source's zero padding, resampled: the filter's ringing dies out, then silence
    tail = np.abs(got[len(direct) :].astype(np.int32))
    assert tail[:4].max() < 0.05 * 32768 and not tail[20:].any()


def test_close_closes_the_wrapped_source(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    sf.write(str(path), np.zeros(800, dtype=np.int16), 8000, subtype="PCM_16")
    src = open_source(path)
    with resampled(src, 16000) as r:  # type: ignore[attr-defined]
        assert len(r.read(320)) == 320
    with pytest.raises(ValueError, match="closed"):
        src.read(160)


def test_bad_arguments() -> None:
    class NoRate:
        def read(self, n: int) -> np.ndarray:
            return np.zeros(n, dtype=np.int16)

        def close(self) -> None:
            pass

    with pytest.raises(TypeError, match="no rate"):
        resampled(NoRate(), 16000)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        resampled(ToneSource(440), 0)
    with pytest.raises(ValueError):
        resampled(ToneSource(440), 16000).read(0)


# ------------------------------------------------------------------------------------------ every rate
def test_every_source_and_sink_has_a_rate(tmp_path: Path) -> None:
    path = tmp_path / "r.wav"
    sf.write(str(path), np.zeros(1600, dtype=np.int16), 16000, subtype="PCM_16")
    for cls in (audio.FileSource, ToneSource, SilenceSource, ResampledSource, audio.MicrophoneSource,
                WavRecorder, NullSink, TeeSink, audio.PyAudioSink):
        assert isinstance(getattr(cls, "rate", None), int), cls  # declared on the class, before any instance
    with open_source(path) as f8, open_source(path, rate=16000) as f16:
        assert (f8.rate, f16.rate) == (8000, 16000)
    assert ToneSource(440).rate == TARGET_RATE == 8000
    assert SilenceSource(0.1, rate=16000).rate == 16000
    assert NullSink().rate == 8000 and NullSink(rate=16000).rate == 16000
    with WavRecorder(tmp_path / "w.wav", rate=16000) as rec:
        assert rec.rate == 16000
        rec.write(np.zeros(320, dtype=np.int16))
    assert sf.info(str(tmp_path / "w.wav")).samplerate == 16000


def test_frames_default_to_20_ms_at_the_sources_rate() -> None:
    assert {len(f) for f in ToneSource(440, duration=0.1).frames()} == {160}
    assert {len(f) for f in ToneSource(440, duration=0.1, rate=16000).frames()} == {320}
    assert {len(f) for f in SilenceSource(0.1, rate=16000).frames()} == {320}
    assert {len(f) for f in ToneSource(440, duration=0.1, rate=16000).frames(80)} == {80}  # as asked


def test_tee_sink_takes_its_sinks_rate_and_refuses_mixed_rates(tmp_path: Path) -> None:
    class Plain:  # a sink that does not say its rate
        def write(self, pcm: object) -> None:
            pass

        def close(self) -> None:
            pass

    assert TeeSink(NullSink(rate=16000), Plain()).rate == 16000
    assert TeeSink(Plain()).rate == TARGET_RATE
    assert TeeSink(Plain(), rate=16000).rate == 16000
    with pytest.raises(ValueError, match="8000 Hz, 16000 Hz"):
        TeeSink(NullSink(), NullSink(rate=16000))
    with pytest.raises(ValueError, match="one rate"):
        TeeSink(NullSink(), rate=16000)


@pytest.mark.parametrize("make", [lambda: SilenceSource(rate=0), lambda: WavRecorder("x.wav", rate=0)])
def test_non_positive_rates_are_refused(make: object) -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        make()  # type: ignore[operator]
