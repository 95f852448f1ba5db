"""Pure-Python twin of the compiled ``pyvoip_fast._stats``: RFC 3550 receiver and sender statistics.

Strategy
--------
One object per received source, updated once per packet with numbers only (sequence number, RTP timestamp,
arrival time on a monotonic clock, payload size); no packets, no clocks inside. Same API, same results and the
same exceptions as ``ext/stats.pyx``, which the tests check packet by packet.

Implements
----------
- RFC 3550 appendix A.1: source validation with probation (MIN_SEQUENTIAL = 2), MAX_DROPOUT = 3000,
  MAX_MISORDER = 100, sequence-number cycles, and the resynchronisation after two sequential "bad" packets.
  As in A.1, the first packet of a new source is on probation and not counted, the packet that validates the
  source is the first one counted, and ``base_seq`` is its sequence number.
- Appendix A.3: expected / lost / fraction lost over the interval since the previous report (the cumulative loss
  clamped to the signed 24-bit field when a report block is made).
- Appendix A.8: interarrival jitter, ``J += (|D| - J) / 16`` with ``D`` computed from the arrival times converted
  to timestamp units and the signed 32-bit timestamp difference, so timestamp wrap-around is harmless. Kept as a
  float; report blocks carry ``floor(J)``. Samples come from packets counted as received, against the previous
  non-duplicate packet; a resynchronisation (RESTARTED) starts a new baseline.
- Duplicates: a ring of the last 128 extended sequence numbers received (128 > MAX_MISORDER) recognises a
  packet already counted. Deviation from A.1, on purpose: a recognised duplicate is *not* counted in
  ``received`` (A.1 counts it, which can make the loss negative); it is counted in ``duplicates`` and returned as
  DUPLICATE so the caller can drop it, and it does not feed the jitter. Duplicates older than the ring are counted
  as A.1 does. Packets arriving behind the highest sequence number (by less than MAX_MISORDER) that are not duplicates
  are counted in ``reordered``.
"""

from __future__ import annotations

import logging
import math
from array import array
from collections import deque
from operator import index as _index
from typing import TYPE_CHECKING, List, Optional, Tuple

from .. import _compat
from ..codecs._plc_py import _real

# the report-block class of whichever RTP/RTCP implementation is loaded, so that a twin-built block is accepted by
# a compiled SenderReport (and vice versa never arises)
ReportBlock = _compat.load("_rtp").ReportBlock

if TYPE_CHECKING:
    from ._rtp_py import ReportBlock as _ReportBlockType

logger = logging.getLogger(__name__)

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

#: the packet was counted (in order, or reordered within MAX_MISORDER)
ACCEPTED = 0
#: the packet was already received (recognised within the last DUPLICATE_WINDOW sequence numbers); not counted
DUPLICATE = 1
#: the source is not validated yet (A.1 probation); not counted
PROBATION = 2
#: a large jump in sequence numbers (A.1 "bad"); dropped, not counted
BAD = 3
#: the second of two sequential "bad" packets: statistics restarted from this packet (A.1), which is counted
RESTARTED = 4

MIN_SEQUENTIAL = 2
MAX_DROPOUT = 3000
MAX_MISORDER = 100
RTP_SEQ_MOD = 1 << 16
DUPLICATE_WINDOW = 128

_RING_MASK = DUPLICATE_WINDOW - 1
#: TransitStats rescales its histogram when a packet's weight passes this (single precision tops at 3.4e38)
_HIST_RESCALE = 1e20
#: TransitStats' limits: an RTP clock rate fits 31 bits; a histogram of a million 1 ms bins covers 17 minutes
_MAX_RATE = 0x7FFFFFFF
_MAX_BINS = 1 << 20
_EMPTY = -(1 << 62)


