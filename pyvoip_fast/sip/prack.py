"""Provisional responses with a body, and reliable ones (RFC 3262: 100rel, RSeq, RAck, PRACK), both sides.

Strategy
--------
As UAS, ``SipEndpoint.ring(handle, now, status_code=183, body=sdp, reliable=...)`` sends a 1xx with an SDP
answer (early media). It goes reliably when the caller requires 100rel, or when asked (``reliable=True``) and
the caller supports it: ``Require: 100rel`` and an ``RSeq`` (starting at a random value, +1 each), and the
endpoint retransmits it at T1, 2·T1, 4·T1 ... until the caller's PRACK matches its ``RAck``; one reliable 1xx
is outstanding at a time (later ones wait behind it, §3). The PRACK is answered 200 and reported as
``ProvisionalAcknowledged`` (it proves the caller's address: it carries our To tag). No PRACK within 64·T1:
the INVITE is rejected with 500 and the call fails (§3). A final response stops the retransmissions.

As UAC, every INVITE says ``Supported: 100rel``; a reliable 1xx is PRACKed at once (in its early dialog, with
``RAck: rseq cseq INVITE``) and reported once (``CallProgress.reliable``); its retransmissions, and 1xx that
arrive out of RSeq order, are dropped (§4).

Offer/answer in them (§5): to an offerless INVITE of ours, a reliable 1xx with SDP is the peer's offer, and its
PRACK waits for our answer (``prack(handle, now, body=answer)``); as UAS, an offer in our reliable 1xx to an
offerless INVITE is answered in the caller's PRACK (``ProvisionalAcknowledged.body``), and our 2xx then carries
no SDP.
"""

from __future__ import annotations

import secrets
from typing import List, Optional, Tuple

from ..errors import LocalProtocolError
from . import events as ev
from .abnf import is_digits
from .calls import _ALLOW, _SUPPORTED, Addr, CallState, _Call, fmt_addr, option_tags
from .dialog import DialogInput, DialogState
from .in_dialog import _InDialog
from .message import SipRequest, SipResponse, make_response
from .transaction import NonInviteClientTransaction, Transaction

__all__ = ["_Reliable", "parse_rack"]


def parse_rack(value: Optional[str]) -> Optional[Tuple[int, int, str]]:
    """``RAck: rseq cseq method`` as a tuple, or None when it is missing or malformed."""
    if value is None:
        return None
    parts = value.split()
    if len(parts) != 3 or not is_digits(parts[0]) or not is_digits(parts[1]) or len(parts[0]) > 10 \
            or len(parts[1]) > 10:
        return None
    return int(parts[0]), int(parts[1]), parts[2].upper()


def _rseq(response: SipResponse) -> Optional[int]:
    value = (response.headers.get("RSeq") or "").strip()
    if not is_digits(value) or len(value) > 10 or int(value) == 0 or int(value) >= 2 ** 32:
        return None
    return int(value)


