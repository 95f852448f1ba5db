"""``SipEndpoint``: the sans-IO SIP user agent core (aioquic ``QuicConnection`` shape, h11 naming).

Strategy
--------
Bytes and time go in, bytes and events come out::

    endpoint.receive_datagram(data, addr, now)     # a datagram arrived
    endpoint.handle_timer(now)                     # the deadline from get_timer() passed
    endpoint.invite(...), answer(...), bye(...)    # the application acts
    for data, addr in endpoint.datagrams_to_send(now): sock.sendto(data, addr)
    while (event := endpoint.next_event()) is not None: ...
    deadline = endpoint.get_timer()                # re-arm one timer

Inside, three layers as in RFC 3261 §16-17: the transport layer (parse, answer malformed requests with 400
when enough is readable, drop the rest), the transaction layer (``transaction.py`` tables, matched by branch),
and the transaction user: dialogs (``dialog.py``) and INVITE sessions (calls). The TU does what §13-15 ask
of a UA core so the application never has to: ``100 Trying`` at once, ACK for 2xx (and again for every
retransmitted 2xx), retransmission of our 2xx until the ACK arrives (§13.3.1.4, T1 doubling to T2, give up
after 64·T1 and send BYE), CANCEL handling (200 to the CANCEL, 487 to the INVITE, §9.2), 481 for requests
that match no dialog or transaction, OPTIONS answered with Allow/Accept (§11.2), 405 for unknown methods,
420 for unsupported Require extensions, 500 for out-of-order CSeq, 500 + Retry-After for a re-INVITE while
the previous one is unanswered and 491 while our own re-INVITE is (§14.2), a re-INVITE that overtakes the ACK
of our 2xx taken as that ACK (the offer/answer is complete, so no 491; RFC 5407 §3.1.4), and a BYE after a 2xx
that arrives for a call we already cancelled (§9.1 race).

Responses are sent to the address the request came from (symmetric response routing, RFC 3581: ``received``
and ``rport`` are filled in when the top Via asks for it). In-dialog requests go to the remote target's IP
literal (no DNS in a sans-IO core), else to the address the peer used.

The class is built in layers, one module each: ``calls.py`` (the per-call record and ``CallState``),
``ua_core.py`` (state, transactions, what both sides send, responses to our requests), ``uas.py`` (requests
we receive), ``registration.py``, ``in_dialog.py`` (our re-INVITE, INFO / REFER / NOTIFY both ways: ``reinvite``,
``request``, ``respond``) and this module (the public surface: I/O and the application's actions).

Nothing here imports asyncio, socket, time or threading (tests/test_sourcecode.py checks it).
"""

from __future__ import annotations

import heapq
import secrets
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..errors import LocalProtocolError, SipParseError
from . import events as ev
from .calls import _ALLOW, _SUPPORTED, ALLOWED_METHODS, Addr, CallState, _Call, fmt_addr, is_ip_literal
from .dialog import Dialog, DialogInput
from .message import Headers, SipRequest, make_response, parse_message
from .session_refresh import _SessionRefresh
from .registration import RegistrationState
from .uri import NameAddress, SipUri, Uri, format_host, parse_uri

__all__ = ["SipEndpoint", "CallState", "RegistrationState", "ALLOWED_METHODS", "Addr", "fmt_addr", "is_ip_literal"]


