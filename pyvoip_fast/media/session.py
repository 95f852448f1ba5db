"""``MediaSession``: one call's audio stream, composed of a paced sender, a receiver and an RTCP reporter.

Strategy
--------
The session is the adapter between the parts and the world: it owns the RTP/RTCP socket pair
(``net.sockets.bind_pair``, RTP on an even port, RTCP on the next), watches both with ``loop.add_reader`` and
runs one ``Pacer`` on the shared ``MediaClock`` whose every slot sends the next packet (``sender.RtpSender``)
and plays the next frame out (``receiver.RtpReceiver``); ``reporter.RtcpReporter`` sends and reads RTCP on its
own §6.3 schedule. The negotiated codec (``sdp.MediaParams.codec``, else the registry entry for the encoding
and clock rate) gives every rate and size: nothing here assumes 8 kHz.

It also decides what the parts cannot see alone:

- **ICMP errors**: a port-unreachable on RTCP is logged once (peers such as sipp do not listen for RTCP); on
  RTP, after media flowed, it arms the peer-lost check: ``peer_lost`` is set once nothing came from the peer
  (RTP or RTCP) for ``peer_timeout`` seconds; ``media_timeout`` sets it on silence alone.
- **Direction** (hold and resume through ``update()``): what is sent and what is played.
- **Statistics**: ``stats`` assembles the parts' counters into a ``callstats.CallStatistics``.

``stop()`` sends SR/RR + SDES + BYE, closes the sockets and freezes the statistics. Log lines follow the
original program at INFO (``[RTP] Starting audio stream to ...``, ``[RTP] Stream ended: ...``); per-packet
lines only at DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import socket
from typing import Any, Callable, List, Optional, Tuple

from .. import codecs as _codecs
from ..codecs import Codec
from ..rtp.srtp import SrtpContext
from ..net.sockets import Addr, MediaSockets, bind_pair, fmt_addr, resolve
from ..rtp.rtcp_timing import UDP_IPV4_OVERHEAD, UDP_IPV6_OVERHEAD
from ..sip.calls import is_ip_literal
from .callstats import CallStatistics
from .clock import ClockEntry, MediaClock, Pacer
from .lazy_event import LazyEvent
from .liveness import AddressProof, PeerWatch
from .receiver import RtpReceiver
from .reporter import RtcpReporter
from .sender import RtpSender

logger = logging.getLogger(__name__)

#: the OS's randomness for SSRCs, sequence numbers and RTCP timing; stateless, so one serves every session (a
#: SystemRandom still carries a 2.5 KB Mersenne Twister state it never uses)
_SYSTEM_RNG = random.SystemRandom()

__all__ = ["MediaSession", "DIRECTIONS"]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_SENDING = ("sendrecv", "sendonly")
_RECEIVING = ("sendrecv", "recvonly")


def _codec_of(params: Any) -> Codec:
    """The negotiated codec: ``params.codec``, else the registry's entry for its encoding (and clock rate)."""
    codec = getattr(params, "codec", None)
    if isinstance(codec, Codec):
        return codec
    encoding = str(params.encoding)
    rate = getattr(params, "clock_rate", None)
    found = _codecs.find(encoding, int(rate)) if rate else None
    if found is None and not rate:
        try:
            found = _codecs.get(encoding)
        except ValueError:
            found = None
    if found is None:
        where = f"{encoding}/{rate}" if rate else encoding
        raise ValueError(f"unsupported encoding {where!r} (available: {', '.join(_codecs.available())})")
    return found


def _checked(params: Any, family: int) -> Tuple[Codec, int, str, Optional[Addr], Optional[Addr]]:
    """The codec, ptime, direction and the peer's resolved RTP and RTCP addresses of ``params`` (ValueError
    for an unsupported encoding, ptime or direction)."""
    codec = _codec_of(params)
    ptime = int(params.ptime or 20)
    if not 10 <= ptime <= 60 or ptime % 10:
        raise ValueError(f"ptime must be 10, 20, 30, 40, 50 or 60 ms, got {params.ptime!r}")
    direction = str(params.direction or "sendrecv")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {params.direction!r}")
    rhost, rport = params.remote_rtp
    chost, cport = params.remote_rtcp if params.remote_rtcp else (rhost, int(rport) + 1 if rport else 0)
    return codec, ptime, direction, _media_addr(str(rhost), int(rport), family), \
        _media_addr(str(chost), int(cport), family)


