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
- ``read_datagrams`` reads at most a budget of datagrams per readiness callback, turns refusals
  (``ECONNREFUSED`` and the errnos the caller names) into one callback and ends the round on other errors.

Nothing here knows RTP: the media layer decides what a datagram or an ICMP error means.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
from typing import Any, Callable, List, Optional, Tuple

from ..errors import TransportError

logger = logging.getLogger(__name__)

__all__ = [
    "Addr",
    "resolve",
    "make_socket",
    "bind_pair",
    "same_addr",
    "fmt_addr",
    "read_datagrams",
    "drain_errors",
    "READ_BUDGET",
    "MAX_DATAGRAM",
]

#: a socket address as the socket module gives it: (host, port) or (host, port, flowinfo, scope_id)
Addr = Tuple[Any, ...]

# Linux socket options not exported by the socket module on every Python version
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
_IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
_MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)

_UNREACHABLE = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
_LITTLE = sys.byteorder == "little"

#: datagrams read per readiness callback before yielding to the loop
READ_BUDGET = 64
#: largest datagram we read (RTP over Ethernet fits well below)
MAX_DATAGRAM = 2048


def resolve(host: str, port: int, family: int = socket.AF_UNSPEC) -> Tuple[int, Tuple[Any, ...]]:
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


def read_datagrams(
    sock: socket.socket,
    deliver: Callable[[bytes, Addr], None],
    on_refused: Callable[[], None],
    *,
    refusals: Tuple[int, ...] = (),
    on_idle: Optional[Callable[[], object]] = None,
    closed: Callable[[], bool] = lambda: False,
    what: str = "UDP",
) -> None:
    """Read up to ``READ_BUDGET`` datagrams from ``sock`` into ``deliver(data, addr)``.

    Args:
        sock: a non-blocking UDP socket.
        deliver: called with each datagram and its source address.
        on_refused: called for an ICMP error reported as ECONNREFUSED (or an errno in ``refusals``).
        refusals: further errnos that count as refusals (e.g. EHOSTUNREACH on RTP).
        on_idle: called when the first read finds nothing (the wake-up was for the error queue alone).
        closed: checked before each delivery; reading stops once it returns True.
        what: a name for the debug line of any other receive error (which ends the round).
    """
    for i in range(READ_BUDGET):
        try:
            data, addr = sock.recvfrom(MAX_DATAGRAM)
        except BlockingIOError:
            if i == 0 and on_idle is not None:
                on_idle()
            return
        except ConnectionRefusedError:
            on_refused()
            continue
        except OSError as exc:
            if exc.errno in refusals:
                on_refused()
                continue
            logger.debug("[%s] receive error: %s", what, exc)
            return
        if closed():
            return
        deliver(data, addr)


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
