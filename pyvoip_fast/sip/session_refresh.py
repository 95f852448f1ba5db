"""UPDATE (RFC 3311) both ways, and session timers (RFC 4028) on top of re-INVITE and UPDATE.

Strategy
--------
UPDATE changes the session in an early or confirmed dialog without an INVITE transaction:

- one from the peer with an SDP offer becomes ``UpdateReceived``; the application answers it with
  ``answer_update`` (200 + SDP answer, or 488). One without a body only refreshes the session: the endpoint
  answers 200 itself. An offer while another offer of either side is unanswered gets 491 (§5.2).
- ``update(handle, now, body=...)`` sends ours; its final answer is ``UpdateAnswered``.

Session timers (``session_timer.py``): every INVITE we send says ``Supported: timer`` and asks for
``session_expires`` seconds (``Session-Expires``, ``Min-SE``); a 422 is answered once by asking again for the
server's ``Min-SE``. An INVITE that asks for less than our ``min_se`` gets 422 (when the caller supports timers);
otherwise our 2xx grants its interval and names the refresher (the caller's choice, else the caller when it
supports timers, else us) with ``Require: timer``. Every 2xx to a re-INVITE or UPDATE of either side restarts the
interval. The refresher refreshes at half the interval: an UPDATE without a body when the peer allows UPDATE,
else a re-INVITE repeating our last session description. The other side, or a refresher whose refresh failed
with 408 or 481, ends the call with BYE at the interval's end less ``min(32, interval / 3)`` s (§10), reported
as ``CallEnded(reason="session expired")``.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from ..errors import LocalProtocolError, SipParseError
from . import events as ev
from .calls import _ALLOW, _SUPPORTED, Addr, CallState, _Call, fmt_addr, option_tags
from .dialog import DialogState
from .message import SipRequest, SipResponse, make_response
from .prack import _Reliable
from .session_timer import DEFAULT_SESSION_EXPIRES, MIN_SE_FLOOR, SessionExpires, SessionTimer, parse_min_se
from .transaction import NonInviteClientTransaction, NonInviteServerTransaction, Transaction

__all__ = ["_SessionRefresh"]


def _allow_of(message: object) -> Tuple[str, ...]:
    methods: List[str] = []
    for value in message.headers.get_all("Allow"):  # type: ignore[attr-defined]
        methods.extend(m.strip().upper() for m in value.split(",") if m.strip())
    return tuple(methods)


def _session_expires(message: object) -> Optional[SessionExpires]:
    """The message's Session-Expires, None when absent; SipParseError when malformed."""
    value = message.headers.get("Session-Expires")  # type: ignore[attr-defined]
    return SessionExpires.parse(value) if value is not None else None


