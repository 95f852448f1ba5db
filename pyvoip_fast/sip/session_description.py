"""SDP session descriptions: the model, the parser and serialisation (RFC 4566).

Strategy
--------
``SessionDescription.parse`` reads an SDP body line by line (RFC 4566 §5): every line is ``<type>=<value>``,
CRLF or bare LF terminated; ``v=0`` must come first; session-level lines come before the first ``m=`` and
media-level lines after it. Values are checked as they are read (``o=`` has six fields, ports are 0-65535,
payload formats of RTP media are integers 0-127, ...). Anything wrong raises ``SdpParseError`` with a message
naming the line. Limits (body size, line count, media sections) are keyword parameters with documented
defaults, so a hostile body cannot make the parser do unbounded work. Unknown attributes are kept verbatim
and serialised back unchanged.

The offer/answer model built on it lives in :mod:`pyvoip_fast.sip.offer_answer`; :mod:`pyvoip_fast.sip.sdp`
is the public face of both.

RFCs: 4566 §5 (syntax and line order; RFC 8866 is its successor with the same grammar for what we use) and §6
(``a=rtpmap``, ``a=fmtp``, ``a=ptime`` and the direction attributes), 3551 §6 (the static payload types of
formats given without ``a=rtpmap``), 3605 §2.1 (``a=rtcp``).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

from ..errors import SdpParseError
from .abnf import CONTROL_RE, is_digits

logger = logging.getLogger(__name__)

__all__ = [
    "SessionDescription",
    "MediaDescription",
    "Origin",
    "Connection",
    "Attribute",
    "STATIC_PAYLOAD_TYPES",
    "DIRECTIONS",
    "RTP_PROTOS",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MAX_LINES",
    "DEFAULT_MAX_MEDIA",
]

#: default limit on the size of an SDP body, in bytes
DEFAULT_MAX_SIZE = 65536
#: default limit on the number of lines of an SDP body
DEFAULT_MAX_LINES = 1024
#: default limit on the number of ``m=`` sections
DEFAULT_MAX_MEDIA = 32

#: RFC 3551 static audio payload types we may meet without an ``a=rtpmap`` line: pt -> (encoding, clock, channels)
STATIC_PAYLOAD_TYPES: Dict[int, Tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    5: ("DVI4", 8000, 1),
    6: ("DVI4", 16000, 1),
    7: ("LPC", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    10: ("L16", 44100, 2),
    11: ("L16", 44100, 1),
    12: ("QCELP", 8000, 1),
    13: ("CN", 8000, 1),
    14: ("MPA", 90000, 1),
    15: ("G728", 8000, 1),
    16: ("DVI4", 11025, 1),
    17: ("DVI4", 22050, 1),
    18: ("G729", 8000, 1),
}

#: the four RFC 3264 direction attributes
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
#: transport protocols of RTP media sections we can take part in
RTP_PROTOS = ("RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF")
#: the profiles that require SRTP (RFC 3711 §12)
SECURE_PROTOS = ("RTP/SAVP", "RTP/SAVPF")


@dataclass
class Origin:
    """The ``o=`` line: ``<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>``."""

    username: str = "-"
    session_id: int = 0
    session_version: int = 0
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass
class Connection:
    """The ``c=`` line: ``<nettype> <addrtype> <connection-address>`` (multicast TTL/count kept in address)."""

    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"

    @property
    def host(self) -> str:
        """The address without a multicast ``/ttl`` or ``/count`` suffix."""
        return self.address.split("/", 1)[0]


Attribute = Tuple[str, Optional[str]]


def _direction_of(attributes: List[Attribute]) -> Optional[str]:
    """The first direction attribute (sendrecv / sendonly / recvonly / inactive) of a section, or None."""
    for key, _ in attributes:
        if key in DIRECTIONS:
            return key
    return None


def _attr_str(attr: Attribute) -> str:
    name, value = attr
    return name if value is None else f"{name}:{value}"


@dataclass
class MediaDescription:
    """One ``m=`` section and its media-level lines.

    Attributes:
        media: ``audio``, ``video``, ...
        port: transport port; 0 means the stream is rejected/disabled.
        proto: ``RTP/AVP`` for plain RTP.
        formats: the payload formats in preference order (strings; integers for RTP).
        port_count: the optional ``/<number of ports>``.
        information: ``i=``; connection: ``c=`` (overrides the session's); bandwidths: ``b=`` values;
        key: ``k=``; attributes: ``a=`` lines in order as ``(name, value-or-None)``.
    """

    media: str = "audio"
    port: int = 0
    proto: str = "RTP/AVP"
    formats: List[str] = field(default_factory=list)
    port_count: int = 1
    information: Optional[str] = None
    connection: Optional[Connection] = None
    bandwidths: List[str] = field(default_factory=list)
    key: Optional[str] = None
    attributes: List[Attribute] = field(default_factory=list)

    # -- attribute helpers ------------------------------------------------------------------------------------
    def get_attribute(self, name: str) -> Optional[str]:
        """Value of the first ``a=name`` (``""`` for a flag attribute), or None when absent."""
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    def get_attributes(self, name: str) -> List[str]:
        """Values of every ``a=name`` line, in order."""
        return ["" if value is None else value for key, value in self.attributes if key == name]

    def set_direction(self, direction: str) -> None:
        """Replace any direction attribute by ``direction``."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
        self.attributes = [a for a in self.attributes if a[0] not in DIRECTIONS]
        self.attributes.append((direction, None))

    @property
    def direction(self) -> Optional[str]:
        """The media-level direction attribute, or None when the section has none."""
        return _direction_of(self.attributes)

    @property
    def ptime(self) -> Optional[int]:
        """``a=ptime`` in milliseconds, or None (unparsable values are ignored)."""
        value = self.get_attribute("ptime")
        if value is None:
            return None
        try:
            ptime = int(float(value.strip()))
        except ValueError:
            return None
        return ptime if 0 < ptime <= 1000 else None

    def rtpmap(self, *, static: bool = True) -> Dict[int, Tuple[str, int, int]]:
        """Payload type -> (encoding, clock rate, channels) from ``a=rtpmap`` plus RFC 3551 static types.

        Only formats listed on the ``m=`` line are included. With ``static=False`` only the formats that have
        an ``a=rtpmap`` line are, so a caller can tell a named format from a bare static type number.
        """
        result: Dict[int, Tuple[str, int, int]] = {}
        explicit: Dict[int, Tuple[str, int, int]] = {}
        for value in self.get_attributes("rtpmap"):
            parsed = _parse_rtpmap(value)
            if parsed is not None:
                explicit[parsed[0]] = parsed[1]
        for fmt in self.formats:
            if not is_digits(fmt):
                continue
            pt = int(fmt)
            if pt in explicit:
                result[pt] = explicit[pt]
            elif static and pt in STATIC_PAYLOAD_TYPES:
                result[pt] = STATIC_PAYLOAD_TYPES[pt]
        return result

    def fmtp(self) -> Dict[int, str]:
        """Payload type -> format parameters from ``a=fmtp``."""
        result: Dict[int, str] = {}
        for value in self.get_attributes("fmtp"):
            pt_text, _, params = value.partition(" ")
            if is_digits(pt_text):
                result[int(pt_text)] = params.strip()
        return result

    def rtcp_address(self) -> Optional[Tuple[Optional[str], int]]:
        """RFC 3605 ``a=rtcp:<port> [IN IP4 <addr>]`` as (address or None, port), or None when absent/bad."""
        value = self.get_attribute("rtcp")
        if not value:
            return None
        parts = value.split()
        if not is_digits(parts[0]) or not 0 < int(parts[0]) <= 65535:
            return None
        addr = parts[3] if len(parts) >= 4 else None
        return addr, int(parts[0])

    def lines(self) -> List[str]:
        """The section as SDP lines (without line ends)."""
        port = f"{self.port}/{self.port_count}" if self.port_count != 1 else str(self.port)
        out = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}".rstrip()]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={b}" for b in self.bandwidths)
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(f"a={_attr_str(a)}" for a in self.attributes)
        return out


