"""Sample-rate conversion of streams: the block-wise polyphase resampler and :func:`resampled` for any source.

Strategy
--------
:class:`StreamResampler` runs ``scipy.signal.resample_poly`` (polyphase FIR, Kaiser-windowed anti-aliasing
low-pass at the lower Nyquist frequency) on a stream fed in blocks of any size. Block boundaries are invisible:
every block is resampled together with a margin of input on both sides that covers the filter's half length (a
multiple of the decimation factor, so output phases line up), and only the outputs whose whole filter support
lies inside the block plus margin are kept. The stream therefore equals one-shot ``resample_poly`` of the whole
signal to floating-point rounding, so a stream cut into 20 ms frames has no clicks at the cuts. The price is a
look-ahead of that margin (about 1.5 ms of input between 8 and 16 kHz).

:func:`resampled` wraps a source that has a ``rate`` into one at another rate (the source itself when the rates
are equal), so a 16 kHz call can send an 8 kHz tone or file source and vice versa. :class:`FileSource
<pyvoip_fast.audio.files.FileSource>` uses the same resampler on the file's float samples.

Owns :class:`StreamResampler`, :class:`ResampledSource` and :func:`resampled`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional, Protocol

import numpy as np

from .base import QueuedSource, float_to_int16

__all__ = ["StreamResampler", "RatedSource", "ResampledSource", "resampled"]


def as_float(pcm: np.ndarray) -> np.ndarray:
    """int16 samples as float64 in [-1, 1) (the inverse of :func:`~pyvoip_fast.audio.base.float_to_int16`)."""
    return np.asarray(pcm, dtype=np.int16).astype(np.float64) / 32768.0


class StreamResampler:
    """Block-wise ``resample_poly`` from ``in_rate`` to ``out_rate`` whose output equals the one-shot result.

    ``feed(x)`` takes the next float64 input samples and returns the outputs that are final; ``finish()``
    returns the rest once the input has ended.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        frac = Fraction(out_rate, in_rate)
        self.up, self.down = frac.numerator, frac.denominator
        # resample_poly's default filter: half_len = 10 * max(up, down) taps in the up-sampled domain
        half_len = 10 * max(self.up, self.down)
        # the very filter resample_poly would design on every call (Kaiser, beta 5, cutoff at the lower
        # Nyquist), designed once: passing it as `window` gives identical output without the per-block firwin
        from scipy.signal import firwin

        self.fir = firwin(2 * half_len + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0))
        need = half_len // self.up + 2  # input samples each output depends on, on either side
        self.margin = -(-need // self.down) * self.down  # multiple of down: outputs stay phase-aligned
        self.buf = np.zeros(0, dtype=np.float64)
        self.buf_start = 0  # global input index of buf[0], multiple of down
        self.produced = 0  # global output samples emitted
        self.total_in = 0

    def out_len(self, n_in: int) -> int:
        """Output samples that ``n_in`` input samples become in all (what ``resample_poly`` returns)."""
        return -(-n_in * self.up // self.down)

    def _run(self, final: bool) -> np.ndarray:
        from scipy.signal import resample_poly

        end_in = self.buf_start + len(self.buf)
        if final:
            k_end = self.out_len(end_in)
        else:
            k_end = max(0, (end_in - self.margin) * self.up // self.down)
        if k_end <= self.produced or len(self.buf) == 0:
            return np.zeros(0, dtype=np.float64)
        y = resample_poly(self.buf, self.up, self.down, window=self.fir)
        k0 = self.buf_start * self.up // self.down
        out = y[self.produced - k0 : k_end - k0]
        self.produced = k_end
        # keep what the next outputs need: from (first input of output k_end) - margin, aligned down
        keep_from = max(0, (k_end * self.down // self.up) - self.margin)
        keep_from -= keep_from % self.down
        if keep_from > self.buf_start:
            self.buf = self.buf[keep_from - self.buf_start :]
            self.buf_start = keep_from
        result: np.ndarray = out
        return result

    def feed(self, x: np.ndarray) -> np.ndarray:
        """Take the next input samples (float); return the output samples now final (possibly none)."""
        self.total_in += len(x)
        self.buf = np.concatenate((self.buf, x)) if len(self.buf) else x.astype(np.float64, copy=True)
        return self._run(final=False)

    def finish(self) -> np.ndarray:
        """The input has ended: return the remaining output samples."""
        return self._run(final=True)


class RatedSource(Protocol):
    """A :class:`~pyvoip_fast.audio.base.Source` that has a ``rate`` (every source in this package has)."""

    rate: int

    def read(self, n_samples: int) -> np.ndarray: ...

    def close(self) -> None: ...


class ResampledSource(QueuedSource):
    """``source`` read at ``rate`` Hz: streamed through a :class:`StreamResampler`. Use :func:`resampled`.

    ``read(n)`` keeps the source contract (exactly ``n`` samples, the last read zero-padded, then empty arrays);
    it reads from ``source`` only as much as the ``n`` outputs need, plus the resampler's look-ahead once.

    Attributes:
        source: the wrapped source (closed by :meth:`close`).
        rate: output sample rate.
        in_rate: the source's rate.
        duration: the source's ``duration`` in seconds (resampling does not change it), ``None`` if it has none.
        eof: True once the source ended and every resampled sample was returned.
    """

    def __init__(self, source: RatedSource, rate: int) -> None:
        self.source = source
        self.rate = int(rate)
        self.in_rate = int(source.rate)
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if self.in_rate <= 0:
            raise ValueError(f"the source's rate must be positive, got {source.rate}")
        duration = getattr(source, "duration", None)
        self.duration: Optional[float] = None if duration is None else float(duration)
        self._resampler = StreamResampler(self.in_rate, self.rate)
        QueuedSource.__init__(self)

    def _fill(self, need: int) -> None:
        r = self._resampler
        while len(self._pending) < need and not self._input_done:
            # input for the missing outputs, plus the look-ahead the resampler holds back before its first ones
            missing = need - len(self._pending)
            ask = -(-missing * r.down // r.up)
            if r.total_in == 0:
                ask += r.margin
            x = self.source.read(ask)
            if len(x) == 0:
                self._input_done = True
                self._pending.push(float_to_int16(r.finish()))
                break
            self._pending.push(float_to_int16(r.feed(as_float(x))))

    def close(self) -> None:
        """Close the wrapped source (idempotent if the source's ``close`` is)."""
        self.source.close()

    def __enter__(self) -> "ResampledSource":
        return self


def resampled(source: RatedSource, rate: int) -> RatedSource:
    """``source`` delivered at ``rate`` Hz: the source itself when its ``rate`` already is that, else a
    :class:`ResampledSource` (streaming polyphase resampling, no clicks at frame boundaries, EOF passed on).

    Args:
        source: any source with a ``rate`` attribute (every source in :mod:`pyvoip_fast.audio` has one).
        rate: the rate the consumer needs, e.g. the negotiated codec's sample rate.

    Raises:
        TypeError: ``source`` has no ``rate``.
        ValueError: a non-positive ``rate`` (either one).
    """
    if getattr(source, "rate", None) is None:
        raise TypeError(f"{type(source).__name__} has no rate attribute: cannot tell what to resample from")
    if int(rate) <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if int(source.rate) == int(rate):
        return source
    return ResampledSource(source, rate)
