"""SIP over TCP between real sockets: a whole call with audio, connection reuse, and bad peers on a stream.

RFC 3261 §18 makes TCP mandatory for every user agent: our UDP port also listens for TCP, a URI with
``;transport=tcp`` (or ``--transport tcp``) sends over it, responses come back over the connection the request
used, and a byte stream that cannot be framed (no Content-Length, garbage) costs only that connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Tuple

import numpy as np
import pytest

from mediakit import ArraySource, ListSink, run
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig, UserAgent
from pyvoip_fast.sip.sdp import make_answer, make_offer

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def _tone(seconds: float, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return np.round(np.sin(2 * np.pi * freq * t) * 12000).astype(np.int16)


def test_call_over_tcp_carries_audio_and_reuses_one_connection_each_way(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pyvoip_fast.app.useragent")

    async def main() -> Tuple[Any, Any, np.ndarray, int, int]:
        async with Phone("127.0.0.1", 0, timers=FAST) as alice, Phone("127.0.0.1", 0, timers=FAST,
                                                                     transport="tcp") as bob:
            sink = ListSink()
            answering = asyncio.create_task(bob.answer(sink=sink))
            port = bob.local_address[1]
            call = await alice.call(f"sip:bob@127.0.0.1:{port};transport=tcp", source=ArraySource(_tone(1.0)))
            bob_call = await answering
            assert call.sip.remote_sdp is not None
            await call.wait_done()
            await bob_call.wait_done()
            assert alice.ua is not None and bob.ua is not None
            return call.stats, bob_call.stats, sink.pcm, alice.ua._net.connection_count(), \
                bob.ua._net.connection_count()

    a, b, heard, _, _ = run(main())
    assert a.packets_sent == b.packets_received == 50
    assert np.abs(heard).max() > 8000  # the tone arrived
    text = caplog.text
    assert "[SIP] Sending INVITE to 127.0.0.1" in text and "via TCP" in text
    assert "TCP connection to 127.0.0.1" in text
    # no message ever went over UDP: every Via in the log lines' flow was TCP (no "Retransmitting" either)
    assert "Retransmitting" not in text


def test_an_unframable_stream_closes_only_that_connection() -> None:
    async def main() -> None:
        async with await UserAgent.create("127.0.0.1", 0, timers=FAST) as ua:
            port = ua.local_address[1]
            loop = asyncio.get_running_loop()
            # garbage without Content-Length: the connection is closed, the agent keeps serving
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKa\r\n\r\n")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(100), 5) == b""
            writer.close()
            # a keep-alive ping gets its pong, and a framed OPTIONS its 200 on the same connection
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\r\n\r\n")
            assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\r\n"
            options = (b"OPTIONS sip:pyvoip@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKb\r\n"
                       b"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:pyvoip@127.0.0.1>\r\nCall-ID: tcp-1\r\n"
                       b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
            writer.write(options[:40])
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(options[40:])
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"SIP/2.0 200 OK") and b"Content-Length: " in head
            writer.close()
            # and UDP still works
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                await loop.sock_sendto(sock, options.replace(b"TCP", b"UDP").replace(b"tcp-1", b"udp-1"),
                                       ("127.0.0.1", port))
                data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
                assert data.startswith(b"SIP/2.0 200 OK")
            finally:
                sock.close()

    run(main())


def test_unreachable_tcp_peer_fails_fast_with_503() -> None:
    async def main() -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there now
        async with await UserAgent.create("127.0.0.1", 0, timers=TimerConfig()) as ua:
            from pyvoip_fast.errors import CallError

            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(CallError) as info:
                await ua.call(f"sip:x@127.0.0.1:{port};transport=tcp", make_offer("127.0.0.1", 40000))
            assert info.value.status_code == 503
            assert loop.time() - started < 5  # not Timer B's 32 s

    run(main())


def test_large_invite_goes_over_tcp_by_itself() -> None:
    """RFC 3261 §18.1.1: an INVITE over 1,300 bytes to a URI without ;transport is sent over TCP."""
    async def main() -> None:
        async with await UserAgent.create("127.0.0.1", 0, timers=FAST) as a, \
                await UserAgent.create("127.0.0.1", 0, timers=FAST) as b:
            offer = make_offer("127.0.0.1", 40000)
            for i in range(40):
                offer.media[0].attributes.append(("x-pad", f"{i:02d}" + "p" * 30))

            async def answer() -> Any:
                inc = await b.incoming()
                assert inc.request.top_via.transport == "TCP"
                return await inc.answer(make_answer(inc.offer, "127.0.0.1", 42000))

            task = asyncio.create_task(answer())
            assert len(offer.serialize()) > 1300
            call = await a.call(f"sip:b@127.0.0.1:{b.local_address[1]}", offer)
            await task
            await call.hangup()

    run(main())


def test_registration_over_tcp_keeps_alive_and_survives_the_server_closing() -> None:
    """A registrar on a real TCP socket: our REGISTER arrives framed, CRLF CRLF keep-alives follow on the same
    connection (RFC 5626 §4.4.1) and get their pong; when the registrar closes the connection, the next refresh
    opens a new one (RFC 3261 §18: a closed connection is not an error)."""
    from pyvoip_fast.sip.framing import PING, StreamFramer
    from pyvoip_fast.sip.message import make_response, parse_message

    registers: list = []
    pings: list = []
    connections: list = []

    async def registrar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername"))
        framer = StreamFramer()
        loop = asyncio.get_running_loop()
        close_at = None
        while True:
            try:
                timeout = None if close_at is None else max(0.0, close_at - loop.time())
                data = await asyncio.wait_for(reader.read(4096), timeout)
            except asyncio.TimeoutError:
                writer.close()  # hang up on the client
                return
            if not data:
                break
            for item in framer.feed(data):
                if item == PING:
                    pings.append(len(connections))
                    writer.write(b"\r\n")
                elif isinstance(item, bytes):
                    request = parse_message(item)
                    registers.append(request)
                    contact = request.headers.get("Contact")
                    ok = make_response(request, 200, to_tag="reg", headers=[("Contact", f"{contact};expires=2")])
                    writer.write(ok.serialize())
                    if len(registers) == 1:
                        close_at = loop.time() + 0.8  # let a keep-alive or two arrive, then hang up
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(registrar, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with await UserAgent.create("127.0.0.1", 0, timers=FAST, transport="TCP") as ua:
                reg = await ua.register("sip:alice@127.0.0.1", registrar=f"sip:127.0.0.1:{port}", expires=2,
                                        keepalive=0.3)
                assert reg.registered and reg.expires == 2
                started = asyncio.get_running_loop().time()
                while reg.refreshes < 1 and asyncio.get_running_loop().time() - started < 5:
                    await asyncio.sleep(0.05)
                assert reg.refreshes >= 1
        finally:
            server.close()

    run(main())
    assert len(connections) >= 2, connections
    assert registers[0].top_via.transport == "TCP" and "transport=tcp" in (registers[0].headers.get("Contact") or "")
    assert pings and pings[0] == 1  # keep-alives went over the first connection
    # the last REGISTER is the unregistration on close (Expires: 0) over a live connection
    assert registers[-1].headers.get("Expires") == "0"


def test_a_connection_that_completes_after_close_is_closed_at_once() -> None:
    """An accept (or a connect) already under way when the transport closes completes afterwards: it must close
    its socket itself, not start a handler that the ending loop may leave pending with the socket open."""
    import gc
    import warnings

    from pyvoip_fast.app.sip_transport import SipTransport, _TrackedStream

    async def main() -> Tuple[bool, int]:
        handled = []
        transport = SipTransport(lambda data, addr: None, lambda addr, why: None)
        await transport.close()
        ours, theirs = socket.socketpair()
        protocol = _TrackedStream(transport, asyncio.StreamReader(), lambda r, w: handled.append(w))
        stream, _ = await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, ours)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        closed = stream.is_closing() and ours.fileno() == -1
        theirs.settimeout(1.0)
        eof = len(theirs.recv(10))  # the far end sees the connection end
        theirs.close()
        return closed and not handled and not transport._streams, eof

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        closed, eof = run(main())
        gc.collect()
    assert closed and eof == 0


def test_closing_frees_a_tls_socket_whose_peer_never_answers_the_shutdown(tmp_path: Any) -> None:
    """Closing a TLS connection is a shutdown handshake (close_notify both ways). A server that never answers it
    must not keep our socket open past ``close()``: the loop may end right after, and the socket would leak."""
    import ssl
    import threading
    import warnings

    import trustme

    from pyvoip_fast.app.sip_transport import SipTransport, client_tls_context

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    got = threading.Event()
    release = threading.Event()

    def serve() -> None:  # a blocking TLS server that reads one message, then goes silent
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(4096)
            got.set()
            release.wait(10)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    message = (b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:9;branch=z9hG4bKtls\r\n"
               b"Content-Length: 0\r\n\r\n")

    async def main() -> Tuple[int, bool]:
        transport = SipTransport(lambda data, addr: None, lambda addr, why: None,
                                 tls_context=client_tls_context(str(ca_file)))
        transport.send(message, ("127.0.0.1", port))
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, got.wait, 5)
        conn = transport._conns[("TLS", ("127.0.0.1", port))]
        assert conn.writer is not None
        raw = conn.writer.get_extra_info("socket")
        await transport.close()
        return raw.fileno(), not transport._streams

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            fileno, untracked = run(main())
    finally:
        release.set()
        server.join(5)
        listener.close()
    assert fileno == -1 and untracked