@dataclass
class SessionDescription:
    """A whole SDP body (RFC 4566 §5).

    Attributes:
        version: ``v=`` (always 0); origin: ``o=``; session_name: ``s=``; information ``i=``; uri ``u=``;
        emails ``e=``; phones ``p=``; connection ``c=``; bandwidths ``b=``; times ``t=`` values (at least one);
        repeats ``r=``; zone ``z=``; key ``k=``; attributes ``a=``; media: the ``m=`` sections.
    """

    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    version: int = 0
    information: Optional[str] = None
    uri: Optional[str] = None
    emails: List[str] = field(default_factory=list)
    phones: List[str] = field(default_factory=list)
    connection: Optional[Connection] = None
    bandwidths: List[str] = field(default_factory=list)
    times: List[str] = field(default_factory=lambda: ["0 0"])
    repeats: List[str] = field(default_factory=list)
    zone: Optional[str] = None
    key: Optional[str] = None
    attributes: List[Attribute] = field(default_factory=list)
    media: List[MediaDescription] = field(default_factory=list)

    # -- parsing ------------------------------------------------------------------------------------------------
    @classmethod
    def parse(
        cls,
        data: Union[bytes, bytearray, memoryview, str],
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        max_lines: int = DEFAULT_MAX_LINES,
        max_media: int = DEFAULT_MAX_MEDIA,
    ) -> "SessionDescription":
        """Parse an SDP body.

        Args:
            data: the body, bytes (UTF-8) or str.
            max_size: largest accepted body in bytes (default 64 KiB).
            max_lines: most lines accepted (default 1024).
            max_media: most ``m=`` sections accepted (default 32).

        Returns:
            the description.

        Raises:
            SdpParseError: the body is not valid SDP or exceeds a limit; the message says which line and why.
        """
        if isinstance(data, str):
            text = data
            if len(text) > max_size:
                raise SdpParseError(f"SDP body of {len(text)} characters exceeds the {max_size}-byte limit")
        elif isinstance(data, (bytes, bytearray, memoryview)):
            raw = bytes(data)
            if len(raw) > max_size:
                raise SdpParseError(f"SDP body of {len(raw)} bytes exceeds the {max_size}-byte limit")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SdpParseError(f"SDP body is not valid UTF-8 (byte {exc.start})") from None
        else:
            raise TypeError(f"SDP data must be bytes or str, not {type(data).__name__}")
        return _Parser(max_lines, max_media).parse(text)

    # -- serialising --------------------------------------------------------------------------------------------
    def lines(self) -> List[str]:
        """The description as SDP lines in RFC 4566 order (without line ends)."""
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.uri is not None:
            out.append(f"u={self.uri}")
        out.extend(f"e={e}" for e in self.emails)
        out.extend(f"p={p}" for p in self.phones)
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={b}" for b in self.bandwidths)
        for i, t in enumerate(self.times or ["0 0"]):
            out.append(f"t={t}")
            if i == 0:
                out.extend(f"r={r}" for r in self.repeats)
        if self.zone is not None:
            out.append(f"z={self.zone}")
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(f"a={_attr_str(a)}" for a in self.attributes)
        for m in self.media:
            out.extend(m.lines())
        return out

    def serialize(self) -> bytes:
        """The description as bytes, CRLF line ends (RFC 4566 §5)."""
        return ("\r\n".join(self.lines()) + "\r\n").encode("utf-8")

    def __str__(self) -> str:
        return self.serialize().decode("utf-8")

    # -- helpers ------------------------------------------------------------------------------------------------
    @property
    def direction(self) -> Optional[str]:
        """The session-level direction attribute, or None."""
        return _direction_of(self.attributes)

    def media_direction(self, media: MediaDescription) -> str:
        """Effective direction of a section: its own attribute, else the session's, else ``sendrecv``."""
        return media.direction or self.direction or "sendrecv"

    def media_connection(self, media: MediaDescription) -> Optional[Connection]:
        """Effective ``c=`` of a section (media level overrides session level)."""
        return media.connection or self.connection

    def first_audio(self) -> Optional[MediaDescription]:
        """The first active (port != 0) RTP audio section, or None."""
        for m in self.media:
            if m.media == "audio" and m.port != 0 and m.proto in RTP_PROTOS:
                return m
        return None

    @property
    def direction_of_audio(self) -> str:
        """Effective direction of the first active audio stream (``inactive`` when there is none)."""
        audio = self.first_audio()
        return self.media_direction(audio) if audio is not None else "inactive"


