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
import errno
import logging
import random
import secrets
import socket
from typing import Any, Callable, Optional, Tuple

from .. import codecs as _codecs
from ..codecs import Codec
from ..net.sockets import Addr, bind_pair, drain_errors, fmt_addr, read_datagrams, resolve, same_addr
from ..rtp.rtcp_timing import UDP_IPV4_OVERHEAD, UDP_IPV6_OVERHEAD
from .callstats import CallStatistics
from .clock import ClockEntry, MediaClock, Pacer
from .receiver import RtpReceiver
from .reporter import RtcpReporter
from .sender import RtpSender

logger = logging.getLogger(__name__)

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


class MediaSession:
    """One call's audio stream: RTP out and in, RTCP, DTMF, statistics. Create with ``await MediaSession.create``.

    Attributes:
        local_rtp_port / local_rtcp_port: the bound ports (RTCP = RTP + 1).
        ssrc: our random SSRC. cname: our SDES CNAME.
        peer_lost: set when the peer vanished (ICMP unreachable on RTP after media flowed, and silence for
            ``peer_timeout`` seconds; or silence alone for ``media_timeout`` seconds when that is set).
        bye_received: set when the peer's RTCP BYE arrived.
    """

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
        max_burst: int = 3,
        rng: Optional[random.Random] = None,
    ) -> None:
        self._loop = loop
        self._clock = clock or MediaClock.for_loop(loop)
        self._rtp_sock = rtp_sock
        self._rtcp_sock = rtcp_sock
        self._family = rtp_sock.family
        local = rtp_sock.getsockname()
        self.local_host: str = str(local[0])
        self.local_rtp_port: int = int(local[1])
        self.local_rtcp_port: int = int(rtcp_sock.getsockname()[1])
        self._rng = rng or random.SystemRandom()
        self.ssrc: int = self._rng.getrandbits(32)
        self.cname: str = cname or f"{secrets.token_hex(6)}@{self.local_host}"
        self.peer_timeout = peer_timeout
        self.media_timeout = media_timeout
        self.rtcp_interval = rtcp_interval
        self._max_burst = max_burst
        self.peer_lost = asyncio.Event()
        self.bye_received = asyncio.Event()
        self.params: Any = None
        self._direction = "inactive"
        self._on_dtmf: Optional[Callable[[str], Any]] = None

        self._sender = RtpSender(self.ssrc, self._rng, self._send_rtp, loop)
        self._receiver = RtpReceiver(
            (jitter_min_delay, jitter_max_delay, jitter_initial_delay),
            on_latched=self._maybe_announce,
            on_new_source=self._on_new_source,
            on_dtmf=self._dtmf_received,
        )
        self._reporter = RtcpReporter(
            self._sender,
            self._receiver,
            cname=self.cname,
            overhead=UDP_IPV6_OVERHEAD if self._family == socket.AF_INET6 else UDP_IPV4_OVERHEAD,
            fixed_interval=rtcp_interval,
            rng=self._rng,
            send=self._send_rtcp,
            call_stats=self._refreshed_stats,
        )
        self._announced = False
        # liveness: the last time anything (RTP or RTCP) came from the peer, and ICMP errors
        self._last_heard = 0.0
        self._heard_anything = False
        self._icmp_rtp_at: Optional[float] = None
        self._icmp_rtcp_at: Optional[float] = None
        self._icmp_rtcp_logged = False
        self._send_error_logged = False

        # lifecycle
        self._pacer: Optional[Pacer] = None
        self._rtcp_entry: Optional[ClockEntry] = None
        self._watch_entry: Optional[ClockEntry] = None
        self._started_at: Optional[float] = None
        self._stopped_at: Optional[float] = None
        self._started = False
        self._closed = False
        self._stats = CallStatistics(local_ssrc=self.ssrc)
        self._loop.add_reader(self._rtp_sock.fileno(), self._on_rtp_readable)
        self._loop.add_reader(self._rtcp_sock.fileno(), self._on_rtcp_readable)

    # -- construction --------------------------------------------------------------------------------------------

    @classmethod
    async def create(
        cls,
        local_host: str = "127.0.0.1",
        *,
        rtp_port: int = 0,
        **kwargs: Any,
    ) -> "MediaSession":
        """Bind the RTP/RTCP socket pair and return an idle session (call ``start()`` to run it).

        Args:
            local_host: address to bind (IPv4 or IPv6 literal, or a name).
            rtp_port: even RTP port to bind (RTCP takes the next); 0 picks a free pair.
            **kwargs: ``peer_timeout`` (5 s), ``media_timeout`` (None), ``rtcp_interval`` (None = RFC 3550
                §6.3), ``cname``, ``clock``, ``jitter_min_delay``/``jitter_max_delay``/``jitter_initial_delay``
                (seconds), ``max_burst`` (3), ``rng`` (a ``random.Random`` for SSRC/sequence/timestamp and the
                RTCP randomisation; a system RNG by default).

        Returns:
            the session.

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

        Raises:
            RuntimeError: started twice, or after stop.
            ValueError: unsupported encoding, ptime or direction.
        """
        if self._closed:
            raise RuntimeError("media session already stopped")
        if self._started:
            raise RuntimeError("media session already started; use update() to change it")
        self._sender.set_source(source)
        self._receiver.sink = sink
        self._on_dtmf = on_dtmf
        self._apply_params(params, initial=True)
        self._started = True
        now = self._clock.time()
        self._started_at = now
        self._sender.start(now)  # the time RTP timestamp ts0 corresponds to
        self._last_heard = now
        self._pacer = self._new_pacer(now)
        self._schedule_rtcp(now + self._reporter.scheduler.next_interval())
        self._watch_entry = self._clock.call_at(now + 0.5, self._watchdog)
        self._maybe_announce()

    def update(self, params: Any) -> None:
        """Apply re-negotiated parameters (re-INVITE): direction (hold/resume) and remote address.

        The codec may change too; ptime changes take effect from the next packet (the schedule restarts).

        Raises:
            RuntimeError: not started or already stopped.
            ValueError: unsupported encoding, ptime or direction.
        """
        if not self.running:
            raise RuntimeError("media session is not running")
        old_ptime = self._sender.ptime
        old_step = self._sender.frame_timestamps
        geometry_changed = self._apply_params(params, initial=False)
        if self._sender.ptime != old_ptime and self._pacer is not None:
            # keep the RTP timeline: continue from the current slot's timestamp
            n = self._pacer.n
            self._pacer.stop()
            now = self._clock.time()
            self._sender.rebase(n, self._pacer.deadline(n), old_step, now)
            self._pacer = self._new_pacer(now)
            geometry_changed = True
        if geometry_changed:
            self._receiver.new_stream()  # frame size or rates changed: new jitter buffer and concealer
        self._maybe_announce()

    def send_dtmf(self, digits: str) -> None:
        """Queue DTMF digits to send as RFC 4733 telephone-events.

        Raises:
            RuntimeError: the session is not running or the peer did not negotiate telephone-event.
            ValueError: a character that is not a DTMF digit (0-9, *, #, A-D).
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
        for entry in (self._rtcp_entry, self._watch_entry):
            if entry is not None:
                entry.cancel()
        if self._started:
            try:
                self._send_report(self._loop.time(), bye_reason=reason)
            except Exception:  # never let the goodbye break shutdown
                logger.debug("final RTCP failed", exc_info=True)
        self._refresh_stats()
        self._closed = True
        self._stopped_at = self._clock.time()
        self._stats.duration = self._stopped_at - (self._started_at or self._stopped_at)
        for sock in (self._rtp_sock, self._rtcp_sock):
            try:
                self._loop.remove_reader(sock.fileno())
            except Exception:
                pass
            sock.close()
        if not self._sender.source_done.done():
            self._sender.source_done.set_result(None)
        if self._started:
            s = self._stats
            logger.info(
                "[RTP] Stream ended: %s packets sent, %s received, %s lost (%.1f%%), jitter %.1f ms",
                f"{s.packets_sent:,}",
                f"{s.packets_received:,}",
                f"{s.packets_lost:,}",
                s.loss_percent,
                s.jitter_ms,
            )
        await asyncio.sleep(0)

    async def __aenter__(self) -> "MediaSession":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # -- parameters ----------------------------------------------------------------------------------------------

    def _apply_params(self, params: Any, *, initial: bool) -> bool:
        """Configure the parts; True when the receive geometry (rates, frame size) changed."""
        codec = _codec_of(params)
        ptime = int(params.ptime or 20)
        if not 10 <= ptime <= 60 or ptime % 10:
            raise ValueError(f"ptime must be 10, 20, 30, 40, 50 or 60 ms, got {params.ptime!r}")
        direction = str(params.direction or "sendrecv")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {params.direction!r}")
        rhost, rport = params.remote_rtp
        new_rtp = resolve(str(rhost), int(rport), self._family)[1] if rport else None
        chost, cport = params.remote_rtcp if params.remote_rtcp else (rhost, int(rport) + 1 if rport else 0)
        new_rtcp = resolve(str(chost), int(cport), self._family)[1] if cport else None
        self.params = params
        pt = int(params.payload_type)
        dtmf_pt = params.dtmf_payload_type
        self._sender.configure(codec, pt, ptime, dtmf_pt)
        changed = self._receiver.configure(codec, pt, ptime, dtmf_pt)
        self._reporter.set_bandwidth(codec.bitrate)
        was_sending = self._direction in _SENDING
        self._direction = direction
        self._receiver.receiving = direction in _RECEIVING
        if direction in _SENDING and not was_sending:
            self._sender.marker_next = True
        self._receiver.set_remote(new_rtp, initial=initial)
        self._reporter.set_remote(new_rtcp, initial=initial)
        self._stats.codec = codec.name
        self._stats.clock_rate = codec.clock_rate
        self._stats.ptime_ms = ptime
        if self._receiver.jb is None:
            self._receiver.new_stream()
            changed = False
        return changed and not initial

    def _new_pacer(self, now: float) -> Pacer:
        return Pacer(
            self._clock,
            self._sender.ptime / 1000.0,
            self._on_slot,
            start=now,
            max_burst=self._max_burst,
            on_skip=self._on_skip,
        )

    @property
    def _sending(self) -> bool:
        return self._direction in _SENDING and self._receiver.remote_rtp is not None and self._sender.has_work

    def _maybe_announce(self) -> None:
        if self._direction in _SENDING and self._sender.source is not None and self._receiver.remote_rtp is not None:
            if not self._announced:
                logger.info("[RTP] Starting audio stream to %s", fmt_addr(self._receiver.remote_rtp))
                self._announced = True
        elif self._announced and self._direction not in _SENDING:
            logger.info("[RTP] Audio stream paused (%s)", self._direction)
            self._announced = False

    # -- the media tick --------------------------------------------------------------------------------------------

    def _on_skip(self, count: int) -> None:
        self._sender.marker_next = True
        self._stats.schedule_skips += count
        logger.debug("[RTP] Late wake-up: skipped %d send slot(s)", count)

    def _on_slot(self, n: int, deadline: float) -> None:
        if self._sending:
            self._sender.send_slot(n)
        if self._direction in _RECEIVING:
            self._receiver.playout(self._loop.time())

    # -- sockets ---------------------------------------------------------------------------------------------------

    def _send_rtp(self, data: bytearray) -> bool:
        return self._sendto(self._rtp_sock, data, self._receiver.remote_rtp)

    def _send_rtcp(self, data: bytes, addr: Addr) -> bool:
        try:
            self._rtcp_sock.sendto(data, addr)
        except BlockingIOError:
            return False
        except ConnectionRefusedError:
            self._on_refused(self._rtcp_sock)
            return False
        except OSError as exc:
            logger.debug("[RTCP] send failed: %s", exc)
            return False
        return True

    def _sendto(self, sock: socket.socket, data: Any, addr: Optional[Addr]) -> bool:
        if addr is None:
            return False
        try:
            sock.sendto(data, addr)
            return True
        except BlockingIOError:
            return False  # send buffer full: real-time media drops rather than queues
        except ConnectionRefusedError:
            # an earlier datagram drew ICMP port-unreachable; this one was not sent
            self._on_refused(sock)
            return False
        except OSError as exc:
            if not self._send_error_logged:
                self._send_error_logged = True
                logger.warning("[RTP] Cannot send to %s: %s", fmt_addr(addr), exc.strerror or exc)
            return False

    def _on_rtp_readable(self) -> None:
        sock = self._rtp_sock
        read_datagrams(
            sock,
            self._on_rtp_datagram,
            lambda: self._on_refused(sock),
            refusals=(errno.EHOSTUNREACH, errno.ENETUNREACH),
            on_idle=lambda: self._drain_errors(sock),
            closed=lambda: self._closed,
            what="RTP",
        )

    def _on_rtcp_readable(self) -> None:
        sock = self._rtcp_sock
        read_datagrams(
            sock,
            self._on_rtcp_datagram,
            lambda: self._on_refused(sock),
            on_idle=lambda: self._drain_errors(sock),
            closed=lambda: self._closed,
            what="RTCP",
        )

    def _heard(self, now: float) -> None:
        self._last_heard = now
        self._heard_anything = True

    def _on_rtp_datagram(self, data: bytes, addr: Addr) -> None:
        now = self._loop.time()
        if self._receiver.on_datagram(data, addr, now):
            self._heard(now)

    def _on_rtcp_datagram(self, data: bytes, addr: Addr) -> None:
        now = self._loop.time()
        reporter = self._reporter
        had_bye = reporter.bye_received
        if not reporter.on_datagram(data, addr, now):
            return
        self._heard(now)
        self._stats.rtcp_received += 1
        if reporter.bye_received and not had_bye:
            self._stats.bye_received = True
            self.bye_received.set()

    def _on_new_source(self) -> None:
        self._reporter.forget_sender_report()

    def _dtmf_received(self, digit: str) -> None:
        self._stats.dtmf_received += digit
        if self._on_dtmf is not None:
            try:
                self._on_dtmf(digit)
            except Exception:
                logger.exception("on_dtmf callback failed")

    # -- ICMP errors -------------------------------------------------------------------------------------------------

    def _drain_errors(self, sock: socket.socket) -> int:
        """Note every unreachable error in the socket's error queue; how many there were."""
        now = self._loop.time()
        found = drain_errors(sock)
        for addr in found:
            self._on_icmp(sock is self._rtp_sock, addr, now)
        return len(found)

    def _on_refused(self, sock: socket.socket) -> None:
        """A send or receive failed with ECONNREFUSED: an ICMP port-unreachable for an earlier datagram."""
        if self._drain_errors(sock) == 0:  # reported through sk_err only (no IP_RECVERR queue entry)
            self._on_icmp(sock is self._rtp_sock, None, self._loop.time())

    def _on_icmp(self, is_rtp: bool, addr: Optional[Addr], now: float) -> None:
        if is_rtp:
            if addr is None or same_addr(addr, self._receiver.remote_rtp):
                if self._icmp_rtp_at is None:
                    logger.debug("[RTP] ICMP port unreachable from %s", fmt_addr(addr))
                self._icmp_rtp_at = now
        else:
            self._icmp_rtcp_at = now
        if not is_rtp and not self._icmp_rtcp_logged:
            self._icmp_rtcp_logged = True
            logger.info(
                "[RTCP] Peer %s does not accept RTCP (ICMP port unreachable); continuing without its reports",
                fmt_addr(addr or self._reporter.remote_rtcp),
            )

    def _watchdog(self, when: float) -> None:
        if self._closed:
            return
        now = self._loop.time()
        silent = now - self._last_heard
        media_flowed = self._heard_anything or self._sender.sent_audio
        lost = False
        why = ""
        if (
            self._icmp_rtp_at is not None
            and media_flowed
            and self._icmp_rtp_at >= self._last_heard
            and silent >= self.peer_timeout
        ):
            lost, why = True, "ICMP port unreachable"
        elif (
            self._icmp_rtcp_at is not None
            and self._heard_anything
            and self._icmp_rtcp_at >= self._last_heard
            and silent >= self.peer_timeout
        ):
            # a listen-only side sends no RTP, only RTCP: a peer that used to talk to us, has gone silent and now
            # refuses our reports has gone away (a peer that never sent anything, like sipp, is not judged here)
            lost, why = True, "ICMP port unreachable on RTCP"
        elif self.media_timeout is not None and silent >= self.media_timeout:
            lost, why = True, "no media"
        if lost and not self.peer_lost.is_set():
            self._stats.peer_lost = True
            logger.warning(
                "[RTP] Peer %s lost: %s and nothing received for %.1f s",
                fmt_addr(self._receiver.remote_rtp),
                why,
                silent,
            )
            self.peer_lost.set()
        step = min(0.5, self.peer_timeout / 4.0)
        self._watch_entry = self._clock.call_at(now + max(step, 0.05), self._watchdog)

    # -- RTCP ----------------------------------------------------------------------------------------------------------

    def _schedule_rtcp(self, when: float) -> None:
        self._rtcp_entry = self._clock.call_at(when, self._on_rtcp_timer)

    def _on_rtcp_timer(self, when: float) -> None:
        if self._closed:
            return
        sched = self._reporter.scheduler
        sched.senders = 1 + (1 if self._receiver.rx is not None and self._remote_recently_sent() else 0)
        sched.we_sent = self._sender.we_sent
        try:
            self._send_report(self._loop.time())
        except Exception:
            logger.exception("[RTCP] Report failed")
        self._schedule_rtcp(self._loop.time() + sched.next_interval())

    def _send_report(self, now: float, bye_reason: Optional[str] = None) -> None:
        before = self._reporter.sent
        self._reporter.send_report(now, bye_reason)
        self._stats.rtcp_sent += self._reporter.sent - before

    def _remote_recently_sent(self) -> bool:
        return self._loop.time() - self._last_heard < 2 * max(self._reporter.scheduler.min_time, 1.0)

    # -- statistics --------------------------------------------------------------------------------------------------

    def _refreshed_stats(self) -> CallStatistics:
        self._refresh_stats()
        return self._stats

    def _refresh_stats(self) -> None:
        s = self._stats
        ss = self._sender.stats
        rx = self._receiver
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
        if rx.jb is not None:
            s.packets_late = int(rx.jb.stats.late)
            s.jitter_buffer_delay_ms = float(rx.jb.delay) * 1000.0
        if rx.concealer is not None:
            # concealment after the last frame that arrived is the stream ending (or an outage still going on),
            # not a loss that was concealed: count only gaps that real audio followed
            s.frames_concealed = int(rx.concealer.concealed_frames) - rx.tail_concealed
        rtt = self._reporter.rtt
        s.rtt_ms = rtt * 1000.0 if rtt is not None else None
        rb = self._reporter.remote_report
        if rb is not None and self._sender.codec is not None:
            s.remote_packets_lost = int(rb.cumulative_lost)
            s.remote_jitter_ms = rb.jitter * 1000.0 / self._sender.codec.clock_rate
        if self._started_at is not None:
            end = self._stopped_at if self._stopped_at is not None else self._loop.time()
            s.duration = end - self._started_at
        s.update_quality()
