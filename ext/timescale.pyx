# cython: language_level=3, embedsignature=True, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled lag search of time-stretching, exposed as ``pyvoip_fast.codecs._timescale``.

Use it through :func:`pyvoip_fast.codecs.timescale.accelerate` and :func:`~pyvoip_fast.codecs.timescale.expand`;
``pyvoip_fast.codecs._timescale_py`` is the pure-Python twin with the same function, checks and messages.
"""
# Strategy
# --------
# Every time-stretch attempt (about one per call-second while the playout adapts its delay) searches the lags of
# 2.5-15 ms for the best normalised cross-correlation between a 10 ms window and the same window shifted. In numpy
# that is a dozen calls on arrays of a few hundred samples (a correlation, a running sum, masks), about 20 us;
# here it is one pass. The samples are int16, so every dot product and window energy is an exact integer (summed
# in 64 bits), and the correlation ``dot / sqrt(max(energy * energy_a, 1e-12))`` is then the same IEEE operations
# on the same doubles as the twin's: both give the same bits, and pick the same lag. The shifted window's energy
# slides from one lag to the next (one sample's square in, one out): exact integers, so the same sums as adding
# the window up again, and only the dot product is left in the inner loop (5.9 -> 4.3 us for 101 lags of a 10 ms
# window at 8 kHz). Every window is checked to lie inside the samples before anything is read.
#
# ``level`` (the analysed stretch's energy and zero crossings: quiet, unvoiced?) and ``crossfade`` (the splice:
# two stretches of samples weighted, rounded half to even and saturated into the output) are the rest of an
# attempt on int16 samples; their sums are exact too, and the weights are libm's cosine and sine of the same
# doubles in both implementations.

from libc.math cimport M_PI, cos, rint, sin, sqrt
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

#: lags whose correlation is within this of the best count as equally good (the longest local maximum wins)
LAG_TOLERANCE = 0.02
cdef double _TOLERANCE = LAG_TOLERANCE


def best_lag(const short[::1] x, Py_ssize_t centre, Py_ssize_t half, Py_ssize_t lo, Py_ssize_t hi, int sign):
    """The lag in ``[lo, hi]`` maximising the normalised cross-correlation between the window
    ``x[centre - half : centre + half]`` and the same window shifted by ``sign * lag`` samples, and that correlation.
    Of the local maxima within ``LAG_TOLERANCE`` of the best, the longest lag (several pitch periods at once).

    Args:
        x: int16 samples (C-contiguous).
        centre, half: the window, ``2 * half`` samples around ``centre``.
        lo, hi: the lags searched (``0 <= lo <= hi``).
        sign: +1 (the window later: what replaces it) or -1 (earlier: what repeats it).

    Returns:
        ``(lag, correlation)``; a window of no energy, or a shifted one of none, correlates 0.

    Raises:
        TypeError, ValueError: ``x`` not a C-contiguous int16 buffer.
        ValueError: ``half < 1``, ``lo < 0``, ``hi < lo``, ``sign`` not +1 or -1, or a window (the shifted ones
            included) not inside ``x``.
        OverflowError: an argument beyond its C type.
    """
    cdef Py_ssize_t n = x.shape[0], count, i, k, start, base, width
    cdef int64_t dot, energy = 0, ea = 0
    cdef double prod, best, c, lower
    cdef double *corr
    cdef const short *s
    cdef Py_ssize_t pick = 0
    if half < 1 or lo < 0 or hi < lo or (sign != 1 and sign != -1):
        raise ValueError(f"need half >= 1, 0 <= lo <= hi and sign +1 or -1, got {half}, {lo}, {hi}, {sign}")
    # the window and every shifted one inside x (compared without sums that could overflow)
    if centre < half or centre > n - half or (sign > 0 and hi > n - half - centre) or (sign < 0 and hi > centre - half):
        raise ValueError(f"windows of {2 * half} samples around {centre} shifted by {sign * lo}..{sign * hi} do not "
                         f"fit {n} samples")
    base = centre - half
    count = hi - lo + 1
    corr = <double *>malloc(count * sizeof(double))
    if corr == NULL:
        raise MemoryError()
    try:
        with nogil:
            s = &x[0]
            width = 2 * half
            for k in range(width):
                ea += <int64_t>s[base + k] * s[base + k]
            start = base + sign * lo
            for k in range(width):
                energy += <int64_t>s[start + k] * s[start + k]
            best = -2.0
            for i in range(count):
                start = base + sign * (lo + i)
                if i > 0:  # the shifted window's energy slides by one sample (exact integers: the same sums)
                    if sign > 0:  # in: the last sample, out: the one before the window
                        energy += <int64_t>s[start + width - 1] * s[start + width - 1]
                        energy -= <int64_t>s[start - 1] * s[start - 1]
                    else:  # in: the first sample, out: the one after the window
                        energy += <int64_t>s[start] * s[start]
                        energy -= <int64_t>s[start + width] * s[start + width]
                dot = 0
                for k in range(width):
                    dot += <int64_t>s[start + k] * s[base + k]
                prod = <double>energy * <double>ea
                if prod > 1e-9:
                    c = <double>dot / sqrt(prod if prod > 1e-12 else 1e-12)
                else:
                    c = 0.0
                corr[i] = c
                if c > best:
                    best = c
            lower = best - _TOLERANCE
            for i in range(count):
                c = corr[i]
                if c >= lower and (i == 0 or c >= corr[i - 1]) and (i == count - 1 or c >= corr[i + 1]):
                    pick = i
        return lo + pick, corr[pick]
    finally:
        free(corr)


def level(const short[::1] x, Py_ssize_t start, Py_ssize_t stop):
    """The mean square of ``x[start:stop]`` and the share of its neighbouring samples that change sign.

    Returns:
        ``(mean_square, crossing_rate)``: ``(0.0, 0.0)`` for no sample, a crossing rate of 0.0 for one.

    Raises:
        TypeError, ValueError: ``x`` not a C-contiguous int16 buffer.
        ValueError: not ``0 <= start <= stop <= len(x)``.
        OverflowError: an index beyond a C ``Py_ssize_t``.
    """
    cdef Py_ssize_t n = x.shape[0], i, length, crossings = 0
    cdef int64_t total = 0
    if start < 0 or stop < start or stop > n:
        raise ValueError(f"need 0 <= start <= stop <= {n}, got {start}, {stop}")
    length = stop - start
    if length == 0:
        return 0.0, 0.0
    with nogil:
        for i in range(start, stop):
            total += <int64_t>x[i] * x[i]
            if i > start and (x[i] < 0) != (x[i - 1] < 0):
                crossings += 1
    return <double>total / <double>length, (<double>crossings / <double>(length - 1) if length > 1 else 0.0)


def crossfade(const short[::1] x, short[::1] out, Py_ssize_t at, Py_ssize_t a, Py_ssize_t b, Py_ssize_t n,
              bint equal_power):
    """Write ``n`` samples fading from ``x[a:]`` out to ``x[b:]`` in into ``out[at:]``: with ``w = (k + 0.5) / n``,
    ``x[a + k] * (1 - w) + x[b + k] * w`` (linear) or ``x[a + k] * cos(pi/2 w) + x[b + k] * sin(pi/2 w)`` (equal
    power), rounded half to even and saturated to int16. ``out`` must not overlap ``x``.

    Raises:
        TypeError, ValueError: a buffer that is not C-contiguous int16 (``out`` writable).
        ValueError: a negative ``n`` or a stretch outside its buffer.
        OverflowError: an index beyond a C ``Py_ssize_t``.
    """
    cdef Py_ssize_t size = x.shape[0], k
    cdef double w, t, wout, win, v
    if n < 0 or a < 0 or b < 0 or at < 0 or a > size - n or b > size - n or at > out.shape[0] - n:
        raise ValueError(f"a fade of {n} samples from {a} and {b} (of {size}) into {at} (of {out.shape[0]}) does "
                         f"not fit")
    with nogil:
        for k in range(n):
            w = (k + 0.5) / n
            if equal_power:
                t = 0.5 * M_PI * w
                wout = cos(t)
                win = sin(t)
            else:
                wout = 1.0 - w
                win = w
            v = rint(x[a + k] * wout + x[b + k] * win)
            if v > 32767.0:
                v = 32767.0
            elif v < -32768.0:
                v = -32768.0
            out[at + k] = <short>v
