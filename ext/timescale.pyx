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
#
# ``stretch`` is a whole attempt in one call: where the splice goes and which lags fit, the search, the
# classification and the spliced buffer (what ``codecs.timescale.accelerate`` and ``expand`` do with int16
# samples). Each step as its own call from Python cost more than the steps themselves (about 18 us an attempt
# against 6); the playout makes an attempt at most once a tick, but many of them while it adapts its delay, at a
# call's start and whenever the machine falls behind, which is when the time is shortest. Its twin composes the
# three steps above, so both follow one rule.

from libc.math cimport M_PI, cos, rint, sin, sqrt
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cimport numpy as cnp

cnp.import_array()

#: lags whose correlation is within this of the best count as equally good (the longest local maximum wins)
LAG_TOLERANCE = 0.02
cdef double _TOLERANCE = LAG_TOLERANCE


cdef int _search(const short *s, Py_ssize_t base, Py_ssize_t half, Py_ssize_t lo, Py_ssize_t hi, int sign,
                 Py_ssize_t *lag, double *best_corr) except -1:
    """The lag search over ``s`` (windows already checked to fit): the window ``s[base : base + 2 half]``."""
    cdef Py_ssize_t count = hi - lo + 1, i, k, start, width = 2 * half, pick = 0
    cdef int64_t dot, energy = 0, ea = 0
    cdef double prod, best, c, lower
    cdef double *corr = <double *>malloc(count * sizeof(double))
    if corr == NULL:
        raise MemoryError()
    with nogil:
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
    lag[0] = lo + pick
    best_corr[0] = corr[pick]
    free(corr)
    return 0


cdef void _level(const short *s, Py_ssize_t start, Py_ssize_t stop, double *mean_square,
                 double *crossing_rate) noexcept nogil:
    cdef Py_ssize_t i, length = stop - start, crossings = 0
    cdef int64_t total = 0
    if length == 0:
        mean_square[0] = 0.0
        crossing_rate[0] = 0.0
        return
    for i in range(start, stop):
        total += <int64_t>s[i] * s[i]
        if i > start and (s[i] < 0) != (s[i - 1] < 0):
            crossings += 1
    mean_square[0] = <double>total / <double>length
    crossing_rate[0] = <double>crossings / <double>(length - 1) if length > 1 else 0.0


cdef void _fade(const short *s, short *out, Py_ssize_t at, Py_ssize_t a, Py_ssize_t b, Py_ssize_t n,
                bint equal_power) noexcept nogil:
    cdef Py_ssize_t k
    cdef double w, t, wout, win, v
    for k in range(n):
        w = (k + 0.5) / n
        if equal_power:
            t = 0.5 * M_PI * w
            wout = cos(t)
            win = sin(t)
        else:
            wout = 1.0 - w
            win = w
        v = rint(s[a + k] * wout + s[b + k] * win)
        if v > 32767.0:
            v = 32767.0
        elif v < -32768.0:
            v = -32768.0
        out[at + k] = <short>v


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
    cdef Py_ssize_t n = x.shape[0], lag
    cdef double corr
    if half < 1 or lo < 0 or hi < lo or (sign != 1 and sign != -1):
        raise ValueError(f"need half >= 1, 0 <= lo <= hi and sign +1 or -1, got {half}, {lo}, {hi}, {sign}")
    # the window and every shifted one inside x (compared without sums that could overflow)
    if centre < half or centre > n - half or (sign > 0 and hi > n - half - centre) or (sign < 0 and hi > centre - half):
        raise ValueError(f"windows of {2 * half} samples around {centre} shifted by {sign * lo}..{sign * hi} do not "
                         f"fit {n} samples")
    _search(&x[0], centre - half, half, lo, hi, sign, &lag, &corr)
    return lag, corr


def level(const short[::1] x, Py_ssize_t start, Py_ssize_t stop):
    """The mean square of ``x[start:stop]`` and the share of its neighbouring samples that change sign.

    Returns:
        ``(mean_square, crossing_rate)``: ``(0.0, 0.0)`` for no sample, a crossing rate of 0.0 for one.

    Raises:
        TypeError, ValueError: ``x`` not a C-contiguous int16 buffer.
        ValueError: not ``0 <= start <= stop <= len(x)``.
        OverflowError: an index beyond a C ``Py_ssize_t``.
    """
    cdef Py_ssize_t n = x.shape[0]
    cdef double mean_square, crossing_rate
    if start < 0 or stop < start or stop > n:
        raise ValueError(f"need 0 <= start <= stop <= {n}, got {start}, {stop}")
    if start == stop:
        return 0.0, 0.0
    _level(&x[0], start, stop, &mean_square, &crossing_rate)
    return mean_square, crossing_rate


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
    cdef Py_ssize_t size = x.shape[0]
    if n < 0 or a < 0 or b < 0 or at < 0 or a > size - n or b > size - n or at > out.shape[0] - n:
        raise ValueError(f"a fade of {n} samples from {a} and {b} (of {size}) into {at} (of {out.shape[0]}) does "
                         f"not fit")
    if n > 0:
        with nogil:
            _fade(&x[0], &out[0], at, a, b, n, equal_power)


