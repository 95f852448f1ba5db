"""The one exception tree shared by the compiled modules and their pure-Python twins.

Both implementations raise exactly these classes with the same messages, so callers (and tests) never need to
know which one is loaded.

    PyVoipError
    ├── ProtocolError
    │   ├── LocalProtocolError        we were asked to do something the protocol forbids
    │   └── RemoteProtocolError       the peer did something the protocol forbids (carries ``status_hint``)
    ├── ParseError (also ValueError)  bytes on the wire (or in a file) that do not parse
    │   ├── RtpParseError
    │   ├── RtcpParseError
    │   ├── SipParseError             (carries ``status_hint``, 400 unless said otherwise)
    │   └── SdpParseError
    ├── NegotiationError              offer and answer cannot make a call (488, or the media address rule)
    ├── AudioFileError                an audio file that is missing, unreadable, empty or corrupt
    ├── AudioDeviceError              no usable sound device
    ├── CallError                     a call that ended in failure (carries ``status_code`` and ``reason``)
    └── TransportError                socket-level trouble: bad address, port in use, network unreachable
"""

from __future__ import annotations

from typing import Optional, Tuple

__all__ = [
    "PyVoipError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ParseError",
    "RtpParseError",
    "RtcpParseError",
    "SipParseError",
    "SdpParseError",
    "NegotiationError",
    "AudioFileError",
    "AudioDeviceError",
    "CallError",
    "AuthenticationError",
    "RegistrationError",
    "TransportError",
]


class PyVoipError(Exception):
    """Root of every exception this package raises on purpose."""


class ProtocolError(PyVoipError):
    """A protocol rule was broken, by us or by the peer."""


class LocalProtocolError(ProtocolError):
    """The local application asked for something the protocol does not allow in the current state."""


class RemoteProtocolError(ProtocolError):
    """The remote peer broke a protocol rule.

    Args:
        msg: what was wrong.
        status_hint: the SIP status code a server should answer with (400, 413, 420, 481, 513, ...).
    """

    def __init__(self, msg: str, *, status_hint: int = 400) -> None:
        super().__init__(msg)
        self.status_hint = status_hint


class ParseError(PyVoipError, ValueError):
    """Bytes that do not parse. A ``ValueError`` too, so generic callers can catch that."""


class RtpParseError(ParseError):
    """A malformed RTP packet."""


class RtcpParseError(ParseError):
    """A malformed RTCP packet or compound packet."""


class SipParseError(ParseError):
    """A malformed SIP message. ``status_hint`` is what a UAS should answer (400 by default, 413, 513...)."""

    def __init__(self, msg: str, *, status_hint: int = 400) -> None:
        super().__init__(msg)
        self.status_hint = status_hint


class SdpParseError(ParseError):
    """A malformed SDP body."""


class NegotiationError(PyVoipError):
    """Offer and answer have nothing in common (no codec, no usable audio stream), or the media address rule
    refuses where the peer wants media (``sip.media_address``).

    A UAS answers the INVITE with ``status_code`` (488 Not Acceptable Here), and with a ``Warning`` header
    carrying ``warning`` when there is one.
    """

    status_code = 488
    reason = "Not Acceptable Here"
    warning: Optional[str] = None


class AudioFileError(PyVoipError):
    """An audio file that cannot be used (missing, unreadable, empty, corrupt, not audio)."""


class AudioDeviceError(PyVoipError):
    """No usable audio device, or PyAudio/PortAudio is not available."""


class CallError(PyVoipError):
    """A call that failed: rejected (4xx/5xx/6xx), timed out, or torn down by an error.

    Attributes:
        status_code: the SIP status code (408 for a transaction timeout, 0 when no SIP response applies).
        reason: the reason phrase or a description of the failure.
        contacts: the Contact values of a 3xx redirect (where the callee asks to be called), else empty.
    """

    def __init__(self, status_code: int, reason: str, msg: Optional[str] = None, *,
                 contacts: Tuple[str, ...] = ()) -> None:
        super().__init__(msg or (f"{status_code} {reason}" if status_code else reason))
        self.status_code = status_code
        self.reason = reason
        self.contacts = tuple(contacts)


class AuthenticationError(CallError):
    """A request that our credentials cannot satisfy: a rejected password or user name, no credentials for a
    server that wants them, no digest algorithm in common (401/407, or 403 for a REGISTER)."""


class RegistrationError(CallError):
    """A REGISTER that ended without a binding: ``status_code`` is the registrar's final answer (408 when none
    came); ``auth`` is True when our credentials are the problem."""

    def __init__(self, status_code: int, reason: str, msg: Optional[str] = None, *, auth: bool = False) -> None:
        super().__init__(status_code, reason, msg)
        self.auth = auth


class TransportError(PyVoipError):
    """Socket trouble: an address that cannot be bound or reached, a port already in use."""