class _Reliable(_InDialog):
    """Provisional responses with SDP and 100rel for ``SipEndpoint`` (see the module docstring)."""

    # -- UAS ------------------------------------------------------------------------------------------------------
    def ring(self, handle: int, now: float, *, status_code: int = 180, reason: Optional[str] = None,
             body: bytes = b"", content_type: str = "application/sdp", reliable: Optional[bool] = None) -> bool:
        """Send a provisional response (180 Ringing by default; 183 Session Progress with ``body`` for early
        media) for an incoming call.

        Args:
            reliable: None: reliably when the caller requires 100rel, else not; True: reliably when the caller
                supports 100rel (``Supported`` or ``Require``), else not; False: never unless required.

        Returns:
            True when it went reliably (a ``ProvisionalAcknowledged`` event follows the caller's PRACK).

        Raises:
            ValueError: not 101-199. LocalProtocolError: the call is not an unanswered incoming call.
        """
        if not isinstance(status_code, int) or not 100 < status_code < 200:
            raise ValueError("a provisional status code is 101-199")
        call = self._incoming(handle)
        required = "100rel" in option_tags(call.invite, "Require")
        go_reliable = required or (bool(reliable) and call.peer_100rel)
        if go_reliable and call.reliable_out is not None:
            call.reliable_queue.append((status_code, reason, body, content_type))  # §3: one at a time
            return True
        self._send_provisional(call, status_code, reason, body, content_type, go_reliable, now)
        self._collect(now)
        return go_reliable

    def _send_provisional(self, call: _Call, status: int, reason: Optional[str], body: bytes, content_type: str,
                          reliable: bool, now: float) -> None:
        extra: List[Tuple[str, str]] = [("Record-Route", rr) for rr in call.invite.headers.get_lines("Record-Route")]
        extra += [("Contact", self._contact(call.transport)), ("Allow", _ALLOW), ("Supported", _SUPPORTED)]
        rseq = 0
        if reliable:
            if call.rseq_next == 0:  # §3: the first RSeq is random, 1 .. 2**31 - 1
                call.rseq_next = 1 + secrets.randbelow(2 ** 31 - 1)
            rseq = call.rseq_next
            call.rseq_next += 1
            extra += [("Require", "100rel"), ("RSeq", str(rseq))]
        if body:
            extra.append(("Content-Type", content_type))
        response = make_response(call.invite, status, reason, to_tag=call.dialog.local_tag, headers=extra, body=body)
        how = " (reliable, RSeq %d)" % rseq if reliable else ""
        self.log.info("[SIP] Sending %d %s%s%s", status, response.reason, " with SDP" if body else "", how)
        tx = self._server_tx.get(call.invite_tx) if call.invite_tx is not None else None
        if tx is not None and not tx.terminated:
            tx.send_response(response, now)  # type: ignore[attr-defined]
        if body:
            call.local_body = body
        if call.dialog.state is DialogState.EARLY:
            call.dialog.fire(DialogInput.PROVISIONAL)
        if reliable:
            t1 = self.timers.t1
            call.reliable_out = (response.serialize(), rseq, now + t1, t1, now + self.timers.b)
            self._schedule(now + t1, call)

    def _stop_reliable(self, call: _Call) -> None:
        """A final response went out: reliable 1xx are no longer retransmitted or queued (§3)."""
        call.reliable_out = None
        call.reliable_queue.clear()

    def _reliable_timer(self, call: _Call, now: float) -> None:
        """Retransmit our unacknowledged reliable 1xx (T1 doubling), or give up after 64·T1 with 500 (§3)."""
        out = call.reliable_out
        if out is None or out[2] > now:
            return
        data, rseq, _, interval, giveup = out
        if call.state is not CallState.INCOMING:
            call.reliable_out = None
            return
        if now >= giveup:
            self.log.warning("[SIP] No PRACK for our reliable provisional response (RSeq %d): rejecting the call", rseq)
            self._stop_reliable(call)
            self._respond_invite(call, 500, "No PRACK Received", now)
            call.dialog.fire(DialogInput.FAILURE)
            self._end(call, now)
            self._events.append(ev.CallFailed(handle=call.handle, status_code=500, reason="No PRACK Received"))
            return
        self.log.debug("[SIP] Retransmitting reliable provisional response (RSeq %d)", rseq)
        self._outbox.append((data, call.remote_addr))
        interval *= 2
        due = min(now + interval, giveup)
        call.reliable_out = (data, rseq, due, interval, giveup)
        self._schedule(due, call)

    def _on_prack(self, call: _Call, request: SipRequest, addr: Addr, now: float) -> None:
        """The caller's PRACK: 200 when its RAck names our outstanding (or already acknowledged) reliable 1xx,
        481 otherwise (§3)."""
        rack = parse_rack(request.headers.get("RAck"))
        if rack is None:
            self._respond_new(request, addr, now, 400, "Bad RAck", to_tag=call.dialog.local_tag)
            return
        rseq, cseq, method = rack
        invite_cseq = call.invite.cseq[0] if not call.is_caller else -1
        out = call.reliable_out
        if method != "INVITE" or cseq != invite_cseq:
            self._respond_new(request, addr, now, 481, to_tag=call.dialog.local_tag)
            return
        if out is not None and out[1] == rseq:
            call.reliable_out = None
            call.rseq_acked = rseq
            self._respond_new(request, addr, now, 200, to_tag=call.dialog.local_tag, report=False)
            self._events.append(ev.ProvisionalAcknowledged(handle=call.handle, status_code=200, body=request.body,
                                                           content_type=request.content_type))
            if call.reliable_queue and call.state is CallState.INCOMING:
                status, reason, body, content_type = call.reliable_queue.pop(0)
                self._send_provisional(call, status, reason, body, content_type, True, now)
        elif call.rseq_acked is not None and rseq == call.rseq_acked:
            self._respond_new(request, addr, now, 200, to_tag=call.dialog.local_tag, report=False)  # a repeat
        else:
            self._respond_new(request, addr, now, 481, to_tag=call.dialog.local_tag)

    # -- UAC ------------------------------------------------------------------------------------------------------
    def _take_provisional(self, call: _Call, response: SipResponse, now: float) -> Optional[bool]:
        """A 1xx to our INVITE (after its early dialog was updated): None to drop it (a retransmitted or
        out-of-order reliable 1xx), True when it is reliable (and was PRACKed now), False otherwise."""
        if response.status_code == 100 or "100rel" not in option_tags(response, "Require"):
            return False
        rseq = _rseq(response)
        tag = response.to.tag
        if rseq is None or tag is None:
            self.log.warning("[SIP] Reliable %d without a valid RSeq or To tag: taken as unreliable",
                             response.status_code)
            return False
        last = call.rseq_in.get(tag)
        if last is not None and rseq != last + 1:
            self.log.debug("[SIP] Reliable %d with RSeq %d after %d dropped (§4)", response.status_code, rseq, last)
            return None
        call.rseq_in[tag] = rseq
        if call.dialog.state is not DialogState.EARLY or call.dialog.remote_tag != tag:
            return True  # a 1xx of another early dialog than the one we track: reported, not acknowledged
        if call.late_offer and response.body and call.prack_pending is None:
            call.prack_pending = (rseq, response)  # their offer: our PRACK carries the answer (``prack``)
            return True
        self._send_prack(call, rseq, response.cseq[0], b"", "application/sdp", now)
        return True

    def _send_prack(self, call: _Call, rseq: int, cseq: int, body: bytes, content_type: str, now: float) -> None:
        hop = self._dialog_hop(call)
        extra = (("RAck", f"{rseq} {cseq} INVITE"), ("User-Agent", self.user_agent))
        prack = call.dialog.create_request("PRACK", self._via(transport=hop.transport), extra_headers=extra,
                                           body=body, content_type=content_type)
        hop = self._fit_transport(prack, hop)
        self.log.info("[SIP] Sending PRACK to %s (RSeq %d%s)", fmt_addr(hop.addr), rseq, ", with SDP" if body else "")
        self._start_client_tx(prack, hop.addr, now, call.handle)

    def prack(self, handle: int, now: float, *, body: bytes, content_type: str = "application/sdp") -> None:
        """Acknowledge the reliable 1xx that brought the peer's offer to our offerless INVITE, with our answer in
        ``body`` (RFC 3262 §5). The offer/answer exchange is then complete: the 2xx is ACKed without a body.

        Raises:
            LocalProtocolError: no such 1xx waits for its PRACK.
        """
        call = self._call(handle)
        pending = call.prack_pending
        if pending is None:
            raise LocalProtocolError("no reliable provisional response with an offer waits for our answer")
        call.prack_pending = None
        rseq, response = pending
        call.late_offer = False  # the answer went in the PRACK, not in the ACK
        if body:
            call.local_body = body
        self._send_prack(call, rseq, response.cseq[0], body, content_type, now)
        self._collect(now)

    def _prack_result(self, call: _Call, tx: Transaction, kind: str, payload: object) -> bool:
        """The answer to our PRACK: only logged (a failed PRACK leaves the INVITE to its own fate)."""
        if not isinstance(tx, NonInviteClientTransaction) or tx.request.method != "PRACK":
            return False
        if kind == "response":
            assert isinstance(payload, SipResponse)
            if payload.status_code >= 200:
                self.log.info("[SIP] Received %d %s (PRACK)", payload.status_code, payload.reason)
        else:
            self.log.info("[SIP] No answer to PRACK (%s)", kind)
        return True
