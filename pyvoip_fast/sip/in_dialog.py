"""Requests a call's application sends and answers inside the dialog: our re-INVITE, INFO / REFER / NOTIFY.

Strategy
--------
``SipEndpoint`` answers most in-dialog requests on its own (BYE, OPTIONS, a re-INVITE through
``ReInviteReceived``). What a program on the call decides is here, in the same sans-IO style:

- ``reinvite(handle, now, body=...)``: our own re-INVITE (hold, resume, a new codec; RFC 3261 §14.1). One at a time
  and never while an INVITE of the peer is unanswered or unacknowledged; the peer's re-INVITE meanwhile gets 491
  (``uas.py``). The final answer is one ``ReInviteAnswered`` event; a 2xx is ACKed at once (and again for each
  retransmission of it), 401/407 are answered once with our credentials.
- ``request(handle, method, now, ...)``: INFO (RFC 6086), REFER (RFC 3515), NOTIFY (RFC 6665), MESSAGE or OPTIONS
  in the dialog, a non-INVITE client transaction (§17.1.2); the final answer is one ``InDialogResponse`` with the
  request's id (408 on timeout, 503 on a transport error; 401/407 answered once per request, §22.2).
- ``respond(handle, request, now, status, ...)``: the answer to an ``InDialogRequest`` (INFO, REFER, NOTIFY the
  peer sent), through the server transaction the endpoint kept for it, which absorbs the request's
  retransmissions (§17.2.2). A call that ends first answers what is left with 481; a request still unanswered
  after 64·T1 gets 500 and a warning (the peer gave up at its timer F; the transaction must not linger).
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

from ..errors import LocalProtocolError
from . import events as ev
from .calls import _ALLOW, _SUPPORTED, CallState, _Call, fmt_addr
from .digest import AuthenticationRejected
from .message import SipRequest, SipResponse, make_response
from .registration import _Registering
from .transaction import InviteClientTransaction, NonInviteClientTransaction, Transaction, server_key

__all__ = ["_InDialog"]

_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
#: methods with their own API (PRACK is the endpoint's own: ``prack.py``; UPDATE is ``update()``)
_NOT_BY_REQUEST = ("INVITE", "ACK", "CANCEL", "BYE", "PRACK", "UPDATE", "REGISTER")


class _InDialog(_Registering):
    """The in-dialog requests of ``SipEndpoint`` (see the module docstring)."""

    def reinvite(self, handle: int, now: float, *, body: bytes, content_type: str = "application/sdp",
                 extra_headers: Tuple[Tuple[str, str], ...] = ()) -> None:
        """Send a re-INVITE in an established call (our new offer in ``body``); the answer is a
        ``ReInviteAnswered`` event.

        Raises:
            LocalProtocolError: the call is not established, or an INVITE transaction of either side is in
                progress (§14.1: one at a time).
        """
        call = self._call(handle)
        if call.state is not CallState.CONFIRMED:
            raise LocalProtocolError("a re-INVITE needs an established call")
        pending_in = self._server_tx.get(call.reinvite_tx) if call.reinvite_tx is not None else None
        if (call.reinvite_out is not None or (pending_in is not None and not pending_in.final_sent)  # type: ignore[attr-defined]
                or call.ok_bytes is not None):
            raise LocalProtocolError("an INVITE transaction of this call is still in progress")
        hop = self._dialog_hop(call)
        extra: Tuple[Tuple[str, str], ...] = (("Allow", _ALLOW), ("Supported", _SUPPORTED),
                                              ("User-Agent", self.user_agent), *extra_headers)
        if not extra_headers:
            extra += tuple(self._refresh_lines(call))
        request = call.dialog.create_request("INVITE", self._via(transport=hop.transport),
                                             contact=self._contact(hop.transport), body=body,
                                             content_type=content_type, extra_headers=extra)
        hop = self._fit_transport(request, hop)
        call.reinvite_chain = {}
        if body:
            call.local_body = body
        self.log.info("[SIP] Sending re-INVITE to %s", fmt_addr(hop.addr))
        call.reinvite_out = self._start_client_tx(request, hop.addr, now, call.handle)
        self._collect(now)

    def request(self, handle: int, method: str, now: float, *, headers: Sequence[Tuple[str, str]] = (),
                body: bytes = b"", content_type: Optional[str] = None) -> int:
        """Send ``method`` (INFO, REFER, NOTIFY, MESSAGE, OPTIONS...) inside an established call (§12.2.1.1).

        Args:
            handle: the call; method: the method token; now: the current time.
            headers: extra header lines (``Event``, ``Refer-To``, ``Subscription-State``...).
            body / content_type: the body and its type (``text/plain`` when a body comes without one).

        Returns:
            the request's id, which its ``InDialogResponse`` event carries.

        Raises:
            ValueError: not a method token, or one with its own API (INVITE, ACK, CANCEL, BYE) or none.
            LocalProtocolError: the call is not established.
        """
        if not isinstance(method, str) or not _TOKEN.fullmatch(method) or method.upper() in _NOT_BY_REQUEST:
            raise ValueError(f"cannot send {method!r} with request()")
        call = self._call(handle)
        if call.state is not CallState.CONFIRMED:
            raise LocalProtocolError(f"{method} needs an established call")
        hop = self._dialog_hop(call)
        extra = tuple(headers) + (("User-Agent", self.user_agent),)
        # §7.4.1: a body names its type; without one given, say what it at least is (never application/sdp)
        request = call.dialog.create_request(method, self._via(transport=hop.transport), body=body,
                                             content_type=content_type or "text/plain", extra_headers=extra)
        hop = self._fit_transport(request, hop)
        request_id = self._new_handle()
        self.log.info("[SIP] Sending %s to %s", method, fmt_addr(hop.addr))
        key = self._start_client_tx(request, hop.addr, now, call.handle)
        call.requests_out[key] = (request_id, {})
        self._collect(now)
        return request_id

    def respond(self, handle: int, request: SipRequest, now: float, status_code: int, reason: Optional[str] = None,
                *, headers: Sequence[Tuple[str, str]] = (), body: bytes = b"",
                content_type: Optional[str] = None) -> None:
        """Answer an ``InDialogRequest`` (once; later retransmissions of the request get this answer again from
        the transaction, §17.2.2). A body without ``content_type`` is sent as ``text/plain``.

        Raises:
            LocalProtocolError: that request is not waiting for an answer (answered already, or unknown).
            ValueError: a status code outside 200-699, or a header value with a line break.
        """
        if not isinstance(status_code, int) or not 200 <= status_code <= 699:
            raise ValueError(f"a final status code is 200-699, not {status_code!r}")
        call = self._call(handle)
        key = server_key(request)
        tx = self._server_tx.get(key)
        if key not in call.requests_in or tx is None or tx.final_sent:  # type: ignore[attr-defined]
            raise LocalProtocolError(f"no {request.method} of this call is waiting for an answer")
        extra = list(headers)
        if body:
            extra.append(("Content-Type", content_type or "text/plain"))
        response = make_response(request, status_code, reason, to_tag=call.dialog.local_tag, headers=extra,
                                 body=body)  # a bad header raises ValueError here, and the request still waits
        del call.requests_in[key]
        self.log.info("[SIP] Sending %d %s (%s)", response.status_code, response.reason, request.method)
        tx.send_response(response, now)  # type: ignore[attr-defined]
        self._collect(now)

    # -- hooks of the session timers (``session_refresh.py``) --------------------------------------------------------
    def _refresh_lines(self, call: _Call) -> List[Tuple[str, str]]:
        """Session-Expires (and Require: timer) for a re-INVITE of ours while a session timer runs."""
        return []

    def _refresh_answered(self, call: _Call, response: Optional[SipResponse], code: int, now: float) -> None:
        """The final answer to our re-INVITE or UPDATE (a 2xx restarts a session timer)."""

    # -- results (called from ``_UaCore._tx_result``) ---------------------------------------------------------------

    def _in_dialog_result(self, call: _Call, tx: Transaction, kind: str, payload: object, now: float) -> bool:
        if isinstance(tx, InviteClientTransaction) and tx.key == call.reinvite_out:
            self._reinvite_result(call, tx, kind, payload, now)
            return True
        if isinstance(tx, NonInviteClientTransaction) and tx.key in call.requests_out:
            self._request_result(call, tx, kind, payload, now)
            return True
        return False

    def _reinvite_result(self, call: _Call, tx: Transaction, kind: str, payload: object, now: float) -> None:
        if kind == "response":
            assert isinstance(payload, SipResponse)
            code = payload.status_code
            if code < 200:
                self.log.debug("[SIP] Received %d %s (re-INVITE)", code, payload.reason)
                return
            self.log.info("[SIP] Received %d %s (re-INVITE)", code, payload.reason)
            call.reinvite_out = None
            if 200 <= code < 300:
                # §13.2.2.4: every 2xx is ACKed, even once our BYE went out; a re-INVITE is a target refresh
                # request, so the 2xx's Contact is where the dialog's requests go from now on (§12.2.1.2)
                contact = payload.contact
                if contact is not None and call.state is not CallState.ENDED:
                    call.dialog.remote_target = contact.uri
                self._send_ack(call, payload, now)
            elif code in (401, 407) and self._retry_reinvite_with_auth(call, tx, payload, now):
                return
            self._refresh_answered(call, payload, code, now)
            self._events.append(ev.ReInviteAnswered(handle=call.handle, status_code=code, reason=payload.reason,
                                                    body=payload.body if code < 300 else b"",
                                                    content_type=payload.content_type))
        elif kind in ("timeout", "transport_error"):
            call.reinvite_out = None
            code, reason = (408, "Request Timeout") if kind == "timeout" else (503, "Service Unavailable")
            self.log.info("[SIP] re-INVITE failed: %d %s", code, reason)
            self._refresh_answered(call, None, code, now)
            self._events.append(ev.ReInviteAnswered(handle=call.handle, status_code=code, reason=reason))

    def _retry_reinvite_with_auth(self, call: _Call, tx: Transaction, response: SipResponse, now: float) -> bool:
        try:
            lines = self.auth.answer(response, "INVITE", str(tx.request.uri), call.reinvite_chain, tx.request.body)
        except AuthenticationRejected as exc:
            self.log.warning("[SIP] re-INVITE authentication failed: %s", exc.reason)
            return False
        call.dialog.local_cseq += 1
        request = self._with_auth(tx.request, lines, call.dialog.local_cseq)
        self.log.info("[SIP] Sending re-INVITE to %s (with credentials)", fmt_addr(tx.dest))
        call.reinvite_out = self._start_client_tx(request, tx.dest, now, call.handle)
        return True

    def _request_result(self, call: _Call, tx: Transaction, kind: str, payload: object, now: float) -> None:
        method = tx.request.method
        response: Optional[SipResponse] = None
        if kind == "response":
            assert isinstance(payload, SipResponse)
            if payload.status_code < 200:
                return
            response = payload
            code, reason = payload.status_code, payload.reason
            self.log.info("[SIP] Received %d %s (%s)", code, reason, method)
            if code in (401, 407) and tx.key in call.requests_out:
                request_id, chain = call.requests_out[tx.key]
                try:
                    lines = self.auth.answer(payload, method, str(tx.request.uri), chain, tx.request.body)
                except AuthenticationRejected as exc:
                    self.log.warning("[SIP] %s authentication failed: %s", method, exc.reason)
                else:  # §22.2: the same request again, CSeq + 1, with credentials (once: the chain refuses more)
                    del call.requests_out[tx.key]
                    call.dialog.local_cseq += 1
                    retry = self._with_auth(tx.request, lines, call.dialog.local_cseq)
                    self.log.info("[SIP] Sending %s to %s (with credentials)", method, fmt_addr(tx.dest))
                    call.requests_out[self._start_client_tx(retry, tx.dest, now, call.handle)] = (request_id, chain)
                    return
        else:
            code, reason = (408, "Request Timeout") if kind == "timeout" else (503, "Service Unavailable")
            self.log.info("[SIP] No answer to %s: %d %s", method, code, reason)
        request_id = call.requests_out.pop(tx.key, (-1, {}))[0]
        if request_id >= 0:
            self._events.append(ev.InDialogResponse(handle=call.handle, request_id=request_id, method=method,
                                                    status_code=code, reason=reason, response=response))

    def _answer_leftovers(self, call: _Call, now: float) -> None:
        """The call ended: its unanswered in-dialog requests get 481 (their transactions must not linger)."""
        for key in list(call.requests_in):
            self._answer_unanswered(call, key, 481, None, now)
        call.requests_in.clear()

    def _expire_requests_in(self, call: _Call, now: float) -> None:
        """Requests the application left unanswered for 64·T1 get ``500 Not Answered``: the peer's timer F has
        fired by then (§17.1.2.2), but the transaction must end, free its place in the per-source transaction
        budget (``admission.py``) and log why. A 500 ends only the transaction, never the call (RFC 5057 §5.1);
        408 would ask the peer to end the dialog (§12.2.1.2)."""
        for key, deadline in list(call.requests_in.items()):
            if deadline <= now:
                del call.requests_in[key]
                self._answer_unanswered(call, key, 500, "Not Answered", now)

    def _answer_unanswered(self, call: _Call, key: Tuple[str, ...], status: int, reason: Optional[str],
                           now: float) -> None:
        tx = self._server_tx.get(key)
        if tx is None or tx.final_sent:  # type: ignore[attr-defined]
            return
        if status == 500:
            self.log.warning("[SIP] %s not answered by the application in %.0f s: sending 500", tx.request.method,
                             self.timers.b)
        response = make_response(tx.request, status, reason, to_tag=call.dialog.local_tag)
        tx.send_response(response, now)  # type: ignore[attr-defined]
