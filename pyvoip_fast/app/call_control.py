"""Call control a program starts or allows: hold, resume, codec change, blind transfer both ways, SIP INFO digits.

Strategy
--------
:class:`CallControl` is the half of :class:`~pyvoip_fast.app.call.Call` that talks SIP inside the dialog:

- **Hold / resume / codec change** send a re-INVITE (``SipCall.reinvite``) with a new offer on the same port:
  ``sendonly`` to hold (``inactive`` when the peer already holds us, RFC 6337 §5.3), ``sendrecv`` to resume,
  one codec of the call's sample rate to change codec. The answer is applied to the media only when it is
  usable; a refused re-INVITE (488, 491 twice) raises ``CallError`` and leaves the call as it was.
- **Transfer we start** (RFC 3515 REFER, RFC 5589 blind transfer): REFER with ``Refer-To``; the peer's 202 opens
  an implicit subscription whose NOTIFYs carry ``message/sipfrag`` progress (``SIP/2.0 180 Ringing`` ...); a 2xx
  in it means the transfer target answered and we hang up, anything else leaves the call as it was.
- **Transfer the peer asks for**: a REFER is declined (603) unless ``on_transfer`` says yes; then we answer 202,
  NOTIFY ``100 Trying``, place a new call to the ``Refer-To`` target through the same ``Phone``, NOTIFY its
  outcome, and on success end this call (reason ``transferred``) and resolve ``transferred`` with the new call.
- **INFO** with ``application/dtmf-relay`` or ``application/dtmf`` feeds the same digit stream as RFC 4733.
- **The call's state** (``state``, ``states()``) follows from both: our hold, the peer's (the negotiated
  direction), a transfer under way, the end.

The SIP user agent calls ``_on_request`` synchronously for each in-dialog INFO, REFER and NOTIFY; it returns the
status and headers to answer with. Slow work (the new call of a transfer) runs in a task.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Tuple, Union

from .. import codecs as _codecs
from ..errors import CallError, SipParseError
from ..sip.calls import ALLOWED_METHODS, is_ip_literal
from ..sip.sdp import MediaParams, NegotiationError, make_offer, negotiate
from ..sip.sipfrag import make_sipfrag, parse_sipfrag
from ..sip.uri import NameAddress, SipUri
from .call_events import CallEnd, CallState, DtmfInfoError, EventStream, Fanout, parse_dtmf_info

if TYPE_CHECKING:
    from ..media import MediaSession
    from ..sip.message import SipRequest
    from ..sip.sdp import SessionDescription
    from .useragent import SipCall

logger = logging.getLogger(__name__)

__all__ = ["CallControl", "TRANSFER_TIMEOUT"]

#: seconds a transfer we started may take from the REFER to the final NOTIFY
TRANSFER_TIMEOUT = 64.0

_SIPFRAG = "message/sipfrag;version=2.0"

Headers = Sequence[Tuple[str, str]]


def _sample_rate(params: MediaParams) -> int:
    """The PCM sample rate of the negotiated codec (which the source, sinks and recording must run at)."""
    codec = params.codec if params.codec is not None else _codecs.find(params.encoding, params.clock_rate)
    if codec is None:
        raise NegotiationError(f"no codec {params.encoding}/{params.clock_rate} in the registry")
    return int(codec.sample_rate)


def _all_literal(params: MediaParams) -> bool:
    hosts = [params.remote_rtp[0]] + ([params.remote_rtcp[0]] if params.remote_rtcp else [])
    return all(is_ip_literal(host) for host in hosts)


def _refer_target(target: Union[str, Tuple[str, int]]) -> str:
    """A ``Refer-To`` URI from ``"sip:..."``, ``"host:port"`` or ``(host, port)`` (ValueError when unusable)."""
    if isinstance(target, tuple):
        host, port = target
        text = f"sip:{'[' + host + ']' if ':' in host else host}:{int(port)}"
    elif isinstance(target, str) and target.lower().startswith(("sip:", "sips:")):
        text = target
    elif isinstance(target, str) and target:
        text = f"sip:{target}"
    else:
        raise ValueError(f"not a transfer target: {target!r}")
    try:
        SipUri.parse(text)
    except SipParseError as exc:
        raise ValueError(f"not a transfer target: {exc}") from None
    return text


class CallControl:
    """Re-INVITEs, REFER and INFO for :class:`~pyvoip_fast.app.call.Call` (see the module docstring).

    Attributes:
        on_transfer: decides a REFER from the peer: called with the target URI, True to follow it. None (the
            default) declines every REFER with 603.
        transferred: resolved with the new :class:`Call` once a transfer the peer asked for succeeded.
    """

    # provided by Call
    sip: "SipCall"
    media: "MediaSession"
    params: "MediaParams"
    _rtp_host: str
    _codecs: Tuple[Any, ...]
    _rate: int
    _srtp: Tuple[str, Optional[bytes]]
    _local_sdp: "SessionDescription"
    _phone: Any
    _dtmf: "Fanout[str]"
    _on_digit: Optional[Callable[[str], Any]]
    _closed: bool

    # Defaults kept on the class, set on a call only when they change: CPython (3.11 and newer) gives an object with
    # 30 attributes or more a dictionary of its own, 1.3 KB more per call than the shared-key layout below that.
    on_transfer: Optional[Callable[[str], bool]] = None
    _held_by_us = False
    _transferring = False
    _refer_progress: Optional["asyncio.Queue[Tuple[int, str, bool]]"] = None
    _refer_task: Optional["asyncio.Task[None]"] = None
    _transferred: "Optional[asyncio.Future[Any]]" = None  # made when first asked for (few calls are transferred)

    def _init_control(self) -> None:
        self._states: Fanout[CallState] = Fanout()
        self._state = CallState.ACTIVE

    @property
    def transferred(self) -> "asyncio.Future[Any]":
        """Resolved with the new :class:`Call` once a transfer the peer asked for succeeded; cancelled when the call
        ends otherwise."""
        future = self._transferred
        if future is None:
            future = self._transferred = asyncio.get_running_loop().create_future()
            if self._closed:
                future.cancel()
        return future

    def _end_control(self) -> None:
        future = self._transferred
        if future is not None and not future.done():
            future.cancel()
        if self._refer_progress is not None:
            self._refer_progress.put_nowait((487, "Call ended", True))

    # -- re-INVITEs we send ------------------------------------------------------------------------------------------

    async def hold(self) -> None:
        """Put the peer on hold: a re-INVITE with ``sendonly`` (``inactive`` when the peer holds us too).

        Raises:
            CallError: the peer refused (the call stays as it was). RuntimeError: the call has ended.
        """
        if self._held_by_us:
            return
        peer_holds = self.params.direction in ("recvonly", "inactive")
        self._held_by_us = True
        try:
            await self._renegotiate("inactive" if peer_holds else "sendonly")
        except BaseException:
            self._held_by_us = False
            raise
        self._update_state()

    async def resume(self) -> None:
        """Take the call off hold: a re-INVITE with ``sendrecv``.

        Raises:
            CallError: the peer refused (the call stays on hold). RuntimeError: the call has ended.
        """
        if not self._held_by_us:
            return
        self._held_by_us = False
        try:
            await self._renegotiate("sendrecv")
        except BaseException:
            self._held_by_us = True
            raise
        self._update_state()

    async def change_codec(self, codec: Any) -> None:
        """Switch to ``codec`` (a registry name such as ``"PCMA"``, or a ``Codec``) with a re-INVITE offering only it.

        Raises:
            ValueError: unknown, or not of the call's sample rate (the audio ends of the call stay at it).
            CallError: the peer refused it (the call keeps its codec).
        """
        chosen = _codecs.resolve([codec])[0]
        if chosen.sample_rate != self._rate:
            raise ValueError(f"{chosen.key} runs at {chosen.sample_rate} Hz but this call at {self._rate} Hz")
        direction = "sendonly" if self._held_by_us else "sendrecv"
        await self._renegotiate(direction, [chosen])

    async def _renegotiate(self, direction: str, codecs: Optional[List[Any]] = None) -> None:
        if self._closed:
            raise RuntimeError("the call has ended")
        if codecs is None:
            current = self.media.codec
            same = [c for c in self._codecs if c.sample_rate == self._rate]
            codecs = ([current] if current is not None else []) + [c for c in same if c is not current]
        policy, key = self._srtp
        offer = make_offer(self._rtp_host, self.media.local_rtp_port, codecs=codecs, ptime=self.params.ptime,
                           direction=direction, srtp=policy, srtp_key=key,
                           session_id=self._local_sdp.origin.session_id)
        logger.info("[Call] Sending re-INVITE: direction %s, %s", direction, ", ".join(c.key for c in codecs))
        answer = await self.sip.reinvite(offer)
        try:
            params = negotiate(offer, answer, signalled_from=self.sip.remote_addr[0])
            if not _all_literal(params):
                raise NegotiationError("the answer names its media address by host name")
            if _sample_rate(params) != self._rate:
                raise NegotiationError("the answer changes the call's sample rate")
            self.media.update(params)
        except (NegotiationError, ValueError, RuntimeError) as exc:
            logger.warning("[Call] The answer to our re-INVITE cannot be used: %s", exc)
            raise CallError(488, "Not Acceptable Here", f"the answer to our re-INVITE cannot be used: {exc}") \
                from None
        self.params = params
        self._local_sdp = offer
        logger.info("[Call] Re-negotiated: direction %s, codec %s", params.direction, params.encoding)

    # -- transfer we start ------------------------------------------------------------------------------------------

    async def transfer(self, target: Union[str, Tuple[str, int]], *, timeout: float = TRANSFER_TIMEOUT,
                       hangup: bool = True,
                       on_progress: Optional[Callable[[int, str], Any]] = None) -> int:
        """Blind transfer: ask the peer (REFER, RFC 3515) to call ``target``; return the target's final status.

        The peer's NOTIFYs report progress (``on_progress(status, reason)`` and ``[Call] Transfer progress``
        log lines). On success (2xx) this call is hung up when ``hangup`` (reason ``transferred``).

        Raises:
            CallError: the REFER was refused, the target did not answer (its status), or no final NOTIFY came
                within ``timeout`` (408); the call stays as it was.
            ValueError: ``target`` is not a SIP URI or ``host:port``.
        """
        uri = _refer_target(target)
        if self._closed:
            raise RuntimeError("the call has ended")
        if self._refer_progress is not None:
            raise RuntimeError("a transfer is already in progress")
        progress: "asyncio.Queue[Tuple[int, str, bool]]" = asyncio.Queue()
        self._refer_progress = progress
        try:
            headers = [("Refer-To", f"<{uri}>")]
            logger.info("[SIP] Sending REFER: transfer to %s", uri)
            status, reason, _ = await self.sip.request("REFER", headers=headers)
            if not 200 <= status < 300:
                raise CallError(status, reason, f"transfer refused: {status} {reason}")
            self._transferring = True
            self._update_state()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise CallError(408, "Request Timeout", "transfer: no final NOTIFY from the peer")
                try:
                    code, text, terminated = await asyncio.wait_for(progress.get(), left)
                except asyncio.TimeoutError:
                    raise CallError(408, "Request Timeout", "transfer: no final NOTIFY from the peer") from None
                logger.info("[Call] Transfer progress: %d %s", code, text)
                if on_progress is not None:
                    try:
                        on_progress(code, text)
                    except Exception:
                        logger.exception("on_progress callback failed")
                if code >= 200 or terminated:
                    break
            if not 200 <= code < 300:
                raise CallError(code, text, f"transfer failed: {code} {text}")
        except BaseException:
            self._refer_progress = None
            self._transferring = False
            self._update_state()
            raise
        self._refer_progress = None
        logger.info("[Call] Transfer to %s succeeded", uri)
        if hangup:
            await self._close(CallEnd.TRANSFERRED)  # type: ignore[attr-defined]
        return code

    # -- requests from the peer ------------------------------------------------------------------------------------

    def _on_request(self, request: "SipRequest") -> Tuple[int, Headers]:
        """Answer an in-dialog INFO, REFER or NOTIFY (called by the user agent, synchronously)."""
        method = request.method
        if method == "INFO":
            return self._on_info(request)
        if method == "REFER":
            return self._on_refer(request)
        if method == "NOTIFY":
            return self._on_notify(request)
        return 405, (("Allow", ", ".join(ALLOWED_METHODS)),)

    def _on_info(self, request: "SipRequest") -> Tuple[int, Headers]:
        try:
            digit = parse_dtmf_info(request.content_type, request.body)
        except DtmfInfoError as exc:
            logger.warning("[SIP] Bad DTMF in INFO: %s", exc)
            return 400, ()
        if digit is not None:
            logger.info("[SIP] DTMF digit %s received in INFO", digit)
            self.media.stats.dtmf_received += digit
            if self._on_digit is not None:
                self._on_digit(digit)
            else:
                self._dtmf.publish(digit)
        return 200, ()

    def _on_notify(self, request: "SipRequest") -> Tuple[int, Headers]:
        event = (request.headers.get("Event") or "").split(";", 1)[0].strip().lower()
        queue = self._refer_progress
        if event != "refer" or queue is None:
            return 481, ()  # no subscription of ours (RFC 6665 §4.1.3)
        try:
            code, reason = parse_sipfrag(request.body)
        except SipParseError as exc:
            logger.warning("[SIP] Bad transfer progress in NOTIFY: %s", exc)
            return 400, ()
        state = (request.headers.get("Subscription-State") or "").split(";", 1)[0].strip().lower()
        queue.put_nowait((code, reason, state == "terminated"))
        return 200, ()

    def _on_refer(self, request: "SipRequest") -> Tuple[int, Headers]:
        raw = request.headers.get("Refer-To")
        if not raw:
            return 400, ()
        try:
            target = NameAddress.parse(raw).uri
        except SipParseError:
            return 400, ()
        if not isinstance(target, SipUri) or self._phone is None:
            return 603, ()
        if "replaces" in str(target).lower():
            return 603, ()  # attended transfer (Replaces, RFC 3891) is not supported
        policy = self.on_transfer
        try:
            allowed = policy is not None and bool(policy(str(target)))
        except Exception:
            logger.exception("on_transfer callback failed")
            allowed = False
        if not allowed or self._refer_task is not None or self._closed:
            logger.info("[SIP] REFER to %s declined", target)
            return 603, ()
        logger.info("[SIP] REFER accepted: calling %s", target)
        self._refer_task = asyncio.get_running_loop().create_task(self._follow_refer(str(target)))
        return 202, ()

    async def _notify(self, code: int, reason: str, final: bool) -> None:
        state = "terminated;reason=noresource" if final else "active;expires=60"
        headers = [("Event", "refer"), ("Subscription-State", state)]
        try:
            await self.sip.request("NOTIFY", headers=headers, body=make_sipfrag(code, reason),
                                   content_type=_SIPFRAG)
        except CallError as exc:  # the call ended meanwhile: nobody to tell
            logger.info("[SIP] Transfer NOTIFY not delivered: %s", exc)

    async def _follow_refer(self, target: str) -> None:
        self._transferring = True
        self._update_state()
        await self._notify(100, "Trying", False)
        try:
            new_call = await self._phone.call(target, hangup_when_done=False)
        except CallError as exc:
            code, reason = (exc.status_code or 500), exc.reason
        except Exception as exc:  # a target that does not resolve, a socket error: the transfer failed
            code, reason = 503, "Service Unavailable"
            logger.warning("[Call] Transfer to %s failed: %s", target, exc)
        else:
            await self._notify(200, "OK", True)
            logger.info("[Call] Transferred to %s", target)
            if not self.transferred.done():
                self.transferred.set_result(new_call)
            await self._close(CallEnd.TRANSFERRED)  # type: ignore[attr-defined]
            return
        logger.warning("[Call] Transfer to %s failed: %d %s", target, code, reason)
        await self._notify(code, reason, True)
        self._refer_task = None
        self._transferring = False
        self._update_state()

    # provided by Call
    # -- the call's state ---------------------------------------------------------------------------------------

    @property
    def state(self) -> CallState:
        """Where the call is now (:class:`~pyvoip_fast.app.call_events.CallState`)."""
        return self._state

    def states(self) -> EventStream[CallState]:
        """An async iterator of the call's states: the current one first, then every change, ``ENDED`` last."""
        return self._states.open([self._state])

    def _set_state(self, state: CallState) -> None:
        if state is not self._state and self._state is not CallState.ENDED:
            self._state = state
            logger.info("[Call] State: %s", state.value)
            self._states.publish(state)

    def _update_state(self) -> None:
        """Follow the negotiated direction: our hold, the peer's hold, or active."""
        if self._state is CallState.ENDED:
            return
        if self._transferring:
            self._set_state(CallState.TRANSFERRING)
        elif self._held_by_us:
            self._set_state(CallState.HELD)
        elif self.params.direction in ("recvonly", "inactive"):
            self._set_state(CallState.REMOTE_HELD)
        else:
            self._set_state(CallState.ACTIVE)
