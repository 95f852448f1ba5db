"""Digest authentication as a UAS (RFC 3261 §22.1, RFC 7616 §3.3): challenging callers and checking their answers.

A listener on a public address may require every new INVITE to prove a shared password. ``DigestServer``:

- ``challenge(now, stale=False)`` makes a ``WWW-Authenticate`` value with ``qop="auth"``. The nonce is stateless:
  the time it was made and an HMAC of that time under a per-process secret, so it can be checked without storing
  anything, and it expires after ``nonce_ttl`` seconds (an expired one is answered with ``stale=true``).
- ``verify(request, now)`` checks an ``Authorization`` header: the username is known, the realm is ours, the
  ``uri`` is a SIP URI (hashed into the answer, so it cannot be changed; not compared with the Request-URI, which
  proxies rewrite and some UAs fill with the next hop), the nonce is ours and fresh, the nonce count ``nc`` is higher than any seen with that nonce (a replayed
  answer is refused; the table of counts is bounded), and the response hash is right. The verdict says whether to
  accept, challenge again (``stale`` when only the nonce aged) or refuse.

Pure functions of the request and the time: no I/O.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
import struct
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Tuple

from ..errors import SipParseError
from .digest import SUPPORTED_ALGORITHMS, _tokens, compute_response
from .message import SipRequest

__all__ = ["DigestServer", "AuthVerdict"]


class AuthVerdict(enum.Enum):
    """What ``verify`` concluded."""

    OK = "ok"  # the caller proved the password
    CHALLENGE = "challenge"  # no (usable) credentials: answer 401 with a fresh challenge
    STALE = "stale"  # right password, expired nonce: 401 with stale=true
    REJECTED = "rejected"  # wrong user or password, forged or replayed answer: 401 again (never accepted)


def _params(value: str) -> Dict[str, str]:
    """``Digest a="b", c=d`` -> {a: b, c: d}, with the challenge parser's tokenizer (``digest._tokens``).

    Raises:
        SipParseError: not a digest credentials value.
    """
    text = value.strip()
    if text[:6].lower() != "digest" or len(text) > 4096:
        raise SipParseError("not digest credentials")
    tokens = _tokens(text[6:])
    out: Dict[str, str] = {}
    i = 0
    while i < len(tokens):
        if tokens[i][0] == ",":
            i += 1
            continue
        if (tokens[i][0] != "word" or i + 2 >= len(tokens)
                or tokens[i + 1][0] != "=" or tokens[i + 2][0] not in ("word", "quoted")):
            raise SipParseError("a credentials parameter without a value")
        out[tokens[i][1].lower()] = tokens[i + 2][1]
        i += 3
    return out


class DigestServer:
    """Checks digest credentials for one realm.

    Args:
        realm: the protection realm shown to callers.
        users: username -> password.
        algorithm: ``MD5`` or ``SHA-256`` (the challenge names it).
        nonce_ttl: seconds a nonce stays valid.
        secret: the HMAC key of the nonces (random per process by default).
        max_nonces: how many nonces' counts are remembered for replay protection.
    """

    def __init__(self, realm: str, users: Mapping[str, str], *, algorithm: str = "MD5", nonce_ttl: float = 300.0,
                 secret: Optional[bytes] = None, max_nonces: int = 10000) -> None:
        algorithm = algorithm.upper()
        if algorithm not in SUPPORTED_ALGORITHMS or algorithm.endswith("-SESS"):
            raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        if not users:
            raise ValueError("at least one user is required")
        self.realm = realm
        self._users = dict(users)
        self.algorithm = algorithm
        self.nonce_ttl = nonce_ttl
        self._secret = secret or secrets.token_bytes(32)
        self._counts: "OrderedDict[str, int]" = OrderedDict()
        self._max_nonces = max_nonces

    def _nonce(self, now: float) -> str:
        stamp = struct.pack("!d", now)
        mac = hmac.new(self._secret, stamp, hashlib.sha256).digest()[:16]
        return base64.b64encode(stamp + mac).decode("ascii")

    def _nonce_age(self, nonce: str, now: float) -> Optional[float]:
        """The age of one of our nonces, or None when it is not ours."""
        try:
            raw = base64.b64decode(nonce.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            return None
        if len(raw) != 24:
            return None
        stamp, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, hmac.new(self._secret, stamp, hashlib.sha256).digest()[:16]):
            return None
        made: float = struct.unpack("!d", stamp)[0]
        return now - made

    def challenge(self, now: float, *, stale: bool = False) -> str:
        """A ``WWW-Authenticate`` value with a fresh nonce."""
        value = (f'Digest realm="{self.realm}", nonce="{self._nonce(now)}", qop="auth", '
                 f"algorithm={self.algorithm}")
        return value + (", stale=true" if stale else "")

    def verify(self, request: SipRequest, now: float) -> Tuple[AuthVerdict, Optional[str]]:
        """The verdict on the request's ``Authorization`` header, and the username when it is OK."""
        values = request.headers.get_lines("Authorization")
        if not values:
            return AuthVerdict.CHALLENGE, None
        for value in values:
            try:
                p = _params(value)
            except SipParseError:
                continue
            if p.get("realm") != self.realm:
                continue
            return self._check(p, request, now)
        return AuthVerdict.CHALLENGE, None

    def _check(self, p: Dict[str, str], request: SipRequest, now: float) -> Tuple[AuthVerdict, Optional[str]]:
        user = p.get("username", "")
        password = self._users.get(user)
        nonce = p.get("nonce", "")
        age = self._nonce_age(nonce, now)
        if password is None or age is None or age < -5:
            return AuthVerdict.REJECTED, None
        # the uri is hashed into the response; it is not required to equal the Request-URI, which proxies rewrite
        # and some UAs (sipp) fill with the next hop
        if p.get("algorithm", "MD5").upper() != self.algorithm or not p.get("uri", "").lower().startswith("sip"):
            return AuthVerdict.REJECTED, None
        qop = p.get("qop")
        nc_text = p.get("nc", "")
        if qop != "auth" or len(nc_text) != 8:
            return AuthVerdict.REJECTED, None
        try:
            nc = int(nc_text, 16)
        except ValueError:
            return AuthVerdict.REJECTED, None
        want = compute_response(algorithm=self.algorithm, username=user, realm=self.realm, password=password,
                                method=request.method, uri=p["uri"], nonce=nonce, qop=qop, nc=nc_text,
                                cnonce=p.get("cnonce", ""))
        if not hmac.compare_digest(want, p.get("response", "")):
            return AuthVerdict.REJECTED, None
        if age > self.nonce_ttl:
            return AuthVerdict.STALE, None
        if nc <= self._counts.get(nonce, 0):
            return AuthVerdict.REJECTED, None  # a replayed answer
        self._counts[nonce] = nc
        self._counts.move_to_end(nonce)
        if len(self._counts) > self._max_nonces:
            self._counts.popitem(last=False)
        return AuthVerdict.OK, user
