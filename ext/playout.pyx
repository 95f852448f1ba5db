# cython: language_level=3, embedsignature=True
#
# pyvoip_fast.media._playout: one stream's playout, one frame per tick, compiled.
#
# Strategy
# --------
# The tick's own logic (the buffer's advice, taking slots into the FIFO, handing out one frame, the history kept
# for the analysis) runs here with C fields; a buffer of the compiled classes (pyvoip_fast.media._jitter, exactly
# those types: a Python subclass may override their methods) is called through its C entry points, any other
# buffer through its Python methods. A received frame goes to the compiled lookahead concealer's C entry point
# (pyvoip_fast.codecs._plc, when the concealer's conceal is that class's, not overridden). What stays Python is
# the rest of what the caller gives: the decoder, any other concealer, numpy's arrays, and the steps off the
# common path, written once in pyvoip_fast.media.playout_common (the time-stretch splice, decoding what a
# lookahead concealer looks at). The receiver (pyvoip_fast.media._receiver) calls tick_c, declared with the fields
# in pyvoip_fast/media/_playout.pxd.
#
# Same API, same frames, same counters and exceptions as the pure-Python twin pyvoip_fast/media/_playout_py.py;
# pyvoip_fast/media/playout.py explains the strategy, tests/media/test_playout_parity.py compares the two.

import numpy as np

cimport numpy as cnp

from _ndarray cimport plain16 as _plain16
from libc.string cimport memcpy

from pyvoip_fast.media import playout_common as _common

from pyvoip_fast.codecs._plc cimport LookaheadCore
from pyvoip_fast.media._jitter cimport JitterBuffer, JitterStats, TimeStretchJitterBuffer

__all__ = ["Playout"]

cdef object _EMPTY = np.zeros(0, dtype=np.int16)
cdef object _INT16 = np.dtype(np.int16)
cdef object _zeros = np.zeros
cdef object _concatenate = np.concatenate
cdef object _asarray = np.asarray
cdef object _int16 = np.int16
cdef object _splice = _common.splice
cdef object _decode_ahead = _common.decode_ahead
cdef long QUIET_RETRY_LEVEL = _common.QUIET_RETRY_LEVEL
cdef dict RETRY_AFTER = _common.RETRY_AFTER  # the same dict: read at each refusal
cdef object _LOOKAHEAD_CONCEAL = LookaheadCore.conceal

cnp.import_array()


cdef object _join(object a, object b):
    """``np.concatenate((a, b))`` of two int16 vectors: one allocation and two copies when both are plain (the
    FIFO holding a residue after a time-stretch meets the next frame at every tick), numpy's otherwise."""
    if not (_plain16(a) and _plain16(b)):
        return _concatenate((a, b))
    cdef cnp.ndarray x = <cnp.ndarray>a, y = <cnp.ndarray>b
    cdef cnp.npy_intp na = cnp.PyArray_DIM(x, 0), nb = cnp.PyArray_DIM(y, 0)
    cdef cnp.npy_intp size = na + nb
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(1, &size, cnp.NPY_INT16, 0)
    memcpy(cnp.PyArray_DATA(out), cnp.PyArray_DATA(x), <size_t>na * 2)
    memcpy(<char *>cnp.PyArray_DATA(out) + na * 2, cnp.PyArray_DATA(y), <size_t>nb * 2)
    return out


cdef object _head(object a, Py_ssize_t n):
    """``a[:n].copy()`` (``a`` holds more than ``n`` samples)."""
    if not _plain16(a):
        return a[:n].copy()
    cdef cnp.npy_intp size = n
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(1, &size, cnp.NPY_INT16, 0)
    memcpy(cnp.PyArray_DATA(out), cnp.PyArray_DATA(<cnp.ndarray>a), <size_t>n * 2)
    return out


