"""A call's SIP side as the asyncio user agent hands it out: ``SipCall`` (established) and ``IncomingCall``
(waiting for our decision).

Strategy
--------
Both are thin: every action goes through ``UserAgent._act`` into the sans-IO ``SipEndpoint`` and every answer
comes back as an endpoint event that ``UserAgent._dispatch`` turns into a future's result here. What a program on
the call uses beyond hang-up:

- ``SipCall.reinvite(offer)``: our own re-INVITE; the peer's SDP answer, or ``CallError``. A 491 (both sides
  re-INVITEd at once) is retried once after the random wait of RFC 3261 §14.1 (2.1-4 s for the Call-ID's owner,
  0-2 s for the other side).
- ``SipCall.request(method, ...)``: INFO, REFER, NOTIFY... in the dialog; its final status.
- ``SipCall.on_request``: how INFO, REFER and NOTIFY from the peer are answered (synchronously; default INFO 200,
  REFER 603, NOTIFY 481; a handler that raises or returns nonsense answers 500 and is logged). Such a request
  for a call not handed out as a ``SipCall`` (an ``IncomingCall`` not answered yet) gets 481 (``UserAgent``).
- ``IncomingCall.ring(status_code)``, ``IncomingCall.redirect(contacts)``: 180/183, and 302 with the new targets
  (the caller's ``CallError.contacts``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from ..errors import CallError, LocalProtocolError, SdpParseError
from ..sip import events as ev
from ..sip.endpoint import CallState
from ..sip.media_address import warning_header
from ..sip.message import SipRequest, SipResponse
from .. import codecs as _codecs
from ..sip.media_address import MediaAddressRefused, vet_media_host
from ..sip.sdp import NegotiationError, SessionDescription, make_answer

logger = logging.getLogger("pyvoip_fast.app.useragent")

__all__ = ["SipCall", "IncomingCall", "GLARE_WAIT"]

Addr = Tuple[str, int]
Headers = Sequence[Tuple[str, str]]
#: seconds to wait before retrying a re-INVITE answered 491 (RFC 3261 §14.1): (low, high) for the owner of the
#: Call-ID (the caller) and for the other side
GLARE_WAIT = {True: (2.1, 4.0), False: (0.0, 2.0)}
#: answers to in-dialog requests when the application set no ``on_request``
_DEFAULT_ANSWER = {"INFO": 200, "REFER": 603, "NOTIFY": 481}


def _checked_answer(answer: object) -> Tuple[int, Headers]:
    """``on_request``'s return value as (status, headers); ValueError / TypeError when it is not one."""
    if not isinstance(answer, tuple) or len(answer) != 2:
        raise TypeError(f"on_request must return (status, headers), not {answer!r}")
    status: object = answer[0]
    headers: object = answer[1]
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 699:
        raise ValueError(f"on_request must return a final status code 200-699, not {status!r}")
    if isinstance(headers, (str, bytes)) or not isinstance(headers, (list, tuple)):
        raise TypeError(f"on_request's headers must be (name, value) pairs, not {headers!r}")
    pairs = [(str(name), str(value)) for name, value in headers]
    return status, pairs


