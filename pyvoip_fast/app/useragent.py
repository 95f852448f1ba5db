"""The asyncio user agent: ``SipEndpoint`` on a UDP socket, with an awaitable call API.

Strategy
--------
A thin adapter in aioquic's ``asyncio/protocol.py`` manner (STYLE.md item 15). One ``DatagramProtocol`` feeds
every datagram into the sans-IO ``SipEndpoint`` with ``loop.time()`` as ``now``; after every step (datagram,
timer, application action) the adapter sends what the endpoint queued, dispatches its events to futures and
queues, and re-arms a single ``loop.call_at`` timer at ``endpoint.get_timer()``. All protocol decisions
(retransmissions, ACKs, CANCEL/487, 481, OPTIONS...) live in the endpoint; this module only turns events into
awaitables:

- ``UserAgent.call()`` waits for the final response: 2xx -> ``SipCall``; anything else -> ``CallError`` with the
  status and reason (408 for Timer B, "no response"). A ring timeout or an asyncio cancellation sends CANCEL.
- ``UserAgent.incoming()`` yields ``IncomingCall`` objects (the INVITE already got ``100 Trying``); their
  ``answer()`` returns once the ACK arrived (the endpoint retransmits the 200 until then).
- ``SipCall.hangup()`` sends BYE and waits for its final response (or Timer F); ``wait_ended()`` says why a
  call ended. Re-INVITEs (hold / resume) are answered through ``SipCall.on_reinvite`` or, by default, by
  mirroring the offered direction with our current media address. ``SipCall`` and ``IncomingCall`` live in
  ``sip_call.py`` (our re-INVITE, in-dialog requests, redirects).

Log lines (logger ``pyvoip_fast.useragent``) follow the original program: ``[SIP] Sending INVITE to ...``,
``[SIP] Received 200 OK``, ``[SIP] Sending ACK``... at INFO; retransmissions at DEBUG.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, Callable, Dict, Optional, Tuple, Union

from ..errors import (AuthenticationError, CallError, LocalProtocolError, SdpParseError,
                      TransportError)
from ..sip.sdp import NegotiationError, SessionDescription
from ..sip import events as ev
from ..sip.endpoint import CallState, SipEndpoint, fmt_addr
from ..sip.transaction import TimerConfig
from ..sip.admission import Admission
from ..sip.digest import Credentials
from ..sip.digest_server import DigestServer
from ..sip.uri import SipUri, parse_uri, split_hostport
from ..sip.registration import RegistrationState
from ..media.clock import MediaClock
from .account import Registration, registrar_of
from .sip_call import IncomingCall, SipCall
from .sip_transport import SipTransport, client_tls_context

logger = logging.getLogger(__name__)

__all__ = ["UserAgent", "IncomingCall", "SipCall", "TimerConfig"]

Addr = Tuple[str, int]

#: seconds a cancelled ``call()`` waits for the INVITE's final response (so the 487 gets its ACK)
_CANCEL_LINGER = 2.0
Target = Union[str, Tuple[str, int]]


class _Pending:
    """An outgoing INVITE waiting for its final response."""

    def __init__(self, loop: asyncio.AbstractEventLoop, offer: Optional[SessionDescription], dest: Addr,
                 on_progress: Optional[Callable[[ev.CallProgress], None]] = None) -> None:
        self.final: asyncio.Future[ev.Event] = loop.create_future()
        self.offer = offer
        self.dest = dest
        self.on_progress = on_progress
        #: (their offer, our answer) when the offer came in a reliable 1xx and our PRACK answered it
        self.early: Optional[Tuple[SessionDescription, SessionDescription]] = None


def _answer_in_prack(ua: "UserAgent", pending: "_Pending", answer_offer: Any, user_progress: Any,
                     event: ev.CallProgress) -> None:
    """RFC 3262 §5: the peer's offer in a reliable 1xx to our offerless INVITE; our answer goes in the PRACK."""
    if event.reliable and event.body and pending.early is None:
        try:
            remote = SessionDescription.parse(event.body)
            answer = answer_offer(remote)
        except (SdpParseError, NegotiationError) as exc:
            logger.warning("[SIP] Unusable offer in %d %s (%s): cancelling", event.status_code, event.reason, exc)
            ua._endpoint.cancel(event.handle, ua._loop.time())
            return
        pending.early = (remote, answer)
        ua._endpoint.prack(event.handle, ua._loop.time(), body=answer.serialize())
    if user_progress is not None:
        user_progress(event)


