"""Pure-Python twin of ``pyvoip_fast.codecs._timescale`` (the compiled lag search of ``codecs.timescale``).

Same function, same checks, same messages, same result to the bit: on int16 samples every dot product and window
energy below is an exact integer in float64 (a few hundred products of at most 2**30), whatever numpy's order of
summation, and the correlation is the same IEEE operations on the same doubles as the compiled one.
``correlate_lags`` is the same search on any float samples (``codecs.timescale`` uses it for float input).
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ._plc_py import _ssize, _view

__all__ = ["best_lag", "correlate_lags", "LAG_TOLERANCE"]

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
