"""SIP dialogs (RFC 3261 §12): identity, CSeq numbering, remote target, and a small state table.

Strategy
--------
A ``Dialog`` is created by the UAC when it sends the INVITE (state ``EARLY`` once a tagged provisional arrives,
otherwise it is still "pending" in state ``EARLY`` with no remote tag) and by the UAS when it accepts a new
INVITE. Its identity is (Call-ID, local tag, remote tag) (§12); requests inside it are built by
``create_request`` (§12.2.1.1: Request-URI = remote target, To/From with tags, local CSeq incremented, the
route set as Route headers). Incoming requests are checked against the remote CSeq (§12.2.2: a lower number is
out of order, answered 500).

State changes go through ``DIALOG_TABLE`` (h11 style): provisional, success, failure and BYE inputs; a pair
not in the table raises ``LocalProtocolError``. A failed re-INVITE leaves a confirmed dialog confirmed.
"""

from __future__ import annotations

import enum
import logging
from typing import Dict, List, Optional, Tuple

from ..errors import LocalProtocolError
from .message import Headers, SipRequest, SipResponse, Via
from .uri import NameAddress, SipUri, Uri

logger = logging.getLogger(__name__)

__all__ = ["Dialog", "DialogState", "DialogInput", "DIALOG_TABLE"]


