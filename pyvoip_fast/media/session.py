"""The asyncio media engine: paced G.711 RTP sending, receiving and playout, RTCP, DTMF, per-call statistics.

Strategy
--------
- **One media clock per event loop** (``MediaClock``): a heap of absolute deadlines on ``loop.time()`` served by
  a single timer, so N concurrent streams cost one timer and one wake-up per distinct deadline, not N tasks
  sleeping. On Linux asyncio loops the timer is a timerfd armed at the absolute deadline (it wakes the loop within
  the kernel's timer slack, ~50 us); elsewhere a ``loop.call_at`` timer. Each stream owns a ``Pacer`` that computes its n-th deadline as ``start + n·ptime`` by
  multiplication (no accumulated drift over hours). A late wake-up sends every due packet, at most
  ``max_burst`` (3) at once; beyond that the schedule skips forward, the skip is counted and the next packet
  carries the RTP marker bit (the gap shows as a timestamp jump, like a silence period, not as loss).
  The clock runs entries due within ``early`` (0.5 ms) of a wake-up together; the ``call_at`` fallback also
  wakes ``early`` ahead, because epoll sleeps in whole milliseconds and waiting for the exact instant would make
  every packet up to 1 ms late.
- **Sockets without asyncio transports**: non-blocking UDP sockets watched with ``loop.add_reader``, sent on
  with ``sendto`` directly (a full send buffer drops the packet and counts it; real-time media never queues).
  RTP binds an even port and RTCP the next one (RFC 3550 §11). Symmetric RTP (RFC 4961): we send from the
  socket we receive on and latch the peer's real source address from its first valid RTP (and RTCP) packet.
- **ICMP errors** (Linux): ``IP_RECVERR``/``IPV6_RECVERR`` is set on both sockets so port-unreachable errors of
  an unconnected socket are reported; the error queue is drained with ``MSG_ERRQUEUE`` (otherwise epoll would
  keep reporting it) and the original destination tells which peer address failed. On RTCP this is logged once
  (peers such as sipp do not listen for RTCP). On RTP, after media flowed, it arms the peer-lost check:
  ``peer_lost`` is set once no RTP or RTCP came from the peer for ``peer_timeout`` seconds.
- **Receiving**: RTP parse errors are counted and logged at DEBUG, never fatal; RFC 3550 appendix A receiver
  statistics (``stats.ReceiverStats``), the adaptive jitter buffer, G.711 decoding by payload type, packet-loss
  concealment (``plc.Concealer``) on lost frames, then the sink, written at the playout tick of OUR media clock
  (so a sound device without a clock, or a WAV file, is paced in real time). A new SSRC starts a new stream.
- **RTCP** (RFC 3550 §6): SR when we sent since the last report, RR otherwise, always SDES CNAME; interval per
  §6.3/A.7 (``rtcp_timing``) for a two-member session at 5 % of a 64 kbit/s G.711 session bandwidth, halved
  minimum before the first report, randomised and compensated; ``rtcp_interval=`` overrides it (tests).
  RTT = A − LSR − DLSR (§6.4.1) from the peer's report blocks about us. ``stop()`` sends SR/RR + SDES + BYE.
- **DTMF**: RFC 4733 telephone-events replace audio while a digit plays (``dtmf.DtmfSender`` produces the
  packets, including the three end-of-event retransmissions); received events are decoded by
  ``dtmf.DtmfReceiver`` and surfaced through ``on_dtmf``.

Log lines follow the original program at INFO (``[RTP] Starting audio stream to ...``, ``[RTCP Report Sent]``,
``Total Packets: 100``, ``Total Data Sent: 16,000 bytes``, ``Average Bitrate: 64.0 kbps``,
``[RTCP Report Received]`` ...); per-packet lines only at DEBUG.
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import logging
import math
import os
import random
import secrets
import socket
import sys
import time
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import _compat
from . import dtmf as _dtmf
from .. import rtp
from ..codecs import g711, plc
from ..rtp import rtcp
from . import jitter
from ..rtp import stats as _stats
from .callstats import CallStatistics
from ..errors import RtcpParseError, RtpParseError, TransportError
from ..rtp.rtcp_timing import UDP_IPV4_OVERHEAD, UDP_IPV6_OVERHEAD, RtcpScheduler

logger = logging.getLogger(__name__)
_udp = _compat.load("_udp")

__all__ = ["MediaClock", "ClockEntry", "Pacer", "MediaSession", "DIRECTIONS"]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_SENDING = ("sendrecv", "sendonly")
_RECEIVING = ("sendrecv", "recvonly")

# Linux socket options not exported by the socket module on every Python version
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
_IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
_MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)

_UNREACHABLE = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
_LITTLE = sys.byteorder == "little"

_PT_PCMU = 0
_PT_PCMA = 8
#: datagrams read per readiness callback before yielding to the loop
_READ_BUDGET = 64
#: largest datagram we read (RTP over Ethernet fits well below)
_MAX_DATAGRAM = 2048
#: strict RTP source: a different source address replaces the latched one only after the latched one was quiet
#: this long (seconds) and the newcomer sent this many packets in sequence from one SSRC
_RELEARN_QUIET = 0.5
_RELEARN_PACKETS = 4


# ----------------------------------------------------------------------------------------------------------
# The shared media clock
# ----------------------------------------------------------------------------------------------------------


class ClockEntry:
    """A scheduled callback on a ``MediaClock``; ``cancel()`` it to drop it."""

    __slots__ = ("_item", "_clock")

    def __init__(self, item: List[Any], clock: "Optional[MediaClock]" = None) -> None:
        self._item = item
        self._clock = clock

    @property
    def when(self) -> float:
        """The deadline (``loop.time()`` seconds)."""
        return float(self._item[0])

    @property
    def cancelled(self) -> bool:
        """True once cancelled or already run."""
        return self._item[2] is None

    def cancel(self) -> None:
        """Cancel the callback (a no-op when it already ran)."""
        if self._item[2] is not None:
            self._item[2] = None
            if self._clock is not None:
                self._clock._cancelled()


class MediaClock:
    """One deadline heap and one timer for every media stream of an event loop.

    ``call_at(when, callback)`` schedules ``callback(when)``; callbacks run in deadline order. At each wake-up
    every entry whose deadline is at most ``early`` seconds ahead runs, then the ``flush`` hooks run (e.g. a
    batched sender), then the timer is re-armed for the earliest remaining deadline.

    The timer is a Linux ``timerfd`` on CLOCK_MONOTONIC armed at the absolute deadline and watched with
    ``loop.add_reader`` when the loop is a standard asyncio loop (whose ``time()`` is that clock): it wakes the
    loop within the kernel's timer slack (about 50 us) of the deadline. Elsewhere (another OS, uvloop, a custom
    clock) it is a ``loop.call_at`` timer armed ``early`` ahead, because epoll sleeps in whole milliseconds.
    The timerfd exists only while something is scheduled, so an idle clock holds no descriptor.

    Use ``MediaClock.for_loop()`` to get the loop's shared instance.

    Args:
        loop: the event loop (the running one when omitted).
        early: how far ahead of its deadline an entry may run (seconds; default 0.5 ms): entries due within
            ``early`` of a wake-up share it.
        precise: use a timerfd when the platform and loop allow it (default); ``False`` forces ``call_at``.
    """

    def __init__(
        self, loop: Optional[asyncio.AbstractEventLoop] = None, *, early: float = 0.0005, precise: bool = True
    ) -> None:
        if early < 0:
            raise ValueError(f"early must not be negative, got {early!r}")
        self.loop = loop or asyncio.get_running_loop()
        self.early = early
        self._heap: List[List[Any]] = []
        self._counter = 0
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_when = math.inf
        self._flush_hooks: List[Callable[[], None]] = []
        self._precise = bool(precise) and _timerfd_usable(self.loop)
        self._tfd = -1
        self._tfd_finalizer: "Optional[weakref.finalize[Any, Any]]" = None
        self._live = 0  # entries scheduled and neither run nor cancelled
        #: wake-ups served and callbacks run (for benchmarks and tests)
        self.wakeups = 0
        self.callbacks_run = 0

    @classmethod
    def for_loop(cls, loop: Optional[asyncio.AbstractEventLoop] = None) -> "MediaClock":
        """The loop's shared clock (created on first use; it lives as long as the loop)."""
        loop = loop or asyncio.get_running_loop()
        clock = getattr(loop, _SHARED_CLOCK_ATTR, None)
        if clock is None:
            clock = _SHARED_CLOCKS.get(loop)
        if not isinstance(clock, MediaClock):
            clock = cls(loop)
            try:
                setattr(loop, _SHARED_CLOCK_ATTR, clock)
            except AttributeError:  # a loop without instance attributes (a compiled loop class)
                _SHARED_CLOCKS[loop] = clock
        return clock

    @property
    def precise(self) -> bool:
        """True when wake-ups come from a timerfd (see the class notes)."""
        return self._precise

    def time(self) -> float:
        """The clock's time base: ``loop.time()`` (monotonic seconds)."""
        return self.loop.time()

    def __len__(self) -> int:
        """Entries scheduled and not yet run or cancelled."""
        return self._live

    def call_at(self, when: float, callback: Callable[[float], None]) -> ClockEntry:
        """Schedule ``callback(when)`` at the absolute time ``when`` (``loop.time()`` seconds).

        Returns:
            a handle whose ``cancel()`` drops the callback.
        """
        self._counter += 1
        item = [when, self._counter, callback]
        heapq.heappush(self._heap, item)
        self._live += 1
        if when < self._timer_when:
            self._arm(when)
        return ClockEntry(item, self)

    def _cancelled(self) -> None:
        self._live -= 1
        if self._live <= 0:  # nothing left to run: drop the cancelled entries and release the timer now
            self._live = 0
            self._heap.clear()
            self.close()

    def add_flush(self, hook: Callable[[], None]) -> None:
        """Run ``hook()`` after the callbacks of each wake-up (used by batched senders)."""
        self._flush_hooks.append(hook)

    def remove_flush(self, hook: Callable[[], None]) -> None:
        """Undo ``add_flush`` (missing hooks are ignored)."""
        try:
            self._flush_hooks.remove(hook)
        except ValueError:
            pass

    def close(self) -> None:
        """Release the timerfd now (it is also released when nothing is scheduled, or with the clock)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_when = math.inf
        self._close_timerfd()

    def _open_timerfd(self) -> bool:
        try:
            fd = _udp.timer_open()
        except OSError as exc:  # no timerfd here after all: fall back for good
            logger.debug("media clock: timerfd unavailable (%s); using loop.call_at", exc)
            self._precise = False
            return False
        try:
            self.loop.add_reader(fd, self._on_timerfd)
        except Exception:
            os.close(fd)
            self._precise = False
            return False
        self._tfd = fd
        self._tfd_finalizer = weakref.finalize(self, _close_fd, fd)
        return True

    def _close_timerfd(self) -> None:
        fd, self._tfd = self._tfd, -1
        if fd < 0:
            return
        if self._tfd_finalizer is not None:
            self._tfd_finalizer.detach()
            self._tfd_finalizer = None
        if not self.loop.is_closed():
            self.loop.remove_reader(fd)
        os.close(fd)

    def _arm(self, when: float) -> None:
        self._timer_when = when
        if self._precise and (self._tfd >= 0 or self._open_timerfd()):
            _udp.timer_arm(self._tfd, max(when, 1e-6))
            return
        if self._timer is not None:
            self._timer.cancel()
        # wake up `early` ahead: epoll rounds its timeout up to the next millisecond
        self._timer = self.loop.call_at(when - self.early, self._run)

    def _on_timerfd(self) -> None:
        if _udp.timer_ack(self._tfd) or self.loop.time() >= self._timer_when:
            self._run()

    def _run(self) -> None:
        self._timer = None
        self._timer_when = math.inf
        self.wakeups += 1
        heap = self._heap
        limit = self.loop.time() + self.early
        pop = heapq.heappop
        ran = 0
        while heap and heap[0][0] <= limit:
            item = pop(heap)
            cb = item[2]
            if cb is None:
                continue
            item[2] = None
            self._live -= 1
            ran += 1
            try:
                cb(item[0])
            except Exception:  # a broken stream must not stop every other stream
                logger.exception("media clock callback %r failed", cb)
        self.callbacks_run += ran
        for hook in self._flush_hooks:
            try:
                hook()
            except Exception:
                logger.exception("media clock flush hook %r failed", hook)
        # drop cancelled entries at the top so the timer is not armed for nothing
        while heap and heap[0][2] is None:
            pop(heap)
        if heap:
            if heap[0][0] < self._timer_when:  # a callback may already have armed it
                self._arm(heap[0][0])
        elif self._timer_when == math.inf:
            self._close_timerfd()


#: attribute under which an event loop keeps its shared MediaClock (so the clock lives and dies with the loop)
_SHARED_CLOCK_ATTR = "_pyvoip_fast_media_clock"
#: the same for loops that take no attributes (the clock refers to its loop, so such an entry lives as long as
#: the process; one per loop)
_SHARED_CLOCKS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MediaClock]" = weakref.WeakKeyDictionary()


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _timerfd_usable(loop: asyncio.AbstractEventLoop) -> bool:
    """A timerfd deadline matches ``loop.time()`` only for asyncio's own loops on Linux (CLOCK_MONOTONIC)."""
    if not sys.platform.startswith("linux") or not hasattr(_udp, "timer_open"):
        return False
    if not isinstance(loop, asyncio.BaseEventLoop) or type(loop).time is not asyncio.BaseEventLoop.time:
        return False
    return time.get_clock_info("monotonic").implementation.startswith("clock_gettime(CLOCK_MONOTONIC")