# ---------------------------------------------------------------------------------------------------------------
# parser

_SESSION_ORDER = "vosiuepcbtrzkam"
_MEDIA_TYPES = "micbka"


def _parse_rtpmap(value: str) -> Optional[Tuple[int, Tuple[str, int, int]]]:
    pt_text, _, rest = value.strip().partition(" ")
    if not is_digits(pt_text) or int(pt_text) > 127:
        return None
    parts = rest.strip().split("/")
    if len(parts) < 2 or not parts[0] or not is_digits(parts[1]):
        return None
    channels = int(parts[2]) if len(parts) > 2 and is_digits(parts[2]) else 1
    return int(pt_text), (parts[0], int(parts[1]), channels)


class _Parser:
    def __init__(self, max_lines: int, max_media: int) -> None:
        self.max_lines = max_lines
        self.max_media = max_media

    def parse(self, text: str) -> SessionDescription:
        raw_lines = text.split("\n")
        if raw_lines and raw_lines[-1] == "":
            raw_lines.pop()
        if not raw_lines:
            raise SdpParseError("empty SDP body")
        if len(raw_lines) > self.max_lines:
            raise SdpParseError(f"SDP body has {len(raw_lines)} lines, more than the limit of {self.max_lines}")
        sd = SessionDescription(times=[])
        media: Optional[MediaDescription] = None
        seen_origin = seen_name = False
        for number, line in enumerate(raw_lines, 1):
            if line.endswith("\r"):
                line = line[:-1]
            if line == "" and number == len(raw_lines):
                continue
            if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
                raise SdpParseError(f"SDP line {number} is not of the form <type>=<value>: {line[:40]!r}")
            if CONTROL_RE.search(line):
                raise SdpParseError(f"SDP line {number} contains a control character")
            kind, value = line[0], line[2:]
            if number == 1:
                if kind != "v":
                    raise SdpParseError("SDP must start with a v= line")
                if value.strip() != "0":
                    raise SdpParseError(f"unsupported SDP version {value!r} (only v=0)")
                continue
            if kind == "v":
                raise SdpParseError(f"SDP line {number}: repeated v= line")
            if kind == "m":
                if not seen_origin:
                    raise SdpParseError("SDP has no o= line before the first m= line")
                if len(sd.media) >= self.max_media:
                    raise SdpParseError(f"SDP has more than {self.max_media} media sections")
                media = self._media(value, number)
                sd.media.append(media)
                continue
            if media is not None:
                self._media_line(media, kind, value, number)
                continue
            if kind == "o":
                if seen_origin:
                    raise SdpParseError(f"SDP line {number}: repeated o= line")
                sd.origin = self._origin(value, number)
                seen_origin = True
            elif kind == "s":
                if seen_name:
                    raise SdpParseError(f"SDP line {number}: repeated s= line")
                sd.session_name = value
                seen_name = True
            elif kind == "i":
                sd.information = value
            elif kind == "u":
                sd.uri = value
            elif kind == "e":
                sd.emails.append(value)
            elif kind == "p":
                sd.phones.append(value)
            elif kind == "c":
                sd.connection = self._connection(value, number)
            elif kind == "b":
                sd.bandwidths.append(self._bandwidth(value, number))
            elif kind == "t":
                fields = value.split()
                if len(fields) != 2 or not all(is_digits(f) for f in fields):
                    raise SdpParseError(f"SDP line {number}: t= needs two integers, got {value!r}")
                sd.times.append(value)
            elif kind == "r":
                sd.repeats.append(value)
            elif kind == "z":
                sd.zone = value
            elif kind == "k":
                sd.key = value
            elif kind == "a":
                sd.attributes.append(self._attribute(value, number))
            else:
                # RFC 4566 §5: unknown types are ignored by parsers (we drop them)
                logger.debug("ignoring unknown SDP line type %r", kind)
        if not seen_origin:
            raise SdpParseError("SDP has no o= line")
        if not sd.times:
            sd.times.append("0 0")
        for m in sd.media:
            if sd.connection is None and m.connection is None and m.port != 0:
                raise SdpParseError(f"SDP media section '{m.media} {m.port}' has no connection address (c=)")
        return sd

    @staticmethod
    def _origin(value: str, number: int) -> Origin:
        fields = value.split()
        if len(fields) != 6:
            raise SdpParseError(f"SDP line {number}: o= needs 6 fields, got {len(fields)}")
        if not is_digits(fields[1]) or not is_digits(fields[2]):
            raise SdpParseError(f"SDP line {number}: o= session id and version must be integers")
        return Origin(fields[0], int(fields[1]), int(fields[2]), fields[3], fields[4], fields[5])

    @staticmethod
    def _connection(value: str, number: int) -> Connection:
        fields = value.split()
        if len(fields) != 3:
            raise SdpParseError(f"SDP line {number}: c= needs 3 fields, got {len(fields)}")
        nettype, addrtype, address = fields
        if nettype == "IN" and addrtype not in ("IP4", "IP6"):
            raise SdpParseError(f"SDP line {number}: unknown address type {addrtype!r}")
        if nettype == "IN":
            host = address.split("/", 1)[0]
            if addrtype == "IP4" and host.count(".") == 3:
                try:
                    ipaddress.IPv4Address(host)
                except ValueError:
                    raise SdpParseError(f"SDP line {number}: bad IPv4 address {host!r}") from None
            elif addrtype == "IP6" and ":" in host:
                try:
                    ipaddress.IPv6Address(host)
                except ValueError:
                    raise SdpParseError(f"SDP line {number}: bad IPv6 address {host!r}") from None
            if not host:
                raise SdpParseError(f"SDP line {number}: empty connection address")
        return Connection(nettype, addrtype, address)

    @staticmethod
    def _bandwidth(value: str, number: int) -> str:
        bwtype, sep, bw = value.partition(":")
        if not sep or not bwtype or not is_digits(bw.strip()):
            raise SdpParseError(f"SDP line {number}: b= must be <bwtype>:<bandwidth>, got {value!r}")
        return value

    @staticmethod
    def _attribute(value: str, number: int) -> Attribute:
        name, sep, attr_value = value.partition(":")
        if not name or " " in name:
            raise SdpParseError(f"SDP line {number}: bad attribute {value[:40]!r}")
        return (name, attr_value if sep else None)

    def _media(self, value: str, number: int) -> MediaDescription:
        fields = value.split()
        if len(fields) < 3:
            raise SdpParseError(f"SDP line {number}: m= needs <media> <port> <proto> [<fmt> ...]")
        media, port_text, proto = fields[0], fields[1], fields[2]
        formats = fields[3:]
        port_part, slash, count_part = port_text.partition("/")
        if not is_digits(port_part) or int(port_part) > 65535:
            raise SdpParseError(f"SDP line {number}: bad media port {port_text!r}")
        count = 1
        if slash:
            if not is_digits(count_part) or not 0 < int(count_part) <= 65535:
                raise SdpParseError(f"SDP line {number}: bad port count {port_text!r}")
            count = int(count_part)
        if proto in RTP_PROTOS or proto.startswith("RTP/"):
            if not formats and int(port_part) != 0:
                raise SdpParseError(f"SDP line {number}: RTP media section without payload formats")
            for fmt in formats:
                if not is_digits(fmt) or int(fmt) > 127:
                    raise SdpParseError(f"SDP line {number}: bad RTP payload type {fmt!r}")
        return MediaDescription(media=media, port=int(port_part), proto=proto, formats=formats, port_count=count)

    def _media_line(self, media: MediaDescription, kind: str, value: str, number: int) -> None:
        if kind == "i":
            media.information = value
        elif kind == "c":
            media.connection = self._connection(value, number)
        elif kind == "b":
            media.bandwidths.append(self._bandwidth(value, number))
        elif kind == "k":
            media.key = value
        elif kind == "a":
            media.attributes.append(self._attribute(value, number))
        elif kind in "osuepztr":
            raise SdpParseError(f"SDP line {number}: {kind}= is not allowed inside a media section")
        else:
            logger.debug("ignoring unknown SDP media line type %r", kind)
