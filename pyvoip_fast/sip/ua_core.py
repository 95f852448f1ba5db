"""The core of the SIP user agent: its transactions and the messages every side of a call sends.

``_UaCore`` builds on the state and addressing of ``ua_base._UaBase`` and does what both the UAC and the UAS
paths need: start a client transaction, answer a request with a new server transaction, send CANCEL, BYE and
ACK, retransmit our 2xx until the ACK (RFC 3261 §13.3.1.4, T1 doubling to T2, BYE after 64·T1), collect what transactions decided (§17) and act on
the responses to our INVITEs (ACK for 2xx, CANCEL after a late 1xx, events for the application), and answers
digest challenges to our INVITE and BYE (RFC 3261 §22.2: the request again with CSeq + 1 and credentials).

Subclassed by the UAS request handling (``uas.py``) and by the public ``SipEndpoint`` (``endpoint.py``).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from ..errors import SipParseError
from . import events as ev
from .calls import Addr, CallState, _Call, _first_line, fmt_addr
from .dialog import DialogInput, DialogState
from .digest import AuthenticationRejected, describe
from .message import (
    Headers,
    SipRequest,
    SipResponse,
    Via,
    make_response,
    parse_for_error_response,
)
from .transaction import (
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    Transaction,
    client_key,
    server_key,
)
from .ua_base import _UaBase


class _UaCore(_UaBase):
    """Transactions and what both sides of a call send (see ``SipEndpoint`` for the arguments)."""

    def _start_client_tx(self, request: SipRequest, dest: Addr, now: float, handle: Optional[int]) -> Tuple[str, ...]:
        branch = request.top_via.branch or ""
        key = client_key(branch, request.method)
        tx: Transaction
        if request.method == "INVITE":
            tx = InviteClientTransaction(key, request, dest, self.timers, now)
        else:
            tx = NonInviteClientTransaction(key, request, dest, self.timers, now)
        self._client_tx[key] = tx
        self._watch(tx)
        if handle is not None:
            self._tx_call[key] = handle
        return key

    def _respond_invite(self, call: _Call, status: int, reason: Optional[str], now: float,
                        headers: Sequence[Tuple[str, str]] = ()) -> None:
        extra: List[Tuple[str, str]] = list(headers)
        if status >= 200:  # RFC 3262 §3: a final response ends the retransmission of reliable 1xx
            call.reliable_out = None
            call.reliable_queue.clear()
        if status < 300:
            # §12.1.1: a dialog-creating response copies the Record-Route of the request
            extra = [("Record-Route", rr) for rr in call.invite.headers.get_lines("Record-Route")]
            extra.append(("Contact", self._contact(call.transport)))
        response = make_response(call.invite, status, reason, to_tag=call.dialog.local_tag, headers=extra)
        self.log.info("[SIP] Sending %d %s", response.status_code, response.reason)
        tx = self._server_tx.get(call.invite_tx) if call.invite_tx is not None else None
        if tx is not None and not tx.terminated:
            tx.send_response(response, now)  # type: ignore[attr-defined]

    def _respond_new(self, request: SipRequest, addr: Addr, now: float, status: int, reason: Optional[str] = None,
                     headers: Tuple[Tuple[str, str], ...] = (), to_tag: Optional[str] = None,
                     report: bool = True, body: bytes = b"") -> None:
        """Answer a request through a new server transaction."""
        key = server_key(request)
        tx: Transaction
        if request.method == "INVITE":
            tx = InviteServerTransaction(key, request, addr, self.timers)
        else:
            tx = NonInviteServerTransaction(key, request, addr, self.timers)
        self._add_server_tx(key, tx)
        response = make_response(request, status, reason, to_tag=to_tag or self._new_tag(), headers=headers,
                                 body=body)
        self.log.info("[SIP] Sending %d %s", response.status_code, response.reason)
        tx.send_response(response, now)
        if report and status >= 200:
            self._events.append(ev.RequestAnswered(remote_addr=addr, method=request.method, status_code=status))

    def _send_cancel(self, call: _Call, now: float) -> None:
        invite = call.invite
        h = Headers()
        h.add("Via", invite.headers.get_all("Via")[0])
        h.add("Max-Forwards", "70")
        h.add("From", invite.headers.get("From") or "")
        h.add("To", invite.headers.get("To") or "")
        h.add("Call-ID", invite.call_id)
        h.add("CSeq", f"{invite.cseq[0]} CANCEL")
        for route in invite.headers.get_lines("Route"):
            h.add("Route", route)
        cancel = SipRequest("CANCEL", invite.uri, h)
        call.cancel_sent = True
        self.log.info("[SIP] Sending CANCEL to %s", fmt_addr(call.remote_addr))
        self._start_client_tx(cancel, call.remote_addr, now, call.handle)

    def _send_bye(self, call: _Call, now: float) -> None:
        hop = self._dialog_hop(call)
        extra = (("User-Agent", self.user_agent),)
        request = call.dialog.create_request("BYE", self._via(transport=hop.transport), extra_headers=extra)
        hop = self._fit_transport(request, hop)
        call.dialog.fire(DialogInput.BYE)
        call.state = CallState.ENDING
        call.ok_bytes = None
        self.log.info("[SIP] Sending BYE to %s", fmt_addr(hop.addr))
        self._start_client_tx(request, hop.addr, now, call.handle)

    def _send_ack(self, call: _Call, response: SipResponse, now: float, body: bytes = b"",
                  content_type: str = "application/sdp") -> None:
        number = response.cseq[0]
        hop = self._dialog_hop(call)
        ack = call.dialog.create_request("ACK", self._via(transport=hop.transport), cseq=number, body=body,
                                         content_type=content_type)
        call.ack_bytes = ack.serialize()
        call.ack_cseq = number
        call.ack_dest = hop.addr
        self.log.info("[SIP] Sending ACK")
        self._outbox.append((call.ack_bytes, hop.addr))

    def _start_2xx_retransmit(self, call: _Call, response: SipResponse, now: float, reinvite: bool) -> None:
        call.ok_bytes = response.serialize()
        call.ok_cseq = response.cseq[0]
        call.ok_interval = self.timers.t1
        call.ok_next = now + self.timers.t1
        call.ok_giveup = now + self.timers.b
        call.ok_is_reinvite = reinvite
        self._schedule(call.ok_next, call)

    def _end(self, call: _Call, now: float) -> None:
        call.state = CallState.ENDED
        call.ok_bytes = None
        if call.dialog.state is not DialogState.TERMINATED:
            call.dialog.state = DialogState.TERMINATED
        self._answer_leftovers(call, now)
        # keep the call around to absorb late retransmissions (2xx -> ACK again), then forget it
        call.let_go()
        call.purge_at = now + self.timers.b
        self._schedule(call.purge_at, call)

    def _ack_timeout(self, call: _Call, now: float) -> None:
        call.ok_bytes = None
        self.log.warning("[SIP] No ACK received for 200 OK: ending the call")
        if call.ok_is_reinvite:
            return
        self._events.append(ev.CallFailed(handle=call.handle, status_code=408, reason="No ACK received"))
        # §13.3.1.4: the UAS should terminate the dialog with BYE
        call.state = CallState.CONFIRMED
        self._send_bye(call, now)
        call.state = CallState.ENDED
        call.let_go()
        call.purge_at = now + self.timers.b
        self._schedule(call.purge_at, call)

    def _malformed(self, data: bytes, addr: Addr, exc: SipParseError) -> None:
        salvage = parse_for_error_response(data)
        answered: Optional[int] = None
        if salvage is not None:
            status = exc.status_hint if 400 <= exc.status_hint <= 699 else 400
            reason = None
            response = make_response(salvage, status, reason, to_tag=self._new_tag())
            self._outbox.append((response.serialize(), addr))
            answered = status
            self.log.warning("[SIP] Malformed request from %s (%s): answered %d", fmt_addr(addr), exc, status)
        else:
            self.log.warning("[SIP] Malformed message from %s dropped: %s", fmt_addr(addr), exc)
        self._events.append(ev.MalformedMessage(remote_addr=addr, error=str(exc), answered=answered))

    def _on_response(self, response: SipResponse, addr: Addr, now: float) -> None:
        try:
            branch = response.top_via.branch or ""
            number, method = response.cseq
        except SipParseError:  # pragma: no cover - validated by parse_message
            return
        key = client_key(branch, method)
        tx = self._client_tx.get(key)
        if tx is None:
            if method == "INVITE" and 200 <= response.status_code < 300:
                # 2xx retransmission after the transaction is gone: ACK it again (§13.2.2.4)
                for call in self._calls_with_id(response.call_id):  # our INVITE or re-INVITE, whichever side
                    if (call.ack_bytes is not None
                            and call.ack_cseq == number and call.dialog.local_tag == response.from_.tag):
                        self.log.debug("[SIP] Retransmitted 200 OK: re-sending ACK")
                        self._outbox.append((call.ack_bytes, call.ack_dest or call.remote_addr))
                        return
            self.log.debug("[SIP] Response %d matching no transaction dropped", response.status_code)
            return
        tx.receive_response(response, now)  # type: ignore[attr-defined]

    def _flush_tx(self, tx: Transaction) -> None:
        for data, retransmission in tx.take_outbox():
            if retransmission:
                self.log.debug("[SIP] Retransmitting %s to %s", _first_line(data), fmt_addr(tx.dest))
            self._outbox.append((data, tx.dest))

    def _collect(self, now: float) -> None:
        """Move the output of the transactions that changed to the endpoint, hand their results to the TU, drop
        the finished ones and put the others' next deadline in the timer heap."""
        touched = self._touched
        while touched:
            batch = list(touched.values())
            touched.clear()
            for tx in batch:
                self._flush_tx(tx)
                for kind, payload in tx.take_results():
                    self._tx_result(tx, kind, payload, now)
                self._flush_tx(tx)
                key = tx.key
                if tx.terminated:
                    if self._server_tx.get(key) is tx:
                        self._drop_server_tx(key)
                    elif self._client_tx.get(key) is tx:
                        del self._client_tx[key]
                    else:
                        continue
                    self._tx_call.pop(key, None)
                    self._tx_reg.pop(key, None)
                else:
                    when = tx.next_deadline()
                    if when is not None:
                        self._schedule(when, tx)

    def _tx_result(self, tx: Transaction, kind: str, payload: object, now: float) -> None:
        handle = self._tx_call.get(tx.key)
        call = self._calls.get(handle) if handle is not None else None
        method = tx.method
        if call is None:
            reg = self._tx_reg.get(tx.key)
            if reg is not None:
                self._registration_result(reg, kind, payload, now)
            return
        if self._in_dialog_result(call, tx, kind, payload, now):
            return
        if isinstance(tx, InviteClientTransaction):
            if kind == "response":
                assert isinstance(payload, SipResponse)
                self._on_invite_response(call, payload, now)
            elif kind in ("timeout", "transport_error") and call.state is CallState.CALLING:
                status, reason = (408, "Request Timeout") if kind == "timeout" else (503, "Service Unavailable")
                detail = "no response" if kind == "timeout" else \
                    f"transport error: {self._transport_why.get(tx.dest, 'unreachable')}"
                self.log.info("[SIP] Call failed: %d %s (%s)", status, reason, detail)
                if kind != "timeout":
                    reason = f"{reason} ({detail})"
                call.dialog.fire(DialogInput.FAILURE)
                self._end(call, now)
                self._events.append(ev.CallFailed(handle=call.handle, status_code=status, reason=reason))
        elif isinstance(tx, NonInviteClientTransaction) and method == "BYE":
            if kind == "response":
                assert isinstance(payload, SipResponse)
                if payload.status_code < 200:
                    return
                self.log.info("[SIP] Received %d %s", payload.status_code, payload.reason)
                status = payload.status_code
                if status in (401, 407) and self._retry_bye_with_auth(call, tx, payload, now):
                    return
            else:
                self.log.info("[SIP] No response to BYE (%s)", kind)
                status = 408
            was_ending = call.state is CallState.ENDING
            self._end(call, now)
            if was_ending:
                self._events.append(ev.CallEnded(handle=call.handle, reason="local hangup", status_code=status))
        elif isinstance(tx, NonInviteClientTransaction) and method == "CANCEL":
            if kind == "response":
                assert isinstance(payload, SipResponse)
                self.log.info("[SIP] Received %d %s (CANCEL)", payload.status_code, payload.reason)
        elif isinstance(tx, InviteServerTransaction):
            if kind == "timeout":
                self.log.debug("[SIP] No ACK for the final response to INVITE (timer H)")

    def _in_dialog_result(self, call: _Call, tx: Transaction, kind: str, payload: object, now: float) -> bool:
        """Our re-INVITE's or in-dialog request's result (``in_dialog.py``); False for any other transaction."""
        return False

    def _answer_leftovers(self, call: _Call, now: float) -> None:
        """Answer what the application left unanswered in an ending call (``in_dialog.py``)."""

    # -- hooks of the extensions (``prack.py``, ``session_refresh.py``) ------------------------------------------
    def _take_provisional(self, call: _Call, response: SipResponse, now: float) -> Optional[bool]:
        """A 1xx to our INVITE: None to drop it (a retransmitted reliable 1xx), else whether it is reliable."""
        return False

    def _start_uac_timer(self, call: _Call, response: SipResponse, now: float) -> None:
        """Our INVITE got a 2xx: start the session timer it grants."""

    def _retry_with_min_se(self, call: _Call, response: SipResponse, now: float) -> bool:
        """A 422 to our INVITE: True when the INVITE went again with a longer Session-Expires."""
        return False

    def _registration_result(self, handle: int, kind: str, payload: object, now: float) -> None:
        """A REGISTER transaction decided (see ``registration.py``)."""

    def _on_invite_response(self, call: _Call, response: SipResponse, now: float) -> None:
        code = response.status_code
        line = f"{code} {response.reason}"
        if code < 200:
            self.log.info("[SIP] Received %s", line)
            call.got_provisional = True
            if call.state is CallState.CALLING and call.dialog.state is DialogState.EARLY:
                if code > 100 and response.to.tag is not None:
                    call.dialog.update_from_response(response)
            reliable = self._take_provisional(call, response, now)
            if reliable is None:  # a retransmitted reliable 1xx (PRACKed already)
                return
            self._events.append(ev.CallProgress(handle=call.handle, status_code=code, reason=response.reason,
                                                body=response.body, content_type=response.content_type,
                                                reliable=reliable, to_tag=response.to.tag))
            if call.cancel_requested and not call.cancel_sent:
                self._send_cancel(call, now)
            return
        if code < 300:
            if call.ack_bytes is not None and call.ack_cseq == response.cseq[0]:
                self.log.debug("[SIP] Retransmitted %s: re-sending ACK", line)
                self._outbox.append((call.ack_bytes, call.ack_dest or call.remote_addr))
                return
            if call.late_offer and call.ack_pending is not None:
                self.log.debug("[SIP] Retransmitted %s before our answer: the ACK follows with it", line)
                return
            self.log.info("[SIP] Received %s", line)
            if call.dialog.state is DialogState.EARLY:
                call.dialog.update_from_response(response)
            if call.late_offer and not call.cancel_requested:
                call.ack_pending = response  # the ACK carries our answer: ``SipEndpoint.ack``
            else:
                self._send_ack(call, response, now)
            if call.cancel_requested:
                call.state = CallState.CONFIRMED
                self._send_bye(call, now)
                self._end(call, now)
                self._events.append(ev.CallFailed(handle=call.handle, status_code=487,
                                                  reason="Request Terminated"))
                return
            call.state = CallState.CONFIRMED
            self._start_uac_timer(call, response, now)
            self._events.append(ev.CallAnswered(handle=call.handle, status_code=code, reason=response.reason,
                                                body=response.body, content_type=response.content_type))
            return
        self.log.info("[SIP] Received %s", line)
        if code in (401, 407) and call.state is CallState.CALLING and not call.cancel_requested:
            try:
                self._retry_invite_with_auth(call, response, now)
                return
            except AuthenticationRejected as exc:
                self.log.warning("[SIP] Authentication failed: %s", exc.reason)
                call.dialog.fire(DialogInput.FAILURE)
                self._end(call, now)
                self._events.append(ev.CallFailed(handle=call.handle, status_code=code, reason=exc.reason))
                return
        if code == 422 and call.state is CallState.CALLING and not call.cancel_requested \
                and self._retry_with_min_se(call, response, now):
            return
        if call.state is CallState.CALLING:
            self.log.info("[SIP] Call failed: %s", line)
            call.dialog.fire(DialogInput.FAILURE)
            self._end(call, now)
            contacts = tuple(response.headers.get_all("Contact")) if code < 400 else ()
            self._events.append(ev.CallFailed(handle=call.handle, status_code=code, reason=response.reason,
                                              contacts=contacts))

    # -- digest authentication (RFC 3261 §22.2) -----------------------------------------------------------------
    def _with_auth(self, request: SipRequest, lines: Sequence[Tuple[str, str]], cseq: int,
                   drop: Tuple[str, ...] = ("Authorization", "Proxy-Authorization")) -> SipRequest:
        """A copy of ``request`` for a retry: a new branch, CSeq ``cseq``, the header lines ``lines`` instead of
        those named in ``drop`` (the credentials, by default)."""
        h = Headers()
        via_done = False
        for name, value in request.headers:
            if name == "Via" and not via_done:
                top = Via.parse(value)
                params = tuple((k, v) for k, v in top.params if k != "branch")
                h.add("Via", str(Via(top.host, top.port, transport=top.transport,
                                     params=(("branch", self._new_branch()),) + params)))
                via_done = True
            elif name == "CSeq":
                h.add("CSeq", f"{cseq} {request.method}")
            elif name in drop:
                continue
            else:
                h.add(name, value)
        for name, value in lines:
            h.add(name, value)
        return SipRequest(request.method, request.uri, h, request.body)

    def _retry_invite_with_auth(self, call: _Call, response: SipResponse, now: float) -> None:
        """Send the INVITE again with credentials (CSeq + 1, same Call-ID and From tag, §22.2).

        Raises:
            AuthenticationRejected: no credentials, no usable challenge, or ours were already refused.
        """
        old = call.invite
        lines = self.auth.answer(response, "INVITE", str(old.uri), call.auth_chain, old.body)
        number = old.cseq[0] + 1
        request = self._with_auth(old, lines, number)
        call.invite = request
        call.dialog.local_cseq = number
        call.got_provisional = False
        self.log.info("[SIP] Authenticating as %r: %s", self.auth.credentials.username if self.auth.credentials
                      else "", describe(response))
        self.log.info("[SIP] Sending INVITE to %s", fmt_addr(call.remote_addr))
        call.invite_tx = self._start_client_tx(request, call.remote_addr, now, call.handle)

    def _retry_bye_with_auth(self, call: _Call, tx: Transaction, response: SipResponse, now: float) -> bool:
        """Send the BYE again with credentials; False when that cannot help (the call then ends anyway)."""
        try:
            lines = self.auth.answer(response, "BYE", str(tx.request.uri), call.bye_chain)
        except AuthenticationRejected as exc:
            self.log.warning("[SIP] BYE authentication failed: %s", exc.reason)
            return False
        call.dialog.local_cseq += 1
        request = self._with_auth(tx.request, lines, call.dialog.local_cseq)
        self.log.info("[SIP] Authenticating the BYE: %s", describe(response))
        self.log.info("[SIP] Sending BYE to %s", fmt_addr(tx.dest))
        self._start_client_tx(request, tx.dest, now, call.handle)
        return True