class SipEndpoint(_SessionRefresh):
    """A SIP user agent (UAC + UAS) over UDP, without I/O.

    Args:
        local_addr: (host, port) we are reachable at; used in Via, Contact and From.
        user: user part of our URIs.
        timers: T1/T2/T4 (``TimerConfig``).
        limits: parser limits (``MessageLimits``).
        user_agent: value of the User-Agent/Server header.
        logger: where ``[SIP] ...`` lines go (INFO; retransmissions at DEBUG); silent by default.
    """

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Feed one received datagram.

        Args:
            data: the datagram; addr: its source (host, port); now: the current time.

        Never raises for bad input: malformed messages are answered 400 when possible, logged and reported as
        ``MalformedMessage``.
        """
        addr = (addr[0], addr[1])
        if not bytes(data).strip(b"\r\n \t"):
            return  # keep-alive (RFC 5626 CRLF ping) or empty
        try:
            message = parse_message(data, self.limits)
        except SipParseError as exc:
            self._malformed(data, addr, exc)
            return
        if isinstance(message, SipRequest):
            self._on_request(message, addr, now)
        else:
            self._on_response(message, addr, now)
        self._collect(now)

    def next_event(self) -> Optional[ev.Event]:
        """The next event, or None when there is none."""
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self, now: float) -> List[Tuple[bytes, Addr]]:
        """Every datagram waiting to be sent, as (data, addr); the list is emptied."""
        for tx in list(self._touched.values()):
            self._flush_tx(tx)
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> Optional[float]:
        """The next deadline at which ``handle_timer`` must be called, or None."""
        best = self._next_due()
        d3 = self._reg_deadline()
        if d3 is not None and (best is None or d3 < best):
            best = d3
        return best

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        heap = self._timer_heap
        while heap and heap[0][0] <= now:
            when, _, obj = heapq.heappop(heap)
            if not self._still_due(obj, when):
                continue
            if isinstance(obj, _Call):
                self._call_timer(obj, now)
            else:
                obj.handle_timer(now)
        self._reg_timers(now)
        self._collect(now)

    def _call_timer(self, call: _Call, now: float) -> None:
        """A call's own timers: its 2xx retransmitted until the ACK (§13.3.1.4), in-dialog requests the application
        left unanswered for 64·T1 (``in_dialog.py``), then the call forgotten after timer B."""
        if call.requests_in:
            self._expire_requests_in(call, now)
        if call.reliable_out is not None:
            self._reliable_timer(call, now)
        if call.timer is not None:
            self._session_timer_due(call, now)
        if call.ok_bytes is not None and call.ok_next <= now:
            if now >= call.ok_giveup:
                self._ack_timeout(call, now)
            else:
                self.log.debug("[SIP] Retransmitting 200 OK to %s", fmt_addr(call.remote_addr))
                self._outbox.append((call.ok_bytes, call.remote_addr))
                call.ok_interval = min(2 * call.ok_interval, self.timers.t2)
                call.ok_next = min(now + call.ok_interval, call.ok_giveup)
                self._schedule(call.ok_next, call)
        if call.purge_at is not None and call.purge_at <= now and self._calls.get(call.handle) is call:
            self._forget_call(call)

    def transport_error(self, addr: Addr, now: float, reason: Optional[str] = None) -> None:
        """Tell the endpoint that sending to ``addr`` failed (ICMP unreachable, a connection refused, a TLS
        certificate that does not verify): its client transactions fail as if answered 503 (RFC 3261 §8.1.3.1),
        with ``reason`` in the failure's text."""
        self._transport_why[addr] = reason or "transport error"
        if len(self._transport_why) > 256:
            self._transport_why.clear()
            self._transport_why[addr] = reason or "transport error"
        for key, tx in list(self._client_tx.items()):
            if tx.dest == addr and not tx.terminated:
                tx.transport_error(now)
        self._collect(now)

    def connection_lost(self, addr: Addr, now: float) -> None:
        """Tell the endpoint that the TCP/TLS connection to ``addr`` closed: the requests waiting on it fail at once
        (a stream is not retransmitted over, RFC 3261 §18) and a registration that used it registers again over a
        new connection (RFC 5626 §4.4: flow recovery; at once the first time, then after 1, 2, 4 ... 30 s)."""
        self._transport_why[addr] = "the connection closed"
        for tx in list(self._client_tx.values()):
            if tx.dest == addr and tx.reliable and not tx.terminated:
                tx.transport_error(now)
        self._collect(now)
        self._flow_lost(addr, now)

    def invite(
        self,
        target: Union[str, Uri],
        dest: Optional[Addr],
        now: float,
        *,
        body: bytes = b"",
        content_type: str = "application/sdp",
        display_name: Optional[str] = None,
        late_offer: bool = False,
    ) -> int:
        """Start a call: send an INVITE.

        Args:
            target: the Request-URI (``sip:user@host:port``); its ``;transport=`` (or ``sips:``) picks the
                transport, else the endpoint's default.
            dest: the Request-URI's resolved address; ignored (may be None) when an outbound proxy is set, and
                None is allowed when the URI's host is an IP literal.
            now: the current time.
            body: the SDP offer; content_type: its type.
            display_name: shown in From.
            late_offer: send no offer (``body`` must be empty): the 2xx brings the peer's offer, and the ACK waits
                for our answer, given with ``ack(handle, now, body=...)`` (RFC 3261 §13.2.1).

        Returns:
            the call's handle.

        Raises:
            ValueError: no way to reach the target (a host name without ``dest``, an unknown transport).
        """
        uri = parse_uri(target) if isinstance(target, str) else target
        if not isinstance(uri, SipUri):
            raise ValueError(f"cannot call a non-SIP URI {uri}")
        hop, routes = self._hop_for_new(uri, dest)
        tag = self._new_tag()
        call_id = f"{secrets.token_hex(12)}@{format_host(self.local_addr[0])}"
        local = NameAddress(self._aor_uri(), display_name=display_name)
        h = Headers()
        h.add("Via", str(self._via(transport=hop.transport)))
        h.add("Max-Forwards", "70")
        for route in routes:
            h.add("Route", route)
        h.add("From", str(local.with_param("tag", tag)))
        h.add("To", str(NameAddress(uri)))
        h.add("Call-ID", call_id)
        h.add("CSeq", "1 INVITE")
        h.add("Contact", self._contact(hop.transport))
        h.add("Allow", _ALLOW)
        for name, value in self._invite_headers():
            h.add(name, value)
        h.add("User-Agent", self.user_agent)
        if body:
            h.add("Content-Type", content_type)
        request = SipRequest("INVITE", uri, h, body)
        hop = self._fit_transport(request, hop)
        dialog = Dialog.for_uac(request)
        handle = self._new_handle()
        call = _Call(handle, dialog, hop.addr, request, is_caller=True)
        call.transport = hop.transport
        call.local_body = body
        call.late_offer = late_offer and not body
        self._add_call(call)
        via = f" via {hop.transport}" if hop.transport != "UDP" else ""
        self.log.info("[SIP] Sending INVITE to %s%s", fmt_addr(hop.addr), via)
        call.invite_tx = self._start_client_tx(request, hop.addr, now, handle)
        self._collect(now)
        return handle

    def ack(self, handle: int, now: float, *, body: bytes = b"", content_type: str = "application/sdp") -> None:
        """Send the ACK of a delayed-offer call's 2xx with our answer in ``body`` (``invite(late_offer=True)``);
        later retransmissions of the 2xx get the same ACK.

        Raises:
            LocalProtocolError: no 2xx of this call waits for its ACK.
        """
        call = self._call(handle)
        response = call.ack_pending
        if response is None:
            raise LocalProtocolError("no 2xx waits for an ACK with an answer")
        call.ack_pending = None
        if body:
            call.local_body = body
        self._send_ack(call, response, now, body=body, content_type=content_type)
        self._collect(now)

    def cancel(self, handle: int, now: float) -> bool:
        """Abandon an unanswered outgoing call with CANCEL (§9.1), sent once a provisional response arrived.

        If a 2xx still arrives, it is ACKed and the call is ended with BYE at once.

        Returns:
            True when a CANCEL was sent or scheduled, False when the call is no longer ringing.
        """
        call = self._call(handle)
        if not call.is_caller or call.state is not CallState.CALLING:
            return False
        call.cancel_requested = True
        if call.got_provisional and not call.cancel_sent:
            self._send_cancel(call, now)
        self._collect(now)
        return True

    def answer(self, handle: int, now: float, *, body: bytes = b"", content_type: str = "application/sdp") -> None:
        """Accept an incoming call with 200 OK (retransmitted until the ACK arrives).

        Raises:
            LocalProtocolError: the call is not an unanswered incoming call.
        """
        call = self._incoming(handle)
        self._stop_reliable(call)
        self._grant_session(call, call.invite, now)
        extra = [("Record-Route", rr) for rr in call.invite.headers.get_lines("Record-Route")]
        extra += [("Contact", self._contact(call.transport)), ("Allow", _ALLOW), ("Supported", _SUPPORTED),
                  ("Server", self.user_agent)]
        extra += self._timer_lines(call, we_answer=True)
        if body:
            extra.append(("Content-Type", content_type))
            call.local_body = body
        response = make_response(call.invite, 200, to_tag=call.dialog.local_tag, headers=extra, body=body)
        self.log.info("[SIP] Sending 200 OK")
        tx = self._server_tx[call.invite_tx] if call.invite_tx in self._server_tx else None
        if tx is not None:
            tx.send_response(response, now)  # type: ignore[attr-defined]
        else:
            self._outbox.append((response.serialize(), call.remote_addr))
        call.dialog.fire(DialogInput.SUCCESS)
        call.state = CallState.WAIT_ACK
        self._start_2xx_retransmit(call, response, now, reinvite=False)
        self._collect(now)

    def reject(self, handle: int, now: float, *, status_code: int = 486, reason: Optional[str] = None,
               headers: Sequence[Tuple[str, str]] = ()) -> None:
        """Decline an incoming call with a final non-2xx response (486 Busy Here by default), with ``headers``
        added (a ``Warning``, say).

        Raises:
            LocalProtocolError: the call is not an unanswered incoming call.
            ValueError: ``status_code`` is not 300-699.
        """
        if not 300 <= status_code <= 699:
            raise ValueError(f"a rejection needs a status code 300-699, not {status_code}")
        call = self._incoming(handle)
        self._respond_invite(call, status_code, reason, now, headers)
        call.dialog.fire(DialogInput.FAILURE)
        self._end(call, now)
        self._collect(now)

    def answer_reinvite(
        self, handle: int, now: float, *, status_code: int = 200, body: bytes = b"",
        content_type: str = "application/sdp", headers: Sequence[Tuple[str, str]] = (),
    ) -> None:
        """Answer the pending re-INVITE of ``handle`` (200 + SDP, or e.g. 488 to refuse the change)."""
        call = self._call(handle)
        key = call.reinvite_tx
        tx = self._server_tx.get(key) if key is not None else None
        if tx is None or tx.final_sent:  # type: ignore[attr-defined]
            raise LocalProtocolError("no re-INVITE waiting for an answer")
        extra = [("Contact", self._contact(call.transport)), ("Allow", _ALLOW), ("Supported", _SUPPORTED), *headers]
        if status_code < 300:
            self._grant_session(call, tx.request, now)  # RFC 4028: every re-INVITE is a session refresh
            extra += self._timer_lines(call, we_answer=True)
        if body and status_code < 300:
            extra.append(("Content-Type", content_type))
            call.local_body = body
        response = make_response(
            tx.request, status_code, to_tag=call.dialog.local_tag, headers=extra,
            body=body if status_code < 300 else b"",
        )
        self.log.info("[SIP] Sending %d %s", response.status_code, response.reason)
        tx.send_response(response, now)  # type: ignore[attr-defined]
        if status_code < 300:
            self._start_2xx_retransmit(call, response, now, reinvite=True)
        self._collect(now)

    def bye(self, handle: int, now: float) -> bool:
        """Hang up: BYE on an established call, CANCEL on an unanswered outgoing one, 603 on an unanswered
        incoming one. A BYE on a call whose 2xx is not yet ACKed waits for the ACK (§15).

        Returns:
            False when the call had already ended (nothing sent), True otherwise.
        """
        call = self._calls.get(handle)
        if call is None or call.state in (CallState.ENDED, CallState.ENDING):
            return False
        if call.state is CallState.CALLING:
            return self.cancel(handle, now)
        if call.state is CallState.INCOMING:
            self.reject(handle, now, status_code=603)
            return True
        if call.state is CallState.WAIT_ACK:
            call.pending_bye = True
            return True
        if call.ack_pending is not None:  # a delayed offer we never answered: the 2xx still gets its ACK
            self._send_ack(call, call.ack_pending, now)
            call.ack_pending = None
        self._send_bye(call, now)
        self._collect(now)
        return True

    def call_state(self, handle: int) -> Optional[CallState]:
        """The state of a call, or None once it has been forgotten."""
        call = self._calls.get(handle)
        return call.state if call is not None else None

    def call_info(self, handle: int) -> Dict[str, object]:
        """Call-ID, remote address, tags, remote target of a call (for the application and tests)."""
        call = self._call(handle)
        d = call.dialog
        return {
            "call_id": d.call_id,
            "local_tag": d.local_tag,
            "remote_tag": d.remote_tag,
            "remote_addr": call.remote_addr,
            "remote_target": str(d.remote_target),
            "is_caller": call.is_caller,
            "dialog_state": d.state,
        }
