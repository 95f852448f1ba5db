"""Events the sans-IO ``SipEndpoint`` gives its user (h11 / aioquic style).

Strategy
--------
(``slots``/``kw_only`` dataclasses need Python 3.10 or later.) Every event is a frozen, slotted, keyword-only dataclass; fields are documented in the class body. Calls are
identified by ``handle``, an integer the endpoint assigns (unique for the endpoint's life, so a call to
ourselves — same Call-ID on both sides — stays unambiguous). The events describe the call (INVITE usage,
RFC 3261 §13, §15) rather than raw transactions: retransmissions, ACKs, ``100 Trying`` and the answers the
endpoint gives on its own (OPTIONS, 481, 405, 400) happen inside and are only reported for observability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from .message import SipRequest, SipResponse

__all__ = [
    "Event",
    "IncomingCall",
    "CallProgress",
    "CallAnswered",
    "CallConfirmed",
    "CallFailed",
    "CallCancelled",
    "CallEnded",
    "ReInviteReceived",
    "ReInviteAnswered",
    "InDialogRequest",
    "InDialogResponse",
    "ProvisionalAcknowledged",
    "UpdateReceived",
    "UpdateAnswered",
    "RequestAnswered",
    "MalformedMessage",
    "Registered",
    "RegistrationFailed",
    "Unregistered",
]

Addr = Tuple[str, int]

def _check_status(code: int, low: int, high: int, name: str) -> None:
    if not isinstance(code, int) or not low <= code <= high:
        raise ValueError(f"{name}: status code must be {low}-{high}, not {code!r}")


class Event:
    """Base class of every endpoint event."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingCall(Event):
    """A new INVITE created a dialog (``100 Trying`` was already sent; retransmissions never repeat this)."""

    #: the call's handle (pass it to ``ring``/``answer``/``reject``)
    handle: int
    #: the Call-ID
    call_id: str
    #: the INVITE as received
    request: SipRequest
    #: where it came from (address, port)
    remote_addr: Addr
    #: the caller's From URI and the To URI, as text
    from_uri: str
    to_uri: str
    #: the body (an SDP offer normally; may be empty for a delayed offer)
    body: bytes
    #: the body's media type (``application/sdp``) or None
    content_type: Optional[str] = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallProgress(Event):
    """A provisional response (1xx) to our INVITE (a reliable one once, its retransmissions are not reported;
    its PRACK was sent already). ``body`` is an SDP answer (early media) or empty."""

    handle: int
    status_code: int
    reason: str
    body: bytes = b""
    content_type: Optional[str] = None
    #: sent reliably (RFC 3262 ``Require: 100rel``)
    reliable: bool = False
    #: the To tag of the early dialog that sent it (forking proxies create one per branch)
    to_tag: Optional[str] = None

    def __post_init__(self) -> None:
        _check_status(self.status_code, 100, 199, "CallProgress")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(Event):
    """Our INVITE got a 2xx; the ACK has been sent."""

    handle: int
    status_code: int
    reason: str
    #: the answer (SDP normally)
    body: bytes
    content_type: Optional[str] = None

    def __post_init__(self) -> None:
        _check_status(self.status_code, 200, 299, "CallAnswered")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallConfirmed(Event):
    """The ACK for our 2xx arrived (UAS side): the call is up.

    ``body`` is the ACK's body: the SDP answer when our 2xx carried the offer (a delayed-offer INVITE, RFC 3261
    §13.2.1), else normally empty.
    """

    handle: int
    body: bytes = b""
    content_type: Optional[str] = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFailed(Event):
    """A call ended without being established, or an answered call never got its ACK.

    ``status_code`` is the final response (4xx/5xx/6xx), 408 for a timeout (Timer B on the caller, no ACK
    on the callee) or 503 for a transport error.
    """

    handle: int
    status_code: int
    reason: str
    #: the Contact values of a 3xx (where a redirect sends the caller)
    contacts: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_status(self.status_code, 300, 699, "CallFailed")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallCancelled(Event):
    """The caller CANCELled our unanswered incoming call (we sent 200 to the CANCEL and 487 to the INVITE)."""

    handle: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(Event):
    """An established call ended.

    ``reason`` is ``"remote hangup"`` (BYE received and answered 200), ``"local hangup"`` (our BYE was
    answered, ``status_code`` its status; 408 when it timed out) or ``"session expired"`` (RFC 4028: no session
    refresh came in time, or ours failed; we sent BYE).
    """

    handle: int
    reason: str
    status_code: int = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class ReInviteReceived(Event):
    """A re-INVITE inside an established call (hold / resume / media change); answer with
    ``SipEndpoint.answer_reinvite``."""

    handle: int
    request: SipRequest
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ReInviteAnswered(Event):
    """The final answer to a re-INVITE we sent (``SipEndpoint.reinvite``): a 2xx (ACKed already) with the peer's
    SDP answer, or a failure (488, 491 glare, 408 when no answer came, 503 on a transport error)."""

    handle: int
    status_code: int
    reason: str
    body: bytes = b""
    content_type: Optional[str] = None

    def __post_init__(self) -> None:
        _check_status(self.status_code, 200, 699, "ReInviteAnswered")


