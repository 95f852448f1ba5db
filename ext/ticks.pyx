# cython: language_level=3, embedsignature=True
#
# pyvoip_fast.media._ticks: the fields of a media.clock.Pacer and the per-wake-up loop of a tick group, compiled.
#
# Strategy
# --------
# media.clock.Pacer and media.clock._TickGroup are Python subclasses of PacerCore and TickGroupCore. A loaded
# listener's media clock wakes every 2 ms and serves one group: a hundred calls, each slot in three stages (send,
# receive, play out). In Python that loop, with the lateness count of each slot, took about a fifth of the
# process's time (perf, 1,000 calls up); here it reads the pacers' fields as C fields, calls each stage with one
# argument tuple made per slot, reads the clock as time.monotonic does (clock_gettime(CLOCK_MONOTONIC), on Linux)
# when that is the clock's now, and counts lateness straight into the clock's histogram (MediaClock.note_lateness's rule).
# Everything that is not the usual wake-up (skipped or several due slots, a pacer without stages, a clock that is not
# a MediaClock) goes to the same Python as before: Pacer._serve, the pacer's callback, the clock's note_lateness.
# The pure-Python twin (pyvoip_fast/media/_ticks_py.py) is the definition; tests/media/test_ticks_parity.py runs
# both on the same schedules and compares the slots run, their order, the histogram and the worst lateness.

import logging
import time

from libc.math cimport INFINITY
from libc.stdint cimport int64_t

cdef extern from *:
    """
    /* time.monotonic() in C where it is clock_gettime(CLOCK_MONOTONIC) (Linux); elsewhere (macOS's time.monotonic
       is mach_absolute_time, Windows has no clock_gettime) the clock's own now() is called */
    #if defined(__linux__)
    #include <time.h>
    #define PYVOIP_C_MONOTONIC 1
    static double pyvoip_monotonic(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    #else
    #define PYVOIP_C_MONOTONIC 0
    static double pyvoip_monotonic(void) { return 0.0; }
    #endif
    """
    const int PYVOIP_C_MONOTONIC
    double pyvoip_monotonic() nogil

cdef object logger = logging.getLogger("pyvoip_fast.media.clock")  # the clock's own log
cdef object _monotonic = time.monotonic
#: bins of 0.1 ms in MediaClock's lateness histogram (media.clock.LATENESS_BINS; the last counts 100 ms and up)
cdef Py_ssize_t _BINS = 1000


cdef class PacerCore:
    """The fields of ``media.clock.Pacer`` (see the twin)."""

    cdef public object clock, callback, on_skip, _group, _note
    cdef public tuple stages
    cdef public double period, start
    cdef public int64_t n
    cdef public Py_ssize_t max_burst, skipped, note_stage


cdef class TickGroupCore:
    """The fields of ``media.clock._TickGroup`` and what it does at each wake-up (see the twin)."""

    cdef public object clock, key, entry
    cdef public dict members
    cdef public double when

    def _schedule(self, double when):
        """The group's next wake-up at ``when``, in place of the one it had."""
        if self.entry is not None:
            self.entry.cancel()
        self.when = when
        if self.key is None:  # a pacer of its own on a clock with only the basic interface
            self.entry = self.clock.call_at(when, self._fire)
        else:
            self.entry = self.clock.call_at(when, self._fire, measured=False)

    def _fire(self, _when):
        rest = self._fire_first()
        if rest is not None:
            self._fire_rest(rest)

    def _fire_first(self):
        """Serve the members' due slots up to their first stage, and reschedule the group (see the twin)."""
        cdef PacerCore p
        cdef bint grouped = self.key is not None
        cdef double limit, due, start, period, nxt = INFINITY
        cdef int64_t n
        cdef Py_ssize_t served = 0, stages = 0, ns
        cdef list staged = []
        self.entry = None
        self.when = INFINITY
        clock = self.clock
        now = clock.now if grouped else clock.time
        limit = <double>now() + <double>clock.early
        for pacer in list(self.members):
            p = <PacerCore?>pacer
            if p._group is not self:
                continue
            n = p.n
            start = p.start
            period = p.period
            due = start + <double>n * period
            if grouped and due <= limit < start + <double>(n + 1) * period:
                p.n = n + 1
                served += 1
                ns = len(p.stages) if p.stages is not None else 0
                if ns:
                    staged.append((p, (n, due)))
                    if ns > stages:
                        stages = ns
                else:
                    clock.note_lateness(now() - due)
                    try:
                        p.callback(n, due)
                    except Exception:  # a broken stream must not stop the others of its group
                        logger.exception("media clock callback %r failed", p.callback)
            else:
                served += pacer._serve(limit)
            if p._group is self:
                due = p.start + <double>p.n * p.period
                if due < nxt:
                    nxt = due
        self._stage(0, staged)
        if grouped:
            clock.callbacks_run += served - 1  # the clock counted this entry once
        if self.members and nxt < self.when:
            self._schedule(nxt)
        return (staged, stages) if stages > 1 else None

    def _fire_rest(self, rest):
        """The later stages of the members ``_fire_first`` served, stage by stage."""
        staged, stages = rest
        cdef Py_ssize_t k
        for k in range(1, <Py_ssize_t>stages):
            self._stage(k, <list?>staged)

    def _run_stage(self, Py_ssize_t k, list staged):
        """Stage ``k`` of each staged member still in the group, its lateness counted at its ``note_stage``."""
        self._stage(k, staged)

    cdef int _stage(self, Py_ssize_t k, list staged) except -1:
        cdef PacerCore p
        cdef tuple todo
        cdef double late, due, worst = 0.0
        cdef Py_ssize_t i
        cdef bint grouped = self.key is not None, mono, counted = False
        cdef list hist = None
        clock = self.clock
        now = clock.now if grouped else clock.time
        mono = PYVOIP_C_MONOTONIC and now is _monotonic
        if grouped:
            counts = clock.lateness
            if type(counts) is list and len(<list>counts) == _BINS + 1:
                hist = <list>counts
        try:
            for item in staged:
                p = <PacerCore?>(<tuple?>item)[0]
                args = (<tuple>item)[1]
                todo = p.stages
                if todo is None or k >= len(todo) or p._group is not self:  # (stopped by an earlier stage)
                    continue
                if k == p.note_stage:
                    due = (<tuple?>args)[1]
                    late = (pyvoip_monotonic() if mono else <double>now()) - due
                    if hist is None:
                        clock.note_lateness(late)
                    else:  # MediaClock.note_lateness, without the call
                        i = 0
                        if late > 0.0:
                            i = _BINS if late * 10000.0 >= <double>_BINS else <Py_ssize_t>(late * 10000.0)
                            if late > worst:
                                worst = late
                        hist[i] = hist[i] + 1
                        counted = True
                stage = todo[k]
                try:
                    stage(*<tuple?>args)  # (one argument tuple per slot, for all its stages)
                except Exception:  # a broken stream must not stop the others of its group
                    logger.exception("media clock stage %r failed", stage)
        finally:
            if counted and worst > <double>clock.worst_recent:
                clock.worst_recent = worst
        return 0
