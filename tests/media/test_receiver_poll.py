"""The compiled receiver reading its call's RTP socket itself (``ReceiverCore.poll_socket``) against the generic
read (``net.sockets.MediaSockets.poll_rtp``: ``_udp.recv_stamped``, then the session's receive path per datagram).

Real UDP sockets on loopback: the same datagrams, from the same source sockets, go to two receiving sockets, one
read by ``poll_socket`` into a compiled receiver, the other read the generic way into a receiver on the twin base.
The sockets carry no kernel timestamps here, so both sides see the same simulated arrival times and every counter,
statistic, buffer state, hearing time and delivered datagram can be compared exactly. Other tests show that the
common packet never reaches Python once the peer is proven, that a closed owner stops the reading, that IPv6 works
and that an address written in another form than the kernel's never takes the direct path.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast import _compat, rtp
from pyvoip_fast.media.liveness import AddressProof
from test_receiver_parity import _Counting, _receiver, _same, _state, _twin_class

pytestmark = pytest.mark.skipif(_compat.NO_EXTENSIONS or "_receiver" in _compat.MISSING_EXTENSIONS,
                                reason="the compiled modules are off")
_udp = _compat.load("_udp")


class _Owner:
    closed = False


def _udp_socket(host: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.setblocking(False)
    return s


def _wait_readable(*socks: socket.socket) -> None:
    """Loopback delivers within the send call; a short wait makes that certain before reading."""
    import select

    deadline = time.monotonic() + 2.0
    for s in socks:
        while not select.select([s], [], [], 0.01)[0] and time.monotonic() < deadline:
            pass


class _Side:
    """One receiver, its socket and what a session around it would record."""

    def __init__(self, receiver: Any, host: str = "127.0.0.1") -> None:
        self.r = receiver
        self.sock = _udp_socket(host)
        self.proof = AddressProof()
        self.proof.reset(False)
        self.heard: List[float] = []
        self.delivered: List[Tuple[bytes, Any]] = []
        receiver.proof, receiver.on_heard = self.proof, self.heard.append

    def deliver(self, now: float) -> Callable[[bytes, Any, Optional[float]], None]:
        """The session's receive path (``MediaSession._on_rtp_datagram``) at simulated time ``now``."""
        def on_rtp(data: bytes, addr: Any, arrival: Optional[float]) -> None:
            self.delivered.append((data, addr))
            t = now if arrival is None else arrival
            if self.r.on_datagram(data, addr, t):
                self.heard.append(t)
                if not self.proof.all_proven:
                    self.proof.heard(addr)
        return on_rtp

    def poll_compiled(self, now: float, owner: Any = None) -> int:
        return int(self.r.poll_socket(self.sock.fileno(), 64, lambda: now, self.deliver(now), owner or _Owner()))

    def poll_generic(self, now: float) -> int:
        batch, err = _udp.recv_stamped(self.sock.fileno(), 64)
        on_rtp = self.deliver(now)
        for data, addr, stamp in batch:
            assert stamp < 0  # (no timestamps asked for: the arrival is the simulated now)
            on_rtp(data, addr, None)
        return int(err)


def _sides(host: str = "127.0.0.1") -> Tuple[_Side, _Side, List[socket.socket]]:
    a, b = _Side(_receiver(_Counting, []), host), _Side(_receiver(_twin_class(), []), host)
    a.r.rest = 0
    peer, moved, stranger = _udp_socket(host), _udp_socket(host), _udp_socket(host)
    for side in (a, b):  # the negotiated address: the peer socket's
        side.r.set_remote(peer.getsockname(), initial=True)
        side.r.new_stream()
        side.r.receiving = True
    return a, b, [peer, moved, stranger]


def _runs_last(times: List[float]) -> List[float]:
    """The distinct hearing times in order (what ``PeerWatch.heard`` keeps of them, at every step)."""
    out: List[float] = []
    for t in times:
        if not out or out[-1] != t:
            out.append(t)
    return out


event = st.tuples(
    st.integers(0, 40),  # 0-29 the stream's next packet, 30-31 a stranger, 32 the peer moves, 33 prove, 34-40 poll
    st.integers(0, 12),  # datagram kind: 5 and up plain, the common case
    st.sampled_from([-1, 0, 2] + [1] * 10),  # sequence step
    st.integers(0, 9),  # payload type: mostly PCMU, sometimes PCMA, telephone-event, unknown
    st.integers(0, 15),  # SSRC: mostly the stream's, sometimes a new one
    st.integers(0, 200),  # payload length
)