class Pacer:
    """A periodic schedule on a ``MediaClock``: slot n is due at ``start + n·period``.

    ``callback(n, deadline)`` runs for every slot. A wake-up that finds more than ``max_burst`` slots due runs only
    the last ``max_burst`` of them; the earlier ones are skipped (``skipped`` counts them and ``on_skip(k)``
    is told). The slot index keeps counting through skips, so timestamps derived from it stay on the timeline.

    Args:
        clock: the media clock.
        period: seconds between slots.
        callback: ``callback(n, deadline)``.
        start: time of slot 0 (default: now).
        max_burst: most slots served in one wake-up.
        on_skip: optional ``on_skip(count)``.
    """

    __slots__ = ("clock", "period", "callback", "start", "n", "max_burst", "skipped", "on_skip", "_entry")

    def __init__(
        self,
        clock: MediaClock,
        period: float,
        callback: Callable[[int, float], None],
        *,
        start: Optional[float] = None,
        max_burst: int = 3,
        on_skip: Optional[Callable[[int], None]] = None,
    ) -> None:
        if not period > 0:
            raise ValueError(f"period must be positive, got {period!r}")
        if max_burst < 1:
            raise ValueError(f"max_burst must be at least 1, got {max_burst!r}")
        self.clock = clock
        self.period = period
        self.callback = callback
        self.start = clock.time() if start is None else start
        self.n = 0
        self.max_burst = max_burst
        self.skipped = 0
        self.on_skip = on_skip
        self._entry: Optional[ClockEntry] = clock.call_at(self.start, self._fire)

    @property
    def running(self) -> bool:
        """False after ``stop()``."""
        return self._entry is not None

    def deadline(self, n: int) -> float:
        """The due time of slot ``n``."""
        return self.start + n * self.period

    def stop(self) -> None:
        """Cancel the schedule."""
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None

    def _fire(self, _when: float) -> None:
        limit = self.clock.time() + self.clock.early
        start, period = self.start, self.period
        # slots due now: n .. last (inclusive)
        last = int((limit - start) / period)
        if start + last * period > limit:  # float guard
            last -= 1
        due = last - self.n + 1
        if due > self.max_burst:
            skip = due - self.max_burst
            self.n += skip
            self.skipped += skip
            if self.on_skip is not None:
                self.on_skip(skip)
        while self.n <= last and self._entry is not None:
            n = self.n
            self.n = n + 1
            self.callback(n, start + n * period)
        if self._entry is not None:
            self._entry = self.clock.call_at(start + self.n * period, self._fire)


