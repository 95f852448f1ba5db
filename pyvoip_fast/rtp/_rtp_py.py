"""Pure-Python twin of the compiled ``pyvoip_fast.rtp._rtp``: RTP and RTCP packets (RTCP in ``_rtcp_py``).

Strategy
--------
Same API, same exception types and the same messages as ``ext/rtp.pyx``; it is the test oracle for the compiled
module and the fallback where no compiler exists. Header fields are packed and unpacked with precompiled
``struct.Struct`` objects; every read of untrusted bytes is preceded by an explicit length check written as
``need > n - pos`` so that nothing is read past the buffer and the error names what ran past the end.

Implements
----------
- RFC 3550 §5.1 RTP fixed header, §5.3.1 header extension (generic form), padding (the last octet counts the
  padding octets, itself included), CSRC list (0-15 entries).
- RFC 8285 §4.2/§4.3 one-byte (profile 0xBEDE) and two-byte (profile 0x100X) header extension elements, parsed on
  request (:meth:`RtpPacket.header_extensions`) and built with :func:`encode_header_extensions`.
- RFC 3550 §6.4.1 SR, §6.4.2 RR (report blocks with the signed 24-bit cumulative loss), §6.5 SDES, §6.6 BYE,
  §6.7 APP, and the compound-packet validity checks of §6.1 / appendix A.2 (version 2, first packet SR or RR unless
  RFC 5506 reduced-size RTCP is allowed, padding only on the last packet, lengths adding up to the datagram).
  Unknown packet types are skipped.
- :func:`build_report`: the §6.1 compound of one report interval (SR/RR, SDES CNAME, optional BYE) in one call,
  byte for byte what the packet classes and :func:`serialize_compound` produce.

Parsed RTP payloads are zero-copy ``memoryview`` slices of the input.
"""

from __future__ import annotations

import logging
import struct
from typing import Any, Iterable, List, Optional, Sequence, Tuple

from ..errors import RtpParseError
from ._rtcp_py import (  # the compiled module holds RTP and RTCP: so does its twin's namespace
    RTCP_APP,
    RTCP_BYE,
    RTCP_RR,
    RTCP_SDES,
    RTCP_SR,
    App,
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    build_report,
    parse_rtcp,
    serialize_compound,
)
from ._wire_py import Buffer, _FIXED, _HH, _U32_MAX, _check_bytes, _check_int, _check_offset, _overlaps, _view, _writable_view

logger = logging.getLogger(__name__)

__all__ = [
    "RtpPacket",
    "write_header",
    "write_packet",
    "build_packet",
    "encode_header_extensions",
    "RtcpPacket",
    "ReportBlock",
    "SenderReport",
    "ReceiverReport",
    "SdesChunk",
    "SourceDescription",
    "Bye",
    "App",
    "parse_rtcp",
    "serialize_compound",
    "build_report",
    "RTCP_SR",
    "RTCP_RR",
    "RTCP_SDES",
    "RTCP_BYE",
    "RTCP_APP",
]

# ---------------------------------------------------------------------------------------------------------------
# RTP


