"""The INVITE sessions a SIP endpoint keeps: their states, the per-call record, and small shared helpers.

``CallState`` is the life of an INVITE session as the application sees it; ``_Call`` holds one session and its
dialog (transaction keys, our 2xx retransmission of RFC 3261 §13.3.1.4, a BYE waiting for the ACK, when to
forget it). ``fmt_addr`` and ``is_ip_literal`` are the address helpers the endpoint modules share, and
``_NullLogger`` the silent default logger of a sans-IO object (h2's pattern).
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Any, Dict, Optional, Tuple

from .dialog import Dialog
from .message import SipRequest
from .uri import format_host

__all__ = ["CallState", "ALLOWED_METHODS", "Addr", "fmt_addr", "is_ip_literal"]

Addr = Tuple[str, int]

#: methods we implement (the Allow header)
ALLOWED_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "REFER", "NOTIFY")
_ALLOW = ", ".join(ALLOWED_METHODS)


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

    def __init__(self, handle: int, dialog: Dialog, remote_addr: Addr, invite: SipRequest, is_caller: bool) -> None:
        self.handle = handle
        self.dialog = dialog
        self.remote_addr = remote_addr
        self.invite = invite
        self.is_caller = is_caller
        self.state = CallState.CALLING if is_caller else CallState.INCOMING
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


def _first_line(data: bytes) -> str:
    line = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
    if line.startswith("SIP/2.0 "):
        return line[8:]
    return line.split(" ", 1)[0]


def is_ip_literal(host: str) -> bool:
    """True when ``host`` is an IPv4/IPv6 literal (no DNS needed)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
