"""Calls with audio: the public asyncio API that joins SIP signalling and the media engine.

Strategy: a :class:`Phone` owns one SIP :class:`~pyvoip_fast.useragent.UserAgent` (signalling on one UDP port).
For every call it binds an RTP/RTCP socket pair first (so the SDP offer or answer carries real ports), runs
the offer/answer exchange (RFC 3264), and starts a :class:`~pyvoip_fast.media.MediaSession` with the
negotiated codec, ptime and remote address. A :class:`Call` bundles both halves and ends them together:
a remote BYE, a local hang-up, the end of the audio file (when ``hangup_when_done``), or a vanished peer.

Example::

    async with Phone("127.0.0.1", 5060) as phone:
        call = await phone.call("127.0.0.1:5061", source="greeting.mp3", record="heard.wav")
        reason = await call.wait_done()          # file finished -> BYE sent
        print(call.stats.to_json())

The whole call runs at the negotiated codec's sample rate (8 kHz for G.711, 16 kHz for L16/16000): files are
opened and recordings and the sound device run at that rate, and a source object of another rate is
resampled (``audio.resampled``). A sink object with a ``rate`` of its own limits the call to the codecs of that
rate (offered, or accepted in the answer), and a re-INVITE may change the codec only within the call's rate.

Nothing here touches bytes on the wire; see ``sip/`` (sans-IO), ``useragent.py`` (asyncio SIP) and
``media/`` (RTP/RTCP).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import os
import socket
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

from .. import audio
from .. import codecs as _codecs
from ..codecs import Codec
from ..errors import CallError, SdpParseError, TransportError
from ..media import MediaSession
from ..media.clock import MediaClock
from ..sip.sdp import MediaParams, NegotiationError, SessionDescription, make_answer, make_offer, negotiate
from ..rtp.srtp import new_key
from ..sip.admission import Admission
from ..sip.calls import fmt_addr, is_ip_literal
from ..sip.digest import Credentials
from ..sip.digest_server import DigestServer
from ..sip.media_address import MediaAddressRefused, MediaAddressUnresolved, vet_media_host
from .account import Account, Registration
from .call import Call
from .call_control import _all_literal, _sample_rate
from .call_events import DTMF_BACKLOG, CallEnd, Fanout
from .load import LoadMonitor
from .useragent import IncomingCall, SipCall, TimerConfig, UserAgent

logger = logging.getLogger(__name__)

__all__ = ["Phone", "Call", "CallEnd"]

SourceLike = Union[None, str, "os.PathLike[str]", Any]
SinkLike = Union[None, Any]


def _is_factory(source: SourceLike) -> bool:
    """Whether ``source`` is a factory of sources (``audio.ClipCache.opener``) rather than a source object."""
    return callable(source) and not hasattr(source, "read")


def _open_source(source: SourceLike, rate: int) -> Any:
    """A file opened at ``rate``, a factory called with ``rate`` (``audio.ClipCache.opener``), a source object
    resampled to ``rate`` when it says it runs at another one."""
    if source is None:
        return None
    if isinstance(source, (str, os.PathLike)):
        return audio.open_source(Path(source), rate=rate)
    made: Any = source(rate) if _is_factory(source) else source
    if getattr(made, "rate", None) not in (None, rate):
        return audio.resampled(made, rate)
    return made


def _codecs_for_sink(codecs: Sequence[Codec], sink: SinkLike) -> Tuple[Codec, ...]:
    """The codecs a call may run with ``sink``: all of them, or only those of the sink's own ``rate``.

    Raises:
        ValueError: the sink runs at a rate none of the codecs has.
    """
    rate = getattr(sink, "rate", None)
    if sink is None or rate is None:
        return tuple(codecs)
    fit = tuple(c for c in codecs if c.sample_rate == int(rate))
    if not fit:
        names = ", ".join(f"{c.key} ({c.sample_rate} Hz)" for c in codecs)
        raise ValueError(f"the sink runs at {rate} Hz but no codec of this phone does: {names}")
    return fit


class _MediaIO:
    """A call's audio ends at one sample rate: the source, the sinks, and which of them the call owns.

    Opened at the first codec's rate before the offer or answer (a bad file fails before any signalling), and
    re-opened by ``at_rate`` when the negotiated codec runs at another rate.
    """

    def __init__(
        self,
        source: SourceLike,
        sink: SinkLike,
        record: Optional[Union[str, "os.PathLike[str]"]],
        play: bool,
        rate: int,
    ) -> None:
        self._args = (source, sink, record, play)
        self.rate = rate
        self.source: Any = None
        self.sink: Any = None
        self.owned: List[Any] = []
        self._open(rate)

    def _open(self, rate: int) -> None:
        source, sink, record, play = self._args
        self.rate = rate
        try:
            self.source = _open_source(source, rate)
            # what was opened or made for this call is closed with it (a factory's source may hold a
            # file open: left to the garbage collector, a listener's descriptors piled up as calls came
            # and went)
            made = isinstance(source, (str, os.PathLike)) or _is_factory(source)
            if made and self.source is not None and callable(getattr(self.source, "close", None)):
                self.owned.append(self.source)
            if sink is not None and getattr(sink, "rate", None) not in (None, rate):
                raise ValueError(f"the sink runs at {sink.rate} Hz but the call's codec at {rate} Hz")
            sinks: List[Any] = [] if sink is None else [sink]
            if record is not None:
                sinks.append(audio.WavRecorder(Path(record), rate=rate))
                self.owned.append(sinks[-1])
            if play:
                sinks.append(audio.PyAudioSink(rate=rate))
                self.owned.append(sinks[-1])
        except BaseException:
            self.close()
            raise
        self.sink = None if not sinks else sinks[0] if len(sinks) == 1 else audio.TeeSink(*sinks)

    def at_rate(self, rate: int) -> None:
        """Re-open at the negotiated codec's rate (nothing happens when it already is that)."""
        if rate != self.rate:
            self.close()
            self._open(rate)

    def close(self) -> None:
        owned, self.owned = self.owned, []
        for obj in owned:
            obj.close()


