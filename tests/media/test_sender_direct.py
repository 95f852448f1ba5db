"""The compiled sender's own send (``SenderCore`` with the session's socket) against the Python transmit
(``MediaSession._transmit`` → ``net.sockets.MediaSockets.send_rtp``).

Real sockets on loopback: a sender given its RTP socket, owner and peer sends the common slot's packet with a raw
``sendto``; a second sender with the same seed sends through ``send_rtp`` from its own socket. The datagrams that
arrive and the senders' fields must be the same. The owner's rules still decide (closed, SRTP, an address the
socket cannot take as it is: the Python transmit), and a refused send is reported as ``send_rtp`` reports it.
"""

from __future__ import annotations

import asyncio
import random
import select
import socket
import time
from typing import Any, Iterator, List, Tuple

import numpy as np
import pytest

from pyvoip_fast import _compat, codecs
from pyvoip_fast.media.sender import RtpSender
from pyvoip_fast.net.sockets import MediaSockets, bind_pair

pytestmark = pytest.mark.skipif(_compat.NO_EXTENSIONS or "_sender" in _compat.MISSING_EXTENSIONS,
                                reason="the compiled modules are off")


@pytest.fixture()
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


class _Peer:
    """What the sender reads the peer's address from (the session gives it its receiver)."""

    def __init__(self, remote: Any) -> None:
        self.remote_rtp = remote


class _Source:
    def __init__(self, frames: int) -> None:
        self.pcm = (np.sin(np.arange(frames * 160) / 5.0) * 9000).astype(np.int16)
        self.pos, self.eof = 0, False

    def read(self, n: int) -> Any:
        out = self.pcm[self.pos:self.pos + n]
        self.pos += n
        self.eof = self.pos >= len(self.pcm)
        return out


