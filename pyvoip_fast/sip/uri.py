"""SIP URIs (RFC 3261 §19.1) and the name-addr / addr-spec forms of From, To and Contact (§20.10, §25.1).

Strategy
--------
A hand-written splitter rather than one big regular expression: ``sip:`` / ``sips:`` URIs are cut at the last
``@`` of the part before any ``?``-headers (the user part may itself contain ``;`` ``?`` and ``/``), then the
host part is split into ``host[:port]``, ``;params`` and ``?headers``. IPv6 references keep their brackets on
the wire and lose them in ``SipUri.host``. Other schemes (``tel:``, ``urn:``...) are kept opaque as
``AbsoluteUri``. Every malformed input raises ``SipParseError`` with a specific message.

``NameAddress`` parses ``"Display" <uri>;params``, ``Display <uri>;params`` and the bare addr-spec form
``uri;params`` where (§20, "if the URI contains a comma, question mark or semicolon, the URI MUST be enclosed in
angle brackets") everything after the first ``;`` belongs to the header, not to the URI.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from typing import Any, Callable, Dict, Generic, List, Optional, Sequence, Tuple, TypeVar, Union

from ..errors import SipParseError
from .abnf import TOKEN_RE as _TOKEN_RE
from .abnf import is_digits

logger = logging.getLogger(__name__)

__all__ = ["SipUri", "AbsoluteUri", "NameAddress", "Uri", "parse_uri", "parse_params", "format_params", "format_host"]

Params = Tuple[Tuple[str, Optional[str]], ...]
_T = TypeVar("_T")

_BAD_URI_CHARS_RE = re.compile(r"[\x00-\x20<>\"\x7f]")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.?$")
_PARAM_VALUE_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~\[\]/:&$]*$")
_DISPLAY_TOKENS_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~ \t]*$")

#: Header texts up to this long have what their parse found remembered (the most recent ``REMEMBERED`` of each
#: kind, as tuples of strings): a call's From, To, Contact and Request-URI come back in every message of the call
#: (INVITE, its responses, ACK, BYE), and a text seen again costs a lookup and a new object instead of a parse.
#: Every parse still makes objects of its own; malformed texts are not remembered (they raise every time).
REMEMBERED_LENGTH = 256
REMEMBERED = 256


def format_host(host: str) -> str:
    """``host`` ready for a URI or Via: IPv6 literals get brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


#: hosts already found valid (a host seen once is usually seen in every message of its calls); bounded: emptied
#: when full, so a flood of distinct hosts costs the checks it always cost and no memory
_VALID_HOSTS: Dict[str, str] = {}
_VALID_HOSTS_MAX = 512


def _check_host(host: str, context: str) -> str:
    """``host`` checked (a hostname, an IPv4 address or a bracketed IPv6 reference); without brackets."""
    known = _VALID_HOSTS.get(host)
    if known is not None:
        return known
    checked = _check_host_text(host, context)
    if len(_VALID_HOSTS) >= _VALID_HOSTS_MAX:
        _VALID_HOSTS.clear()
    _VALID_HOSTS[host] = checked
    return checked


def _check_host_text(host: str, context: str) -> str:
    if not host:
        raise SipParseError(f"{context}: empty host")
    if host.startswith("["):
        if not host.endswith("]"):
            raise SipParseError(f"{context}: unterminated IPv6 reference {host!r}")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise SipParseError(f"{context}: bad IPv6 address {host!r}") from None
        return host[1:-1]
    if not _HOSTNAME_RE.match(host):
        raise SipParseError(f"{context}: bad host {host!r}")
    if is_digits(host.replace(".", "")):
        octets = host.split(".")
        if len(octets) != 4 or any(not o or len(o) > 3 or int(o) > 255 for o in octets):
            raise SipParseError(f"{context}: bad IPv4 address {host!r}")
    return host


