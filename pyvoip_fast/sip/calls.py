"""The INVITE sessions a SIP endpoint keeps: their states, the per-call record, and small shared helpers.

``CallState`` is the life of an INVITE session as the application sees it; ``_Call`` holds one session and its
dialog (transaction keys, our 2xx retransmission of RFC 3261 §13.3.1.4, a BYE waiting for the ACK, when to
forget it). ``fmt_addr`` and ``is_ip_literal`` are the address helpers the endpoint modules share, and
``_NullLogger`` the silent default logger of a sans-IO object (h2's pattern).
"""

from __future__ import annotations

import enum
import functools
import ipaddress
from typing import Any, Dict, List, Optional, Tuple

from .dialog import Dialog
from ..errors import LocalProtocolError
from .message import SipRequest
from .uri import format_host

__all__ = ["CallState", "ALLOWED_METHODS", "SUPPORTED_EXTENSIONS", "Addr", "fmt_addr", "is_ip_literal", "option_tags"]

Addr = Tuple[str, int]

#: methods we answer (the Allow header): exactly those, every other method gets 405 or 501
ALLOWED_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "REFER", "NOTIFY", "PRACK", "UPDATE")
_ALLOW = ", ".join(ALLOWED_METHODS)
#: option tags we implement (the Supported header): reliable provisional responses (RFC 3262) and session
#: timers (RFC 4028); a Require naming anything else gets 420 with Unsupported
SUPPORTED_EXTENSIONS = ("100rel", "timer")
_SUPPORTED = ", ".join(SUPPORTED_EXTENSIONS)


class _NullLogger:
    """h2-style dummy logger: the default for a sans-IO object."""

    def debug(self, *args: object, **kwargs: object) -> None:
        pass

    info = warning = error = debug

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging.Logger API
        return False


class CallState(enum.Enum):
    """Life of an INVITE session as the application sees it."""

    CALLING = "calling"  # UAC: INVITE sent, no final response
    INCOMING = "incoming"  # UAS: INVITE received, not answered
    WAIT_ACK = "waiting for ACK"  # UAS: 2xx sent, no ACK yet
    CONFIRMED = "confirmed"
    ENDING = "ending"  # our BYE sent
    ENDED = "ended"


def fmt_addr(addr: Addr) -> str:
    """``host:port`` with IPv6 brackets."""
    return f"{format_host(addr[0])}:{addr[1]}"


