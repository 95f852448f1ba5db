# cython: language_level=3, embedsignature=True
#
# pyvoip_fast.rtp._stats: RFC 3550 receiver and sender statistics, compiled.
#
# Strategy
# --------
# The per-packet path (ReceiverStats.update) runs on C integers and doubles only: no allocation, no Python
# objects touched after the arguments are converted; compiled callers (the receiver's common packet, the jitter
# buffer, the sender) use the C entry points declared in pyvoip_fast/rtp/_stats.pxd (update_c, observe_c,
# spread_quantile_c, on_sent_c), which take C numbers and skip the conversion. Same API, same results, same
# exceptions and messages as the pure-Python twin pyvoip_fast/rtp/_stats_py.py, whose module docstring states the
# rules precisely (the tests drive both with the same streams and compare them packet by packet).
#
# Implements: RFC 3550 appendix A.1 (probation with MIN_SEQUENTIAL, MAX_DROPOUT, MAX_MISORDER, cycles, resync
# after two sequential bad packets), A.3 (expected / lost / fraction lost per interval, signed 24-bit clamp),
# A.8 (interarrival jitter from a monotonic arrival clock converted to timestamp units), plus duplicate
# recognition over a ring of the last DUPLICATE_WINDOW extended sequence numbers and a reordered-packet count.

import logging

from libc.math cimport exp, fabs, isfinite, isnan
from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memset

from pyvoip_fast import _compat

logger = logging.getLogger("pyvoip_fast.rtp._stats")

# the report blocks are those of the RTP module this process uses (compiled when available)
ReportBlock = _compat.load("_rtp").ReportBlock

__all__ = [
    "ReceiverStats",
    "SenderStats",
    "ACCEPTED",
    "DUPLICATE",
    "PROBATION",
    "BAD",
    "RESTARTED",
    "MIN_SEQUENTIAL",
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "RTP_SEQ_MOD",
    "DUPLICATE_WINDOW",
    "TransitStats",
]

ACCEPTED = 0
DUPLICATE = 1
PROBATION = 2
BAD = 3
RESTARTED = 4

MIN_SEQUENTIAL = 2
MAX_DROPOUT = 3000
MAX_MISORDER = 100
RTP_SEQ_MOD = 1 << 16
DUPLICATE_WINDOW = 128

# the C_* constants (the statuses, RFC 3550 A.1's limits, the duplicate window) are in pyvoip_fast/rtp/_stats.pxd

cdef int64_t C_EMPTY = -(<int64_t>1 << 62)

cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object obj, int* overflow)
    object PyNumber_Index(object o)


cdef inline long long _index(object v) except? -1:
    """operator.index(v) as a C value; the twin's messages for non-integers (TypeError from PyNumber_Index)."""
    cdef int overflow = 0
    cdef long long x
    v = PyNumber_Index(v)
    x = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow > 0:
        return 0x7FFFFFFFFFFFFFFF
    if overflow < 0:
        return -0x7FFFFFFFFFFFFFFF
    return x