def stretch(const short[::1] x, bint grow, Py_ssize_t keep, Py_ssize_t lo, Py_ssize_t top, Py_ssize_t half,
            double min_correlation, double quiet_level, bint voiced, double noise_correlation, double unvoiced_zcr):
    """One time-stretch attempt on int16 samples, whole: remove (``grow`` false: ``accelerate``) or insert
    (``expand``) one lag of ``lo..top`` samples right after the ``keep`` samples of history, as
    :mod:`pyvoip_fast.codecs.timescale` describes (the twin's ``plan`` and ``cut`` spell out the same steps).

    Args:
        x: int16 samples (C-contiguous), the first ``keep`` already played.
        lo, top: the lags allowed; half: half the correlation window.
        min_correlation: what voiced audio needs; quiet_level: the RMS under which it is quiet; voiced: whether
            voiced audio may change; noise_correlation, unvoiced_zcr: below this correlation and above this
            zero-crossing rate it is unvoiced.

    Returns:
        ``(samples, change, kind)``: a new int16 array (``len(x) - change`` or ``len(x) + change`` samples), the
        samples removed or inserted and ``"quiet"``, ``"voiced"`` or ``"unvoiced"``; ``(None, 0, "refused")``
        when nothing changes (too short, or audio of no class).

    Raises:
        TypeError, ValueError: ``x`` not a C-contiguous int16 buffer.
        ValueError: not ``0 <= keep <= len(x)``, ``lo < 1``, ``top < 0`` or ``half < 1``.
        OverflowError: an argument beyond its C type.
    """
    cdef Py_ssize_t n = x.shape[0], s, centre, hi, lag, fade, a, b, rest, size, first, last
    cdef double corr, mean_square, crossing_rate
    cdef bint equal_power = True  # the fade: equal-power, linear for voiced audio
    cdef const short *src
    cdef short *dst
    cdef cnp.ndarray out
    cdef cnp.npy_intp dims[1]
    if keep < 0 or keep > n or lo < 1 or top < 0 or half < 1:
        raise ValueError(f"need 0 <= keep <= {n}, lo >= 1, top >= 0 and half >= 1, got {keep}, {lo}, {top}, {half}")
    if half > n or lo > n:  # no window or no lag fits: nothing changes (and no sum below can overflow)
        return None, 0, "refused"
    top = min(top, n)  # (no lag is longer: the same bounds below, in sums that cannot overflow)
    # where the splice goes and the lags that fit (each bound keeps every window read inside x)
    if grow:
        s = keep if keep - half >= lo else max(keep, min(half + top, n - half))
        hi = min(top, s - half, n - s)
        if hi < lo or s + half > n:
            return None, 0, "refused"
        centre = s
    else:
        s = keep
        centre = max(s, half)
        hi = min(top, n - centre - half, (4 * (n - s)) // 5)
        if hi < lo:
            return None, 0, "refused"
    src = &x[0]
    _search(src, centre - half, half, lo, hi, -1 if grow else 1, &lag, &corr)
    if grow:  # the lag before the splice repeated, fading from what follows it into what preceded it
        first, last, fade, a, b, rest, size = s - lag - half, s + lag, lag, s, s - lag, s, n + lag
    else:  # the lag after the splice left out, fading from it into what follows it
        fade = min(lag, n - s - lag)
        first, last, a, b, rest, size = max(0, s - half), s + lag + fade, s, s + lag, s + lag + fade, n - lag
    _level(src, first, last, &mean_square, &crossing_rate)
    if sqrt(mean_square) < quiet_level:
        kind = "quiet"
    elif voiced and corr >= min_correlation:
        kind, equal_power = "voiced", False
    elif corr < noise_correlation and last - first > 1 and crossing_rate > unvoiced_zcr:
        kind = "unvoiced"
    else:
        return None, 0, "refused"
    dims[0] = size
    out = cnp.PyArray_EMPTY(1, dims, cnp.NPY_INT16, 0)
    dst = <short *>cnp.PyArray_DATA(out)
    with nogil:
        if s > 0:
            memcpy(dst, src, s * sizeof(short))
        _fade(src, dst, s, a, b, fade, equal_power)
        if n > rest:
            memcpy(dst + s + fade, src + rest, (n - rest) * sizeof(short))
    return out, lag, kind
