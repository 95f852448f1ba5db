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
#
# ``Timeline`` is that per-frame work of a received frame, whole: the shift, and the background-noise estimate
# that follows it (floor, background energy, the last background frame), on the concealer's own arrays, which it
# holds from its construction on (no buffer is acquired per frame). Its arithmetic is the twin's, operation by
# operation and in the same order (the energy of a frame not pushed as int16 is summed sample by sample, oldest
# first), so both give the same bits; ``setup.py`` builds without floating-point contraction for that.

from libc.math cimport isfinite, pow, rint
from libc.string cimport memcpy, memmove, memset
from cpython.pyport cimport PY_SSIZE_T_MAX

cimport numpy as cnp

from _ndarray cimport plain16 as _plain16

cnp.import_array()

ctypedef fused sample_t:
    short
    double


cdef double _shift(double *h, Py_ssize_t size, const sample_t *samples, Py_ssize_t n, short *out,
                   Py_ssize_t delay) noexcept nogil:
    """Shift the history ``h`` (``size`` samples) by the ``n`` new ``samples``, write the ``n`` samples that end
    ``delay`` before the newest into ``out``; return the sum of squares of ``samples`` (summed in order). The caller
    checked ``1 <= n <= size - delay`` and ``delay >= 0``; no buffer overlaps ``h``."""
    cdef Py_ssize_t i, base
    cdef double v, energy = 0.0
    memmove(h, h + n, <size_t>(size - n) * sizeof(double))
    base = size - n
    for i in range(n):
        v = <double>samples[i]
        h[base + i] = v
        energy += v * v
    base = size - n - delay
    for i in range(n):
        v = rint(h[base + i])
        if v != v:  # NaN: never made by the concealer, and undefined to convert
            v = 0.0
        elif v > 32767.0:
            v = 32767.0
        elif v < -32768.0:
            v = -32768.0
        out[i] = <short>v
    return energy


cdef double _push(double[::1] hist, const sample_t[::1] samples, short[::1] out, Py_ssize_t delay) except -1.0:
    """The one body of ``push`` and ``push_float``: checks, then ``_shift``; returns the sum of squares of
    ``samples`` (summed in order)."""
    cdef Py_ssize_t size = hist.shape[0], n = samples.shape[0]
    if out.shape[0] != n:
        raise ValueError(f"out holds {out.shape[0]} samples, the frame has {n}")
    if delay < 0:
        raise ValueError(f"delay must not be negative, got {delay}")
    if delay > size - n:  # not n + delay > size: that sum can overflow
        raise ValueError(f"a frame of {n} samples with a delay of {delay} does not fit a history of {size}")
    if n == 0:
        return 0.0
    return _shift(&hist[0], size, &samples[0], n, &out[0], delay)


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