class _Call:
    """One side: a MediaSockets pair of real sockets and a sender on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, remote: Any, direct: bool, host: str = "127.0.0.1",
                 seed: int = 7) -> None:
        rtp, rtcp = bind_pair(host, 0)
        self.icmp: List[Tuple[bool, Any]] = []
        self.sockets = MediaSockets(rtp, rtcp, loop, on_rtp=lambda *a: None, on_rtcp=lambda *a: None,
                                    on_icmp=lambda is_rtp, addr: self.icmp.append((is_rtp, addr)), now=lambda: 5.0)
        self.peer = _Peer(remote)
        self.transmitted = 0
        self.sender = RtpSender(0x51515151, random.Random(seed), self.transmit, loop)
        self.sender._now = lambda: 5.0
        self.sender.configure(codecs.PCMU, 0, 20, 101)
        self.sender.set_source(_Source(60))
        self.sender.start(0.0)
        if direct:
            s = self.sender
            s.tx_fd, s.tx_family, s.tx_sockets, s.tx_peer = rtp.fileno(), rtp.family, self.sockets, self.peer

    def transmit(self, buf: Any) -> bool:  # what MediaSession._transmit does
        self.transmitted += 1
        return self.sockets.send_rtp(buf, self.peer.remote_rtp)

    def close(self) -> None:
        self.sockets.close()


def _drain(sock: socket.socket, want: int) -> List[bytes]:
    got: List[bytes] = []
    end = time.monotonic() + 2.0
    while len(got) < want and time.monotonic() < end:
        if select.select([sock], [], [], 0.05)[0]:
            got.append(sock.recv(2048))
    return got


def _state(s: Any) -> Tuple[Any, ...]:
    return (s._seq, s._last_sent_n, s.marker_next, s.we_sent, s.sent_audio, s.first_sent_at, s.last_sent_at,
            s.stats.packet_count, s.stats.octet_count)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_direct_send_is_the_python_send(loop: asyncio.AbstractEventLoop, host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sinks = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(2)]
    calls: List[_Call] = []
    try:
        for s in sinks:
            s.bind((host, 0))
        a = _Call(loop, sinks[0].getsockname(), True, host)  # (IPv6: the 4-tuple, flow information and scope)
        b = _Call(loop, sinks[1].getsockname()[:2], False, host)
        calls = [a, b]
        for n in (1, 2, 3, 5, 6, 6, 9, 10):  # in order, late, repeated
            a.sender.send_slot(n)
            b.sender.send_slot(n)
            assert _state(a.sender) == _state(b.sender)
        a.sender.queue_dtmf("5")  # a telephone-event: the Python slot, through the transmit
        b.sender.queue_dtmf("5")
        for n in range(11, 14):
            a.sender.send_slot(n)
            b.sender.send_slot(n)
        got_a, got_b = _drain(sinks[0], 11), _drain(sinks[1], 11)
        assert len(got_b) == 11 and got_a == got_b
        assert a.transmitted == 3 and b.transmitted == 11  # only the DTMF slots went through the Python transmit
        assert _state(a.sender) == _state(b.sender)
    finally:
        for c in calls:
            c.close()
        for s in sinks:
            s.close()


def test_the_owner_still_decides(loop: asyncio.AbstractEventLoop) -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    a = _Call(loop, sink.getsockname(), True)
    try:
        a.sender.send_slot(1)
        assert a.transmitted == 0 and len(_drain(sink, 1)) == 1
        a.sockets.srtp = object()  # SRTP protects in the owner's send: the Python transmit (which here would fail)
        with pytest.raises(AttributeError):
            a.sender.send_slot(2)
        assert a.transmitted == 1
        a.sockets.srtp = None
        for remote in (None, ("localhost", sink.getsockname()[1]), ("127.0.0.1", sink.getsockname()[1], 0),
                       ("127.000.000.001", sink.getsockname()[1])):
            a.peer.remote_rtp = remote  # no peer yet, a name, a triple, a form not the kernel's: the Python send
            before = a.transmitted
            try:
                a.sender.send_slot(3)
            except TypeError:  # the Python send's own answer to a triple on an IPv4 socket
                assert remote is not None and len(remote) == 3
            assert a.transmitted == before + 1
        a.peer.remote_rtp = sink.getsockname()
        _drain(sink, 10)
        a.sender.send_slot(4)
        assert a.transmitted == 5 and len(_drain(sink, 1)) == 1  # a new address object: converted, direct again
        a.close()
        a.sender.send_slot(5)  # closed: the Python transmit, which sends nothing on a closed socket
        assert a.transmitted == 6
    finally:
        a.close()
        sink.close()


def test_a_refused_send_is_reported_as_the_python_send_reports_it(loop: asyncio.AbstractEventLoop) -> None:
    """ICMP port unreachable from a closed port: the next sends fail with ECONNREFUSED, which the owner turns into
    ICMP reports (``MediaSockets._refused``), for the direct send as for ``send_rtp``."""
    gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gone.bind(("127.0.0.1", 0))
    dead = gone.getsockname()
    gone.close()
    sides = [_Call(loop, dead, True), _Call(loop, dead, False)]
    try:
        for n in range(1, 30):
            for side in sides:
                side.sender.send_slot(n)
            time.sleep(0.002)
        a, b = sides
        assert a.icmp and b.icmp
        assert all(is_rtp for is_rtp, _ in a.icmp)
        assert {addr for _, addr in a.icmp} <= {dead, None}
        assert a.sender.stats.packet_count < 29 and b.sender.stats.packet_count < 29  # refused sends not counted
        assert a.transmitted == 0
    finally:
        for side in sides:
            side.close()


def test_the_session_gives_the_sender_its_socket() -> None:
    from pyvoip_fast.media.session import MediaSession

    async def main() -> None:
        s = await MediaSession.create("127.0.0.1")
        try:
            sender = s._sender
            assert sender.tx_fd == s._sockets.rtp.fileno() and sender.tx_sockets is s._sockets
            assert sender.tx_peer is s._receiver and sender.tx_family == socket.AF_INET
        finally:
            await s.stop()

    asyncio.run(main())


def test_send_failed_reports_once(loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture) -> None:
    """An error other than a refusal is logged once per call, with its reason, and nothing raises."""
    import errno

    a = _Call(loop, ("127.0.0.1", 9), True)
    try:
        with caplog.at_level("WARNING"):
            a.sockets.rtp_send_failed(errno.ENETUNREACH, ("127.0.0.1", 9))
            a.sockets.rtp_send_failed(errno.ENETUNREACH, ("127.0.0.1", 9))
        lines = [r.getMessage() for r in caplog.records if "Cannot send" in r.getMessage()]
        assert lines == ["[RTP] Cannot send to 127.0.0.1:9: Network is unreachable"]
        a.sockets.rtp_send_failed(errno.ECONNREFUSED, ("127.0.0.1", 9))
        assert a.icmp == [(True, None)]
    finally:
        a.close()
