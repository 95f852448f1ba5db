"""Pure-Python twin of ``pyvoip_fast.codecs._timescale`` (the compiled steps of ``codecs.timescale``).

Same function, same checks, same messages, same result to the bit: on int16 samples every dot product and window
energy below is an exact integer in float64 (a few hundred products of at most 2**30), whatever numpy's order of
summation, and the correlation is the same IEEE operations on the same doubles as the compiled one.
``correlate_lags`` is the same search on any float samples (``codecs.timescale`` uses it for float input).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import numpy as np

from ._plc_py import _real, _ssize, _view

__all__ = ["best_lag", "correlate_lags", "level", "crossfade", "plan", "cut", "stretch", "LAG_TOLERANCE"]

#: lags whose correlation is within this of the best count as equally good (the longest local maximum wins)
LAG_TOLERANCE = 0.02


def correlate_lags(x: np.ndarray, centre: int, half: int, lo: int, hi: int, sign: int) -> Tuple[int, float]:
    """``best_lag`` on float64 samples, unchecked (the caller keeps every window inside ``x``)."""
    a = x[centre - half : centre + half]
    length = len(a)
    if sign > 0:
        region = x[centre - half + lo : centre - half + hi + length]
    else:
        region = x[centre - half - hi : centre - half - lo + length][::-1]
        a = a[::-1]
    # entry i is lag lo + i: the dot products by one C correlation, the windows' energies from a running sum
    dots = np.correlate(region, a, "valid")
    cs = np.concatenate(((0.0,), np.cumsum(region * region)))
    energies = np.maximum(cs[length:] - cs[: len(cs) - length], 0.0)
    ea = float(a @ a)
    norm = np.sqrt(np.maximum(energies * ea, 1e-12))
    corr = np.where(energies * ea > 1e-9, dots / norm, 0.0)
    # the longest local maximum nearly as good as the best one: several pitch periods at once, fewer splices
    peak = np.ones(len(corr), dtype=bool)
    peak[1:] &= corr[1:] >= corr[:-1]
    peak[:-1] &= corr[:-1] >= corr[1:]
    best = float(np.max(corr))
    i = int(np.flatnonzero(peak & (corr >= best - LAG_TOLERANCE))[-1])
    return lo + i, float(corr[i])


def best_lag(x: Any, centre: int, half: int, lo: int, hi: int, sign: int) -> Tuple[int, float]:
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
    samples = np.frombuffer(_view(x, "h", False), dtype=np.int16)
    centre, half, lo, hi = _ssize(centre), _ssize(half), _ssize(lo), _ssize(hi)
    sign = _ssize(sign)
    if not -(1 << 31) <= sign < (1 << 31):
        raise OverflowError("value too large to convert to int")
    n = len(samples)
    if half < 1 or lo < 0 or hi < lo or sign not in (1, -1):
        raise ValueError(f"need half >= 1, 0 <= lo <= hi and sign +1 or -1, got {half}, {lo}, {hi}, {sign}")
    if centre < half or centre > n - half or (sign > 0 and hi > n - half - centre) or (sign < 0 and hi > centre - half):
        raise ValueError(f"windows of {2 * half} samples around {centre} shifted by {sign * lo}..{sign * hi} do not "
                         f"fit {n} samples")
    return correlate_lags(samples.astype(np.float64), centre, half, lo, hi, sign)


def level(x: Any, start: int, stop: int) -> Tuple[float, float]:
    """The mean square of ``x[start:stop]`` and the share of its neighbouring samples that change sign.

    Returns:
        ``(mean_square, crossing_rate)``: ``(0.0, 0.0)`` for no sample, a crossing rate of 0.0 for one.

    Raises:
        TypeError, ValueError: ``x`` not a C-contiguous int16 buffer.
        ValueError: not ``0 <= start <= stop <= len(x)``.
        OverflowError: an index beyond a C ``Py_ssize_t``.
    """
    samples = np.frombuffer(_view(x, "h", False), dtype=np.int16)
    start, stop = _ssize(start), _ssize(stop)
    n = len(samples)
    if start < 0 or stop < start or stop > n:
        raise ValueError(f"need 0 <= start <= stop <= {n}, got {start}, {stop}")
    seg = samples[start:stop].astype(np.int64)
    if not len(seg):
        return 0.0, 0.0
    total = int(np.dot(seg, seg))  # exact in 64 bits, as compiled
    crossings = int(np.count_nonzero((seg[1:] < 0) != (seg[:-1] < 0)))
    return float(total) / float(len(seg)), (float(crossings) / float(len(seg) - 1) if len(seg) > 1 else 0.0)


def crossfade(x: Any, out: Any, at: int, a: int, b: int, n: int, equal_power: bool) -> None:
    """Write ``n`` samples fading from ``x[a:]`` out to ``x[b:]`` in into ``out[at:]``: with ``w = (k + 0.5) / n``,
    ``x[a + k] * (1 - w) + x[b + k] * w`` (linear) or ``x[a + k] * cos(pi/2 w) + x[b + k] * sin(pi/2 w)`` (equal
    power), rounded half to even and saturated to int16. ``out`` must not overlap ``x``.

    Raises:
        TypeError, ValueError: a buffer that is not C-contiguous int16 (``out`` writable).
        ValueError: a negative ``n`` or a stretch outside its buffer.
        OverflowError: an index beyond a C ``Py_ssize_t``.
    """
    src = np.frombuffer(_view(x, "h", False), dtype=np.int16)
    dst = np.frombuffer(_view(out, "h", True), dtype=np.int16)
    at, a, b, n = _ssize(at), _ssize(a), _ssize(b), _ssize(n)
    equal_power = bool(equal_power)
    size = len(src)
    if n < 0 or a < 0 or b < 0 or at < 0 or a > size - n or b > size - n or at > len(dst) - n:
        raise ValueError(f"a fade of {n} samples from {a} and {b} (of {size}) into {at} (of {len(dst)}) does "
                         f"not fit")
    half_pi = 0.5 * math.pi
    for k in range(n):  # libm's cosine and sine of the same doubles as compiled, one sample at a time
        w = (k + 0.5) / n
        if equal_power:
            t = half_pi * w
            wout, win = math.cos(t), math.sin(t)
        else:
            wout, win = 1.0 - w, w
        v = float(np.rint(float(src[a + k]) * wout + float(src[b + k]) * win))
        dst[at + k] = int(min(32767.0, max(-32768.0, v)))


def plan(grow: bool, n: int, keep: int, lo: int, top: int, half: int) -> Optional[Tuple[int, int, int]]:
    """Where an attempt on ``n`` samples splices and which lags fit: ``(s, centre, hi)`` (the splice point, the
    correlation window's centre, the longest lag; every window read stays inside the samples), or None when no lag
    of at least ``lo`` fits. Accelerate splices right after the history; expand too when there is history enough to
    look back into, otherwise as early as that allows. (The compiled ``stretch`` follows the same rule.)"""
    if grow:
        s = keep if keep - half >= lo else max(keep, min(half + top, n - half))
        hi = min(top, s - half, n - s)
        return None if hi < lo or s + half > n else (s, s, hi)
    centre = max(keep, half)
    hi = min(top, n - centre - half, (4 * (n - keep)) // 5)  # room for the shifted window and a P/4 cross-fade
    return None if hi < lo else (keep, centre, hi)


def cut(grow: bool, n: int, s: int, lag: int, half: int) -> Tuple[int, int, int, int, int, int]:
    """The splice of ``lag`` samples at ``s``: ``(first, last, fade, a, b, rest)``, the stretch classified
    (``[first, last)``), then ``fade`` samples fading from ``a`` out to ``b`` in, the rest from ``rest`` on. Expand
    repeats the lag before the splice, fading from what follows it into what preceded it; accelerate leaves out the
    lag after it, fading from it into what follows."""
    if grow:
        return s - lag - half, s + lag, lag, s, s - lag, s
    fade = min(lag, n - s - lag)
    return max(0, s - half), s + lag + fade, fade, s, s + lag, s + lag + fade


def stretch(x: Any, grow: Any, keep: int, lo: int, top: int, half: int, min_correlation: float, quiet_level: float,
            voiced: Any, noise_correlation: float, unvoiced_zcr: float) -> Tuple[Optional[np.ndarray], int, str]:
    """The compiled ``stretch`` (its docstring has the arguments, result and errors), step by step: ``plan``, then
    ``best_lag``, ``cut``, ``level`` and ``crossfade`` in turn. ``(None, 0, "refused")`` when nothing changes."""
    samples = np.frombuffer(_view(x, "h", False), dtype=np.int16)
    grow = bool(grow)
    keep, lo, top, half = _ssize(keep), _ssize(lo), _ssize(top), _ssize(half)
    min_correlation, quiet_level = _real(min_correlation), _real(quiet_level)
    voiced = bool(voiced)
    noise_correlation, unvoiced_zcr = _real(noise_correlation), _real(unvoiced_zcr)
    n = len(samples)
    if keep < 0 or keep > n or lo < 1 or top < 0 or half < 1:
        raise ValueError(f"need 0 <= keep <= {n}, lo >= 1, top >= 0 and half >= 1, got {keep}, {lo}, {top}, {half}")
    where = plan(grow, n, keep, lo, top, half)
    if where is None:
        return None, 0, "refused"
    s, centre, hi = where
    lag, corr = best_lag(samples, centre, half, lo, hi, -1 if grow else 1)
    first, last, fade, a, b, rest = cut(grow, n, s, lag, half)
    mean_square, crossing_rate = level(samples, first, last)
    if math.sqrt(mean_square) < quiet_level:
        kind = "quiet"
    elif voiced and corr >= min_correlation:
        kind = "voiced"
    elif corr < noise_correlation and last - first > 1 and crossing_rate > unvoiced_zcr:
        kind = "unvoiced"
    else:
        return None, 0, "refused"
    out = np.empty(n + lag if grow else n - lag, dtype=np.int16)
    out[:s] = samples[:s]
    crossfade(samples, out, s, a, b, fade, kind != "voiced")
    out[s + fade :] = samples[rest:]
    return out, lag, kind
