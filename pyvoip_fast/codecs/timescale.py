"""Time-scale modification of speech (WSOLA style): play a little faster or slower without changing the pitch.

Strategy (our own implementation of the idea behind WebRTC NetEQ's "accelerate" and "preemptive expand")
-----------------------------------------------------------------------------------------------------------
A jitter buffer that adapts its delay must, now and then, play some audio in less or more time than it took
to record. Dropping or inserting a whole 20 ms frame does that audibly (a click, a skipped syllable, a
stutter). Instead, :func:`accelerate` removes, and :func:`expand` inserts, one *pitch period* of voiced speech,
or a chunk of silence or of unvoiced (noise-like) sound, joined by an overlap-add cross-fade where the waveform
matches itself best, so the splice is neither seen in the waveform nor heard.

* **Where.** The buffer ``x`` is ``keep`` samples of history (already played: read for analysis, never changed)
  followed by the samples still to be played. The splice is placed at the start of the unplayed part
  (``s = keep``; :func:`expand` moves it later when there is too little history to look back into).
* **Which lag.** ``P`` in ``[2.5 ms, 15 ms]`` (pitch 67-400 Hz), capped by ``max_change``, maximising the
  normalised cross-correlation between a 10 ms window centred on the splice and the same window ``P`` samples
  later (accelerate: the material that will replace it) or earlier (expand: the material that will be
  repeated). Of lags within 0.02 of the best correlation the longest wins: two pitch periods in one splice
  rather than two splices.
* **Whether.** The analysed stretch is classified:

  - ``"quiet"``: RMS under ``quiet_level`` (silence, background): always safe, whatever the correlation;
  - ``"voiced"``: best correlation at least ``min_correlation`` (0.9 by default, as periodic as voiced
    speech is): the lag is a whole number of pitch periods, so removing or repeating it keeps the pitch;
  - ``"unvoiced"``: no periodicity at all (correlation under 0.5) and a high zero-crossing rate (a fricative,
    noise): safe, one noise chunk sounds like another;
  - anything else (onsets, transitions, voiced speech whose pitch moves too fast) is ``"refused"``: the
    samples come back unchanged and the caller tries again on the next frame. So the change lands in
    low-energy and unvoiced stretches first, and in voiced speech only where it is really periodic.

* **How.** Accelerate: the ``c`` samples from the splice become a cross-fade from ``x[s + k]`` to
  ``x[s + P + k]``, then the signal continues from ``x[s + P + c]``: ``P`` samples fewer. Expand: ``P``
  samples are inserted before ``x[s]``, fading from ``x[s + k]`` (the natural continuation of what was
  played) to ``x[s - P + k]`` (the period before), which ``x[s]`` follows seamlessly. The fade is linear for
  voiced speech (the two sides are nearly equal) and equal-power (sine/cosine) for quiet and unvoiced
  stretches (uncorrelated sides: a linear fade would dip the level by up to 3 dB).

Samples are int16 (the result is rounded and clipped back to int16) or floating point on the same scale (the
result is float64; ``quiet_level`` is in sample units, so pass another one for audio scaled to ``[-1, 1]``).
Works at 8 kHz and 16 kHz; all lengths scale with the rate.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Tuple

import numpy as np

from .. import _compat
from . import _timescale_py

_timescale = _compat.load("_timescale")

__all__ = ["Stretch", "accelerate", "expand", "min_lag", "max_lag", "RATES"]

#: the sample rates supported
RATES = (8000, 16000)
#: lag range in seconds: 400 Hz down to 67 Hz pitch
_MIN_LAG_S = 0.0025
_MAX_LAG_S = 0.015
#: the correlation window, seconds
_WINDOW_S = 0.010
#: below this correlation a signal has no periodicity at all (the "unvoiced" class needs it)
_NOISE_CORRELATION = 0.5
_INT16 = np.dtype(np.int16)  # native int16 (an ``is`` test: another byte order takes the float path)
#: zero crossings per sample above which an aperiodic stretch counts as noise-like (white noise: 0.5)
_UNVOICED_ZCR = 0.3
#: per rate: the shortest lag and half the correlation window, in samples
_SIZES = {rate: (int(round(_MIN_LAG_S * rate)), int(round(_WINDOW_S * rate)) // 2) for rate in RATES}


class Stretch(NamedTuple):
    """The result of :func:`accelerate` or :func:`expand`."""

    samples: np.ndarray
    """The whole buffer after the change (its first ``keep`` samples unchanged), int16 for int16 input,
    float64 otherwise."""
    change: int
    """Samples removed (accelerate) or inserted (expand); 0 when refused."""
    kind: str
    """``"quiet"``, ``"voiced"``, ``"unvoiced"`` (what was stretched) or ``"refused"`` (nothing changed)."""


def min_lag(rate: int) -> int:
    """The shortest lag (the least one change can add or remove) at ``rate``, in samples.

    Args:
        rate: 8000 or 16000.

    Returns:
        2.5 ms in samples (20 at 8 kHz).

    Raises:
        ValueError: an unsupported rate.
    """
    _check_rate(rate)
    return _SIZES[int(rate)][0]


def max_lag(rate: int) -> int:
    """The longest lag (the most one change can add or remove) at ``rate``, in samples.

    Args:
        rate: 8000 or 16000.

    Returns:
        15 ms in samples (120 at 8 kHz).

    Raises:
        ValueError: an unsupported rate.
    """
    _check_rate(rate)
    return int(round(_MAX_LAG_S * rate))


def _check_rate(rate: int) -> None:
    if type(rate) is int and rate in RATES:  # the usual case, answered before the general checks
        return
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or int(rate) not in RATES:
        raise ValueError(f"rate must be one of {RATES} Hz, got {rate!r}")


def _validate(
    x: np.ndarray, rate: int, keep: int, max_change: Optional[int], min_correlation: float, quiet_level: float
) -> Tuple[np.ndarray, int]:
    """Checked arguments: ``x`` as float64 and the effective largest lag."""
    _check_rate(rate)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
    if x.ndim != 1:
        raise ValueError(f"x must be one-dimensional (mono), got shape {x.shape}")
    if x.dtype != np.int16 and x.dtype.kind != "f":
        raise TypeError(f"x must hold int16 or floating-point samples, got {x.dtype}")
    if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or not 0 <= keep <= len(x):
        raise ValueError(f"keep must be an integer in [0, len(x)] = [0, {len(x)}], got {keep!r}")
    top = max_lag(rate)
    if max_change is not None:
        if isinstance(max_change, bool) or not isinstance(max_change, (int, np.integer)) or max_change < 1:
            raise ValueError(f"max_change must be a positive integer, got {max_change!r}")
        top = min(top, int(max_change))
    if not 0.0 <= min_correlation <= 1.0:
        raise ValueError(f"min_correlation must be in [0, 1], got {min_correlation!r}")
    if not quiet_level >= 0.0:
        raise ValueError(f"quiet_level must be >= 0, got {quiet_level!r}")
    if x.dtype is _INT16:  # the compiled path reads the samples as they are (always finite)
        return np.ascontiguousarray(x), top
    xf = x.astype(np.float64)
    if not np.all(np.isfinite(xf)):
        raise ValueError("x holds NaN or infinite samples")
    return xf, top


# Samples are analysed and spliced in one of two ways: int16 samples (what the playout has) by the compiled
# ``_timescale`` (or its twin, to the bit), the whole attempt in one call (``_whole``); float samples by numpy, on
# float64, a step at a time (``_stepwise``: placed and cut by the twin's ``plan`` and ``cut``).

def _whole(x: np.ndarray, xf: np.ndarray, grow: bool, keep: int, top: int, rate: int, min_correlation: float,
           quiet_level: float, voiced: bool) -> Stretch:
    """An attempt on int16 samples, every step in one compiled call."""
    lo, half = _SIZES[rate]
    samples, change, kind = _timescale.stretch(xf, grow, keep, lo, top, half, min_correlation, quiet_level, voiced,
                                               _NOISE_CORRELATION, _UNVOICED_ZCR)
    return _refused(x) if samples is None else Stretch(samples, change, kind)


def _stepwise(x: np.ndarray, xf: np.ndarray, grow: bool, keep: int, top: int, rate: int, min_correlation: float,
              quiet_level: float, voiced: bool) -> Stretch:
    """An attempt on float samples, a numpy step at a time, placed and cut as the twin's ``stretch`` does."""
    n = len(xf)
    lo, half = _SIZES[rate]
    where = _timescale_py.plan(grow, n, keep, lo, top, half)
    if where is None:
        return _refused(x)
    s, centre, hi = where
    lag, corr = _timescale_py.correlate_lags(xf, centre, half, lo, hi, -1 if grow else 1)
    first, last, fade, a, b, rest = _timescale_py.cut(grow, n, s, lag, half)
    kind = _classify(xf, first, last, corr, min_correlation, quiet_level, voiced)
    if kind == "refused":
        return _refused(x)
    return _splice(x, xf, s, fade, a, b, rest, kind, lag)