async def _ring(incoming: IncomingCall, ring: bool, ring_for: Optional[float]) -> None:
    """180 Ringing when asked for (``ring``, or ``ring_for`` seconds of it before the answer)."""
    if ring or ring_for:
        await incoming.ring()
    if ring_for:
        await _ring_for(incoming, ring_for)


async def _ring_for(incoming: IncomingCall, seconds: float) -> None:
    """Let the phone ring ``seconds`` before answering; a caller that cancels meanwhile is a ``CallError`` 487."""
    if not 0 < seconds <= 600:
        raise ValueError(f"ring_for must be between 0 and 600 seconds, not {seconds!r}")
    watch = asyncio.ensure_future(_cancelled(incoming))
    try:
        done, _ = await asyncio.wait([watch], timeout=seconds)
    finally:
        watch.cancel()
    if done:
        raise CallError(487, "Request Terminated", "the caller cancelled while it rang")


async def _cancelled(incoming: IncomingCall) -> None:
    await incoming.cancelled


def _digit_hub(on_dtmf: Optional[Callable[[str], Any]]) -> Tuple[Fanout[str], Callable[[str], None]]:
    """The call's digit stream (``Call.dtmf()``) and the callback the media and SIP INFO feed it through."""
    hub: Fanout[str] = Fanout(backlog=DTMF_BACKLOG)

    def on_digit(digit: str) -> None:
        hub.publish(digit)
        if on_dtmf is not None:
            try:
                on_dtmf(digit)
            except Exception:
                logger.exception("on_dtmf callback failed")

    return hub, on_digit


def _media_host(local: str, offer: SessionDescription) -> str:
    """Where our media binds for ``offer``: the phone's own address, or, when the offer's media is of the other
    address family (an IPv6 offer to a phone on IPv4), an address of that family on the path to the peer.

    Raises:
        MediaAddressRefused: the offer's family has no route here (488 with a Warning).
    """
    media = offer.first_audio()
    conn = offer.media_connection(media) if media is not None else None
    if conn is None or not is_ip_literal(conn.host) or not is_ip_literal(local):
        return local
    remote, ours = ipaddress.ip_address(conn.host), ipaddress.ip_address(local)
    if remote.version == ours.version or remote.is_unspecified:
        return local
    if remote.is_loopback:
        return "::1" if remote.version == 6 else "127.0.0.1"
    family = socket.AF_INET6 if remote.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((str(remote), 9))  # a route lookup: nothing is sent
            return str(probe.getsockname()[0])
    except OSError as exc:
        raise MediaAddressRefused(f"the offer's media is IPv{remote.version} and this phone has no "
                                  f"IPv{remote.version} route to it ({exc.strerror or exc})") from None