cdef class Timeline:
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

    cdef double[::1] _h
    cdef double[::1] _f
    cdef readonly object hist
    cdef readonly object frame_buffer
    cdef readonly Py_ssize_t delay, frame_samples, min_samples
    cdef readonly double rise, margin
    cdef double _rise_frame
    # the background floor (mean square; negative until a frame was tracked), the background energy (mean square,
    # never above ``margin`` times the floor), and the samples of received audio tracked
    cdef readonly double floor
    cdef readonly double energy
    cdef readonly Py_ssize_t seen
    cdef Py_ssize_t _frame_len  # samples of the last background frame; -1: none yet

    def __init__(self, hist, frame_buffer, Py_ssize_t delay, Py_ssize_t frame_samples, Py_ssize_t min_samples,
                 double rise, double margin):
        if delay < 0:
            raise ValueError(f"delay must not be negative, got {delay}")
        if frame_samples < 1:
            raise ValueError(f"frame_samples must be positive, got {frame_samples}")
        if min_samples < 0:
            raise ValueError(f"min_samples must not be negative, got {min_samples}")
        if not (isfinite(rise) and rise > 0.0 and isfinite(margin) and margin > 0.0):
            raise ValueError(f"rise and margin must be positive and finite, got {rise!r}, {margin!r}")
        self._h = hist
        self._f = frame_buffer
        self.hist = hist
        self.frame_buffer = frame_buffer
        self.delay = delay
        self.frame_samples = frame_samples
        self.min_samples = min_samples
        self.rise = rise
        self.margin = margin
        self._rise_frame = pow(rise, <double>frame_samples)
        self.floor = -1.0
        self.energy = 0.0
        self.seen = 0
        self._frame_len = -1

    @property
    def background_frame(self):
        """The last frame taken as background (a view of ``frame_buffer``), or None before the first."""
        if self._frame_len < 0:
            return None
        return self.frame_buffer[self._f.shape[0] - self._frame_len:]

    cdef bint _track(self, Py_ssize_t n, double total) except -1:
        """The background estimate after a frame of ``n`` samples was pushed; ``total``: its sum of squares, or
        negative when not known (then summed from the timeline). True when the frame was taken as background."""
        cdef Py_ssize_t size = self._h.shape[0], m, i, k, flen = self._f.shape[0]
        cdef double e, raised, rise_n, limit, v, s = 0.0
        cdef bint took = False
        if n < self.min_samples or n <= 0 or size == 0:  # nothing to measure
            return False
        m = n if n < size else size
        if total >= 0.0 and m == n:
            e = total / m
        else:
            for i in range(size - m, size):
                v = self._h[i]
                s += v * v
            e = s / m
        self.seen = PY_SSIZE_T_MAX if n > PY_SSIZE_T_MAX - self.seen else self.seen + n  # saturates
        rise_n = self._rise_frame if n == self.frame_samples else pow(self.rise, <double>n)
        raised = self.floor * rise_n
        if self.floor < 0.0 or e < raised:
            self.floor = e
        else:
            self.floor = raised
        limit = self.margin * self.floor
        if e <= limit:
            if self._frame_len < 0:
                self.energy = e
            else:
                self.energy = self.energy + 0.2 * (e - self.energy)
            k = m if m < flen else flen
            if k:
                memcpy(&self._f[flen - k], &self._h[size - k], <size_t>k * sizeof(double))
            self._frame_len = k
            took = True
        if self.energy > limit:
            self.energy = limit
        return took

    def push(self, const short[::1] samples, short[::1] out):
        """A received int16 frame: the timeline shift of ``push`` (``out`` gets the delayed samples), then the
        background estimate. Returns True when the frame was taken as background (a new background frame).

        Raises:
            TypeError, ValueError: as ``push``.
        """
        return self._track(samples.shape[0], _push(self._h, samples, out, self.delay))

    cdef object _received_c(self, object frame, Py_ssize_t n, bint *took):
        """``push`` of a plain int16 vector of ``n`` samples into a new int16 array of the delayed samples, with no
        buffer acquired. The caller checked the frame (``_plain16``, ``n`` long) and ``1 <= n <= size - delay``."""
        cdef cnp.npy_intp dim = n
        cdef cnp.ndarray out = cnp.PyArray_EMPTY(1, &dim, cnp.NPY_INT16, 0)
        cdef double energy = _shift(&self._h[0], self._h.shape[0], <const short *>cnp.PyArray_DATA(<cnp.ndarray>frame),
                                    n, <short *>cnp.PyArray_DATA(out), self.delay)
        took[0] = self._track(n, energy)
        return out

    def track(self, Py_ssize_t n):
        """The background estimate after ``n`` samples were put into the timeline by other means (``push_float``
        or a longer frame): their energy is summed from the timeline. Returns True for a new background frame."""
        return self._track(n, -1.0)

    def __reduce__(self):
        # a copy (``copy.deepcopy`` of a concealer) holds the copies of the arrays, and the same estimate
        return (Timeline, (self.hist, self.frame_buffer, self.delay, self.frame_samples, self.min_samples, self.rise,
                           self.margin), (self.floor, self.energy, self.seen, self._frame_len))

    def __setstate__(self, state):
        floor, energy, seen, frame_len = state
        if not -1 <= frame_len <= self._f.shape[0]:
            raise ValueError(f"frame length {frame_len} outside -1..{self._f.shape[0]}")
        self.floor, self.energy, self.seen, self._frame_len = floor, energy, seen, frame_len


# the common frame runs in C only while the fields are in these ranges (so no product of them can overflow); a
# caller's state beyond them goes to the Python path, which refuses it where it would be used
cdef enum:
    _SIZE_LIMIT = 1 << 20  # frame_samples, lookahead_frames, latency_samples
cdef Py_ssize_t _POS_LIMIT = (<Py_ssize_t>1) << 40  # the frame index and the timeline's positions


