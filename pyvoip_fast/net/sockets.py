"""Media sockets: the RTP/RTCP UDP pair, address resolution, budgeted reads and ICMP error queues.

Strategy
--------
- **Sockets without asyncio transports**: non-blocking UDP sockets that the media session watches with
  ``loop.add_reader`` and sends on with ``sendto`` directly (a full send buffer drops the packet; real-time
  media never queues). ``bind_pair`` binds RTP on an even port and RTCP on the next one (RFC 3550 §11).
- **ICMP errors** (Linux): ``IP_RECVERR``/``IPV6_RECVERR`` is set on both sockets so port-unreachable errors of
  an unconnected socket are reported. ``drain_errors`` reads the error queue with ``MSG_ERRQUEUE`` (otherwise
  epoll would keep reporting it); each entry's address is the destination of the datagram that drew the
  error, so the caller can tell which peer address failed.
- ``MediaSockets`` puts it together for one call: the pair watched on the loop, sends that never raise,
  datagrams and ICMP errors handed to callbacks. Each readiness callback delivers one datagram (the selector
  is level-triggered: more waiting means ready again next turn), skipping at most ``READ_BUDGET`` refusals
  (``ECONNREFUSED``, and unreachable errnos on RTP, each turned into an ICMP report) or dropped packets, and
  ends the round on other errors.

Nothing here knows RTP: the media layer decides what a datagram or an ICMP error means.
"""

from __future__ import annotations

# getaddrinfo encodes every host name with the idna codec: imported here, not by the first call's lookup (1 ms
# and a megabyte of unicodedata on the media loop)
import encodings.idna  # noqa: F401
import errno
import logging
import os
import socket
import sys
import time
from typing import Any, Callable, List, Optional, Tuple

from .. import _compat
from ..errors import TransportError
from ..rtp.srtp import SrtpContext, SrtpError

logger = logging.getLogger(__name__)

__all__ = [
    "Addr",
    "resolve",
    "make_socket",
    "bind_pair",
    "same_addr",
    "fmt_addr",
    "drain_errors",
    "READ_BUDGET",
    "MAX_DATAGRAM",
    "MediaSockets",
]

#: a socket address as the socket module gives it: (host, port) or (host, port, flowinfo, scope_id)
Addr = Tuple[Any, ...]

# Linux socket options not exported by the socket module on every Python version
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
_IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
_MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)

_UNREACHABLE = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
#: kernel receive timestamps (Linux SO_TIMESTAMPNS: a ``struct timespec`` of CLOCK_REALTIME per datagram)
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else None)
_udp = _compat.load("_udp")
_LITTLE = sys.byteorder == "little"

#: reads per readiness callback (refusals and dropped packets skipped, at most one datagram delivered)
READ_BUDGET = 64
#: largest datagram we read (RTP over Ethernet fits well below)
MAX_DATAGRAM = 2048


def resolve(host: str, port: int, family: int = socket.AF_UNSPEC) -> Tuple[int, Tuple[Any, ...]]:
    """(family, sockaddr) for a host and port; numeric hosts without DNS, names through getaddrinfo.

    Raises:
        TransportError: the host does not resolve, or is no host name at all (a NUL in it: the C resolver would read
            only what comes before it).
    """
    if isinstance(host, str) and "\x00" in host:
        raise TransportError(f"cannot resolve address {host!r}: a NUL character in the name")
    if family in (socket.AF_UNSPEC, socket.AF_INET) and type(port) is int and 0 <= port <= 65535:
        # an IPv4 address in its usual form (every call's media address, every set-up): what getaddrinfo would
        # answer, without its call
        try:
            if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, host)) == host:
                return socket.AF_INET, (host, port)
        except (OSError, TypeError, ValueError):
            pass
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST)
    except (socket.gaierror, ValueError):
        try:
            infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM)
        except (socket.gaierror, ValueError) as exc:  # (ValueError: a NUL, or a name IDNA cannot encode)
            raise TransportError(f"cannot resolve address {host!r}: {exc}") from None
    if not infos:
        raise TransportError(f"cannot resolve address {host!r}")
    fam, _, _, _, addr = infos[0]
    return fam, addr