def _classify(xf: np.ndarray, start: int, stop: int, corr: float, min_correlation: float, quiet_level: float,
              voiced: bool) -> str:
    """What ``xf[start:stop]`` (float samples) is: quiet, voiced, unvoiced or (neither) refused."""
    segment = xf[start:stop]
    mean_square = float(np.mean(segment * segment)) if len(segment) else 0.0
    if math.sqrt(mean_square) < quiet_level:
        return "quiet"
    if voiced and corr >= min_correlation:
        return "voiced"
    if corr < _NOISE_CORRELATION and stop - start > 1:  # the zero crossings counted only when they matter
        crossing_rate = np.count_nonzero(np.signbit(segment[1:]) != np.signbit(segment[:-1])) / (len(segment) - 1)
        if crossing_rate > _UNVOICED_ZCR:
            return "unvoiced"
    return "refused"


def _splice(x: np.ndarray, xf: np.ndarray, s: int, fade: int, a: int, b: int, rest: int, kind: str,
            change: int) -> Stretch:
    """The stretched float buffer: ``xf[:s]``, then ``fade`` samples fading from ``xf[a:]`` out to ``xf[b:]`` in,
    then ``xf[rest:]``."""
    w_out, w_in = _fade(fade, kind)
    joined = xf[a : a + fade] * w_out + xf[b : b + fade] * w_in
    return _result(x, np.concatenate((xf[:s], joined, xf[rest:])), change, kind)


