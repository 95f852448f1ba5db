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
the previous one is unanswered (§14.2), a re-INVITE that overtakes the ACK of our 2xx taken as that ACK (the
offer/answer is complete, so no 491; RFC 5407 §3.1.4), and a BYE after a 2xx that arrives for a call we
already cancelled (§9.1 race).

Responses are sent to the address the request came from (symmetric response routing, RFC 3581: ``received``
and ``rport`` are filled in when the top Via asks for it). In-dialog requests go to the remote target's IP
literal (no DNS in a sans-IO core), else to the address the peer used.

Nothing here imports asyncio, socket, time or threading (tests/test_sourcecode.py checks it).
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import secrets
from collections import deque
from typing import Deque, Dict, List, Optional, Tuple, Union

from ..errors import LocalProtocolError, SipParseError
from . import events as ev
from .dialog import Dialog, DialogInput, DialogState
from .message import (
    MAGIC_COOKIE,
    Headers,
    MessageLimits,
    SipRequest,
    SipResponse,
    Via,
    make_response,
    parse_for_error_response,
    parse_message,
)
from .transaction import (
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    Transaction,
    TimerConfig,
    client_key,
    server_key,
)
from .uri import NameAddress, SipUri, Uri, format_host, parse_uri

__all__ = ["SipEndpoint", "CallState", "ALLOWED_METHODS", "Addr"]

Addr = Tuple[str, int]

#: methods we implement (the Allow header)
ALLOWED_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS")
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


