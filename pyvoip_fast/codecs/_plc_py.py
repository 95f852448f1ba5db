"""Pure-Python twin of ``pyvoip_fast.codecs._plc`` (the compiled inner loop of ``codecs.plc.Concealer``).

Same function, same checks, same messages, same result to the bit.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import numpy as np

__all__ = ["push", "push_float", "Timeline", "LookaheadCore"]

_SSIZE = 1 << 63


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


def _ssize(value: Any) -> int:
    """``value`` as a C ``Py_ssize_t`` argument: an integer (TypeError otherwise) that fits (OverflowError)."""
    if isinstance(value, float) or not hasattr(value, "__index__"):
        raise TypeError(f"an integer is required, got {type(value).__name__}")
    value = value.__index__()
    if not -_SSIZE <= value < _SSIZE:
        raise OverflowError("Python int too large to convert to C ssize_t")
    return int(value)


def _real(value: object) -> float:
    """``value`` as a C ``double`` argument: a real number (a string is not, TypeError), as Cython converts it."""
    if type(value) is float:
        return value
    cls = type(value)
    if not (hasattr(cls, "__float__") or hasattr(cls, "__index__")) or isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"must be real number, not {cls.__name__}")
    return float(value)  # type: ignore[arg-type]


def _push(hist: Any, samples: Any, out: Any, delay: int, fmt: str) -> float:
    h = np.frombuffer(_view(hist, "d", True), dtype=np.float64)
    src = np.frombuffer(_view(samples, fmt, False), dtype=np.int16 if fmt == "h" else np.float64)
    dst = np.frombuffer(_view(out, "h", True), dtype=np.int16)
    delay = _ssize(delay)
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


def _pow(base: float, exponent: float) -> float:
    """C's ``pow`` for a positive base: infinity where Python raises OverflowError."""
    try:
        return math.pow(base, exponent)
    except OverflowError:
        return math.inf


class Timeline:
    """The concealer's output timeline and background-noise estimate, updated by every received frame.

    Args:
        hist: the output timeline (float64, C-contiguous, writable; newest sample last): held, shifted in place.
        frame_buffer: where the last background frame is kept (float64, C-contiguous, writable; its length is the
            longest frame kept, the newest samples of the timeline).
        delay: how many samples the output lags the timeline.
        frame_samples: the usual frame length (its floor rise is computed once).
        min_samples: frames shorter than this say nothing about the background (not tracked).
        rise: how much the floor may grow per sample (a factor, > 0).
        margin: a frame is background when its energy is at most ``margin`` times the floor (> 0).

    Raises:
        TypeError, ValueError: an array of another type or layout, or read-only; a negative ``delay`` or
            ``min_samples``, a ``frame_samples`` under 1, a ``rise`` or ``margin`` not positive and finite.
    """

    __slots__ = ("hist", "frame_buffer", "delay", "frame_samples", "min_samples", "rise", "margin", "_rise_frame",
                 "floor", "energy", "seen", "_frame_len", "_h", "_f")

    def __init__(self, hist: Any, frame_buffer: Any, delay: int, frame_samples: int, min_samples: int, rise: float,
                 margin: float) -> None:
        delay, frame_samples, min_samples = _ssize(delay), _ssize(frame_samples), _ssize(min_samples)
        rise, margin = float(rise), float(margin)
        if delay < 0:
            raise ValueError(f"delay must not be negative, got {delay}")
        if frame_samples < 1:
            raise ValueError(f"frame_samples must be positive, got {frame_samples}")
        if min_samples < 0:
            raise ValueError(f"min_samples must not be negative, got {min_samples}")
        if not (math.isfinite(rise) and rise > 0.0 and math.isfinite(margin) and margin > 0.0):
            raise ValueError(f"rise and margin must be positive and finite, got {rise!r}, {margin!r}")
        self._h = np.frombuffer(_view(hist, "d", True), dtype=np.float64)
        self._f = np.frombuffer(_view(frame_buffer, "d", True), dtype=np.float64)
        self.hist = hist
        self.frame_buffer = frame_buffer
        self.delay = delay
        self.frame_samples = frame_samples
        self.min_samples = min_samples
        self.rise = rise
        self.margin = margin
        self._rise_frame = _pow(rise, float(frame_samples))
        #: the background floor (mean square); negative until a frame was tracked
        self.floor = -1.0
        #: the background energy (mean square), never above ``margin`` times the floor
        self.energy = 0.0
        #: samples of received audio tracked
        self.seen = 0
        self._frame_len = -1  # samples of the last background frame; -1: none yet

    @property
    def background_frame(self) -> Optional[Any]:
        """The last frame taken as background (a view of ``frame_buffer``), or None before the first."""
        if self._frame_len < 0:
            return None
        return self.frame_buffer[len(self._f) - self._frame_len :]

    def _track(self, n: int, total: float) -> bool:
        h, f = self._h, self._f
        size, flen = len(h), len(f)
        if n < self.min_samples or n <= 0 or size == 0:  # nothing to measure
            return False
        m = n if n < size else size
        if total >= 0.0 and m == n:
            e = total / m
        else:
            s = 0.0
            for v in h[size - m :].tolist():  # oldest first, one product and one sum at a time, as compiled
                s += v * v
            e = s / m
        self.seen = min(self.seen + n, _SSIZE - 1)  # saturates, as the compiled count
        rise_n = self._rise_frame if n == self.frame_samples else _pow(self.rise, float(n))
        raised = self.floor * rise_n
        self.floor = e if (self.floor < 0.0 or e < raised) else raised
        limit = self.margin * self.floor
        took = False
        if e <= limit:
            self.energy = e if self._frame_len < 0 else self.energy + 0.2 * (e - self.energy)
            k = m if m < flen else flen
            if k:
                f[flen - k :] = h[size - k :]
            self._frame_len = k
            took = True
        if self.energy > limit:
            self.energy = limit
        return took

    def push(self, samples: Any, out: Any) -> bool:
        """A received int16 frame: the timeline shift of ``push`` (``out`` gets the delayed samples), then the
        background estimate. Returns True when the frame was taken as background (a new background frame).

        Raises:
            TypeError, ValueError: as ``push``.
        """
        total = _push(self.hist, samples, out, self.delay, "h")
        return self._track(len(np.frombuffer(_view(samples, "h", False), dtype=np.int16)), total)

    def track(self, n: int) -> bool:
        """The background estimate after ``n`` samples were put into the timeline by other means (``push_float``
        or a longer frame): their energy is summed from the timeline. Returns True for a new background frame."""
        return self._track(_ssize(n), -1.0)

    def __reduce__(self) -> Tuple[Any, ...]:
        # a copy (``copy.deepcopy`` of a concealer) holds the copies of the arrays, and the same estimate
        return (Timeline, (self.hist, self.frame_buffer, self.delay, self.frame_samples, self.min_samples, self.rise,
                           self.margin), (self.floor, self.energy, self.seen, self._frame_len))

    def __setstate__(self, state: Tuple[float, float, int, int]) -> None:
        floor, energy, seen, frame_len = state
        if not -1 <= frame_len <= len(self._f):
            raise ValueError(f"frame length {frame_len} outside -1..{len(self._f)}")
        self.floor, self.energy, self.seen, self._frame_len = floor, energy, seen, frame_len


