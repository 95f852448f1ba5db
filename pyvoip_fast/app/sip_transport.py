"""The sockets under the SIP user agent: one UDP socket, a TCP listener on the same port, and TCP/TLS connections.

RFC 3261 §18 asks every user agent for UDP and TCP; TLS carries ``sips:`` and ``;transport=tls``. This module
only moves bytes, so that ``useragent.py`` stays an adapter around the sans-IO endpoint:

- ``send(data, addr)`` picks the transport from the message's own top ``Via`` (``framing.sent_transport``): the
  endpoint put the transport it chose for a request there, and a response's top Via names the transport its
  request came over. UDP goes out of the one socket; TCP and TLS go over the connection to ``addr``, opened on
  first use (TLS verifies the server's certificate against the system store or the CA file, by the host name the
  user gave when there was one) and reused after. Bytes sent while a connection is still opening wait in order.
- Every connection, accepted or opened, is read through its own ``StreamFramer``; whole messages go to
  ``on_message(data, addr)``, keep-alive pings are answered with a pong (RFC 5626 §4.4.1). A broken stream or a
  peer that closes ends the connection and nothing else; a connection that cannot be opened is reported through
  ``on_error(addr)`` so the endpoint fails the transactions waiting on it (503) instead of waiting for Timer B.
- Connections are bounded (``max_connections``) and idle accepted ones are closed after ``idle_timeout``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ..errors import TransportError
from ..sip.calls import fmt_addr, is_ip_literal
from ..sip.routing import HopError, default_port, uri_transport
from ..sip.uri import SipUri
from ..sip.framing import KEEPALIVE_PING, KEEPALIVE_PONG, PING, SipFramingError, StreamFramer, sent_transport

#: seconds a host name in a SIP URI may take to resolve (the loop's resolver, never a blocking lookup)
DNS_TIMEOUT = 5.0
#: seconds close() waits for connections to end cleanly (a TLS peer answering close_notify) before aborting them
CLOSE_GRACE = 0.5

logger = logging.getLogger("pyvoip_fast.app.useragent")

Addr = Tuple[str, int]

__all__ = ["SipTransport", "client_tls_context"]


def client_tls_context(ca_file: Optional[str] = None, *, verify: bool = True) -> ssl.SSLContext:
    """A TLS client context: certificates verified (the system store, or ``ca_file`` for a private CA).

    Raises:
        TransportError: the CA file cannot be read.
    """
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(f"cannot use the CA file {ca_file!r}: {getattr(exc, 'strerror', None) or exc}") \
            from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: "SipTransport") -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: Tuple[Any, ...]) -> None:
        self.owner.on_message(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        logger.debug("[SIP] socket error: %s", exc)


def _close_now(transport: asyncio.BaseTransport) -> None:
    """Abort a stream transport: its socket closes in the loop's very next iteration, with no handler involved."""
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:  # pragma: no cover - every stream transport asyncio makes is a WriteTransport
        transport.close()


class _TrackedStream(asyncio.StreamReaderProtocol):
    """A stream protocol that registers its transport with the owner from the moment the socket exists, so that
    ``close()`` can abort it even when its handler task never ran (accepted just before closing, or an opening
    connection whose ``wait_for`` was cancelled just as it completed)."""

    def __init__(self, owner: "SipTransport", reader: asyncio.StreamReader,
                 handler: Optional[Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]] = None) -> None:
        super().__init__(reader, handler, loop=owner._loop)
        self._owner = owner
        self._tracked: Optional[asyncio.BaseTransport] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._owner._closed:
            # completed after close() (an accept or a connect already under way): nobody will serve it, and a
            # handler task started now could be left pending as the loop shuts down, its socket never closed
            _close_now(transport)
            return
        self._tracked = transport
        self._owner._streams.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self._tracked is not None:
            self._owner._streams.discard(self._tracked)
        super().connection_lost(exc)