cdef class Playout:
    """One stream's playout, one frame per tick (compiled; the arguments and notes are the twin's,
    ``pyvoip_fast.media._playout_py.Playout``)."""

    # (its fields are declared in pyvoip_fast/media/_playout.pxd)

    def __init__(self, jb, decode, concealer, frame_samples, rate):
        self.stretching, lags = _common.check_playout(jb, frame_samples, rate)
        self.jb = jb
        self._cjb = jb if type(jb) is JitterBuffer or type(jb) is TimeStretchJitterBuffer else None
        self._tjb = jb if type(jb) is TimeStretchJitterBuffer else None
        self.decode = decode
        self.concealer = concealer
        self.frame_samples = frame_samples
        self.rate = rate
        self.playing = False
        self.tail_concealed = 0
        self._fifo = _zeros(0, dtype=_int16)
        self._history_len = lags
        self._recent_len = -(-lags // frame_samples) if lags else 1
        self._recent = []
        self._jb_stats = getattr(jb, "stats", None)
        self._resets = getattr(self._jb_stats, "resets", 0)
        self._has_shrink_since = False
        self._retry_at = {}
        self._refusals = {}
        self.lookahead = int(getattr(concealer, "lookahead_frames", 0))
        self._good = concealer.conceal if self.lookahead else concealer.good
        # the compiled lookahead concealer, its conceal not overridden: called at C level
        self._lc = (concealer if self.lookahead and isinstance(concealer, LookaheadCore)
                    and getattr(type(concealer), "conceal", None) is _LOOKAHEAD_CONCEAL
                    and "conceal" not in getattr(concealer, "__dict__", ()) else None)
        self._peeked = []

    @property
    def held(self):
        """Samples decoded but not played yet (the FIFO)."""
        return len(self._fifo)

    # ------------------------------------------------------------------ ticks
    def tick(self, double now):
        """One playout tick: one frame of int16 samples for the sink, or ``None`` (see the twin)."""
        return self.tick_c(now)

    cdef object tick_c(self, double now):
        """``tick``, called at C level by the compiled receiver."""
        cdef Py_ssize_t n = self.frame_samples
        cdef Py_ssize_t k
        st = self._jb_stats
        resets = (<JitterStats>st).resets if type(st) is JitterStats else getattr(st, "resets", 0)
        if resets != self._resets:  # a new stream: its losses before its first frame are not played
            self._resets = resets
            self.playing = False
        if not self.stretching:
            return self._take(now)
        if self._tjb is not None:
            advice, amount = self._tjb.advise_c(now, len(self._fifo) / <double>self.rate)
        else:
            advice, amount = self.jb.advise(now, len(self._fifo) / <double>self.rate)
        if advice != "shrink":
            self._has_shrink_since = False
        elif not self._has_shrink_since:
            self._shrink_since, self._has_shrink_since = now, True
        self._fill(now)
        if len(self._fifo) < n:
            if len(self._fifo) == 0:
                return None
            # the stream went idle inside a frame: the rest of it, then silence
            self._fifo = _concatenate((self._fifo, _zeros(n - len(self._fifo), dtype=_int16)))
        elif advice and (now >= self._retry_at.get(advice, 0.0) or self._quiet_ahead()):
            if self._stretch(advice, amount, now):
                self._refusals.pop(advice, None)
            else:
                # refused: the next try waits for new audio, twice as long after each refusal in a row (up to a
                # second; growing never waits)
                k = self._refusals.get(advice, 0) + 1
                self._refusals[advice] = k
                self._retry_at[advice] = now + min(RETRY_AFTER[advice] * 2 ** min(k - 1, 10), 1.0) - 1e-9
            self._fill(now)
            if len(self._fifo) < n:  # nothing more to take: pad with silence
                self._fifo = _concatenate((self._fifo, _zeros(n - len(self._fifo), dtype=_int16)))
        fifo = self._fifo
        if len(fifo) == n:  # the common case: exactly one frame held, no copy
            out = fifo
            self._fifo = _EMPTY
        else:
            out = _head(fifo, n)
            self._fifo = fifo[n:]
        recent = self._recent  # the analysis history, joined only when a change is tried
        recent.append(out)
        if len(recent) > self._recent_len:
            del recent[0]
        return out

    cdef object _take(self, double now):
        """One slot from the buffer: decoded and passed through the concealer, or concealed, or ``None``."""
        if self._cjb is not None:
            kind, payload = self._cjb.get_c(now)
        else:
            kind, payload = self.jb.get(now)
        if kind == "frame":
            self.playing = True
            self.tail_concealed = 0
            if self._lc is not None:
                return _asarray(self._lc.conceal_c(self._decoded(payload), ()))
            return _asarray(self._good(self._decoded(payload)))
        if kind == "lost" and self.playing:
            self.tail_concealed += 1
            if self.lookahead:
                return _asarray(self.concealer.conceal(None, self._ahead()))
            return _asarray(self.concealer.lost())
        return None

    cdef object _decoded(self, payload):
        """``payload`` decoded, or the samples it was decoded to when the concealer looked ahead at it."""
        cdef list peeked = self._peeked
        cdef Py_ssize_t i
        if not peeked:  # the usual case: nothing was looked at ahead
            return self.decode(payload)
        for i in range(len(peeked)):
            seen, pcm = peeked[i]
            if seen is payload:
                del peeked[: i + 1]  # and those of slots before it, which can no longer come
                return pcm
        return self.decode(payload)

    cdef list _ahead(self):
        """What the jitter buffer holds of the next ``lookahead`` slots, decoded (``playout_common.decode_ahead``)."""
        payloads = self._cjb.peek_c(self.lookahead) if self._cjb is not None else self.jb.peek(self.lookahead)
        return _decode_ahead(payloads, self._peeked, self.decode, self.lookahead)

    cdef bint _quiet_ahead(self) except -1:
        """Whether the next frame to play is quiet (a pause: where a refused change is likely to succeed now). While
        advice waits for its retry this runs at every tick: a loop over the samples, not numpy's max and min."""
        fifo = self._fifo
        cdef Py_ssize_t i, n
        cdef const short *data
        if not _plain16(fifo):
            head = fifo[: self.frame_samples]
            return bool(len(head)) and int(head.max()) < QUIET_RETRY_LEVEL and int(head.min()) > -QUIET_RETRY_LEVEL
        n = cnp.PyArray_DIM(<cnp.ndarray>fifo, 0)
        if n > self.frame_samples:
            n = self.frame_samples
        if n == 0:
            return False
        data = <const short *>cnp.PyArray_DATA(<cnp.ndarray>fifo)
        for i in range(n):
            if data[i] >= QUIET_RETRY_LEVEL or data[i] <= -QUIET_RETRY_LEVEL:
                return False
        return True

    cdef int _fill(self, double now) except -1:
        """Take slots until the FIFO holds a frame (or the buffer has nothing to play)."""
        while len(self._fifo) < self.frame_samples:
            pcm = self._take(now)
            if pcm is None:
                return 0
            if pcm.dtype is not _INT16:
                pcm = pcm.astype(_int16)
            self._fifo = pcm if not len(self._fifo) else _join(self._fifo, pcm)
        return 0

    cdef bint _stretch(self, str advice, double amount, double now) except -1:
        """Apply the buffer's advice to the FIFO (``playout_common.splice``); report what was done. False when the
        change was refused."""
        cdef double since = self._shrink_since if self._has_shrink_since else now
        done, self._fifo, change = _splice(advice, amount, now, since, self._recent, self._fifo, self._history_len,
                                           self.rate)
        if change:
            if advice == "shrink":
                self._shrink_since, self._has_shrink_since = now, True  # the next voiced cut waits again
            if self._tjb is not None:
                self._tjb.note_stretch_c(change / <double>self.rate)
            else:
                self.jb.note_stretch(change / self.rate)
        return done