class DialogState(enum.Enum):
    """§12: early (after a tagged 1xx, or pending on the UAC), confirmed (after a 2xx), terminated."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogInput(enum.Enum):
    """What moves a dialog."""

    PROVISIONAL = "1xx to the INVITE"
    SUCCESS = "2xx to the INVITE"
    FAILURE = "non-2xx final response to the INVITE"
    BYE = "BYE sent or received"


DIALOG_TABLE: Dict[Tuple[DialogState, DialogInput], DialogState] = {
    (DialogState.EARLY, DialogInput.PROVISIONAL): DialogState.EARLY,
    (DialogState.EARLY, DialogInput.SUCCESS): DialogState.CONFIRMED,
    (DialogState.EARLY, DialogInput.FAILURE): DialogState.TERMINATED,
    (DialogState.EARLY, DialogInput.BYE): DialogState.TERMINATED,
    (DialogState.CONFIRMED, DialogInput.PROVISIONAL): DialogState.CONFIRMED,
    (DialogState.CONFIRMED, DialogInput.SUCCESS): DialogState.CONFIRMED,
    (DialogState.CONFIRMED, DialogInput.FAILURE): DialogState.CONFIRMED,
    (DialogState.CONFIRMED, DialogInput.BYE): DialogState.TERMINATED,
    (DialogState.TERMINATED, DialogInput.BYE): DialogState.TERMINATED,
}


class Dialog:
    """One dialog.

    Attributes:
        call_id; local_tag; remote_tag (None until the UAC learns it); local_uri / remote_uri (From/To
        addresses without tags); remote_target: where in-dialog requests go (the peer's Contact);
        local_cseq: last CSeq number we used; remote_cseq: last one the peer used (None before any);
        route_set: Route header values; is_uac: we sent the INVITE; state.
    """

    def __init__(
        self,
        *,
        call_id: str,
        local_tag: str,
        remote_tag: Optional[str],
        local_uri: NameAddress,
        remote_uri: NameAddress,
        remote_target: Uri,
        local_cseq: int,
        remote_cseq: Optional[int],
        is_uac: bool,
        route_set: Optional[List[str]] = None,
    ) -> None:
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_uri = local_uri
        self.remote_uri = remote_uri
        self.remote_target = remote_target
        self.local_cseq = local_cseq
        self.remote_cseq = remote_cseq
        self.is_uac = is_uac
        self.route_set: List[str] = list(route_set or [])
        self.state = DialogState.EARLY

    # -- construction from the INVITE transaction --------------------------------------------------------------
    @classmethod
    def for_uac(cls, invite: SipRequest) -> "Dialog":
        """The UAC's (not yet identified) dialog for an INVITE it sends."""
        from_ = invite.from_
        to = invite.to
        if from_.tag is None:
            raise LocalProtocolError("an INVITE needs a From tag")
        number, _ = invite.cseq
        return cls(
            call_id=invite.call_id,
            local_tag=from_.tag,
            remote_tag=None,
            local_uri=NameAddress(from_.uri, display_name=from_.display_name),
            remote_uri=NameAddress(to.uri, display_name=to.display_name),
            remote_target=invite.uri,
            local_cseq=number,
            remote_cseq=None,
            is_uac=True,
        )

    @classmethod
    def for_uas(cls, invite: SipRequest, local_tag: str) -> "Dialog":
        """§12.1.1: the UAS's dialog for a new INVITE (remote target from Contact, route set from
        Record-Route)."""
        from_ = invite.from_
        to = invite.to
        contact = invite.contact
        number, _ = invite.cseq
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=from_.tag,
            local_uri=NameAddress(to.uri, display_name=to.display_name),
            remote_uri=NameAddress(from_.uri, display_name=from_.display_name),
            remote_target=contact.uri if contact is not None else from_.uri,
            local_cseq=0,
            remote_cseq=number,
            is_uac=False,
            route_set=invite.headers.get_all("Record-Route"),
        )

    # -- state ---------------------------------------------------------------------------------------------------
    def fire(self, inp: DialogInput) -> DialogState:
        """Apply an input.

        Raises:
            LocalProtocolError: the input is not allowed in the current state.
        """
        try:
            self.state = DIALOG_TABLE[(self.state, inp)]
        except KeyError:
            raise LocalProtocolError(f"dialog: {inp.value} is not allowed in state {self.state.value}") from None
        return self.state

    def update_from_response(self, response: SipResponse) -> None:
        """UAC: learn the remote tag, remote target (Contact) and route set (Record-Route, reversed) from a
        tagged 1xx/2xx to the INVITE (§12.1.2)."""
        tag = response.to.tag
        if tag is not None and (self.remote_tag is None or self.state is DialogState.EARLY):
            self.remote_tag = tag
        contact = response.contact
        if contact is not None:
            self.remote_target = contact.uri
        rr = response.headers.get_all("Record-Route")
        if rr:
            self.route_set = list(reversed(rr))
        code = response.status_code
        if 100 < code < 200 and tag is not None:
            self.fire(DialogInput.PROVISIONAL)
        elif 200 <= code < 300:
            self.fire(DialogInput.SUCCESS)

    @property
    def key(self) -> Tuple[str, str, Optional[str]]:
        """(Call-ID, local tag, remote tag)."""
        return (self.call_id, self.local_tag, self.remote_tag)

    def matches(self, message: SipRequest) -> bool:
        """Does an incoming request belong here (Call-ID, To tag = ours, From tag = theirs)?"""
        return (
            message.call_id == self.call_id
            and message.to.tag == self.local_tag
            and (self.remote_tag is None or message.from_.tag == self.remote_tag)
        )

    def accept_remote_cseq(self, number: int, method: str) -> bool:
        """§12.2.2: False when a request's CSeq is lower than the last one (answer 500); ACK/CANCEL reuse it."""
        if method in ("ACK", "CANCEL"):
            return True
        if self.remote_cseq is not None and number <= self.remote_cseq:
            return False
        self.remote_cseq = number
        return True

    # -- requests inside the dialog ------------------------------------------------------------------------------
    def _addr(self, addr: NameAddress, tag: Optional[str]) -> str:
        return str(addr.with_param("tag", tag) if tag is not None else addr)

    def create_request(
        self,
        method: str,
        via: Via,
        *,
        contact: Optional[str] = None,
        body: bytes = b"",
        content_type: Optional[str] = None,
        cseq: Optional[int] = None,
        extra_headers: Tuple[Tuple[str, str], ...] = (),
    ) -> SipRequest:
        """Build a request inside the dialog (§12.2.1.1).

        Args:
            method: the method; a new CSeq number is used unless it is ACK/CANCEL or ``cseq`` is given.
            via: our Via (with a fresh branch, except for CANCEL).
            contact: our Contact value, for INVITE / re-INVITE.
            body / content_type: the body.
            cseq: explicit CSeq number (ACK uses the INVITE's).

        Returns:
            the request.
        """
        if self.state is DialogState.TERMINATED and method not in ("ACK",):
            raise LocalProtocolError(f"cannot send {method} in a terminated dialog")
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        h = Headers()
        h.add("Via", str(via))
        h.add("Max-Forwards", "70")
        h.add("From", self._addr(self.local_uri, self.local_tag))
        h.add("To", self._addr(self.remote_uri, self.remote_tag))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        for route in self.route_set:
            h.add("Route", route)
        if contact is not None:
            h.add("Contact", contact)
        for name, value in extra_headers:
            h.add(name, value)
        if body:
            h.add("Content-Type", content_type or "application/sdp")
        return SipRequest(method, self.remote_target, h, body)

    def target_address(self, fallback: Tuple[str, int]) -> Tuple[str, int]:
        """Where in-dialog requests go: the remote target's host and port when it names an IP literal, else
        ``fallback`` (the address the peer's messages came from; we do no DNS)."""
        import ipaddress

        target = self.remote_target
        if isinstance(target, SipUri):
            try:
                ipaddress.ip_address(target.host)
            except ValueError:
                return fallback
            return target.host, target.port if target.port is not None else 5060
        return fallback