async def _bind_media(host: str, options: dict) -> MediaSession:  # type: ignore[type-arg]
    """A media session on ``host``; one that cannot bind there (no IPv6, say) is a 488 with a Warning."""
    try:
        return await MediaSession.create(host, **options)
    except (OSError, TransportError) as exc:
        raise MediaAddressRefused(f"cannot receive media on {host}: {exc}") from None


async def _resolve_media(params: MediaParams, signalled_from: str, local_host: str, timeout: float) -> MediaParams:
    """The peer's media host names resolved with the event loop's resolver (never a blocking lookup on the loop),
    within ``timeout`` seconds, and the media address rule applied to what they resolve to.

    Raises:
        MediaAddressUnresolved: no answer in time (480); MediaAddressRefused: the name does not resolve, or
        resolves to an address the rule refuses (488).
    """
    if _all_literal(params):
        return params
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in local_host else socket.AF_INET
    found = {}
    rtcp_host = params.remote_rtcp[0] if params.remote_rtcp else params.remote_rtp[0]
    for host in dict.fromkeys([params.remote_rtp[0], rtcp_host]):
        if is_ip_literal(host):
            continue
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, None, family=family, type=socket.SOCK_DGRAM),
                                           timeout)
        except asyncio.TimeoutError:
            raise MediaAddressUnresolved(f"media host {host} did not resolve within {timeout:g} s") from None
        except (OSError, UnicodeError) as exc:
            raise MediaAddressRefused(f"media host {host} does not resolve "
                                      f"({getattr(exc, 'strerror', None) or exc})") from None
        address = str(infos[0][4][0])
        if not vet_media_host(address, signalled_from):
            raise MediaAddressRefused(f"media host {host} resolves to {address}: not a destination")
        logger.info("[SDP] Media host %s is %s", host, address)
        found[host] = address
    rtp = (found.get(params.remote_rtp[0], params.remote_rtp[0]), params.remote_rtp[1])
    rtcp = (found.get(rtcp_host, rtcp_host), params.remote_rtcp[1]) if params.remote_rtcp else None
    return dataclasses.replace(params, remote_rtp=rtp, remote_rtcp=rtcp)


class _EarlyMedia:
    """A caller's early media (RFC 3261 §13.2.2.4, RFC 3960): SDP in a 1xx starts the reception (nothing is
    sent: the callee's signalling proves nothing about the address in its SDP); a later 1xx with other SDP (a
    fork, a changed announcement) moves it."""

    def __init__(self, ua: UserAgent, media: MediaSession, io: "_MediaIO", offer: SessionDescription,
                 on_digit: Callable[[str], None]) -> None:
        self.ua, self.media, self.io, self.offer, self.on_digit = ua, media, io, offer, on_digit
        self.last_body = b""

    def on_progress(self, event: Any) -> None:
        if not event.body or event.body == self.last_body or event.content_type not in (None, "application/sdp"):
            return
        self.last_body = event.body
        try:
            signalled_from = str(self.ua.endpoint.call_info(event.handle)["remote_addr"][0])  # type: ignore[index]
            params = negotiate(self.offer, SessionDescription.parse(event.body), signalled_from=signalled_from)
            if not _all_literal(params):
                raise NegotiationError("a host name in the early SDP (it is resolved for the answer only)")
            if self.media.running:
                self.media.update(params)
            else:
                self.io.at_rate(_sample_rate(params))
                self.media.start(params, source=None, sink=self.io.sink, on_dtmf=self.on_digit, proven=False)
        except (SdpParseError, NegotiationError, ValueError) as exc:
            logger.warning("[SIP] Early media in %d %s ignored: %s", event.status_code, event.reason, exc)
            return
        host, port = params.remote_rtp
        logger.info("[RTP] Early media from %s (%d %s)", fmt_addr((host, port)), event.status_code, event.reason)