cdef class ReceiverStats:
    """Reception statistics of one RTP source (RFC 3550 appendix A.1, A.3, A.8).

    Args:
        clock_rate: the RTP timestamp clock rate in Hz (8000 for G.711).

    Raises:
        ValueError: a clock rate that is not positive.
    """

    # (its fields are declared in pyvoip_fast/rtp/_stats.pxd)

    def __init__(self, clock_rate=8000):
        cdef long long rate = _index(clock_rate)
        if rate <= 0 or rate > 0x7FFFFFFF:
            raise ValueError(f"clock_rate must be in 1..2147483647, got {PyNumber_Index(clock_rate)}")
        self._clock_rate = rate
        self.reset()

    def reset(self):
        """Forget everything: the next packet is the first of a new source (on probation)."""
        self._started = False
        self._probation = 0
        self._max_seq = 0
        self._cycles = 0
        self._base_seq = 0
        self._bad_seq = C_SEQ_MOD + 1
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._jitter = 0.0
        self._have_transit = False
        self._last_arrival = 0.0
        self._last_ts = 0
        self._duplicates = 0
        self._reordered = 0
        self._octets = 0
        self._clear_ring()

    cdef void _clear_ring(self) noexcept:
        cdef int i
        for i in range(C_WINDOW):
            self._ring[i] = C_EMPTY

    cdef void _init_seq(self, int64_t seq) noexcept:
        self._base_seq = seq
        self._max_seq = seq
        self._bad_seq = C_SEQ_MOD + 1
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._clear_ring()

    cdef int _count(self, int64_t ext, uint32_t ts, double arrival, int64_t octets, int status) noexcept:
        cdef double d
        cdef uint32_t dts
        self._ring[ext & C_RING_MASK] = ext
        self._received += 1
        self._octets += octets
        if self._have_transit and status == C_ACCEPTED:
            dts = ts - self._last_ts
            d = (arrival - self._last_arrival) * <double>self._clock_rate
            if dts & 0x80000000u:
                d -= <double>(<int64_t>dts - 0x100000000)
            else:
                d -= <double>dts
            if d < 0.0:
                d = -d
            d = self._jitter + (d - self._jitter) * 0.0625
            if isfinite(d):  # arrival times far apart enough to overflow a double leave the estimate as it was
                self._jitter = d
        self._have_transit = True
        self._last_arrival = arrival
        self._last_ts = ts
        return status

    def update(self, sequence_number, rtp_timestamp, double arrival_seconds, payload_octets):
        """Account for one received RTP packet.

        Args:
            sequence_number: the packet's sequence number (0..65535).
            rtp_timestamp: the packet's RTP timestamp (0..2**32-1).
            arrival_seconds: arrival time on a monotonic clock (e.g. ``loop.time()``), in seconds.
            payload_octets: payload size in bytes (0..65535, for ``octets_received``).

        Returns:
            ACCEPTED, DUPLICATE, PROBATION, BAD or RESTARTED (module constants).

        Raises:
            ValueError: a sequence number, timestamp or size out of range, or an arrival time that is not finite.
            TypeError: a non-integer sequence number, timestamp or size, or a non-number arrival time.
        """
        cdef long long seq = _index(sequence_number)
        cdef long long ts = _index(rtp_timestamp)
        cdef long long octets = _index(payload_octets)
        if seq < 0 or seq > 0xFFFF:
            raise ValueError(f"sequence_number must be in 0..65535, got {PyNumber_Index(sequence_number)}")
        if ts < 0 or ts > 0xFFFFFFFF:
            raise ValueError(f"rtp_timestamp must be in 0..4294967295, got {PyNumber_Index(rtp_timestamp)}")
        if octets < 0 or octets > 0xFFFF:
            raise ValueError(f"payload_octets must be in 0..65535, got {PyNumber_Index(payload_octets)}")
        if not isfinite(arrival_seconds):
            raise ValueError(f"arrival_seconds must be a finite number of seconds, got {arrival_seconds}")
        return self._update(seq, ts, arrival_seconds, octets)

    cdef int update_c(self, uint16_t seq, uint32_t ts, double arrival, uint16_t octets) except -1:
        """``update`` for C numbers (the receiver's common packet: their types hold only values in range), the
        status as a C int."""
        if not isfinite(arrival):
            raise ValueError(f"arrival_seconds must be a finite number of seconds, got {arrival}")
        return self._update(seq, ts, arrival, octets)

    cdef int _update(self, int64_t seq, int64_t ts, double arrival_seconds, int64_t octets) except -1:
        """One packet, its numbers checked: A.1's bookkeeping and A.8's jitter; the status."""
        cdef int64_t udelta, ext
        if not self._started:
            self._started = True
            self._init_seq(seq)
            self._max_seq = (seq - 1) & 0xFFFF
            self._probation = C_MIN_SEQUENTIAL

        if self._probation:
            if seq == ((self._max_seq + 1) & 0xFFFF):
                self._probation -= 1
                self._max_seq = seq
                if self._probation == 0:
                    self._init_seq(seq)
                    # the previous probation packet was received (not counted): a copy of it is a duplicate
                    self._ring[(seq - 1) & C_RING_MASK] = seq - 1
                    return self._count(seq, <uint32_t>ts, arrival_seconds, octets, C_ACCEPTED)
            else:
                self._probation = C_MIN_SEQUENTIAL - 1
                self._max_seq = seq
            self._have_transit = True
            self._last_arrival = arrival_seconds
            self._last_ts = <uint32_t>ts
            return C_PROBATION

        udelta = (seq - self._max_seq) & 0xFFFF
        if udelta < C_MAX_DROPOUT:
            if seq >= self._max_seq:
                ext = self._cycles + seq
            else:
                ext = self._cycles + C_SEQ_MOD + seq
            if self._ring[ext & C_RING_MASK] == ext:
                self._duplicates += 1
                return C_DUPLICATE
            if seq < self._max_seq:
                self._cycles += C_SEQ_MOD
            self._max_seq = seq
            return self._count(ext, <uint32_t>ts, arrival_seconds, octets, C_ACCEPTED)
        if udelta <= C_SEQ_MOD - C_MAX_MISORDER:
            if seq == self._bad_seq:
                self._init_seq(seq)
                self._have_transit = False
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("RTP source restarted at sequence number %d", seq)
                return self._count(seq, <uint32_t>ts, arrival_seconds, octets, C_RESTARTED)
            self._bad_seq = (seq + 1) & 0xFFFF
            return C_BAD
        # behind the highest sequence number by less than MAX_MISORDER: a duplicate or a reordered packet
        ext = self._cycles + self._max_seq - (C_SEQ_MOD - udelta)
        if self._ring[ext & C_RING_MASK] == ext:
            self._duplicates += 1
            return C_DUPLICATE
        self._reordered += 1
        return self._count(ext, <uint32_t>ts, arrival_seconds, octets, C_ACCEPTED)

    cdef int64_t _expected(self) noexcept:
        if not self._started or self._probation:
            return 0
        return self._cycles + self._max_seq - self._base_seq + 1

    def report_block(self, ssrc_of_source, lsr=0, dlsr=0):
        """A report block for this source, closing the current reporting interval (RFC 3550 A.3).

        Args:
            ssrc_of_source: the SSRC this block reports on.
            lsr: LSR field (middle 32 bits of the NTP timestamp of the last SR received from it, 0 if none).
            dlsr: DLSR field (delay since that SR in 1/65536 s, 0 if none).

        Returns:
            The block; ``fraction_lost`` covers the packets since the previous call, ``cumulative_lost`` is
            clamped to the signed 24-bit range, ``jitter`` is ``floor(J)``.

        Raises:
            ValueError: an SSRC, LSR or DLSR out of range.
        """
        cdef int64_t expected = self._expected()
        cdef int64_t lost = expected - self._received
        cdef int64_t expected_interval, received_interval, lost_interval, fraction
        cdef double j = self._jitter
        cdef uint64_t jitter
        if lost > 0x7FFFFF:
            lost = 0x7FFFFF
        elif lost < -0x800000:
            lost = -0x800000
        expected_interval = expected - self._expected_prior
        self._expected_prior = expected
        received_interval = self._received - self._received_prior
        self._received_prior = self._received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = (lost_interval << 8) // expected_interval
            if fraction > 255:
                fraction = 255
        if not j < 4294967295.0:  # NaN never gets here (see _count), and must not reach the cast either
            jitter = 0xFFFFFFFF
        elif j > 0.0:
            jitter = <uint64_t>j
        else:
            jitter = 0
        return ReportBlock(
            ssrc_of_source, fraction, lost, (self._cycles + self._max_seq) & 0xFFFFFFFF, jitter, lsr, dlsr
        )

    @property
    def clock_rate(self):
        """The RTP clock rate in Hz."""
        return self._clock_rate

    @property
    def valid(self):
        """Whether the source has passed probation (A.1)."""
        return self._started and self._probation == 0

    @property
    def received(self):
        """Packets counted since validation (or the last restart); recognised duplicates excluded."""
        return self._received

    @property
    def expected(self):
        """Packets expected: ``extended_max_seq - base_seq + 1`` (0 before validation)."""
        return self._expected()

    @property
    def cumulative_lost(self):
        """``expected - received``, not clamped (negative when unrecognised duplicates were counted)."""
        return self._expected() - self._received

    @property
    def extended_max_seq(self):
        """Highest sequence number received, with the wrap-around cycles in the upper bits."""
        return self._cycles + self._max_seq

    @property
    def base_seq(self):
        """The first counted sequence number (A.1)."""
        return self._base_seq

    @property
    def cycles(self):
        """Number of sequence-number wrap-arounds (not shifted)."""
        return self._cycles >> 16

    @property
    def jitter(self):
        """Interarrival jitter estimate in timestamp units (A.8), as a float."""
        return self._jitter

    @property
    def jitter_seconds(self):
        """Interarrival jitter in seconds."""
        return self._jitter / self._clock_rate

    @property
    def duplicates(self):
        """Packets recognised as duplicates (not counted in ``received``)."""
        return self._duplicates

    @property
    def reordered(self):
        """Packets counted that arrived behind the highest sequence number received."""
        return self._reordered

    @property
    def octets_received(self):
        """Payload octets of the packets counted in ``received`` (kept across restarts)."""
        return self._octets

    def __repr__(self):
        return (
            f"ReceiverStats(clock_rate={self._clock_rate}, valid={self.valid}, received={self._received}, "
            f"expected={self.expected}, lost={self.cumulative_lost}, jitter={self._jitter:.2f}, "
            f"duplicates={self._duplicates}, reordered={self._reordered})"
        )