class UserAgent:
    """A SIP user agent on one UDP port. Create it with ``await UserAgent.create(...)``."""

    def __init__(self) -> None:  # use create()
        self._loop = asyncio.get_running_loop()
        self._media_clock = MediaClock.for_loop(self._loop)  # the calls' shared clock: SIP work lets it go first
        self._net: SipTransport
        self._endpoint: SipEndpoint
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at: Optional[float] = None
        self._incoming: "asyncio.Queue[IncomingCall]" = asyncio.Queue()
        self._pending: Dict[int, _Pending] = {}
        self._incoming_calls: Dict[int, IncomingCall] = {}
        self._sip_calls: Dict[int, SipCall] = {}
        self._registrations: Dict[int, Registration] = {}
        self._closed = False
        self.local_address: Addr = ("", 0)

    @classmethod
    async def create(
        cls,
        local_host: str = "127.0.0.1",
        local_port: int = 5060,
        *,
        user: str = "pyvoip",
        timers: Optional[TimerConfig] = None,
        transport: str = "UDP",
        credentials: Optional[Credentials] = None,
        outbound_proxy: Optional[str] = None,
        ca_file: Optional[str] = None,
        admission: Optional[Admission] = None,
        require_auth: Optional[DigestServer] = None,
    ) -> "UserAgent":
        """Bind the SIP sockets (UDP, and TCP on the same port) and start serving.

        Args:
            local_host: address to bind (IPv4 or IPv6 literal, or a name); default loopback.
            local_port: port to bind (0 picks a free one).
            user: user part of our SIP URIs (an account's AOR replaces it when registering).
            timers: T1/T2/T4.
            transport: the default transport of requests whose URI names none: ``UDP``, ``TCP`` or ``TLS``.
            credentials: digest credentials answering 401/407 challenges (``sip.digest.Credentials``).
            outbound_proxy: a SIP URI every request outside a dialog goes through (``;transport=`` picks the
                transport to it); its host name is resolved here.
            ca_file: PEM file of the CA that signs the TLS servers' certificates (default: the system's store).
            admission: who may send requests and how many calls are taken (``sip.admission.Admission``;
                default: everyone, 100 calls in set-up, 500 in all).
            require_auth: new INVITEs must prove a password (``sip.digest_server.DigestServer``): others get 401.

        Raises:
            TransportError: the address cannot be bound, the proxy cannot be resolved, the CA file is unreadable.
            ValueError: a malformed transport or proxy URI.
        """
        ua = cls()
        if not isinstance(local_port, int) or not 0 <= local_port <= 65535:
            raise TransportError(f"bad SIP port {local_port!r}: must be 0-65535")
        tls = client_tls_context(ca_file) if ca_file is not None or transport.upper() == "TLS" else None
        ua._net = SipTransport(ua._receive, ua._transport_error, on_closed=ua._connection_lost, tls_context=tls)
        ua.local_address = await ua._net.open(local_host, local_port)
        try:
            ua._endpoint = SipEndpoint(ua.local_address, user=user, timers=timers or TimerConfig(), logger=logger,
                                       transport=transport, credentials=credentials, admission=admission,
                                       require_auth=require_auth)
            if outbound_proxy is not None:
                proxy = parse_uri(outbound_proxy)
                if not isinstance(proxy, SipUri):
                    raise ValueError(f"the outbound proxy must be a sip: or sips: URI, not {outbound_proxy!r}")
                addr = await ua._resolve_hop(proxy)
                ua._endpoint.set_outbound_proxy(proxy, addr)
        except BaseException:
            await ua._net.close()
            raise
        logger.debug("[SIP] Listening on %s", fmt_addr(ua.local_address))
        return ua

    async def __aenter__(self) -> "UserAgent":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def endpoint(self) -> SipEndpoint:
        """The sans-IO core (for inspection)."""
        return self._endpoint

    # -- the adapter -----------------------------------------------------------------------------------------------
    def _receive(self, data: bytes, addr: Addr) -> None:
        if self._closed:
            return
        self._media_clock.catch_up()  # packets due now go first (see ``MediaClock.catch_up``)
        self._endpoint.receive_datagram(data, addr, self._loop.time())
        self._step()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed:
            return
        self._endpoint.handle_timer(self._loop.time())
        self._step()

    def _act(self, action: Callable[[float], Any]) -> Any:
        if self._closed:
            raise CallError(0, "user agent closed")
        self._media_clock.catch_up()
        result = action(self._loop.time())
        self._step()
        return result

    def _transport_error(self, addr: Addr, why: str) -> None:
        if self._closed:
            return
        self._endpoint.transport_error(addr, self._loop.time(), why)
        self._step()

    def _connection_lost(self, addr: Addr) -> None:
        if self._closed:
            return
        self._endpoint.connection_lost(addr, self._loop.time())
        self._step()

    def _step(self) -> None:
        for data, addr in self._endpoint.datagrams_to_send(self._loop.time()):
            self._net.send(data, addr)
        for addr, transport in self._endpoint.keepalives_to_send():
            self._net.send_keepalive(addr, transport)
        while True:
            event = self._endpoint.next_event()
            if event is None:
                break
            try:
                self._dispatch(event)
            except Exception:  # pragma: no cover - a bug must not kill the protocol
                logger.exception("[SIP] error while handling %r", event)
        deadline = self._endpoint.get_timer()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = deadline
            if deadline is not None and not self._closed:
                self._timer = self._loop.call_at(deadline, self._on_timer)
        # datagrams produced while dispatching (auto-rejects, re-INVITE answers)
        if self._endpoint._outbox:
            self._step()

    def _dispatch(self, event: ev.Event) -> None:
        if isinstance(event, (ev.Registered, ev.RegistrationFailed, ev.Unregistered)):
            registration = self._registrations.get(event.handle)
            if registration is not None:
                registration._on_event(event)
        elif isinstance(event, ev.IncomingCall):
            self._on_incoming(event)
        elif isinstance(event, (ev.CallAnswered, ev.CallFailed)) and event.handle in self._pending:
            pending = self._pending.pop(event.handle)
            if not pending.final.done():
                pending.final.set_result(event)
        elif isinstance(event, ev.CallProgress):
            pending_call = self._pending.get(event.handle)
            if pending_call is not None and pending_call.on_progress is not None:
                pending_call.on_progress(event)
        elif isinstance(event, ev.CallFailed):
            incoming = self._incoming_calls.pop(event.handle, None)
            if incoming is not None:
                incoming._failed(CallError(event.status_code, event.reason))
            call = self._sip_calls.pop(event.handle, None)
            if call is not None:
                call._finish("no ACK")
        elif isinstance(event, ev.CallConfirmed):
            incoming = self._incoming_calls.pop(event.handle, None)
            if incoming is not None and not incoming._confirmed.done():
                incoming._confirmed.set_result(event)
        elif isinstance(event, ev.CallCancelled):
            incoming = self._incoming_calls.pop(event.handle, None)
            if incoming is not None:
                incoming.cancelled.set()
                if not incoming._confirmed.done():
                    incoming._confirmed.set_exception(CallError(487, "Request Terminated"))
                    incoming._confirmed.exception()  # retrieved: nobody may be waiting
        elif isinstance(event, ev.CallEnded):
            call = self._sip_calls.pop(event.handle, None)
            if call is not None:
                if event.reason == "remote hangup":
                    logger.info("[Call] Remote party ended the session")
                call._finish(event.reason)
        elif isinstance(event, ev.ProvisionalAcknowledged):
            incoming = self._incoming_calls.get(event.handle)
            if incoming is not None:
                incoming._on_early_event(event)
        elif isinstance(event, (ev.ReInviteReceived, ev.ReInviteAnswered, ev.InDialogResponse, ev.InDialogRequest,
                                ev.UpdateReceived, ev.UpdateAnswered)):
            call = self._sip_calls.get(event.handle)
            if call is not None and not (isinstance(event, ev.UpdateReceived) and event.handle in self._incoming_calls):
                call._on_event(event)
            elif isinstance(event, ev.UpdateReceived):
                incoming = self._incoming_calls.get(event.handle)
                if incoming is not None:
                    incoming._on_early_event(event)
                else:
                    self._endpoint.answer_update(event.handle, self._loop.time(), status_code=481)
            elif isinstance(event, ev.ReInviteReceived):
                self._endpoint.answer_reinvite(event.handle, self._loop.time(), status_code=481)
            elif isinstance(event, ev.InDialogRequest):  # a call not handed out (yet): no dialog for it here
                self._endpoint.respond(event.handle, event.request, self._loop.time(), 481)

    def _on_incoming(self, event: ev.IncomingCall) -> None:
        status: Optional[int] = None
        offer: Optional[SessionDescription] = None
        if not event.body:
            pass  # a delayed offer (RFC 3261 §13.2.1): our 2xx will carry the offer and the ACK the answer
        elif event.content_type not in (None, "application/sdp"):
            status, reason = 415, "Unsupported Media Type"
        else:
            try:
                offer = SessionDescription.parse(event.body)
            except SdpParseError as exc:
                logger.warning("[SIP] Bad SDP offer from %s: %s", fmt_addr(event.remote_addr), exc)
                status, reason = 400, "Bad Request (malformed SDP)"
        if status is not None:
            self._endpoint.reject(event.handle, self._loop.time(), status_code=status, reason=reason)
            return
        incoming = IncomingCall(self, event, offer)
        self._incoming_calls[event.handle] = incoming
        self._incoming.put_nowait(incoming)

    # -- public API ------------------------------------------------------------------------------------------------
    async def _resolve_hop(self, uri: SipUri) -> Addr:
        """The address of a SIP URI's host (TransportError when it does not resolve)."""
        return await self._net.resolve(uri, self._endpoint.transport, ipv6=":" in self.local_address[0])

    async def _resolve_target(self, target: Target) -> Tuple[SipUri, Optional[Addr]]:
        if isinstance(target, tuple):
            uri = SipUri(target[0], int(target[1]))
        elif isinstance(target, str) and target.lower().startswith(("sip:", "sips:")):
            parsed = parse_uri(target)
            if not isinstance(parsed, SipUri):
                raise ValueError(f"not a SIP URI: {target!r}")
            uri = parsed
        elif isinstance(target, str):
            host, port_opt = split_hostport(target, "call target")
            uri = SipUri(host, port_opt or 5060)
        else:
            raise TypeError(f"call target must be a SIP URI, 'host:port' or (host, port), not {target!r}")
        if self._endpoint.proxy_hop is not None:
            return uri, None  # the outbound proxy routes it: nothing to resolve here
        return uri, await self._resolve_hop(uri)

    async def call(self, target: Target, offer: Optional[SessionDescription], *, ring_timeout: Optional[float] = None,
                   on_progress: Optional[Callable[[ev.CallProgress], None]] = None,
                   answer_offer: Optional[Callable[[SessionDescription], SessionDescription]] = None) -> SipCall:
        """Place a call and wait until it is answered (and ACKed).

        Args:
            target: ``"sip:user@host:port"``, ``"host:port"`` or ``(host, port)``.
            offer: our SDP offer, or None for a delayed offer (RFC 3261 §13.2.1): the INVITE has no body, the 2xx
                brings the peer's offer and ``answer_offer(offer)`` makes the answer our ACK carries (a
                ``NegotiationError`` from it ends the call with BYE: ``CallError`` 488).
            ring_timeout: seconds to wait for an answer before sending CANCEL (None: wait for the peer or Timer B).
            on_progress: called with each provisional response (``CallProgress``: a 183 with SDP is early media).

        Returns:
            the established call.

        Raises:
            CallError: the final response was not 2xx (its code and reason), 408 on Timer B (no response),
                487 after a ring timeout / CANCEL.
            TransportError: the target cannot be resolved.
            asyncio.CancelledError: the caller was cancelled (a CANCEL is sent).
        """
        if offer is None and answer_offer is None:
            raise ValueError("a delayed offer (offer=None) needs answer_offer to answer the peer's offer")
        uri, resolved = await self._resolve_target(target)
        body = offer.serialize() if offer is not None else b""
        handle: int = self._act(lambda now: self._endpoint.invite(uri, resolved, now, body=body,
                                                                  late_offer=offer is None))
        dest: Addr = self._endpoint.call_info(handle)["remote_addr"]  # type: ignore[assignment]
        pending = _Pending(self._loop, offer, dest, on_progress)
        if offer is None:  # their offer may come in a reliable 1xx: our PRACK then carries the answer
            pending.on_progress = functools.partial(_answer_in_prack, self, pending, answer_offer, on_progress)
        self._pending[handle] = pending
        try:
            if ring_timeout is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(pending.final), ring_timeout)
                except asyncio.TimeoutError:
                    logger.info("[SIP] No answer after %.1f s: sending CANCEL", ring_timeout)
                    self._act(lambda now: self._endpoint.cancel(handle, now))
            result = await asyncio.shield(pending.final)
        except asyncio.CancelledError:
            if not self._closed and self._endpoint.call_state(handle) is CallState.CALLING:
                self._act(lambda now: self._endpoint.cancel(handle, now))
                # §9.1: the INVITE still ends with a final response (487) that must be ACKed, and the CANCEL
                # may need retransmitting: stay on the line briefly instead of closing under the peer's feet
                try:
                    await asyncio.wait_for(asyncio.shield(pending.final), _CANCEL_LINGER)
                except (asyncio.TimeoutError, asyncio.CancelledError):
                    pass
            raise
        if isinstance(result, ev.CallFailed):
            if result.status_code == 408:
                raise CallError(408, "Request Timeout", f"408 Request Timeout: no response from {fmt_addr(dest)}")
            if result.status_code in (401, 407):
                raise AuthenticationError(result.status_code, result.reason, result.reason)
            raise CallError(result.status_code, result.reason, contacts=result.contacts)
        assert isinstance(result, ev.CallAnswered)
        what = "offer" if offer is None else "answer"
        try:
            if pending.early is not None:  # offer/answer completed in a reliable 1xx and our PRACK
                remote, offer = pending.early
            else:
                remote = SessionDescription.parse(result.body)
            if offer is None:
                assert answer_offer is not None
                offer = answer_offer(remote)  # ours is the answer; ``local_sdp`` below
                answer_body = offer.serialize()
                self._act(lambda now: self._endpoint.ack(handle, now, body=answer_body))
        except (SdpParseError, NegotiationError) as exc:
            logger.warning("[SIP] Bad SDP %s in the 200 OK: %s; hanging up", what, exc)
            self._act(lambda now: self._endpoint.bye(handle, now))
            raise CallError(488, "Not Acceptable Here", f"bad SDP {what}: {exc}") from None
        info = self._endpoint.call_info(handle)
        call = SipCall(self, handle, local_sdp=offer, remote_sdp=remote, remote_addr=dest,
                       call_id=str(info["call_id"]), is_caller=True)
        self._sip_calls[handle] = call
        return call

    async def register(
        self,
        aor: str,
        *,
        registrar: Optional[str] = None,
        expires: int = 600,
        keepalive: Optional[float] = None,
        wait: bool = True,
    ) -> Registration:
        """Register our Contact for ``aor`` (digest-authenticated with the user agent's credentials) and keep it
        refreshed until ``close()`` or ``Registration.unregister()``.

        Args:
            aor: the address of record (``sip:alice@example.com``); it becomes our From.
            registrar: the REGISTER Request-URI; default the AOR's domain. Reached through the outbound proxy
                when there is one, else resolved here.
            expires: the lifetime to ask for, seconds; keepalive: CRLF keep-alive interval (None: none).
            wait: wait for the first answer (raising on failure) before returning.

        Raises:
            RegistrationError: the registrar refused (``auth`` tells a credentials problem) or never answered.
            TransportError: the registrar's name does not resolve; ValueError: a malformed AOR or registrar.
        """
        aor_uri, reg_uri = registrar_of(aor, registrar)
        dest = None if self._endpoint.proxy_hop is not None else await self._resolve_hop(reg_uri)
        handle: int = self._act(lambda now: self._endpoint.register(
            aor_uri, now, registrar=reg_uri, dest=dest, expires=expires, keepalive=keepalive))
        registration = Registration(self, handle, str(aor_uri))
        self._registrations[handle] = registration
        if wait:
            await registration.wait_registered()
        return registration

    async def incoming(self) -> IncomingCall:
        """The next incoming call (a new INVITE; ``100 Trying`` was sent already)."""
        return await self._incoming.get()

    def _bye_at(self, handle: int, now: float) -> bool:
        return self._endpoint.bye(handle, now)

    def _reject_at(self, handle: int, now: float) -> None:
        self._endpoint.reject(handle, now, status_code=480)

    async def close(self) -> None:
        """Hang up calls (BYE), unregister (``Expires: 0``, up to 2 s), stop timers, close sockets. Idempotent."""
        if self._closed:
            return
        active = [r for r in self._registrations.values()
                  if r.state in (RegistrationState.REGISTERED, RegistrationState.REGISTERING)]
        for call in list(self._sip_calls.values()):
            if not call.ended:
                try:
                    self._act(functools.partial(self._bye_at, call.handle))
                except (CallError, LocalProtocolError):  # pragma: no cover
                    pass
        for incoming in list(self._incoming_calls.values()):
            try:
                self._act(functools.partial(self._reject_at, incoming.handle))
            except (CallError, LocalProtocolError):
                pass
        if active:
            await asyncio.gather(*(r.unregister() for r in active), return_exceptions=True)
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for pending in self._pending.values():
            if not pending.final.done():
                pending.final.set_result(ev.CallFailed(handle=0, status_code=503, reason="User agent closed"))
        for call in self._sip_calls.values():
            call._finish("closed")
        self._pending.clear()
        await self._net.close()
        await asyncio.sleep(0)
