"""The audio contract: what a source and a sink are, the default rate, and the PCM helpers every module shares.

Strategy
--------
Sources all have the same pull interface, ``read(n) -> int16 ndarray`` (exactly ``n`` samples, zero-padded only
by the last read before the end, an empty array after it) plus ``frames(n)``, so the media engine never cares
where audio comes from. Sinks have ``write(pcm)`` and ``close()``. Every source and sink carries the sample
``rate`` it was opened with; nothing in the layer assumes a rate, it only defaults to :data:`TARGET_RATE`.

Owns :data:`TARGET_RATE`, the :class:`Source` and :class:`Sink` protocols, the base classes the concrete sources
and sinks share, :func:`as_int16`, and the helpers the other modules use: float/int16 conversion, frame sizes,
the :class:`SampleQueue` between a source's input and its ``read``, one-line error text. Imports nothing from
the other audio modules.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any, Deque, Iterator, Optional, Protocol, Union

import numpy as np

__all__ = ["TARGET_RATE", "Source", "Sink", "BaseSource", "BaseSink", "as_int16"]

#: The default sample rate of every source and sink: 8 kHz, what G.711 (PCMU/PCMA) carries. Codecs at other
#: rates (L16, G.722 at 16 kHz) pass their rate as ``rate=``; :func:`~pyvoip_fast.audio.resampled` adapts a
#: source opened at another rate.
TARGET_RATE = 8000

#: The frame length the defaults are derived from (PortAudio buffers, ``frames()``): 20 ms, the usual ptime.
FRAME_MS = 20

PathLike = Union[str, "os.PathLike[str]"]


def frame_samples(rate: int, ms: int = FRAME_MS) -> int:
    """Samples in ``ms`` milliseconds at ``rate`` Hz (at least one): 160 at 8 kHz, 320 at 16 kHz for 20 ms."""
    return max(1, int(rate) * int(ms) // 1000)


def as_int16(pcm: Any) -> np.ndarray:
    """View ``pcm`` (int16 ndarray, or bytes-like of native-endian int16) as a 1-D int16 array.

    Raises:
        ValueError: odd byte count, wrong dtype or shape.
    """
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise ValueError(f"PCM must be int16, got {pcm.dtype}")
        if pcm.ndim != 1:
            raise ValueError(f"PCM must be 1-D, got shape {pcm.shape}")
        return pcm
    mv = memoryview(pcm).cast("B")
    if len(mv) % 2:
        raise ValueError(f"PCM byte length must be even, got {len(mv)}")
    return np.frombuffer(mv, dtype=np.int16)


def float_to_int16(x: np.ndarray) -> np.ndarray:
    """Scale [-1, 1) floats to int16 with rounding and clipping (never wraps)."""
    y = np.rint(x * 32768.0)
    np.clip(y, -32768.0, 32767.0, out=y)
    return y.astype(np.int16)


def one_line(exc: BaseException) -> str:
    """An exception's text on one line (its type name when it has no text), for one-line error messages."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def check_read_size(n_samples: int) -> None:
    """Raise ``ValueError`` unless ``n_samples`` >= 1 (every ``read`` checks its argument the same way)."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")


class SampleQueue:
    """A FIFO of int16 chunks read out in pieces of any size: what a source holds between its input and ``read``.

    Not thread-safe: a caller shared between threads holds its own lock around every call.
    """

    def __init__(self) -> None:
        self._chunks: Deque[np.ndarray] = deque()
        self._len = 0

    def __len__(self) -> int:
        """Samples queued."""
        return self._len

    def push(self, x: np.ndarray) -> None:
        """Append the int16 samples ``x`` (kept by reference; pass a copy if the caller reuses the buffer)."""
        if len(x):
            self._chunks.append(x)
            self._len += len(x)

    def take_into(self, out: np.ndarray) -> int:
        """Move the oldest samples into ``out`` (as many as fit); return how many were moved."""
        filled = 0
        while filled < len(out) and self._chunks:
            head = self._chunks[0]
            k = min(len(head), len(out) - filled)
            out[filled : filled + k] = head[:k]
            filled += k
            if k == len(head):
                self._chunks.popleft()
            else:
                self._chunks[0] = head[k:]
        self._len -= filled
        return filled

    def discard(self, n: int) -> int:
        """Drop up to ``n`` of the oldest samples; return how many were dropped."""
        dropped = 0
        while dropped < n and self._chunks:
            head = self._chunks[0]
            k = min(len(head), n - dropped)
            if k == len(head):
                self._chunks.popleft()
            else:
                self._chunks[0] = head[k:]
            dropped += k
        self._len -= dropped
        return dropped

    def clear(self) -> None:
        """Drop everything."""
        self._chunks.clear()
        self._len = 0


# ---------------------------------------------------------------------------------------------------- sources
class Source(Protocol):
    """What the media engine reads audio from."""

    def read(self, n_samples: int) -> np.ndarray: ...

    def close(self) -> None: ...


class BaseSource:
    """``rate``, ``eof``, ``frames()`` and the context manager shared by the sources."""

    rate: int = TARGET_RATE
    eof: bool = False

    def read(self, n_samples: int) -> np.ndarray:  # pragma: no cover - every source class defines it
        """``n_samples`` samples of ``rate`` Hz mono int16 (see the module docstring); each source defines it."""
        raise NotImplementedError(f"{type(self).__name__} does not define read()")

    def close(self) -> None:
        """Release resources (idempotent)."""

    def frames(self, n_samples: Optional[int] = None) -> Iterator[np.ndarray]:
        """Yield ``n_samples``-sample frames (default 20 ms at ``rate``) to the end (the last one zero-padded)."""
        n = frame_samples(self.rate) if n_samples is None else n_samples
        while True:
            f = self.read(n)
            if len(f) == 0:
                return
            yield f

    def __enter__(self) -> "BaseSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class QueuedSource(BaseSource):
    """A source that produces its samples in blocks: ``_fill(n)`` pushes PCM into ``_pending`` until ``n``
    samples wait or the input ended (``_input_done``), and ``read(n)`` hands them out ``n`` at a time."""

    def __init__(self) -> None:
        self._pending = SampleQueue()
        self._input_done = False
        self.eof = False

    def _fill(self, need: int) -> None:  # pragma: no cover - every queued source defines it
        raise NotImplementedError(f"{type(self).__name__} does not define _fill()")

    def read(self, n_samples: int) -> np.ndarray:
        """Exactly ``n_samples`` samples (the last read zero-padded), then empty arrays; ``eof`` once drained.

        Raises:
            ValueError: ``n_samples`` < 1.
        """
        check_read_size(n_samples)
        if self.eof:
            return np.zeros(0, dtype=np.int16)
        self._fill(n_samples)
        out = np.zeros(n_samples, dtype=np.int16)
        if self._pending.take_into(out) == 0:
            self.eof = True
            return np.zeros(0, dtype=np.int16)
        if self._input_done and not self._pending:
            self.eof = True
        return out


# ---------------------------------------------------------------------------------------------------- sinks
class Sink(Protocol):
    """Where received audio goes."""

    def write(self, pcm: Any) -> None: ...

    def close(self) -> None: ...


class BaseSink:
    """``rate`` and the context manager shared by the sinks."""

    rate: int = TARGET_RATE

    def close(self) -> None:
        """Flush and release (idempotent)."""

    def __enter__(self) -> "BaseSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