cdef class SenderStats:
    """The sender's packet and payload-octet counts for SRs (RFC 3550 §6.4.1); both wrap at 2**32."""

    # (its fields are declared in pyvoip_fast/rtp/_stats.pxd)

    def __init__(self):
        self._packets = 0
        self._octets = 0

    def on_sent(self, payload_octets):
        """Count one RTP data packet sent with ``payload_octets`` bytes of payload.

        Raises:
            ValueError: a negative size.
        """
        cdef long long octets = _index(payload_octets)
        if octets < 0:
            raise ValueError(f"payload_octets must be >= 0, got {PyNumber_Index(payload_octets)}")
        self.on_sent_c(octets)

    cdef void on_sent_c(self, int64_t octets) noexcept:
        """``on_sent`` for a size the caller knows is not negative."""
        self._packets += 1
        self._octets = <uint32_t>(self._octets + <uint64_t>octets)

    def reset(self):
        """Zero both counts (RFC 3550: when the sender changes its SSRC)."""
        self._packets = 0
        self._octets = 0

    @property
    def packet_count(self):
        """Packets sent (mod 2**32)."""
        return self._packets

    @property
    def octet_count(self):
        """Payload octets sent (mod 2**32)."""
        return self._octets

    def __repr__(self):
        return f"SenderStats(packet_count={self._packets}, octet_count={self._octets})"


