"""RFC 3550 appendix A receiver statistics and the sender's SR counts: the public entry point.

Strategy
--------
A selector over the compiled ``pyvoip_fast._stats`` (``ext/stats.pyx``) and its pure-Python twin
``pyvoip_fast._stats_py`` (same API, same results, same exceptions). The objects are pure: the caller passes the
arrival time from a monotonic clock (``loop.time()``), nothing here reads a clock.

Usage::

    from pyvoip_fast.stats import ReceiverStats, SenderStats, ACCEPTED, DUPLICATE

    rs = ReceiverStats(clock_rate=8000)
    status = rs.update(pkt.sequence_number, pkt.timestamp, loop.time(), len(pkt.payload))
    # ACCEPTED (counted), DUPLICATE (already had it: drop), PROBATION (source not validated yet),
    # BAD (a large sequence jump, dropped), RESTARTED (A.1 resync after two sequential bad packets: counted)
    block = rs.report_block(remote_ssrc, lsr, dlsr)   # A.3 fraction lost since the previous call
    rs.received, rs.expected, rs.cumulative_lost, rs.jitter, rs.jitter_seconds, rs.duplicates, rs.reordered

    ss = SenderStats(); ss.on_sent(len(payload)); ss.packet_count, ss.octet_count

See ``pyvoip_fast/_stats_py.py`` for the exact rules (A.1 probation, duplicate window, jitter samples).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import _compat

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ._stats_py import (
        ACCEPTED,
        BAD,
        DUPLICATE,
        DUPLICATE_WINDOW,
        MAX_DROPOUT,
        MAX_MISORDER,
        MIN_SEQUENTIAL,
        PROBATION,
        RESTARTED,
        RTP_SEQ_MOD,
        ReceiverStats,
        SenderStats,
        TransitStats,
    )
else:
    _impl = _compat.load("_stats")
    ReceiverStats = _impl.ReceiverStats
    SenderStats = _impl.SenderStats
    TransitStats = _impl.TransitStats
    ACCEPTED = _impl.ACCEPTED
    DUPLICATE = _impl.DUPLICATE
    PROBATION = _impl.PROBATION
    BAD = _impl.BAD
    RESTARTED = _impl.RESTARTED
    MIN_SEQUENTIAL = _impl.MIN_SEQUENTIAL
    MAX_DROPOUT = _impl.MAX_DROPOUT
    MAX_MISORDER = _impl.MAX_MISORDER
    RTP_SEQ_MOD = _impl.RTP_SEQ_MOD
    DUPLICATE_WINDOW = _impl.DUPLICATE_WINDOW

#: names of the update() results, for logs
STATUS_NAMES = {ACCEPTED: "ACCEPTED", DUPLICATE: "DUPLICATE", PROBATION: "PROBATION", BAD: "BAD", RESTARTED: "RESTARTED"}

__all__ = [
    "ReceiverStats",
    "SenderStats",
    "TransitStats",
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
    "STATUS_NAMES",
]
