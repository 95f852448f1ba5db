"""Pure-Python twin of the RTCP half of the compiled ``pyvoip_fast.rtp._rtp`` (re-exported by ``_rtp_py``).

Same API, same exception types and messages as ``ext/rtp.pyx``: RFC 3550 §6.4.1 SR, §6.4.2 RR (report blocks
with the signed 24-bit cumulative loss), §6.5 SDES, §6.6 BYE, §6.7 APP, the compound-packet validity checks of
§6.1 / appendix A.2 (version 2, first packet SR or RR unless RFC 5506 reduced-size RTCP is allowed, padding
only on the last packet, lengths adding up to the datagram; unknown packet types skipped), and
:func:`build_report`, the §6.1 compound of one report interval in one call, byte for byte what the packet
classes and :func:`serialize_compound` produce. Every read is preceded by a length check written as
``need > n - pos``.
"""

from __future__ import annotations

import logging
import struct
from operator import attrgetter
from typing import Any, Iterable, List, Optional, Tuple, Union

from ..errors import RtcpParseError
from ._wire_py import Buffer, RTCP_APP, RTCP_BYE, RTCP_RR, RTCP_SDES, RTCP_SR, _BLOCK, _RR_HEAD, _RTCP_HDR, _SR_HEAD, _U32, _U32_MAX, _check_bytes, _check_int, _view

logger = logging.getLogger(__name__)