@dataclass(frozen=True, slots=True, kw_only=True)
class InDialogRequest(Event):
    """An INFO, REFER or NOTIFY inside a call: answer it with ``SipEndpoint.respond(handle, request, ...)``."""

    handle: int
    request: SipRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class InDialogResponse(Event):
    """The final response to a request we sent inside a call (``SipEndpoint.request``); 408 when none came, 503
    on a transport error (then ``response`` is None)."""

    handle: int
    request_id: int
    method: str
    status_code: int
    reason: str
    #: the final response as received (its headers and body: a REFER's ``Refer-Sub``, a MESSAGE's reply...)
    response: Optional[SipResponse] = None

    def __post_init__(self) -> None:
        _check_status(self.status_code, 200, 699, "InDialogResponse")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisionalAcknowledged(Event):
    """The caller's PRACK acknowledged our reliable 1xx (RFC 3262 §3): it proves the caller's address (the PRACK
    carries our To tag) and may carry an SDP body."""

    handle: int
    status_code: int
    body: bytes = b""
    content_type: Optional[str] = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateReceived(Event):
    """An UPDATE with an SDP offer (RFC 3311) in an early or confirmed dialog: answer it with
    ``SipEndpoint.answer_update``. (An UPDATE without a body only refreshes the session: the endpoint answers it.)"""

    handle: int
    request: SipRequest
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateAnswered(Event):
    """The final answer to our UPDATE (``SipEndpoint.update``): 2xx with the peer's SDP answer when ours carried
    an offer, or a failure (488, 491, 408 when no answer came)."""

    handle: int
    status_code: int
    reason: str
    body: bytes = b""
    content_type: Optional[str] = None

    def __post_init__(self) -> None:
        _check_status(self.status_code, 200, 699, "UpdateAnswered")


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestAnswered(Event):
    """The endpoint answered a request on its own (OPTIONS 200, 481, 405, 420, 483...), for observability."""

    remote_addr: Addr
    method: str
    status_code: int

    def __post_init__(self) -> None:
        _check_status(self.status_code, 200, 699, "RequestAnswered")


@dataclass(frozen=True, slots=True, kw_only=True)
class MalformedMessage(Event):
    """A datagram that did not parse; ``answered`` is the status sent back (400, 505...) or None if dropped."""

    remote_addr: Addr
    error: str
    answered: Optional[int] = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered(Event):
    """The registrar accepted our binding (RFC 3261 §10.2): first time, refresh, or a new Contact after NAT."""

    handle: int
    aor: str
    contact: str
    expires: int
    refresh: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationFailed(Event):
    """A REGISTER ended without a binding: ``status_code`` is the server's final answer (408: none came).

    ``auth`` is True when our credentials cannot satisfy the server (a rejected password, no credentials, no
    digest algorithm in common): the endpoint never retries those. Other failures of a refresh are retried.
    """

    handle: int
    status_code: int
    reason: str
    auth: bool = False
    retry_in: Optional[float] = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unregistered(Event):
    """Our binding was removed (``Expires: 0`` answered with 2xx) or the attempt to remove it ended."""

    handle: int
    status_code: int


def describe(event: Any) -> str:
    """Short text form of an event for logs."""
    return f"{type(event).__name__}({', '.join(f'{k}={getattr(event, k)!r}' for k in getattr(event, '__dataclass_fields__', {}))})"
