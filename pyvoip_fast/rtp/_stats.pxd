# pyvoip_fast.rtp._stats (ext/stats.pyx) as other compiled modules see it: ext/receiver.pyx updates the receiver
# statistics and ext/jitter.pyx the transit statistics through their C entry points, with C numbers (no boxing, no
# Python call per packet). Cython finds this file by the module's name; the implementation and its notes are in
# ext/stats.pyx.

from libc.stdint cimport int64_t, uint16_t, uint32_t

cdef enum:
    C_ACCEPTED = 0
    C_DUPLICATE = 1
    C_PROBATION = 2
    C_BAD = 3
    C_RESTARTED = 4
    C_MIN_SEQUENTIAL = 2
    C_MAX_DROPOUT = 3000
    C_MAX_MISORDER = 100
    C_SEQ_MOD = 65536
    C_WINDOW = 128
    C_RING_MASK = 127


cdef class ReceiverStats:
    cdef int64_t _clock_rate
    cdef bint _started
    cdef int _probation
    cdef int64_t _max_seq
    cdef int64_t _cycles
    cdef int64_t _base_seq
    cdef int64_t _bad_seq
    cdef int64_t _received
    cdef int64_t _received_prior
    cdef int64_t _expected_prior
    cdef double _jitter
    cdef bint _have_transit
    cdef double _last_arrival
    cdef uint32_t _last_ts
    cdef int64_t _duplicates
    cdef int64_t _reordered
    cdef int64_t _octets
    cdef int64_t _ring[C_WINDOW]

    cdef void _clear_ring(self) noexcept
    cdef void _init_seq(self, int64_t seq) noexcept
    cdef int _count(self, int64_t ext, uint32_t ts, double arrival, int64_t octets, int status) noexcept
    cdef int update_c(self, uint16_t seq, uint32_t ts, double arrival, uint16_t octets) except -1
    cdef int _update(self, int64_t seq, int64_t ts, double arrival_seconds, int64_t octets) except -1
    cdef int64_t _expected(self) noexcept


cdef class SenderStats:
    cdef uint32_t _packets
    cdef uint32_t _octets

    cdef void on_sent_c(self, int64_t octets) noexcept


cdef class TransitStats:
    cdef double rate, max_delay, window, coalesce, release, peak_, peak_time, forget, quantile, prev, jitter_
    cdef double add, q_value
    cdef bint has_peak_time, has_prev
    cdef Py_ssize_t every, q_new, bins
    cdef float *hist
    # the window: a ring of (arrival, transit) pairs, monotonic in transit
    cdef double *ring
    cdef Py_ssize_t cap, head, count

    cdef Py_ssize_t _at(self, Py_ssize_t k) noexcept
    cdef int _push(self, double arrival, double r) except -1
    cdef double observe_c(self, int64_t ets, double arrival) except? -1.0
    cdef double spread_quantile_c(self) noexcept
    cdef object min_transit_c(self)
