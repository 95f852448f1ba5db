"""``audio.ClipCache`` / ``ClipSource``: a short file decoded once and played to many calls, frame for frame what
streaming the file gives, sharing one read-only array; long files are still streamed per call."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pyvoip_fast.app.phone import _open_source
from pyvoip_fast.audio import ClipCache, ClipSource, FileSource, open_source


def _frames(src, n: int = 160) -> list:
    out = []
    while True:
        f = src.read(n)
        if len(f) == 0:
            return out
        out.append(f)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_a_clip_plays_exactly_what_streaming_the_file_plays(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "prompt.flac"
    signal = (np.sin(np.arange(22050 * 2 + 333) * 0.05) * 12000).astype(np.int16)  # not a whole frame long
    sf.write(str(path), signal, 22050, subtype="PCM_16")
    cache = ClipCache()
    clip = cache.source(path, rate)
    assert isinstance(clip, ClipSource) and clip.rate == rate
    streamed = _frames(open_source(path, rate=rate), rate // 50)
    played = _frames(clip, rate // 50)
    assert len(played) == len(streamed) and all(np.array_equal(a, b) for a, b in zip(played, streamed))
    assert clip.eof and len(clip.read(160)) == 0


def test_calls_share_one_read_only_array_and_keep_their_own_positions(tmp_path: Path) -> None:
    path = tmp_path / "prompt.wav"
    sf.write(str(path), np.arange(8000, dtype=np.int16), 8000, subtype="PCM_16")
    cache = ClipCache()
    first, second = cache.source(path), cache.source(path)
    assert first.samples is second.samples and not first.samples.flags.writeable
    assert list(first.read(3)) == [0, 1, 2] and list(first.read(2)) == [3, 4]
    assert list(second.read(4)) == [0, 1, 2, 3]
    frame = first.read(4)
    frame[:] = 9  # a caller may write its frame: the shared clip is untouched
    assert list(cache.source(path).read(8)) == list(range(8))
    with pytest.raises(ValueError):
        ClipSource(np.zeros((2, 2), np.int16))
    with pytest.raises(ValueError):
        ClipCache(max_seconds=0)


def test_a_long_file_is_streamed_and_a_changed_file_decoded_again(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(str(path), np.full(8000 * 3, 100, np.int16), 8000, subtype="PCM_16")
    cache = ClipCache(max_seconds=2.0)
    assert isinstance(cache.source(path), FileSource)
    assert isinstance(cache.source(path), FileSource)  # remembered as too long: not decoded again
    sf.write(str(path), np.full(8000, 200, np.int16), 8000, subtype="PCM_16")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    short = cache.source(path)
    assert isinstance(short, ClipSource) and short.read(4).tolist() == [200] * 4


def test_the_phone_calls_a_source_factory_with_the_codec_rate(tmp_path: Path) -> None:
    path = tmp_path / "prompt.wav"
    sf.write(str(path), np.zeros(8000, np.int16), 8000, subtype="PCM_16")
    opener = ClipCache().opener(path)
    wide = _open_source(opener, 16000)
    assert isinstance(wide, ClipSource) and wide.rate == 16000 and len(wide.samples) == 16000
    assert _open_source(opener, 8000).rate == 8000
