"""``message/sipfrag`` bodies (RFC 3420) as a transfer's NOTIFYs carry them (RFC 3515 §2.4.5).

The transferee reports the progress of its call to the transfer target with the status line of each response it
got, ``SIP/2.0 180 Ringing`` then ``SIP/2.0 200 OK``; headers may follow and are ignored here. Bytes from the
network: anything that is not a status line is a ``SipParseError`` that says what is wrong, never another
exception.
"""

from __future__ import annotations

from typing import Tuple

from ..errors import SipParseError
from .abnf import is_digits

__all__ = ["parse_sipfrag", "make_sipfrag"]

_MAX_LINE = 512


def parse_sipfrag(body: bytes) -> Tuple[int, str]:
    """The status code and reason of a sipfrag body's status line.

    Raises:
        SipParseError: empty, not text, not ``SIP/2.0 <3 digits> <reason>``, or a code outside 100-699.
    """
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise SipParseError("sipfrag body must be bytes")
    raw = bytes(body)
    line = raw.split(b"\n", 1)[0].rstrip(b"\r")
    if not line.strip():
        raise SipParseError("sipfrag body is empty")
    if len(line) > _MAX_LINE:
        raise SipParseError(f"sipfrag status line of {len(line)} bytes is too long")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("sipfrag status line is not UTF-8 text") from None
    parts = text.split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0":
        raise SipParseError(f"sipfrag does not start with a SIP/2.0 status line: {text[:40]!r}")
    code = parts[1]
    if len(code) != 3 or not is_digits(code) or not 100 <= int(code) <= 699:
        raise SipParseError(f"sipfrag status code {code[:10]!r} is not 100-699")
    reason = parts[2].strip() if len(parts) > 2 else ""
    return int(code), reason


def make_sipfrag(status_code: int, reason: str) -> bytes:
    """A sipfrag body holding the status line ``SIP/2.0 <status_code> <reason>``.

    Raises:
        ValueError: a code outside 100-699, or a reason with a line break.
    """
    if not isinstance(status_code, int) or not 100 <= status_code <= 699:
        raise ValueError(f"status code must be 100-699, not {status_code!r}")
    if "\r" in reason or "\n" in reason:
        raise ValueError("a reason phrase is one line")
    return f"SIP/2.0 {status_code} {reason}\r\n".encode("utf-8")
