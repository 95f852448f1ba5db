# cython: language_level=3, embedsignature=True, boundscheck=False, wraparound=False
#
# pyvoip_fast.media._jitter: the adaptive jitter buffer, compiled.
#
# Strategy
# --------
# The buffer runs on every packet a call receives and on every tick of its playout. Its state lives in C fields:
# the sequence and timestamp references (extended, as int64), the ring of recently seen sequence numbers, the
# optional slot numbers and times as a value plus a flag. What stays a Python object is what the caller sees
# or what is rarely touched: the recently lost sequence numbers, the counters (media.jitter_stats.JitterStats)
# and the transit statistics (rtp.stats.TransitStats, compiled on its own).
#
# The held packets
# ----------------
# The twin keeps a dict of extended timestamp -> (extended sequence number, payload, marker) and takes min()
# of it on every tick. Here they are a ring of C structs (Held) kept in timestamp order: the earliest is the
# ring's head, so starting a spurt, taking a slot and dropping what fell behind read the head, and a packet
# that arrives in order is appended at the tail (one out of order moves the later ones along by one). The
# ring starts at 8 slots and doubles as needed, never past the next power of two above ``capacity``; each
# slot owns a reference to an exact bytes object, so releasing one never runs Python code. Nothing reads the
# marker: it is not kept. The payload handed out is the object that was held, as in the twin, so the
# playout's match of a looked-ahead payload by identity (``Playout._decoded``) still holds.
#
# Same API, same results, same exceptions as the pure-Python twin pyvoip_fast/media/_jitter_py.py, whose rules
# pyvoip_fast/media/jitter.py explains; tests/media/test_jitter_parity.py drives both with the same random
# streams and compares every answer and every counter. Python's max() and min() keep the first of equal items and
# compare with > and <: the helpers below do the same, so a NaN time gives the twin's answer too.

import logging

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from libc.math cimport INFINITY, floor
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from array import array
from dataclasses import fields as _fields

from pyvoip_fast.media import jitter_stats as _common
from pyvoip_fast.rtp import stats as _stats

from pyvoip_fast.rtp._stats cimport TransitStats

logger = logging.getLogger("pyvoip_fast.media.jitter")

__all__ = ["JitterBuffer", "JitterStats", "TimeStretchJitterBuffer"]



cdef tuple COUNTERS = ("received", "played", "lost", "late", "duplicates", "resets", "max_depth", "concealed",
                       "stretched", "shrunk", "overflow", "invalid")
if COUNTERS != tuple(f.name for f in _fields(_common.JitterStats)):
    raise ImportError("ext/jitter.pyx: JitterStats' counters do not match media.jitter_stats.JitterStats")


cdef tuple _counts(JitterStats s):
    """The counters, in ``COUNTERS``' order."""
    return (s.received, s.played, s.lost, s.late, s.duplicates, s.resets, s.max_depth, s.concealed, s.stretched,
            s.shrunk, s.overflow, s.invalid)


cdef class JitterStats:
    """Counters of one jitter buffer (cumulative over resets): ``media.jitter_stats.JitterStats``' fields, the
    same names, order, constructor, ``as_dict``, equality and repr, kept in C fields so that the compiled buffer
    counts a packet or a frame without touching a Python object."""

    def __init__(self, received=0, played=0, lost=0, late=0, duplicates=0, resets=0, max_depth=0, concealed=0,
                 stretched=0, shrunk=0, overflow=0, invalid=0):
        self.received, self.played, self.lost, self.late = received, played, lost, late
        self.duplicates, self.resets, self.max_depth, self.concealed = duplicates, resets, max_depth, concealed
        self.stretched, self.shrunk, self.overflow, self.invalid = stretched, shrunk, overflow, invalid

    def as_dict(self):
        """A plain dict (for JSON)."""
        return dict(zip(COUNTERS, _counts(self)))

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return _counts(self) == _counts(<JitterStats>other)

    __hash__ = None  # mutable, compared by value (as the dataclass)

    def __repr__(self):
        return "JitterStats(" + ", ".join(f"{k}={v}" for k, v in zip(COUNTERS, _counts(self))) + ")"

    def __reduce__(self):
        return (JitterStats, _counts(self))