def _media_addr(host: str, port: int, family: int) -> Optional[Addr]:
    """A peer's media address as a socket address: None for port 0 and for ``0.0.0.0``/``::`` (no media wanted:
    Linux would deliver it to this host). Never a DNS lookup on the event loop: a name is a ValueError (the
    application resolves names first, see ``Phone``)."""
    if not port or host in ("0.0.0.0", "::"):
        return None
    if not is_ip_literal(host):
        raise ValueError(f"media address {host!r} is a host name: resolve it before starting the media")
    return resolve(host, port, family)[1]


#: ``MediaSession``'s attributes, as slots: a call holds one session, and past 30 attributes CPython gives each
#: instance a dict of its own (0.8 KB)
_SESSION_SLOTS = (
    "_loop", "_clock", "_family", "local_host", "local_rtp_port", "local_rtcp_port", "_rng", "ssrc",
    "cname", "_watch", "rtcp_interval", "_max_burst", "peer_lost", "_peer_lost_callbacks", "bye_received",
    "params", "_direction", "_on_dtmf", "_sender", "_receiver", "_reporter", "_announced", "_pacer",
    "_watch_entry", "_started_at", "_stopped_at", "_proof", "_started", "ignore_before_start", "_closed",
    "_stats", "_sockets",
)


class MediaSession:
    """One call's audio stream: RTP out and in, RTCP, DTMF, statistics. Create with ``await MediaSession.create``.

    Attributes:
        local_rtp_port / local_rtcp_port: the bound ports (RTCP = RTP + 1).
        ssrc: our random SSRC. cname: our SDES CNAME.
        peer_lost: set when the peer vanished (ICMP unreachable on RTP after media flowed, and silence for
            ``peer_timeout`` seconds; or silence alone for ``media_timeout`` seconds when that is set).
        bye_received: set when the peer's RTCP BYE arrived.
    """

    __slots__ = _SESSION_SLOTS

    def __init__(
        self,
        rtp_sock: socket.socket,
        rtcp_sock: socket.socket,
        *,
        loop: asyncio.AbstractEventLoop,
        clock: Optional[MediaClock] = None,
        peer_timeout: float = 5.0,
        media_timeout: Optional[float] = None,
        rtcp_interval: Optional[float] = None,
        cname: Optional[str] = None,
        jitter_min_delay: float = 0.02,
        jitter_max_delay: float = 0.5,
        jitter_initial_delay: float = 0.06,
        plc_lookahead: int = 1,
        max_burst: int = 3,
        rng: Optional[random.Random] = None,
    ) -> None:
        self._loop = loop
        self._clock = clock or MediaClock.for_loop(loop)
        self._family = rtp_sock.family
        local = rtp_sock.getsockname()
        self.local_host: str = str(local[0])
        self.local_rtp_port: int = int(local[1])
        self.local_rtcp_port: int = int(rtcp_sock.getsockname()[1])
        self._rng = rng or _SYSTEM_RNG
        self.ssrc: int = self._rng.getrandbits(32)
        self.cname: str = cname or f"{secrets.token_hex(6)}@{self.local_host}"
        self._watch = PeerWatch(peer_timeout, media_timeout)
        self.rtcp_interval = rtcp_interval
        self._max_burst = max_burst
        self.peer_lost: asyncio.Event = LazyEvent()
        self._peer_lost_callbacks: List[Callable[[], None]] = []
        self.bye_received: asyncio.Event = LazyEvent()
        self.params: Any = None
        self._direction = "inactive"
        self._on_dtmf: Optional[Callable[[str], Any]] = None

        self._sender = RtpSender(self.ssrc, self._rng, self._transmit, loop)
        self._receiver = RtpReceiver(
            (jitter_min_delay, jitter_max_delay, jitter_initial_delay),
            on_latched=self._maybe_announce,
            on_new_source=lambda: self._reporter.forget_sender_report(),  # its RTCP state no longer applies
            on_dtmf=self._dtmf_received,
            plc_lookahead=plc_lookahead,
        )
        overhead = UDP_IPV6_OVERHEAD if self._family == socket.AF_INET6 else UDP_IPV4_OVERHEAD
        self._reporter = RtcpReporter(self._sender, self._receiver, cname=self.cname, overhead=overhead,
                                      fixed_interval=rtcp_interval, rng=self._rng, send=self._send_rtcp,
                                      call_stats=lambda: self.stats)
        self._announced = False

        # lifecycle
        self._pacer: Optional[Pacer] = None
        self._watch_entry: Optional[ClockEntry] = None
        self._started_at: Optional[float] = None
        self._stopped_at: Optional[float] = None
        self._proof = AddressProof()  # return routability: media only to addresses the peer proved
        self._sender.remote_of, self._sender.proof = self._receiver, self._proof  # (the tick's send guard)
        self._started = False
        self.ignore_before_start = False  #: drop RTP that arrives before ``start()`` (early media nobody hears)
        self._closed = False
        self._stats = CallStatistics(local_ssrc=self.ssrc)
        self._sockets = MediaSockets(  # last: from here on the loop may call back into this session
            rtp_sock, rtcp_sock, loop, on_rtp=self._on_rtp_datagram, on_rtcp=self._on_rtcp_datagram,
            on_icmp=self._on_icmp, now=self._clock.now,
        )
        _direct_io(self, rtp_sock)

    @classmethod
    async def create(cls, local_host: str = "127.0.0.1", *, rtp_port: int = 0, **kwargs: Any) -> "MediaSession":
        """Bind the RTP/RTCP socket pair on ``local_host`` (``rtp_port`` even, RTCP the next; 0 picks a free
        pair) and return an idle session; ``kwargs`` are the constructor's (``peer_timeout``, ``media_timeout``,
        ``rtcp_interval``, ``cname``, ``clock``, the ``jitter_*`` delays, ``plc_lookahead``, ``max_burst``,
        ``rng``).

        Raises:
            TransportError: the address cannot be resolved or the port (pair) cannot be bound.
        """
        loop = asyncio.get_running_loop()
        rtp_sock, rtcp_sock = bind_pair(local_host, rtp_port)
        try:
            return cls(rtp_sock, rtcp_sock, loop=loop, **kwargs)
        except BaseException:
            rtp_sock.close()
            rtcp_sock.close()
            raise

    # -- public API ------------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._started and not self._closed

    @property
    def remote_rtp_addr(self) -> Optional[Addr]:
        """Where RTP goes now (the latched source address once the peer's RTP arrived)."""
        return self._receiver.remote_rtp

    @property
    def peer_timeout(self) -> float:
        """Silence after an ICMP error before ``peer_lost`` is set (seconds)."""
        return self._watch.peer_timeout

    @property
    def media_timeout(self) -> Optional[float]:
        """Silence alone before ``peer_lost`` is set (seconds; None: never)."""
        return self._watch.media_timeout

    @property
    def codec(self) -> Optional[Codec]:
        """The codec the stream runs (None before ``start()``)."""
        return self._sender.codec

    @property
    def reports_sent(self) -> int:
        """RTCP reports sent."""
        return self._reporter.sent

    @property
    def reports_received(self) -> int:
        """Valid RTCP compound packets received."""
        return self._reporter.received

    def start(
        self,
        params: Any,
        *,
        source: Any = None,
        sink: Any = None,
        on_dtmf: Optional[Callable[[str], Any]] = None,
        proven: bool = True,
    ) -> None:
        """Start the stream: send (when the direction allows and a source is given) and receive.

        Args:
            params: ``sdp.MediaParams`` (codec, payload_type, encoding, clock_rate, ptime, dtmf_payload_type,
                remote_rtp, remote_rtcp, direction — our direction).
            source: an audio source with ``read(n)`` and ``eof``, giving mono int16 at the codec's sample rate,
                or None to send nothing.
            sink: an audio sink with ``write(pcm)`` (it receives the codec's sample rate), or None (statistics
                only). Not closed by ``stop()``: the caller owns source and sink.
            on_dtmf: called with each received DTMF digit (``"0"``–``"9"``, ``"*"``, ``"#"``, ``"A"``–``"D"``).
            proven: False for an answerer before the ACK: nothing leaves for an address until ``confirm_peer()``
                or RTP/RTCP from it (``liveness.AddressProof``); receiving starts at once either way.

        Raises:
            RuntimeError: started twice, or after stop.
            ValueError: unsupported encoding, ptime or direction.
        """
        self._clock.catch_up()  # a call being set up must not hold back the packets of those already up
        if self._closed:
            raise RuntimeError("media session already stopped")
        if self._started:
            raise RuntimeError("media session already started; use update() to change it")
        self._proof.reset(proven)
        self._sender.set_source(source)
        self._receiver.sink = sink
        self._on_dtmf = on_dtmf
        self._apply_params(params, initial=True)
        self._started = True
        now = self._clock.time()
        self._started_at = now
        self._sender.start(slot0 := self._clock.balanced_start(now, self._sender.ptime / 1000.0))  # ts0's time
        self._watch.start(now)
        self._pacer = self._new_pacer(slot0)
        self._sockets.tick_receive()  # RTP is read on the media tick from now on, not by the loop per packet
        self._reporter.start(self._clock, now, lambda t: t - self._watch.last_heard)
        self._watch_entry = self._clock.call_at(now + 0.5, self._watchdog)
        self._maybe_announce()

    def update(self, params: Any) -> None:
        """Apply re-negotiated parameters (re-INVITE): direction (hold/resume), remote address, codec; a new
        ptime takes effect from the next packet (the schedule restarts).

        Raises:
            RuntimeError: not started or already stopped.
            ValueError: unsupported encoding, ptime or direction.
        """
        if not self.running:
            raise RuntimeError("media session is not running")
        old_ptime = self._sender.ptime
        old_step = self._sender.frame_timestamps
        geometry_changed = self._apply_params(params, initial=False)
        step_changed = self._sender.ptime != old_ptime or self._sender.frame_timestamps != old_step
        if step_changed and self._pacer is not None:
            # a new ptime or clock rate: continue the RTP timeline from the current slot with the new step
            n = self._pacer.n
            self._pacer.stop()
            now = self._clock.balanced_start(self._clock.time(), self._sender.ptime / 1000.0)
            self._sender.rebase(n, self._pacer.deadline(n), old_step, now)
            self._pacer = self._new_pacer(now)
            geometry_changed = True
        if geometry_changed:
            self._receiver.new_stream()  # frame size or rates changed: new jitter buffer and concealer
        self._maybe_announce()

    def set_source(self, source: Any) -> None:
        """Send from ``source`` from the next slot on (as in ``start``; a ``live`` one never ends the audio)."""
        self._sender.set_source(source)
        self._maybe_announce()

    def set_sink(self, sink: Any) -> None:
        """Deliver the received audio to ``sink`` from the next frame on (as in ``start``)."""
        self._receiver.sink = sink

    def confirm_peer(self) -> None:
        """The ACK of our 2xx arrived: media may go to the negotiated addresses (see ``start(proven=...)``)."""
        if self._proof.confirm():
            self._maybe_announce()

    @property
    def peer_proven(self) -> bool:
        """Whether RTP may go to the current remote address."""
        return self._proof.allows(self._receiver.remote_rtp)

    def send_dtmf(self, digits: str) -> None:
        """Queue DTMF digits to send as RFC 4733 telephone-events.

        Raises:
            RuntimeError: the session is not running or the peer did not negotiate telephone-event.
            ValueError: a character that is not a DTMF digit (``0``-``9``, ``*``, ``#``, ``A``-``D``).
        """
        if not self.running:
            raise RuntimeError("media session is not running")
        if self._sender.dtmf_payload_type is None:
            raise RuntimeError("the peer did not negotiate telephone-event (RFC 4733); cannot send DTMF")
        self._sender.queue_dtmf(digits)
        self._stats.dtmf_sent += digits

    async def source_done(self) -> None:
        """Wait until the source reached its end and its last packet left (or the session stopped)."""
        await asyncio.shield(self._sender.source_done)

    def add_end_callbacks(self, peer_lost: Callable[[], None],
                          source_done: Optional[Callable[[], None]] = None) -> Callable[[], None]:
        """Call ``peer_lost()`` when ``peer_lost`` is set and ``source_done()`` (soon) when ``source_done()`` would
        return: what a call waits on to end, without a task per condition. Returns the function that takes the
        callbacks back."""
        return _add_end_callbacks(self._peer_lost_callbacks, self._sender.source_done, peer_lost, source_done)

    @property
    def stats(self) -> CallStatistics:
        """The call statistics (refreshed on each access while running; final after ``stop()``)."""
        if not self._closed:
            self._refresh_stats()
        return self._stats

    async def stop(self, reason: str = "call ended") -> None:
        """Stop the stream: final SR/RR + SDES + BYE, sockets closed, statistics frozen. Idempotent.

        Args:
            reason: the BYE reason text.
        """
        if self._closed:
            return
        if self._pacer is not None:
            self._pacer.stop()
        self._reporter.stop()
        if self._watch_entry is not None:
            self._watch_entry.cancel()
        if self._started:
            try:
                self._reporter.send_report(self._loop.time(), bye_reason=reason)
            except Exception:  # never let the goodbye break shutdown
                logger.debug("final RTCP failed", exc_info=True)
        self._refresh_stats()
        self._closed = True
        self._stopped_at = self._clock.time()
        self._stats.duration = self._stopped_at - (self._started_at or self._stopped_at)
        self._sockets.close()
        if not self._sender.source_done.done():
            self._sender.source_done.set_result(None)
        if self._started:
            _log_ended(self._stats)
        _unlink(self)
        await asyncio.sleep(0)

    async def __aenter__(self) -> "MediaSession":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # -- parameters ----------------------------------------------------------------------------------------------
    def _apply_params(self, params: Any, *, initial: bool) -> bool:
        """Configure the parts; True when the receive geometry (rates, frame size) changed."""
        codec, ptime, direction, new_rtp, new_rtcp = _checked(params, self._family)
        self.params = params
        pt, dtmf_pt = int(params.payload_type), params.dtmf_payload_type
        self._sender.configure(codec, pt, ptime, dtmf_pt)
        changed = self._receiver.configure(codec, pt, ptime, dtmf_pt)
        self._reporter.set_bandwidth(codec.bitrate)
        if direction in _SENDING and self._direction not in _SENDING:
            self._sender.marker_next = True
        self._direction = direction
        self._sender.sending = direction in _SENDING  # the tick's send stage (``RtpSender.tick``) reads it
        self._receiver.receiving = direction in _RECEIVING
        self._receiver.set_remote(new_rtp, initial=initial)
        self._reporter.set_remote(new_rtcp, initial=initial)
        _use_srtp(self._sockets, params)
        self._stats.codec, self._stats.clock_rate, self._stats.ptime_ms = codec.name, codec.clock_rate, ptime
        if self._receiver.jb is None:
            self._receiver.new_stream()
            changed = False
        return changed and not initial

    def _new_pacer(self, now: float) -> Pacer:
        return Pacer(self._clock, self._sender.ptime / 1000.0, None, start=now, max_burst=self._max_burst,
                     on_skip=self._sender.on_skip, stages=(self._sender.tick, self._sockets.poll_rtp, self._tick_playout))

    def _send_rtcp(self, datagram: bytes, addr: Addr) -> bool:
        return self._proof.allows(addr) and self._sockets.send_rtcp(datagram, addr)

    def _maybe_announce(self) -> None:
        if (self._direction in _SENDING and self._sender.source is not None and self._receiver.remote_rtp is not None
                and self.peer_proven):
            if not self._announced:
                logger.info("[RTP] Starting audio stream to %s", fmt_addr(self._receiver.remote_rtp))
                self._announced = True
        elif self._announced and self._direction not in _SENDING:
            logger.info("[RTP] Audio stream paused (%s)", self._direction)
            self._announced = False

    # -- the media tick --------------------------------------------------------------------------------------------
    def _tick_playout(self, n: int, deadline: float) -> None:
        # at the slot's deadline however late the tick ran: a late ``now`` reads as delay (needless shrink and regrow)
        if self._direction in _RECEIVING:
            self._receiver.playout(deadline)

    def _transmit(self, datagram: bytes) -> bool:
        return self._sockets.send_rtp(datagram, self._receiver.remote_rtp)

    # -- what arrives ---------------------------------------------------------------------------------------------
    def _on_rtp_datagram(self, data: bytes, addr: Addr, arrival: Optional[float] = None) -> None:
        if self.ignore_before_start and not self._started:  # ``Phone.call(early_media=False)``
            return
        now = self._clock.now() if arrival is None else arrival
        if self._receiver.on_datagram(data, addr, now):
            self._watch.heard(now)
            proof = self._proof
            if not proof.all_proven and proof.heard(addr):  # (once the ACK came, every address is proven)
                self._maybe_announce()

    def _on_rtcp_datagram(self, data: bytes, addr: Addr) -> None:
        now = self._loop.time()
        reporter = self._reporter
        had_bye = reporter.bye_received
        if not reporter.on_datagram(data, addr, now):
            return
        self._watch.heard(now)
        self._proof.heard(addr)
        if reporter.bye_received and not had_bye:
            self.bye_received.set()

    def _dtmf_received(self, digit: str) -> None:
        self._stats.dtmf_received += digit
        if self._on_dtmf is not None:
            try:
                self._on_dtmf(digit)
            except Exception:
                logger.exception("on_dtmf callback failed")

    # -- is the peer still there? -----------------------------------------------------------------------------------

    def _on_icmp(self, is_rtp: bool, addr: Optional[Addr]) -> None:
        self._watch.on_icmp(is_rtp, addr, self._loop.time(), self._receiver.remote_rtp, self._reporter.remote_rtcp)

    def _watchdog(self, when: float) -> None:
        if self._closed:
            return
        now = self._loop.time()
        why = self._watch.verdict(now, self._sender.sent_audio)
        if why is not None and not self.peer_lost.is_set():
            self._stats.peer_lost = True
            logger.warning("[RTP] Peer %s lost: %s and nothing received for %.1f s",
                           fmt_addr(self._receiver.remote_rtp), why, now - self._watch.last_heard)
            self.peer_lost.set()
            for callback in list(self._peer_lost_callbacks):
                callback()
        self._watch_entry = self._clock.call_at(now + self._watch.check_every, self._watchdog)

    # -- statistics --------------------------------------------------------------------------------------------------
    def _refresh_stats(self) -> None:
        end = self._stopped_at if self._stopped_at is not None else self._loop.time()
        duration = end - self._started_at if self._started_at is not None else None
        _fill_stats(self._stats, self._sender, self._receiver, self._reporter, duration)