class _Flag:
    """Something that is both a bool and an awaitable (``incoming.cancelled``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._future: asyncio.Future[None] = loop.create_future()

    def set(self) -> None:
        if not self._future.done():
            self._future.set_result(None)

    def __bool__(self) -> bool:
        return self._future.done()

    def __await__(self) -> Any:
        return asyncio.shield(self._future).__await__()


class SipCall:
    """An established call.

    Attributes:
        local_sdp / remote_sdp: the descriptions in force (updated by re-INVITEs).
        remote_addr: the peer's signalling address; call_id; is_caller.
        on_reinvite: called with the new remote offer; returns our answer (``SessionDescription``); raise
            ``NegotiationError`` to refuse (488). None: mirror the offered direction with our current media.
        on_request: called with each INFO, REFER and NOTIFY of the peer; returns (status 200-699, extra headers)
            to answer with. None: INFO 200, REFER 603 Decline, NOTIFY 481. Raising answers 500.
    """

    def __init__(self, ua: Any, handle: int, *, local_sdp: SessionDescription,
                 remote_sdp: SessionDescription, remote_addr: Addr, call_id: str, is_caller: bool) -> None:
        self._ua = ua
        self.handle = handle
        self.local_sdp = local_sdp
        self.remote_sdp = remote_sdp
        self.remote_addr = remote_addr
        self.call_id = call_id
        self.is_caller = is_caller
        self.on_reinvite: Optional[Callable[[SessionDescription], SessionDescription]] = None
        self.on_request: Optional[Callable[[SipRequest], Tuple[int, Headers]]] = None
        self._ended: asyncio.Future[str] = ua._loop.create_future()
        self._reinvite: Optional["asyncio.Future[ev.ReInviteAnswered]"] = None
        self._update: Optional["asyncio.Future[ev.UpdateAnswered]"] = None
        self._requests: Dict[int, "asyncio.Future[ev.InDialogResponse]"] = {}

    @property
    def ended(self) -> bool:
        """True once the call is over."""
        return self._ended.done()

    @property
    def end_reason(self) -> Optional[str]:
        """Why the call ended (None while it runs)."""
        return self._ended.result() if self._ended.done() else None

    def add_end_callback(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` (soon) once the call is over, as ``wait_ended()`` would return; a waiter without a
        task of its own. Returns the function that takes the callback back."""
        def done(_: "asyncio.Future[str]") -> None:
            callback()

        def remove() -> None:
            self._ended.remove_done_callback(done)

        self._ended.add_done_callback(done)
        return remove

    def _finish(self, reason: str) -> None:
        if not self._ended.done():
            self._ended.set_result(reason)
        for fut in [self._reinvite, self._update, *self._requests.values()]:
            if fut is not None and not fut.done():
                fut.set_exception(CallError(481, "Call/Transaction Does Not Exist", f"the call ended ({reason})"))
                fut.exception()  # retrieved: nobody may be waiting any more

    async def reinvite(self, offer: SessionDescription, *, timeout: Optional[float] = None) -> SessionDescription:
        """Send a re-INVITE with ``offer`` (hold, resume, a codec change; RFC 3261 §14.1) and return the peer's SDP
        answer; ``local_sdp`` / ``remote_sdp`` follow it. ``offer``'s o= line is given this call's session id and
        the next version (RFC 3264 §8: a changed description has a higher version).

        A 491 (both sides re-INVITEd at once, §14.2), or an INVITE transaction of either side still in progress
        here, is retried once after the random wait of §14.1 (``GLARE_WAIT``: 2.1-4 s when we own the Call-ID,
        that is we placed the call, 0-2 s otherwise).

        Args:
            offer: our new offer. timeout: seconds to wait for the final answer of each attempt (None: until the
                endpoint's timer B, 64·T1, reports 408).

        Raises:
            CallError: a non-2xx answer (its status: 488, 491 twice, 408 no answer...), a 2xx without a usable SDP
                answer (status 0; the call stays as it was), or the call ended (481).
        """
        for attempt in (1, 2):
            # numbered at each attempt: after a glare we may have answered the peer's offer meanwhile, which took
            # the next version already
            offer.origin.session_id = self.local_sdp.origin.session_id
            offer.origin.session_version = self.local_sdp.origin.session_version + 1
            result = await self._reinvite_once(offer, timeout)
            if result.status_code != 491 or attempt == 2:
                break
            low, high = GLARE_WAIT[self.is_caller]
            wait = random.uniform(low, high)
            logger.info("[SIP] re-INVITE crossed the peer's (491): trying again in %.1f s", wait)
            await asyncio.sleep(wait)
        if not 200 <= result.status_code < 300:
            raise CallError(result.status_code, result.reason)
        try:
            if not result.body:
                raise SdpParseError("the 2xx has no body")
            if result.content_type not in (None, "application/sdp"):
                raise SdpParseError(f"the 2xx carries {result.content_type}, not application/sdp")
            answer = SessionDescription.parse(result.body)
        except SdpParseError as exc:
            logger.warning("[SIP] The answer to our re-INVITE is not usable SDP (%s): keeping the session as it was",
                           exc)
            raise CallError(0, "bad SDP answer", f"the answer to our re-INVITE is not usable SDP: {exc}") from None
        self.local_sdp, self.remote_sdp = offer, answer
        return answer

    async def _reinvite_once(self, offer: SessionDescription, timeout: Optional[float]) -> ev.ReInviteAnswered:
        """One re-INVITE and its final answer; an INVITE transaction in progress here counts as a 491."""
        if self.ended:
            raise CallError(481, "Call/Transaction Does Not Exist", "the call has ended")
        fut: "asyncio.Future[ev.ReInviteAnswered]" = self._ua._loop.create_future()
        body = offer.serialize()
        try:
            self._ua._act(lambda now: self._ua._endpoint.reinvite(self.handle, now, body=body))
        except LocalProtocolError as exc:
            if self._ua._endpoint.call_state(self.handle) is not CallState.CONFIRMED:
                raise CallError(481, "Call/Transaction Does Not Exist", f"cannot re-INVITE: {exc}") from None
            logger.info("[SIP] Cannot re-INVITE now: %s", exc)
            return ev.ReInviteAnswered(handle=self.handle, status_code=491, reason="Request Pending")
        self._reinvite = fut
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            raise CallError(408, "Request Timeout", "no answer to our re-INVITE") from None
        finally:
            self._reinvite = None

    async def update(self, offer: Optional[SessionDescription] = None, *,
                     timeout: Optional[float] = None) -> Optional[SessionDescription]:
        """Send an UPDATE (RFC 3311): with ``offer``, a session change without an INVITE transaction (the peer's
        SDP answer is returned and ``local_sdp`` / ``remote_sdp`` follow it); without, a session refresh.

        Raises:
            CallError: a non-2xx answer (488, 491 when an offer crossed ours, 408 none), a 2xx without a usable
                answer to our offer (status 0), or the call ended (481).
        """
        if self.ended:
            raise CallError(481, "Call/Transaction Does Not Exist", "the call has ended")
        body = b""
        if offer is not None:
            offer.origin.session_id = self.local_sdp.origin.session_id
            offer.origin.session_version = self.local_sdp.origin.session_version + 1
            body = offer.serialize()
        fut: "asyncio.Future[ev.UpdateAnswered]" = self._ua._loop.create_future()
        try:
            self._ua._act(lambda now: self._ua._endpoint.update(self.handle, now, body=body))
        except LocalProtocolError as exc:
            raise CallError(491, "Request Pending", f"cannot UPDATE now: {exc}") from None
        self._update = fut
        try:
            result = await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            raise CallError(408, "Request Timeout", "no answer to our UPDATE") from None
        finally:
            self._update = None
        if not 200 <= result.status_code < 300:
            raise CallError(result.status_code, result.reason)
        if offer is None:
            return None
        try:
            answer = SessionDescription.parse(result.body)
        except SdpParseError as exc:
            raise CallError(0, "bad SDP answer", f"the answer to our UPDATE is not usable SDP: {exc}") from None
        self.local_sdp, self.remote_sdp = offer, answer
        return answer

    async def request(self, method: str, *, headers: Headers = (), body: bytes = b"",
                      content_type: Optional[str] = None,
                      timeout: Optional[float] = None) -> Tuple[int, str, Optional[SipResponse]]:
        """Send ``method`` (INFO, REFER, NOTIFY, MESSAGE...) in this call; returns (status, reason, response).

        A non-2xx answer is returned, not raised (408 when none came; then ``response`` is None).

        Raises:
            CallError: the call has ended. ValueError: a method with its own API (INVITE, BYE...).
        """
        if self.ended:
            raise CallError(481, "Call/Transaction Does Not Exist", "the call has ended")
        try:
            rid: int = self._ua._act(lambda now: self._ua._endpoint.request(
                self.handle, method, now, headers=headers, body=body, content_type=content_type))
        except LocalProtocolError as exc:
            raise CallError(481, "Call/Transaction Does Not Exist", str(exc)) from None
        fut: "asyncio.Future[ev.InDialogResponse]" = self._ua._loop.create_future()
        self._requests[rid] = fut
        try:
            result = await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            return 408, "Request Timeout", None
        finally:
            self._requests.pop(rid, None)
        return result.status_code, result.reason, result.response

    def _on_event(self, event: ev.Event) -> None:
        """An endpoint event of this call (``UserAgent._dispatch``)."""
        if isinstance(event, ev.ReInviteReceived):
            self._on_reinvite_received(event)
        elif isinstance(event, ev.UpdateReceived):  # RFC 3311: an offer in an UPDATE is answered like a re-INVITE's
            self._on_reinvite_received(event)
        elif isinstance(event, ev.UpdateAnswered):
            if self._update is not None and not self._update.done():
                self._update.set_result(event)
        elif isinstance(event, ev.ReInviteAnswered):
            if self._reinvite is not None and not self._reinvite.done():
                self._reinvite.set_result(event)
        elif isinstance(event, ev.InDialogResponse):
            fut = self._requests.get(event.request_id)
            if fut is not None and not fut.done():
                fut.set_result(event)
        elif isinstance(event, ev.InDialogRequest):
            self._answer(event.request)

    def _on_reinvite_received(self, event: "ev.ReInviteReceived | ev.UpdateReceived") -> None:
        """Answer the peer's re-INVITE (or UPDATE with an offer): through ``on_reinvite``, or by default mirroring
        the offered direction with our current media address and only the codecs this side already agreed to."""
        endpoint = self._ua._endpoint
        now = self._ua._loop.time()
        respond = endpoint.answer_update if isinstance(event, ev.UpdateReceived) else endpoint.answer_reinvite
        if not event.body:  # offerless re-INVITE: our current description is the offer
            endpoint.answer_reinvite(event.handle, now, body=self.local_sdp.serialize())
            return
        try:
            offer = SessionDescription.parse(event.body)
            if self.on_reinvite is not None:
                answer = self.on_reinvite(offer)
            else:
                media = self.local_sdp.first_audio()
                conn = self.local_sdp.media_connection(media) if media is not None else None
                if media is None or conn is None:
                    raise NegotiationError("no local audio stream to re-negotiate")
                # the call has not started yet: accept only what this side already agreed to (the codecs of
                # our last description), never the defaults (an L16 call must not fall back to G.711)
                theirs = offer.first_audio()
                where = offer.media_connection(theirs) if theirs is not None else None
                if where is not None:  # the media address rule, as for every description (media_address)
                    vet_media_host(where.host, self.remote_addr[0])
                agreed = [_codecs.find(enc, clock, ch) for enc, clock, ch in media.rtpmap().values()]
                ours = [c for c in agreed if c is not None]
                answer = make_answer(offer, conn.host, media.port, ptime=media.ptime, codecs=ours)
        except (SdpParseError, NegotiationError) as exc:
            logger.info("[SIP] %s refused: %s", "UPDATE" if respond is not endpoint.answer_reinvite else "re-INVITE",
                        exc)
            warning = getattr(exc, "warning", None)
            respond(event.handle, now, status_code=488, headers=[warning_header(warning)] if warning else [])
            if isinstance(exc, MediaAddressRefused):
                endpoint.admission.count("media_address")
            return
        answer.origin.session_id = self.local_sdp.origin.session_id
        answer.origin.session_version = self.local_sdp.origin.session_version + 1
        self.remote_sdp = offer
        self.local_sdp = answer
        logger.info("[SIP] %s: remote direction %s, ours %s",
                    "UPDATE" if respond is not endpoint.answer_reinvite else "re-INVITE", offer.direction_of_audio,
                    answer.direction_of_audio)
        respond(event.handle, now, body=answer.serialize())

    def _answer(self, request: SipRequest) -> None:
        """Answer the peer's INFO / REFER / NOTIFY with what ``on_request`` returns (or the default). A handler
        that raises, or returns something that is not (a final status 200-699, header pairs), is an application
        bug: logged, and the request answered 500 so the peer is not left retransmitting."""
        status, extra = _DEFAULT_ANSWER.get(request.method, 501), ()  # type: Tuple[int, Headers]
        if self.on_request is not None:
            try:
                status, extra = _checked_answer(self.on_request(request))
            except Exception:  # an application bug answers 500, never crashes the user agent
                logger.exception("[SIP] on_request failed for %s: answering 500", request.method)
                status, extra = 500, ()
        endpoint, now = self._ua._endpoint, self._ua._loop.time()
        try:
            endpoint.respond(self.handle, request, now, status, headers=extra)
        except ValueError:  # a header the message layer refuses (a line break in a value, a bad name)
            logger.exception("[SIP] on_request's answer to %s cannot be sent: answering 500", request.method)
            endpoint.respond(self.handle, request, now, 500)

    async def hangup(self) -> None:
        """Send BYE and wait for its final response (at most 64·T1). Does nothing if already ended."""
        if self.ended:
            return
        sent = self._ua._act(lambda now: self._ua._endpoint.bye(self.handle, now))
        if not sent:
            self._finish("local hangup")
            return
        await asyncio.shield(self._ended)

    async def wait_ended(self) -> str:
        """Wait for the end of the call.

        Returns:
            ``"remote hangup"`` (BYE received and answered), ``"local hangup"``, ``"no ACK"`` or ``"closed"``.
        """
        return await asyncio.shield(self._ended)

    def __repr__(self) -> str:
        return f"<SipCall {self.call_id} {'caller' if self.is_caller else 'callee'} {self.end_reason or 'active'}>"