class ReceiverStats:
    """Reception statistics of one RTP source (RFC 3550 appendix A.1, A.3, A.8).

    Args:
        clock_rate: the RTP timestamp clock rate in Hz (8000 for G.711).

    Raises:
        ValueError: a clock rate that is not positive.
    """

    __slots__ = (
        "_clock_rate",
        "_started",
        "_probation",
        "_max_seq",
        "_cycles",
        "_base_seq",
        "_bad_seq",
        "_received",
        "_received_prior",
        "_expected_prior",
        "_jitter",
        "_have_transit",
        "_last_arrival",
        "_last_ts",
        "_duplicates",
        "_reordered",
        "_octets",
        "_ring",
    )

    def __init__(self, clock_rate: int = 8000) -> None:
        rate = _index(clock_rate)
        if rate <= 0 or rate > 0x7FFFFFFF:
            raise ValueError(f"clock_rate must be in 1..2147483647, got {rate}")
        self._clock_rate = rate
        self._ring: List[int] = [_EMPTY] * DUPLICATE_WINDOW
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next packet is the first of a new source (on probation)."""
        self._started = False
        self._probation = 0
        self._max_seq = 0
        self._cycles = 0
        self._base_seq = 0
        self._bad_seq = RTP_SEQ_MOD + 1
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
        self._ring[:] = [_EMPTY] * DUPLICATE_WINDOW

    def _init_seq(self, seq: int) -> None:
        self._base_seq = seq
        self._max_seq = seq
        self._bad_seq = RTP_SEQ_MOD + 1
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._ring[:] = [_EMPTY] * DUPLICATE_WINDOW

    def update(self, sequence_number: int, rtp_timestamp: int, arrival_seconds: float, payload_octets: int) -> int:
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
        arrival = _real(arrival_seconds)
        seq = _index(sequence_number)
        ts = _index(rtp_timestamp)
        octets = _index(payload_octets)
        if seq < 0 or seq > 0xFFFF:
            raise ValueError(f"sequence_number must be in 0..65535, got {seq}")
        if ts < 0 or ts > 0xFFFFFFFF:
            raise ValueError(f"rtp_timestamp must be in 0..4294967295, got {ts}")
        if octets < 0 or octets > 0xFFFF:
            raise ValueError(f"payload_octets must be in 0..65535, got {octets}")
        if not math.isfinite(arrival):
            raise ValueError(f"arrival_seconds must be a finite number of seconds, got {arrival}")

        if not self._started:
            self._started = True
            self._init_seq(seq)
            self._max_seq = (seq - 1) & 0xFFFF
            self._probation = MIN_SEQUENTIAL

        if self._probation:
            if seq == ((self._max_seq + 1) & 0xFFFF):
                self._probation -= 1
                self._max_seq = seq
                if self._probation == 0:
                    self._init_seq(seq)
                    # the previous probation packet was received (not counted): a copy of it is a duplicate
                    self._ring[(seq - 1) & _RING_MASK] = seq - 1
                    return self._count(seq, ts, arrival, octets, ACCEPTED)
            else:
                self._probation = MIN_SEQUENTIAL - 1
                self._max_seq = seq
            self._have_transit = True
            self._last_arrival = arrival
            self._last_ts = ts
            return PROBATION

        udelta = (seq - self._max_seq) & 0xFFFF
        if udelta < MAX_DROPOUT:
            ext = self._cycles + seq if seq >= self._max_seq else self._cycles + RTP_SEQ_MOD + seq
            if self._ring[ext & _RING_MASK] == ext:
                self._duplicates += 1
                return DUPLICATE
            if seq < self._max_seq:
                self._cycles += RTP_SEQ_MOD
            self._max_seq = seq
            return self._count(ext, ts, arrival, octets, ACCEPTED)
        if udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq == self._bad_seq:
                self._init_seq(seq)
                self._have_transit = False
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("RTP source restarted at sequence number %d", seq)
                return self._count(seq, ts, arrival, octets, RESTARTED)
            self._bad_seq = (seq + 1) & 0xFFFF
            return BAD
        # behind the highest sequence number by less than MAX_MISORDER: a duplicate or a reordered packet
        ext = self._cycles + self._max_seq - (RTP_SEQ_MOD - udelta)
        if self._ring[ext & _RING_MASK] == ext:
            self._duplicates += 1
            return DUPLICATE
        self._reordered += 1
        return self._count(ext, ts, arrival, octets, ACCEPTED)

    def _count(self, ext: int, ts: int, arrival: float, octets: int, status: int) -> int:
        """Count a packet with extended sequence number ``ext`` and feed the jitter estimate."""
        self._ring[ext & _RING_MASK] = ext
        self._received += 1
        self._octets += octets
        if self._have_transit and status == ACCEPTED:
            d = (arrival - self._last_arrival) * self._clock_rate
            dts = (ts - self._last_ts) & 0xFFFFFFFF
            d -= dts - 0x100000000 if dts & 0x80000000 else dts
            if d < 0.0:
                d = -d
            d = self._jitter + (d - self._jitter) * 0.0625
            if math.isfinite(d):  # arrival times far apart enough to overflow a double leave the estimate as it was
                self._jitter = d
        self._have_transit = True
        self._last_arrival = arrival
        self._last_ts = ts
        return status

    def report_block(self, ssrc_of_source: int, lsr: int = 0, dlsr: int = 0) -> "_ReportBlockType":
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
        expected = self.expected
        lost = expected - self._received
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
        jitter = int(self._jitter)
        if jitter > 0xFFFFFFFF:
            jitter = 0xFFFFFFFF
        block: "_ReportBlockType" = ReportBlock(
            ssrc_of_source, fraction, lost, (self._cycles + self._max_seq) & 0xFFFFFFFF, jitter, lsr, dlsr
        )
        return block

    # -- read-only state ------------------------------------------------------------------------------------
    @property
    def clock_rate(self) -> int:
        """The RTP clock rate in Hz."""
        return self._clock_rate

    @property
    def valid(self) -> bool:
        """Whether the source has passed probation (A.1)."""
        return self._started and self._probation == 0

    @property
    def received(self) -> int:
        """Packets counted since validation (or the last restart); recognised duplicates excluded."""
        return self._received

    @property
    def expected(self) -> int:
        """Packets expected: ``extended_max_seq - base_seq + 1`` (0 before validation)."""
        if not self._started or self._probation:
            return 0
        return self._cycles + self._max_seq - self._base_seq + 1

    @property
    def cumulative_lost(self) -> int:
        """``expected - received``, not clamped (negative when unrecognised duplicates were counted)."""
        return self.expected - self._received

    @property
    def extended_max_seq(self) -> int:
        """Highest sequence number received, with the wrap-around cycles in the upper bits."""
        return self._cycles + self._max_seq

    @property
    def base_seq(self) -> int:
        """The first counted sequence number (A.1)."""
        return self._base_seq

    @property
    def cycles(self) -> int:
        """Number of sequence-number wrap-arounds (not shifted)."""
        return self._cycles >> 16

    @property
    def jitter(self) -> float:
        """Interarrival jitter estimate in timestamp units (A.8), as a float."""
        return self._jitter

    @property
    def jitter_seconds(self) -> float:
        """Interarrival jitter in seconds."""
        return self._jitter / self._clock_rate

    @property
    def duplicates(self) -> int:
        """Packets recognised as duplicates (not counted in ``received``)."""
        return self._duplicates

    @property
    def reordered(self) -> int:
        """Packets counted that arrived behind the highest sequence number received."""
        return self._reordered

    @property
    def octets_received(self) -> int:
        """Payload octets of the packets counted in ``received`` (kept across restarts)."""
        return self._octets

    def __repr__(self) -> str:
        return (
            f"ReceiverStats(clock_rate={self._clock_rate}, valid={self.valid}, received={self._received}, "
            f"expected={self.expected}, lost={self.cumulative_lost}, jitter={self._jitter:.2f}, "
            f"duplicates={self._duplicates}, reordered={self._reordered})"
        )


class SenderStats:
    """The sender's packet and payload-octet counts for SRs (RFC 3550 §6.4.1); both wrap at 2**32."""

    __slots__ = ("_packets", "_octets")

    def __init__(self) -> None:
        self._packets = 0
        self._octets = 0

    def on_sent(self, payload_octets: int) -> None:
        """Count one RTP data packet sent with ``payload_octets`` bytes of payload.

        Raises:
            ValueError: a negative size.
        """
        octets = _index(payload_octets)
        if octets < 0:
            raise ValueError(f"payload_octets must be >= 0, got {octets}")
        self._packets = (self._packets + 1) & 0xFFFFFFFF
        self._octets = (self._octets + octets) & 0xFFFFFFFF

    def reset(self) -> None:
        """Zero both counts (RFC 3550: when the sender changes its SSRC)."""
        self._packets = 0
        self._octets = 0

    @property
    def packet_count(self) -> int:
        """Packets sent (mod 2**32)."""
        return self._packets

    @property
    def octet_count(self) -> int:
        """Payload octets sent (mod 2**32)."""
        return self._octets

    def __repr__(self) -> str:
        return f"SenderStats(packet_count={self._packets}, octet_count={self._octets})"