def _ignore(*_args: Any) -> None:
    """What a stopped session's parts call back (nothing can arrive or be due once it has stopped)."""


def _refuse(*_args: Any) -> bool:
    """A stopped session's send: nothing leaves."""
    return False


def _never_silent(now: float) -> float:
    return 0.0


def _unlink(session: MediaSession) -> None:
    """Drop what the stopped session's parts hold back to it (its bound methods, closures on it), so that a
    call's objects are freed when the last reference to the session goes instead of waiting, a reference cycle,
    for the collector's oldest generation: at a hundred calls a second a listener's full collections then found
    100,000-200,000 such objects at once and stopped every call's media for 100-400 ms (twenty-fifth session,
    ``benchmarks/README.md``). The session's own references to its parts stay: its statistics still read."""
    rx, tx, sockets, reporter = session._receiver, session._sender, session._sockets, session._reporter
    rx._on_latched = rx._on_new_source = rx._on_dtmf = _ignore
    tx._transmit = reporter._send = _refuse
    stats = session._stats  # (frozen once stopped)
    reporter._call_stats = lambda: stats
    reporter._silence = _never_silent
    session._peer_lost_callbacks.clear()
    if rx.jb is not None:
        rx.jb.silence_detector = None
    if rx._playout is not None:
        rx._playout.decode = _ignore
    sockets._on_rtp = sockets._on_rtcp = sockets._on_icmp = _ignore