class IncomingCall:
    """An INVITE waiting for our decision.

    Attributes:
        offer: the SDP offer, or None for a delayed offer (an INVITE without SDP, RFC 3261 §13.2.1: our 2xx
            carries the offer, the ACK the answer); remote_addr: where the INVITE came from; from_uri; call_id; handle;
        cancelled: truthy once the caller cancelled, and awaitable until then.
    """

    def __init__(self, ua: Any, event: ev.IncomingCall, offer: Optional[SessionDescription]) -> None:
        self._ua = ua
        self.handle = event.handle
        self.offer = offer
        self.remote_addr: Addr = event.remote_addr
        self.from_uri = event.from_uri
        self.to_uri = event.to_uri
        self.call_id = event.call_id
        self.request = event.request
        self.cancelled = _Flag(ua._loop)
        self._confirmed: asyncio.Future[Any] = ua._loop.create_future()
        self._answered = False
        self._call: Optional[SipCall] = None
        #: the SDP we sent in a 183 (``early_media``): our answer, or our offer to an offerless INVITE; None before
        self.early_sdp: Optional[SessionDescription] = None
        #: the caller's answer to that offer, from its PRACK (RFC 3262 §5)
        self.early_answer: Optional[SessionDescription] = None
        self._pracked: "Optional[asyncio.Future[ev.ProvisionalAcknowledged]]" = None

    def _check_open(self) -> None:
        if self.cancelled:
            raise CallError(487, "Request Terminated", "the caller cancelled the call")
        if self._ua._endpoint.call_state(self.handle) is not CallState.INCOMING:
            raise CallError(0, "call already answered or rejected")

    async def ring(self, status_code: int = 180) -> None:
        """Send a provisional response: 180 Ringing, or e.g. 183 Session Progress (RFC 3261 §13.3.1.1).

        Raises:
            ValueError: a code outside 101-199. CallError: the call was cancelled, answered or rejected.
        """
        if not 100 < status_code < 200:
            raise ValueError(f"a provisional status code is 101-199, not {status_code}")
        self._check_open()
        self._ua._act(lambda now: self._ua._endpoint.ring(self.handle, now, status_code=status_code))

    async def early_media(self, answer_sdp: SessionDescription, *, reliable: bool = True,
                          status_code: int = 183) -> bool:
        """Send ``183 Session Progress`` with ``answer_sdp`` (our answer to the offer: early media, RFC 3261
        §13.3.1.1, RFC 3960) before the final answer; the 200 OK later carries the same description.

        With ``reliable`` (the default) and a caller that supports 100rel, the 183 goes reliably (RFC 3262) and
        this returns True once the caller's PRACK arrived (which proves its address: media may be sent); otherwise
        it returns False at once, and media may go only to an address the caller's own RTP came from.

        Raises:
            CallError: the call was cancelled, answered or rejected; or no PRACK came (500 was sent).
            ValueError: a status code outside 101-199, or a delayed-offer INVITE (no offer to answer).
        """
        if self.offer is None and not self.supports_100rel:
            raise ValueError("early media for an INVITE without an offer needs a reliable 183 (our offer) and a PRACK "
                             "(the answer), but the caller does not support 100rel")
        self._check_open()
        body = answer_sdp.serialize()
        fut: "asyncio.Future[ev.ProvisionalAcknowledged]" = self._ua._loop.create_future()
        self._pracked = fut
        went_reliable: bool = self._ua._act(lambda now: self._ua._endpoint.ring(
            self.handle, now, status_code=status_code, body=body, reliable=reliable))
        self.early_sdp = answer_sdp
        if not went_reliable:
            return False
        pracked = await asyncio.shield(fut)
        if self.offer is None:  # ours was the offer: the PRACK carries the answer (RFC 3262 §5)
            try:
                if not pracked.body or pracked.content_type not in (None, "application/sdp"):
                    raise SdpParseError("the PRACK carries no SDP answer")
                self.early_answer = SessionDescription.parse(pracked.body)
            except SdpParseError as exc:
                logger.warning("[SIP] No usable SDP answer in the PRACK (%s): rejecting the call", exc)
                self.fail_now(488)
                raise CallError(488, "Not Acceptable Here", f"no usable SDP answer in the PRACK: {exc}") from None
        return True

    @property
    def supports_100rel(self) -> bool:
        """Whether the caller takes reliable provisional responses (100rel in its Supported or Require)."""
        headers = self.request.headers
        return any("100rel" in v.lower() for name in ("Supported", "Require") for v in headers.get_all(name))

    def _on_early_event(self, event: ev.Event) -> None:
        """A PRACK of our reliable 1xx, or an UPDATE in the early dialog (``UserAgent._dispatch``)."""
        if isinstance(event, ev.ProvisionalAcknowledged):
            if self._pracked is not None and not self._pracked.done():
                self._pracked.set_result(event)
        elif isinstance(event, ev.UpdateReceived):
            # an offer before our answer (RFC 3311 §5.1): we keep the description of our 183 (the same codec and
            # address), renumbered; a peer that cannot take it gets 488 from its own side
            endpoint, now = self._ua._endpoint, self._ua._loop.time()
            if self.early_sdp is None:
                endpoint.answer_update(event.handle, now, status_code=488)
                return
            self.early_sdp.origin.session_version += 1
            endpoint.answer_update(event.handle, now, body=self.early_sdp.serialize())

    def _failed(self, exc: CallError) -> None:
        """The INVITE failed on our side (no ACK, no PRACK): whoever waits hears it."""
        for fut in (self._confirmed, self._pracked):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved: nobody may be waiting

    async def answer(self, answer_sdp: SessionDescription) -> SipCall:
        """Accept with 200 OK carrying ``answer_sdp`` (our offer, for a delayed offer); returns once the ACK
        arrived (for a delayed offer with the ACK's SDP answer as ``remote_sdp``).

        Raises:
            CallError: 487 if the caller cancelled first; 408 if no ACK came (the endpoint then sent BYE); 488 when
                the ACK of a delayed offer carries no usable SDP answer (the call is ended with BYE).
        """
        self._check_open()
        late = self.offer is None and self.early_answer is None
        call = SipCall(self._ua, self.handle, local_sdp=answer_sdp,
                       remote_sdp=self.offer or self.early_answer or answer_sdp,
                       remote_addr=self.remote_addr, call_id=self.call_id, is_caller=False)
        self._call = call
        self._ua._sip_calls[self.handle] = call
        # the offer/answer exchange already completed in our reliable 183 and its PRACK: the 200 OK carries no SDP
        body = b"" if self.early_answer is not None else answer_sdp.serialize()
        self._ua._act(lambda now: self._ua._endpoint.answer(self.handle, now, body=body))
        confirmed = await asyncio.shield(self._confirmed)
        if late:
            try:
                if not confirmed.body:
                    raise SdpParseError("the ACK has no body")
                if confirmed.content_type not in (None, "application/sdp"):
                    raise SdpParseError(f"the ACK carries {confirmed.content_type}, not SDP")
                call.remote_sdp = SessionDescription.parse(confirmed.body)
            except SdpParseError as exc:
                logger.warning("[SIP] Delayed offer: no usable SDP answer in the ACK (%s): ending the call", exc)
                await call.hangup()
                raise CallError(488, "Not Acceptable Here", f"no usable SDP answer in the ACK: {exc}") from None
        return call

    async def reject(self, code: int = 486, reason: Optional[str] = None, *, warning: Optional[str] = None) -> None:
        """Decline with a final response (486 Busy Here by default); ``warning`` adds a ``Warning`` header."""
        self._check_open()
        self._final(code, reason, [warning_header(warning)] if warning else [])

    def _final(self, code: int, reason: Optional[str], headers: Sequence[Tuple[str, str]]) -> None:
        """Send the INVITE's final non-2xx response (reject, redirect, failure)."""
        self._ua._act(lambda now: self._ua._endpoint.reject(self.handle, now, status_code=code, reason=reason,
                                                            headers=headers))

    @property
    def pending(self) -> bool:
        """True while the INVITE still waits for our final response (not answered, rejected or cancelled)."""
        return not self.cancelled and self._ua._endpoint.call_state(self.handle) is CallState.INCOMING

    def fail_now(self, code: int = 500, reason: Optional[str] = None, *, warning: Optional[str] = None) -> None:
        """Answer with a final error at once if nothing was answered yet (what a failure on our side sends, so no
        INVITE is ever left without a final response). Never raises."""
        if self.pending:
            try:
                self._final(code, reason, [warning_header(warning)] if warning else [])
            except Exception:  # the user agent is closing: nothing more can be sent
                logger.debug("final response %d not sent", code, exc_info=True)

    async def redirect(self, contacts: Sequence[str], code: int = 302, reason: Optional[str] = None) -> None:
        """Send the caller elsewhere: a 3xx (302 Moved Temporarily by default) with one Contact per target.

        Raises:
            ValueError: no contacts, a contact with a line break, or a code outside 300-399.
        """
        if not 300 <= code <= 399:
            raise ValueError(f"a redirect is 300-399, not {code}")
        targets = [str(c) for c in contacts]
        if not targets or any(not t or "\r" in t or "\n" in t for t in targets):
            raise ValueError(f"a redirect needs one or more contacts, one line each: {contacts!r}")
        self._check_open()
        # a bare URI is put in <> (its own ;params stay the URI's, RFC 3261 §20.10); a name-addr is sent as is
        headers = [("Contact", t if "<" in t else f"<{t}>") for t in targets]
        logger.info("[SIP] Redirecting the call to %s", ", ".join(targets))
        self._final(code, reason, headers)

    def __repr__(self) -> str:
        return f"<IncomingCall {self.call_id} from {self.from_uri}>"