def split_hostport(text: str, context: str) -> Tuple[str, Optional[int]]:
    """Split ``host[:port]`` (IPv6 in brackets) into (host without brackets, port or None).

    Raises:
        SipParseError: bad host or port.
    """
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"{context}: unterminated IPv6 reference {text!r}")
        host_part, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SipParseError(f"{context}: junk after IPv6 reference {text!r}")
        port_text = rest[1:] if rest else None
    else:
        host_part, sep, port_text_ = text.partition(":")
        port_text = port_text_ if sep else None
    host = _check_host(host_part, context)
    port: Optional[int] = None
    if port_text is not None:
        if not is_digits(port_text) or len(port_text) > 5 or int(port_text) > 65535:
            raise SipParseError(f"{context}: bad port {port_text!r}")
        port = int(port_text)
    return host, port


def _split_outside_quotes(text: str, sep: str) -> List[str]:
    if '"' not in text:
        return text.split(sep)
    parts: List[str] = []
    buf: List[str] = []
    in_quotes = False
    escape = False
    for ch in text:
        if in_quotes:
            buf.append(ch)
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
            buf.append(ch)
        elif ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if in_quotes:
        raise SipParseError(f"unterminated quoted string in {text[:60]!r}")
    parts.append("".join(buf))
    return parts