# ----------------------------------------------------------------------------------------------------------
# Sockets
# ----------------------------------------------------------------------------------------------------------


def _resolve(host: str, port: int, family: int = socket.AF_UNSPEC) -> Tuple[int, Tuple[Any, ...]]:
    """(family, sockaddr) for a host and port; numeric hosts without DNS, names through getaddrinfo."""
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST)
    except socket.gaierror:
        try:
            infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise TransportError(f"cannot resolve address {host!r}: {exc}") from None
    if not infos:
        raise TransportError(f"cannot resolve address {host!r}")
    fam, _, _, _, addr = infos[0]
    return fam, addr


def _make_socket(family: int, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
        except OSError:  # not Linux: ICMP errors are simply not reported on unconnected sockets
            pass
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_pair(host: str, rtp_port: int, attempts: int = 64) -> Tuple[socket.socket, socket.socket]:
    """Bind RTP on an even port and RTCP on the next one (any free pair when ``rtp_port`` is 0)."""
    family, addr = _resolve(host, 0)
    bind_host = addr[0]
    if rtp_port:
        if not 0 < rtp_port < 65535:
            raise TransportError(f"RTP port must be within 1..65534, got {rtp_port}")
        try:
            a = _make_socket(family, bind_host, rtp_port)
        except OSError as exc:
            raise TransportError(f"cannot bind RTP to {host} port {rtp_port}: {exc.strerror or exc}") from None
        try:
            b = _make_socket(family, bind_host, rtp_port + 1)
        except OSError as exc:
            a.close()
            raise TransportError(
                f"cannot bind RTCP to {host} port {rtp_port + 1}: {exc.strerror or exc}"
            ) from None
        return a, b
    last_error: Optional[OSError] = None
    for _ in range(attempts):
        try:
            a = _make_socket(family, bind_host, 0)
        except OSError as exc:
            raise TransportError(f"cannot bind a UDP socket on {host}: {exc.strerror or exc}") from None
        port = a.getsockname()[1]
        if port % 2 or port >= 65535:
            # odd: try the even port just below, else draw again
            a.close()
            try:
                a = _make_socket(family, bind_host, port - 1)
                port -= 1
            except OSError as exc:
                last_error = exc
                continue
        try:
            b = _make_socket(family, bind_host, port + 1)
        except OSError as exc:
            last_error = exc
            a.close()
            continue
        return a, b
    raise TransportError(f"no free even/odd UDP port pair on {host}: {last_error}")


# ----------------------------------------------------------------------------------------------------------
# The media session
# ----------------------------------------------------------------------------------------------------------

_Addr = Tuple[Any, ...]


def _same_addr(a: Optional[_Addr], b: Optional[_Addr]) -> bool:
    return a is not None and b is not None and a[0] == b[0] and a[1] == b[1]


def _fmt_addr(addr: Optional[_Addr]) -> str:
    if addr is None:
        return "?"
    host = str(addr[0])
    return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"


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
        self._jb_args = (jitter_min_delay, jitter_max_delay, jitter_initial_delay)
        self._max_burst = max_burst
        self.peer_lost = asyncio.Event()
        self.bye_received = asyncio.Event()

        # negotiated parameters (set by start / update)
        self.params: Any = None
        self._pt = _PT_PCMU
        self._encode: Callable[..., bytes] = g711.ulaw_encode
        self._clock_rate = 8000
        self._ptime = 20
        self._frame_samples = 160
        self._dtmf_pt: Optional[int] = None
        self._direction = "inactive"
        self._remote_rtp: Optional[_Addr] = None
        self._remote_rtcp: Optional[_Addr] = None
        self._rtp_latched = False
        self._candidate: Optional[Tuple[_Addr, int, int, int]] = None  # (addr, ssrc, last seq, run length)
        self._sdp_rtp: Optional[_Addr] = None  # the RTP address the peer negotiated
        self._last_rtp_heard = 0.0
        self._rtcp_latched = False

        # sending state
        self._seq = self._rng.getrandbits(16)
        self._ts0 = self._rng.getrandbits(32)
        self._source: Any = None
        self._sink: Any = None
        self._on_dtmf: Optional[Callable[[str], Any]] = None
        self._source_done: "asyncio.Future[None]" = loop.create_future()
        self._marker_next = True
        self._last_sent_n = -2
        self._sender_stats = _stats.SenderStats()
        self._we_sent = False
        self._sent_audio = False
        self._first_sent_at: Optional[float] = None
        self._ts0_time = 0.0
        self._last_sent_at = 0.0
        self._announced = False
        self._dtmf_sender: Any = None
        self._dtmf_receiver = _dtmf.DtmfReceiver()

        # receiving state
        self._rx: Any = None  # ReceiverStats of the current remote SSRC
        self._rx_totals = [0, 0, 0, 0]  # expected, lost, duplicates, reordered of earlier SSRCs
        self._rx_packets = 0  # distinct RTP packets received, all SSRCs
        self._rx_octets = 0
        self._remote_ssrc: Optional[int] = None
        self._jb: Any = None
        self._concealer: Any = None
        self._playing = False
        self._tail_concealed = 0  # frames concealed since the last frame that really arrived
        self._last_heard = 0.0
        self._heard_anything = False
        self._icmp_rtp_at: Optional[float] = None
        self._icmp_rtcp_at: Optional[float] = None
        self._icmp_rtcp_logged = False
        self._send_error_logged = False
        self._invalid = 0

        # RTCP state
        self._rtcp_sched = RtcpScheduler(
            fixed_interval=rtcp_interval,
            rng=self._rng.random,
            overhead=UDP_IPV6_OVERHEAD if self._family == socket.AF_INET6 else UDP_IPV4_OVERHEAD,
        )
        self._rtcp_entry: Optional[ClockEntry] = None
        self._last_sr_mid: int = 0  # middle 32 bits of the peer's last SR NTP timestamp
        self._last_sr_arrival = 0.0
        self._rtt: Optional[float] = None
        self._remote_report: Any = None
        self.reports_received = 0
        self.reports_sent = 0

        # lifecycle
        self._pacer: Optional[Pacer] = None
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
        rtp_sock, rtcp_sock = _bind_pair(local_host, rtp_port)
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
    def remote_rtp_addr(self) -> Optional[_Addr]:
        """Where RTP goes now (the latched source address once the peer's RTP arrived)."""
        return self._remote_rtp

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
            params: ``sdp.MediaParams`` (payload_type, encoding, clock_rate, ptime, dtmf_payload_type,
                remote_rtp, remote_rtcp, direction — our direction).
            source: an audio source with ``read(n)`` and ``eof`` (8 kHz mono int16), or None to send nothing.
            sink: an audio sink with ``write(pcm)``, or None (statistics only). Not closed by ``stop()``: the
                caller owns source and sink.
            on_dtmf: called with each received DTMF digit (``"0"``–``"9"``, ``"*"``, ``"#"``, ``"A"``–``"D"``).

        Raises:
            RuntimeError: started twice, or after stop.
            ValueError: unsupported encoding, ptime or direction.
        """
        if self._closed:
            raise RuntimeError("media session already stopped")
        if self._started:
            raise RuntimeError("media session already started; use update() to change it")
        self._source = source
        self._sink = sink
        self._on_dtmf = on_dtmf
        if source is None and not self._source_done.done():
            self._source_done.set_result(None)
        self._apply_params(params, initial=True)
        self._started = True
        now = self._clock.time()
        self._started_at = now
        self._ts0_time = now  # the time RTP timestamp ts0 corresponds to
        self._last_heard = now
        self._pacer = Pacer(
            self._clock,
            self._ptime / 1000.0,
            self._on_slot,
            start=now,
            max_burst=self._max_burst,
            on_skip=self._on_skip,
        )
        self._schedule_rtcp(now + self._rtcp_sched.next_interval())
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
        old_ptime = self._ptime
        self._apply_params(params, initial=False)
        if self._ptime != old_ptime and self._pacer is not None:
            # keep the RTP timeline: continue from the current slot's timestamp
            n = self._pacer.n
            self._ts0 = (self._ts0 + n * self._frame_samples_old) & 0xFFFFFFFF
            self._pacer.stop()
            now = self._clock.time()
            self._ts0_time = self._pacer.deadline(n)
            self._pacer = Pacer(
                self._clock,
                self._ptime / 1000.0,
                self._on_slot,
                start=now,
                max_burst=self._max_burst,
                on_skip=self._on_skip,
            )
            self._ts0 = (self._ts0 + int(round((now - self._ts0_time) * self._clock_rate))) & 0xFFFFFFFF
            self._ts0_time = now
            self._last_sent_n = -2
            self._new_receive_stream()  # frame size changed: new jitter buffer and concealer
            if self._dtmf_sender is not None and not self._dtmf_sender.busy:
                self._dtmf_sender = None
        self._maybe_announce()

    def send_dtmf(self, digits: str) -> None:
        """Queue DTMF digits to send as RFC 4733 telephone-events.

        Raises:
            RuntimeError: the session is not running or the peer did not negotiate telephone-event.
            ValueError: a character that is not a DTMF digit (0-9, *, #, A-D).
        """
        if not self.running:
            raise RuntimeError("media session is not running")
        if self._dtmf_pt is None:
            raise RuntimeError("the peer did not negotiate telephone-event (RFC 4733); cannot send DTMF")
        if self._dtmf_sender is None:
            self._dtmf_sender = _dtmf.DtmfSender(self._clock_rate, self._frame_samples)
        self._dtmf_sender.queue(digits)
        self._stats.dtmf_sent += digits

    async def source_done(self) -> None:
        """Wait until the source reached its end and its last packet left (or the session stopped)."""
        await asyncio.shield(self._source_done)

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
        if self._rtcp_entry is not None:
            self._rtcp_entry.cancel()
        if self._watch_entry is not None:
            self._watch_entry.cancel()
        if self._started:
            try:
                self._send_rtcp(bye_reason=reason)
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
        if not self._source_done.done():
            self._source_done.set_result(None)
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

    def _apply_params(self, params: Any, *, initial: bool) -> None:
        encoding = str(params.encoding).upper()
        encode: Callable[..., bytes]
        if encoding == "PCMU":
            encode = g711.ulaw_encode
        elif encoding == "PCMA":
            encode = g711.alaw_encode
        else:
            raise ValueError(f"unsupported encoding {params.encoding!r} (PCMU or PCMA)")
        ptime = int(params.ptime or 20)
        if not 10 <= ptime <= 60 or ptime % 10:
            raise ValueError(f"ptime must be 10, 20, 30, 40, 50 or 60 ms, got {params.ptime!r}")
        direction = str(params.direction or "sendrecv")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {params.direction!r}")
        clock_rate = int(params.clock_rate or 8000)
        self._frame_samples_old = self._frame_samples
        self.params = params
        self._pt = int(params.payload_type)
        self._encode = encode
        self._clock_rate = clock_rate
        self._ptime = ptime
        self._frame_samples = clock_rate * ptime // 1000
        self._dtmf_pt = params.dtmf_payload_type
        was_sending = self._direction in _SENDING
        self._direction = direction
        if self._direction in _SENDING and not was_sending:
            self._marker_next = True
        rhost, rport = params.remote_rtp
        new_rtp = _resolve(str(rhost), int(rport), self._family)[1] if rport else None
        if not initial and _same_addr(new_rtp, self._remote_rtp):
            pass  # unchanged: keep the latched address
        else:
            self._remote_rtp = new_rtp
            self._rtp_latched = False
        self._sdp_rtp = new_rtp
        chost, cport = params.remote_rtcp if params.remote_rtcp else (rhost, int(rport) + 1 if rport else 0)
        new_rtcp = _resolve(str(chost), int(cport), self._family)[1] if cport else None
        if initial or not _same_addr(new_rtcp, self._remote_rtcp):
            self._remote_rtcp = new_rtcp
            self._rtcp_latched = False
        self._stats.codec = encoding
        self._stats.clock_rate = clock_rate
        self._stats.ptime_ms = ptime
        if self._jb is None:
            self._new_receive_stream()

    def _new_receive_stream(self) -> None:
        lo, hi, init = self._jb_args
        self._jb = jitter.JitterBuffer(
            clock_rate=self._clock_rate,
            frame_samples=self._frame_samples,
            min_delay=lo,
            max_delay=hi,
            initial_delay=init,
        )
        self._concealer = plc.Concealer(self._frame_samples, self._clock_rate)
        self._playing = False
        self._tail_concealed = 0

    @property
    def _sending(self) -> bool:
        return (
            self._direction in _SENDING
            and self._remote_rtp is not None
            and (self._source is not None or (self._dtmf_sender is not None and self._dtmf_sender.busy))
        )

    def _maybe_announce(self) -> None:
        if self._direction in _SENDING and self._source is not None and self._remote_rtp is not None:
            if not self._announced:
                logger.info("[RTP] Starting audio stream to %s", _fmt_addr(self._remote_rtp))
                self._announced = True
        elif self._announced and self._direction not in _SENDING:
            logger.info("[RTP] Audio stream paused (%s)", self._direction)
            self._announced = False

    # -- the media tick --------------------------------------------------------------------------------------------

    def _on_skip(self, count: int) -> None:
        self._marker_next = True
        self._stats.schedule_skips += count
        logger.debug("[RTP] Late wake-up: skipped %d send slot(s)", count)

    def _on_slot(self, n: int, deadline: float) -> None:
        if self._sending:
            self._send_slot(n)
        if self._direction in _RECEIVING:
            self._playout()

    def _send_slot(self, n: int) -> None:
        ts = (self._ts0 + n * self._frame_samples) & 0xFFFFFFFF
        if n != self._last_sent_n + 1:
            self._marker_next = True
        ds = self._dtmf_sender
        if ds is not None and ds.busy and self._dtmf_pt is not None:
            pkt = ds.next_packet(ts)
            if pkt is not None:
                payload, marker, ev_ts = pkt
                # the audio of this slot is replaced by the event (RFC 4733 §2.5.1.1)
                if self._source is not None and not self._source_done.done():
                    self._read_source()
                self._send_rtp(self._dtmf_pt, ev_ts, bool(marker), payload, n)
                self._marker_next = True  # audio after an event starts a new talk spurt
                return
        if self._source is None or self._source_done.done():
            return
        pcm = self._read_source()
        if pcm is None:
            return
        payload = self._encode(pcm)
        marker = self._marker_next
        self._marker_next = False
        self._send_rtp(self._pt, ts, marker, payload, n)
        self._sent_audio = True
        if getattr(self._source, "eof", False):
            self._finish_source()

    def _read_source(self) -> Optional[np.ndarray]:
        try:
            pcm = self._source.read(self._frame_samples)
        except Exception as exc:
            logger.error("[RTP] Audio source failed: %s", exc)
            self._finish_source()
            return None
        if pcm is None or len(pcm) == 0:
            self._finish_source()
            return None
        return pcm  # type: ignore[no-any-return]

    def _finish_source(self) -> None:
        if not self._source_done.done():
            self._source_done.set_result(None)
            logger.info("[RTP] Audio source finished after %s packets", f"{self._sender_stats.packet_count:,}")

    def _send_rtp(self, pt: int, ts: int, marker: bool, payload: bytes, n: int) -> None:
        seq = self._seq
        buf = bytearray(12 + len(payload))
        rtp.write_header(buf, 0, pt, seq, ts, self.ssrc, marker)
        buf[12:] = payload
        self._seq = (seq + 1) & 0xFFFF
        self._last_sent_n = n
        if self._sendto(self._rtp_sock, buf, self._remote_rtp):
            self._sender_stats.on_sent(len(payload))
            self._we_sent = True
            now = self._loop.time()
            if self._first_sent_at is None:
                self._first_sent_at = now
            self._last_sent_at = now
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("[RTP] Sending packet: %d bytes (Sequence #%d)", len(payload), seq)

    def _sendto(self, sock: socket.socket, data: Any, addr: Optional[_Addr]) -> bool:
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
                logger.warning("[RTP] Cannot send to %s: %s", _fmt_addr(addr), exc.strerror or exc)
            return False

    def _playout(self) -> None:
        jb = self._jb
        if jb is None:
            return
        now = self._loop.time()
        kind, payload = jb.get(now)
        if kind == "frame":
            self._playing = True
            self._tail_concealed = 0
            pcm = self._decode(payload)
            out = self._concealer.good(pcm)
        elif kind == "lost":
            if not self._playing:
                return
            self._tail_concealed += 1
            out = self._concealer.lost()
        else:
            return
        self._stats.frames_played += 1
        if self._sink is not None:
            try:
                self._sink.write(out)
            except Exception as exc:
                logger.error("[RTP] Audio sink failed, playback stopped: %s", exc)
                self._sink = None

    def _decode(self, payload: Any) -> np.ndarray:
        n = self._frame_samples
        if payload is None or len(payload) == 0:
            return np.zeros(n, dtype=np.int16)
        pt = getattr(self, "_rx_pt", self._pt)
        data = g711.alaw_decode(payload) if pt == _PT_PCMA else g711.ulaw_decode(payload)
        pcm = np.frombuffer(data, dtype=np.int16) if not isinstance(data, np.ndarray) else data
        if len(pcm) != n:  # the peer packetises differently: pad or cut to our frame
            fixed = np.zeros(n, dtype=np.int16)
            m = min(n, len(pcm))
            fixed[:m] = pcm[:m]
            pcm = fixed
        return pcm

    # -- receiving RTP ---------------------------------------------------------------------------------------------

    def _on_rtp_readable(self) -> None:
        self._read_datagrams(self._rtp_sock, self._on_rtp_datagram, "RTP", (errno.EHOSTUNREACH, errno.ENETUNREACH))

    def _read_datagrams(
        self, sock: socket.socket, deliver: Callable[[bytes, _Addr], None], what: str, refusals: Tuple[int, ...] = ()
    ) -> None:
        """Read up to _READ_BUDGET datagrams from ``sock`` into ``deliver``; ICMP errors (ECONNREFUSED, and the
        errnos in ``refusals``) go to ``_on_refused``, other receive errors end this round."""
        for i in range(_READ_BUDGET):
            try:
                data, addr = sock.recvfrom(_MAX_DATAGRAM)
            except BlockingIOError:
                if i == 0:
                    self._drain_errors(sock)  # woken by an error-queue entry only
                return
            except ConnectionRefusedError:
                self._on_refused(sock)
                continue
            except OSError as exc:
                if exc.errno in refusals:
                    self._on_refused(sock)
                    continue
                logger.debug("[%s] receive error: %s", what, exc)
                return
            if self._closed:
                return
            deliver(data, addr)

    def _on_rtp_datagram(self, data: bytes, addr: _Addr) -> None:
        try:
            pkt = rtp.RtpPacket.parse(data)
        except RtpParseError as exc:
            self._invalid += 1
            logger.debug("[RTP] Dropped invalid packet from %s: %s", _fmt_addr(addr), exc)
            return
        pt = pkt.payload_type
        if pt != self._dtmf_pt and pt not in (_PT_PCMU, _PT_PCMA, self._pt):
            self._invalid += 1
            logger.debug("[RTP] Dropped packet with unexpected payload type %d", pt)
            return
        now = self._loop.time()
        if not self._rtp_latched:
            self._rtp_latched = True
            if not _same_addr(addr, self._remote_rtp):
                logger.info("[RTP] Peer sends from %s; sending there (symmetric RTP)", _fmt_addr(addr))
            self._remote_rtp = addr
            self._maybe_announce()
        elif not _same_addr(addr, self._remote_rtp) and _same_addr(addr, self._sdp_rtp):
            # the address the peer negotiated in SDP always wins over whatever latched first (an early
            # packet from a third party must not capture the stream before the peer's first packet arrives)
            logger.info("[RTP] Peer sends from its negotiated address %s; following it", _fmt_addr(addr))
            self._remote_rtp = addr
            self._candidate = None
        elif not _same_addr(addr, self._remote_rtp) and not self._accept_new_source(addr, pkt, now):
            # strict source: once latched, RTP from anywhere else is ignored (a third party cannot take the
            # stream over); a peer that really moved (NAT rebinding) is re-learnt by _accept_new_source
            self._invalid += 1
            return
        self._last_heard = now
        self._last_rtp_heard = now
        self._heard_anything = True
        ssrc = pkt.ssrc
        if ssrc != self._remote_ssrc:
            self._switch_ssrc(ssrc)
        payload = pkt.payload
        seq = pkt.sequence_number
        status = self._rx.update(seq, pkt.timestamp, now, len(payload))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("[RTP] Received packet: %d bytes (Sequence #%d)", len(payload), seq)
        if status == _stats.DUPLICATE:
            return
        # every distinct packet counts as received (RFC 3550's counters skip the probation packets)
        self._rx_packets += 1
        self._rx_octets += len(payload)
        if pt == self._dtmf_pt:
            digit = self._dtmf_receiver.feed(pkt.timestamp, bytes(payload), pkt.marker)
            if digit:
                self._stats.dtmf_received += digit
                if self._on_dtmf is not None:
                    try:
                        self._on_dtmf(digit)
                    except Exception:
                        logger.exception("on_dtmf callback failed")
            return
        self._rx_pt = pt
        if self._direction not in _RECEIVING:
            return
        if self._jb.put(seq, pkt.timestamp, bytes(payload), now, ssrc=ssrc, marker=pkt.marker) == "reset":
            self._playing = False

    def _accept_new_source(self, addr: _Addr, pkt: Any, now: float) -> bool:
        """Whether RTP from ``addr`` (not the latched source) should become the stream.

        Only when the latched source has gone quiet for ``_RELEARN_QUIET`` seconds and ``addr`` has since sent
        ``_RELEARN_PACKETS`` packets in sequence from one SSRC: then the peer moved (a NAT rebinding, a new
        port) and we follow it; a third party injecting packets into a live stream never qualifies.
        """
        cand = self._candidate
        seq = pkt.sequence_number
        if cand is not None and _same_addr(cand[0], addr) and cand[1] == pkt.ssrc and seq == (cand[2] + 1) & 0xFFFF:
            count = cand[3] + 1
        else:
            count = 1
        self._candidate = (addr, pkt.ssrc, seq, count)
        if count >= _RELEARN_PACKETS and now - self._last_rtp_heard >= _RELEARN_QUIET:
            logger.info("[RTP] Peer now sends from %s (was %s); following it", _fmt_addr(addr),
                        _fmt_addr(self._remote_rtp))
            self._remote_rtp = addr
            self._candidate = None
            return True
        return False

    def _switch_ssrc(self, ssrc: int) -> None:
        if self._rx is not None:
            rx = self._rx
            t = self._rx_totals
            t[0] += rx.expected
            t[1] += max(0, rx.cumulative_lost)
            t[2] += rx.duplicates
            t[3] += rx.reordered
            logger.info("[RTP] New stream from the peer: SSRC %08x (was %08x)", ssrc, self._remote_ssrc or 0)
        self._remote_ssrc = ssrc
        self._rx = _stats.ReceiverStats(clock_rate=self._clock_rate)
        self._last_sr_mid = 0
        self._dtmf_receiver = _dtmf.DtmfReceiver()

    # -- ICMP errors -------------------------------------------------------------------------------------------------

    def _drain_errors(self, sock: socket.socket) -> int:
        """Read the socket's error queue (IP_RECVERR) and note unreachable errors per original destination.

        Each entry carries a ``struct sock_extended_err`` (``ee_errno`` first) and, as its address, the
        destination of the datagram that drew the ICMP error. Returns how many unreachable errors were found.
        """
        now = self._loop.time()
        is_rtp = sock is self._rtp_sock
        found = 0
        for _ in range(64):
            try:
                _, ancdata, _, addr = sock.recvmsg(_MAX_DATAGRAM, 512, _MSG_ERRQUEUE)
            except OSError:  # BlockingIOError: the queue is empty
                break
            ee_errno = 0
            for _level, _type, data in ancdata:
                if len(data) >= 4:
                    ee_errno = int.from_bytes(data[:4], "little" if _LITTLE else "big")
                    break
            if ee_errno in _UNREACHABLE or ee_errno == 0:
                found += 1
                self._on_icmp(is_rtp, addr, now)
        return found

    def _on_refused(self, sock: socket.socket) -> None:
        """A send or receive failed with ECONNREFUSED: an ICMP port-unreachable for an earlier datagram."""
        if self._drain_errors(sock) == 0:  # reported through sk_err only (no IP_RECVERR queue entry)
            self._on_icmp(sock is self._rtp_sock, None, self._loop.time())

    def _on_icmp(self, is_rtp: bool, addr: Optional[_Addr], now: float) -> None:
        if is_rtp:
            if addr is None or _same_addr(addr, self._remote_rtp):
                if self._icmp_rtp_at is None:
                    logger.debug("[RTP] ICMP port unreachable from %s", _fmt_addr(addr))
                self._icmp_rtp_at = now
        else:
            self._icmp_rtcp_at = now
        if not is_rtp and not self._icmp_rtcp_logged:
            self._icmp_rtcp_logged = True
            logger.info(
                "[RTCP] Peer %s does not accept RTCP (ICMP port unreachable); continuing without its reports",
                _fmt_addr(addr or self._remote_rtcp),
            )

    def _watchdog(self, when: float) -> None:
        if self._closed:
            return
        now = self._loop.time()
        silent = now - self._last_heard
        media_flowed = self._heard_anything or self._sent_audio
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
                _fmt_addr(self._remote_rtp),
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
        self._rtcp_sched.senders = 1 + (1 if self._rx is not None and self._remote_recently_sent() else 0)
        self._rtcp_sched.we_sent = self._we_sent
        try:
            self._send_rtcp()
        except Exception:
            logger.exception("[RTCP] Report failed")
        self._schedule_rtcp(self._loop.time() + self._rtcp_sched.next_interval())

    def _remote_recently_sent(self) -> bool:
        return self._loop.time() - self._last_heard < 2 * max(self._rtcp_sched.min_time, 1.0)

    def _report_blocks(self, now: float) -> List[Any]:
        if self._rx is None or self._remote_ssrc is None or self._rx.received == 0:
            return []
        lsr = self._last_sr_mid
        dlsr = rtcp.dlsr_units(now - self._last_sr_arrival) if lsr else 0
        b = self._rx.report_block(self._remote_ssrc, lsr, dlsr)
        if not isinstance(b, rtcp.ReportBlock):
            # the statistics module may be built against the other RTP implementation (compiled vs twin)
            b = rtcp.ReportBlock(
                ssrc=b.ssrc,
                fraction_lost=b.fraction_lost,
                cumulative_lost=b.cumulative_lost,
                highest_sequence=b.highest_sequence,
                jitter=b.jitter,
                lsr=b.lsr,
                dlsr=b.dlsr,
            )
        return [b]

    def _send_rtcp(self, bye_reason: Optional[str] = None) -> None:
        now = self._loop.time()
        blocks = self._report_blocks(now)
        ss = self._sender_stats
        ntp: Optional[int] = None
        rtp_ts = 0
        if self._we_sent or (bye_reason is not None and ss.packet_count > 0):
            ntp = rtcp.ntp_from_unix(time.time())
            rtp_ts = (self._ts0 + int(round((now - self._ts0_time) * self._clock_rate))) & 0xFFFFFFFF
        sent_sr = ntp is not None
        # one call builds SR (or RR) + SDES CNAME (+ BYE) straight into the datagram (RFC 3550 §6.1)
        data = rtcp.build_report(
            self.ssrc,
            blocks,
            self.cname.encode(),
            ntp_timestamp=ntp,
            rtp_timestamp=rtp_ts,
            packet_count=ss.packet_count & 0xFFFFFFFF,
            octet_count=ss.octet_count & 0xFFFFFFFF,
            reason=None if bye_reason is None else bye_reason.encode()[:255],
        )
        self._we_sent = False
        if self._remote_rtcp is None:
            return
        try:
            self._rtcp_sock.sendto(data, self._remote_rtcp)
        except BlockingIOError:
            return
        except ConnectionRefusedError:
            self._on_refused(self._rtcp_sock)
            return
        except OSError as exc:
            logger.debug("[RTCP] send failed: %s", exc)
            return
        self._rtcp_sched.on_sent(len(data))
        self.reports_sent += 1
        self._stats.rtcp_sent += 1
        if bye_reason is not None:
            logger.info("[RTCP] Sending BYE (%s)", bye_reason)
        self._log_sent(sent_sr, now)

    def _log_sent(self, sr: bool, now: float) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        ss = self._sender_stats
        if sr:
            # average over the time we were sending (first packet to last packet plus its duration)
            first = self._first_sent_at if self._first_sent_at is not None else now
            elapsed = max(self._last_sent_at - first + self._ptime / 1000.0, 1e-3)
            kbps = ss.octet_count * 8 / elapsed / 1000.0
            logger.info(
                "[RTCP Report Sent]\nTotal Packets: %s\nTotal Data Sent: %s bytes\nAverage Bitrate: %.1f kbps",
                f"{ss.packet_count:,}",
                f"{ss.octet_count:,}",
                kbps,
            )
        else:
            # the call's own counts, as the end-of-call summary gives them: every packet accepted (RFC 3550 A.1
            # leaves the first packet of each source out of its `received`) and the loss over every source
            self._refresh_stats()
            s = self._stats
            logger.info(
                "[RTCP Report Sent] (receiver report)\nTotal Packets Received: %s\nPacket Loss: %s\nJitter: %.1f ms",
                f"{s.packets_received:,}",
                f"{s.packets_lost:,}",
                s.jitter_ms,
            )

    def _on_rtcp_readable(self) -> None:
        self._read_datagrams(self._rtcp_sock, self._on_rtcp_datagram, "RTCP")

    def _on_rtcp_datagram(self, data: bytes, addr: _Addr) -> None:
        try:
            packets = rtcp.parse(data)
        except RtcpParseError as exc:
            logger.debug("[RTCP] Dropped invalid packet from %s: %s", _fmt_addr(addr), exc)
            return
        now = self._loop.time()
        self._last_heard = now
        self._heard_anything = True
        self._rtcp_sched.on_received(len(data))
        self.reports_received += 1
        self._stats.rtcp_received += 1
        if not self._rtcp_latched:
            self._rtcp_latched = True
            self._remote_rtcp = addr
        arrival_mid = rtcp.ntp_middle32(rtcp.ntp_from_unix(time.time()))
        for p in packets:
            if isinstance(p, rtcp.SenderReport):
                if self._remote_ssrc is None or p.ssrc == self._remote_ssrc:
                    self._last_sr_mid = rtcp.ntp_middle32(p.ntp_timestamp)
                    self._last_sr_arrival = now
                self._on_report(p, arrival_mid, sender=True)
            elif isinstance(p, rtcp.ReceiverReport):
                self._on_report(p, arrival_mid, sender=False)
            elif isinstance(p, rtcp.Bye):
                reason = p.reason.decode("utf-8", "replace") if isinstance(p.reason, bytes) else (p.reason or "")
                logger.info("[RTCP] BYE received from the peer%s", f" ({reason})" if reason else "")
                self._stats.bye_received = True
                self.bye_received.set()

    def _on_report(self, report: Any, arrival_mid: int, *, sender: bool) -> None:
        block = None
        for b in report.reports:
            if b.ssrc == self.ssrc:
                block = b
                break
        if block is not None:
            self._remote_report = block
            if block.lsr:
                rtt = rtcp.rtt_seconds(arrival_mid, block.lsr, block.dlsr)
                if rtt is not None and rtt >= 0:
                    self._rtt = float(rtt)
        if not logger.isEnabledFor(logging.INFO):
            return
        lines = ["[RTCP Report Received]"]
        if sender:
            lines.append(f"Total Packets: {report.packet_count:,}")
            lines.append(f"Total Bytes: {report.octet_count:,} bytes")
        if block is not None:
            lines.append(
                f"Packet Loss: {block.fraction_lost * 100.0 / 256.0:.1f}% (cumulative {block.cumulative_lost:,})"
            )
            lines.append(f"Jitter: {block.jitter * 1000.0 / self._clock_rate:.1f} ms")
        if self._rtt is not None:
            lines.append(f"Round-Trip Time: {self._rtt * 1000.0:.1f} ms")
        logger.info("\n".join(lines))

    # -- statistics --------------------------------------------------------------------------------------------------

    def _refresh_stats(self) -> None:
        s = self._stats
        ss = self._sender_stats
        s.packets_sent = ss.packet_count
        s.bytes_sent = ss.octet_count
        t = self._rx_totals
        rx = self._rx
        expected, lost, dups, reord = t
        received, octets = self._rx_packets, self._rx_octets
        jitter_s = 0.0
        if rx is not None:
            expected += rx.expected
            lost += max(0, rx.cumulative_lost)
            dups += rx.duplicates
            reord += rx.reordered
            jitter_s = rx.jitter_seconds
        s.remote_ssrc = self._remote_ssrc
        s.packets_received = received
        s.packets_expected = expected
        s.packets_lost = lost
        s.loss_percent = (100.0 * lost / expected) if expected > 0 else 0.0
        s.bytes_received = octets
        s.packets_duplicated = dups
        s.packets_reordered = reord
        s.packets_invalid = self._invalid
        s.jitter_ms = jitter_s * 1000.0
        if self._jb is not None:
            s.packets_late = int(self._jb.stats.late)
            s.jitter_buffer_delay_ms = float(self._jb.delay) * 1000.0
        if self._concealer is not None:
            # concealment after the last frame that arrived is the stream ending (or an outage still going on),
            # not a loss that was concealed: count only gaps that real audio followed
            s.frames_concealed = int(self._concealer.concealed_frames) - self._tail_concealed
        s.rtt_ms = self._rtt * 1000.0 if self._rtt is not None else None
        rb = self._remote_report
        if rb is not None:
            s.remote_packets_lost = int(rb.cumulative_lost)
            s.remote_jitter_ms = rb.jitter * 1000.0 / self._clock_rate
        if self._started_at is not None:
            end = self._stopped_at if self._stopped_at is not None else self._loop.time()
            s.duration = end - self._started_at
        s.update_quality()