def _direct_io(session: MediaSession, rtp_sock: socket.socket) -> None:
    """Let the compiled receiver read the call's RTP socket itself on the media tick and take the common packet
    there (``ReceiverCore.poll_socket``, once the proof has every address), and the compiled sender send the common
    slot's packet itself (``SenderCore`` with the socket, its owner and the receiver whose ``remote_rtp`` is the
    peer). The twins have no such paths: they ignore these fields, and the sockets keep their generic read."""
    receiver, sender, sockets = session._receiver, session._sender, session._sockets
    receiver.proof, receiver.on_heard = session._proof, session._watch.heard
    sockets.rtp_reader = getattr(receiver, "poll_socket", None)
    sender.tx_fd, sender.tx_family, sender.tx_sockets, sender.tx_peer = (
        rtp_sock.fileno(), session._family, sockets, receiver)


def _add_end_callbacks(callbacks: List[Callable[[], None]], future: "asyncio.Future[None]",
                       peer_lost: Callable[[], None], source_done: Optional[Callable[[], None]]) -> Callable[[], None]:
    """``MediaSession.add_end_callbacks``: ``peer_lost`` joins ``callbacks``, ``source_done`` waits on ``future``."""
    callbacks.append(peer_lost)

    def done(_: "asyncio.Future[None]") -> None:
        if source_done is not None:
            source_done()

    if source_done is not None:
        future.add_done_callback(done)

    def remove() -> None:
        if peer_lost in callbacks:
            callbacks.remove(peer_lost)
        if source_done is not None:
            future.remove_done_callback(done)
    return remove