def make_socket(family: int, host: str, port: int) -> socket.socket:
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


def bind_pair(host: str, rtp_port: int, attempts: int = 64) -> Tuple[socket.socket, socket.socket]:
    """Bind RTP on an even port and RTCP on the next one (any free pair when ``rtp_port`` is 0)."""
    family, addr = resolve(host, 0)
    bind_host = addr[0]
    if rtp_port:
        if not 0 < rtp_port < 65535:
            raise TransportError(f"RTP port must be within 1..65534, got {rtp_port}")
        try:
            a = make_socket(family, bind_host, rtp_port)
        except OSError as exc:
            raise TransportError(f"cannot bind RTP to {host} port {rtp_port}: {exc.strerror or exc}") from None
        try:
            b = make_socket(family, bind_host, rtp_port + 1)
        except OSError as exc:
            a.close()
            raise TransportError(
                f"cannot bind RTCP to {host} port {rtp_port + 1}: {exc.strerror or exc}"
            ) from None
        return a, b
    last_error: Optional[OSError] = None
    for _ in range(attempts):
        try:
            a = make_socket(family, bind_host, 0)
        except OSError as exc:
            raise TransportError(f"cannot bind a UDP socket on {host}: {exc.strerror or exc}") from None
        port = a.getsockname()[1]
        if port % 2 or port >= 65535:
            # odd: try the even port just below, else draw again
            a.close()
            try:
                a = make_socket(family, bind_host, port - 1)
                port -= 1
            except OSError as exc:
                last_error = exc
                continue
        try:
            b = make_socket(family, bind_host, port + 1)
        except OSError as exc:
            last_error = exc
            a.close()
            continue
        return a, b
    raise TransportError(f"no free even/odd UDP port pair on {host}: {last_error}")




def same_addr(a: Optional[Addr], b: Optional[Addr]) -> bool:
    """Whether two socket addresses name the same host and port (flow info and scope ids aside)."""
    return a is not None and b is not None and a[0] == b[0] and a[1] == b[1]


def fmt_addr(addr: Optional[Addr]) -> str:
    """``host:port``, or ``[v6]:port``, for log lines; ``?`` for None."""
    if addr is None:
        return "?"
    host = str(addr[0])
    return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"


def drain_errors(sock: socket.socket) -> List[Optional[Addr]]:
    """Read the socket's error queue (IP_RECVERR); the original destinations of unreachable errors.

    Each entry carries a ``struct sock_extended_err`` (``ee_errno`` first) and, as its address, the
    destination of the datagram that drew the ICMP error.
    """
    found: List[Optional[Addr]] = []
    for _ in range(64):
        try:
            _, ancdata, _, addr = sock.recvmsg(MAX_DATAGRAM, 512, _MSG_ERRQUEUE)
        except OSError:  # BlockingIOError: the queue is empty
            break
        ee_errno = 0
        for _level, _type, data in ancdata:
            if len(data) >= 4:
                ee_errno = int.from_bytes(data[:4], "little" if _LITTLE else "big")
                break
        if ee_errno in _UNREACHABLE or ee_errno == 0:
            found.append(addr)
    return found


def _enable_timestamps(sock: socket.socket) -> bool:
    if _SO_TIMESTAMPNS is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