async def _play_early(phone: "Phone", incoming: IncomingCall, media: MediaSession,
                      params: Optional[MediaParams], sdp: SessionDescription, io: "_MediaIO", early: SourceLike,
                      timeout: float, on_digit: Callable[[str], None]) -> MediaParams:
    """183 with our SDP and the prompt ``early`` as early media, until it has played (or ``timeout``); then the
    call's own source takes over (the caller answers with 200 OK next). ``sdp`` is our answer (``params`` its
    negotiation), or, for an offerless INVITE (``params`` None), our offer, answered in the caller's PRACK."""
    prompt = _open_source(early, io.rate)
    if isinstance(early, (str, os.PathLike)):
        io.owned.append(prompt)
    if params is not None:  # RFC 3264 §6: ready to receive before the answer leaves
        media.start(params, source=prompt, sink=io.sink, on_dtmf=on_digit, proven=False)
    if await incoming.early_media(sdp):  # the PRACK carries our To tag: the caller's address is proven
        if params is None:
            assert incoming.early_answer is not None
            params = negotiate(sdp, incoming.early_answer, signalled_from=incoming.remote_addr[0])
            params = await _resolve_media(params, incoming.remote_addr[0], phone.host, phone.media_dns_timeout)
            io.at_rate(_sample_rate(params))
            media.start(params, source=prompt, sink=io.sink, on_dtmf=on_digit)
        media.confirm_peer()
    assert params is not None
    logger.info("[RTP] Early media: playing the prompt before answering")
    done = asyncio.ensure_future(media.source_done())
    gone = asyncio.ensure_future(_cancelled(incoming))
    try:
        await asyncio.wait({done, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        done.cancel()
        gone.cancel()
    if incoming.cancelled:
        raise CallError(487, "Request Terminated", "the caller cancelled during early media")
    media.set_source(io.source)
    return params


async def _bye_quietly(sip: SipCall) -> None:
    try:
        await asyncio.wait_for(sip.hangup(), 5.0)
    except (asyncio.TimeoutError, CallError) as exc:
        logger.warning("[SIP] BYE not confirmed: %s", exc or "no response")


class Phone:
    """A SIP peer that places and answers calls with audio, without any proxy.

    Args:
        host: local address for SIP and RTP (IPv4 or IPv6 literal).
        port: local SIP port.
        codecs: codecs to offer/accept, in preference order: registry names (``"PCMU"``, ``"PCMA"``, ``"L16"``)
            or ``Codec`` objects. L16/16000 is never offered unless listed here.
        ptime: packetisation time in ms (10-60).
        user: the user part of our SIP URI.
        timers: SIP timer settings (T1, T2, T4).
        media_options: extra keyword arguments for :meth:`MediaSession.create` (``peer_timeout``,
            ``rtcp_interval``, jitter-buffer delays, ...).
        account: an :class:`~pyvoip_fast.app.account.Account`: its AOR becomes our identity, its credentials
            answer digest challenges, its proxy and transport carry our requests, and (unless
            ``account.register`` is False) ``start()`` / ``async with`` registers it and waits for the
            registrar's answer (:class:`~pyvoip_fast.errors.RegistrationError` on failure); ``close()``
            unregisters. The registration is ``phone.registration``.
        transport / outbound_proxy / ca_file: without an account, the default transport (``udp``, ``tcp``,
            ``tls``), a proxy for requests outside a call, and the CA for TLS (an account's own win).
        admission: an allow-list and the limits on incoming calls (:class:`~pyvoip_fast.sip.admission.Admission`);
            requests beyond them get 403 or 503 + Retry-After and never reach :meth:`incoming`.
        credentials: digest credentials for calls without an account (a peer that challenges us).
        require_auth: a :class:`~pyvoip_fast.sip.digest_server.DigestServer`: incoming calls must prove a password
            (401 challenge, nonce expiry, replay protection); others never reach :meth:`incoming`.
        srtp: ``off``, ``optional`` or ``required``: SRTP (RFC 3711) keyed by SDES (RFC 4568, ``a=crypto``).
            Keys travel in the SDP, so they are offered and accepted only over TLS signalling unless
            ``srtp_insecure_signalling``; ``required`` over clear signalling is then an error (ValueError).
        max_loop_lag: overload control (``app.load.LoadMonitor``): while the event loop runs more than this many
            seconds late, new INVITEs get 503 with Retry-After at once (None: off).
        max_cpu: overload control too: the share of one core (0-1] the calls may use; new INVITEs get 503 once the
            calls up or being set up would need more at their measured cost (None: off).

    Media goes only where ``sip.media_address`` allows: ``0.0.0.0`` means no media, multicast and broadcast are
    refused (488 with a Warning), loopback and link-local only from the same scope; host names in ``c=`` are
    resolved with the event loop's resolver within ``media_dns_timeout`` seconds (default 5; 480 when it runs
    out, 488 when the name does not resolve).
    """

    #: seconds a host name in the peer's SDP may take to resolve
    media_dns_timeout = 5.0

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5060,
        *,
        codecs: Sequence[Any] = _codecs.DEFAULT_CODECS,
        ptime: int = 20,
        user: str = "pyvoip",
        timers: Optional[TimerConfig] = None,
        media_options: Optional[dict] = None,  # type: ignore[type-arg]
        account: Optional[Account] = None,
        transport: str = "udp",
        outbound_proxy: Optional[str] = None,
        ca_file: Optional[str] = None,
        admission: Optional[Admission] = None,
        credentials: Optional[Credentials] = None,
        require_auth: Optional[DigestServer] = None,
        srtp: str = "off",
        srtp_insecure_signalling: bool = False,
        max_loop_lag: Optional[float] = None,
        max_cpu: Optional[float] = None,
    ) -> None:
        self.host = host
        self.port = port
        self.codecs = tuple(_codecs.resolve(codecs))
        self.ptime = ptime
        self.user = user
        self.timers = timers
        self.media_options = dict(media_options or {})
        self.account = account
        self.transport = transport
        self.outbound_proxy = outbound_proxy
        self.ca_file = ca_file
        self.admission = admission
        self.credentials = credentials
        self.require_auth = require_auth
        if srtp not in ("off", "optional", "required"):
            raise ValueError(f"srtp must be off, optional or required, not {srtp!r}")
        self.srtp = srtp
        self.srtp_insecure_signalling = srtp_insecure_signalling
        self.max_loop_lag = max_loop_lag
        if max_cpu is not None and not 0.0 < max_cpu <= 1.0:
            raise ValueError(f"max_cpu must be a share of one core in (0, 1], not {max_cpu!r}")
        self.max_cpu = max_cpu
        #: the overload control while started with ``max_loop_lag`` or ``max_cpu``
        self.load: Optional[LoadMonitor] = None
        self.registration: Optional[Registration] = None
        self.ua: Optional[UserAgent] = None
        self._calls: "set[Call]" = set()

    async def start(self) -> "Phone":
        """Bind the SIP sockets and, with an account, register it.

        Raises:
            TransportError: a bad address or port, a proxy that does not resolve.
            RegistrationError: the registrar refused the account or never answered (the sockets are closed).
        """
        if self.ua is None:
            kwargs: dict = {"user": self.user}  # type: ignore[type-arg]
            if self.timers is not None:
                kwargs["timers"] = self.timers
            account = self.account
            kwargs.update(transport=self.transport, outbound_proxy=self.outbound_proxy, ca_file=self.ca_file,
                          admission=self.admission, credentials=self.credentials, require_auth=self.require_auth)
            if account is not None:
                kwargs.update(user=account.uri.user, transport=account.transport, credentials=account.credentials,
                              outbound_proxy=account.proxy, ca_file=account.ca_file)
            self.ua = await UserAgent.create(self.host, self.port, **kwargs)
            # RFC 3264 §9: an OPTIONS answer describes what we would offer, with port 0 (a capability, no stream)
            self.ua.endpoint.options_sdp = lambda: make_offer(self.host, 0, codecs=self.codecs,
                                                              ptime=self.ptime).serialize()
            if self.max_loop_lag is not None or self.max_cpu is not None:
                endpoint = self.ua.endpoint
                self.load = LoadMonitor(endpoint.admission, max_lag=self.max_loop_lag, max_cpu=self.max_cpu,
                                        calls=lambda: endpoint.live_calls, clock=MediaClock.for_loop())
                self.load.start()
            if not is_ip_literal(self.host):  # a name, looked up once by the loop when the SIP socket was bound:
                self.host = self.ua.local_address[0]  # media binds and SDP use the address, never a blocking lookup
            if account is not None:
                try:
                    if account.register:
                        self.registration = await self.ua.register(
                            account.aor, registrar=account.registrar, expires=account.expires,
                            keepalive=account.keepalive)
                    else:
                        self.ua.endpoint.aor = account.uri
                except BaseException:
                    await self.ua.close()
                    self.ua = None
                    raise
        return self

    async def close(self) -> None:
        """Hang up every call still running (media stopped, BYE sent without waiting) and close the SIP socket.

        Idempotent. Calls ended this way report :attr:`CallEnd.LOCAL_HANGUP`.
        """
        calls, self._calls = list(self._calls), set()
        for call in calls:
            # the user agent's close() sends the BYEs without waiting for their answers
            await call._close(CallEnd.LOCAL_HANGUP, send_bye=False)
        if self.load is not None:
            self.load.stop()
            self.load = None
        if self.ua is not None:
            await self.ua.close()
            self.ua = None

    def _track(self, call: "Call") -> "Call":
        self._calls.add(call)
        call._on_closed = self._calls.discard
        return call

    async def __aenter__(self) -> "Phone":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def local_address(self) -> Tuple[str, int]:
        assert self.ua is not None, "Phone not started"
        return tuple(self.ua.local_address)  # type: ignore[return-value]

    async def call(
        self,
        target: Union[str, Tuple[str, int]],
        *,
        source: SourceLike = None,
        sink: SinkLike = None,
        record: Optional[Union[str, "os.PathLike[str]"]] = None,
        play: bool = False,
        ring_timeout: Optional[float] = None,
        hangup_when_done: bool = True,
        on_dtmf: Optional[Callable[[str], Any]] = None,
        early_media: bool = True,
        late_offer: bool = False,
    ) -> Call:
        """Place a call and start the audio once it is answered.

        Early media (RFC 3960 gateway model): a 183 (or any 1xx) with SDP starts the reception at once, so what
        the callee plays before answering (ringback, announcements, an IVR prompt) is heard, recorded and counted
        (``stats.early_media_packets``); nothing is sent before the 200 OK. The 200's SDP, where it differs,
        updates the session; of several forked early dialogs the last one's media is heard, and the one that
        answers is kept. ``early_media=False`` ignores SDP in 1xx.

        Args:
            target: ``"host:port"``, ``(host, port)`` or a SIP URI.
            source: an audio file path (any format libsndfile reads), a source object (resampled to the
                codec's rate when its ``rate`` differs), or a factory called with the codec's sample rate that
                returns a fresh one (``audio.ClipCache().opener(path)``: a short file decoded once for many
                calls), which the call closes when it ends; None sends nothing.
            sink / record / play: where received audio goes: a sink object (one with a ``rate`` limits the offer
                to the codecs of that rate), a WAV file, the sound device.
            ring_timeout: CANCEL the call when not answered within this many seconds.
            hangup_when_done: hang up (BYE) when the source is finished (see :meth:`Call.wait_done`).
            late_offer: send the INVITE without SDP (RFC 3261 §13.2.1, for servers that want to offer): the 200
                OK carries the peer's offer and our ACK the answer.

        Raises:
            CallError: rejected (4xx/5xx/6xx), not answered, or no response (408).
            ValueError: ``sink`` has a ``rate`` that none of the phone's codecs runs at.
            AudioFileError, TransportError, AudioDeviceError.
        """
        await self.start()
        assert self.ua is not None
        codecs = _codecs_for_sink(self.codecs, sink)
        io = _MediaIO(source, sink, record, play, codecs[0].sample_rate)
        media: Optional[MediaSession] = None
        try:
            policy = self._srtp_policy(self._tls_to(target))
            key = new_key() if policy != "off" else None
            media = await MediaSession.create(self.host, **self.media_options)
            offer = make_offer(self.host, media.local_rtp_port, codecs=codecs, ptime=self.ptime, srtp=policy,
                               srtp_key=key)
            hub, on_digit = _digit_hub(on_dtmf)
            media.ignore_before_start = not early_media
            early = _EarlyMedia(self.ua, media, io, offer, on_digit) if early_media and not late_offer else None
            if late_offer:
                port = media.local_rtp_port

                def answer_offer(theirs: SessionDescription) -> SessionDescription:
                    return make_answer(theirs, self.host, port, codecs=codecs, srtp=policy, srtp_key=key)

                sip = await self.ua.call(target, None, ring_timeout=ring_timeout, answer_offer=answer_offer)
                offer = sip.local_sdp  # our answer
            else:
                sip = await self.ua.call(target, offer, ring_timeout=ring_timeout,
                                         on_progress=early.on_progress if early is not None else None)
            try:
                mine, theirs = (offer, sip.remote_sdp)
                params = negotiate(mine, theirs, signalled_from=sip.remote_addr[0])
                params = await _resolve_media(params, sip.remote_addr[0], self.host, self.media_dns_timeout)
            except NegotiationError as exc:  # the call is up (200 OK, ACK): hang it up rather than leave it
                logger.warning("[SIP] Ending the call: %s", exc)
                await _bye_quietly(sip)
                raise
            if media.running:  # early media was playing: the answer's SDP takes over, and now we send too
                early_packets = media.stats.packets_received
                rate = io.rate
                io.at_rate(_sample_rate(params))
                if io.rate != rate:
                    media.set_sink(io.sink)
                media.update(params)
                media.set_source(io.source)
                media.confirm_peer()
                media.stats.early_media_packets = early_packets
                logger.info("[RTP] Early media: %d packets before the answer", early_packets)
            else:
                io.at_rate(_sample_rate(params))
                media.start(params, source=io.source, sink=io.sink, on_dtmf=on_digit)
        except BaseException:
            if media is not None:
                await media.stop("call failed")
            io.close()
            raise
        return self._track(Call(sip, media, params, local_sdp=offer, rtp_host=self.host, codecs=codecs,
                                owned=io.owned, hangup_when_done=hangup_when_done, srtp=(policy, key),
                                sink=io.sink, dtmf=hub, on_dtmf=on_digit, phone=self))

    async def _take_late_answer(self, incoming: IncomingCall, offer: SessionDescription,
                                rtp_host: str) -> Tuple[SipCall, MediaParams]:
        """Send our offer in the 200 OK of a delayed-offer INVITE and take the answer from the ACK; an answer we
        cannot use ends the call with BYE (``NegotiationError`` or ``CallError`` 488)."""
        sip = await incoming.answer(offer)
        try:
            params = negotiate(offer, sip.remote_sdp, signalled_from=incoming.remote_addr[0])
            return sip, await _resolve_media(params, incoming.remote_addr[0], rtp_host, self.media_dns_timeout)
        except NegotiationError as exc:
            logger.warning("[SIP] Delayed offer: the answer in the ACK is not acceptable (%s): ending the call", exc)
            await _bye_quietly(sip)
            raise

    def _tls_to(self, target: Union[str, Tuple[str, int]]) -> bool:
        """Whether the INVITE to ``target`` travels over TLS (its URI, the outbound proxy's, or the default)."""
        proxy = self.account.proxy if self.account is not None else self.outbound_proxy
        transport = self.account.transport if self.account is not None else self.transport
        first = (proxy or (target if isinstance(target, str) else "")).lower()
        if first.startswith("sips:") or "transport=tls" in first:
            return True
        return transport.lower() == "tls" and "transport=" not in first

    def _srtp_policy(self, secure: bool) -> str:
        """The SRTP policy of one call: ours over TLS (or when allowed in clear); otherwise none, and a
        required SRTP over clear signalling is refused before anything is sent."""
        if self.srtp == "off" or secure or self.srtp_insecure_signalling:
            return self.srtp
        if self.srtp == "required":
            raise ValueError("SRTP is required but its keys (SDES) would travel over unencrypted signalling: use "
                             "TLS (--transport tls, sips:) or allow it (--srtp-insecure-signalling)")
        return "off"

    async def incoming(self) -> IncomingCall:
        """Wait for the next incoming call (not answered yet)."""
        await self.start()
        assert self.ua is not None
        return await self.ua.incoming()

    async def answer(
        self,
        incoming: Optional[IncomingCall] = None,
        *,
        source: SourceLike = None,
        sink: SinkLike = None,
        record: Optional[Union[str, "os.PathLike[str]"]] = None,
        play: bool = False,
        ring: bool = True,
        ring_for: Optional[float] = None,
        on_dtmf: Optional[Callable[[str], Any]] = None,
        early: SourceLike = None,
        early_timeout: float = 60.0,
    ) -> Call:
        """Answer an incoming call (the next one when ``incoming`` is None) and start its audio.

        ``early``: a prompt (file or source) played as early media before the answer: 183 Session Progress with
        our SDP answer (reliable, RFC 3262, when the caller supports 100rel), the prompt sent once the caller's
        PRACK or its own RTP proved its address, then the 200 OK (the same SDP) when the prompt has played or
        ``early_timeout`` seconds have passed. ``ring``/``ring_for`` are not used then.

        An offer with no codec in common is rejected with ``488 Not Acceptable Here`` and raises
        :class:`~pyvoip_fast.sdp.NegotiationError`; a ``sink`` with a ``rate`` of its own accepts only the codecs
        of that rate (and one that no codec of the phone runs at is a ``ValueError``).

        Early choices: ``ring_for=N`` sends 180 Ringing and answers N seconds later (``CallError`` 487 when the
        caller gives up first); to refuse, call ``incoming.reject(code)``; to send the caller elsewhere,
        ``incoming.redirect(["sip:..."])`` (302). With ``ring=False`` and no ``ring_for`` the 200 OK goes at once.
        """
        if incoming is None:
            incoming = await self.incoming()
        codecs = _codecs_for_sink(self.codecs, sink)
        io = _MediaIO(source, sink, record, play, codecs[0].sample_rate)
        media: Optional[MediaSession] = None
        try:
            secure = incoming.request.top_via.transport.upper() == "TLS"
            policy = self.srtp if secure or self.srtp_insecure_signalling else "off"
            key = new_key() if policy != "off" else None
            hub, on_digit = _digit_hub(on_dtmf)
            if incoming.offer is None:  # a delayed offer: we offer in the 200 OK, the caller answers in the ACK
                rtp_host = self.host
                media = await _bind_media(rtp_host, self.media_options)
                answer = make_offer(rtp_host, media.local_rtp_port, codecs=codecs, ptime=self.ptime, srtp=policy,
                                    srtp_key=key)
                if early is not None and incoming.supports_100rel:  # our offer in a reliable 183, the answer in PRACK
                    params = await _play_early(self, incoming, media, None, answer, io, early, early_timeout, on_digit)
                    sip = await incoming.answer(answer)
                else:
                    await _ring(incoming, ring, ring_for)
                    sip, params = await self._take_late_answer(incoming, answer, rtp_host)
                    io.at_rate(_sample_rate(params))
                    media.start(params, source=io.source, sink=io.sink, on_dtmf=on_digit)  # the ACK proved the caller
            else:
                try:
                    rtp_host = _media_host(self.host, incoming.offer)
                    media = await _bind_media(rtp_host, self.media_options)
                    answer = make_answer(incoming.offer, rtp_host, media.local_rtp_port, codecs=codecs, srtp=policy,
                                         srtp_key=key)
                    params = negotiate(answer, incoming.offer, signalled_from=incoming.remote_addr[0])
                    params = await _resolve_media(params, incoming.remote_addr[0], rtp_host, self.media_dns_timeout)
                except NegotiationError as exc:
                    logger.warning("[SIP] Rejecting call: %s", exc)
                    if isinstance(exc, (MediaAddressRefused, MediaAddressUnresolved)) and self.ua is not None:
                        self.ua.endpoint.admission.count("media_address")
                    await incoming.reject(exc.status_code, warning=exc.warning)
                    raise
                io.at_rate(_sample_rate(params))
                if early is not None:
                    params = await _play_early(self, incoming, media, params, answer, io, early, early_timeout,
                                                    on_digit)
                else:
                    await _ring(incoming, ring, ring_for)
                    # RFC 3264 §6: whoever sends an answer must be ready to receive at once; the caller starts
                    # sending on our 200 OK, before its ACK reaches us. Nothing is sent before the caller proves its
                    # address (the ACK, or its own RTP from there): a forged INVITE must not aim our media at a third
                    # party
                    media.start(params, source=io.source, sink=io.sink, on_dtmf=on_digit, proven=False)
                sip = await incoming.answer(answer)
                media.confirm_peer()
            logger.info("[Call] Session established - Ready to receive audio")
        except BaseException as exc:
            # never an INVITE without a final response: whatever failed on our side answers it (RFC 3261 §8.2)
            incoming.fail_now(488 if isinstance(exc, (NegotiationError, ValueError)) else 500)
            if media is not None:
                await media.stop("call failed")
            io.close()
            raise
        return self._track(Call(sip, media, params, local_sdp=answer, rtp_host=rtp_host, codecs=codecs,
                                owned=io.owned, srtp=(policy, key), sink=io.sink, dtmf=hub, on_dtmf=on_digit,
                                phone=self))