class SipEndpoint:
    """A SIP user agent (UAC + UAS) over UDP, without I/O.

    Args:
        local_addr: (host, port) we are reachable at; used in Via, Contact and From.
        user: user part of our URIs.
        timers: T1/T2/T4 (``TimerConfig``).
        limits: parser limits (``MessageLimits``).
        user_agent: value of the User-Agent/Server header.
        logger: where ``[SIP] ...`` lines go (INFO; retransmissions at DEBUG); silent by default.
    """

    def __init__(
        self,
        local_addr: Addr,
        *,
        user: str = "pyvoip",
        timers: Optional[TimerConfig] = None,
        limits: Optional[MessageLimits] = None,
        user_agent: str = "pyvoip_fast",
        logger: Optional[logging.Logger] = None,
    ) -> None:
        host, port = local_addr
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"bad local port {port!r}")
        self.local_addr: Addr = (host, port)
        self.user = user
        self.timers = timers or TimerConfig()
        self.limits = limits or MessageLimits()
        self.user_agent = user_agent
        self.log: Union[logging.Logger, _NullLogger] = logger if logger is not None else _NullLogger()
        self._events: Deque[ev.Event] = deque()
        self._outbox: List[Tuple[bytes, Addr]] = []
        self._client_tx: Dict[Tuple[str, ...], Transaction] = {}
        self._server_tx: Dict[Tuple[str, ...], Transaction] = {}
        self._tx_call: Dict[Tuple[str, ...], int] = {}
        self._calls: Dict[int, _Call] = {}
        self._next_handle = 1

    # ============================================================================================================
    # public I/O surface

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
        for tx in list(self._client_tx.values()) + list(self._server_tx.values()):
            self._flush_tx(tx)
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> Optional[float]:
        """The next deadline at which ``handle_timer`` must be called, or None."""
        best: Optional[float] = None
        for tx in list(self._client_tx.values()) + list(self._server_tx.values()):
            d = tx.next_deadline()
            if d is not None and (best is None or d < best):
                best = d
        for call in self._calls.values():
            for d2 in (call.ok_next if call.ok_bytes is not None else None, call.purge_at):
                if d2 is not None and (best is None or d2 < best):
                    best = d2
        return best

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        for tx in list(self._client_tx.values()) + list(self._server_tx.values()):
            d = tx.next_deadline()
            if d is not None and d <= now:
                tx.handle_timer(now)
        for call in list(self._calls.values()):
            if call.ok_bytes is not None and call.ok_next <= now:
                if now >= call.ok_giveup:
                    self._ack_timeout(call, now)
                else:
                    self.log.debug("[SIP] Retransmitting 200 OK to %s", fmt_addr(call.remote_addr))
                    self._outbox.append((call.ok_bytes, call.remote_addr))
                    call.ok_interval = min(2 * call.ok_interval, self.timers.t2)
                    call.ok_next = min(now + call.ok_interval, call.ok_giveup)
            if call.purge_at is not None and call.purge_at <= now:
                del self._calls[call.handle]
        self._collect(now)

    def transport_error(self, addr: Addr, now: float) -> None:
        """Tell the endpoint that sending to ``addr`` failed (ICMP unreachable): its client transactions fail."""
        for key, tx in list(self._client_tx.items()):
            if tx.dest == addr and not tx.terminated:
                tx.transport_error(now)
        self._collect(now)

    # ============================================================================================================
    # application actions

    def invite(
        self,
        target: Union[str, Uri],
        dest: Addr,
        now: float,
        *,
        body: bytes = b"",
        content_type: str = "application/sdp",
        display_name: Optional[str] = None,
    ) -> int:
        """Start a call: send an INVITE.

        Args:
            target: the Request-URI (``sip:user@host:port``).
            dest: where to send it.
            now: the current time.
            body: the SDP offer; content_type: its type.
            display_name: shown in From.

        Returns:
            the call's handle.
        """
        uri = parse_uri(target) if isinstance(target, str) else target
        tag = self._new_tag()
        call_id = f"{secrets.token_hex(12)}@{format_host(self.local_addr[0])}"
        local = NameAddress(self._local_uri(), display_name=display_name)
        h = Headers()
        h.add("Via", str(self._via()))
        h.add("Max-Forwards", "70")
        h.add("From", str(local.with_param("tag", tag)))
        h.add("To", str(NameAddress(uri)))
        h.add("Call-ID", call_id)
        h.add("CSeq", "1 INVITE")
        h.add("Contact", self._contact())
        h.add("Allow", _ALLOW)
        h.add("User-Agent", self.user_agent)
        if body:
            h.add("Content-Type", content_type)
        request = SipRequest("INVITE", uri, h, body)
        dialog = Dialog.for_uac(request)
        handle = self._new_handle()
        call = _Call(handle, dialog, dest, request, is_caller=True)
        self._calls[handle] = call
        self.log.info("[SIP] Sending INVITE to %s", fmt_addr(dest))
        call.invite_tx = self._start_client_tx(request, dest, now, handle)
        self._collect(now)
        return handle

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

    def ring(self, handle: int, now: float, *, status_code: int = 180, reason: Optional[str] = None) -> None:
        """Send a provisional response (180 Ringing by default) for an incoming call.

        Raises:
            LocalProtocolError: the call is not an unanswered incoming call.
        """
        if not 100 < status_code < 200:
            raise ValueError("a provisional status code is 101-199")
        call = self._incoming(handle)
        self._respond_invite(call, status_code, reason, now)
        if call.dialog.state is DialogState.EARLY:
            call.dialog.fire(DialogInput.PROVISIONAL)
        self._collect(now)

    def answer(self, handle: int, now: float, *, body: bytes = b"", content_type: str = "application/sdp") -> None:
        """Accept an incoming call with 200 OK (retransmitted until the ACK arrives).

        Raises:
            LocalProtocolError: the call is not an unanswered incoming call.
        """
        call = self._incoming(handle)
        extra = [("Contact", self._contact()), ("Allow", _ALLOW), ("Server", self.user_agent)]
        if body:
            extra.append(("Content-Type", content_type))
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

    def reject(self, handle: int, now: float, *, status_code: int = 486, reason: Optional[str] = None) -> None:
        """Decline an incoming call with a final non-2xx response (486 Busy Here by default).

        Raises:
            LocalProtocolError: the call is not an unanswered incoming call.
            ValueError: ``status_code`` is not 300-699.
        """
        if not 300 <= status_code <= 699:
            raise ValueError(f"a rejection needs a status code 300-699, not {status_code}")
        call = self._incoming(handle)
        self._respond_invite(call, status_code, reason, now)
        call.dialog.fire(DialogInput.FAILURE)
        self._end(call, now)
        self._collect(now)

    def answer_reinvite(
        self, handle: int, now: float, *, status_code: int = 200, body: bytes = b"",
        content_type: str = "application/sdp",
    ) -> None:
        """Answer the pending re-INVITE of ``handle`` (200 + SDP, or e.g. 488 to refuse the change)."""
        call = self._call(handle)
        key = call.reinvite_tx
        tx = self._server_tx.get(key) if key is not None else None
        if tx is None or tx.final_sent:  # type: ignore[attr-defined]
            raise LocalProtocolError("no re-INVITE waiting for an answer")
        extra = [("Contact", self._contact()), ("Allow", _ALLOW)]
        if body and status_code < 300:
            extra.append(("Content-Type", content_type))
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

    # ============================================================================================================
    # internals: identities

    def _new_handle(self) -> int:
        handle = self._next_handle
        self._next_handle += 1
        return handle

    @staticmethod
    def _new_tag() -> str:
        return secrets.token_hex(6)

    @staticmethod
    def _new_branch() -> str:
        return MAGIC_COOKIE + secrets.token_hex(10)

    def _local_uri(self) -> SipUri:
        return SipUri(self.local_addr[0], self.local_addr[1], user=self.user)

    def _contact(self) -> str:
        return f"<{self._local_uri()}>"

    def _via(self, branch: Optional[str] = None) -> Via:
        return Via(
            self.local_addr[0], self.local_addr[1], transport="UDP",
            params=(("branch", branch or self._new_branch()), ("rport", None)),
        )

    def _call(self, handle: int) -> _Call:
        try:
            return self._calls[handle]
        except KeyError:
            raise LocalProtocolError(f"no call with handle {handle}") from None

    def _incoming(self, handle: int) -> _Call:
        call = self._call(handle)
        if call.is_caller or call.state is not CallState.INCOMING:
            raise LocalProtocolError(f"call {handle} is not an unanswered incoming call (state {call.state.value})")
        return call

    # ============================================================================================================
    # internals: sending

    def _start_client_tx(self, request: SipRequest, dest: Addr, now: float, handle: Optional[int]) -> Tuple[str, ...]:
        branch = request.top_via.branch or ""
        key = client_key(branch, request.method)
        tx: Transaction
        if request.method == "INVITE":
            tx = InviteClientTransaction(key, request, dest, self.timers, now)
        else:
            tx = NonInviteClientTransaction(key, request, dest, self.timers, now)
        self._client_tx[key] = tx
        if handle is not None:
            self._tx_call[key] = handle
        return key

    def _respond_invite(self, call: _Call, status: int, reason: Optional[str], now: float) -> None:
        response = make_response(
            call.invite, status, reason, to_tag=call.dialog.local_tag,
            headers=[("Contact", self._contact())] if status < 300 else [],
        )
        self.log.info("[SIP] Sending %d %s", response.status_code, response.reason)
        tx = self._server_tx.get(call.invite_tx) if call.invite_tx is not None else None
        if tx is not None and not tx.terminated:
            tx.send_response(response, now)  # type: ignore[attr-defined]

    def _respond_new(self, request: SipRequest, addr: Addr, now: float, status: int, reason: Optional[str] = None,
                     headers: Tuple[Tuple[str, str], ...] = (), to_tag: Optional[str] = None,
                     report: bool = True) -> None:
        """Answer an out-of-call request through a new server transaction."""
        key = server_key(request)
        tx: Transaction
        if request.method == "INVITE":
            tx = InviteServerTransaction(key, request, addr, self.timers)
        else:
            tx = NonInviteServerTransaction(key, request, addr, self.timers)
        self._server_tx[key] = tx
        response = make_response(request, status, reason, to_tag=to_tag or self._new_tag(), headers=headers)
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
        request = call.dialog.create_request("BYE", self._via(), extra_headers=(("User-Agent", self.user_agent),))
        dest = call.dialog.target_address(call.remote_addr)
        call.dialog.fire(DialogInput.BYE)
        call.state = CallState.ENDING
        call.ok_bytes = None
        self.log.info("[SIP] Sending BYE")
        self._start_client_tx(request, dest, now, call.handle)

    def _send_ack(self, call: _Call, response: SipResponse, now: float) -> None:
        number = response.cseq[0]
        ack = call.dialog.create_request("ACK", self._via(), cseq=number)
        call.ack_bytes = ack.serialize()
        call.ack_cseq = number
        self.log.info("[SIP] Sending ACK")
        self._outbox.append((call.ack_bytes, call.dialog.target_address(call.remote_addr)))

    def _start_2xx_retransmit(self, call: _Call, response: SipResponse, now: float, reinvite: bool) -> None:
        call.ok_bytes = response.serialize()
        call.ok_cseq = response.cseq[0]
        call.ok_interval = self.timers.t1
        call.ok_next = now + self.timers.t1
        call.ok_giveup = now + self.timers.b
        call.ok_is_reinvite = reinvite

    def _end(self, call: _Call, now: float) -> None:
        call.state = CallState.ENDED
        call.ok_bytes = None
        if call.dialog.state is not DialogState.TERMINATED:
            call.dialog.state = DialogState.TERMINATED
        # keep the call around to absorb late retransmissions (2xx -> ACK again), then forget it
        call.purge_at = now + self.timers.b

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
        call.purge_at = now + self.timers.b

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

    # ============================================================================================================
    # internals: receiving

    def _find_call_for_request(self, request: SipRequest) -> Optional[_Call]:
        call_id = request.call_id
        to_tag = request.to.tag
        for call in self._calls.values():
            d = call.dialog
            if d.call_id == call_id and d.local_tag == to_tag and (d.remote_tag is None or
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
        require = request.headers.get_all("Require")
        if require:
            self._respond_new(request, addr, now, 420, headers=(("Unsupported", ", ".join(require)),))
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
            self._new_invite(request, key, addr, now)
        elif method == "OPTIONS":
            self._respond_new(
                request, addr, now, 200,
                headers=(("Allow", _ALLOW), ("Accept", "application/sdp"), ("Accept-Encoding", "identity"),
                         ("Accept-Language", "en"), ("Supported", ""), ("Server", self.user_agent)),
            )
        elif method in ("BYE", "INFO", "UPDATE", "PRACK"):
            self._respond_new(request, addr, now, 481)
        else:
            self._respond_new(request, addr, now, 405, headers=(("Allow", _ALLOW),))

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
        for call in self._calls.values():
            if (not call.is_caller and call.dialog.call_id == request.call_id
                    and call.dialog.remote_tag == from_tag and call.invite.cseq[0] == number):
                self.log.debug("[SIP] Duplicate INVITE for an existing call ignored")
                return
        tx = InviteServerTransaction(key, request, addr, self.timers)
        self._server_tx[key] = tx
        trying = make_response(request, 100)
        self.log.info("[SIP] Sending 100 Trying")
        tx.send_response(trying, now)
        local_tag = self._new_tag()
        dialog = Dialog.for_uas(request, local_tag)
        handle = self._new_handle()
        call = _Call(handle, dialog, addr, request, is_caller=False)
        call.invite_tx = key
        self._calls[handle] = call
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
            self._acked(call, now)
        else:
            self.log.debug("[SIP] Retransmitted ACK absorbed")

    def _acked(self, call: _Call, now: float) -> bool:
        """Our 2xx counts as acknowledged: stop retransmitting it and confirm the call. Returns True when a BYE
        the user asked for while waiting for the ACK was sent now."""
        call.ok_bytes = None
        if call.state is not CallState.WAIT_ACK:
            return False
        call.state = CallState.CONFIRMED
        self._events.append(ev.CallConfirmed(handle=call.handle))
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
            if call.state is not CallState.CONFIRMED:
                self._respond_new(request, addr, now, 491, to_tag=call.dialog.local_tag)
                return
            if contact is not None:
                call.dialog.remote_target = contact.uri
            tx = InviteServerTransaction(key, request, addr, self.timers)
            self._server_tx[key] = tx
            tx.send_response(make_response(request, 100), now)
            call.reinvite_tx = key
            call.invite = request
            self._events.append(ev.ReInviteReceived(handle=call.handle, request=request, body=request.body))
        elif method in ("OPTIONS", "INFO"):
            self._respond_new(request, addr, now, 200, to_tag=call.dialog.local_tag,
                              headers=(("Allow", _ALLOW), ("Accept", "application/sdp")))
        else:
            self._respond_new(request, addr, now, 501 if method in ("UPDATE", "PRACK", "REFER", "NOTIFY",
                                                                     "SUBSCRIBE", "MESSAGE") else 405,
                              to_tag=call.dialog.local_tag, headers=(("Allow", _ALLOW),))

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
                for call in self._calls.values():
                    if (call.is_caller and call.dialog.call_id == response.call_id and call.ack_bytes is not None
                            and call.ack_cseq == number):
                        self.log.debug("[SIP] Retransmitted 200 OK: re-sending ACK")
                        self._outbox.append((call.ack_bytes, call.dialog.target_address(call.remote_addr)))
                        return
            self.log.debug("[SIP] Response %d matching no transaction dropped", response.status_code)
            return
        tx.receive_response(response, now)  # type: ignore[attr-defined]

    # ============================================================================================================
    # internals: transaction results -> TU

    def _flush_tx(self, tx: Transaction) -> None:
        for data, retransmission in tx.take_outbox():
            if retransmission:
                self.log.debug("[SIP] Retransmitting %s to %s", _first_line(data), fmt_addr(tx.dest))
            self._outbox.append((data, tx.dest))

    def _collect(self, now: float) -> None:
        """Move transaction output to the endpoint, hand results to the TU, drop finished transactions."""
        for table in (self._client_tx, self._server_tx):
            for key, tx in list(table.items()):
                self._flush_tx(tx)
                results = tx.take_results()
                for kind, payload in results:
                    self._tx_result(tx, kind, payload, now)
                self._flush_tx(tx)
                if tx.terminated:
                    del table[key]
                    self._tx_call.pop(key, None)

    def _tx_result(self, tx: Transaction, kind: str, payload: object, now: float) -> None:
        handle = self._tx_call.get(tx.key)
        call = self._calls.get(handle) if handle is not None else None
        method = tx.request.method
        if call is None:
            return
        if isinstance(tx, InviteClientTransaction):
            if kind == "response":
                assert isinstance(payload, SipResponse)
                self._on_invite_response(call, payload, now)
            elif kind in ("timeout", "transport_error") and call.state is CallState.CALLING:
                status, reason = (408, "Request Timeout") if kind == "timeout" else (503, "Service Unavailable")
                detail = "no response" if kind == "timeout" else "transport error"
                self.log.info("[SIP] Call failed: %d %s (%s)", status, reason, detail)
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

    def _on_invite_response(self, call: _Call, response: SipResponse, now: float) -> None:
        code = response.status_code
        line = f"{code} {response.reason}"
        if code < 200:
            self.log.info("[SIP] Received %s", line)
            call.got_provisional = True
            if call.state is CallState.CALLING and call.dialog.state is DialogState.EARLY:
                if code > 100 and response.to.tag is not None:
                    call.dialog.update_from_response(response)
            self._events.append(ev.CallProgress(handle=call.handle, status_code=code, reason=response.reason,
                                                body=response.body))
            if call.cancel_requested and not call.cancel_sent:
                self._send_cancel(call, now)
            return
        if code < 300:
            if call.ack_bytes is not None and call.ack_cseq == response.cseq[0]:
                self.log.debug("[SIP] Retransmitted %s: re-sending ACK", line)
                self._outbox.append((call.ack_bytes, call.dialog.target_address(call.remote_addr)))
                return
            self.log.info("[SIP] Received %s", line)
            if call.dialog.state is DialogState.EARLY:
                call.dialog.update_from_response(response)
            self._send_ack(call, response, now)
            if call.cancel_requested:
                call.state = CallState.CONFIRMED
                self._send_bye(call, now)
                self._end(call, now)
                self._events.append(ev.CallFailed(handle=call.handle, status_code=487,
                                                  reason="Request Terminated"))
                return
            call.state = CallState.CONFIRMED
            self._events.append(ev.CallAnswered(handle=call.handle, status_code=code, reason=response.reason,
                                                body=response.body, content_type=response.content_type))
            return
        self.log.info("[SIP] Received %s", line)
        if call.state is CallState.CALLING:
            self.log.info("[SIP] Call failed: %s", line)
            call.dialog.fire(DialogInput.FAILURE)
            self._end(call, now)
            self._events.append(ev.CallFailed(handle=call.handle, status_code=code, reason=response.reason))


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