def _log_ended(s: CallStatistics) -> None:
    logger.info("[RTP] Stream ended: %s packets sent, %s received, %s lost (%.1f%%), jitter %.1f ms",
                f"{s.packets_sent:,}", f"{s.packets_received:,}", f"{s.packets_lost:,}", s.loss_percent, s.jitter_ms)


def _use_srtp(sockets: MediaSockets, params: Any) -> None:
    """Protect the call's packets with the SRTP keys of ``params`` (RFC 4568), keeping the context (and its
    rollover counters) while the keys stay the same; plain RTP when there are none."""
    keys = getattr(params, "srtp", None)
    if keys is None:
        sockets.srtp = None
    elif sockets.srtp is None or sockets.srtp.keys != tuple(keys):
        sockets.srtp = SrtpContext(*keys)


def _fill_stats(
    s: CallStatistics, sender: RtpSender, receiver: RtpReceiver, reporter: RtcpReporter, duration: Optional[float]
) -> None:
    """Gather the parts' counters into the call's statistics (and its E-model estimate)."""
    ss = sender.stats
    rx = receiver
    s.packets_sent = ss.packet_count
    s.bytes_sent = ss.octet_count
    expected, lost, dups, reord, jitter_s = rx.totals()
    s.remote_ssrc = rx.remote_ssrc
    s.packets_received = rx.packets
    s.packets_expected = int(expected)
    s.packets_lost = int(lost)
    s.loss_percent = (100.0 * lost / expected) if expected > 0 else 0.0
    s.bytes_received = rx.octets
    s.packets_duplicated = int(dups)
    s.packets_reordered = int(reord)
    s.packets_invalid = rx.invalid
    s.jitter_ms = jitter_s * 1000.0
    s.frames_played = rx.frames_played
    s.schedule_skips = sender.skipped
    if rx.jb is not None:
        s.packets_late = int(rx.jb.stats.late)
        s.frames_stretched, s.frames_shrunk = int(rx.jb.stats.stretched), int(rx.jb.stats.shrunk)
        target, now_delay = rx.jb.delay, rx.jb.current_delay
        s.jitter_buffer_target_ms = float(target) * 1000.0
        s.jitter_buffer_delay_ms = float(target if now_delay is None else max(0.0, now_delay)) * 1000.0
    if rx.concealer is not None:
        # concealment after the last frame that arrived is the stream ending (or an outage still going on),
        # not a loss that was concealed: count only gaps that real audio followed
        s.frames_concealed = int(rx.concealer.concealed_frames) - rx.tail_concealed
    s.rtcp_sent = reporter.sent
    s.rtcp_received = reporter.received
    s.rtcp_strangers = reporter.strangers
    s.bye_received = reporter.bye_received
    s.rtt_ms = reporter.rtt * 1000.0 if reporter.rtt is not None else None
    rb = reporter.remote_report
    if rb is not None and sender.codec is not None:
        s.remote_packets_lost = int(rb.cumulative_lost)
        s.remote_jitter_ms = rb.jitter * 1000.0 / sender.codec.clock_rate
    if duration is not None:
        s.duration = duration
    s.update_quality()
