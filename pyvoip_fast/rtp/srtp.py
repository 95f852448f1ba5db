"""SRTP (RFC 3711) with SDES keys (RFC 4568): one call's protection contexts, over libsrtp (``pylibsrtp``).

- ``SUITES``: the crypto suites we offer and accept, in preference order: ``AES_CM_128_HMAC_SHA1_80`` and
  ``AES_CM_128_HMAC_SHA1_32`` (RFC 4568 §6.2), each with a 30-byte master key and salt.
- ``new_key()`` makes a random master key + salt; ``inline(key)`` / ``parse_inline(text)`` write and read the
  ``inline:`` key parameter of an ``a=crypto`` line (base64; lifetime and MKI parameters are refused, since
  we do not implement re-keying).
- ``SrtpContext(suite, tx_key, rx_key)`` protects what we send (after the RTP header is stamped) and unprotects
  what we receive (before parsing), for RTP and RTCP. A packet that fails authentication or replay checks raises
  ``SrtpError`` and is dropped by the caller; it never reaches the parsers.

libsrtp is C; ``pylibsrtp`` is its maintained binding (the one aiortc uses). It is imported on first use, so a
build without it still runs every plain-RTP call.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any, Dict, Tuple

from ..errors import PyVoipError

__all__ = ["SUITES", "SrtpContext", "SrtpError", "new_key", "inline", "parse_inline", "KEY_LENGTH"]

#: master key (16) + master salt (14) bytes
KEY_LENGTH = 30
#: suite name -> authentication tag length in bytes, in preference order
SUITES: Dict[str, int] = {"AES_CM_128_HMAC_SHA1_80": 10, "AES_CM_128_HMAC_SHA1_32": 4}


class SrtpError(PyVoipError):
    """An SRTP/SRTCP packet that failed authentication or the replay check, or a bad key."""


def new_key() -> bytes:
    """A random 30-byte master key and salt."""
    return os.urandom(KEY_LENGTH)


def inline(key: bytes) -> str:
    """The ``inline:`` key parameter of an ``a=crypto`` line."""
    return "inline:" + base64.b64encode(key).decode("ascii")


def parse_inline(text: str) -> bytes:
    """The master key and salt of an ``inline:`` key parameter.

    Raises:
        SrtpError: not ``inline:``, bad base64, a key of the wrong length, or lifetime/MKI parameters.
    """
    text = text.strip()
    if not text.startswith("inline:"):
        raise SrtpError(f"unsupported key method in {text[:40]!r} (only inline: keys)")
    value = text[7:]
    if "|" in value:
        raise SrtpError("key lifetime and MKI parameters are not supported")
    try:
        key = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise SrtpError("the SRTP key is not valid base64") from None
    if len(key) != KEY_LENGTH:
        raise SrtpError(f"the SRTP master key and salt must be {KEY_LENGTH} bytes, not {len(key)}")
    return key


def _profile(suite: str) -> Tuple[Any, Any]:
    try:
        import pylibsrtp
    except ImportError:  # pragma: no cover - a dependency of the package
        raise SrtpError("SRTP needs the pylibsrtp package (pip install pylibsrtp)") from None
    profiles = {"AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
                "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32}
    if suite not in profiles:
        raise SrtpError(f"unsupported SRTP crypto suite {suite!r}")
    return pylibsrtp, profiles[suite]


class SrtpContext:
    """Protection of one call's media: ``tx_key`` for what we send, ``rx_key`` for what the peer sends.

    Raises:
        SrtpError: an unsupported suite or a key that is not 30 bytes.
    """

    def __init__(self, suite: str, tx_key: bytes, rx_key: bytes) -> None:
        if len(tx_key) != KEY_LENGTH or len(rx_key) != KEY_LENGTH:
            raise SrtpError(f"SRTP master key and salt must be {KEY_LENGTH} bytes")
        lib, profile = _profile(suite)
        self.suite = suite
        self.keys = (suite, bytes(tx_key), bytes(rx_key))
        self._tx = lib.Session(policy=lib.Policy(key=tx_key, ssrc_type=lib.Policy.SSRC_ANY_OUTBOUND,
                                                 srtp_profile=profile))
        self._rx = lib.Session(policy=lib.Policy(key=rx_key, ssrc_type=lib.Policy.SSRC_ANY_INBOUND,
                                                 srtp_profile=profile))
        self._error: Any = lib.Error
        self.rejected = 0

    def protect(self, packet: bytes) -> bytes:
        """SRTP of a stamped RTP packet."""
        return bytes(self._tx.protect(bytes(packet)))

    def protect_rtcp(self, packet: bytes) -> bytes:
        """SRTCP of a compound RTCP packet."""
        return bytes(self._tx.protect_rtcp(bytes(packet)))

    def unprotect(self, packet: bytes) -> bytes:
        """The RTP packet inside an SRTP one.

        Raises:
            SrtpError: authentication or replay check failed, or the packet is too short.
        """
        try:
            return bytes(self._rx.unprotect(bytes(packet)))
        except self._error as exc:
            self.rejected += 1
            raise SrtpError(f"SRTP packet rejected: {exc}") from None

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        """The RTCP compound inside an SRTCP packet.

        Raises:
            SrtpError: authentication or replay check failed, or the packet is too short.
        """
        try:
            return bytes(self._rx.unprotect_rtcp(bytes(packet)))
        except self._error as exc:
            self.rejected += 1
            raise SrtpError(f"SRTCP packet rejected: {exc}") from None
