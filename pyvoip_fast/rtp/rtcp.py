"""RTCP packets (RFC 3550 §6) and the NTP/RTT helpers: the public entry point.

Strategy
--------
A selector over the compiled ``pyvoip_fast._rtp`` (``ext/rtp.pyx``) and its pure-Python twin
``pyvoip_fast._rtp_py`` (same API, same exceptions and messages). The NTP helpers live in
:mod:`pyvoip_fast.clock` and are re-exported here.

Usage::

    from pyvoip_fast import rtcp

    sr = rtcp.SenderReport(ssrc, rtcp.ntp_from_unix(time.time()), rtp_ts, packets, octets,
                           reports=[stats.report_block(remote_ssrc)])
    wire = rtcp.serialize_compound([sr, rtcp.SourceDescription.cname_for(ssrc, "me@host")])
    # the same datagram in one call, no objects (blocks may also be 7-tuples; reason=... appends a BYE)
    wire = rtcp.build_report(ssrc, [stats.report_block(remote_ssrc)], "me@host",
                             ntp_timestamp=rtcp.ntp_from_unix(time.time()), rtp_timestamp=rtp_ts,
                             packet_count=packets, octet_count=octets)
    for pkt in rtcp.parse(wire):          # RtcpParseError (a ValueError) on an invalid compound packet
        ...
    rtt = rtcp.rtt_seconds(rtcp.ntp_middle32(rtcp.ntp_from_unix(time.time())), block.lsr, block.dlsr)

Packet classes: :class:`SenderReport` (PT 200), :class:`ReceiverReport` (201), :class:`SourceDescription` (202)
with :class:`SdesChunk`, :class:`Bye` (203), :class:`App` (204), and :class:`ReportBlock`. Each has
``serialize()`` and value equality. ``parse(data, reduced_size=False)`` applies the checks of §6.1 / A.2 (first
packet SR or RR unless RFC 5506 reduced-size RTCP is allowed, version 2, padding only in the last packet, lengths
adding up) and skips unknown packet types (RTPFB/PSFB/XR...).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import _compat
from .ntp import NTP_UNIX_OFFSET, dlsr_units, ntp_from_unix, ntp_middle32, ntp_now, rtt_seconds, unix_from_ntp

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ._rtp_py import (
        App,
        Bye,
        ReceiverReport,
        ReportBlock,
        RtcpPacket,
        SdesChunk,
        SenderReport,
        SourceDescription,
        build_report,
        parse_rtcp as parse,
        serialize_compound,
    )
else:
    _impl = _compat.load("_rtp")
    App = _impl.App
    Bye = _impl.Bye
    ReceiverReport = _impl.ReceiverReport
    ReportBlock = _impl.ReportBlock
    RtcpPacket = _impl.RtcpPacket
    SdesChunk = _impl.SdesChunk
    SenderReport = _impl.SenderReport
    SourceDescription = _impl.SourceDescription
    parse = _impl.parse_rtcp
    serialize_compound = _impl.serialize_compound
    build_report = _impl.build_report

#: RTCP packet types (RFC 3550 §12.1)
SR = 200
RR = 201
SDES = 202
BYE = 203
APP = 204

#: SDES item types (RFC 3550 §6.5)
SDES_END = 0
SDES_CNAME = 1
SDES_NAME = 2
SDES_EMAIL = 3
SDES_PHONE = 4
SDES_LOC = 5
SDES_TOOL = 6
SDES_NOTE = 7
SDES_PRIV = 8

__all__ = [
    "parse",
    "serialize_compound",
    "build_report",
    "RtcpPacket",
    "ReportBlock",
    "SenderReport",
    "ReceiverReport",
    "SdesChunk",
    "SourceDescription",
    "Bye",
    "App",
    "ntp_from_unix",
    "unix_from_ntp",
    "ntp_middle32",
    "ntp_now",
    "rtt_seconds",
    "dlsr_units",
    "NTP_UNIX_OFFSET",
    "SR",
    "RR",
    "SDES",
    "BYE",
    "APP",
    "SDES_END",
    "SDES_CNAME",
    "SDES_NAME",
    "SDES_EMAIL",
    "SDES_PHONE",
    "SDES_LOC",
    "SDES_TOOL",
    "SDES_NOTE",
    "SDES_PRIV",
]
