"""Synthetic sources: a phase-continuous tone and digital silence, at any ``rate``.

Strategy
--------
Each source computes its samples from the running sample index, so any sequence of ``read(n)`` sizes gives the
same stream as one long read (no phase jumps at frame boundaries) and nothing is buffered. A ``duration``
makes the source finite (the last read zero-padded, then empty arrays); ``None`` makes it endless.

Owns :class:`ToneSource` and :class:`SilenceSource`.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .base import TARGET_RATE, BaseSource, check_read_size, float_to_int16

__all__ = ["ToneSource", "SilenceSource"]


class ToneSource(BaseSource):
    """A phase-continuous sine.

    Args:
        freq_hz: frequency (0 < f < rate/2).
        amplitude: peak relative to full scale (0-1).
        duration: seconds, or ``None`` for endless.
        rate: sample rate.
    """

    def __init__(self, freq_hz: float, amplitude: float = 0.5, duration: Optional[float] = None, *,
                 rate: int = TARGET_RATE) -> None:
        if not 0 < freq_hz < rate / 2:
            raise ValueError(f"frequency must be in (0, {rate / 2}) Hz, got {freq_hz}")
        if not 0 <= amplitude <= 1:
            raise ValueError(f"amplitude must be in [0, 1], got {amplitude}")
        self.freq_hz, self.amplitude, self.rate = float(freq_hz), float(amplitude), int(rate)
        self._total = None if duration is None else int(round(duration * rate))
        self.duration = duration
        self._pos = 0
        self.eof = False

    def read(self, n_samples: int) -> np.ndarray:
        check_read_size(n_samples)
        if self.eof:
            return np.zeros(0, dtype=np.int16)
        idx = np.arange(self._pos, self._pos + n_samples, dtype=np.float64)
        x = float_to_int16(self.amplitude * np.sin(2 * math.pi * self.freq_hz * idx / self.rate))
        self._pos += n_samples
        if self._total is not None and self._pos >= self._total:
            keep = n_samples - (self._pos - self._total)
            x[keep:] = 0
            self.eof = True
            if keep <= 0:
                return np.zeros(0, dtype=np.int16)
        return x


class SilenceSource(BaseSource):
    """Digital silence (``duration`` seconds, or endless)."""

    def __init__(self, duration: Optional[float] = None, *, rate: int = TARGET_RATE) -> None:
        self.rate = int(rate)
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.duration = duration
        self._left = None if duration is None else int(round(duration * rate))
        self.eof = False

    def read(self, n_samples: int) -> np.ndarray:
        check_read_size(n_samples)
        if self.eof:
            return np.zeros(0, dtype=np.int16)
        if self._left is not None:
            if self._left <= 0:
                self.eof = True
                return np.zeros(0, dtype=np.int16)
            self._left -= n_samples
            if self._left <= 0:
                self.eof = True
        return np.zeros(n_samples, dtype=np.int16)
