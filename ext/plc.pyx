# cython: language_level=3, embedsignature=True, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled inner loop of the packet-loss concealer, exposed as ``pyvoip_fast.codecs._plc``.

Use it through :class:`pyvoip_fast.codecs.plc.Concealer`; ``pyvoip_fast.codecs._plc_py`` is the pure-Python twin
with the same function, checks and messages.
"""
# Strategy
# --------
# The concealer keeps the output timeline (real and synthetic samples) in a float64 history and plays it
# ``delay`` samples late. Every frame, lost or not, shifts that history by one frame and hands out the delayed
# samples as int16: that is all a loss-free stream costs, once per call and frame, so it is one pass in C here
# (a memmove, a copy, and round-half-to-even with saturation, exactly what numpy's ``rint`` + ``clip`` +
# ``astype`` give) instead of six numpy calls; ``push`` also returns the frame's energy, which the concealer's
# background-noise estimate needs for every received frame. Every length is checked before anything is read or written.

from libc.math cimport rint
from libc.string cimport memmove

ctypedef fused sample_t:
    short
    double


cdef double _push(double[::1] hist, const sample_t[::1] samples, short[::1] out, Py_ssize_t delay) except -1.0:
    """The one body of ``push`` and ``push_float``: checks, shift, append, the delayed samples out; returns the
    sum of squares of ``samples`` (summed in order)."""
    cdef Py_ssize_t size = hist.shape[0], n = samples.shape[0], i, base
    cdef double v, energy = 0.0
    if out.shape[0] != n:
        raise ValueError(f"out holds {out.shape[0]} samples, the frame has {n}")
    if delay < 0:
        raise ValueError(f"delay must not be negative, got {delay}")
    if delay > size - n:  # not n + delay > size: that sum can overflow
        raise ValueError(f"a frame of {n} samples with a delay of {delay} does not fit a history of {size}")
    if n == 0:
        return 0.0
    memmove(&hist[0], &hist[n], <size_t>(size - n) * sizeof(double))
    base = size - n
    for i in range(n):
        v = <double>samples[i]
        hist[base + i] = v
        energy += v * v
    base = size - n - delay
    for i in range(n):
        v = rint(hist[base + i])
        if v != v:  # NaN: never made by the concealer, and undefined to convert
            v = 0.0
        elif v > 32767.0:
            v = 32767.0
        elif v < -32768.0:
            v = -32768.0
        out[i] = <short>v
    return energy


def push(double[::1] hist, const short[::1] samples, short[::1] out, Py_ssize_t delay):
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
    return _push(hist, samples, out, delay)


def push_float(double[::1] hist, const double[::1] samples, short[::1] out, Py_ssize_t delay):
    """``push`` for float64 ``samples`` (the concealment's own, or a frame cross-faded into it); returns None."""
    _push(hist, samples, out, delay)
