# pyvoip_fast.codecs._plc (ext/plc.pyx) as other compiled modules see it: ext/playout.pyx hands the lookahead
# concealer its common frame through the C entry point. Cython finds this file by the module's name; the
# implementation and its notes are in ext/plc.pyx.


cdef class LookaheadCore:
    cdef public Py_ssize_t frame_samples, lookahead_frames, latency_samples
    cdef public Py_ssize_t _keep, _cap, _base, _index, _planned_until
    cdef public bint _started
    cdef public object _pending_head, _c, _z

    cdef object conceal_c(self, frame, ahead)
