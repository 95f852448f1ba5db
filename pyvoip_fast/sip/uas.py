"""Requests that reach the SIP user agent (the UAS side of RFC 3261 §8.2, §12.2.2, §13.3, §15.1.2).

``_UasRequests.on_request`` routes each request: a retransmission goes to its server transaction; a new INVITE
opens a call (100 Trying at once); CANCEL ends a pending INVITE (200 to the CANCEL, 487 to the INVITE, §9.2);
ACK confirms our 2xx (and sends a BYE that waited for it); in-dialog requests (BYE, re-INVITE, OPTIONS, INFO,
REFER, NOTIFY, PRACK, UPDATE) are checked against the dialog (481 when none matches, 500 for an out-of-order
CSeq, 500 + Retry-After for a re-INVITE while the peer's previous one is unanswered and 491 Request Pending while
our own re-INVITE waits for its answer, §14.2); INFO, REFER and NOTIFY in a call go to the application as
``InDialogRequest`` (it answers with ``SipEndpoint.respond``); PRACK and UPDATE go to ``prack.py`` and
``session_refresh.py``; SUBSCRIBE and MESSAGE get 501. OPTIONS is answered with Allow, Accept and Supported
(§11.2) and the SDP the application gives ``options_sdp``; outside a call REFER gets 603 and INFO / NOTIFY /
BYE / PRACK / UPDATE 481, other methods 405, a Require naming an extension we lack 420 (we have 100rel and timer).
``_fix_via`` fills ``received``/``rport`` (RFC 3581).
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

from ..errors import SipParseError
from . import events as ev
from .calls import _ALLOW, _SUPPORTED, SUPPORTED_EXTENSIONS, Addr, CallState, _Call, fmt_addr, option_tags
from .dialog import Dialog, DialogInput
from .digest_server import AuthVerdict
from .message import Headers, SipRequest, Via, make_response
from .transaction import InviteServerTransaction, NonInviteServerTransaction, server_key
from .ua_core import _UaCore


class _UasRequests(_UaCore):
    """How ``SipEndpoint`` handles the requests it receives."""

    def _find_call_for_request(self, request: SipRequest) -> Optional[_Call]:
        call_id = request.call_id
        to_tag = request.to.tag
        for call in self._calls_with_id(call_id):
            d = call.dialog
            if d.local_tag == to_tag and (d.remote_tag is None or
                                                                    d.remote_tag == request.from_.tag):
                return call
        return None

    def _on_request(self, request: SipRequest, addr: Addr, now: float) -> None:
        method = request.method
        try:
            key = server_key(request)
        except SipParseError as exc:  # pragma: no cover - parse_message validated these headers
            self._malformed(request.serialize(), addr, exc)
            return
        request = self._fix_via(request, addr)
        if method == "ACK":
            self._on_ack(request, key, addr, now)
            return
        tx = self._server_tx.get(key)
        if tx is not None:
            self.log.debug("[SIP] Retransmitted %s from %s absorbed", method, fmt_addr(addr))
            tx.receive_request(now)  # type: ignore[attr-defined]
            self._flush_tx(tx)
            return
        if not self._admit(request, addr, now):
            return
        if method == "INVITE":
            self.log.info("[SIP] Received INVITE from %s", fmt_addr(addr))
        else:
            self.log.info("[SIP] Received %s", method)
        mf = request.headers.get("Max-Forwards")
        if mf is not None and int(mf) == 0 and method != "OPTIONS":
            self._respond_new(request, addr, now, 483)
            return
        if method == "CANCEL":
            self._on_cancel(request, key, addr, now)
            return
        unsupported = [tag for tag in option_tags(request, "Require") if tag not in SUPPORTED_EXTENSIONS]
        if unsupported:
            self._respond_new(request, addr, now, 420, headers=(("Unsupported", ", ".join(unsupported)),))
            return
        to_tag = request.to.tag
        if to_tag is not None:
            call = self._find_call_for_request(request)
            if call is None or call.state is CallState.ENDED:
                self._respond_new(request, addr, now, 481)
                return
            number, _ = request.cseq
            if not call.dialog.accept_remote_cseq(number, method):
                self._respond_new(request, addr, now, 500, "Out of order CSeq", to_tag=call.dialog.local_tag)
                return
            self._in_dialog(call, request, key, addr, now)
            return
        if method == "INVITE":
            if self._session_interval_refused(request, addr, now):
                return
            if self.require_auth is None or self._authenticated(request, addr, now):
                self._new_invite(request, key, addr, now)
        elif method == "OPTIONS":
            self._answer_options(request, addr, now)
        elif method in ("BYE", "INFO", "UPDATE", "PRACK", "NOTIFY"):
            self._respond_new(request, addr, now, 481)
        elif method == "REFER":  # a transfer outside any call of ours (RFC 3515 §2.4.2 lets us decline it)
            self._respond_new(request, addr, now, 603, "Decline")
        else:
            self._respond_new(request, addr, now, 405, headers=(("Allow", _ALLOW),))

    def _admit(self, request: SipRequest, addr: Addr, now: float) -> bool:
        """The admission policy's verdict on a new request: True to go on; otherwise it was answered statelessly
        (403, or 503 with Retry-After) or dropped, counted and logged once per source and interval."""
        method = request.method
        if request.to.tag is not None:  # within a call that is up (its BYE, a re-INVITE): never refused
            call = self._find_call_for_request(request)
            if call is not None and call.state is not CallState.ENDED:
                return True
        new_call = method == "INVITE" and request.to.tag is None
        setup = calls = 0
        if new_call:
            counts = self._state_counts
            setup = counts[CallState.INCOMING] + counts[CallState.WAIT_ACK]
            calls = self.live_calls
        verdict = self.admission.check(addr[0], now, method=method if new_call or method == "OPTIONS" else "other",
                                       setup=setup, calls=calls, transactions=self._tx_per_ip.get(addr[0], 0))
        if not verdict.key:
            return True
        if self.admission.should_log(addr[0], verdict.key, now):
            what = f"answered {verdict.status} {verdict.reason}" if verdict.status else "dropped"
            why = {"forbidden": "not in the allow-list", "busy": "over the call or transaction limits",
                   "rate": "over its request rate", "silenced": "still sending after being refused",
                   "overload": "the process is overloaded (late media, or its calls at its CPU limit)"}.get(verdict.key, verdict.key)
            self.log.warning("[SIP] %s from %s %s: %s (not logged again for this source for %.0f s)", method,
                             fmt_addr(addr), what, why, self.admission.log_interval)
        if verdict.status:
            headers = [("Retry-After", str(verdict.retry_after))] if verdict.retry_after is not None else []
            response = make_response(request, verdict.status, verdict.reason, to_tag=self._new_tag(),
                                     headers=headers + [("Server", self.user_agent)])
            self._outbox.append((response.serialize(), addr))
        return False

    def _authenticated(self, request: SipRequest, addr: Addr, now: float) -> bool:
        """RFC 3261 §22.1: a new INVITE without acceptable credentials is answered 401 with a challenge, statelessly
        (a stale nonce gets ``stale=true``); True when the credentials are good."""
        assert self.require_auth is not None
        verdict, user = self.require_auth.verify(request, now)
        if verdict is AuthVerdict.OK:
            self.log.info("[SIP] INVITE from %s authenticated as %r", fmt_addr(addr), user)
            return True
        if verdict is AuthVerdict.REJECTED:
            self.admission.counters["unauthenticated"] += 1
            if self.admission.should_log(addr[0], "unauthenticated", now):
                self.log.warning("[SIP] INVITE from %s with wrong credentials: answered 401 (not logged again for "
                                 "this source for %.0f s)", fmt_addr(addr), self.admission.log_interval)
        challenge = self.require_auth.challenge(now, stale=verdict is AuthVerdict.STALE)
        self.log.info("[SIP] Sending 401 Unauthorized (credentials required)")
        response = make_response(request, 401, to_tag=self._new_tag(),
                                 headers=[("WWW-Authenticate", challenge), ("Server", self.user_agent)])
        self._outbox.append((response.serialize(), addr))
        return False

    def _fix_via(self, request: SipRequest, addr: Addr) -> SipRequest:
        """RFC 3581 / §18.2.1: add received (and rport) to the top Via."""
        values = request.headers.get_all("Via")
        via = Via.parse(values[0])
        changed = False
        if via.param("rport") is not None and via.param("rport") == "":
            via = via.with_param("received", addr[0]).with_param("rport", str(addr[1]))
            changed = True
        elif via.host != addr[0]:
            via = via.with_param("received", addr[0])
            changed = True
        if not changed:
            return request
        h = Headers()
        first = True
        for name, value in request.headers:
            if name == "Via":
                if first:
                    first = False
                    for v in [str(via)] + values[1:]:
                        h.add("Via", v)
                continue
            h.add(name, value)
        return SipRequest(request.method, request.uri, h, request.body, request.version)

    def _new_invite(self, request: SipRequest, key: Tuple[str, ...], addr: Addr, now: float) -> None:
        # a retransmission with another branch (RFC 2543 peers) must not create a second call
        from_tag = request.from_.tag
        number, _ = request.cseq
        for call in self._calls_with_id(request.call_id):
            if (not call.is_caller and call.dialog.remote_tag == from_tag and call.invite_cseq == number):
                self.log.debug("[SIP] Duplicate INVITE for an existing call ignored")
                return
        tx = InviteServerTransaction(key, request, addr, self.timers)
        self._add_server_tx(key, tx)
        trying = make_response(request, 100)
        self.log.info("[SIP] Sending 100 Trying")
        tx.send_response(trying, now)
        local_tag = self._new_tag()
        dialog = Dialog.for_uas(request, local_tag)
        handle = self._new_handle()
        call = _Call(handle, dialog, addr, request, is_caller=False)
        call.transport = request.top_via.transport.upper()
        call.peer_100rel = "100rel" in option_tags(request, "Supported") + option_tags(request, "Require")
        call.peer_allow = tuple(m.strip().upper() for v in request.headers.get_all("Allow") for m in v.split(","))
        call.invite_tx = key
        self._add_call(call)
        self._tx_call[key] = handle
        self._events.append(
            ev.IncomingCall(
                handle=handle, call_id=request.call_id, request=request, remote_addr=addr,
                from_uri=str(request.from_.uri), to_uri=str(request.to.uri), body=request.body,
                content_type=request.content_type,
            )
        )

    def _on_cancel(self, request: SipRequest, key: Tuple[str, ...], addr: Addr, now: float) -> None:
        invite_key = key[:-1] + ("INVITE",)
        ist = self._server_tx.get(invite_key)
        handle = self._tx_call.get(invite_key)
        call = self._calls.get(handle) if handle is not None else None
        if ist is None or call is None:
            self._respond_new(request, addr, now, 481)
            return
        self._respond_new(request, addr, now, 200, to_tag=call.dialog.local_tag, report=False)
        if call.state is CallState.INCOMING and not ist.final_sent:  # type: ignore[attr-defined]
            self._respond_invite(call, 487, None, now)
            call.dialog.fire(DialogInput.FAILURE)
            self._end(call, now)
            self._events.append(ev.CallCancelled(handle=call.handle))

    def _on_ack(self, request: SipRequest, key: Tuple[str, ...], addr: Addr, now: float) -> None:
        tx = self._server_tx.get(key)
        if tx is not None and isinstance(tx, InviteServerTransaction) and tx.state.name in ("COMPLETED", "CONFIRMED"):
            self.log.debug("[SIP] Received ACK for a non-2xx final response")
            tx.receive_ack(request, now)
            return
        call = self._find_call_for_request(request) if request.to.tag else None
        if call is None:
            self.log.debug("[SIP] ACK matching no call dropped")
            return
        number, _ = request.cseq
        if call.ok_bytes is not None and number == call.ok_cseq:
            self.log.info("[SIP] Received ACK")
            self._acked(call, now, request)
        else:
            self.log.debug("[SIP] Retransmitted ACK absorbed")

    def _acked(self, call: _Call, now: float, ack: Optional[SipRequest] = None) -> bool:
        """Our 2xx counts as acknowledged: stop retransmitting it and confirm the call (with the ACK's body: the
        answer to an offer our 2xx carried). Returns True when a BYE the user asked for while waiting for the ACK
        was sent now."""
        call.ok_bytes = None
        if call.state is not CallState.WAIT_ACK:
            return False
        call.state = CallState.CONFIRMED
        self._events.append(ev.CallConfirmed(handle=call.handle, body=ack.body if ack is not None else b"",
                                             content_type=ack.content_type if ack is not None else None))
        if call.pending_bye:
            self._send_bye(call, now)
            return True
        return False

    def _in_dialog(self, call: _Call, request: SipRequest, key: Tuple[str, ...], addr: Addr, now: float) -> None:
        method = request.method
        contact = request.contact
        if method == "BYE":
            self._respond_new(request, addr, now, 200, to_tag=call.dialog.local_tag, report=False)
            was_unconfirmed = call.state is CallState.WAIT_ACK
            call.dialog.fire(DialogInput.BYE)
            self._end(call, now)
            if was_unconfirmed:
                self._events.append(ev.CallConfirmed(handle=call.handle))
            self._events.append(ev.CallEnded(handle=call.handle, reason="remote hangup", status_code=200))
        elif method == "INVITE":
            pending = self._server_tx.get(call.reinvite_tx) if call.reinvite_tx is not None else None
            if pending is not None and not pending.final_sent:  # type: ignore[attr-defined]
                # §14.2: a second INVITE before our final response to the first one -> 500 with Retry-After
                self._respond_new(request, addr, now, 500, "Previous INVITE still pending",
                                  to_tag=call.dialog.local_tag, headers=(("Retry-After", "1"),))
                return
            if call.ok_bytes is not None and call.state in (CallState.WAIT_ACK, CallState.CONFIRMED):
                # Our 2xx (which carried the answer) is not ACKed yet, but a re-INVITE with a higher CSeq proves
                # the peer got it and sent its ACK, which is late or lost: the offer/answer exchange is complete,
                # so this is not a glare (491 is only for an INVITE of ours in progress, §14.2; RFC 5407 §3.1.4).
                # Take the ACK as received and handle the re-INVITE.
                self.log.info("[SIP] re-INVITE before the ACK of our 200 OK: taking the ACK as received")
                if self._acked(call, now):  # the call was ending: a BYE went out, the re-INVITE has no dialog
                    self._respond_new(request, addr, now, 481, to_tag=call.dialog.local_tag)
                    return
            if call.state is not CallState.CONFIRMED or call.reinvite_out is not None or call.update_out is not None:
                # §14.2: our own re-INVITE (or UPDATE) is waiting for its answer (glare): the peer retries later
                self._respond_new(request, addr, now, 491, to_tag=call.dialog.local_tag)
                return
            if self._session_interval_refused(request, addr, now, to_tag=call.dialog.local_tag):
                return
            if contact is not None:
                call.dialog.remote_target = contact.uri
            tx = InviteServerTransaction(key, request, addr, self.timers)
            self._add_server_tx(key, tx)
            tx.send_response(make_response(request, 100), now)
            call.reinvite_tx = key
            call.invite = request
            self._events.append(ev.ReInviteReceived(handle=call.handle, request=request, body=request.body))
        elif method == "OPTIONS":
            self._answer_options(request, addr, now, to_tag=call.dialog.local_tag)
        elif method == "PRACK":
            self._on_prack(call, request, addr, now)
        elif method == "UPDATE":
            self._on_update(call, request, key, addr, now)
        elif method in ("INFO", "REFER", "NOTIFY"):
            if call.state not in (CallState.CONFIRMED, CallState.WAIT_ACK):
                self._respond_new(request, addr, now, 481, to_tag=call.dialog.local_tag)
                return
            # the application answers (``respond``): DTMF in INFO, a transfer in REFER, its progress in NOTIFY.
            # The server transaction absorbs the request's retransmissions meanwhile; one left unanswered for
            # 64·T1 (the peer's timer F has given up by then) is answered 500 by the endpoint (``in_dialog.py``).
            self._add_server_tx(key, NonInviteServerTransaction(key, request, addr, self.timers))
            deadline = now + self.timers.b
            call.requests_in[key] = deadline
            self._schedule(deadline, call)
            self._events.append(ev.InDialogRequest(handle=call.handle, request=request))
        else:
            # methods we know but do not implement in a dialog (RFC 3261 §8.2.1: 501 Not Implemented; SUBSCRIBE,
            # MESSAGE), anything else 405 with the methods we do take
            self._respond_new(request, addr, now, 501 if method in ("SUBSCRIBE", "MESSAGE")
                              else 405, to_tag=call.dialog.local_tag, headers=(("Allow", _ALLOW),))

    # -- hooks of the extensions (``prack.py``, ``session_refresh.py``) and OPTIONS ---------------------------------
    #: what an OPTIONS answer carries as the SDP of what we would offer (set by the application; None: no body)
    options_sdp: Optional[Callable[[], bytes]] = None

    def _answer_options(self, request: SipRequest, addr: Addr, now: float, to_tag: Optional[str] = None) -> None:
        """RFC 3261 §11.2: our capabilities: Allow, Accept, Supported, and an SDP of what we would offer when the
        application provides one (RFC 3264 §9)."""
        headers: List[Tuple[str, str]] = [
            ("Allow", _ALLOW), ("Accept", "application/sdp"), ("Accept-Encoding", "identity"),
            ("Accept-Language", "en"), ("Supported", _SUPPORTED), ("Server", self.user_agent)]
        body = b""
        if self.options_sdp is not None and "application/sdp" in (request.headers.get("Accept") or "application/sdp"):
            try:
                body = self.options_sdp()
            except Exception as exc:  # an application callback must not keep OPTIONS from being answered
                self.log.warning("[SIP] No SDP for the OPTIONS answer: %s", exc)
                body = b""
        if body:
            headers.append(("Content-Type", "application/sdp"))
        self._respond_new(request, addr, now, 200, headers=tuple(headers), to_tag=to_tag, body=body)

    def _on_prack(self, call: _Call, request: SipRequest, addr: Addr, now: float) -> None:
        """The caller's PRACK (``prack.py``)."""
        self._respond_new(request, addr, now, 481, to_tag=call.dialog.local_tag)

    def _on_update(self, call: _Call, request: SipRequest, key: Tuple[str, ...], addr: Addr, now: float) -> None:
        """The peer's UPDATE (``session_refresh.py``)."""
        self._respond_new(request, addr, now, 501, to_tag=call.dialog.local_tag)

    def _session_interval_refused(self, request: SipRequest, addr: Addr, now: float,
                                  to_tag: Optional[str] = None) -> bool:
        """An INVITE or UPDATE whose Session-Expires is below our Min-SE was answered 422 (``session_refresh.py``)."""
        return False