class TransitStats:
    """Transit-time statistics of one received stream, for an adaptive jitter buffer (one call per packet).

    A packet's transit is ``r = arrival - ets / clock_rate`` (seconds; only its changes mean anything). Kept:

    - the minimum transit over the last ``window`` seconds (a monotonic deque of ``(arrival, r)``, coalesced: a
      packet no faster than the newest entry from less than ``coalesce`` ago adds nothing, so a slow sender clock
      keeps about ``window / coalesce`` entries, not one per packet); a transit that jumps by more than
      ``2 * max_delay + 1`` s from the minimum (a clock or timestamp step) restarts the window;
    - the RFC 3550-style smoothed jitter ``J += (|D| - J) / 16`` of consecutive transits, in seconds (a step of a
      second or more is a discontinuity, not jitter);
    - the peak spread (transit above the minimum): instant attack, exponential release with ``release_time``,
      capped at ``max_delay``;
    - with ``bins`` > 0, a histogram of the spreads in 1 ms bins (the last bin takes everything above), forgotten
      exponentially (each packet weighs ``1 / (1 - forget)`` times the one before; all is rescaled past 1e20),
      stored in single precision and updated in double; ``spread_quantile()`` is its ``quantile``, recomputed at
      most every ``quantile_every`` packets.

    ``clear_window()`` forgets the window and the previous transit (a new stream); the jitter, the peak and the
    histogram describe the network and survive it.

    Raises:
        ValueError: ``clock_rate`` outside 1..2**31 - 1, ``bins`` outside 0..2**20, ``quantile_every`` outside
            1..2**20, a non-positive ``release_time``, ``coalesce`` outside ``[0, window]`` (the window would empty itself); from ``observe``, a NaN arrival
            when there is a histogram (as ``int(nan)``).
        OverflowError: from ``observe``, an infinite spread when there is a histogram; an ``ets`` beyond 64 bits.
    """

    def __init__(self, clock_rate: int, *, max_delay: float, window: float, coalesce: float, release_time: float,
                 peak: float = 0.0, bins: int = 0, forget: float = 0.0, quantile: float = 1.0,
                 quantile_every: int = 1) -> None:
        clock_rate = _index(clock_rate)
        bins = _index(bins)
        quantile_every = _index(quantile_every)
        if not 0 < clock_rate <= _MAX_RATE:
            raise ValueError(f"clock_rate must be in 1..{_MAX_RATE}, got {clock_rate}")
        if not 0 <= bins <= _MAX_BINS:
            raise ValueError(f"bins must be in 0..{_MAX_BINS}, got {bins}")
        if not 0 < quantile_every <= _MAX_BINS:
            raise ValueError(f"quantile_every must be in 1..{_MAX_BINS}, got {quantile_every}")
        if not 0.0 <= _real(coalesce) <= _real(window):
            raise ValueError(f"need 0 <= coalesce <= window, got {coalesce!r} and {window!r}")
        if not _real(release_time) > 0.0:
            raise ValueError(f"release_time must be positive, got {release_time!r}")
        if not 0.0 <= _real(forget) < 1.0:  # each packet weighs 1 / (1 - forget) times the one before
            raise ValueError(f"forget must be in [0, 1), got {forget!r}")
        self._rate = clock_rate
        self._max_delay = _real(max_delay)
        self._window = _real(window)
        self._coalesce = _real(coalesce)
        self._release = _real(release_time)
        self._peak = _real(peak)
        self._peak_time = 0.0
        self._has_peak_time = False
        self._forget = _real(forget)
        self._quantile = _real(quantile)
        self._every = quantile_every
        self._q: "deque[tuple[float, float]]" = deque()
        self._prev = 0.0
        self._has_prev = False
        self._jitter = 0.0
        self._hist = array("f", bytes(4 * bins))
        self._add = 1.0
        self._q_value = 0.0
        self._q_new = quantile_every  # packets since the quantile was computed (compute at the first look)

    @property
    def jitter(self) -> float:
        """The smoothed transit jitter, seconds."""
        return self._jitter

    @property
    def peak(self) -> float:
        """The peak spread (decayed to the last packet), seconds."""
        return self._peak

    @property
    def entries(self) -> int:
        """Entries in the minimum's window."""
        return len(self._q)

    @property
    def oldest(self) -> Optional[Tuple[float, float]]:
        """The window's oldest entry ``(arrival, transit)``: its transit is the minimum; None when empty."""
        return self._q[0] if self._q else None

    @property
    def min_transit(self) -> Optional[float]:
        """The minimum transit of the window, seconds; None when empty."""
        return self._q[0][1] if self._q else None

    def clear_window(self) -> None:
        """Forget the window and the previous transit (keep the jitter, the peak and the histogram)."""
        self._q.clear()
        self._has_prev = False

    def observe(self, ets: int, arrival: float) -> float:
        """One packet of extended RTP timestamp ``ets`` that arrived at ``arrival`` (seconds); its spread above the
        window's minimum transit, seconds."""
        ets = _index(ets)
        if not -(1 << 63) <= ets < (1 << 63):
            raise OverflowError("Python int too large to convert to C long")
        arrival = _real(arrival)
        r = arrival - float(ets) / self._rate
        q = self._q
        if q and abs(r - q[0][1]) > 2 * self._max_delay + 1.0:
            q.clear()
            self._has_prev = False
        while q and q[-1][1] >= r:
            q.pop()
        if not q or r < q[-1][1] or arrival - q[-1][0] >= self._coalesce:
            q.append((arrival, r))
        while q[0][0] < arrival - self._window:
            q.popleft()
        if self._has_prev:
            d = abs(r - self._prev)
            if d < 1.0:
                self._jitter += (d - self._jitter) / 16.0
        self._prev = r
        self._has_prev = True
        spread = r - q[0][1]
        if self._has_peak_time and arrival > self._peak_time:
            self._peak *= math.exp(-(arrival - self._peak_time) / self._release)
        self._peak_time = arrival
        self._has_peak_time = True
        if spread > self._peak:
            self._peak = self._max_delay if self._max_delay < spread else spread
        hist = self._hist
        if hist:
            k = int(spread * 1000.0)
            top = len(hist) - 1
            hist[top if k > top else (0 if k < 0 else k)] += self._add
            self._q_new += 1
            self._add /= 1.0 - self._forget
            if self._add > _HIST_RESCALE:
                for i in range(len(hist)):
                    hist[i] /= self._add
                self._add = 1.0
        return spread

    def spread_quantile(self) -> float:
        """The histogram's ``quantile``: the top of the 1 ms bin where the running sum reaches that share of the
        total (0.0 with no histogram or nothing in it), seconds; recomputed at most every ``quantile_every``
        packets."""
        if self._q_new >= self._every:
            self._q_new = 0
            total = 0.0
            for h in self._hist:
                total += h
            if total <= 0.0:
                self._q_value = 0.0
            else:
                target = self._quantile * total * (1.0 - 1e-12)
                run = 0.0
                i = 0
                for i, h in enumerate(self._hist):
                    run += h
                    if run >= target:
                        break
                self._q_value = (i + 1) / 1000.0
        return self._q_value