class RtpPacket:
    """One RTP packet (RFC 3550 §5.1). Immutable; build it with keywords or get it from :meth:`parse`.

    Args:
        payload_type: 0..127 (RFC 3551: PCMU 0, PCMA 8).
        sequence_number: 0..65535.
        timestamp: 0..2**32-1, in the payload's clock units.
        ssrc: synchronisation source, 0..2**32-1.
        marker: the M bit (first packet of a talk spurt for audio).
        payload: the payload bytes (any bytes-like object; kept by reference, not copied).
        csrc: up to 15 contributing sources.
        extension_profile: the 16-bit "defined by profile" field of the RFC 3550 §5.3.1 header extension, or
            ``None`` for no extension (0xBEDE / 0x100X for RFC 8285 elements).
        extension_data: the extension body; its length must be a multiple of 4.
        padding_length: 0 for no padding, else the number of padding octets (1..255, count octet included).

    Raises:
        TypeError: a field of the wrong type.
        ValueError: a field out of range.

    Fields read back as attributes; ``version`` is always 2, ``padding`` and ``extension`` are derived.
    A parsed packet's ``payload`` is a zero-copy ``memoryview`` into the parsed buffer.
    """

    __slots__ = (
        "_payload_type",
        "_sequence_number",
        "_timestamp",
        "_ssrc",
        "_marker",
        "_payload",
        "_csrc",
        "_extension_profile",
        "_extension_data",
        "_padding_length",
    )

    def __init__(
        self,
        *,
        payload_type: int = 0,
        sequence_number: int = 0,
        timestamp: int = 0,
        ssrc: int = 0,
        marker: bool = False,
        payload: Buffer = b"",
        csrc: Iterable[int] = (),
        extension_profile: Optional[int] = None,
        extension_data: Buffer = b"",
        padding_length: int = 0,
    ) -> None:
        self._payload_type = _check_int(payload_type, "payload_type", 0, 127)
        self._sequence_number = _check_int(sequence_number, "sequence_number", 0, 0xFFFF)
        self._timestamp = _check_int(timestamp, "timestamp", 0, _U32_MAX)
        self._ssrc = _check_int(ssrc, "ssrc", 0, _U32_MAX)
        self._marker = bool(marker)
        if isinstance(payload, bytes):
            self._payload: Buffer = payload
        else:
            self._payload = _view(payload, "payload")
        csrc_t = tuple(csrc)
        if len(csrc_t) > 15:
            raise ValueError(f"an RTP packet carries at most 15 CSRCs, got {len(csrc_t)}")
        for c in csrc_t:
            _check_int(c, "csrc", 0, _U32_MAX)
        self._csrc = csrc_t
        ext_data = _check_bytes(extension_data, "extension_data")
        if extension_profile is None:
            if ext_data:
                raise ValueError("extension_data needs an extension_profile")
        else:
            _check_int(extension_profile, "extension_profile", 0, 0xFFFF)
            if len(ext_data) % 4:
                raise ValueError(f"extension_data length must be a multiple of 4, got {len(ext_data)}")
            if len(ext_data) > 0xFFFF * 4:
                raise ValueError(f"extension_data is too long: {len(ext_data)} bytes (at most 262140)")
        self._extension_profile = extension_profile
        self._extension_data = ext_data
        self._padding_length = _check_int(padding_length, "padding_length", 0, 255)

    # -- parsing --------------------------------------------------------------------------------------------
    @classmethod
    def parse(cls, data: Buffer) -> "RtpPacket":
        """Parse one RTP packet.

        Args:
            data: the datagram (bytes, bytearray, memoryview or any C-contiguous buffer). Not copied: the
                returned packet's ``payload`` is a view into it.

        Returns:
            The packet.

        Raises:
            RtpParseError: short packet, wrong version, CSRC list / extension / padding running past the end.
            TypeError: ``data`` is not a bytes-like object.
        """
        mv = _view(data, "RtpPacket.parse()")
        n = len(mv)
        if n < 12:
            raise RtpParseError(f"RTP packet too short: {n} bytes, the fixed header needs 12")
        b0, b1, seq, ts, ssrc = _FIXED.unpack_from(mv, 0)
        version = b0 >> 6
        if version != 2:
            raise RtpParseError(f"RTP version {version} is not supported (expected 2)")
        cc = b0 & 0x0F
        pos = 12
        if 4 * cc > n - pos:
            raise RtpParseError(
                f"RTP CSRC list runs past the end: {cc} CSRCs need {12 + 4 * cc} bytes, packet has {n}"
            )
        csrc: Tuple[int, ...] = struct.unpack_from("!%dI" % cc, mv, pos) if cc else ()
        pos += 4 * cc
        ext_profile: Optional[int] = None
        ext_data = b""
        if b0 & 0x10:
            if 4 > n - pos:
                raise RtpParseError(
                    f"RTP header extension runs past the end: its header needs {pos + 4} bytes, packet has {n}"
                )
            ext_profile, words = _HH.unpack_from(mv, pos)
            pos += 4
            if 4 * words > n - pos:
                raise RtpParseError(
                    f"RTP header extension runs past the end: {words} words need {pos + 4 * words} bytes, "
                    f"packet has {n}"
                )
            ext_data = bytes(mv[pos : pos + 4 * words])
            pos += 4 * words
        end = n
        pad = 0
        if b0 & 0x20:
            if n == pos:
                raise RtpParseError("RTP padding bit set but no bytes follow the header")
            pad = mv[n - 1]
            if pad == 0:
                raise RtpParseError("RTP padding length is 0 (must be at least 1)")
            if pad > n - pos:
                raise RtpParseError(
                    f"RTP padding length {pad} runs past the end: only {n - pos} bytes follow the header"
                )
            end = n - pad
        self = cls.__new__(cls)
        self._payload_type = b1 & 0x7F
        self._sequence_number = seq
        self._timestamp = ts
        self._ssrc = ssrc
        self._marker = bool(b1 & 0x80)
        self._payload = mv[pos:end]
        self._csrc = csrc
        self._extension_profile = ext_profile
        self._extension_data = ext_data
        self._padding_length = pad
        return self

    # -- fields ---------------------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Always 2."""
        return 2

    @property
    def padding(self) -> bool:
        """The P bit: whether the packet carries padding."""
        return self._padding_length > 0

    @property
    def extension(self) -> bool:
        """The X bit: whether the packet carries a header extension."""
        return self._extension_profile is not None

    @property
    def marker(self) -> bool:
        """The M bit."""
        return self._marker

    @property
    def payload_type(self) -> int:
        """Payload type, 0..127."""
        return self._payload_type

    @property
    def sequence_number(self) -> int:
        """Sequence number, 0..65535."""
        return self._sequence_number

    @property
    def timestamp(self) -> int:
        """RTP timestamp, 0..2**32-1."""
        return self._timestamp

    @property
    def ssrc(self) -> int:
        """Synchronisation source identifier."""
        return self._ssrc

    @property
    def csrc(self) -> Tuple[int, ...]:
        """Contributing sources (0-15)."""
        return self._csrc

    @property
    def payload(self) -> Buffer:
        """The payload; a zero-copy memoryview for a parsed packet."""
        return self._payload

    @property
    def extension_profile(self) -> Optional[int]:
        """The extension's 16-bit profile field, or None without an extension."""
        return self._extension_profile

    @property
    def extension_data(self) -> bytes:
        """The extension body (a multiple of 4 bytes), ``b""`` without an extension."""
        return self._extension_data

    @property
    def padding_length(self) -> int:
        """Padding octets at the end, count octet included (0 = no padding)."""
        return self._padding_length

    # -- building -------------------------------------------------------------------------------------------
    def _wire_size(self) -> int:
        size = 12 + 4 * len(self._csrc) + len(self._payload) + self._padding_length
        if self._extension_profile is not None:
            size += 4 + len(self._extension_data)
        return size

    def _first_bytes(self) -> Tuple[int, int]:
        b0 = 0x80 | len(self._csrc)
        if self._padding_length:
            b0 |= 0x20
        if self._extension_profile is not None:
            b0 |= 0x10
        return b0, self._payload_type | (0x80 if self._marker else 0)

    def serialize(self) -> bytes:
        """The packet on the wire.

        Returns:
            A new ``bytes`` object.
        """
        b0, b1 = self._first_bytes()
        parts = [_FIXED.pack(b0, b1, self._sequence_number, self._timestamp, self._ssrc)]
        if self._csrc:
            parts.append(struct.pack("!%dI" % len(self._csrc), *self._csrc))
        if self._extension_profile is not None:
            parts.append(_HH.pack(self._extension_profile, len(self._extension_data) // 4))
            parts.append(self._extension_data)
        parts.append(bytes(self._payload))
        if self._padding_length:
            parts.append(bytes(self._padding_length - 1) + bytes((self._padding_length,)))
        return b"".join(parts)

    def pack_into(self, buffer: Any, offset: int = 0) -> int:
        """Write the packet into a caller's buffer (a sender can reuse one buffer for a whole call).

        Args:
            buffer: a writable bytes-like object (bytearray, writable memoryview, numpy uint8 array...).
            offset: where to start writing.

        Returns:
            The number of bytes written.

        Raises:
            ValueError: the buffer is too small or the offset is negative.
            TypeError: the buffer is not writable.
        """
        mv = _writable_view(buffer, "pack_into()")
        size = self._wire_size()
        pos = _check_offset(offset, size, len(mv))
        mv[pos : pos + size] = self.serialize()
        return size

    def header_extensions(self) -> List[Tuple[int, bytes]]:
        """The RFC 8285 header extension elements, parsed on request.

        Returns:
            ``[(id, data), ...]`` for a one-byte (profile 0xBEDE) or two-byte (profile 0x100X) extension, in wire
            order, padding skipped; ``[]`` without an extension or for another profile. A one-byte element with
            id 15 stops the parse (RFC 8285 §4.2).

        Raises:
            RtpParseError: an element runs past the end of the extension.
        """
        return _decode_header_extensions(self._extension_profile, self._extension_data)

    # -- value semantics ------------------------------------------------------------------------------------
    def _key(self) -> Tuple[Any, ...]:
        return (
            self._payload_type,
            self._sequence_number,
            self._timestamp,
            self._ssrc,
            self._marker,
            bytes(self._payload),
            self._csrc,
            self._extension_profile,
            self._extension_data,
            self._padding_length,
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return self._wire_size()

    def __repr__(self) -> str:
        extra = ""
        if self._csrc:
            extra += f", csrc={self._csrc!r}"
        if self._extension_profile is not None:
            extra += f", extension_profile={self._extension_profile:#06x}, extension_data={self._extension_data!r}"
        if self._padding_length:
            extra += f", padding_length={self._padding_length}"
        return (
            f"RtpPacket(payload_type={self._payload_type}, sequence_number={self._sequence_number}, "
            f"timestamp={self._timestamp}, ssrc={self._ssrc:#010x}, marker={self._marker}{extra}, "
            f"payload=<{len(self._payload)} bytes>)"
        )


def _decode_header_extensions(profile: Optional[int], data: bytes) -> List[Tuple[int, bytes]]:
    out: List[Tuple[int, bytes]] = []
    if profile is None:
        return out
    n = len(data)
    pos = 0
    if profile == 0xBEDE:
        while pos < n:
            b = data[pos]
            if b == 0:
                pos += 1
                continue
            ident = b >> 4
            if ident == 15:
                break
            length = (b & 0x0F) + 1
            pos += 1
            if length > n - pos:
                raise RtpParseError(f"RTP one-byte header extension element {ident} runs past the end")
            out.append((ident, data[pos : pos + length]))
            pos += length
    elif (profile & 0xFFF0) == 0x1000:
        while pos < n:
            ident = data[pos]
            if ident == 0:
                pos += 1
                continue
            if 2 > n - pos:
                raise RtpParseError(f"RTP two-byte header extension element {ident} runs past the end")
            length = data[pos + 1]
            pos += 2
            if length > n - pos:
                raise RtpParseError(f"RTP two-byte header extension element {ident} runs past the end")
            out.append((ident, data[pos : pos + length]))
            pos += length
    return out


def encode_header_extensions(elements: Sequence[Tuple[int, bytes]], two_byte: bool = False) -> Tuple[int, bytes]:
    """Build an RFC 8285 header extension body.

    Args:
        elements: ``[(id, data), ...]``. One-byte form: id 1..14, data 1..16 bytes. Two-byte form: id 1..255,
            data 0..255 bytes.
        two_byte: force the two-byte form (it is chosen anyway when an element does not fit the one-byte form).

    Returns:
        ``(extension_profile, extension_data)`` ready for :class:`RtpPacket` (data zero-padded to 32 bits).

    Raises:
        ValueError: an id or a length no form can carry.
    """
    items = [(_check_int(i, "extension id", 1, 255), _check_bytes(d, "extension data")) for i, d in elements]
    if not two_byte:
        two_byte = any(i > 14 or not 1 <= len(d) <= 16 for i, d in items)
    out = bytearray()
    if two_byte:
        for i, d in items:
            if len(d) > 255:
                raise ValueError(f"two-byte header extension element {i} is too long: {len(d)} bytes (max 255)")
            out += bytes((i, len(d))) + d
        profile = 0x1000
    else:
        for i, d in items:
            out.append((i << 4) | (len(d) - 1))
            out += d
        profile = 0xBEDE
    out += bytes(-len(out) % 4)
    return profile, bytes(out)


def write_header(
    buffer: Any,
    offset: int,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    marker: bool = False,
) -> int:
    """Write a 12-byte RTP fixed header (no CSRC, extension or padding) into a caller's buffer.

    Args:
        buffer: a writable bytes-like object.
        offset: where the header starts.
        payload_type: 0..127.
        sequence_number: 0..65535.
        timestamp: 0..2**32-1.
        ssrc: 0..2**32-1.
        marker: the M bit.

    Returns:
        12, the number of bytes written.

    Raises:
        ValueError: a field out of range, the buffer too small or the offset negative.
        TypeError: the buffer is not writable or a field is not an int.
    """
    mv = _writable_view(buffer, "write_header()")
    _check_int(payload_type, "payload_type", 0, 127)
    _check_int(sequence_number, "sequence_number", 0, 0xFFFF)
    _check_int(timestamp, "timestamp", 0, _U32_MAX)
    _check_int(ssrc, "ssrc", 0, _U32_MAX)
    pos = _check_offset(offset, 12, len(mv))
    _FIXED.pack_into(mv, pos, 0x80, payload_type | (0x80 if marker else 0), sequence_number, timestamp, ssrc)
    return 12


def write_packet(
    buffer: Any,
    offset: int,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    payload: Buffer,
    marker: bool = False,
) -> int:
    """Write a whole plain RTP packet (12-byte header + payload) into a caller's buffer.

    Args:
        buffer: a writable bytes-like object.
        offset: where the packet starts.
        payload_type: 0..127.
        sequence_number: 0..65535.
        timestamp: 0..2**32-1.
        ssrc: 0..2**32-1.
        payload: the payload (any bytes-like object).
        marker: the M bit.

    Returns:
        The number of bytes written (12 + payload length).

    Raises:
        ValueError: a field out of range, the buffer too small or the offset negative.
        TypeError: the buffer is not writable, the payload not bytes-like or a field not an int.
    """
    mv = _writable_view(buffer, "write_packet()")
    _check_int(payload_type, "payload_type", 0, 127)
    _check_int(sequence_number, "sequence_number", 0, 0xFFFF)
    _check_int(timestamp, "timestamp", 0, _U32_MAX)
    _check_int(ssrc, "ssrc", 0, _U32_MAX)
    pl = payload if type(payload) is bytes else _view(payload, "payload")
    size = 12 + len(pl)
    pos = _check_offset(offset, size, len(mv))
    if type(pl) is not bytes and _overlaps(pl, mv[pos : pos + size]):
        pl = bytes(pl)  # the payload as it was before the header is written over it (as the compiled module)
    _FIXED.pack_into(mv, pos, 0x80, payload_type | (0x80 if marker else 0), sequence_number, timestamp, ssrc)
    mv[pos + 12 : pos + size] = pl
    return size


def build_packet(
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    payload: Buffer,
    marker: bool = False,
) -> bytes:
    """Build a plain RTP packet (12-byte header + payload) as new bytes: the sender's fast path.

    Args:
        payload_type: 0..127.
        sequence_number: 0..65535.
        timestamp: 0..2**32-1.
        ssrc: 0..2**32-1.
        payload: the payload (any bytes-like object).
        marker: the M bit.

    Returns:
        The packet.

    Raises:
        ValueError: a field out of range.
        TypeError: the payload is not bytes-like or a field is not an int.
    """
    _check_int(payload_type, "payload_type", 0, 127)
    _check_int(sequence_number, "sequence_number", 0, 0xFFFF)
    _check_int(timestamp, "timestamp", 0, _U32_MAX)
    _check_int(ssrc, "ssrc", 0, _U32_MAX)
    pl = payload if type(payload) is bytes else _view(payload, "payload").tobytes()
    return _FIXED.pack(0x80, payload_type | (0x80 if marker else 0), sequence_number, timestamp, ssrc) + pl
