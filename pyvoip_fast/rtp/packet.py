"""RTP packets (RFC 3550 §5, profile RFC 3551): the public entry point.

Strategy
--------
A selector: the names below come from the compiled ``pyvoip_fast._rtp`` (``ext/rtp.pyx``) or, when extensions
are switched off or missing, from its pure-Python twin ``pyvoip_fast._rtp_py``. Both have the same API, raise
the same exceptions with the same messages, and are tested against each other.

Usage::

    from pyvoip_fast.rtp import RtpPacket, write_header

    pkt = RtpPacket(payload_type=0, sequence_number=1, timestamp=160, ssrc=0x1234, payload=frame)
    wire = pkt.serialize()                 # or pkt.pack_into(buf, offset) into a reused buffer
    got = RtpPacket.parse(wire)            # RtpParseError (a ValueError) on malformed bytes
    got.payload                            # zero-copy memoryview into ``wire``
    write_header(buf, 0, 0, seq, ts, ssrc) # the 12-byte fixed header alone, for the send loop
    build_packet(0, seq, ts, ssrc, frame)  # header + payload as bytes: the fastest way to build one packet
    write_packet(buf, off, 0, seq, ts, ssrc, frame)  # the same into a reused buffer (batched sends)

``RtpPacket`` (immutable) has the fields ``version`` (2), ``padding``, ``extension``, ``marker``,
``payload_type``, ``sequence_number``, ``timestamp``, ``ssrc``, ``csrc``, ``payload``, ``extension_profile``,
``extension_data`` and ``padding_length``; ``header_extensions()`` parses RFC 8285 one-byte/two-byte elements and
``encode_header_extensions()`` builds them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import _compat

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # mypy reads the twin, which has the same API as the compiled module
    from ._rtp_py import RtpPacket, build_packet, encode_header_extensions, write_header, write_packet
else:
    _impl = _compat.load("_rtp")
    RtpPacket = _impl.RtpPacket
    write_header = _impl.write_header
    write_packet = _impl.write_packet
    build_packet = _impl.build_packet
    encode_header_extensions = _impl.encode_header_extensions

#: RFC 3551 static payload types this package uses
PT_PCMU = 0
PT_PCMA = 8
#: size of the RTP fixed header
HEADER_SIZE = 12

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