def _fade(n: int, kind: str) -> Tuple[np.ndarray, np.ndarray]:
    """(fade-out, fade-in) weights over ``n`` samples: linear for voiced, equal-power otherwise."""
    w = (np.arange(n) + 0.5) / n
    if kind == "voiced":
        return 1.0 - w, w
    return np.cos(0.5 * np.pi * w), np.sin(0.5 * np.pi * w)


def _result(x: np.ndarray, out: np.ndarray, change: int, kind: str) -> Stretch:
    if x.dtype == np.int16:
        return Stretch(np.clip(np.rint(out), -32768, 32767).astype(np.int16), change, kind)
    return Stretch(out.astype(np.float64, copy=False), change, kind)


def _refused(x: np.ndarray) -> Stretch:
    return Stretch(x.copy() if x.dtype == np.int16 else x.astype(np.float64), 0, "refused")


def accelerate(
    x: np.ndarray,
    rate: int,
    *,
    keep: int = 0,
    max_change: Optional[int] = None,
    min_correlation: float = 0.9,
    quiet_level: float = 200.0,
    voiced: bool = True,
) -> Stretch:
    """Remove one pitch period (or a chunk of a quiet or unvoiced stretch) right after ``keep``.

    Args:
        x: mono samples, int16 or float (int16 scale); the first ``keep`` are history.
        rate: sample rate, 8000 or 16000 Hz.
        keep: samples at the start already played: analysed, never changed.
        max_change: most samples to remove (default and cap: 15 ms). Below 2.5 ms nothing can be removed.
        min_correlation: the normalised correlation voiced (loud, periodic) audio needs, in ``[0, 1]``.
        quiet_level: RMS, in sample units, under which the stretch counts as quiet (always safe).
        voiced: whether loud periodic (voiced) audio may be changed at all; ``False``: quiet and unvoiced only.

    Returns:
        A :class:`Stretch`: ``len(samples) == len(x) - change``. The change is refused (``change == 0``) when
        the stretch is loud and neither periodic nor noise-like, or when ``x`` is too short: the removal needs,
        after ``keep``, the lag plus a cross-fade of at least a quarter of it, and 5 ms of correlation window.

    Raises:
        TypeError: ``x`` is not a numpy array of int16 or floating-point samples.
        ValueError: ``x`` is not one-dimensional or holds NaN/inf, an unsupported ``rate``, ``keep`` outside
            ``[0, len(x)]``, ``max_change < 1``, ``min_correlation`` outside ``[0, 1]`` or a negative
            ``quiet_level``.
    """
    xf, top = _validate(x, rate, keep, max_change, min_correlation, quiet_level)
    attempt = _whole if xf.dtype is _INT16 else _stepwise
    return attempt(x, xf, False, keep, top, rate, min_correlation, quiet_level, voiced)


def expand(
    x: np.ndarray,
    rate: int,
    *,
    keep: int = 0,
    max_change: Optional[int] = None,
    min_correlation: float = 0.9,
    quiet_level: float = 200.0,
    voiced: bool = True,
) -> Stretch:
    """Insert one pitch period (or a chunk of a quiet or unvoiced stretch), at ``keep`` or just after it.

    The splice point ``s`` is ``keep`` when there is enough history before it (the lag plus 5 ms), otherwise
    as early as that allows.

    Args:
        x: mono samples, int16 or float (int16 scale); the first ``keep`` are history.
        rate: sample rate, 8000 or 16000 Hz.
        keep: samples at the start already played: analysed, never changed.
        max_change: most samples to insert (default and cap: 15 ms). Below 2.5 ms nothing can be inserted.
        min_correlation: the normalised correlation voiced (loud, periodic) audio needs, in ``[0, 1]``.
        quiet_level: RMS, in sample units, under which the stretch counts as quiet (always safe).
        voiced: whether loud periodic (voiced) audio may be changed at all; ``False``: quiet and unvoiced only.

    Returns:
        A :class:`Stretch`: ``len(samples) == len(x) + change``. Refused (``change == 0``) when the stretch is
        loud and neither periodic nor noise-like, or when ``x`` is too short: it needs the lag plus 5 ms before
        the splice and the lag (at least 5 ms) after it.

    Raises:
        TypeError: ``x`` is not a numpy array of int16 or floating-point samples.
        ValueError: ``x`` is not one-dimensional or holds NaN/inf, an unsupported ``rate``, ``keep`` outside
            ``[0, len(x)]``, ``max_change < 1``, ``min_correlation`` outside ``[0, 1]`` or a negative
            ``quiet_level``.
    """
    xf, top = _validate(x, rate, keep, max_change, min_correlation, quiet_level)
    attempt = _whole if xf.dtype is _INT16 else _stepwise
    return attempt(x, xf, True, keep, top, rate, min_correlation, quiet_level, voiced)
