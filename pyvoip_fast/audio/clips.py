"""One short audio file decoded once and played to many calls: a listener that answers every caller with the same
prompt should not open, decode and buffer that file once per call.

Strategy
--------
``ClipCache`` decodes a file (through ``files.open_source``, so any format and rate conversion) the first time a
call asks for it at a given rate, and keeps the int16 samples read-only; ``ClipSource`` plays such an array from
its own position, with the reading contract of every source (exactly ``n`` samples, the last read zero-padded,
then empty arrays). A call then costs a position and a reference instead of a libsndfile handle and a one-second
block buffer (about 26 KB). Files longer than ``max_seconds`` are not cached: ``opener`` then streams them from
disk per call as before. A cached file is decoded again when its size or modification time changes.

Owns :class:`ClipSource` and :class:`ClipCache`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import numpy as np

from .base import TARGET_RATE, BaseSource, check_read_size
from .base import PathLike
from .files import open_source, read_whole

__all__ = ["ClipSource", "ClipCache"]


class ClipSource(BaseSource):
    """Plays ``samples`` (mono int16 at ``rate``, shared and never written) once, from the start.

    Raises:
        ValueError: ``samples`` is not a 1-D int16 array.
    """

    def __init__(self, samples: np.ndarray, *, rate: int = TARGET_RATE) -> None:
        if not isinstance(samples, np.ndarray) or samples.ndim != 1 or samples.dtype != np.int16:
            raise ValueError("a clip is a 1-D int16 numpy array")
        self.samples = samples
        self.rate = int(rate)
        self._pos = 0
        self.eof = len(samples) == 0

    def read(self, n_samples: int) -> np.ndarray:
        """Exactly ``n_samples`` samples (the last read zero-padded), then empty arrays; ``eof`` once drained."""
        if n_samples < 1:
            check_read_size(n_samples)
        if self.eof:
            return np.zeros(0, dtype=np.int16)
        chunk = self.samples[self._pos : self._pos + n_samples]
        self._pos += len(chunk)
        if self._pos >= len(self.samples):
            self.eof = True
        if len(chunk) == n_samples:
            return chunk.copy()
        out = np.zeros(n_samples, dtype=np.int16)
        out[: len(chunk)] = chunk
        return out


class ClipCache:
    """Decoded files by path and rate (see the module notes).

    Args:
        max_seconds: files longer than this are streamed per call instead of cached.
    """

    def __init__(self, max_seconds: float = 120.0) -> None:
        if not max_seconds > 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
        self.max_seconds = float(max_seconds)
        self._clips: Dict[Tuple[str, int], Tuple[Tuple[int, int], np.ndarray]] = {}
        self._too_long: Dict[str, Tuple[int, int]] = {}

    def source(self, path: PathLike, rate: int = TARGET_RATE) -> BaseSource:
        """A fresh source playing ``path`` at ``rate``: a ``ClipSource`` over the cached samples, or the file
        streamed from disk when it is longer than ``max_seconds``.

        Raises:
            AudioFileError: the file cannot be read (as ``open_source``).
        """
        key = (os.fspath(path), int(rate))
        st = os.stat(key[0])
        stamp = (st.st_size, st.st_mtime_ns)
        if self._too_long.get(key[0]) == stamp:
            return open_source(Path(key[0]), rate=rate)
        cached = self._clips.get(key)
        if cached is None or cached[0] != stamp:
            samples = self._decode(Path(key[0]), int(rate))
            if samples is None:
                self._too_long[key[0]] = stamp
                return open_source(Path(key[0]), rate=rate)
            samples.setflags(write=False)
            self._clips[key] = cached = (stamp, samples)
        return ClipSource(cached[1], rate=rate)

    def opener(self, path: PathLike) -> Callable[[int], Any]:
        """``path`` as a source factory taking the call's sample rate (what ``Phone.answer(source=...)`` takes)."""
        return lambda rate: self.source(path, rate)

    def _decode(self, path: Path, rate: int) -> "np.ndarray | None":
        """The whole file at ``rate``, exactly as long as the file (no padding), or None when it is too long."""
        with open_source(path, rate=rate) as src:
            if src.duration > self.max_seconds:
                return None
            return read_whole(src).copy()  # its own array: the cache keeps it, read-only
