"""RTCP transmission interval: RFC 3550 §6.2, §6.3 and the reference algorithm of appendix A.7.

Strategy: pure functions and one small state holder, no clock and no socket inside. The caller passes the
membership figures and an optional random number source (``rng``: a zero-argument callable returning a float
uniform in [0, 1), e.g. ``random.Random(7).random``), so tests can check the deterministic part exactly and the
randomised part reproducibly.

What the standard says (RFC 3550):

- §6.2: RTCP gets a fixed 5 % of the session bandwidth; a quarter of that goes to the senders when they are at
  most a quarter of the members (so receivers do not drown the senders' reports), the rest to receivers.
- A.7 ``rtcp_interval()``: ``T = avg_rtcp_size * n / rtcp_bw`` where ``n`` is the number of members sharing the
  chosen bandwidth slice; never below ``Tmin`` = 5 s (halved, 2.5 s, before the first report is sent); then
  randomised uniformly over [0.5, 1.5] × T and divided by ``e − 3/2`` to compensate for the timer
  reconsideration algorithm converging below the intended average.
- §6.3.3: the average RTCP packet size is smoothed as ``avg = size/16 + 15·avg/16`` over the sizes of the compound
  packets sent *and* received, counting the lower-layer (UDP + IP) headers.
- §6.2 also allows a "reduced minimum" of ``360 / session-bandwidth-in-kbit/s`` seconds; offered as an option.

For a two-party G.711 call (64 kbit/s payload, both parties sending, members = 2, senders = 2) the bandwidth term
is far below 5 s, so the interval is Tmin randomised: on average ``5 / (e − 1.5) ≈ 4.1 s`` (about 2.05 s for the
first report).
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from typing import Callable, Optional

logger = logging.getLogger(__name__)

__all__ = [
    "RTCP_BANDWIDTH_FRACTION",
    "SENDER_BANDWIDTH_FRACTION",
    "RTCP_MIN_TIME",
    "COMPENSATION",
    "UDP_IPV4_OVERHEAD",
    "UDP_IPV6_OVERHEAD",
    "rtcp_bandwidth",
    "deterministic_interval",
    "rtcp_interval",
    "reduced_minimum",
    "update_avg_rtcp_size",
    "RtcpScheduler",
]

#: fraction of the session bandwidth given to RTCP (§6.2)
RTCP_BANDWIDTH_FRACTION: float = 0.05
#: share of the RTCP bandwidth reserved for senders when they are few (§6.2, A.7)
SENDER_BANDWIDTH_FRACTION: float = 0.25
#: minimum interval between reports in seconds (§6.2); halved before the first report
RTCP_MIN_TIME: float = 5.0
#: e − 3/2: the divisor compensating timer reconsideration (§6.3.1, A.7)
COMPENSATION: float = math.e - 1.5
#: lower-layer header octets counted in the average RTCP size (§6.2): IPv4 20 + UDP 8, IPv6 40 + UDP 8
UDP_IPV4_OVERHEAD: int = 28
UDP_IPV6_OVERHEAD: int = 48

Rng = Callable[[], float]


def rtcp_bandwidth(session_bandwidth_bps: float, fraction: float = RTCP_BANDWIDTH_FRACTION) -> float:
    """RTCP bandwidth in octets per second for a session bandwidth in bits per second (§6.2).

    Args:
        session_bandwidth_bps: the session bandwidth, e.g. 64000 for one G.711 stream's payload.
        fraction: the RTCP share (5 % by default).

    Returns:
        octets per second available to all participants' RTCP together.

    Raises:
        ValueError: a non-positive bandwidth or fraction.
    """
    if not session_bandwidth_bps > 0:
        raise ValueError(f"session bandwidth must be positive, got {session_bandwidth_bps!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"RTCP bandwidth fraction must be in (0, 1], got {fraction!r}")
    return session_bandwidth_bps * fraction / 8.0


def reduced_minimum(session_bandwidth_bps: float) -> float:
    """The optional reduced minimum interval of §6.2: 360 / (session bandwidth in kbit/s) seconds.

    Raises:
        ValueError: a non-positive bandwidth.
    """
    if not session_bandwidth_bps > 0:
        raise ValueError(f"session bandwidth must be positive, got {session_bandwidth_bps!r}")
    return 360.0 / (session_bandwidth_bps / 1000.0)


def deterministic_interval(
    members: int,
    senders: int,
    rtcp_bw: float,
    we_sent: bool,
    avg_rtcp_size: float,
    initial: bool,
    *,
    min_time: float = RTCP_MIN_TIME,
) -> float:
    """The calculated interval Td of A.7 before randomisation and compensation.

    Args:
        members: current estimate of session members, including ourselves (at least 1).
        senders: how many of them sent RTP since our last-but-one report (0..members).
        rtcp_bw: RTCP bandwidth in octets per second (see ``rtcp_bandwidth``).
        we_sent: whether we sent RTP since our last-but-one report.
        avg_rtcp_size: average compound RTCP size in octets, lower-layer headers included.
        initial: True until we have sent our first RTCP packet (halves the minimum).
        min_time: Tmin (5 s in the RFC; a smaller value only for tests or the reduced minimum).

    Returns:
        the deterministic interval in seconds, at least the (possibly halved) minimum.

    Raises:
        ValueError: inconsistent or non-positive arguments.
    """
    if members < 1:
        raise ValueError(f"members must be at least 1, got {members!r}")
    if not 0 <= senders <= members:
        raise ValueError(f"senders must be within 0..members ({members}), got {senders!r}")
    if not rtcp_bw > 0:
        raise ValueError(f"RTCP bandwidth must be positive, got {rtcp_bw!r}")
    if not avg_rtcp_size > 0:
        raise ValueError(f"average RTCP size must be positive, got {avg_rtcp_size!r}")
    if not min_time >= 0:
        raise ValueError(f"minimum interval must not be negative, got {min_time!r}")
    t_min = min_time / 2.0 if initial else min_time
    n = members
    bw = rtcp_bw
    if senders <= members * SENDER_BANDWIDTH_FRACTION:
        if we_sent:
            bw = rtcp_bw * SENDER_BANDWIDTH_FRACTION
            n = senders
        else:
            bw = rtcp_bw * (1.0 - SENDER_BANDWIDTH_FRACTION)
            n = members - senders
    n = max(n, 1)
    t = avg_rtcp_size * n / bw
    return max(t, t_min)


def rtcp_interval(
    members: int,
    senders: int,
    rtcp_bw: float,
    we_sent: bool,
    avg_rtcp_size: float,
    initial: bool,
    *,
    rng: Optional[Rng] = None,
    min_time: float = RTCP_MIN_TIME,
) -> float:
    """The randomised transmission interval of A.7 ``rtcp_interval()``.

    ``deterministic_interval(...) * (0.5 + rng()) / (e − 3/2)``.

    Args:
        members, senders, rtcp_bw, we_sent, avg_rtcp_size, initial, min_time: as for ``deterministic_interval``.
        rng: zero-argument callable returning a float in [0, 1); ``random.random`` when omitted.

    Returns:
        seconds until the next report.

    Raises:
        ValueError: inconsistent arguments, or ``rng`` returning a value outside [0, 1).
    """
    td = deterministic_interval(members, senders, rtcp_bw, we_sent, avg_rtcp_size, initial, min_time=min_time)
    u = (rng or random.random)()
    if not 0.0 <= u < 1.0:
        raise ValueError(f"rng must return a float in [0, 1), got {u!r}")
    return td * (u + 0.5) / COMPENSATION


def update_avg_rtcp_size(avg_rtcp_size: float, packet_size: int, overhead: int = UDP_IPV4_OVERHEAD) -> float:
    """§6.3.3 smoothing: ``avg = (size + overhead)/16 + 15/16 · avg``.

    Args:
        avg_rtcp_size: the current average (octets, headers included).
        packet_size: the compound RTCP packet's length as sent or received (UDP payload octets).
        overhead: lower-layer header octets to add (28 for IPv4, 48 for IPv6).

    Returns:
        the new average.
    """
    return (packet_size + overhead) / 16.0 + avg_rtcp_size * 15.0 / 16.0


@dataclass
class RtcpScheduler:
    """The state a participant keeps for RTCP timing (A.7's ``tp``, ``tn``, ``members``, ``initial``, ...).

    A two-party session keeps ``members = 2``; ``senders`` follows who sent RTP in the last interval. Times are
    seconds on the caller's monotonic clock (``loop.time()``).

    Attributes:
        session_bandwidth_bps: session bandwidth (64 kbit/s for G.711 payload).
        members: session members including us.
        senders: members that sent RTP recently.
        we_sent: we sent RTP since the last report.
        avg_rtcp_size: smoothed compound RTCP size (octets, with UDP/IP headers).
        initial: no report sent yet.
        min_time: Tmin, 5 s per RFC 3550.
        fixed_interval: when set, every interval is exactly this (tests, or a user override).
        rng: the random source for the [0.5, 1.5] factor.
        overhead: lower-layer header size added to packet sizes.
    """

    session_bandwidth_bps: float = 64000.0
    members: int = 2
    senders: int = 1
    we_sent: bool = False
    avg_rtcp_size: float = 100.0
    initial: bool = True
    min_time: float = RTCP_MIN_TIME
    fixed_interval: Optional[float] = None
    rng: Rng = field(default=random.random, repr=False)
    overhead: int = UDP_IPV4_OVERHEAD

    def next_interval(self) -> float:
        """Seconds from now (a report just sent, or the session start) to the next report."""
        if self.fixed_interval is not None:
            return self.fixed_interval
        return rtcp_interval(
            self.members,
            min(self.senders, self.members),
            rtcp_bandwidth(self.session_bandwidth_bps),
            self.we_sent,
            self.avg_rtcp_size,
            self.initial,
            rng=self.rng,
            min_time=self.min_time,
        )

    def on_sent(self, packet_size: int) -> None:
        """Account a compound packet we sent: updates the average size and clears ``initial``."""
        self.avg_rtcp_size = update_avg_rtcp_size(self.avg_rtcp_size, packet_size, self.overhead)
        self.initial = False

    def on_received(self, packet_size: int) -> None:
        """Account a compound packet received from the peer (it counts in the average size too)."""
        self.avg_rtcp_size = update_avg_rtcp_size(self.avg_rtcp_size, packet_size, self.overhead)
