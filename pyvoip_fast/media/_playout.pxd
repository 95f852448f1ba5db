# pyvoip_fast.media._playout (ext/playout.pyx) as other compiled modules see it: ext/receiver.pyx runs a call's
# playout tick through the C entry point. Cython finds this file by the module's name; the implementation and its
# notes are in ext/playout.pyx.

from pyvoip_fast.codecs._plc cimport LookaheadCore
from pyvoip_fast.media._jitter cimport JitterBuffer, TimeStretchJitterBuffer


cdef class Playout:
    cdef public object jb, decode, concealer
    cdef public bint stretching, playing
    cdef public Py_ssize_t frame_samples, rate, tail_concealed, lookahead
    cdef JitterBuffer _cjb  # ``jb`` when it is exactly a compiled buffer, else None
    cdef TimeStretchJitterBuffer _tjb  # ``jb`` when it is exactly the compiled time-stretching buffer
    cdef LookaheadCore _lc  # ``concealer`` when its ``conceal`` is the compiled one (its C entry point), else None
    cdef object _fifo
    cdef Py_ssize_t _history_len, _recent_len
    cdef list _recent
    cdef object _jb_stats, _resets
    cdef bint _has_shrink_since
    cdef double _shrink_since
    cdef dict _retry_at, _refusals
    cdef object _good
    cdef list _peeked

    cdef object tick_c(self, double now)
    cdef object _take(self, double now)
    cdef object _decoded(self, payload)
    cdef list _ahead(self)
    cdef bint _quiet_ahead(self) except -1
    cdef int _fill(self, double now) except -1
    cdef bint _stretch(self, str advice, double amount, double now) except -1