class _Call:
    """One INVITE session and its dialog."""

    # slots: 48 attributes, past the 30 CPython shares with the class, would give every call (and every finished
    # call kept for RFC 6026's 32 s) a dict of its own
    __slots__ = (
        "handle", "dialog", "remote_addr", "_invite", "invite_cseq", "is_caller", "_counts", "_state", "invite_tx",
        "got_provisional", "cancel_requested", "cancel_sent", "ack_bytes", "ack_cseq", "ack_dest", "ok_bytes",
        "ok_cseq", "ok_next", "ok_interval", "ok_giveup", "ok_is_reinvite", "pending_bye", "reinvite_tx",
        "purge_at", "transport", "auth_chain", "bye_chain", "reinvite_out", "reinvite_chain", "requests_out",
        "requests_in", "rseq_next", "reliable_out", "reliable_queue", "peer_100rel", "rseq_in", "rseq_acked",
        "timer", "se_wanted", "min_se", "se_retried", "local_body", "peer_allow", "update_in", "update_out",
        "update_refresh", "late_offer", "ack_pending", "prack_pending",
    )

    def __init__(self, handle: int, dialog: Dialog, remote_addr: Addr, invite: SipRequest, is_caller: bool) -> None:
        self.handle = handle
        self.dialog = dialog
        self.remote_addr = remote_addr
        self._invite: Optional[SipRequest] = None
        self.invite_cseq = 0
        self.invite = invite
        self.is_caller = is_caller
        self._counts: Optional[Dict[CallState, int]] = None  # the endpoint's tally of its calls by state, once kept
        self._state = CallState.CALLING if is_caller else CallState.INCOMING
        self.invite_tx: Optional[Tuple[str, ...]] = None
        self.got_provisional = False
        self.cancel_requested = False
        self.cancel_sent = False
        self.ack_bytes: Optional[bytes] = None
        self.ack_cseq: Optional[int] = None
        self.ack_dest: Optional[Addr] = None
        # UAS: our 2xx retransmission (§13.3.1.4)
        self.ok_bytes: Optional[bytes] = None
        self.ok_cseq = 0
        self.ok_next = 0.0
        self.ok_interval = 0.0
        self.ok_giveup = 0.0
        self.ok_is_reinvite = False
        self.pending_bye = False
        self.reinvite_tx: Optional[Tuple[str, ...]] = None
        self.purge_at: Optional[float] = None
        #: the transport of the call's signalling (the INVITE's top Via): in-dialog requests default to it
        self.transport = "UDP"
        #: digest challenges answered for the INVITE (and for our BYE): one chain each (``digest.DigestAuth``)
        self.auth_chain: Dict[Tuple[str, bool], Any] = {}
        self.bye_chain: Dict[Tuple[str, bool], Any] = {}
        #: our own re-INVITE: its client transaction while it waits for a final response, and its auth chain
        self.reinvite_out: Optional[Tuple[str, ...]] = None
        self.reinvite_chain: Dict[Tuple[str, bool], Any] = {}
        #: our in-dialog non-INVITE requests waiting for an answer: transaction key -> (request id, the digest
        #: challenges answered for that request: each request gets its own chain, so a server that challenges
        #: every request with a fresh nonce is answered every time, once per request)
        self.requests_out: Dict[Tuple[str, ...], Tuple[int, Dict[Tuple[str, bool], Any]]] = {}
        #: in-dialog requests the application has not answered yet: server transaction key -> the time at which
        #: the endpoint answers 500 on its own (64·T1 after arrival: the peer's timer F has fired by then)
        self.requests_in: Dict[Tuple[str, ...], float] = {}
        # RFC 3262, UAS: the next RSeq, the reliable 1xx waiting for its PRACK (serialized, RSeq, next send, interval,
        # give-up time) and those queued behind it (one at a time, §3); the peer said it supports 100rel
        self.rseq_next = 0
        self.reliable_out: Optional[Tuple[bytes, int, float, float, float]] = None
        self.reliable_queue: List[Any] = []
        self.peer_100rel = False
        # RFC 3262, UAC: per early dialog (To tag), the RSeq of the last reliable 1xx we took (retransmissions and
        # reordering dropped); UAS: the RSeq of the last one the caller acknowledged
        self.rseq_in: Dict[str, int] = {}
        self.rseq_acked: Optional[int] = None
        # RFC 4028: the running session timer (``session_timer.SessionTimer``), the interval we asked for or will
        # grant, whether a 422 was already answered by retrying, the last session description we sent (a refresh
        # re-INVITE repeats it) and the methods the peer allows (a refresh is an UPDATE when it takes one)
        self.timer: Any = None
        self.se_wanted: Optional[int] = None
        self.min_se = 0
        self.se_retried = False
        self.local_body = b""
        self.peer_allow: Tuple[str, ...] = ()
        # RFC 3311: the peer's UPDATE waiting for the application's answer, and our own waiting for its answer
        self.update_in: Optional[Tuple[str, ...]] = None
        self.update_out: Optional[Tuple[str, ...]] = None
        self.update_refresh = False
        # a delayed offer of ours (RFC 3261 §13.2.1): the INVITE had no body, the 2xx carries the offer and our ACK
        # the answer, so the 2xx waits here (``ack_pending``) until the application gives the answer (``ack``)
        self.late_offer = False
        self.ack_pending: Optional[Any] = None
        # RFC 3262 §5: the peer's offer came in a reliable 1xx to our offerless INVITE: the PRACK carries our answer,
        # so it waits here (RSeq, the 1xx) until the application gives the answer (``prack``)
        self.prack_pending: Optional[Tuple[int, Any]] = None

    @property
    def invite(self) -> SipRequest:
        """The INVITE of the session (the latest, after a retry with credentials or a refresh).

        Raises:
            LocalProtocolError: the call has ended and let it go (``let_go``).
        """
        invite = self._invite
        if invite is None:
            raise LocalProtocolError(f"call {self.handle} has ended: its INVITE is no longer kept")
        return invite

    @invite.setter
    def invite(self, request: SipRequest) -> None:
        self._invite = request
        self.invite_cseq = request.cseq[0]

    def let_go(self) -> None:
        """The call has ended: keep what absorbing late retransmissions needs for RFC 6026's 32 s (the dialog's
        identity, our ACK, the INVITE's CSeq number, answers to our own requests still on their way) and drop the
        INVITE, the digest chains of the INVITE and BYE, the session timer and our last session description. At
        150 set-ups/s a listener holds about 4,800 ended calls: their INVITEs were most of its memory and of what
        every collection of the garbage collector's older generations scanned."""
        self._invite = None
        self.auth_chain = {}
        self.bye_chain = {}
        self.timer = None
        self.local_body = b""

    @property
    def state(self) -> CallState:
        """Where the session is (``CallState``); the endpoint's tally of states follows every change."""
        return self._state

    @state.setter
    def state(self, value: CallState) -> None:
        counts = self._counts
        if counts is not None:
            counts[self._state] -= 1
            counts[value] += 1
        self._state = value

    def tally_in(self, counts: Optional[Dict[CallState, int]]) -> None:
        """Count this call in ``counts`` (by state) from now on, or in nothing any more (None)."""
        if self._counts is not None:
            self._counts[self._state] -= 1
        self._counts = counts
        if counts is not None:
            counts[self._state] += 1


def _first_line(data: bytes) -> str:
    line = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
    if line.startswith("SIP/2.0 "):
        return line[8:]
    return line.split(" ", 1)[0]


def option_tags(message: Any, header: str) -> List[str]:
    """The option tags of every ``Supported`` / ``Require`` line of a request or response, lower case."""
    tags: List[str] = []
    for value in message.headers.get_all(header):
        tags.extend(t.strip().lower() for t in value.split(",") if t.strip())
    return tags


@functools.lru_cache(maxsize=256)
def is_ip_literal(host: str) -> bool:
    """True when ``host`` is an IPv4/IPv6 literal (no DNS needed). Remembered for the last 256 hosts: a process's
    calls name the same few, and ``ipaddress`` takes microseconds per look."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