def parse_params(text: str, context: str) -> Params:
    """Parse ``;name[=value]`` pairs (``text`` without the leading ``;``). Quoted values keep their quotes.

    Raises:
        SipParseError: an empty or malformed parameter.
    """
    result: List[Tuple[str, Optional[str]]] = []
    if not text.strip():
        return ()
    for part in _split_outside_quotes(text, ";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not name or not _TOKEN_RE.match(name):
            raise SipParseError(f"{context}: bad parameter {part.strip()[:40]!r}")
        if sep:
            value = value.strip()
            if value.startswith('"'):
                if len(value) < 2 or not value.endswith('"'):
                    raise SipParseError(f"{context}: bad quoted parameter value {value[:40]!r}")
            elif not _PARAM_VALUE_RE.match(value):
                raise SipParseError(f"{context}: bad value for parameter {name!r}: {value[:40]!r}")
            result.append((name, value))
        else:
            result.append((name, None))
    return tuple(result)


def format_params(params: Sequence[Tuple[str, Optional[str]]]) -> str:
    """``;a=b;c`` from ``(("a", "b"), ("c", None))``."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def _param(params: Params, name: str) -> Optional[str]:
    lname = name.lower()
    for k, v in params:
        if k.lower() == lname:
            return "" if v is None else v
    return None


class SipUri:
    """A ``sip:`` or ``sips:`` URI.

    Attributes:
        scheme: ``sip`` or ``sips``; user / password: the userinfo (None when absent); host: without IPv6
        brackets; port: None when absent; params: URI parameters in order; headers: the ``?...`` part, raw.
    """

    __slots__ = ("scheme", "user", "password", "host", "port", "params", "headers")

    def __init__(
        self,
        host: str,
        port: Optional[int] = None,
        *,
        user: Optional[str] = None,
        password: Optional[str] = None,
        scheme: str = "sip",
        params: Params = (),
        headers: Optional[str] = None,
    ) -> None:
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        self.port = port
        self.params = tuple(params)
        self.headers = headers

    @classmethod
    def parse(cls, text: str) -> "SipUri":
        """Parse a ``sip:``/``sips:`` URI.

        Raises:
            SipParseError: not a SIP URI, or a malformed part (status hint 416 for another scheme).
        """
        uri = parse_uri(text)
        if not isinstance(uri, SipUri):
            raise SipParseError(f"not a SIP URI: {text[:60]!r}", status_hint=416)
        return uri

    def param(self, name: str) -> Optional[str]:
        """Value of URI parameter ``name`` (``""`` for a flag), None when absent."""
        return _param(self.params, name)

    @property
    def host_port(self) -> str:
        """``host[:port]`` with IPv6 brackets."""
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        tail = f"?{self.headers}" if self.headers is not None else ""
        return f"{self.scheme}:{userinfo}{self.host_port}{format_params(self.params)}{tail}"

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipUri):
            return NotImplemented
        return (
            self.scheme.lower() == other.scheme.lower()
            and self.user == other.user
            and self.password == other.password
            and self.host.lower() == other.host.lower()
            and self.port == other.port
            and {k.lower(): v for k, v in self.params} == {k.lower(): v for k, v in other.params}
        )

    def __hash__(self) -> int:
        return hash((self.scheme.lower(), self.user, self.host.lower(), self.port))


class AbsoluteUri:
    """A URI of another scheme (``tel:``, ``urn:``...), kept as text."""

    __slots__ = ("scheme", "rest")

    def __init__(self, scheme: str, rest: str) -> None:
        self.scheme = scheme
        self.rest = rest

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"

    def __repr__(self) -> str:
        return f"AbsoluteUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteUri):
            return NotImplemented
        return self.scheme.lower() == other.scheme.lower() and self.rest == other.rest

    def __hash__(self) -> int:
        return hash((self.scheme.lower(), self.rest))


Uri = Union[SipUri, AbsoluteUri]


def parse_uri(text: str) -> Uri:
    """Parse any URI: ``SipUri`` for sip/sips, ``AbsoluteUri`` otherwise.

    Raises:
        SipParseError: malformed URI.
    """
    return _URIS(text)


class Remembered(Generic[_T]):
    """``parse`` that remembers the fields of the last ``REMEMBERED`` texts it parsed (texts up to
    ``REMEMBERED_LENGTH``; see the notes there) and builds a new object from them every time.

    Args:
        parse: text to object; raises ``SipParseError`` (nothing is remembered then).
        fields: an object to a tuple of immutable values.
        build: such a tuple to a new object.
    """

    def __init__(self, parse: Callable[[str], _T], fields: Callable[[_T], Tuple[Any, ...]],
                 build: Callable[[Tuple[Any, ...]], _T]) -> None:
        self.parse = parse
        self.build = build
        self.fields = functools.lru_cache(maxsize=REMEMBERED)(lambda text: fields(parse(text)))

    def __call__(self, text: str) -> _T:
        if len(text) > REMEMBERED_LENGTH:
            return self.parse(text)
        return self.build(self.fields(text))


def _fields_of(uri: Uri) -> Tuple[Any, ...]:
    if isinstance(uri, SipUri):
        return (uri.scheme, uri.user, uri.password, uri.host, uri.port, uri.params, uri.headers)
    return (uri.scheme, uri.rest)


def _uri_from(fields: Tuple[Any, ...]) -> Uri:
    """A new URI object with ``fields`` (``_fields_of``), its host already without brackets."""
    if len(fields) == 2:
        return AbsoluteUri(fields[0], fields[1])
    uri = SipUri.__new__(SipUri)
    uri.scheme, uri.user, uri.password, uri.host, uri.port, uri.params, uri.headers = fields
    return uri


def _parse_uri(text: str) -> Uri:
    text = text.strip()
    scheme, sep, rest = text.partition(":")
    if not sep or not _SCHEME_RE.match(scheme):
        raise SipParseError(f"URI without a scheme: {text[:60]!r}")
    if _BAD_URI_CHARS_RE.search(rest):
        raise SipParseError(f"URI contains a space, quote or angle bracket: {text[:60]!r}")
    if scheme.lower() not in ("sip", "sips"):
        if not rest:
            raise SipParseError(f"empty URI after scheme {scheme!r}")
        return AbsoluteUri(scheme, rest)
    context = "SIP URI"
    before_headers, qmark, headers = rest.partition("?")
    at = before_headers.rfind("@")
    user: Optional[str] = None
    password: Optional[str] = None
    hostpart = before_headers
    if at >= 0:
        userinfo = before_headers[:at]
        hostpart = before_headers[at + 1 :]
        user, psep, pw = userinfo.partition(":")
        if not user:
            raise SipParseError(f"{context}: empty user part in {text[:60]!r}")
        password = pw if psep else None
    elif qmark and "@" in headers:
        # the user part may contain '?': look for '@' across the whole text
        at = rest.rfind("@")
        userinfo, hostpart_full = rest[:at], rest[at + 1 :]
        user = userinfo
        hostpart, qmark, headers = hostpart_full.partition("?")
    hostport, _, params_text = hostpart.partition(";")
    host, port = split_hostport(hostport, context)
    params = parse_params(params_text, context)
    return SipUri(
        host,
        port,
        user=user,
        password=password,
        scheme=scheme.lower(),
        params=params,
        headers=headers if qmark else None,
    )


def _unquote(text: str) -> str:
    out = []
    escape = False
    for ch in text:
        if escape:
            out.append(ch)
            escape = False
        elif ch == "\\":
            escape = True
        else:
            out.append(ch)
    return "".join(out)


class NameAddress:
    """The value of a From, To, Contact, Route or Record-Route header: ``[display] <uri>;params``.

    Attributes:
        uri: the URI; display_name: None when absent; params: header parameters (``tag``, ``expires``...).
    """

    __slots__ = ("display_name", "uri", "params")

    def __init__(self, uri: Uri, *, display_name: Optional[str] = None, params: Params = ()) -> None:
        self.uri = uri
        self.display_name = display_name
        self.params = tuple(params)

    @classmethod
    def parse(cls, text: str) -> "NameAddress":
        """Parse name-addr or addr-spec with parameters.

        Raises:
            SipParseError: malformed value.
        """
        return cls._parse(text) if cls is not NameAddress else _NAME_ADDRESSES(text)

    @classmethod
    def _parse(cls, text: str) -> "NameAddress":
        text = text.strip()
        if not text:
            raise SipParseError("empty address")
        display: Optional[str] = None
        if text.startswith('"'):
            i = 1
            escape = False
            while i < len(text):
                ch = text[i]
                if escape:
                    escape = False
                elif ch == "\\":
                    escape = True
                elif ch == '"':
                    break
                i += 1
            else:
                raise SipParseError(f"unterminated display name in {text[:60]!r}")
            display = _unquote(text[1:i])
            rest = text[i + 1 :].lstrip()
            if not rest.startswith("<"):
                raise SipParseError(f"quoted display name not followed by <uri> in {text[:60]!r}")
        else:
            lt = text.find("<")
            if lt >= 0:
                name = text[:lt].strip()
                if not _DISPLAY_TOKENS_RE.match(name):
                    raise SipParseError(f"bad display name {name[:40]!r}")
                display = name or None
                rest = text[lt:]
            else:
                rest = text
        if rest.startswith("<"):
            gt = rest.find(">")
            if gt < 0:
                raise SipParseError(f"unterminated <uri> in {text[:60]!r}")
            uri = parse_uri(rest[1:gt])
            tail = rest[gt + 1 :].strip()
            if tail and not tail.startswith(";"):
                raise SipParseError(f"junk after <uri>: {tail[:40]!r}")
            params = parse_params(tail[1:], "address parameters") if tail else ()
        else:
            uri_text, sep, params_text = rest.partition(";")
            if any(c in uri_text for c in ",?"):
                raise SipParseError(f"addr-spec with ',' or '?' must be in angle brackets: {text[:60]!r}")
            uri = parse_uri(uri_text)
            params = parse_params(params_text, "address parameters") if sep else ()
        return cls(uri, display_name=display, params=params)

    def param(self, name: str) -> Optional[str]:
        """Value of header parameter ``name`` (``""`` for a flag), None when absent."""
        return _param(self.params, name)

    @property
    def tag(self) -> Optional[str]:
        """The ``tag`` parameter (dialog identification, §19.3)."""
        return self.param("tag")

    def with_param(self, name: str, value: Optional[str]) -> "NameAddress":
        """A copy with ``name`` set to ``value`` (replacing an existing one)."""
        params = tuple(p for p in self.params if p[0].lower() != name.lower()) + ((name, value),)
        return NameAddress(self.uri, display_name=self.display_name, params=params)

    def __str__(self) -> str:
        display = ""
        if self.display_name is not None:
            escaped = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
            display = f'"{escaped}" '
        return f"{display}<{self.uri}>{format_params(self.params)}"

    def __repr__(self) -> str:
        return f"NameAddress({str(self)!r})"


def _name_address_from(fields: Tuple[Any, ...]) -> NameAddress:
    found = NameAddress.__new__(NameAddress)
    found.display_name, found.uri, found.params = fields[0], _uri_from(fields[1]), fields[2]
    return found


_URIS = Remembered(_parse_uri, _fields_of, _uri_from)
_NAME_ADDRESSES = Remembered(NameAddress._parse, lambda a: (a.display_name, _fields_of(a.uri), a.params),
                             _name_address_from)
