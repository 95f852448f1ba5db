"""SIP over a byte stream (TCP, TLS): cutting messages out of it, and which transport a message travels on.

``StreamFramer`` is sans-IO: the adapter feeds it whatever the connection delivered, in any pieces, and gets back
whole messages (RFC 3261 §18.3: the header ends at the first empty line, and ``Content-Length``, mandatory on a
stream, says how many body bytes follow) and keep-alives (RFC 5626 §4.4.1: a double CRLF is a ping that wants
a single CRLF back as the pong; a lone CRLF between messages is a pong). A stream that breaks these rules
cannot be resynchronised: ``feed`` raises ``SipFramingError`` and the adapter closes the connection.

``sent_transport(data)`` reads the transport out of the top ``Via`` of a message we are about to send: for a
request it is the transport we chose (RFC 3261 §18.1.1), for a response the one the request came over (§18.2.2),
so the adapter needs no other bookkeeping to pick the socket.
"""

from __future__ import annotations

import re
from typing import List, Optional, Union

from ..errors import SipParseError
from .abnf import is_digits

__all__ = ["StreamFramer", "SipFramingError", "PING", "PONG", "KEEPALIVE_PING", "sent_transport"]

#: what ``feed`` returns for a received keep-alive ping (answer it with ``PONG``) and pong
PING = "ping"
PONG = "pong"
#: the bytes of a keep-alive ping and of its pong (RFC 5626 §4.4.1)
KEEPALIVE_PING = b"\r\n\r\n"
KEEPALIVE_PONG = b"\r\n"

_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\S*)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_VIA = re.compile(rb"^(?:via|v)[ \t]*:[ \t]*SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([A-Za-z]+)", re.IGNORECASE | re.MULTILINE)


class SipFramingError(SipParseError):
    """The byte stream cannot be cut into SIP messages (no or bad Content-Length, a header or body too large)."""


class StreamFramer:
    """Cuts SIP messages and keep-alives out of one connection's byte stream.

    Args:
        max_header: the largest header section accepted (bytes up to the empty line).
        max_body: the largest ``Content-Length`` accepted.
    """

    def __init__(self, *, max_header: int = 16384, max_body: int = 65536) -> None:
        self.max_header = max_header
        self.max_body = max_body
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that are not yet part of a whole message."""
        return len(self._buf)

    def feed(self, data: bytes) -> List[Union[bytes, str]]:
        """Add received bytes; return every whole message (bytes) and keep-alive (``PING`` / ``PONG``) now complete.

        Raises:
            SipFramingError: the stream is broken (close the connection); the messages before the error are lost
                only if they were in the same ``feed`` call, so feed per read.
        """
        self._buf += data
        out: List[Union[bytes, str]] = []
        while self._buf:
            item = self._next()
            if item is None:
                break
            out.append(item)
        return out

    def _next(self) -> Optional[Union[bytes, str]]:
        buf = self._buf
        if bytes(buf[:1]) in (b"\r", b"\n"):
            if buf.startswith(KEEPALIVE_PING):
                del buf[:4]
                return PING
            if buf.startswith(b"\r\n"):
                if len(buf) == 3 and buf[2:3] == b"\r":
                    return None  # maybe a ping whose last byte is still on its way
                del buf[:2]
                return PONG
            if buf == b"\r":
                return None
            del buf[:1]  # a bare LF (or CR) between messages: tolerated, skipped
            return self._next() if buf else None
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self.max_header:
                raise SipFramingError(f"no end of the header within {self.max_header} bytes")
            return None
        if end > self.max_header:
            raise SipFramingError(f"header of {end} bytes exceeds the limit of {self.max_header}")
        head = bytes(buf[:end + 2])
        lengths = _CONTENT_LENGTH.findall(head)
        if not lengths:
            raise SipFramingError("a message on a stream transport without Content-Length (RFC 3261 §18.3)")
        if len(set(lengths)) > 1:
            raise SipFramingError("conflicting Content-Length headers")
        text = lengths[0]
        if not is_digits(text) or len(text) > 9:
            raise SipFramingError(f"bad Content-Length {text[:20]!r}")
        length = int(text)
        if length > self.max_body:
            raise SipFramingError(f"Content-Length {length} exceeds the limit of {self.max_body}")
        total = end + 4 + length
        if len(buf) < total:
            return None
        message = bytes(buf[:total])
        del buf[:total]
        return message


def sent_transport(data: bytes) -> Optional[str]:
    """The transport named by the top ``Via`` of a message (``UDP``, ``TCP``, ``TLS``...), upper case, or None."""
    head_end = data.find(b"\r\n\r\n")
    match = _VIA.search(data if head_end < 0 else data[:head_end])
    return match.group(1).decode("ascii").upper() if match else None