# the common frame is taken only while the fields are in these ranges (in C no product of them can overflow); a
# caller's state beyond them goes to the other path, which refuses it where it would be used
_SIZE_LIMIT = 1 << 20  # frame_samples, lookahead_frames, latency_samples
_POS_LIMIT = 1 << 40  # the frame index and the timeline's positions


def _sane(s: "LookaheadCore") -> bool:
    return (0 < s.frame_samples <= _SIZE_LIMIT and 0 <= s.lookahead_frames <= _SIZE_LIMIT
            and 0 <= s.latency_samples <= _SIZE_LIMIT and 0 <= s._index < _POS_LIMIT and 0 <= s._keep < _POS_LIMIT
            and 0 <= s._cap < _POS_LIMIT and 0 <= s._base < _POS_LIMIT)


def _plain16(a: Any) -> bool:
    """A one-dimensional, contiguous array of native int16 (what decoders give)."""
    return (a.__class__ is np.ndarray and a.dtype == np.int16 and a.ndim == 1 and a.flags.c_contiguous
            and a.dtype.isnative)


class LookaheadCore:
    """Twin of the compiled ``LookaheadCore``: the state of ``codecs.plc_lookahead.LookaheadConcealer`` and its
    common frame (received, in a call already going, no loss to finish), which goes straight into the plain
    concealer's timeline and the lookahead's output timeline ``_z``; every other frame is the subclass's
    ``_conceal_rest``."""

    frame_samples: int = 0
    lookahead_frames: int = 0
    latency_samples: int = 0
    _keep: int = 0
    _cap: int = 0
    _base: int = 0
    _index: int = 0
    _planned_until: int = 0
    _started: bool = False
    _pending_head: Optional[Any] = None
    _c: Any = None
    _z: Any = None

    def conceal(self, frame: Any, ahead: Any = ()) -> Any:
        """One frame of output (``LookaheadConcealer.conceal``)."""
        size, i, c = self.frame_samples, self._index, self._c
        if (self._started and i >= self._planned_until and self._pending_head is None and _sane(self)
                and _plain16(frame) and len(frame) == size and not c._erased):
            timeline = c._timeline
            if timeline.__class__ is Timeline and size <= len(timeline.hist) - timeline.delay:
                self._index = i + 1
                if (i + self.lookahead_frames + 1) * size + self.latency_samples > self._base + self._cap:
                    self._ensure_room(i)
                t = i * size - self._base
                z = self._z
                if not (_plain16(z) and z.flags.writeable and 0 <= t <= len(z) - size):
                    raise ValueError(f"the output timeline does not hold frame {i} (at {t})")
                out = np.empty(size, np.int16)
                if timeline.push(frame, out):
                    c._bg_fir = None  # a new background frame: its envelope is computed again when a loss needs it
                z[t : t + size] = out
                return out
        return self._conceal_rest(frame, ahead)

    def _ensure_room(self, i: int) -> None:
        """Make the output timeline hold absolute samples ``i * size - keep`` .. ``(i + L + 1) * size + latency``."""
        size, cap = self.frame_samples, self._cap
        if not (_sane(self) and 0 <= i < _POS_LIMIT):
            raise ValueError("the concealer's frame size, lookahead, delay or timeline positions are out of range")
        if (i + self.lookahead_frames + 1) * size + self.latency_samples <= self._base + cap:
            return
        new_base = max(0, i * size - self._keep)
        shift = new_base - self._base
        if shift <= 0:
            return
        z = self._z
        if not (_plain16(z) and z.flags.writeable and len(z) == cap):
            raise ValueError(f"the output timeline must be a writable int16 vector of {cap} samples")
        if shift < cap:
            z[: cap - shift] = z[shift:]
            z[cap - shift :] = 0
        else:
            z[:] = 0
        self._base = new_base

    def _conceal_rest(self, frame: Any, ahead: Any) -> Any:
        raise NotImplementedError("LookaheadCore is the base of codecs.plc_lookahead.LookaheadConcealer")
