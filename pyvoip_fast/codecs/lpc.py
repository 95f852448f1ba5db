"""Linear prediction for the packet-loss concealer: the spectral envelope of a short stretch of audio.

* :func:`autocorrelation`: the (biased) autocorrelation of a Hann-windowed segment, lags ``0 .. order``.
* :func:`condition`: a Gaussian lag window (it widens every spectral peak, so a pure tone does not give a filter
  on the edge of instability) and a white-noise correction (a noise floor 40 dB under the signal, which keeps the
  normal equations well conditioned on silence, clipped audio and tones).
* :func:`levinson`: the Levinson-Durbin recursion, the predictor ``A(z) = 1 + a1 z^-1 + ... + ap z^-p`` that
  solves the normal equations; it stops early if a reflection coefficient reaches magnitude 1 (possible only
  through rounding), so the synthesis filter ``1/A(z)`` it returns is always stable.
* :func:`envelope_filter`: an FIR approximation of ``1/A(z)`` (its impulse response, poles pulled inwards by a
  bandwidth expansion, truncated with a taper and scaled to unit energy): white noise convolved with it is noise
  of unit RMS with the segment's spectral envelope. An FIR keeps the per-frame cost in one ``numpy.convolve``.
* :func:`spectral_envelope`: the four steps above in one call.

Arrays are float64 numpy arrays. May import: numpy only (the codecs layer).
"""

from __future__ import annotations

import functools
from typing import Tuple

import numpy as np
import numpy.fft  # noqa: F401  loaded now, not lazily at the first loss that needs an envelope (in the media tick)

__all__ = ["autocorrelation", "condition", "levinson", "envelope_filter", "spectral_envelope"]

#: white-noise correction: ``r[0]`` is raised by this fraction (a noise floor 40 dB down)
WHITE_NOISE = 1e-4
#: bandwidth of the Gaussian lag window, Hz
LAG_WINDOW_HZ = 60.0
#: bandwidth expansion at 8 kHz (pole radii times this; about 100 Hz wider resonances), scaled to other rates
GAMMA_8K = 0.96


@functools.lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    """A Hann window of ``n`` points without its zero end points (read-only, cached per length)."""
    w = np.hanning(n + 2)[1:-1]
    w.setflags(write=False)
    return w


def autocorrelation(x: np.ndarray, order: int) -> np.ndarray:
    """Autocorrelation of the Hann-windowed ``x`` at lags ``0 .. order``.

    Args:
        x: the segment (any real 1-D array).
        order: the highest lag (the predictor order).

    Returns:
        ``order + 1`` float64 values (zeros beyond the segment's length; all zeros for an empty segment).
    """
    seg = np.asarray(x, dtype=np.float64)
    n = len(seg)
    r = np.zeros(order + 1, dtype=np.float64)
    if n == 0:
        return r
    w = seg * _hann(n)
    m = min(order + 1, n)
    # r[k] = sum_i w[i] w[i + k]: one pass of numpy.correlate over the segment padded with ``order`` zeros
    r[:m] = np.correlate(np.concatenate((w, np.zeros(m - 1))), w, "valid")
    return r


def condition(r: np.ndarray, rate: int) -> np.ndarray:
    """Lag window and white-noise correction of an autocorrelation (a new array).

    Args:
        r: autocorrelation at lags ``0 .. p``.
        rate: the sample rate in Hz (the lag window is defined in Hz).

    Returns:
        The conditioned autocorrelation.
    """
    k = np.arange(len(r), dtype=np.float64)
    out = np.asarray(r, dtype=np.float64) * np.exp(-0.5 * (2.0 * np.pi * LAG_WINDOW_HZ * k / rate) ** 2)
    if len(out):
        out[0] *= 1.0 + WHITE_NOISE
    return out


def levinson(r: np.ndarray, order: int) -> Tuple[np.ndarray, float, np.ndarray]:
    """Levinson-Durbin recursion: the order-``order`` linear predictor of a process with autocorrelation ``r``.

    Solves the normal equations ``sum_j a[j] r[|i - j|] = -r[i]`` (``i = 1 .. order``) for ``a[1..order]``.

    Args:
        r: autocorrelation at lags ``0 .. order`` (at least ``order + 1`` values).
        order: the predictor order.

    Returns:
        ``(a, error, reflection)``: the coefficients of ``A(z)`` with ``a[0] = 1``; the prediction error energy
        (``r[0]`` times the product of ``1 - k_i^2``); the reflection coefficients ``k_i``. On an all-zero or
        non-finite ``r`` the predictor is ``A(z) = 1`` with error 0. If a reflection coefficient would reach
        magnitude 1 the recursion stops there and the higher coefficients stay 0.
    """
    refl = np.zeros(order, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    err = float(r[0]) if len(r) else 0.0
    if not (err > 0.0 and np.all(np.isfinite(r[: order + 1]))):
        a = np.zeros(order + 1, dtype=np.float64)
        a[0] = 1.0
        return a, 0.0, refl
    rr = [float(v) for v in r[: order + 1]]  # plain floats: at orders 10-20 faster than numpy slices
    c = [1.0] + [0.0] * order
    for i in range(1, order + 1):
        acc = rr[i]
        for j in range(1, i):
            acc += c[j] * rr[i - j]
        k = -acc / err
        if not abs(k) < 1.0:
            break
        prev = c[:i]
        for j in range(1, i):
            c[j] = prev[j] + k * prev[i - j]
        c[i] = k
        refl[i - 1] = k
        err *= 1.0 - k * k
    a = np.array(c, dtype=np.float64)
    return a, err, refl


def envelope_filter(a: np.ndarray, length: int, gamma: float) -> np.ndarray:
    """Unit-energy FIR approximation of the synthesis filter ``1/A(z)`` with bandwidth expansion ``gamma``.

    Args:
        a: predictor coefficients, ``a[0] = 1`` (from :func:`levinson`).
        length: taps of the FIR.
        gamma: pole radii are multiplied by this (``0 < gamma <= 1``): wider resonances, a faster-decaying
            impulse response.

    Returns:
        ``length`` taps ``h`` with ``sum(h**2) == 1``: the impulse response of ``1/A(z/gamma)``, its last quarter
        tapered by a half cosine.
    """
    ag = np.asarray(a, dtype=np.float64) * gamma ** np.arange(len(a))
    size = 1 << int(2 * length - 1).bit_length()  # twice the taps: the response has decayed by then
    h = np.fft.irfft(1.0 / np.fft.rfft(ag, size), size)[:length]
    tail = length // 4
    if tail:
        h[length - tail :] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(1, tail + 1) / tail))
    energy = float(np.dot(h, h))
    if not (energy > 0.0 and np.isfinite(energy)):  # cannot happen for a stable A(z); a unit impulse then
        h = np.zeros(length, dtype=np.float64)
        h[0] = 1.0
        return h
    out: np.ndarray = h / np.sqrt(energy)
    return out


def spectral_envelope(x: np.ndarray, order: int, rate: int, length: int) -> Tuple[np.ndarray, np.ndarray]:
    """The spectral envelope of the segment ``x``: its predictor and the FIR that shapes white noise like it.

    Args:
        x: the segment.
        order: the predictor order.
        rate: sample rate in Hz (lag window and bandwidth expansion are defined in Hz).
        length: taps of the FIR.

    Returns:
        ``(a, h)``: ``A(z)`` of :func:`levinson` on the conditioned autocorrelation, and
        :func:`envelope_filter` of it.
    """
    r = condition(autocorrelation(x, order), rate)
    a, _, _ = levinson(r, order)
    return a, envelope_filter(a, length, GAMMA_8K ** (8000.0 / rate))