class MediaSockets:
    """The RTP/RTCP socket pair of one call, watched on the event loop.

    Datagrams go to ``on_rtp(data, addr)`` / ``on_rtcp(data, addr)``; ICMP unreachable errors (from the error
    queue, or a send or receive that failed with ECONNREFUSED) go to ``on_icmp(is_rtp, original_destination)``,
    where the destination is None when the kernel did not say which datagram drew the error.

    Args:
        rtp_sock / rtcp_sock: the bound non-blocking sockets (``bind_pair``); owned from now on.
        loop: the event loop that watches them.
        now: the loop's time as a function (default ``loop.time``; the media clock's ``now`` spares a Python call).
    """

    def __init__(
        self,
        rtp_sock: socket.socket,
        rtcp_sock: socket.socket,
        loop: Any,
        *,
        on_rtp: Callable[..., None],
        on_rtcp: Callable[[bytes, Addr], None],
        on_icmp: Callable[[bool, Optional[Addr]], None],
        now: Optional[Callable[[], float]] = None,
    ) -> None:
        self.rtp = rtp_sock
        self._now: Callable[[], float] = now or loop.time
        self.rtcp = rtcp_sock
        self._loop = loop
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp
        self._on_icmp = on_icmp
        self.closed = False
        self._send_error_logged = False
        #: SRTP protection of this call (``rtp.srtp.SrtpContext``): what leaves is protected after it was
        #: stamped, what arrives is authenticated and decrypted before anything parses it; None: plain RTP
        self.srtp: Optional[SrtpContext] = None
        #: True once ``tick_receive()`` took the RTP socket off the loop: the owner calls ``poll_rtp()``
        self.ticked = False
        #: optional ``reader(fd, limit, now, on_rtp, self)``: reads the RTP socket in ``poll_rtp`` instead of the
        #: generic loop, delivering what it does not take itself to ``on_rtp`` as that loop would, and returning
        #: the errno the loop would have met (``media._receiver.ReceiverCore.poll_socket``); plain RTP only
        self.rtp_reader: Optional[Callable[[int, int, Callable[[], float], Callable[..., None], Any], int]] = None
        self._rtp_fd = rtp_sock.fileno()
        # asked for at once: the kernel switches receive timestamps on system-wide a moment after the first ask,
        # and a packet that arrives before that is stamped when it is read
        self._stamped = _enable_timestamps(rtp_sock)
        loop.add_reader(rtp_sock.fileno(), self._rtp_readable)
        loop.add_reader(rtcp_sock.fileno(), self._rtcp_readable)

    def tick_receive(self) -> bool:
        """Stop watching the RTP socket on the loop: the owner reads it with ``poll_rtp()`` on its media tick.

        A call's RTP arrives once per frame; read by the loop, each packet costs a wake-up and a callback of
        its own. Read on the tick that plays it out, every packet that arrived since the last tick costs one
        ``recvmsg``, and its arrival time, which the jitter statistics need, comes from the kernel's receive
        timestamp (``SO_TIMESTAMPNS``), not from when we got round to reading it. Without kernel timestamps
        (not Linux) the loop keeps watching the socket. Returns whether the switch happened.
        """
        if self.ticked or self.closed or not self._stamped:
            return self.ticked
        self._loop.remove_reader(self.rtp.fileno())
        self.ticked = True
        return True

    def poll_rtp(self, *_slot: Any) -> None:
        """Deliver every RTP datagram waiting (at most ``READ_BUDGET``) as ``on_rtp(data, addr, arrival)``,
        ``arrival`` on the loop's clock from the kernel's receive timestamp; refusals become ICMP reports. Nothing
        until ``tick_receive()`` took the socket off the loop (the loop delivers until then). A media tick's stage:
        it takes (and ignores) the slot's number and deadline."""
        if not self.ticked or self.closed:  # (closed: the descriptor's number may belong to another socket now)
            return
        reader = self.rtp_reader
        if reader is not None and self.srtp is None:
            err = reader(self._rtp_fd, READ_BUDGET, self._now, self._on_rtp, self)
            if err:
                self._receive_error(err)
            return
        batch, err = _udp.recv_stamped(self._rtp_fd, READ_BUDGET)
        if err:
            self._receive_error(err)
        if not batch:
            return
        offset = self._now() - time.time()  # CLOCK_REALTIME stamps onto the loop's monotonic clock
        srtp = self.srtp
        for data, addr, stamp in batch:
            if self.closed:
                return
            if srtp is not None:
                try:
                    data = srtp.unprotect(data)
                except SrtpError as exc:
                    logger.debug("[RTP] dropped from %s: %s", fmt_addr(addr), exc)
                    continue
            self._on_rtp(data, addr, stamp + offset if stamp >= 0.0 else None)

    def _receive_error(self, err: int) -> None:
        if err in _UNREACHABLE:
            self._refused(self.rtp)
        else:
            logger.debug("[RTP] receive error: %s", os.strerror(err))

    def send_rtp(self, data: Any, addr: Optional[Addr]) -> bool:
        """Send one RTP datagram; False when it did not leave (no address, full buffer, an ICMP error)."""
        if addr is None:
            return False
        if self.srtp is not None:
            data = self.srtp.protect(data)
        try:
            self.rtp.sendto(data, addr)
            return True
        except BlockingIOError:
            return False  # send buffer full: real-time media drops rather than queues
        except OSError as exc:
            self.rtp_send_failed(exc.errno or 0, addr, exc)
            return False

    def rtp_send_failed(self, err: int, addr: Optional[Addr], exc: Optional[OSError] = None) -> None:
        """An RTP send to ``addr`` failed with ``err`` (not a full buffer): what ``send_rtp`` does about it, also
        for the compiled sender's own sends (``media._sender.SenderCore``)."""
        if err == errno.ECONNREFUSED:
            # an earlier datagram drew ICMP port-unreachable; this one was not sent
            self._refused(self.rtp)
            return
        if not self._send_error_logged:
            self._send_error_logged = True
            why = os.strerror(err) if exc is None else exc.strerror or exc
            logger.warning("[RTP] Cannot send to %s: %s", fmt_addr(addr), why)

    def send_rtcp(self, data: bytes, addr: Addr) -> bool:
        """Send one RTCP datagram; False when it did not leave."""
        if self.srtp is not None:
            data = self.srtp.protect_rtcp(data)
        try:
            self.rtcp.sendto(data, addr)
        except BlockingIOError:
            return False
        except ConnectionRefusedError:
            self._refused(self.rtcp)
            return False
        except OSError as exc:
            logger.debug("[RTCP] send failed: %s", exc)
            return False
        return True

    def close(self) -> None:
        """Stop watching and close both sockets (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for sock in (self.rtp, self.rtcp):
            try:
                self._loop.remove_reader(sock.fileno())
            except Exception:
                pass
            sock.close()

    def _rtp_readable(self) -> None:
        self._read(self.rtp, self._on_rtp, (errno.EHOSTUNREACH, errno.ENETUNREACH), "RTP")

    def _rtcp_readable(self) -> None:
        self._read(self.rtcp, self._on_rtcp, (), "RTCP")

    def _read(
        self, sock: socket.socket, deliver: Callable[[bytes, Addr], None], refusals: Tuple[int, ...], what: str
    ) -> None:
        """Read what is waiting into ``deliver``, one datagram a wake-up; refusals become ICMP reports.

        One datagram, not a loop until the socket is empty: a call's socket holds one packet per frame, and the
        read that finds it empty costs an exception each time. The selector is level-triggered, so a socket
        with more waiting is simply ready again at the next turn of the loop (``READ_BUDGET`` bounds the reads
        that end in a refusal or a dropped packet).
        """
        for i in range(READ_BUDGET):
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except BlockingIOError:
                if i == 0:
                    self._drain(sock)  # woken by an error-queue entry only
                return
            except ConnectionRefusedError:
                self._refused(sock)
                continue
            except OSError as exc:
                if exc.errno in refusals:
                    self._refused(sock)
                    continue
                logger.debug("[%s] receive error: %s", what, exc)
                return
            if self.closed:
                return
            if self.srtp is not None:
                try:
                    data = self.srtp.unprotect(data) if sock is self.rtp else self.srtp.unprotect_rtcp(data)
                except SrtpError as exc:
                    logger.debug("[%s] dropped from %s: %s", what, fmt_addr(addr), exc)
                    continue
            deliver(data, addr)
            return

    def _drain(self, sock: socket.socket) -> int:
        found = drain_errors(sock)
        for addr in found:
            self._on_icmp(sock is self.rtp, addr)
        return len(found)

    def _refused(self, sock: socket.socket) -> None:
        """A send or receive failed with ECONNREFUSED: an ICMP port-unreachable for an earlier datagram."""
        if self._drain(sock) == 0:  # reported through sk_err only (no IP_RECVERR queue entry)
            self._on_icmp(sock is self.rtp, None)