cdef int64_t MAX_DROPOUT = _common.MAX_DROPOUT
cdef int64_t MAX_MISORDER = _common.MAX_MISORDER
cdef int64_t SEEN_MASK = _common.SEEN_MASK
cdef double SHRINK_HYSTERESIS = _common.SHRINK_HYSTERESIS
cdef double TRIM_RESIDUE = _common.TRIM_RESIDUE
cdef double SHRINK_DWELL = _common.SHRINK_DWELL
cdef int64_t SEQ_MOD = 1 << 16
cdef int64_t TS_MOD = 1LL << 32
if _common.SEEN_WINDOW != SEEN:
    raise ImportError("ext/jitter.pyx: SEEN does not match media.jitter_stats.SEEN_WINDOW")

cdef Py_ssize_t HELD_START = 8
cdef tuple EMPTY_SLOT = ("empty", None)
cdef tuple LOST_SLOT = ("lost", None)
cdef tuple NO_ADVICE = ("", 0.0)
cdef double NEG_INF = float("-inf")


cdef inline double _max2(double a, double b) noexcept:
    return b if b > a else a


cdef inline double _min2(double a, double b) noexcept:
    return b if b < a else a


cdef inline int64_t _unwrap(int64_t last, int64_t value, int64_t mod) noexcept:
    """``value`` (modulo ``mod``, a power of two) extended next to the extended reference ``last``."""
    cdef int64_t delta = (value - last) & (mod - 1)
    if delta >= (mod >> 1):
        delta -= mod
    return last + delta