@settings(max_examples=40, deadline=None)
@given(events=st.lists(event, min_size=1, max_size=80), seed=st.integers(0, 2**16))
def test_poll_socket_is_the_generic_read(events: List[Tuple[int, ...]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b, (peer, moved, stranger) = _sides()
    try:
        source, seq, ts, ssrc, now = peer, 1000, 5000, 0x1234, 10.0
        for what, kind, step, ptc, ssrcc, length in events + [(40, 0, 0, 0, 0, 0)]:
            now += 0.02
            if what >= 34:
                _wait_readable(a.sock, b.sock)
                assert a.poll_compiled(now) == b.poll_generic(now) == 0
                assert _same(_state(a.r), _state(b.r))
                # the peer was heard at the same times: one ``on_heard`` stands for a run of packets taken
                # directly (``PeerWatch.heard`` keeps the last time), so the last time of each run must agree
                assert _runs_last(a.heard) == _runs_last(b.heard) and a.heard[-1:] == b.heard[-1:]
                assert len(a.delivered) <= len(b.delivered)
                continue
            if what == 33:
                a.proof.confirm()
                b.proof.confirm()
                continue
            if what == 32:
                source = moved
            seq += step
            ts += 160 * step
            if ssrcc == 0:
                ssrc = int(rng.integers(0, 2**32))
            pt = 8 if ptc == 7 else 101 if ptc == 8 else 96 if ptc == 9 else 0
            body = bytes(rng.integers(0, 256, length, dtype=np.uint8)) if pt != 101 else bytes([5, 0, 0, 160])
            plain = bytes(rtp.build_packet(pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, body, False))
            data = plain if kind >= 5 else plain[:11] if kind == 0 else bytes([0x90]) + plain[1:] if kind == 1 else (
                bytes([0x81]) + plain[1:12] + b"\0\0\0\7" + plain[12:] if kind == 2 else b"\x40" + plain[1:])
            sender = stranger if what in (30, 31) else source
            for side in (a, b):
                sender.sendto(data, side.sock.getsockname())
    finally:
        for s in (a.sock, b.sock, peer, moved, stranger):
            s.close()


def test_the_common_packet_never_reaches_python_once_proven() -> None:
    for host in ("127.0.0.1", "::1"):
        a, _b, (peer, moved, stranger) = _sides(host)
        try:
            a.proof.confirm()
            to = a.sock.getsockname()
            peer.sendto(bytes(rtp.build_packet(0, 1, 160, 0x99, bytes(160), True)), to)  # a new SSRC: Python
            _wait_readable(a.sock)
            a.poll_compiled(1.0)
            assert len(a.delivered) == 1 and a.r.rest == 1 and a.r.packets == 1
            for i in range(2, 42):
                peer.sendto(bytes(rtp.build_packet(0, i, 160 * i, 0x99, bytes(160), False)), to)
            _wait_readable(a.sock)
            assert a.poll_compiled(2.0) == 0
            assert len(a.delivered) == 1 and a.r.rest == 1  # none of the 40 went through Python
            assert a.r.packets == 41 and a.r.octets == 41 * 160 and a.r.jb.stats.as_dict()["received"] == 41
            assert a.heard == [1.0, 2.0]  # the Python path's hearing, then one for the 40 taken directly
            assert a.r.last_rtp_heard == 2.0
            stranger.sendto(bytes(rtp.build_packet(0, 42, 160 * 42, 0x99, bytes(160), False)), to)
            _wait_readable(a.sock)
            a.poll_compiled(3.0)
            assert len(a.delivered) == 2 and a.delivered[1][1][:2] == stranger.getsockname()[:2]
        finally:
            for s in (a.sock, _b.sock, peer, moved, stranger):
                s.close()


def test_not_proven_yet_everything_goes_to_python() -> None:
    a, _b, socks = _sides()
    try:
        to = a.sock.getsockname()
        for i in range(5):
            socks[0].sendto(bytes(rtp.build_packet(0, i, 160 * i, 0x99, bytes(160), False)), to)
        _wait_readable(a.sock)
        a.poll_compiled(1.0)
        assert len(a.delivered) == 5 and a.r.packets == 5  # the session's proof learns from each
    finally:
        for s in [a.sock, _b.sock, *socks]:
            s.close()


def test_a_closed_owner_stops_the_reading() -> None:
    a, _b, socks = _sides()
    owner = _Owner()
    try:
        to = a.sock.getsockname()
        for i in range(3):
            socks[2].sendto(b"not rtp %d" % i, to)
        _wait_readable(a.sock)

        def closing(data: bytes, addr: Any, arrival: Optional[float]) -> None:
            a.delivered.append((data, addr))
            owner.closed = True

        assert a.r.poll_socket(a.sock.fileno(), 64, lambda: 1.0, closing, owner) == 0
        assert [d for d, _ in a.delivered] == [b"not rtp 0"]
    finally:
        for s in [a.sock, _b.sock, *socks]:
            s.close()


def test_an_address_in_another_form_never_takes_the_direct_path() -> None:
    """``(host, port)`` compare as text on the Python path: "0:0:0:0:0:0:0:1" is not "::1" there, so the direct
    path, which compares raw addresses, must not take a packet from ::1 for it."""
    a, _b, socks = _sides("::1")
    try:
        a.proof.confirm()
        to, peer = a.sock.getsockname(), socks[0]
        peer.sendto(bytes(rtp.build_packet(0, 1, 160, 0x99, bytes(160), True)), to)
        _wait_readable(a.sock)
        a.poll_compiled(1.0)
        assert a.r.remote_rtp[0] == "::1" and len(a.delivered) == 1
        a.r.remote_rtp = ("0:0:0:0:0:0:0:1", peer.getsockname()[1])
        peer.sendto(bytes(rtp.build_packet(0, 2, 320, 0x99, bytes(160), False)), to)
        _wait_readable(a.sock)
        a.poll_compiled(2.0)
        assert len(a.delivered) == 2  # the Python path decided
    finally:
        for s in [a.sock, _b.sock, *socks]:
            s.close()


def test_arrival_times_come_from_the_kernel_stamps() -> None:
    """With SO_TIMESTAMPNS on (as ``MediaSockets.tick_receive`` has it), a packet's arrival is its kernel receive
    time moved onto the clock of ``now()``: earlier than the read, not the read's time."""
    from pyvoip_fast.net.sockets import _enable_timestamps

    a, _b, socks = _sides()
    try:
        assert _enable_timestamps(a.sock)
        time.sleep(0.1)  # the kernel turns receive timestamps on a moment after the first socket asks
        a.proof.confirm()
        to = a.sock.getsockname()
        socks[0].sendto(bytes(rtp.build_packet(0, 1, 160, 0x99, bytes(160), True)), to)
        time.sleep(0.05)
        socks[0].sendto(bytes(rtp.build_packet(0, 2, 320, 0x99, bytes(160), False)), to)
        time.sleep(0.05)
        read_at = time.monotonic()
        a.r.poll_socket(a.sock.fileno(), 64, time.monotonic, a.deliver(read_at), _Owner())
        assert len(a.delivered) == 1 and len(a.heard) == 2
        first, second = a.heard
        assert read_at - 0.2 < first < second < read_at
        assert 0.03 < second - first < 0.2 and second < read_at - 0.03
    finally:
        for s in [a.sock, _b.sock, *socks]:
            s.close()


def test_a_bad_limit_is_refused() -> None:
    a, _b, socks = _sides()
    try:
        with pytest.raises(ValueError):
            a.r.poll_socket(a.sock.fileno(), -1, lambda: 0.0, a.deliver(0.0), _Owner())
        assert a.r.poll_socket(a.sock.fileno(), 0, lambda: 0.0, a.deliver(0.0), _Owner()) == 0
        assert a.r.poll_socket(-1, 64, lambda: 0.0, a.deliver(0.0), _Owner()) != 0  # EBADF: reported, not raised
    finally:
        for s in [a.sock, _b.sock, *socks]:
            s.close()


def test_the_session_reads_through_the_compiled_receiver() -> None:
    """``MediaSession`` hands the compiled receiver's ``poll_socket`` to its sockets (and nothing on the twin)."""
    import asyncio

    from pyvoip_fast.media.session import MediaSession

    async def main() -> None:
        s = await MediaSession.create("127.0.0.1")
        try:
            assert s._sockets.rtp_reader is not None
            assert s._receiver.proof is s._proof
        finally:
            await s.stop()

    asyncio.run(main())