__all__ = [
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
# RTCP


def _ro(name: str, doc: str) -> Any:
    """A read-only property over the slot ``_<name>``."""
    return property(attrgetter("_" + name), doc=doc)


class _Record:
    """Immutable fields, value equality over ``_fields`` and a readable repr (a frozen dataclass, with slots).

    List-valued fields (report blocks, chunks, items, sources) are lists the caller may edit; they are checked
    again when the packet is serialised.
    """

    __slots__ = ()
    _fields: Tuple[str, ...] = ()

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({inner})"

    def _write(self, out: bytearray) -> None:
        """Append the wire form to ``out``; every packet and block class defines it (``_Record`` is only a base)."""
        raise NotImplementedError(f"{type(self).__name__} does not define _write()")

    def serialize(self) -> bytes:
        """The wire form (for a packet class: a valid stand-alone RTCP packet, 32-bit aligned).

        Raises:
            ValueError: a list field grew beyond what the packet can carry (at most 31 entries).
        """
        out = bytearray()
        self._write(out)
        return bytes(out)


class RtcpPacket(_Record):
    """Base of the RTCP packet classes (SR, RR, SDES, BYE, APP); ``packet_type`` is the RTCP PT."""

    __slots__ = ()
    packet_type: int = 0


class ReportBlock(_Record):
    """A reception report block (RFC 3550 §6.4.1).

    Args:
        ssrc: the source this block reports on.
        fraction_lost: 0..255, fixed point lost/expected * 256 over the last interval.
        cumulative_lost: signed 24-bit (-8388608..8388607); negative when duplicates were counted.
        highest_sequence: extended highest sequence number received (cycles << 16 | seq).
        jitter: interarrival jitter in timestamp units.
        lsr: middle 32 bits of the NTP timestamp of the last SR received (0 if none).
        dlsr: delay since that SR, in 1/65536 s (0 if none).
    """

    _fields = ("ssrc", "fraction_lost", "cumulative_lost", "highest_sequence", "jitter", "lsr", "dlsr")
    __slots__ = tuple("_" + f for f in _fields)
    ssrc = _ro("ssrc", "The source reported on.")
    fraction_lost = _ro("fraction_lost", "Fraction lost in the last interval, 0..255 (1/256 units).")
    cumulative_lost = _ro("cumulative_lost", "Cumulative packets lost, signed 24-bit.")
    highest_sequence = _ro("highest_sequence", "Extended highest sequence number received.")
    jitter = _ro("jitter", "Interarrival jitter, timestamp units.")
    lsr = _ro("lsr", "Middle 32 bits of the last SR's NTP timestamp (0 if none).")
    dlsr = _ro("dlsr", "Delay since the last SR, 1/65536 s (0 if none).")

    def __init__(
        self,
        ssrc: int,
        fraction_lost: int,
        cumulative_lost: int,
        highest_sequence: int,
        jitter: int,
        lsr: int,
        dlsr: int,
    ) -> None:
        self._ssrc = _check_int(ssrc, "ssrc", 0, _U32_MAX)
        self._fraction_lost = _check_int(fraction_lost, "fraction_lost", 0, 255)
        self._cumulative_lost = _check_int(cumulative_lost, "cumulative_lost", -0x800000, 0x7FFFFF)
        self._highest_sequence = _check_int(highest_sequence, "highest_sequence", 0, _U32_MAX)
        self._jitter = _check_int(jitter, "jitter", 0, _U32_MAX)
        self._lsr = _check_int(lsr, "lsr", 0, _U32_MAX)
        self._dlsr = _check_int(dlsr, "dlsr", 0, _U32_MAX)

    def _write(self, out: bytearray) -> None:
        out += _BLOCK.pack(
            self.ssrc,
            (self.fraction_lost << 24) | (self.cumulative_lost & 0xFFFFFF),
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )


def _check_blocks(reports: Iterable[ReportBlock]) -> List[ReportBlock]:
    blocks = list(reports)
    if len(blocks) > 31:
        raise ValueError(f"an RTCP report carries at most 31 report blocks, got {len(blocks)}")
    for b in blocks:
        if not isinstance(b, ReportBlock):
            raise TypeError(f"reports must be ReportBlock objects, not {type(b).__name__}")
    return blocks


class SenderReport(RtcpPacket):
    """RTCP SR (RFC 3550 §6.4.1), packet type 200.

    Args:
        ssrc: the sender's SSRC.
        ntp_timestamp: 64-bit NTP timestamp of this report (see :func:`pyvoip_fast.clock.ntp_from_unix`).
        rtp_timestamp: the same instant in RTP timestamp units.
        packet_count: sender's packet count (32 bits).
        octet_count: sender's payload octet count (32 bits).
        reports: up to 31 :class:`ReportBlock`.
    """

    _fields = ("ssrc", "ntp_timestamp", "rtp_timestamp", "packet_count", "octet_count", "reports")
    __slots__ = tuple("_" + f for f in _fields)
    ssrc = _ro("ssrc", "The sender's SSRC.")
    ntp_timestamp = _ro("ntp_timestamp", "64-bit NTP timestamp.")
    rtp_timestamp = _ro("rtp_timestamp", "RTP timestamp of the same instant.")
    packet_count = _ro("packet_count", "Sender's packet count.")
    octet_count = _ro("octet_count", "Sender's payload octet count.")
    reports = _ro("reports", "The report blocks (a list).")
    packet_type = RTCP_SR

    def __init__(
        self,
        ssrc: int,
        ntp_timestamp: int,
        rtp_timestamp: int,
        packet_count: int,
        octet_count: int,
        reports: Iterable[ReportBlock] = (),
    ) -> None:
        self._ssrc = _check_int(ssrc, "ssrc", 0, _U32_MAX)
        self._ntp_timestamp = _check_int(ntp_timestamp, "ntp_timestamp", 0, 0xFFFFFFFFFFFFFFFF)
        self._rtp_timestamp = _check_int(rtp_timestamp, "rtp_timestamp", 0, _U32_MAX)
        self._packet_count = _check_int(packet_count, "packet_count", 0, _U32_MAX)
        self._octet_count = _check_int(octet_count, "octet_count", 0, _U32_MAX)
        self._reports = _check_blocks(reports)

    def _write(self, out: bytearray) -> None:
        rc = len(_check_blocks(self.reports))
        out += _SR_HEAD.pack(
            0x80 | rc,
            RTCP_SR,
            6 + 6 * rc,
            self.ssrc,
            self.ntp_timestamp,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
        )
        for b in self.reports:
            b._write(out)


class ReceiverReport(RtcpPacket):
    """RTCP RR (RFC 3550 §6.4.2), packet type 201.

    Args:
        ssrc: the reporter's SSRC.
        reports: up to 31 :class:`ReportBlock`.
    """

    _fields = ("ssrc", "reports")
    __slots__ = tuple("_" + f for f in _fields)
    ssrc = _ro("ssrc", "The reporter's SSRC.")
    reports = _ro("reports", "The report blocks (a list).")
    packet_type = RTCP_RR

    def __init__(self, ssrc: int, reports: Iterable[ReportBlock] = ()) -> None:
        self._ssrc = _check_int(ssrc, "ssrc", 0, _U32_MAX)
        self._reports = _check_blocks(reports)

    def _write(self, out: bytearray) -> None:
        rc = len(_check_blocks(self.reports))
        out += _RR_HEAD.pack(0x80 | rc, RTCP_RR, 1 + 6 * rc, self.ssrc)
        for b in self.reports:
            b._write(out)


SdesItem = Tuple[int, bytes]


def _check_items(items: Iterable[Tuple[int, Any]]) -> List[SdesItem]:
    out: List[SdesItem] = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError("SDES items must be (type, value) tuples")
        t = _check_int(item[0], "SDES item type", 1, 255)
        v = item[1]
        if isinstance(v, str):
            v = v.encode("utf-8")
        v = _check_bytes(v, "SDES item value")
        if len(v) > 255:
            raise ValueError(f"SDES item value is too long: {len(v)} bytes (max 255)")
        out.append((t, v))
    return out


def _items_strict(items: List[SdesItem]) -> List[SdesItem]:
    """The check made before every write (the list may have been edited since construction)."""
    for item in items:
        if type(item) is not tuple or len(item) != 2:
            raise TypeError("SDES items must be (type, value) tuples")
        _check_int(item[0], "SDES item type", 1, 255)
        v = item[1]
        if type(v) is not bytes:
            raise TypeError(f"SDES item value must be bytes, not {type(v).__name__}")
        if len(v) > 255:
            raise ValueError(f"SDES item value is too long: {len(v)} bytes (max 255)")
    return items


class SdesChunk(_Record):
    """One SDES chunk: an SSRC/CSRC and its items (RFC 3550 §6.5).

    Args:
        ssrc: the source described.
        items: ``[(type, value), ...]`` with type 1..255 (1 CNAME, 2 NAME, 3 EMAIL, 4 PHONE, 5 LOC, 6 TOOL,
            7 NOTE, 8 PRIV) and a value of at most 255 bytes (``str`` is encoded as UTF-8).
    """

    _fields = ("ssrc", "items")
    __slots__ = tuple("_" + f for f in _fields)
    ssrc = _ro("ssrc", "The source described.")
    items = _ro("items", "``[(type, value), ...]`` (a list).")

    def __init__(self, ssrc: int, items: Iterable[Tuple[int, Any]] = ()) -> None:
        self._ssrc = _check_int(ssrc, "ssrc", 0, _U32_MAX)
        self._items = _check_items(items)

    @property
    def cname(self) -> Optional[bytes]:
        """The first CNAME item's value, or None."""
        for t, v in self.items:
            if t == 1:
                value: bytes = v
                return value
        return None

    def _write(self, out: bytearray) -> None:
        start = len(out)
        out += _U32.pack(self.ssrc)
        for t, v in _items_strict(self._items):
            out.append(t)
            out.append(len(v))
            out += v
        out.append(0)
        out += bytes(-(len(out) - start) % 4)


class SourceDescription(RtcpPacket):
    """RTCP SDES (RFC 3550 §6.5), packet type 202.

    Args:
        chunks: up to 31 :class:`SdesChunk`.
    """

    _fields = ("chunks",)
    __slots__ = ("_chunks",)
    chunks = _ro("chunks", "The chunks (a list of SdesChunk).")
    packet_type = RTCP_SDES

    def __init__(self, chunks: Iterable[SdesChunk] = ()) -> None:
        self._chunks = _check_chunks(chunks)

    @classmethod
    def cname_for(cls, ssrc: int, cname: Union[str, bytes]) -> "SourceDescription":
        """An SDES packet with one chunk carrying just a CNAME item (what every compound packet needs)."""
        return cls([SdesChunk(ssrc, [(1, cname)])])

    def _write(self, out: bytearray) -> None:
        chunks = self._chunks
        if len(chunks) > 31:
            raise ValueError(f"an RTCP SDES packet carries at most 31 chunks, got {len(chunks)}")
        start = len(out)
        out += b"\0\0\0\0"
        for c in chunks:
            if not isinstance(c, SdesChunk):
                raise TypeError(f"chunks must be SdesChunk objects, not {type(c).__name__}")
            c._write(out)
        _RTCP_HDR.pack_into(out, start, 0x80 | len(chunks), RTCP_SDES, (len(out) - start) // 4 - 1)


def _check_chunks(chunks: Iterable[SdesChunk]) -> List[SdesChunk]:
    out = list(chunks)
    if len(out) > 31:
        raise ValueError(f"an RTCP SDES packet carries at most 31 chunks, got {len(out)}")
    for c in out:
        if not isinstance(c, SdesChunk):
            raise TypeError(f"chunks must be SdesChunk objects, not {type(c).__name__}")
    return out


def _check_sources(sources: Iterable[int]) -> List[int]:
    out = list(sources)
    if len(out) > 31:
        raise ValueError(f"an RTCP BYE carries at most 31 sources, got {len(out)}")
    for s in out:
        _check_int(s, "BYE source", 0, _U32_MAX)
    return out


def _check_reason(reason: Any) -> Optional[bytes]:
    if reason is None:
        return None
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    out = _check_bytes(reason, "reason")
    if len(out) > 255:
        raise ValueError(f"BYE reason is too long: {len(out)} bytes (max 255)")
    return out


class Bye(RtcpPacket):
    """RTCP BYE (RFC 3550 §6.6), packet type 203.

    Args:
        sources: up to 31 SSRC/CSRC identifiers leaving.
        reason: optional reason for leaving (``str`` is encoded as UTF-8; at most 255 bytes); read back as bytes.
    """

    _fields = ("sources", "reason")
    __slots__ = tuple("_" + f for f in _fields)
    sources = _ro("sources", "SSRC/CSRC identifiers leaving (a list).")
    reason = _ro("reason", "Reason for leaving (bytes) or None.")
    packet_type = RTCP_BYE

    def __init__(self, sources: Iterable[int] = (), reason: Union[str, bytes, None] = None) -> None:
        self._sources = _check_sources(sources)
        self._reason = _check_reason(reason)

    def _write(self, out: bytearray) -> None:
        sources = _check_sources(self.sources)
        reason = _check_reason(self.reason)
        start = len(out)
        out += b"\0\0\0\0"
        for s in sources:
            out += _U32.pack(s)
        if reason is not None:
            out.append(len(reason))
            out += reason
            out += bytes(-(len(out) - start) % 4)
        _RTCP_HDR.pack_into(out, start, 0x80 | len(sources), RTCP_BYE, (len(out) - start) // 4 - 1)


class App(RtcpPacket):
    """RTCP APP (RFC 3550 §6.7), packet type 204, kept opaque.

    Args:
        subtype: 0..31.
        ssrc: the sender's SSRC.
        name: exactly 4 bytes (ASCII ``str`` accepted).
        data: application data, a multiple of 4 bytes.
    """

    _fields = ("subtype", "ssrc", "name", "data")
    __slots__ = tuple("_" + f for f in _fields)
    subtype = _ro("subtype", "Subtype, 0..31.")
    ssrc = _ro("ssrc", "The sender's SSRC.")
    name = _ro("name", "4-byte ASCII name.")
    data = _ro("data", "Application data.")
    packet_type = RTCP_APP

    def __init__(self, subtype: int, ssrc: int, name: Union[str, bytes], data: bytes = b"") -> None:
        self._subtype = _check_int(subtype, "subtype", 0, 31)
        self._ssrc = _check_int(ssrc, "ssrc", 0, _U32_MAX)
        if isinstance(name, str):
            name = name.encode("ascii")
        name = _check_bytes(name, "name")
        if len(name) != 4:
            raise ValueError(f"APP name must be exactly 4 bytes, got {len(name)}")
        self._name = name
        data = _check_bytes(data, "data")
        if len(data) % 4:
            raise ValueError(f"APP data length must be a multiple of 4, got {len(data)}")
        self._data = data

    def _write(self, out: bytearray) -> None:
        data = self._data
        padded = (len(data) + 3) & ~3  # a parsed APP that carried RTCP padding may be unaligned
        out += _RR_HEAD.pack(0x80 | self._subtype, RTCP_APP, 2 + padded // 4, self._ssrc)
        out += self._name
        out += data
        out += bytes(padded - len(data))


def serialize_compound(packets: Iterable[RtcpPacket]) -> bytes:
    """Concatenate RTCP packets into one compound datagram (RFC 3550 §6.1).

    Args:
        packets: SR/RR first, then SDES with a CNAME, then anything else (the order is the caller's job).

    Returns:
        The compound packet.

    Raises:
        TypeError: something that is not an RTCP packet class of this module (a ReportBlock on its own is not).
        ValueError: a packet that cannot be serialised.
    """
    out = bytearray()
    for p in packets:
        if not isinstance(p, RtcpPacket):
            raise TypeError(f"serialize_compound() cannot serialize {type(p).__name__}")
        p._write(out)
    return bytes(out)


# ---------------------------------------------------------------------------------------------------------------
# one-call report builder (RFC 3550 §6.1: SR or RR, then SDES CNAME, then an optional BYE)

_BLOCK_FIELDS = (
    ("ssrc", 0, _U32_MAX),
    ("fraction_lost", 0, 255),
    ("cumulative_lost", -0x800000, 0x7FFFFF),
    ("highest_sequence", 0, _U32_MAX),
    ("jitter", 0, _U32_MAX),
    ("lsr", 0, _U32_MAX),
    ("dlsr", 0, _U32_MAX),
)

BlockValues = Tuple[int, int, int, int, int, int, int]


def build_report(
    ssrc: int,
    blocks: Iterable[Union[ReportBlock, BlockValues]] = (),
    cname: Union[str, bytes] = b"",
    *,
    ntp_timestamp: Optional[int] = None,
    rtp_timestamp: int = 0,
    packet_count: int = 0,
    octet_count: int = 0,
    reason: Union[str, bytes, None] = None,
) -> bytes:
    """Build the compound RTCP datagram of one report interval in one call (RFC 3550 §6.1).

    The result is byte for byte ``serialize_compound([SenderReport(ssrc, ntp_timestamp, rtp_timestamp,
    packet_count, octet_count, blocks) or ReceiverReport(ssrc, blocks), SourceDescription.cname_for(ssrc, cname)]
    + [Bye([ssrc], reason or None)])``, without creating those objects.

    Args:
        ssrc: the reporter's SSRC.
        blocks: up to 31 report blocks, each a :class:`ReportBlock` or a 7-tuple ``(ssrc, fraction_lost,
            cumulative_lost, highest_sequence, jitter, lsr, dlsr)`` checked as ReportBlock checks it.
        cname: the CNAME (RFC 3550 §6.5.1), 1..255 bytes; ``str`` is encoded as UTF-8.
        ntp_timestamp: the 64-bit NTP time of the report: given, the first packet is an SR; None, an RR.
        rtp_timestamp: the same instant in RTP units (SR only; checked either way).
        packet_count: sender's packet count (SR only; checked either way).
        octet_count: sender's payload octet count (SR only; checked either way).
        reason: None for no BYE; otherwise a BYE for ``ssrc`` is appended, carrying the reason text when it is
            not empty (``str`` is encoded as UTF-8; at most 255 bytes).

    Returns:
        The compound packet (bytes).

    Raises:
        TypeError: a field of the wrong type, or a block that is neither a ReportBlock nor a tuple.
        ValueError: a field out of range, more than 31 blocks, a block tuple without 7 fields, an empty or too
            long CNAME, a too long reason.
    """
    ssrc = _check_int(ssrc, "ssrc", 0, _U32_MAX)
    sr = ntp_timestamp is not None
    ntp = _check_int(ntp_timestamp, "ntp_timestamp", 0, 0xFFFFFFFFFFFFFFFF) if sr else 0
    rtp_timestamp = _check_int(rtp_timestamp, "rtp_timestamp", 0, _U32_MAX)
    packet_count = _check_int(packet_count, "packet_count", 0, _U32_MAX)
    octet_count = _check_int(octet_count, "octet_count", 0, _U32_MAX)
    seq = blocks if type(blocks) is tuple or type(blocks) is list else list(blocks)
    rc = len(seq)
    if rc > 31:
        raise ValueError(f"an RTCP report carries at most 31 report blocks, got {rc}")
    out = bytearray()
    if sr:
        out += _SR_HEAD.pack(0x80 | rc, RTCP_SR, 6 + 6 * rc, ssrc, ntp, rtp_timestamp, packet_count, octet_count)
    else:
        out += _RR_HEAD.pack(0x80 | rc, RTCP_RR, 1 + 6 * rc, ssrc)
    for i in range(rc):
        if len(seq) != rc:
            raise ValueError("the report block list changed size")
        b = seq[i]
        if isinstance(b, tuple):
            if len(b) != 7:
                raise ValueError(
                    f"a report block tuple needs 7 fields (ssrc, fraction_lost, cumulative_lost, highest_sequence,"
                    f" jitter, lsr, dlsr), got {len(b)}"
                )
            v = [_check_int(x, name, low, high) for x, (name, low, high) in zip(b, _BLOCK_FIELDS)]
            out += _BLOCK.pack(v[0], (v[1] << 24) | (v[2] & 0xFFFFFF), v[3], v[4], v[5], v[6])
        elif isinstance(b, ReportBlock):
            b._write(out)
        else:
            raise TypeError(f"report blocks must be ReportBlock objects or 7-tuples, not {type(b).__name__}")
    # SDES: one chunk, one CNAME item, null terminator, padding to 32 bits
    if isinstance(cname, str):
        cname = cname.encode("utf-8")
    name = _check_bytes(cname, "SDES item value")
    if not name:
        raise ValueError("cname must not be empty (RFC 3550 §6.5.1: every compound packet carries a CNAME)")
    if len(name) > 255:
        raise ValueError(f"SDES item value is too long: {len(name)} bytes (max 255)")
    chunk = (4 + 2 + len(name) + 1 + 3) & ~3
    out += _RTCP_HDR.pack(0x81, RTCP_SDES, chunk // 4)
    out += _U32.pack(ssrc)
    out.append(1)
    out.append(len(name))
    out += name
    out += bytes(chunk - 6 - len(name))
    # BYE for ssrc, with the reason text when there is one
    if reason is not None:
        why = _check_reason(reason)
        if why:
            padded = (1 + len(why) + 3) & ~3
            out += _RTCP_HDR.pack(0x81, RTCP_BYE, 1 + padded // 4)
            out += _U32.pack(ssrc)
            out.append(len(why))
            out += why
            out += bytes(padded - 1 - len(why))
        else:
            out += _RTCP_HDR.pack(0x81, RTCP_BYE, 1)
            out += _U32.pack(ssrc)
    return bytes(out)


def parse_rtcp(data: Buffer, reduced_size: bool = False) -> List[RtcpPacket]:
    """Parse a compound RTCP datagram with the validity checks of RFC 3550 §6.1 / A.2.

    Args:
        data: the datagram.
        reduced_size: accept RFC 5506 reduced-size RTCP (a first packet other than SR/RR).

    Returns:
        The packets in order (SR, RR, SDES, BYE and APP objects); packets of unknown types are skipped.

    Raises:
        RtcpParseError: the datagram is not a valid (compound) RTCP packet; the message says why.
        TypeError: ``data`` is not a bytes-like object.
    """
    mv = _view(data, "rtcp.parse()")
    n = len(mv)
    if n < 4:
        raise RtcpParseError(f"RTCP packet too short: {n} bytes, the header needs 4")
    out: List[RtcpPacket] = []
    pos = 0
    while pos < n:
        if 4 > n - pos:
            raise RtcpParseError(f"RTCP compound packet has {n - pos} trailing bytes after the last packet")
        b0, pt, length = _RTCP_HDR.unpack_from(mv, pos)
        version = b0 >> 6
        if version != 2:
            raise RtcpParseError(f"RTCP version {version} is not supported (expected 2)")
        plen = (length + 1) * 4
        if plen > n - pos:
            raise RtcpParseError(f"RTCP packet length {plen} runs past the end: only {n - pos} bytes left")
        if pos == 0 and not reduced_size and pt != RTCP_SR and pt != RTCP_RR:
            raise RtcpParseError(f"compound RTCP packet must start with SR or RR, not packet type {pt}")
        end = pos + plen
        if b0 & 0x20:
            if end != n:
                raise RtcpParseError("RTCP padding bit set on a packet that is not the last one")
            pad = mv[end - 1]
            if pad == 0:
                raise RtcpParseError("RTCP padding length is 0 (must be at least 1)")
            if pad > plen - 4:
                raise RtcpParseError(f"RTCP padding length {pad} runs past the packet body ({plen - 4} bytes)")
            end -= pad
        count = b0 & 0x1F
        body = end - pos
        if pt == RTCP_SR:
            need = 28 + 24 * count
            if need > body:
                raise RtcpParseError(f"RTCP SR with {count} report blocks needs {need} bytes, packet has {body}")
            _, _, _, ssrc, ntp, rts, pc, oc = _SR_HEAD.unpack_from(mv, pos)
            sr = SenderReport.__new__(SenderReport)
            sr._ssrc, sr._ntp_timestamp, sr._rtp_timestamp, sr._packet_count, sr._octet_count = ssrc, ntp, rts, pc, oc
            sr._reports = _parse_blocks(mv, pos + 28, count)
            out.append(sr)
        elif pt == RTCP_RR:
            need = 8 + 24 * count
            if need > body:
                raise RtcpParseError(f"RTCP RR with {count} report blocks needs {need} bytes, packet has {body}")
            rr = ReceiverReport.__new__(ReceiverReport)
            rr._ssrc = _U32.unpack_from(mv, pos + 4)[0]
            rr._reports = _parse_blocks(mv, pos + 8, count)
            out.append(rr)
        elif pt == RTCP_SDES:
            out.append(_parse_sdes(mv, pos, end, count))
        elif pt == RTCP_BYE:
            need = 4 + 4 * count
            if need > body:
                raise RtcpParseError(f"RTCP BYE with {count} sources needs {need} bytes, packet has {body}")
            bye = Bye.__new__(Bye)
            bye._sources = list(struct.unpack_from("!%dI" % count, mv, pos + 4)) if count else []
            q = pos + need
            reason = None
            if q < end:
                rlen = mv[q]
                if rlen > end - q - 1:
                    raise RtcpParseError("RTCP BYE reason runs past the end of the packet")
                reason = bytes(mv[q + 1 : q + 1 + rlen])
            bye._reason = reason
            out.append(bye)
        elif pt == RTCP_APP:
            if 12 > body:
                raise RtcpParseError(f"RTCP APP packet needs 12 bytes, packet has {body}")
            app = App.__new__(App)
            app._subtype = count
            app._ssrc = _U32.unpack_from(mv, pos + 4)[0]
            app._name = bytes(mv[pos + 8 : pos + 12])
            app._data = bytes(mv[pos + 12 : end])
            out.append(app)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("skipping RTCP packet type %d (%d bytes)", pt, plen)
        pos += plen
    return out


def _parse_blocks(mv: memoryview, pos: int, count: int) -> List[ReportBlock]:
    blocks = []
    for _ in range(count):
        ssrc, lost_word, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(mv, pos)
        b = ReportBlock.__new__(ReportBlock)
        b._ssrc = ssrc
        b._fraction_lost = lost_word >> 24
        lost = lost_word & 0xFFFFFF
        b._cumulative_lost = lost - 0x1000000 if lost & 0x800000 else lost
        b._highest_sequence = highest
        b._jitter = jitter
        b._lsr = lsr
        b._dlsr = dlsr
        blocks.append(b)
        pos += 24
    return blocks


def _parse_sdes(mv: memoryview, pos: int, end: int, count: int) -> SourceDescription:
    chunks: List[SdesChunk] = []
    q = pos + 4
    for i in range(count):
        if 4 > end - q:
            raise RtcpParseError(f"RTCP SDES chunk {i} runs past the end of the packet")
        chunk = SdesChunk.__new__(SdesChunk)
        chunk._ssrc = _U32.unpack_from(mv, q)[0]
        q += 4
        items: List[SdesItem] = []
        while True:
            if q >= end:
                raise RtcpParseError(f"RTCP SDES chunk {i} has no terminating null item")
            t = mv[q]
            if t == 0:
                q = pos + ((q - pos + 4) & ~3)
                if q > end:
                    raise RtcpParseError(f"RTCP SDES chunk {i} padding runs past the end of the packet")
                break
            if 2 > end - q:
                raise RtcpParseError(f"RTCP SDES item in chunk {i} runs past the end of the packet")
            ilen = mv[q + 1]
            if ilen > end - q - 2:
                raise RtcpParseError(f"RTCP SDES item in chunk {i} runs past the end of the packet")
            items.append((t, bytes(mv[q + 2 : q + 2 + ilen])))
            q += 2 + ilen
        chunk._items = items
        chunks.append(chunk)
    sdes = SourceDescription.__new__(SourceDescription)
    sdes._chunks = chunks
    return sdes
