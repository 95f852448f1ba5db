"""Audio sources and sinks on real files written by the tests in every format libsndfile handles here."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest

from helpers import ROOT
import soundfile as sf
from scipy.signal import resample_poly

from pyvoip_fast.audio import (
    NullSink,
    PyAudioSink,
    SilenceSource,
    TeeSink,
    ToneSource,
    WavRecorder,
    load_audio,
    open_source,
)
from pyvoip_fast.errors import AudioDeviceError, AudioFileError

# (container, subtype, extension)
FORMATS = [
    ("WAV", "PCM_16", "wav"),
    ("WAV", "FLOAT", "wav"),
    ("WAV", "PCM_24", "wav"),
    ("AIFF", "PCM_16", "aiff"),
    ("FLAC", "PCM_16", "flac"),
    ("OGG", "VORBIS", "ogg"),
    ("MP3", "MPEG_LAYER_III", "mp3"),
]
LOSSY = {"VORBIS", "MPEG_LAYER_III"}


def sine(rate: int, seconds: float, freq: float, channels: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    x = amp * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write(path: Path, data: np.ndarray, rate: int, fmt: str, subtype: str) -> Path:
    sf.write(str(path), data, rate, format=fmt, subtype=subtype)
    return path


def peak_hz(x: np.ndarray, rate: int = 8000) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


@pytest.mark.parametrize("fmt, subtype, ext", FORMATS)
@pytest.mark.parametrize("rate, channels", [(44100, 2), (48000, 1), (16000, 2), (22050, 1)])
def test_any_format_rate_and_channels_to_8k_mono(
    tmp_path: Path, fmt: str, subtype: str, ext: str, rate: int, channels: int
) -> None:
    path = write(tmp_path / f"tone.{ext}", sine(rate, 1.5, 1000.0, channels), rate, fmt, subtype)
    with open_source(path) as src:
        assert src.duration == pytest.approx(1.5, abs=0.1 if subtype in LOSSY else 0.001)
        assert not src.passthrough
        pcm = np.concatenate(list(src.frames(160)))
        assert src.eof
    assert pcm.dtype == np.int16
    assert len(pcm) == pytest.approx(12000, abs=1000 if subtype in LOSSY else 160)
    assert peak_hz(pcm[1000:9000]) == pytest.approx(1000.0, abs=2.0)
    # the level survives downmix and resampling: 0.5 full scale -> ~16384 peak
    assert 0.4 * 32768 < np.abs(pcm[1000:9000]).max() < 0.6 * 32768


def test_conversion_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "song.flac", sine(44100, 0.2, 440, 2), 44100, "FLAC", "PCM_16")
    wav = write(tmp_path / "song.wav", sine(44100, 0.2, 440, 2), 44100, "WAV", "FLOAT")
    ok = write(tmp_path / "ready.wav", sine(8000, 0.2, 440, 1), 8000, "WAV", "PCM_16")
    with caplog.at_level(logging.INFO, logger="pyvoip_fast.audio.files"):
        open_source(path).close()
        open_source(wav).close()
        open_source(ok).close()
    text = caplog.text
    assert "[Audio] Converting song.flac: 44100 Hz stereo int16 → 8000 Hz mono int16" in text
    assert "[Audio] Converting song.wav: 44100 Hz stereo float → 8000 Hz mono int16" in text
    assert "[Audio] ready.wav is already 8000 Hz mono int16" in text


def test_anti_aliasing(tmp_path: Path) -> None:
    # 6 kHz at 44.1 kHz would fold to 2 kHz at 8 kHz without the low-pass filter
    rate = 44100
    data = sine(rate, 1.0, 6000.0, 1, amp=0.5) + sine(rate, 1.0, 500.0, 1, amp=0.05)
    path = write(tmp_path / "hf.wav", data, rate, "WAV", "FLOAT")
    pcm = load_audio(path).astype(np.float64)
    spec = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    hz = np.fft.rfftfreq(len(pcm), 1 / 8000)
    alias = spec[np.abs(hz - 2000) < 20].max()
    wanted = spec[np.abs(hz - 500) < 20].max()
    # the 6 kHz tone was 20 dB above the 500 Hz one; its alias must be > 40 dB below the 500 Hz tone
    assert 20 * np.log10(wanted / alias) > 40


@pytest.mark.parametrize("fmt, ext", [("WAV", "wav"), ("AIFF", "aiff")])
def test_8k_mono_int16_passed_through_bit_exact(tmp_path: Path, fmt: str, ext: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-32768, 32768, 12345, dtype=np.int16)
    path = tmp_path / f"ready.{ext}"
    sf.write(str(path), x, 8000, format=fmt, subtype="PCM_16")
    with open_source(path) as src:
        assert src.passthrough
        y = np.concatenate(list(src.frames(160)))
    assert np.array_equal(y[: len(x)], x)
    assert not y[len(x) :].any()  # zero padding only at the end
    assert np.array_equal(load_audio(path), x)


@pytest.mark.parametrize("rate, channels, block", [(44100, 2, 0.1), (48000, 1, 0.37), (11025, 1, 0.05),
                                                   (16000, 2, 2.0), (8000, 2, 0.1)])
def test_streaming_equals_one_shot_resample(tmp_path: Path, rate: int, channels: int, block: float) -> None:
    rng = np.random.default_rng(rate)
    data = np.clip(0.25 * rng.standard_normal((int(rate * 3.1), channels)), -1, 1)
    path = write(tmp_path / "noise.wav", data, rate, "WAV", "DOUBLE")
    with open_source(path, block_seconds=block) as src:
        streamed = np.concatenate(list(src.frames(160)))
        n = int(round(src.duration * 8000))
    mono = data.mean(axis=1)
    ref = resample_poly(mono, 8000, rate) if rate != 8000 else mono
    ref16 = np.clip(np.rint(ref * 32768), -32768, 32767).astype(np.int16)
    assert n == len(ref16)
    diff = np.abs(streamed[:n].astype(np.int32) - ref16)
    assert diff.max() <= 1  # float rounding only
    assert np.mean(diff) < 0.01


def test_long_file_is_streamed(tmp_path: Path) -> None:
    # 60 s at 48 kHz stereo float: 23 MB of float64 if loaded whole; the source only holds ~one block
    rate = 48000
    path = tmp_path / "long.wav"
    with sf.SoundFile(str(path), "w", rate, 2, "FLOAT") as f:
        for _ in range(60):
            f.write(sine(rate, 1.0, 440.0, 2, 0.3).astype(np.float32))
    with open_source(path, block_seconds=0.5) as src:
        assert src.duration == pytest.approx(60.0)
        total = 0
        biggest = 0
        for frame in src.frames(160):
            total += len(frame)
            biggest = max(biggest, len(src._pending), len(src._resampler.buf) if src._resampler else 0)
    assert total == 480000
    assert biggest < 48000  # never more than ~a block in memory


def test_mp3_block_reads_are_consistent(tmp_path: Path) -> None:
    # libsndfile 1.2.2 scrambles block-wise MP3 reads when soundfile calls tell() between them (we read as a stream)
    path = write(tmp_path / "s.mp3", sine(44100, 2.5, 440, 2), 44100, "MP3", "MPEG_LAYER_III")
    a = load_audio(path)
    with open_source(path, block_seconds=0.05) as src:
        b = np.concatenate(list(src.frames(160)))
    assert np.abs(a.astype(np.int32) - b[: len(a)]).max() <= 1


def test_file_named_by_the_wrong_extension_is_read_by_content(tmp_path: Path) -> None:
    path = write(tmp_path / "really_a_wav.mp3", sine(16000, 0.5, 700, 1), 16000, "WAV", "PCM_16")
    pcm = load_audio(path)
    assert len(pcm) == 4000 and peak_hz(pcm) == pytest.approx(700, abs=3)
    path2 = write(tmp_path / "flac_named.wav", sine(22050, 0.5, 700, 2), 22050, "FLAC", "PCM_16")
    assert peak_hz(load_audio(path2)) == pytest.approx(700, abs=3)


def _bad_files(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    good = write(tmp_path / "good.wav", sine(8000, 1.0, 440, 1), 8000, "WAV", "PCM_16").read_bytes()
    flac = write(tmp_path / "good.flac", sine(44100, 2.0, 440, 1), 44100, "FLAC", "PCM_16").read_bytes()
    cases = {}
    (tmp_path / "text.mp3").write_text("this is not audio\n" * 50)
    cases["text.mp3"] = "not an audio file"
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty.wav"] = "empty file"
    (tmp_path / "dir.wav").mkdir()
    cases["dir.wav"] = "is a directory"
    cases["missing.ogg"] = "no such file"
    (tmp_path / "header_only.wav").write_bytes(good[:30])
    cases["header_only.wav"] = "corrupt"
    (tmp_path / "bad_fmt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x02\x00\x00\x00\x01\x00" + b"\x00" * 40)
    cases["bad_fmt.wav"] = "corrupt"
    (tmp_path / "truncated.flac").write_bytes(flac[:3000])
    cases["truncated.flac"] = "corrupt"
    sf.write(str(tmp_path / "no_samples.wav"), np.zeros((0, 1)), 8000)
    cases["no_samples.wav"] = "no audio samples"
    (tmp_path / "random.bin").write_bytes(os.urandom(4000))
    cases["random.bin"] = "not an audio file"
    return cases


def test_bad_files_give_one_line_errors(tmp_path: Path) -> None:
    for name, cause in _bad_files(tmp_path).items():
        with pytest.raises(AudioFileError) as info:
            load_audio(tmp_path / name)
        msg = str(info.value)
        assert msg.startswith(f"{name}: "), msg
        assert cause in msg, msg
        assert "\n" not in msg


def test_unreadable_file(tmp_path: Path) -> None:
    p = write(tmp_path / "locked.wav", sine(8000, 0.1, 440, 1), 8000, "WAV", "PCM_16")
    p.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(AudioFileError, match="locked.wav: permission denied"):
            open_source(p)
        return
    # root reads any file: check in a child process that has lost the capabilities that let it (CI runs as root)
    import shutil
    import subprocess
    import sys

    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to test unreadable files as root"
    code = (
        "from pyvoip_fast.audio import open_source\n"
        "from pyvoip_fast.errors import AudioFileError\n"
        f"try:\n    open_source({str(p)!r})\nexcept AudioFileError as e:\n    print(e)\n"
    )
    root = str(ROOT)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([setpriv, "--bounding-set", "-dac_override,-dac_read_search", sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.strip() == "locked.wav: permission denied", out


def test_read_contract(tmp_path: Path) -> None:
    x = (np.arange(1000) % 100).astype(np.int16)
    p = tmp_path / "ramp.wav"
    sf.write(str(p), x, 8000, subtype="PCM_16")
    src = open_source(p)
    chunks = [src.read(300) for _ in range(4)]
    assert [len(c) for c in chunks] == [300, 300, 300, 300]
    assert np.array_equal(np.concatenate(chunks)[:1000], x)
    assert not chunks[-1][100:].any()
    assert src.eof
    assert len(src.read(300)) == 0
    with pytest.raises(ValueError):
        src.read(0)
    src.close()
    with pytest.raises(ValueError):
        src.read(10)


def test_tone_and_silence_sources() -> None:
    tone = ToneSource(1000, amplitude=0.5, duration=0.5)
    frames = list(tone.frames(160))
    assert len(frames) == 25 and all(len(f) == 160 for f in frames)
    pcm = np.concatenate(frames)
    assert peak_hz(pcm) == pytest.approx(1000, abs=2)
    assert np.abs(pcm).max() == 16384
    # phase continuity: identical to one long sine
    ref = np.rint(0.5 * np.sin(2 * np.pi * 1000 * np.arange(4000) / 8000) * 32768).astype(np.int16)
    assert np.array_equal(pcm, ref)
    endless = ToneSource(440)
    assert all(len(endless.read(160)) == 160 for _ in range(100)) and not endless.eof
    sil = SilenceSource(0.1)
    got = list(sil.frames(160))
    assert len(got) == 5 and not np.concatenate(got).any()
    with pytest.raises(ValueError):
        ToneSource(5000)


def test_wav_recorder_writes_8k_mono_16bit(tmp_path: Path) -> None:
    x = np.arange(-800, 800, dtype=np.int16) * 20
    path = tmp_path / "rec.wav"
    with WavRecorder(path) as rec:
        rec.write(x[:800])
        rec.write(x[800:].tobytes())  # native-endian bytes are accepted too
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (8000, 1, "PCM_16", "WAV")
    y, _ = sf.read(str(path), dtype="int16")
    assert np.array_equal(y, x)
    with pytest.raises(ValueError):
        rec.write(x)
    with pytest.raises(AudioFileError, match="cannot create"):
        WavRecorder(tmp_path / "no_such_dir" / "x.wav")


def test_tee_and_null_sinks(tmp_path: Path) -> None:
    null = NullSink()
    path = tmp_path / "tee.wav"
    rec = WavRecorder(path)
    tee = TeeSink(null, rec)
    for _ in range(10):
        tee.write(np.full(160, 7, np.int16))
    tee.close()
    assert null.frames == 10 and null.samples == 1600
    assert sf.info(str(path)).frames == 1600
    with pytest.raises(ValueError):
        null.write(b"\x00\x01\x02")  # odd length
    with pytest.raises(ValueError):
        null.write(np.zeros(4, np.float32))


def test_pyaudio_missing_is_an_audio_device_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyaudio", None)  # makes "import pyaudio" fail
    with pytest.raises(AudioDeviceError, match="PyAudio is not installed"):
        PyAudioSink()