cdef class JitterBuffer:
    """Reorders, de-duplicates and times the packets of one stream for playout (compiled; see
    ``pyvoip_fast.media.jitter`` and the twin ``pyvoip_fast.media._jitter_py`` for the arguments)."""

    time_stretch = False


    def __init__(self, *, clock_rate=8000, frame_samples=160, min_delay=0.02, max_delay=0.30, initial_delay=0.06,
                 jitter_factor=None, release_time=4.0, window=10.0, capacity=1024, silence_detector=None,
                 margin=None):
        cfg = _common.buffer_settings(self.time_stretch, clock_rate, frame_samples, min_delay, max_delay,
                                      initial_delay, jitter_factor, release_time, window, capacity, margin)
        self._stretch = bool(self.time_stretch)
        self.clock_rate = cfg["clock_rate"]
        self.frame_samples = cfg["frame_samples"]
        self.frame_seconds = cfg["frame_seconds"]
        self.min_delay = cfg["min_delay"]
        self.max_delay = cfg["max_delay"]
        self.initial_delay = cfg["initial_delay"]
        self.jitter_factor = cfg["jitter_factor"]
        self.margin = cfg["margin"]
        self.release_time = cfg["release_time"]
        self.window = cfg["window"]
        self._coalesce = cfg["coalesce"]
        self.capacity = cfg["capacity"]
        self.silence_detector = silence_detector
        self.stats = JitterStats()
        self.ssrc = None
        self._transit = _stats.TransitStats(
            self.clock_rate, max_delay=self.max_delay, window=self.window, coalesce=self._coalesce,
            release_time=self.release_time, peak=_max2(0.0, self.initial_delay - self.margin),
            **self._spread_options())
        self._ct = self._transit if type(self._transit) is TransitStats else None
        self._last_shrink = NEG_INF
        self._reset_stream()

    def __dealloc__(self):
        self._drop_held()
        free(self._held)

    # ------------------------------------------------------------------ the held packets
    cdef Held *_slot(self, Py_ssize_t i) noexcept:
        """The ``i``-th held packet in timestamp order (0 <= i < _held_count)."""
        return &self._held[(self._held_head + i) & (self._held_cap - 1)]

    cdef Py_ssize_t _find(self, int64_t ts) noexcept:
        """The index of the packet held at ``ts``, or -1."""
        cdef Py_ssize_t i
        cdef int64_t t
        for i in range(self._held_count):
            t = self._slot(i).ts
            if t == ts:
                return i
            if t > ts:
                return -1
        return -1

    cdef Py_ssize_t _place(self, int64_t ts) noexcept:
        """Where a packet at ``ts`` goes (searched from the tail: packets mostly come in order), or -1 when
        one is held there already."""
        cdef Py_ssize_t i = self._held_count
        while i > 0 and self._slot(i - 1).ts > ts:
            i -= 1
        if i > 0 and self._slot(i - 1).ts == ts:
            return -1
        return i

    cdef int _insert(self, Py_ssize_t i, int64_t ts, int64_t seq, bytes payload) except -1:
        """Hold ``payload`` (an exact bytes object) at index ``i`` from ``_place``."""
        cdef Py_ssize_t n = self._held_count, cap = self._held_cap, k
        cdef Held *grown
        if n == cap:
            cap = cap * 2 if cap else HELD_START
            grown = <Held *>malloc(<size_t>cap * sizeof(Held))
            if grown == NULL:
                raise MemoryError()
            for k in range(n):
                grown[k] = self._slot(k)[0]
            free(self._held)
            self._held, self._held_cap, self._held_head = grown, cap, 0
        k = n
        while k > i:
            self._slot(k)[0] = self._slot(k - 1)[0]
            k -= 1
        cdef Held *h = self._slot(i)
        h.ts, h.seq, h.payload = ts, seq, <PyObject *>payload
        Py_INCREF(payload)
        self._held_count = n + 1
        return 0

    cdef bytes _remove(self, Py_ssize_t i, int64_t *seq):
        """Take the ``i``-th held packet out: its payload, and its sequence number in ``seq``."""
        cdef Held *h = self._slot(i)
        cdef Py_ssize_t k
        seq[0] = h.seq
        cdef bytes payload = <bytes>h.payload  # a new reference; the ring's is released below
        Py_XDECREF(h.payload)
        if i == 0:
            self._held_head = (self._held_head + 1) & (self._held_cap - 1)
        else:
            for k in range(i, self._held_count - 1):
                self._slot(k)[0] = self._slot(k + 1)[0]
        self._held_count -= 1
        return payload

    cdef void _drop_held(self) noexcept:
        """Release every held packet (exact bytes: no Python code runs)."""
        cdef Py_ssize_t i
        for i in range(self._held_count):
            Py_XDECREF(self._slot(i).payload)
        self._held_count = 0
        self._held_head = 0

    # ------------------------------------------------------------------ state
    cdef void _reset_stream(self) except *:
        cdef int i
        self._seq_has = False
        self._ts_has = False
        self._drop_held()
        for i in range(SEEN):
            self._ring[i] = -1
        self._has_next = False
        self._has_horizon = False
        self._has_played = False
        self._lost_seqs = {}
        self._has_first = False
        self._missing_run = 0
        self._transit.clear_window()
        self._has_offset = False
        self._has_bad = False
        self._bad_packet = None

    def _spread_options(self):
        return {}

    cdef double _delay(self) except? -1.0:
        cdef double base
        cdef TransitStats c = self._ct
        if c is not None:
            base = _max2(_max2(c.peak_, self.jitter_factor * c.jitter_), c.spread_quantile_c())
        else:
            t = self._transit
            base = _max2(_max2(t.peak, self.jitter_factor * t.jitter), t.spread_quantile())
        return _min2(self.max_delay, _max2(self.min_delay, base + self.margin))

    cdef object _min_transit(self):
        """The transit statistics' ``min_transit`` (its C entry point when they are the compiled class)."""
        return self._ct.min_transit_c() if self._ct is not None else self._transit.min_transit

    @property
    def delay(self):
        """Current target playout delay, seconds."""
        return self._delay()

    @property
    def jitter(self):
        """Smoothed interarrival jitter estimate (RFC 3550 A.8 style), seconds."""
        return self._transit.jitter

    @property
    def current_delay(self):
        """Measured buffering delay of the fastest packets (``o - r_min``), or ``None`` when not playing."""
        low = self._min_transit()
        if not self._has_offset or low is None or not self._has_next:
            return None
        return self._offset - <double>low

    @property
    def depth(self):
        """Packets buffered now."""
        return self._held_count

    @property
    def playing(self):
        """True while inside a talk spurt (slots are being consumed)."""
        return self._has_next

    @property
    def _seen(self):
        """The ring of recently seen sequence numbers (masked), as the twin holds it."""
        return array("i", [self._ring[i] for i in range(SEEN)])

    # ------------------------------------------------------------------ input
    def put(self, sequence_number, timestamp, payload, arrival, ssrc=None, marker=False):
        """Offer one received RTP packet; returns ``"ok"``, ``"duplicate"``, ``"late"``, ``"reset"``,
        ``"overflow"`` or ``"invalid"`` (see the twin)."""
        return self.put_c(sequence_number & 0xFFFF, timestamp & 0xFFFFFFFF, payload, arrival, ssrc, marker)

    cdef str put_c(self, int64_t seq, int64_t timestamp, payload, arrival, ssrc, marker):
        """``put`` of a sequence number and a timestamp already masked to 16 and 32 bits (the receiver's compiled
        common packet calls this)."""
        cdef bint reset = False
        cdef int64_t udelta
        if ssrc is not None and ssrc is not self.ssrc:  # (the receiver hands the same object every packet)
            if self.ssrc is not None and ssrc != self.ssrc:
                logger.info("[Jitter] SSRC changed %08x -> %08x: new stream", self.ssrc, ssrc)
                self._new_stream()
                reset = True
            self.ssrc = ssrc
        # RFC 3550 A.1: a big jump needs a second, sequential packet before we believe it
        if self._seq_has and not reset:
            udelta = (seq - self._seq_last) & (SEQ_MOD - 1)
            if MAX_DROPOUT <= udelta < SEQ_MOD - MAX_MISORDER:
                if self._has_bad and seq == self._bad_seq:
                    logger.info("[Jitter] sequence jump confirmed: new stream")
                    held = self._bad_packet
                    self._new_stream()
                    if held is not None:
                        self._accept(held[0], held[1], held[2], held[3], held[4])
                    reset = True
                else:
                    self._has_bad = True
                    self._bad_seq = (seq + 1) & (SEQ_MOD - 1)
                    self._bad_packet = (seq, timestamp, bytes(payload), arrival, marker)
                    self.stats.invalid += 1
                    return "invalid"
        self._has_bad = False
        self._bad_packet = None
        result = self._accept(seq, timestamp, payload, arrival, marker)
        return "reset" if reset and result == "ok" else result

    cdef void _new_stream(self) except *:
        self.stats.resets += 1
        self._reset_stream()

    cdef str _accept(self, int64_t seq, int64_t ts, payload, arrival, marker):
        cdef int64_t eseq = _unwrap(self._seq_last, seq, SEQ_MOD) if self._seq_has else seq
        cdef int64_t horizon
        cdef bint has_horizon
        if self._ring[eseq & (SEEN - 1)] == (eseq & SEEN_MASK):
            self.stats.duplicates += 1
            return "duplicate"
        cdef int64_t ets = _unwrap(self._ts_last, ts, TS_MOD) if self._ts_has else ts
        if self._ct is not None:
            self._ct.observe_c(ets, arrival)
        else:
            self._transit.observe(ets, arrival)
        if self._has_next:
            horizon, has_horizon = self._next_ts, True
        else:
            horizon, has_horizon = self._horizon, self._has_horizon
        if has_horizon and ets < horizon:
            self.stats.late += 1
            lost = self._lost_seqs
            if eseq in lost:
                del lost[eseq]
                self.stats.lost -= 1
            self._ring[eseq & (SEEN - 1)] = <int>(eseq & SEEN_MASK)
            if not self._seq_has:
                self._seq_last, self._seq_has = seq, True
            elif eseq > self._seq_last:
                self._seq_last = eseq
            return "late"
        if self._has_next and <double>(ets - self._next_ts) > (2 * self.max_delay * self.clock_rate
                                                              + 10 * self.frame_samples):
            # absurdly far ahead of playout: not something we will ever play in time
            self.stats.overflow += 1
            return "overflow"
        if self._held_count >= self.capacity:
            self.stats.overflow += 1
            return "overflow"
        if not self._seq_has or eseq > self._seq_last:
            self._seq_last, self._seq_has = eseq, True
        if not self._ts_has or ets > self._ts_last:
            self._ts_last, self._ts_has = ets, True
        self._ring[eseq & (SEEN - 1)] = <int>(eseq & SEEN_MASK)
        cdef Py_ssize_t at = self._place(ets)
        if at < 0:  # same timestamp, different sequence number: keep the first
            self.stats.duplicates += 1
            return "duplicate"
        held = bytes(payload)
        if type(held) is not bytes:  # a subclass's __bytes__: hold a plain copy (see "The held packets")
            held = PyBytes_FromStringAndSize(PyBytes_AS_STRING(held), PyBytes_GET_SIZE(held))
        self._insert(at, ets, eseq, <bytes>held)
        if not self._has_first and not self._has_next:
            self._first_arrival, self._has_first = arrival, True
        cdef JitterStats stats = self.stats
        stats.received += 1
        if self._held_count > stats.max_depth:
            stats.max_depth = self._held_count
        return "ok"

    # ------------------------------------------------------------------ output
    def get(self, double now):
        """Take the frame for this playout tick: ``("frame", payload)``, ``("lost", None)`` or
        ``("empty", None)`` (see the twin)."""
        return self.get_c(now)

    cdef tuple get_c(self, double now):
        cdef double early, target
        cdef int64_t eseq = 0
        cdef bytes payload
        if not self._has_next:
            if not self._held_count or not self._has_first:
                return EMPTY_SLOT
            # time-stretch mode: the take delay starts at the target or just above it (no stretch needed at once)
            early = 0.0 if self._stretch else self.frame_seconds / 2
            if now - self._first_arrival < self._delay() - early:
                return EMPTY_SLOT
            # start a talk spurt at the earliest buffered packet
            self._next_ts, self._has_next = self._first_key(), True
            self._missing_run = 0
            # never skip the opening frames of a spurt: a late first tick must not cost the first syllable
            self._last_shrink = now
        if self._stretch:
            if not self._has_offset:
                self._offset, self._has_offset = now - self._next_ts / <double>self.clock_rate, True
            payload = self._take_slot(&eseq)
            return self._play_slot(payload, eseq)
        self._offset, self._has_offset = now - self._next_ts / <double>self.clock_rate, True
        target = self._delay()
        low = self._min_transit()
        cdef bint known = low is not None
        cdef double current = self._offset - <double>low if known else 0.0
        if known and current < target - self.frame_seconds / 2:
            # grow: a synthetic slot, no frame consumed
            self.stats.concealed += 1
            self.stats.stretched += 1
            return LOST_SLOT
        payload = self._take_slot(&eseq)
        if payload is not None and known and current > target + self.frame_seconds:
            if self._may_shrink(now, payload, current - target):
                self.stats.shrunk += 1
                self._last_shrink = now
                self._mark_played(eseq, True)
                self._advance()
                self._offset = now - self._next_ts / <double>self.clock_rate
                payload = self._take_slot(&eseq)
        return self._play_slot(payload, eseq)

    cdef tuple _play_slot(self, bytes payload, int64_t eseq):
        """Play slot ``next_ts`` (``payload`` and ``eseq``: what was taken from it; None when nothing was)."""
        if payload is None:
            self.stats.concealed += 1
            self._advance()
            if not self._held_count:
                self._missing_run += 1
                if self._missing_run * self.frame_seconds >= self.max_delay:
                    self._go_idle()
            return LOST_SLOT
        if self._has_played and eseq == self._last_played_seq + 1:  # the next in sequence: nothing skipped
            self._last_played_seq = eseq
        else:
            self._mark_played(eseq, True)
        self._missing_run = 0
        self.stats.played += 1
        self._advance()
        return ("frame", payload)

    def peek(self, count):
        """The payloads buffered for the next ``count`` slots (``None`` where nothing is there yet), without
        taking them. Empty when not playing."""
        if not self._has_next:
            return []
        return self.peek_c(count)

    cdef list peek_c(self, Py_ssize_t count):
        if not self._has_next:
            return []
        cdef list out = []
        cdef Py_ssize_t k, i
        for k in range(count):
            i = self._find(self._next_ts + k * self.frame_samples)
            out.append(<bytes>self._slot(i).payload if i >= 0 else None)
        return out

    cdef int64_t _first_key(self) noexcept:
        """The smallest buffered timestamp (the buffer is not empty)."""
        return self._slot(0).ts

    cdef bytes _take_slot(self, int64_t *seq):
        """Remove and return the packet playing in slot ``next_ts`` (realigning to a packet inside the slot),
        its sequence number in ``seq``; None when there is none."""
        cdef Py_ssize_t i = self._find(self._next_ts)
        if i >= 0:
            return self._remove(i, seq)
        if not self._held_count:
            return None
        cdef int64_t first = self._first_key()
        if first < self._next_ts + self.frame_samples:
            # a packet starting inside this slot (sender frame grid differs): realign the slot to it
            self._next_ts = first
            return self._remove(0, seq)
        return None

    cdef void _advance(self) except *:
        cdef int64_t eseq
        self._next_ts += self.frame_samples
        # anything now behind the slot can no longer be played (the held packets are in timestamp order)
        while self._held_count and self._first_key() < self._next_ts:
            self._remove(0, &eseq)
            self.stats.late += 1
            self._mark_played(eseq, False)

    cdef void _mark_played(self, int64_t eseq, bint count_gap) except *:
        cdef int64_t last = self._last_played_seq, s, stop
        if self._has_played and count_gap and eseq > last + 1:
            lost = self._lost_seqs
            stop = eseq if eseq < last + 1 + MAX_DROPOUT else last + 1 + MAX_DROPOUT
            for s in range(last + 1, stop):
                if self._ring[s & (SEEN - 1)] != (s & SEEN_MASK):
                    self.stats.lost += 1
                    lost[s] = None
            while len(lost) > SEEN:
                del lost[next(iter(lost))]
        if not self._has_played or eseq > last:
            self._last_played_seq, self._has_played = eseq, True

    cdef bint _may_shrink(self, double now, payload, double excess) except -1:
        """Whether to skip this frame (``jitter_stats.may_shrink``: a whole-frame buffer's rare step)."""
        return _common.may_shrink(self.silence_detector, payload, now - self._last_shrink, excess,
                                  self.frame_seconds)

    cdef void _go_idle(self) except *:
        logger.debug("[Jitter] stream idle")
        self._horizon, self._has_horizon = self._next_ts, True
        self._has_next = False
        self._has_first = False
        self._has_offset = False
        self._missing_run = 0

    def reset(self):
        """Forget the stream (keeps statistics and the jitter estimate)."""
        self._reset_stream()
        self.ssrc = None