class _Connection:
    """One TCP or TLS connection and its framer."""

    def __init__(self, transport: str, addr: Addr) -> None:
        self.transport = transport
        self.addr = addr
        self.writer: Optional[asyncio.StreamWriter] = None
        self.waiting: List[bytes] = []
        self.framer = StreamFramer()
        self.task: Optional["asyncio.Task[None]"] = None
        self.last_used = 0.0
        self.accepted = False

    def write(self, data: bytes) -> None:
        if self.writer is None:
            self.waiting.append(data)
        elif not self.writer.is_closing():
            self.writer.write(data)


class SipTransport:
    """UDP, TCP and TLS for one user agent (see the module docstring).

    Args:
        on_message: called with (bytes, source address) for every datagram and every framed stream message.
        on_error: called with an address that could not be reached over a connection, and why.
        on_closed: called with the address of a connection the peer closed (or that broke).
        tls_context: the client context for TLS (default: ``client_tls_context()``).
        max_connections: connections beyond this are refused (accepted) or fail (opened).
        idle_timeout: seconds after which an idle accepted connection is closed.
    """

    def __init__(
        self,
        on_message: Callable[[bytes, Addr], None],
        on_error: Callable[[Addr, str], None],
        *,
        on_closed: Optional[Callable[[Addr], None]] = None,
        tls_context: Optional[ssl.SSLContext] = None,
        max_connections: int = 256,
        idle_timeout: float = 600.0,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.on_message = on_message
        self.on_error = on_error
        self.on_closed = on_closed
        self._tls_context = tls_context
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._udp: Optional[asyncio.DatagramTransport] = None
        self._server: Optional[asyncio.base_events.Server] = None
        self._conns: Dict[Tuple[str, Addr], _Connection] = {}
        self._streams: Set[asyncio.BaseTransport] = set()  # every stream socket still open, for close()
        #: host names to verify TLS certificates against, by resolved address (the proxy, the registrar)
        self.tls_names: Dict[Addr, str] = {}
        self.local_address: Addr = ("", 0)
        self._closed = False

    async def open(self, host: str, port: int) -> Addr:
        """Bind UDP on ``host:port`` (0 picks a port) and listen for TCP on the same port.

        With port 0 a port free for both is found. With a given port whose TCP side is taken, the user agent
        runs on UDP alone and says so (the original peer-to-peer program never needed TCP).

        Raises:
            TransportError: the UDP address cannot be bound (one line naming why).
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for attempt in range(8):
            udp = await self._bind_udp(host, port, family)
            sockname = udp.get_extra_info("sockname")
            try:
                self._server = await self._loop.create_server(
                    lambda: _TrackedStream(self, asyncio.StreamReader(loop=self._loop), self._accepted),
                    sockname[0], sockname[1], family=family, reuse_address=True)
            except OSError as exc:
                if port == 0 and exc.errno == errno.EADDRINUSE and attempt < 7:
                    udp.close()
                    continue
                where = f"{sockname[0]}:{sockname[1]}" if family == socket.AF_INET else \
                    f"[{sockname[0]}]:{sockname[1]}"
                logger.warning("[SIP] %s: listening on UDP only", _bind_error(where + " for TCP", exc))
            self._udp = udp
            self.local_address = (sockname[0], sockname[1])
            break
        return self.local_address

    async def _bind_udp(self, host: str, port: int, family: int) -> asyncio.DatagramTransport:
        where = f"{host}:{port}" if family == socket.AF_INET else f"[{host}]:{port}"
        try:
            udp, _ = await self._loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(host, port),
                                                               family=family)
        except socket.gaierror as exc:
            raise TransportError(f"bad local address {host!r}: {exc.strerror or exc}") from None
        except OSError as exc:
            raise TransportError(_bind_error(where, exc)) from None
        return udp

    # -- sending --------------------------------------------------------------------------------------------------
    def send(self, data: bytes, addr: Addr) -> None:
        """Send one SIP message to ``addr`` over the transport its top Via names (UDP when it names none)."""
        if self._closed:
            return
        transport = sent_transport(data) or "UDP"
        if transport == "UDP":
            if self._udp is not None and not self._udp.is_closing():
                try:
                    self._udp.sendto(data, addr)
                except OSError as exc:  # pragma: no cover - sendto errors are rare on UDP
                    logger.warning("[SIP] Cannot send to %s: %s", fmt_addr(addr), exc)
            return
        if transport not in ("TCP", "TLS"):
            logger.warning("[SIP] Cannot send over %s to %s: unsupported transport", transport, fmt_addr(addr))
            self._loop.call_soon(self.on_error, addr, f"unsupported transport {transport}")
            return
        self._stream(transport, addr).write(data)

    def send_keepalive(self, addr: Addr, transport: str) -> None:
        """A CRLF CRLF keep-alive to ``addr`` (RFC 5626 §4.4.1), over the registration's transport."""
        if self._closed:
            return
        if transport == "UDP":
            if self._udp is not None and not self._udp.is_closing():
                self._udp.sendto(KEEPALIVE_PING, addr)
            return
        conn = self._conns.get((transport, addr))
        if conn is not None:
            logger.debug("[SIP] Keep-alive to %s over %s", fmt_addr(addr), transport)
            conn.write(KEEPALIVE_PING)
        else:
            self._stream(transport, addr).write(KEEPALIVE_PING)

    async def resolve(self, uri: SipUri, default_transport: str, *, ipv6: bool = False) -> Addr:
        """The address of a SIP URI's host and port (or its transport's default port, RFC 3261 §19.1.2). A name
        is resolved (A, or AAAA when ``ipv6``) and remembered for TLS certificate checks.

        Raises:
            TransportError: the name does not resolve; ValueError: an unsupported ``;transport=``.
        """
        try:
            transport, _ = uri_transport(uri, default_transport)
        except HopError as exc:
            raise ValueError(str(exc)) from None
        port = uri.port if uri.port is not None else default_port(transport)
        if is_ip_literal(uri.host):
            return (uri.host, port)
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        try:
            infos = await asyncio.wait_for(
                self._loop.getaddrinfo(uri.host, port, family=family, type=socket.SOCK_DGRAM), DNS_TIMEOUT)
        except socket.gaierror as exc:
            raise TransportError(f"cannot resolve {uri.host!r}: {exc.strerror or exc}") from None
        except asyncio.TimeoutError:
            raise TransportError(f"cannot resolve {uri.host!r}: no answer within {DNS_TIMEOUT:g} s") from None
        addr = (str(infos[0][4][0]), port)
        self.tls_names[addr] = uri.host  # TLS checks the certificate against the name the user gave
        return addr

    def connection_count(self) -> int:
        return len(self._conns)

    def _stream(self, transport: str, addr: Addr) -> _Connection:
        key = (transport, addr)
        conn = self._conns.get(key)
        if conn is None:
            conn = _Connection(transport, addr)
            self._conns[key] = conn
            conn.task = self._loop.create_task(self._connect(conn))
        conn.last_used = self._loop.time()
        return conn

    async def _connect(self, conn: _Connection) -> None:
        ssl_context: Optional[ssl.SSLContext] = None
        server_hostname: Optional[str] = None
        if conn.transport == "TLS":
            if self._tls_context is None:
                self._tls_context = client_tls_context()
            ssl_context = self._tls_context
            server_hostname = self.tls_names.get(conn.addr, conn.addr[0])
        try:
            if len(self._conns) > self.max_connections:
                raise OSError(errno.EMFILE, f"more than {self.max_connections} SIP connections")
            reader = asyncio.StreamReader(loop=self._loop)
            protocol = _TrackedStream(self, reader)
            stream, _ = await asyncio.wait_for(
                self._loop.create_connection(lambda: protocol, conn.addr[0], conn.addr[1], ssl=ssl_context,
                                             server_hostname=server_hostname),
                timeout=10.0,
            )
            writer = asyncio.StreamWriter(stream, protocol, reader, self._loop)
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            if isinstance(exc, asyncio.TimeoutError):
                why = "timed out"
            elif isinstance(exc, ssl.SSLCertVerificationError):
                why = f"TLS certificate not trusted ({exc.verify_message})"
            else:
                why = str(getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc)
            why = f"cannot open a {conn.transport} connection to {fmt_addr(conn.addr)}: {why}"
            logger.warning("[SIP] %s", why[0].upper() + why[1:])
            self._conns.pop((conn.transport, conn.addr), None)
            if not self._closed:
                self.on_error(conn.addr, why)
            return
        logger.info("[SIP] %s connection to %s open", conn.transport, fmt_addr(conn.addr))
        conn.writer = writer
        for data in conn.waiting:
            writer.write(data)
        conn.waiting.clear()
        await self._read(conn, reader)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        addr: Addr = (peer[0], peer[1])
        if self._closed or len(self._conns) >= self.max_connections:
            logger.warning("[SIP] Refusing a TCP connection from %s: too many connections", fmt_addr(addr))
            writer.close()
            return
        conn = _Connection("TCP", addr)
        conn.writer = writer
        conn.accepted = True
        conn.last_used = self._loop.time()
        self._conns[("TCP", addr)] = conn
        conn.task = asyncio.current_task()
        logger.debug("[SIP] TCP connection from %s", fmt_addr(addr))
        try:
            await self._read(conn, reader)
        except asyncio.CancelledError:
            pass  # closing: end the server's handler task quietly

    async def _read(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        why = "closed by the peer"
        try:
            while True:
                timeout = self.idle_timeout if conn.accepted else None
                try:
                    data = await asyncio.wait_for(reader.read(65536), timeout)
                except asyncio.TimeoutError:
                    why = f"idle for {self.idle_timeout:.0f} s"
                    break
                if not data:
                    break
                conn.last_used = self._loop.time()
                try:
                    items = conn.framer.feed(data)
                except SipFramingError as exc:
                    why = f"broken stream: {exc}"
                    break
                for item in items:
                    if isinstance(item, bytes):
                        self.on_message(item, conn.addr)
                    elif item == PING:
                        conn.write(KEEPALIVE_PONG)
        except (OSError, ssl.SSLError) as exc:
            why = f"error: {getattr(exc, 'strerror', None) or exc}"
        except asyncio.CancelledError:
            why = "closing"
            raise
        finally:
            if self._conns.get((conn.transport, conn.addr)) is conn:
                del self._conns[(conn.transport, conn.addr)]
            if conn.writer is not None and not conn.writer.is_closing():
                # once only: a second close() of a TLS transport drops its link to the socket (CPython's
                # sslproto), and close() below could then no longer abort a shutdown the peer never answers
                conn.writer.close()
            level = logging.DEBUG if why == "closing" else logging.INFO
            logger.log(level, "[SIP] %s connection with %s ended (%s)", conn.transport, fmt_addr(conn.addr), why)
            if why != "closing" and not self._closed and self.on_closed is not None:
                self._loop.call_soon(self.on_closed, conn.addr)

    async def close(self) -> None:
        """Close every socket and connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
        tasks = [c.task for c in self._conns.values() if c.task is not None and c.task is not asyncio.current_task()]
        for conn in list(self._conns.values()):
            if conn.writer is not None and not conn.writer.is_closing():
                conn.writer.close()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._conns.clear()
        # a TLS connection closes with a shutdown handshake (close_notify both ways): give the peers a moment to
        # answer it, then abort what is left, so that no socket outlives close() (the loop may end right after)
        deadline = self._loop.time() + CLOSE_GRACE
        while self._streams and self._loop.time() < deadline:
            await asyncio.sleep(0.01)
        for stream in list(self._streams):  # also sockets whose handler never ran: accepted or opened at the end
            _close_now(stream)
        self._streams.clear()
        # an accept or a connect that completes from here on closes itself in connection_made; let those already
        # scheduled run now, while the loop surely still runs
        await asyncio.sleep(0)
        await asyncio.sleep(0)


def _bind_error(where: str, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"cannot bind {where}: address already in use"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot bind {where}: address not available on this machine"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot bind {where}: permission denied"
    return f"cannot bind {where}: {exc.strerror or exc}"
