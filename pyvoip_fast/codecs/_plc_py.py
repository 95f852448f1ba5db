"""Pure-Python twin of ``pyvoip_fast.codecs._plc`` (the compiled inner loop of ``codecs.plc.Concealer``).

Same function, same checks, same messages, same result to the bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["push", "push_float"]


def _view(obj: Any, fmt: str, writable: bool) -> memoryview:
    """``obj`` as a 1-D C-contiguous buffer of ``fmt`` items, refused as Cython refuses it otherwise."""
    view = memoryview(obj)  # TypeError for a non-buffer, as in the compiled module
    if view.ndim != 1:
        raise ValueError(f"Buffer has wrong number of dimensions (expected 1, got {view.ndim})")
    if view.format.lstrip("@=<") != fmt:
        raise ValueError(f"Buffer dtype mismatch, expected {fmt!r} but got {view.format!r}")
    if not view.c_contiguous:
        raise ValueError("ndarray is not C-contiguous")
    if writable and view.readonly:
        raise ValueError("buffer source array is read-only")
    return view


def _push(hist: Any, samples: Any, out: Any, delay: int, fmt: str) -> float:
    h = np.frombuffer(_view(hist, "d", True), dtype=np.float64)
    src = np.frombuffer(_view(samples, fmt, False), dtype=np.int16 if fmt == "h" else np.float64)
    dst = np.frombuffer(_view(out, "h", True), dtype=np.int16)
    if not -(1 << 63) <= delay < (1 << 63):
        raise OverflowError("Python int too large to convert to C ssize_t")
    size, n = len(h), len(src)
    if len(dst) != n:
        raise ValueError(f"out holds {len(dst)} samples, the frame has {n}")
    if delay < 0:
        raise ValueError(f"delay must not be negative, got {delay}")
    if n + delay > size:
        raise ValueError(f"a frame of {n} samples with a delay of {delay} does not fit a history of {size}")
    if n == 0:
        return 0.0
    h[: size - n] = h[n:]
    h[size - n :] = src
    with np.errstate(invalid="ignore"):
        seg = np.rint(h[size - n - delay : size - delay])
    seg[np.isnan(seg)] = 0.0
    np.clip(seg, -32768, 32767, out=seg)
    dst[:] = seg.astype(np.int16)
    if fmt == "h":  # int16 squares summed in float64 are exact whatever the order: the compiled sum to the bit
        wide = src.astype(np.float64)
        return float(np.dot(wide, wide))
    return 0.0


def push(hist: Any, samples: Any, out: Any, delay: int) -> float:
    """Append the int16 ``samples`` (a received frame) to the history ``hist`` (float64, shifted in place) and write
    the ``len(samples)`` samples that end ``delay`` samples before its newest into ``out`` (int16): rounded half to
    even, saturated, NaN as 0. ``samples`` and ``out`` must not overlap ``hist``.

    Returns:
        The sum of the squares of ``samples`` (exact: int16 squares summed in a double), the frame's energy.

    Raises:
        TypeError: an argument is not a buffer.
        ValueError: a buffer of another type, shape or layout (or a read-only ``hist`` or ``out``); ``out`` not as
            long as ``samples``; the frame does not fit the history with the delay; a negative ``delay``.
        OverflowError: ``delay`` beyond a C ``Py_ssize_t``.
    """
    return _push(hist, samples, out, delay, "h")


def push_float(hist: Any, samples: Any, out: Any, delay: int) -> None:
    """``push`` for float64 ``samples`` (the concealment's own, or a frame cross-faded into it); returns None."""
    _push(hist, samples, out, delay, "d")
