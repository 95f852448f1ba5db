# pyvoip_fast.media._jitter (ext/jitter.pyx) as other compiled modules see it: ext/playout.pyx calls the buffer's C
# entry points directly. Cython finds this file by the module's name; the implementation and its notes are in ext/jitter.pyx.

from cpython.ref cimport PyObject
from libc.stdint cimport int64_t

from pyvoip_fast.rtp._stats cimport TransitStats

cdef enum:
    SEEN = 256  # media.jitter_stats.SEEN_WINDOW (jitter.pyx checks it at import)


cdef struct Held:  # one buffered packet (ext/jitter.pyx: "The held packets")
    int64_t ts  # extended RTP timestamp, the key
    int64_t seq  # extended sequence number
    PyObject *payload  # an owned reference to an exact bytes object


cdef class JitterStats:  # media.jitter_stats.JitterStats' counters, as C fields (ext/jitter.pyx)
    cdef public int64_t received, played, lost, late, duplicates, resets, max_depth, concealed, stretched, shrunk
    cdef public int64_t overflow, invalid


cdef class JitterBuffer:
    cdef public int64_t clock_rate, frame_samples, capacity
    cdef public double frame_seconds, min_delay, max_delay, initial_delay, jitter_factor, margin
    cdef public double release_time, window
    cdef double _coalesce
    cdef public object silence_detector, ssrc
    cdef readonly JitterStats stats
    cdef readonly object _transit
    cdef TransitStats _ct  # _transit when it is exactly the compiled class (its C entry points), else None
    cdef readonly dict _lost_seqs
    cdef Held *_held  # _held_cap slots (a power of two): _held_count in use from _held_head, in order
    cdef Py_ssize_t _held_head, _held_count, _held_cap
    cdef bint _stretch
    cdef double _last_shrink
    cdef bint _seq_has, _ts_has
    cdef int64_t _seq_last, _ts_last
    cdef int _ring[SEEN]
    cdef bint _has_next, _has_horizon, _has_played, _has_first, _has_offset, _has_bad
    cdef int64_t _next_ts, _horizon, _last_played_seq, _bad_seq
    cdef double _first_arrival, _offset
    cdef int64_t _missing_run
    cdef object _bad_packet

    cdef void _reset_stream(self) except *
    cdef Held *_slot(self, Py_ssize_t i) noexcept
    cdef Py_ssize_t _find(self, int64_t ts) noexcept
    cdef Py_ssize_t _place(self, int64_t ts) noexcept
    cdef int _insert(self, Py_ssize_t i, int64_t ts, int64_t seq, bytes payload) except -1
    cdef bytes _remove(self, Py_ssize_t i, int64_t *seq)
    cdef void _drop_held(self) noexcept
    cdef double _delay(self) except? -1.0
    cdef object _min_transit(self)
    cdef void _new_stream(self) except *
    cdef str _accept(self, int64_t seq, int64_t ts, payload, arrival, marker)
    cdef str put_c(self, int64_t seq, int64_t timestamp, payload, arrival, ssrc, marker)
    cdef tuple get_c(self, double now)
    cdef list peek_c(self, Py_ssize_t count)
    cdef tuple _play_slot(self, bytes payload, int64_t eseq)
    cdef int64_t _first_key(self) noexcept
    cdef bytes _take_slot(self, int64_t *seq)
    cdef void _advance(self) except *
    cdef void _mark_played(self, int64_t eseq, bint count_gap) except *
    cdef bint _may_shrink(self, double now, payload, double excess) except -1
    cdef void _go_idle(self) except *


cdef class TimeStretchJitterBuffer(JitterBuffer):
    cdef public double quantile, memory
    cdef double _last_grow, _offset_time

    cdef tuple advise_c(self, double now, double held)
    cdef void note_stretch_c(self, double seconds) except *
