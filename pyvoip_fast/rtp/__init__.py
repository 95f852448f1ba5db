"""RTP: packets on the wire and what RFC 3550 computes from them.

Owns RTP packets (``packet``: the compiled ``_rtp`` and its twin ``_rtp_py``, whose RTCP half is ``_rtcp_py`` and
shared checks ``_wire_py``), RTCP packets (``rtcp``), receiver
and sender statistics of RFC 3550 A.1/A.3/A.8 (``stats``: compiled ``_stats`` and twin ``_stats_py``), the RTCP
transmission interval of §6.3/A.7 (``rtcp_timing``), NTP timestamp conversions (``ntp``) and sequence-number
arithmetic (``seqnum``). Pure computation on bytes and numbers: no sockets, no clocks read here.

May import: ``pyvoip_fast.codecs`` and the bottom layer (``errors``, ``_compat``).

``pyvoip_fast.rtp.RtpPacket``, ``build_packet``, ``write_header``, ``write_packet`` and
``encode_header_extensions`` are the names of :mod:`pyvoip_fast.rtp.packet`, re-exported here.
"""

from __future__ import annotations

from .packet import (
    HEADER_SIZE,
    PT_PCMA,
    PT_PCMU,
    RtpPacket,
    build_packet,
    encode_header_extensions,
    write_header,
    write_packet,
)

__all__ = [
    "RtpPacket",
    "write_header",
    "write_packet",
    "build_packet",
    "encode_header_extensions",
    "PT_PCMU",
    "PT_PCMA",
    "HEADER_SIZE",
]
