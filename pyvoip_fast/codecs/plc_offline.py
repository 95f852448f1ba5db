"""Packet-loss concealment of a whole recorded stream, with the live receiver's algorithm and optional lookahead.

``conceal(frames, rate=..., lookahead_frames=...)`` takes one decoded frame per packet (``None`` for a lost one)
and returns the concealed signal as one int16 array, time-aligned with the input. It drives the very
:class:`~pyvoip_fast.codecs.plc_lookahead.LookaheadConcealer` the live receiver runs, frame by frame, giving it
exactly the next ``lookahead_frames`` frames each time (a live receiver gives it what its jitter buffer holds of
them), then removes the concealer's output delay (``latency_samples``). The algorithm is described in
:mod:`pyvoip_fast.codecs.plc_lookahead`; with ``lookahead_frames=0`` it is the plain
:class:`~pyvoip_fast.codecs.plc.Concealer`, so the result equals the receiver's output sample for sample, only
without its delay.

May import: numpy, ``pyvoip_fast.errors`` and ``pyvoip_fast._compat`` only (the codecs layer).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from .plc_lookahead import RATES, LookaheadConcealer, check_rate_and_lookahead

__all__ = ["conceal", "RATES"]


def _validate(frames: Sequence[Optional[np.ndarray]], rate: int, lookahead_frames: int) -> Tuple[
        List[Optional[np.ndarray]], int]:
    """Check the arguments; return the frames as a list and the frame length."""
    check_rate_and_lookahead(rate, lookahead_frames)
    if isinstance(frames, (str, bytes, bytearray)) or not hasattr(frames, "__len__"):
        raise TypeError("frames must be a sequence of int16 numpy arrays (None for a lost frame)")
    items = list(frames)
    if not items:
        raise ValueError("frames is empty")
    size = -1
    for i, f in enumerate(items):
        if f is None:
            continue
        if not isinstance(f, np.ndarray):
            raise TypeError(f"frame {i} is a {type(f).__name__}, not a numpy array (or None)")
        if f.dtype != np.int16:
            raise TypeError(f"frame {i} has dtype {f.dtype}, expected int16")
        if f.ndim != 1:
            raise ValueError(f"frame {i} has shape {f.shape}, expected a 1-D array")
        if size < 0:
            size = len(f)
        elif len(f) != size:
            raise ValueError(f"frame {i} has {len(f)} samples, the first frame has {size}: all must be equal")
    if size < 0:
        raise ValueError("every frame is lost (None): nothing to conceal from")
    if size == 0:
        raise ValueError("frames are empty arrays")
    return items, size


def conceal(frames: Sequence[Optional[np.ndarray]], *, rate: int = 8000, lookahead_frames: int = 1) -> np.ndarray:
    """Conceal the lost frames of a whole stream; see the module docstring for the algorithm.

    Args:
        frames: one int16 1-D numpy array per packet, all of the same length, ``None`` for a lost packet.
        rate: the sample rate of the decoded audio, 8000 or 16000 Hz.
        lookahead_frames: how many frames after the one being played a live receiver would already hold. 0
            reproduces the live receiver's concealment exactly; with ``L >= 1`` the last ``L`` frames of a gap
            (all of a gap of at most ``L``) before a good frame are interpolated between past and future instead
            of only extrapolated from the past.

    Returns:
        int16 samples, ``len(frames) * frame length`` of them, time-aligned with the input (a loss-free input comes
        out unchanged).

    Raises:
        TypeError: ``frames`` is not a sequence of int16 numpy arrays and Nones; ``rate`` or ``lookahead_frames``
            is not an int.
        ValueError: empty ``frames``, every frame lost, frames of unequal length or not 1-D, a negative
            ``lookahead_frames``, or a rate other than 8000/16000.
    """
    items, size = _validate(frames, rate, lookahead_frames)
    look = int(lookahead_frames)
    lc = LookaheadConcealer(size, int(rate), look)
    d = lc.latency_samples
    count = len(items)
    out = np.empty(count * size + d, dtype=np.int16)  # out[k] is sample k - d
    for i, f in enumerate(items):
        out[i * size : (i + 1) * size] = lc.conceal(f, items[i + 1 : i + 1 + look])
    out[count * size :] = lc.flush()
    result: np.ndarray = out[d:]
    return result
