"""Digest access authentication for SIP (RFC 3261 §22, RFC 7616 algorithms, RFC 8760 for SIP).

What a SIP client needs and nothing else:

- ``parse_challenges(value)`` reads a ``WWW-Authenticate`` / ``Proxy-Authenticate`` value, which may hold several
  challenges (``Digest realm=..., nonce=..., Digest realm=..., algorithm=SHA-256``); quoted strings may hold
  commas and escaped quotes.
- ``challenges_of(response)`` collects every challenge of a 401 or 407, in header order, each remembering whether
  its answer goes in ``Authorization`` (401) or ``Proxy-Authorization`` (407).
- ``choose(challenges)`` keeps, per realm, the first challenge whose algorithm we support (RFC 8760 §2.4: the
  server lists its preference first).
- ``compute_response`` is the digest itself: MD5, SHA-256 and SHA-512-256, their ``-sess`` variants, ``qop=auth``
  and ``qop=auth-int`` (entity body hashed) and RFC 2069's form when the server offers no qop.
- ``DigestAuth`` is the client state: the credentials, a nonce count per nonce (``nc`` increases on every reuse)
  and the rule that stops a retry loop: a challenge for a realm we already answered with this nonce is a rejected
  password, unless the server says ``stale=true`` (the password was right, the nonce old).

The password never leaves this module except inside the hash; ``Credentials`` hides it from ``repr``.
Pure functions and one small class: no I/O.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import SipParseError
from .message import SipResponse

__all__ = [
    "Challenge",
    "Credentials",
    "DigestAuth",
    "AuthenticationRejected",
    "SUPPORTED_ALGORITHMS",
    "parse_challenges",
    "challenges_of",
    "choose",
    "compute_response",
    "authorization_value",
    "describe",
]

#: hashlib names of the algorithms we answer (RFC 7616 §3.2 names, upper case)
_HASHES: Dict[str, str] = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}


def _available(name: str) -> bool:
    try:
        hashlib.new(name)
    except ValueError:  # pragma: no cover - depends on the OpenSSL build
        return False
    return True


#: algorithms (with their ``-sess`` forms) this build can answer
SUPPORTED_ALGORITHMS: Tuple[str, ...] = tuple(
    alg + sess for alg, h in _HASHES.items() if _available(h) for sess in ("", "-SESS")
)


class AuthenticationRejected(Exception):
    """The server challenged credentials it was already given (a wrong password or user), or offered no challenge
    we can answer. ``status_code`` is the 401/407 that said so."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    """A username and password for digest authentication. ``repr`` never shows the password."""

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.username:
            raise ValueError("an authentication username is required")


@dataclass(frozen=True)
class Challenge:
    """One digest challenge.

    Attributes:
        realm, nonce, opaque: as the server sent them (opaque is echoed back unchanged).
        algorithm: upper case, ``MD5`` when absent (RFC 7616 §3.3).
        qop: the offered qop options (``auth``, ``auth-int``), empty for an RFC 2069 server.
        stale: the previous nonce expired but the credentials were right (retry with this nonce).
        userhash: the server wants the username hashed (RFC 7616 §3.4.4).
        proxy: from ``Proxy-Authenticate`` (answer in ``Proxy-Authorization``).
    """

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: Tuple[str, ...] = ()
    opaque: Optional[str] = None
    stale: bool = False
    userhash: bool = False
    proxy: bool = False

    @property
    def supported(self) -> bool:
        """Whether we can answer it: a known algorithm and, when qop is offered, auth or auth-int among it."""
        if self.algorithm not in SUPPORTED_ALGORITHMS:
            return False
        return not self.qop or "auth" in self.qop or "auth-int" in self.qop

    @property
    def header_name(self) -> str:
        """``Proxy-Authorization`` or ``Authorization``: where the answer goes."""
        return "Proxy-Authorization" if self.proxy else "Authorization"


# -- parsing ------------------------------------------------------------------------------------------------------
def _tokens(value: str) -> List[Tuple[str, str]]:
    """Split ``value`` into ('word', text), ('quoted', text), ('=', ''), (',', '') tokens.

    Raises:
        SipParseError: an unterminated quoted string.
    """
    out: List[Tuple[str, str]] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c in " \t\r\n":
            i += 1
        elif c in "=,":
            out.append((c, ""))
            i += 1
        elif c == '"':
            i += 1
            chars: List[str] = []
            while True:
                if i >= n:
                    raise SipParseError("unterminated quoted string in an authentication challenge")
                if value[i] == "\\" and i + 1 < n:
                    chars.append(value[i + 1])
                    i += 2
                elif value[i] == '"':
                    i += 1
                    break
                else:
                    chars.append(value[i])
                    i += 1
            out.append(("quoted", "".join(chars)))
        else:
            j = i
            while j < n and value[j] not in " \t\r\n=,\"":
                j += 1
            out.append(("word", value[i:j]))
            i = j
    return out


def parse_challenges(value: str, *, proxy: bool = False) -> List[Challenge]:
    """Every digest challenge in one ``WWW-Authenticate`` / ``Proxy-Authenticate`` value, in order.

    Challenges of other schemes (``Basic``...) are skipped. A digest challenge without realm or nonce is an error.

    Raises:
        SipParseError: malformed text, or a digest challenge without ``realm`` or ``nonce``.
    """
    tokens = _tokens(value)
    groups: List[Tuple[str, Dict[str, str]]] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == ",":
            i += 1
            continue
        if kind != "word":
            raise SipParseError(f"expected an authentication scheme, found {text!r}")
        nxt = tokens[i + 1][0] if i + 1 < len(tokens) else None
        if nxt == "=":  # an auth-param of the current challenge
            if not groups:
                raise SipParseError("an authentication parameter before any scheme")
            if i + 2 >= len(tokens) or tokens[i + 2][0] not in ("word", "quoted"):
                raise SipParseError(f"authentication parameter {text!r} has no value")
            groups[-1][1][text.lower()] = tokens[i + 2][1]
            i += 3
        else:  # a new challenge: scheme, then its first auth-param
            groups.append((text, {}))
            i += 1
    result: List[Challenge] = []
    for scheme, params in groups:
        if scheme.lower() != "digest":
            continue
        if "realm" not in params or "nonce" not in params:
            raise SipParseError("a digest challenge without realm or nonce")
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        result.append(Challenge(
            realm=params["realm"], nonce=params["nonce"], algorithm=params.get("algorithm", "MD5").upper(),
            qop=qop, opaque=params.get("opaque"), stale=params.get("stale", "").lower() == "true",
            userhash=params.get("userhash", "").lower() == "true", proxy=proxy,
        ))
    return result


def challenges_of(response: SipResponse) -> List[Challenge]:
    """Every digest challenge of a 401 (``WWW-Authenticate``) or 407 (``Proxy-Authenticate``), in header order.

    Raises:
        SipParseError: a malformed challenge.
    """
    out: List[Challenge] = []
    for name, proxy in (("WWW-Authenticate", False), ("Proxy-Authenticate", True)):
        for line in response.headers.get_lines(name):
            out.extend(parse_challenges(line, proxy=proxy))
    return out


def choose(challenges: Sequence[Challenge]) -> List[Challenge]:
    """Per (realm, header), the first challenge we can answer (RFC 8760 §2.4: the server's preference first)."""
    picked: Dict[Tuple[str, bool], Challenge] = {}
    for ch in challenges:
        key = (ch.realm, ch.proxy)
        if key not in picked and ch.supported:
            picked[key] = ch
    return list(picked.values())


# -- the digest ---------------------------------------------------------------------------------------------------
def _h(algorithm: str, text: str) -> str:
    base = algorithm[:-5] if algorithm.endswith("-SESS") else algorithm
    return hashlib.new(_HASHES[base], text.encode("utf-8")).hexdigest()


def _h_bytes(algorithm: str, data: bytes) -> str:
    base = algorithm[:-5] if algorithm.endswith("-SESS") else algorithm
    return hashlib.new(_HASHES[base], data).hexdigest()


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: Optional[str] = None,
    nc: str = "00000001",
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """The ``response`` value (RFC 7616 §3.4.1, RFC 2617 §3.2.2 for MD5, RFC 2069 when ``qop`` is None).

    Raises:
        ValueError: an algorithm we do not support, or a qop other than auth / auth-int.
    """
    algorithm = algorithm.upper()
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    if algorithm.endswith("-SESS"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop in (None, "auth"):
        ha2 = _h(algorithm, f"{method}:{uri}")
    elif qop == "auth-int":
        ha2 = _h(algorithm, f"{method}:{uri}:{_h_bytes(algorithm, body)}")
    else:
        raise ValueError(f"unsupported qop {qop!r}")
    if qop is None:
        return _h(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization_value(
    challenge: Challenge,
    credentials: Credentials,
    method: str,
    uri: str,
    *,
    nc: int = 1,
    cnonce: Optional[str] = None,
    body: bytes = b"",
) -> str:
    """The ``Authorization`` / ``Proxy-Authorization`` value answering ``challenge`` for one request.

    ``qop=auth`` is chosen when offered, else ``auth-int`` (hashing ``body``); without a qop the RFC 2069 form
    is sent (no nc, no cnonce).

    Raises:
        ValueError: a challenge we cannot answer.
    """
    if not challenge.supported:
        raise ValueError(f"cannot answer a digest challenge with algorithm {challenge.algorithm}")
    qop: Optional[str] = None
    if challenge.qop:
        qop = "auth" if "auth" in challenge.qop else "auth-int"
    cnonce = cnonce if cnonce is not None else secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    username = credentials.username
    if challenge.userhash:
        username = _h(challenge.algorithm, f"{credentials.username}:{challenge.realm}")
    response = compute_response(
        algorithm=challenge.algorithm, username=credentials.username, realm=challenge.realm,
        password=credentials.password, method=method, uri=uri, nonce=challenge.nonce, qop=qop, nc=nc_text,
        cnonce=cnonce, body=body,
    )
    parts = [
        f"username={_quote(username)}", f"realm={_quote(challenge.realm)}", f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}", f"response={_quote(response)}", f"algorithm={challenge.algorithm}",
    ]
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={_quote(cnonce)}"]
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


class DigestAuth:
    """A client's digest state across requests: credentials, nonce counts, and the loop guard.

    ``answer(response, method, uri, chain, body)`` returns the header lines for the retried request, or raises
    ``AuthenticationRejected`` when retrying cannot help: no credentials, no challenge we support, or a challenge
    for a realm this request chain already answered (a wrong password) without ``stale=true``. Each request chain
    (one REGISTER and its retries, one INVITE and its retries) passes its own ``chain`` dict, so one rejection
    never poisons the next request, and a retry carries the answers to every realm of the chain (RFC 3261 §22.3:
    a 401 from the callee after a 407 from the proxy is answered with both).
    """

    def __init__(self, credentials: Optional[Credentials]) -> None:
        self.credentials = credentials
        self._nc: Dict[str, int] = {}

    def answer(
        self,
        response: SipResponse,
        method: str,
        uri: str,
        chain: Dict[Tuple[str, bool], Challenge],
        body: bytes = b"",
    ) -> List[Tuple[str, str]]:
        """Header lines (name, value) for the retried request: one per realm the chain has been challenged for.

        Args:
            response: the 401 or 407.
            method, uri, body: of the request to send again (``uri``: its Request-URI as text).
            chain: (realm, proxy) -> the challenge answered in this request chain; updated.

        Raises:
            AuthenticationRejected: see the class docstring.
        """
        code = response.status_code
        if self.credentials is None:
            raise AuthenticationRejected(code, f"{code} {response.reason}: the server wants credentials and none "
                                               "were given")
        try:
            offered = challenges_of(response)
        except SipParseError as exc:
            raise AuthenticationRejected(code, f"{code} {response.reason}: malformed challenge ({exc})") from None
        usable = choose(offered)
        if not usable:
            algs = ", ".join(sorted({c.algorithm for c in offered})) or "none"
            raise AuthenticationRejected(code, f"{code} {response.reason}: no digest challenge we can answer "
                                               f"(algorithms offered: {algs})")
        for ch in usable:
            key = (ch.realm, ch.proxy)
            if key in chain and not ch.stale:
                raise AuthenticationRejected(
                    code, f"{code} {response.reason}: credentials for {self.credentials.username!r} rejected "
                          f"(realm {ch.realm!r})")
            chain[key] = ch
        return [(ch.header_name, self._value(ch, method, uri, body)) for ch in chain.values()]

    def _value(self, ch: Challenge, method: str, uri: str, body: bytes) -> str:
        assert self.credentials is not None
        nc = self._nc.get(ch.nonce, 0) + 1
        if len(self._nc) > 64:
            self._nc.clear()
        self._nc[ch.nonce] = nc
        return authorization_value(ch, self.credentials, method, uri, nc=nc, body=body)


def describe(response: SipResponse) -> str:
    """A log-friendly summary of a response's usable challenges: ``realm 'example.test' (SHA-256)``."""
    try:
        picked = choose(challenges_of(response))
    except SipParseError:
        return "a malformed challenge"
    return ", ".join(f"realm {c.realm!r} ({c.algorithm})" for c in picked) or "no usable challenge"