cdef class TimeStretchJitterBuffer(JitterBuffer):
    """A ``JitterBuffer`` whose caller adapts the delay by time-stretching (compiled; see the twin)."""

    time_stretch = True


    def __init__(self, *, quantile=0.995, memory=5.0, **kwargs):
        _common.check_stretch_options(quantile, memory)
        self.quantile = quantile
        self.memory = memory
        JitterBuffer.__init__(self, **kwargs)
        self._last_grow = NEG_INF  # when the delay last grew (no shrink right after: no see-saw)
        self._offset_time = 0.0  # the ``now`` of the last advice

    def _spread_options(self):
        return _common.spread_options(self.max_delay, self.frame_seconds, self.memory, self.quantile)

    def advise(self, double now, held=0.0):
        """Time-stretching advice for this tick: ``("grow", s)``, ``("shrink", s)``, ``("trim", s)`` or
        ``("", 0.0)`` (see the twin)."""
        return self.advise_c(now, float(held))  # (advise_c clamps it at 0, as the twin does)

    cdef tuple advise_c(self, double now, double held):
        low = self._min_transit()
        if not self._has_next or low is None:
            return NO_ADVICE
        cdef double frame = self.frame_seconds
        self._offset_time = now
        cdef double h = _max2(0.0, held)
        self._offset, self._has_offset = now + h - self._next_ts / <double>self.clock_rate, True
        cdef double whole = h / frame + 1e-9
        if whole == INFINITY:
            raise OverflowError("cannot convert float infinity to integer")  # as math.floor in the twin
        whole = floor(whole)
        cdef double residue = _max2(0.0, h - whole * frame)
        cdef double take = self._offset - residue - <double>low
        cdef double target = self._delay()
        if take < target - 1e-9:
            return ("grow", frame)
        if take >= target + frame + SHRINK_HYSTERESIS and now - self._last_grow >= SHRINK_DWELL:
            return ("shrink", frame)
        if residue >= TRIM_RESIDUE:
            return ("trim", residue)
        return NO_ADVICE

    def note_stretch(self, double seconds):
        """Count a time-stretch the caller applied: ``seconds`` > 0 inserted (``stretched``), < 0 removed
        (``shrunk``)."""
        self.note_stretch_c(seconds)

    cdef void note_stretch_c(self, double seconds) except *:
        if seconds > 0:
            self.stats.stretched += 1
            self._last_grow = self._offset_time
        elif seconds < 0:
            self.stats.shrunk += 1
