"""SIP messages: parse and serialise requests and responses (RFC 3261 §7, §18.3, §20, §25).

Strategy
--------
One datagram is one message (§18.3). ``parse_message`` works on bytes in this order, checking a limit before
each step so hostile input costs bounded work:

1. total size against ``max_size`` (hint 513 Message Too Large);
2. skip leading CRLFs (§7.5), find the blank line ending the header section (CRLF CRLF, bare LF tolerated);
3. decode the header section as UTF-8, split into lines, unfold continuation lines (leading SP/HTAB, §7.3.1),
   checking ``max_line_length`` and ``max_headers``;
4. the start line: ``Method SP Request-URI SP SIP/2.0`` or ``SIP/2.0 SP Status-Code SP Reason-Phrase``
   (other versions: hint 505; other URI schemes than sip/sips/tel: hint 416);
5. headers into ``Headers``, a case-insensitive multimap that expands compact forms (``i f t v m l c k s e o``,
   §7.3.3) to their long names and keeps order;
6. Content-Length: the body is exactly that many bytes; fewer is an error, extra bytes are dropped (§18.3). A
   missing Content-Length means "up to the end of the datagram", which §18.3 allows over UDP; we always send it;
7. the mandatory headers (Via, From, To, Call-ID, CSeq; §8.1.1) are present and well formed, CSeq's method
   matches the request's.

Every failure is a ``SipParseError`` whose ``status_hint`` is the response a UAS should send.
``parse_for_error_response`` salvages just enough of a broken request (Via, From, To, Call-ID, CSeq) to send
that response, and returns None when even that is impossible (then the datagram is dropped).
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import SipParseError
from .abnf import CONTROL_RE as _CTL_RE
from .abnf import TOKEN_RE as _TOKEN_RE
from .abnf import is_digits
from .uri import NameAddress, SipUri, Uri, parse_uri
from .via import Via

logger = logging.getLogger(__name__)

__all__ = [
    "Headers",
    "SipRequest",
    "SipResponse",
    "SipMessage",
    "Via",
    "MessageLimits",
    "parse_message",
    "parse_for_error_response",
    "make_response",
    "REASON_PHRASES",
    "COMPACT_FORMS",
    "MAGIC_COOKIE",
]

#: RFC 3261 branch magic cookie (§8.1.1.7)
MAGIC_COOKIE = "z9hG4bK"

#: compact header forms (§7.3.3 and the IANA registry) -> long name
COMPACT_FORMS: Dict[str, str] = {
    "i": "Call-ID",
    "f": "From",
    "t": "To",
    "v": "Via",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
    "b": "Referred-By",
    "x": "Session-Expires",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
}

_CANONICAL_NAMES = [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Authentication-Info",
    "Authorization", "Call-ID", "Call-Info", "Contact", "Content-Disposition", "Content-Encoding",
    "Content-Language", "Content-Length", "Content-Type", "CSeq", "Date", "Error-Info", "Expires", "From",
    "In-Reply-To", "Max-Forwards", "MIME-Version", "Min-Expires", "Organization", "Priority",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "Record-Route", "Reply-To", "Require",
    "Retry-After", "Route", "Server", "Subject", "Supported", "Timestamp", "To", "Unsupported", "User-Agent",
    "Via", "Warning", "WWW-Authenticate", "Event", "Allow-Events", "Refer-To", "Referred-By",
    "Session-Expires", "Min-SE", "RSeq", "RAck", "Subscription-State", "Refer-Sub",
]
_CANONICAL: Dict[str, str] = {name.lower(): name for name in _CANONICAL_NAMES}

#: headers whose values are comma-separated lists (§7.3.1: equivalent to repeated header lines)
_LIST_HEADERS = frozenset(
    n.lower()
    for n in (
        "Via", "Contact", "Route", "Record-Route", "Allow", "Supported", "Require", "Proxy-Require",
        "Unsupported", "Accept", "Accept-Encoding", "Accept-Language", "Content-Encoding", "Content-Language",
        "Allow-Events", "In-Reply-To", "Alert-Info", "Call-Info", "Error-Info", "Warning", "Reply-To",
    )
)

#: default reason phrases (§21)
REASON_PHRASES: Dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 202: "Accepted",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required", 422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
    483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

_VERSION_RE = re.compile(r"^SIP/(\d+)\.(\d+)$", re.IGNORECASE)
_CALL_ID_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}@]+$")


class MessageLimits:
    """Limits on untrusted input, with their defaults.

    Attributes:
        max_size: largest datagram accepted (65,535 bytes; a UDP payload cannot be larger). Hint 513.
        max_headers: most header fields (after unfolding) per message (128).
        max_line_length: longest header line after unfolding (8,192 characters).
        max_body: largest body (65,535 bytes).
    """

    __slots__ = ("max_size", "max_headers", "max_line_length", "max_body")

    def __init__(
        self, *, max_size: int = 65535, max_headers: int = 128, max_line_length: int = 8192, max_body: int = 65535
    ) -> None:
        for name, value in (("max_size", max_size), ("max_headers", max_headers),
                            ("max_line_length", max_line_length), ("max_body", max_body)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        self.max_size = max_size
        self.max_headers = max_headers
        self.max_line_length = max_line_length
        self.max_body = max_body


DEFAULT_LIMITS = MessageLimits()


@functools.lru_cache(maxsize=1024)
def canonical_name(name: str) -> str:
    """The long, conventionally capitalised form of a header name (compact forms expanded; unknown names in
    Title-Case, so that comparing canonical names is enough for a case-insensitive match)."""
    lower = name.lower()
    if len(name) == 1:
        long = COMPACT_FORMS.get(lower)
        if long is not None:
            return long
    known = _CANONICAL.get(lower)
    if known is not None:
        return known
    return "-".join(part[:1].upper() + part[1:] for part in lower.split("-"))


def split_list(value: str) -> List[str]:
    """Split a comma-separated header value, respecting quotes and angle brackets."""
    if "," not in value:  # the usual case: one value
        value = value.strip()
        return [value] if value else []
    if '"' not in value and "<" not in value:
        return [part.strip() for part in value.split(",") if part.strip()]
    parts: List[str] = []
    buf: List[str] = []
    in_quotes = escape = False
    depth = 0
    for ch in value:
        if in_quotes:
            buf.append(ch)
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_quotes = False
            continue
        if ch == '"':
            in_quotes = True
        elif ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif ch == "," and depth == 0:
            part = "".join(buf).strip()
            if part:
                parts.append(part)
            buf = []
            continue
        buf.append(ch)
    part = "".join(buf).strip()
    if part:
        parts.append(part)
    return parts


class Headers:
    """Case-insensitive, order-keeping multimap of header fields.

    Names are stored in their long canonical form (``v`` -> ``Via``); lookups accept any case and compact forms.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[Tuple[str, str]] = ()) -> None:
        self._items: List[Tuple[str, str]] = [(canonical_name(k), v) for k, v in items]

    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} value contains a line break")
        self._items.append((canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` line by one with ``value`` (at the first one's position, or appended)."""
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} value contains a line break")
        cname = canonical_name(name)
        out: List[Tuple[str, str]] = []
        placed = False
        for k, v in self._items:
            if k == cname:
                if not placed:
                    out.append((cname, value))
                    placed = True
            else:
                out.append((k, v))
        if not placed:
            out.append((cname, value))
        self._items = out

    def remove(self, name: str) -> None:
        """Remove every ``name`` line."""
        key = canonical_name(name)
        self._items = [(k, v) for k, v in self._items if k != key]

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value of ``name`` (the whole line's value), or ``default``."""
        key = canonical_name(name)
        for k, v in self._items:
            if k == key:
                return v
        return default

    def get_lines(self, name: str) -> List[str]:
        """Every line's value for ``name``, unsplit."""
        key = canonical_name(name)
        return [v for k, v in self._items if k == key]

    def get_all(self, name: str) -> List[str]:
        """Every value of ``name``; comma lists of list-valued headers (Via, Contact, Allow...) are split."""
        key = canonical_name(name)
        values = [v for k, v in self._items if k == key]
        if key.lower() in _LIST_HEADERS:
            return [part for v in values for part in split_list(v)]
        return values

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = canonical_name(name)
        for k, _ in self._items:  # a plain loop: every message asks this a dozen times, a generator costs more
            if k == key:
                return True
        return False

    def __iter__(self) -> Iterator[Tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    def copy(self) -> "Headers":
        h = Headers()
        h._items = list(self._items)
        return h

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class _MessageBase:
    __slots__ = ("headers", "body", "version")

    headers: Headers
    body: bytes
    version: str

    # -- typed accessors over the headers ------------------------------------------------------------------
    @property
    def call_id(self) -> str:
        value = self.headers.get("Call-ID")
        if value is None:
            raise SipParseError("missing Call-ID header")
        return value.strip()

    @property
    def cseq(self) -> Tuple[int, str]:
        """(sequence number, method)."""
        value = self.headers.get("CSeq")
        if value is None:
            raise SipParseError("missing CSeq header")
        parts = value.split()
        if len(parts) != 2 or not is_digits(parts[0]) or len(parts[0]) > 10 or not _TOKEN_RE.match(parts[1]):
            raise SipParseError(f"bad CSeq {value[:40]!r}")
        number = int(parts[0])
        if number >= 2**31:
            raise SipParseError(f"CSeq number {number} is not below 2**31")
        return number, parts[1]

    @property
    def from_(self) -> NameAddress:
        value = self.headers.get("From")
        if value is None:
            raise SipParseError("missing From header")
        return NameAddress.parse(value)

    @property
    def to(self) -> NameAddress:
        value = self.headers.get("To")
        if value is None:
            raise SipParseError("missing To header")
        return NameAddress.parse(value)

    @property
    def vias(self) -> List[Via]:
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        values = self.headers.get_all("Via")
        if not values:
            raise SipParseError("missing Via header")
        return Via.parse(values[0])

    @property
    def contact(self) -> Optional[NameAddress]:
        """The first Contact, or None (``*`` is returned as None too)."""
        values = self.headers.get_all("Contact")
        if not values or values[0].strip() == "*":
            return None
        return NameAddress.parse(values[0])

    @property
    def content_type(self) -> Optional[str]:
        value = self.headers.get("Content-Type")
        return value.split(";", 1)[0].strip().lower() if value is not None else None

    def _header_bytes(self) -> List[str]:
        lines = [f"{k}: {v}" for k, v in self.headers._items if k != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return lines


class SipRequest(_MessageBase):
    """A SIP request.

    Attributes:
        method: ``INVITE``, ``ACK``...; uri: the Request-URI; headers; body (bytes); version (``SIP/2.0``).
    """

    __slots__ = ("method", "uri")

    def __init__(
        self, method: str, uri: Union[Uri, str], headers: Optional[Headers] = None, body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        if not _TOKEN_RE.match(method):
            raise ValueError(f"bad SIP method {method!r}")
        self.method = method
        self.uri: Uri = parse_uri(uri) if isinstance(uri, str) else uri
        self.headers = headers if headers is not None else Headers()
        self.body = bytes(body)
        self.version = version

    def serialize(self) -> bytes:
        """The request as bytes, with a Content-Length matching the body."""
        lines = [f"{self.method} {self.uri} {self.version}"] + self._header_bytes()
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body

    def __repr__(self) -> str:
        return f"<SipRequest {self.method} {self.uri}>"


class SipResponse(_MessageBase):
    """A SIP response.

    Attributes:
        status_code (100-699); reason; headers; body; version.
    """

    __slots__ = ("status_code", "reason")

    def __init__(
        self, status_code: int, reason: Optional[str] = None, headers: Optional[Headers] = None, body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        if not isinstance(status_code, int) or not 100 <= status_code <= 699:
            raise ValueError(f"SIP status code must be 100-699, not {status_code!r}")
        self.status_code = status_code
        self.reason = reason if reason is not None else REASON_PHRASES.get(status_code, "Unknown")
        if "\r" in self.reason or "\n" in self.reason:
            raise ValueError("reason phrase contains a line break")
        self.headers = headers if headers is not None else Headers()
        self.body = bytes(body)
        self.version = version

    def serialize(self) -> bytes:
        """The response as bytes, with a Content-Length matching the body."""
        lines = [f"{self.version} {self.status_code} {self.reason}"] + self._header_bytes()
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body

    def __repr__(self) -> str:
        return f"<SipResponse {self.status_code} {self.reason}>"


SipMessage = Union[SipRequest, SipResponse]


def _find_header_end(data: bytes, start: int) -> Tuple[int, int]:
    """(end of headers, start of body) or (-1, -1)."""
    crlf = data.find(b"\r\n\r\n", start)
    lf = data.find(b"\n\n", start)
    if crlf >= 0 and (lf < 0 or crlf + 2 <= lf):
        return crlf, crlf + 4
    if lf >= 0:
        # "\r\n\n" or "\n\r\n" mixes also end the headers
        return lf, lf + 2
    mixed = data.find(b"\n\r\n", start)
    if mixed >= 0:
        return mixed, mixed + 3
    return -1, -1


def _split_header_lines(text: str, limits: MessageLimits) -> List[str]:
    raw = text.split("\n")
    lines: List[str] = []
    for line in raw:
        if line.endswith("\r"):
            line = line[:-1]
        if "\r" in line:
            raise SipParseError("bare CR inside a header line")
        if line[:1] in (" ", "\t"):
            if not lines:
                raise SipParseError("continuation line before the start line")
            if len(lines) == 1:
                raise SipParseError("the start line cannot be folded")
            lines[-1] = lines[-1].rstrip(" \t") + " " + line.strip(" \t")
        else:
            lines.append(line)
        if len(lines[-1]) > limits.max_line_length:
            raise SipParseError(f"header line longer than {limits.max_line_length} characters")
    return lines


def parse_message(data: Union[bytes, bytearray, memoryview], limits: MessageLimits = DEFAULT_LIMITS) -> SipMessage:
    """Parse one SIP message from a datagram.

    Args:
        data: the datagram.
        limits: size limits (see ``MessageLimits`` for the defaults).

    Returns:
        a ``SipRequest`` or ``SipResponse``.

    Raises:
        SipParseError: malformed message or a limit exceeded; ``status_hint`` says what to answer.
    """
    data = bytes(data)
    if len(data) > limits.max_size:
        raise SipParseError(f"message of {len(data)} bytes exceeds the {limits.max_size}-byte limit", status_hint=513)
    start = 0
    while data.startswith(b"\r\n", start) or data.startswith(b"\n", start):
        start += 2 if data.startswith(b"\r\n", start) else 1
    if start >= len(data):
        raise SipParseError("empty message")
    head_end, body_start = _find_header_end(data, start)
    if head_end < 0:
        raise SipParseError("no blank line after the headers")
    try:
        head = data[start:head_end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError(f"header section is not valid UTF-8 (byte {start + exc.start})") from None
    if "\x00" in head:
        raise SipParseError("NUL byte in the header section")
    lines = _split_header_lines(head, limits)
    if len(lines) - 1 > limits.max_headers:
        raise SipParseError(f"more than {limits.max_headers} header fields")
    message = _parse_start_line(lines[0])
    headers = message.headers
    for line in lines[1:]:
        if not line:
            raise SipParseError("empty header line")
        name, sep, value = line.partition(":")
        if not sep:
            raise SipParseError(f"header line without a colon: {line[:40]!r}")
        name = name.rstrip(" \t")
        if not name or not _TOKEN_RE.match(name):
            raise SipParseError(f"bad header name {name[:40]!r}")
        value = value.strip(" \t")
        if _CTL_RE.search(value):
            raise SipParseError(f"control character in header {name!r}")
        headers._items.append((canonical_name(name), value))
    rest = data[body_start:]
    lengths = headers.get_lines("Content-Length")
    if lengths:
        if len(set(v.strip() for v in lengths)) != 1:
            raise SipParseError("conflicting Content-Length headers")
        text = lengths[0].strip()
        if not is_digits(text) or len(text) > 10:
            raise SipParseError(f"bad Content-Length {text[:20]!r}")
        length = int(text)
        if length > limits.max_body:
            raise SipParseError(f"Content-Length {length} exceeds the {limits.max_body}-byte limit", status_hint=513)
        if length > len(rest):
            raise SipParseError(f"body shorter than Content-Length ({len(rest)} < {length} bytes)")
        message.body = rest[:length]
    else:
        if len(rest) > limits.max_body:
            raise SipParseError(f"body of {len(rest)} bytes exceeds the {limits.max_body}-byte limit", status_hint=513)
        message.body = rest
    _validate(message)
    return message


def _parse_start_line(line: str) -> SipMessage:
    if line.startswith("SIP/") or line[:4].upper() == "SIP/":
        parts = line.split(" ", 2)
        if len(parts) < 2:
            raise SipParseError(f"bad status line {line[:60]!r}")
        version = parts[0]
        if not _VERSION_RE.match(version):
            raise SipParseError(f"bad SIP version {version[:20]!r}")
        if version.upper() != "SIP/2.0":
            raise SipParseError(f"unsupported SIP version {version[:20]!r}", status_hint=505)
        code = parts[1]
        if len(code) != 3 or not is_digits(code) or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code {code[:20]!r}")
        reason = parts[2] if len(parts) == 3 else ""
        return SipResponse(int(code), reason, Headers(), b"", "SIP/2.0")
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError(f"bad request line {line[:60]!r}")
    method, uri_text, version = parts
    if not _TOKEN_RE.match(method):
        raise SipParseError(f"bad method {method[:20]!r}")
    if not _VERSION_RE.match(version):
        raise SipParseError(f"bad SIP version {version[:20]!r}")
    if version.upper() != "SIP/2.0":
        raise SipParseError(f"unsupported SIP version {version[:20]!r}", status_hint=505)
    uri = parse_uri(uri_text)
    if not isinstance(uri, SipUri) and uri.scheme.lower() != "tel":
        raise SipParseError(f"unsupported Request-URI scheme {uri.scheme[:20]!r}", status_hint=416)
    return SipRequest(method, uri, Headers(), b"", "SIP/2.0")


def _validate(message: SipMessage) -> None:
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if name not in message.headers:
            raise SipParseError(f"missing {name} header")
    for name in ("From", "To", "Call-ID", "CSeq"):
        if len(message.headers.get_lines(name)) > 1:
            raise SipParseError(f"more than one {name} header")
    call_id = message.call_id
    if not call_id or not _CALL_ID_RE.match(call_id):
        raise SipParseError(f"bad Call-ID {call_id[:40]!r}")
    _, method = message.cseq
    message.from_
    message.to
    message.top_via  # at least one Via value, and a well-formed one
    message.vias
    if isinstance(message, SipRequest):
        if method != message.method:
            raise SipParseError(f"CSeq method {method!r} does not match request method {message.method!r}")
        mf = message.headers.get("Max-Forwards")
        if mf is not None and (not is_digits(mf.strip()) or int(mf) > 255):
            raise SipParseError(f"bad Max-Forwards {mf[:20]!r}")
        if message.method in ("INVITE",) and "Contact" in message.headers:
            message.contact


_SALVAGE_NAMES = ("via", "from", "to", "call-id", "cseq")


def parse_for_error_response(data: Union[bytes, bytearray, memoryview]) -> Optional[SipRequest]:
    """Salvage enough of a malformed request to answer it (with 400 and the like).

    Returns:
        a ``SipRequest`` holding only the request line and Via/From/To/Call-ID/CSeq, or None when the datagram
        is a response, an ACK (never answered), too broken to identify, or lacks one of those headers.
    """
    data = bytes(data[:65536])
    text = data.decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and lines[0] == "":
        lines.pop(0)
    if not lines:
        return None
    parts = lines[0].split(" ")
    if len(parts) < 2 or not _TOKEN_RE.match(parts[0]) or parts[0].upper().startswith("SIP/"):
        return None
    method = parts[0]
    if method == "ACK":
        return None
    headers = Headers()
    for line in lines[1:200]:
        if line == "":
            break
        if line[:1] in (" ", "\t"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        cname = canonical_name(name.strip())
        if cname.lower() in _SALVAGE_NAMES:
            value = value.strip()
            if any(ord(c) < 0x20 for c in value) or "\ufffd" in value or len(value) > 1024:
                return None
            headers._items.append((cname, value))
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if name not in headers:
            return None
    cseq = (headers.get("CSeq") or "").split()
    if len(cseq) != 2 or not is_digits(cseq[0]) or len(cseq[0]) > 10 or not _TOKEN_RE.match(cseq[1]):
        return None  # a response could not echo it meaningfully
    call_id = headers.get("Call-ID") or ""
    if not _CALL_ID_RE.match(call_id):
        return None
    vias = headers.get_all("Via")
    if not vias:
        return None
    try:
        Via.parse(vias[0])
        NameAddress.parse(headers.get("To") or "")
        NameAddress.parse(headers.get("From") or "")
    except SipParseError:
        return None
    request = SipRequest.__new__(SipRequest)
    request.method = method
    request.uri = SipUri("invalid")
    request.headers = headers
    request.body = b""
    request.version = "SIP/2.0"
    return request


def make_response(
    request: SipRequest,
    status_code: int,
    reason: Optional[str] = None,
    *,
    to_tag: Optional[str] = None,
    headers: Sequence[Tuple[str, str]] = (),
    body: bytes = b"",
) -> SipResponse:
    """Build a response to ``request`` (§8.2.6): Via (all), From, To (+ tag), Call-ID and CSeq copied.

    Args:
        request: the request answered.
        status_code: 100-699; reason: default from ``REASON_PHRASES``.
        to_tag: added to To unless it already has a tag (never on 100 Trying).
        headers: extra header lines.
        body: the body (set Content-Type in ``headers``).

    Returns:
        the response.
    """
    h = Headers()
    for value in request.headers.get_lines("Via"):
        h.add("Via", value)
    h.add("From", request.headers.get("From") or "")
    to_value = request.headers.get("To") or ""
    if to_tag is not None and status_code != 100:
        try:
            to_addr = NameAddress.parse(to_value)
            if to_addr.tag is None:
                to_value = str(to_addr.with_param("tag", to_tag))
        except SipParseError:
            pass
    h.add("To", to_value)
    h.add("Call-ID", request.headers.get("Call-ID") or "")
    h.add("CSeq", request.headers.get("CSeq") or "")
    for name, value in headers:
        h.add(name, value)
    return SipResponse(status_code, reason, h, body)