# -- transit-time statistics of a received stream (the twin's TransitStats states the rules) ---------------------

cdef double C_HIST_RESCALE = 1e20
cdef long long C_MAX_RATE = 0x7FFFFFFF
cdef long long C_MAX_BINS = 1 << 20


cdef class TransitStats:
    """Transit-time statistics of one received stream, for an adaptive jitter buffer: the window's minimum transit,
    the smoothed jitter, the peak spread and a forgetting histogram of spreads (see the twin, ``_stats_py``)."""

    # (its fields are declared in pyvoip_fast/rtp/_stats.pxd; the window is a ring of (arrival, transit) pairs,
    # monotonic in transit)

    def __cinit__(self) -> None:
        self.hist = NULL
        self.ring = NULL

    def __init__(self, clock_rate, *, double max_delay, double window, double coalesce, double release_time,
                 double peak=0.0, bins=0, double forget=0.0, double quantile=1.0, quantile_every=1) -> None:
        cdef long long rate = _index(clock_rate)
        cdef long long nbins = _index(bins)
        cdef long long every = _index(quantile_every)
        if not 0 < rate <= C_MAX_RATE:
            raise ValueError(f"clock_rate must be in 1..{C_MAX_RATE}, got {clock_rate}")
        if not 0 <= nbins <= C_MAX_BINS:
            raise ValueError(f"bins must be in 0..{C_MAX_BINS}, got {bins}")
        if not 0 < every <= C_MAX_BINS:
            raise ValueError(f"quantile_every must be in 1..{C_MAX_BINS}, got {quantile_every}")
        if not 0.0 <= coalesce <= window:
            raise ValueError(f"need 0 <= coalesce <= window, got {coalesce!r} and {window!r}")
        if not release_time > 0.0:
            raise ValueError(f"release_time must be positive, got {release_time!r}")
        if not 0.0 <= forget < 1.0:  # each packet weighs 1 / (1 - forget) times the one before
            raise ValueError(f"forget must be in [0, 1), got {forget!r}")
        self.rate = <double>rate
        self.max_delay = max_delay
        self.window = window
        self.coalesce = coalesce
        self.release = release_time
        self.peak_ = peak
        self.has_peak_time = False
        self.forget = forget
        self.quantile = quantile
        self.every = <Py_ssize_t>every
        self.q_new = self.every
        self.has_prev = False
        self.jitter_ = 0.0
        self.add = 1.0
        self.q_value = 0.0
        self.bins = <Py_ssize_t>nbins
        free(self.hist)
        self.hist = NULL
        if nbins:
            self.hist = <float *>malloc(<size_t>nbins * sizeof(float))
            if self.hist == NULL:
                raise MemoryError()
            memset(self.hist, 0, <size_t>nbins * sizeof(float))
        free(self.ring)
        self.cap = 8
        self.ring = <double *>malloc(<size_t>self.cap * 2 * sizeof(double))
        if self.ring == NULL:
            raise MemoryError()
        self.head = 0
        self.count = 0

    def __dealloc__(self) -> None:
        free(self.hist)
        free(self.ring)

    @property
    def jitter(self) -> float:
        """The smoothed transit jitter, seconds."""
        return self.jitter_

    @property
    def peak(self) -> float:
        """The peak spread (decayed to the last packet), seconds."""
        return self.peak_

    @property
    def entries(self) -> int:
        """Entries in the minimum's window."""
        return self.count

    @property
    def oldest(self):
        """The window's oldest entry ``(arrival, transit)``: its transit is the minimum; None when empty."""
        if self.count == 0:
            return None
        return (self.ring[2 * self.head], self.ring[2 * self.head + 1])

    @property
    def min_transit(self):
        """The minimum transit of the window, seconds; None when empty."""
        return self.min_transit_c()

    cdef object min_transit_c(self):
        if self.count == 0:
            return None
        return self.ring[2 * self.head + 1]

    def clear_window(self) -> None:
        """Forget the window and the previous transit (keep the jitter, the peak and the histogram)."""
        self.head = 0
        self.count = 0
        self.has_prev = False

    cdef Py_ssize_t _at(self, Py_ssize_t k) noexcept:
        """The ring slot of the window's k-th entry (0: the oldest)."""
        return (self.head + k) % self.cap

    cdef int _push(self, double arrival, double r) except -1:
        cdef Py_ssize_t k, slot
        cdef double *grown
        if self.count == self.cap:  # full: unroll into a ring twice as large
            grown = <double *>malloc(<size_t>self.cap * 4 * sizeof(double))
            if grown == NULL:
                raise MemoryError()
            for k in range(self.count):
                slot = self._at(k)
                grown[2 * k] = self.ring[2 * slot]
                grown[2 * k + 1] = self.ring[2 * slot + 1]
            free(self.ring)
            self.ring = grown
            self.cap *= 2
            self.head = 0
        slot = self._at(self.count)
        self.ring[2 * slot] = arrival
        self.ring[2 * slot + 1] = r
        self.count += 1
        return 0

    def observe(self, ets, double arrival) -> float:
        """One packet of extended RTP timestamp ``ets`` that arrived at ``arrival`` (seconds); its spread above the
        window's minimum transit, seconds."""
        cdef int overflow = 0
        cdef long long e
        e = PyLong_AsLongLongAndOverflow(PyNumber_Index(ets), &overflow)
        if overflow:
            raise OverflowError("Python int too large to convert to C long")
        return self.observe_c(e, arrival)

    cdef double observe_c(self, int64_t e, double arrival) except? -1.0:
        """``observe`` for a C timestamp (the jitter buffer's packet)."""
        cdef double r, d, spread, x
        cdef Py_ssize_t last, k, top, i
        r = arrival - <double>e / self.rate
        if self.count and fabs(r - self.ring[2 * self.head + 1]) > 2 * self.max_delay + 1.0:
            self.head = 0
            self.count = 0
            self.has_prev = False
        while self.count:
            last = self._at(self.count - 1)
            if not (self.ring[2 * last + 1] >= r):
                break
            self.count -= 1
        if self.count == 0:
            self._push(arrival, r)
        else:
            last = self._at(self.count - 1)
            if r < self.ring[2 * last + 1] or arrival - self.ring[2 * last] >= self.coalesce:
                self._push(arrival, r)
        while self.count and self.ring[2 * self.head] < arrival - self.window:  # keeps the newest (see __init__)
            self.head = (self.head + 1) % self.cap
            self.count -= 1
        if self.has_prev:
            d = fabs(r - self.prev)
            if d < 1.0:
                self.jitter_ += (d - self.jitter_) / 16.0
        self.prev = r
        self.has_prev = True
        spread = r - self.ring[2 * self.head + 1]
        if self.has_peak_time and arrival > self.peak_time:
            self.peak_ *= exp(-(arrival - self.peak_time) / self.release)
        self.peak_time = arrival
        self.has_peak_time = True
        if spread > self.peak_:
            self.peak_ = self.max_delay if self.max_delay < spread else spread
        if self.bins:
            x = spread * 1000.0
            if isnan(x):
                raise ValueError("cannot convert float NaN to integer")
            if not isfinite(x):
                raise OverflowError("cannot convert float infinity to integer")
            top = self.bins - 1
            if x >= <double>top:
                k = top
            elif x < 1.0:  # int() truncates towards zero: (-1, 1) is bin 0, and below it clamps to 0 too
                k = 0
            else:
                k = <Py_ssize_t>x
            self.hist[k] = <float>(<double>self.hist[k] + self.add)
            self.q_new += 1
            self.add /= 1.0 - self.forget
            if self.add > C_HIST_RESCALE:
                for i in range(self.bins):
                    self.hist[i] = <float>(<double>self.hist[i] / self.add)
                self.add = 1.0
        return spread

    def spread_quantile(self) -> float:
        """The histogram's ``quantile`` (the top of the 1 ms bin where the running sum reaches that share of the
        total; 0.0 with no histogram or nothing in it), seconds; recomputed at most every ``quantile_every``
        packets."""
        return self.spread_quantile_c()

    cdef double spread_quantile_c(self) noexcept:
        cdef double total = 0.0, target, run = 0.0
        cdef Py_ssize_t i
        if self.q_new >= self.every:
            self.q_new = 0
            for i in range(self.bins):
                total += <double>self.hist[i]
            if total <= 0.0:
                self.q_value = 0.0
            else:
                target = self.quantile * total * (1.0 - 1e-12)
                i = 0
                while i < self.bins:
                    run += <double>self.hist[i]
                    if run >= target:
                        break
                    i += 1
                if i == self.bins:  # the twin's loop leaves i at the last bin
                    i = self.bins - 1
                self.q_value = (i + 1) / 1000.0
        return self.q_value