class _SessionRefresh(_Reliable):
    """UPDATE and session timers for ``SipEndpoint`` (see the module docstring)."""

    #: the session interval our INVITEs ask for (None: no session timer is asked for)
    session_expires: Optional[int] = DEFAULT_SESSION_EXPIRES
    #: the smallest interval we accept in a peer's request (422 below it). RFC 4028 §4 puts it at 90 s at least;
    #: a smaller value is for tests that want a session to expire within seconds
    min_se: int = MIN_SE_FLOOR

    # -- the headers ----------------------------------------------------------------------------------------------
    def _invite_headers(self) -> List[Tuple[str, str]]:
        """What our initial INVITE says about extensions."""
        lines = [("Supported", _SUPPORTED)]
        if self.session_expires is not None:
            lines += [("Session-Expires", str(max(self.session_expires, self.min_se))),
                      ("Min-SE", str(self.min_se))]
        return lines

    def _timer_lines(self, call: _Call, we_answer: bool) -> List[Tuple[str, str]]:
        """Session-Expires (and Require: timer) for a 2xx we send, or for a refresh request of ours."""
        if call.timer is None:
            return []
        lines = [("Session-Expires", call.timer.header(we_are_uac=not we_answer))]
        if not we_answer or "timer" in option_tags(call.invite, "Supported") + option_tags(call.invite, "Require"):
            lines.append(("Require", "timer"))
        return lines

    # -- the peer's requests ----------------------------------------------------------------------------------------
    def _session_interval_refused(self, request: SipRequest, addr: Addr, now: float,
                                  to_tag: Optional[str] = None) -> bool:
        """§8.1: an INVITE or UPDATE asking for less than our Min-SE gets 422 (only when the caller supports timers:
        a Session-Expires a proxy inserted is raised instead). True when it was answered."""
        try:
            wanted = _session_expires(request)
        except SipParseError as exc:
            self._respond_new(request, addr, now, 400, f"Bad Session-Expires ({exc})"[:120], to_tag=to_tag)
            return True
        if wanted is None or wanted.interval >= self.min_se:
            return False
        if "timer" not in option_tags(request, "Supported") + option_tags(request, "Require"):
            return False
        self.log.info("[SIP] Session-Expires %d is below our Min-SE %d: sending 422", wanted.interval, self.min_se)
        self._respond_new(request, addr, now, 422, to_tag=to_tag, headers=(("Min-SE", str(self.min_se)),))
        return True

    def _grant_session(self, call: _Call, request: SipRequest, now: float) -> None:
        """The peer's INVITE, re-INVITE or UPDATE is being answered 2xx: set or restart the session timer from its
        Session-Expires (§9). Without one, a running timer keeps its interval and restarts."""
        try:
            wanted = _session_expires(request)
        except SipParseError:
            wanted = None
        if wanted is None:
            if call.timer is not None:
                call.timer.restart(now)
            return
        interval = max(wanted.interval, self.min_se)
        supports = "timer" in option_tags(request, "Supported") + option_tags(request, "Require")
        refresher = wanted.refresher or ("uac" if supports else "uas")
        we_refresh = refresher == "uas"  # we answer this transaction: "uas" is us
        if call.timer is None:
            call.timer = SessionTimer(interval, we_refresh, now)
            self.log.info("[SIP] Session timer: %d s, refreshed by %s", interval, "us" if we_refresh else "the peer")
        else:
            call.timer.restart(now, interval, we_refresh)
        self._schedule(call.timer.next_deadline(), call)

    def _on_update(self, call: _Call, request: SipRequest, key: Tuple[str, ...], addr: Addr, now: float) -> None:
        """A peer's UPDATE (RFC 3311 §5.2)."""
        tag = call.dialog.local_tag
        if call.state not in (CallState.INCOMING, CallState.WAIT_ACK, CallState.CONFIRMED):
            self._respond_new(request, addr, now, 481, to_tag=tag)
            return
        if self._session_interval_refused(request, addr, now, to_tag=tag):
            return
        offer_pending = call.update_in is not None or call.update_out is not None or call.reinvite_out is not None \
            or call.ok_bytes is not None
        if request.body and offer_pending:
            self._respond_new(request, addr, now, 491, to_tag=tag)
            return
        contact = request.contact
        if contact is not None:  # §6.1: UPDATE is a target refresh request
            call.dialog.remote_target = contact.uri
        if not request.body:
            self._grant_session(call, request, now)
            lines = [("Contact", self._contact(call.transport))] + self._timer_lines(call, True)
            self._respond_new(request, addr, now, 200, to_tag=tag, report=False, headers=tuple(lines))
            return
        self._add_server_tx(key, NonInviteServerTransaction(key, request, addr, self.timers))
        call.update_in = key
        deadline = now + self.timers.b
        call.requests_in[key] = deadline  # answered 500 by the endpoint if the application never does
        self._schedule(deadline, call)
        self._events.append(ev.UpdateReceived(handle=call.handle, request=request, body=request.body))

    def answer_update(self, handle: int, now: float, *, status_code: int = 200, body: bytes = b"",
                      content_type: str = "application/sdp", headers: Sequence[Tuple[str, str]] = ()) -> None:
        """Answer the peer's pending UPDATE (200 with our SDP answer, or e.g. 488 to refuse the change).

        Raises:
            LocalProtocolError: no UPDATE of this call waits for an answer. ValueError: not 200-699.
        """
        if not isinstance(status_code, int) or not 200 <= status_code <= 699:
            raise ValueError(f"a final status code is 200-699, not {status_code!r}")
        call = self._call(handle)
        key = call.update_in
        tx = self._server_tx.get(key) if key is not None else None
        if key is None or tx is None or tx.final_sent:  # type: ignore[attr-defined]
            raise LocalProtocolError("no UPDATE waiting for an answer")
        call.update_in = None
        call.requests_in.pop(key, None)
        extra = [("Contact", self._contact(call.transport)), ("Allow", _ALLOW), *headers]
        if status_code < 300:
            self._grant_session(call, tx.request, now)
            extra += self._timer_lines(call, True)
            if body:
                extra.append(("Content-Type", content_type))
                call.local_body = body
        response = make_response(tx.request, status_code, to_tag=call.dialog.local_tag, headers=extra,
                                 body=body if status_code < 300 else b"")
        self.log.info("[SIP] Sending %d %s (UPDATE)", response.status_code, response.reason)
        tx.send_response(response, now)  # type: ignore[attr-defined]
        self._collect(now)

    # -- our UPDATE ---------------------------------------------------------------------------------------------
    def update(self, handle: int, now: float, *, body: bytes = b"", content_type: str = "application/sdp") -> None:
        """Send an UPDATE (with our new offer in ``body``, or without a body as a session refresh); the final answer
        is an ``UpdateAnswered`` event.

        Raises:
            LocalProtocolError: the dialog is neither confirmed nor early with a tag, or an UPDATE of ours is
                still unanswered.
        """
        call = self._call(handle)
        if call.update_out is not None:
            raise LocalProtocolError("our previous UPDATE is still unanswered")
        self._send_update(call, body, content_type, now, refresh=False)
        self._collect(now)

    def _send_update(self, call: _Call, body: bytes, content_type: str, now: float, refresh: bool) -> None:
        usable = call.state is CallState.CONFIRMED or (
            call.state in (CallState.CALLING, CallState.INCOMING, CallState.WAIT_ACK)
            and call.dialog.state is DialogState.EARLY and call.dialog.remote_tag is not None)
        if not usable:
            raise LocalProtocolError("UPDATE needs a confirmed dialog or an early one")
        hop = self._dialog_hop(call)
        extra = [("Allow", _ALLOW), ("Supported", _SUPPORTED), ("User-Agent", self.user_agent)]
        extra += self._timer_lines(call, we_answer=False)
        request = call.dialog.create_request("UPDATE", self._via(transport=hop.transport),
                                             contact=self._contact(hop.transport), body=body,
                                             content_type=content_type, extra_headers=tuple(extra))
        hop = self._fit_transport(request, hop)
        self.log.info("[SIP] Sending UPDATE to %s%s", fmt_addr(hop.addr), " (session refresh)" if refresh else "")
        call.update_out = self._start_client_tx(request, hop.addr, now, call.handle)
        if body:
            call.local_body = body
        call.update_refresh = refresh  # an UPDATE of ours that only refreshes: no application waits for it

    def _update_result(self, call: _Call, tx: Transaction, kind: str, payload: object, now: float) -> bool:
        if not isinstance(tx, NonInviteClientTransaction) or tx.key != call.update_out:
            return False
        refresh = call.update_refresh
        if kind == "response":
            assert isinstance(payload, SipResponse)
            code, reason = payload.status_code, payload.reason
            if code < 200:
                return True
            self.log.info("[SIP] Received %d %s (UPDATE)", code, reason)
        else:
            code, reason = (408, "Request Timeout") if kind == "timeout" else (503, "Service Unavailable")
            self.log.info("[SIP] No answer to UPDATE: %d %s", code, reason)
            payload = None
        call.update_out = None
        self._refresh_answered(call, payload if isinstance(payload, SipResponse) else None, code, now)
        if not refresh:
            response = payload if isinstance(payload, SipResponse) else None
            self._events.append(ev.UpdateAnswered(
                handle=call.handle, status_code=code, reason=reason,
                body=response.body if response is not None and code < 300 else b"",
                content_type=response.content_type if response is not None else None))
        return True

    def _in_dialog_result(self, call: _Call, tx: Transaction, kind: str, payload: object, now: float) -> bool:
        return (self._update_result(call, tx, kind, payload, now) or self._prack_result(call, tx, kind, payload)
                or super()._in_dialog_result(call, tx, kind, payload, now))

    # -- session timers: our side -----------------------------------------------------------------------------------
    def _refresh_lines(self, call: _Call) -> List[Tuple[str, str]]:
        return self._timer_lines(call, we_answer=False)

    def _start_uac_timer(self, call: _Call, response: SipResponse, now: float) -> None:
        """Our INVITE got a 2xx: take the session interval it grants (none when it has no Session-Expires)."""
        call.peer_allow = _allow_of(response) or call.peer_allow
        try:
            granted = _session_expires(response)
        except SipParseError as exc:
            self.log.warning("[SIP] Ignoring a malformed Session-Expires in the 2xx: %s", exc)
            return
        if granted is None:
            return
        we_refresh = granted.refresher != "uas"  # we sent the INVITE: "uac" (or none named: §7.2) is us
        call.timer = SessionTimer(max(granted.interval, self.min_se), we_refresh, now)
        self.log.info("[SIP] Session timer: %d s, refreshed by %s", call.timer.interval,
                      "us" if we_refresh else "the peer")
        self._schedule(call.timer.next_deadline(), call)

    def _refresh_answered(self, call: _Call, response: Optional[SipResponse], code: int, now: float) -> None:
        """The answer to a re-INVITE or UPDATE of ours: a 2xx restarts the session interval (with the one it names);
        408 or 481 to a refresh ends the call (§10)."""
        timer = call.timer
        if timer is None:
            return
        if 200 <= code < 300:
            try:
                granted = _session_expires(response) if response is not None else None
            except SipParseError:
                granted = None
            if granted is not None:
                timer.restart(now, max(granted.interval, self.min_se), granted.refresher != "uas")
            else:
                timer.restart(now)
            self._schedule(timer.next_deadline(), call)
        elif timer.refreshing and code in (408, 481):
            self._session_expired(call, now, f"the session refresh failed ({code})")
        else:
            timer.refreshing = False
            self._schedule(timer.next_deadline(), call)

    def _retry_with_min_se(self, call: _Call, response: SipResponse, now: float) -> bool:
        """§7.4: a 422 to our INVITE: ask again, once, for the interval its Min-SE names."""
        if call.se_retried or call.state is not CallState.CALLING:
            return False
        try:
            floor = parse_min_se(response.headers.get("Min-SE") or "")
        except SipParseError:
            return False
        call.se_retried = True
        interval = max(floor, self.min_se)
        number = call.invite.cseq[0] + 1
        request = self._with_auth(call.invite, [("Session-Expires", str(interval)), ("Min-SE", str(interval))],
                                  number, drop=("Session-Expires", "Min-SE"))
        call.invite = request
        call.dialog.local_cseq = number
        call.got_provisional = False
        self.log.info("[SIP] Sending INVITE to %s (Session-Expires %d, as the 422 asked)", fmt_addr(call.remote_addr),
                      interval)
        call.invite_tx = self._start_client_tx(request, call.remote_addr, now, call.handle)
        return True

    def _session_timer_due(self, call: _Call, now: float) -> None:
        timer = call.timer
        if timer is None or call.state is not CallState.CONFIRMED:
            return
        if timer.expires_at <= now:
            self._session_expired(call, now, "no session refresh came in time")
            return
        if not timer.we_refresh or timer.refreshing or timer.refresh_at > now:
            return
        try:
            if "UPDATE" in call.peer_allow and call.update_out is None:
                self._send_update(call, b"", "application/sdp", now, refresh=True)
            elif call.local_body:
                self.reinvite(call.handle, now, body=call.local_body)
            else:
                raise LocalProtocolError("no session description to repeat")
        except LocalProtocolError as exc:  # another transaction of the call is running: it refreshes, or we retry
            self.log.debug("[SIP] Session refresh postponed: %s", exc)
            timer.refresh_at = now + 1.0
            self._schedule(timer.refresh_at, call)
            return
        timer.refreshing = True
        self._schedule(timer.next_deadline(), call)

    def _session_expired(self, call: _Call, now: float, why: str) -> None:
        """§10: the session is over: BYE, and the call is reported ended."""
        self.log.warning("[SIP] Session expired (%s): sending BYE", why)
        call.timer = None
        if call.state is CallState.CONFIRMED:
            self._send_bye(call, now)
        self._end(call, now)
        self._events.append(ev.CallEnded(handle=call.handle, reason="session expired", status_code=408))