cdef inline bint _sane(LookaheadCore s):
    return (0 < s.frame_samples <= _SIZE_LIMIT and 0 <= s.lookahead_frames <= _SIZE_LIMIT
            and 0 <= s.latency_samples <= _SIZE_LIMIT and 0 <= s._index < _POS_LIMIT and 0 <= s._keep < _POS_LIMIT
            and 0 <= s._cap < _POS_LIMIT and 0 <= s._base < _POS_LIMIT)


cdef class LookaheadCore:
    """The state of ``codecs.plc_lookahead.LookaheadConcealer`` and its common frame, compiled.

    The concealer is a Python subclass: its fields live here as attributes it reads and writes, and every frame
    that is not the common one goes to its ``_conceal_rest``. The common frame is received, in a call already
    going, with no loss to finish (no planned interpolation, no pending cross-fade, the plain concealer not in a
    loss): it goes straight into the plain concealer's timeline (``Timeline``, without acquiring a buffer) and
    into the lookahead's own output timeline ``_z``. The pure-Python twin (``_plc_py.LookaheadCore``) does the
    same with numpy; both give the same bits.
    """

    # (its fields are declared in pyvoip_fast/codecs/_plc.pxd)

    def conceal(self, frame, ahead=()):
        """One frame of output (``LookaheadConcealer.conceal``)."""
        return self.conceal_c(frame, ahead)

    cdef object conceal_c(self, frame, ahead):
        """``conceal``, called at C level by the compiled playout."""
        cdef Py_ssize_t size = self.frame_samples, i = self._index, t
        cdef Timeline tl
        cdef bint took = False
        c = self._c
        if (self._started and i >= self._planned_until and self._pending_head is None and _sane(self)
                and _plain16(frame) and cnp.PyArray_DIM(<cnp.ndarray>frame, 0) == size and not c._erased):
            timeline = c._timeline
            if type(timeline) is Timeline:
                tl = <Timeline>timeline
                if size <= tl._h.shape[0] - tl.delay:
                    self._index = i + 1
                    if (i + self.lookahead_frames + 1) * size + self.latency_samples > self._base + self._cap:
                        self._ensure_room(i)
                    t = i * size - self._base
                    z = self._z
                    if not (_plain16(z) and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>z) and 0 <= t
                            and t <= cnp.PyArray_DIM(<cnp.ndarray>z, 0) - size):
                        raise ValueError(f"the output timeline does not hold frame {i} (at {t})")
                    out = tl._received_c(frame, size, &took)
                    if took:
                        c._bg_fir = None  # a new background frame: its envelope is computed again when a loss needs it
                    memcpy(<short *>cnp.PyArray_DATA(<cnp.ndarray>z) + t, cnp.PyArray_DATA(<cnp.ndarray>out),
                           <size_t>size * sizeof(short))
                    return out
        return self._conceal_rest(frame, ahead)

    def _ensure_room(self, Py_ssize_t i):
        """Make the output timeline hold absolute samples ``i * size - keep`` .. ``(i + L + 1) * size + latency``."""
        cdef Py_ssize_t size = self.frame_samples, cap = self._cap, new_base, shift
        if not (_sane(self) and 0 <= i < _POS_LIMIT):
            raise ValueError("the concealer's frame size, lookahead, delay or timeline positions are out of range")
        if (i + self.lookahead_frames + 1) * size + self.latency_samples <= self._base + cap:
            return
        new_base = i * size - self._keep
        if new_base < 0:
            new_base = 0
        shift = new_base - self._base
        if shift <= 0:
            return
        z = self._z
        if not (_plain16(z) and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>z) and cnp.PyArray_DIM(<cnp.ndarray>z, 0) == cap):
            raise ValueError(f"the output timeline must be a writable int16 vector of {cap} samples")
        cdef short *data = <short *>cnp.PyArray_DATA(<cnp.ndarray>z)
        if shift < cap:
            memmove(data, data + shift, <size_t>(cap - shift) * sizeof(short))
            memset(data + cap - shift, 0, <size_t>shift * sizeof(short))
        else:
            memset(data, 0, <size_t>cap * sizeof(short))
        self._base = new_base

    def _conceal_rest(self, frame, ahead):
        raise NotImplementedError("LookaheadCore is the base of codecs.plc_lookahead.LookaheadConcealer")
