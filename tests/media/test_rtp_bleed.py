"""RTP learning that resists "RTP Bleed" (CVE-2017-14099), over real sockets on loopback.

The peer negotiated ``127.0.0.1:P`` in SDP but, as a peer behind NAT does, sends from another port ``Q``. A
stranger on ``127.0.0.9`` tries to take the stream first: a couple of packets, a spray of single packets from many
ports, or packets interleaved with the peer's. The session must latch to ``Q`` (the first source with
``LATCH_PACKETS`` packets in sequence from one SSRC), send its audio there and nothing to the stranger; a real NAT
rebinding (the peer quiet, then sending from a new port) is still followed.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, List, Tuple

import numpy as np

from mediakit import ArraySource, ListSink, params, run
from rawsip import drain as _drain, udp_socket as _sock
from pyvoip_fast.media import MediaSession
from pyvoip_fast.media.receiver import LATCH_PACKETS
from pyvoip_fast.rtp import RtpPacket, rtcp


def _pkt(seq: int, ssrc: int) -> bytes:
    return RtpPacket(payload_type=0, sequence_number=seq & 0xFFFF, timestamp=seq * 160, ssrc=ssrc,
                     payload=b"\x55" * 160).serialize()


def _session_with_nat_peer() -> Tuple[Any, ...]:
    sdp_side, peer = _sock(), _sock()  # the negotiated address (silent) and where the peer really sends from
    return sdp_side, peer


async def _start(sdp_port: int) -> MediaSession:
    media = await MediaSession.create("127.0.0.1", rtcp_interval=5.0)
    tone = np.full(8000 * 4, 2000, np.int16)
    media.start(params(sdp_port), source=ArraySource(tone), sink=ListSink())
    return media


async def _send(sock: socket.socket, port: int, packets: List[bytes], gap: float = 0.005) -> None:
    for p in packets:
        sock.sendto(p, ("127.0.0.1", port))
        await asyncio.sleep(gap)


def test_a_stranger_who_starts_first_does_not_capture_the_stream() -> None:
    sdp_side, peer = _session_with_nat_peer()
    peer_addr = peer.getsockname()
    stranger = _sock("127.0.0.9")
    spray = [_sock("127.0.0.9") for _ in range(12)]

    async def main() -> Any:
        media = await _start(sdp_side.getsockname()[1])
        port = media.local_rtp_port
        await _send(stranger, port, [_pkt(100 + i, 0xBAD) for i in range(LATCH_PACKETS - 1)])  # one short
        for i, s in enumerate(spray):  # RTP Bleed's probe: one packet from each of many ports
            s.sendto(_pkt(7 + i, 0xBAD), ("127.0.0.1", port))
        await asyncio.sleep(0.1)
        assert media.remote_rtp_addr == ("127.0.0.1", sdp_side.getsockname()[1])  # still the negotiated one
        await _send(peer, port, [_pkt(1000 + i, 0x600D) for i in range(25)], gap=0.02)
        await asyncio.sleep(0.2)
        latched = media.remote_rtp_addr
        await media.stop("test over")
        return latched, media.stats

    try:
        latched, stats = run(main())
        to_stranger = _drain(stranger) + [d for s in spray for d in _drain(s)]
        to_peer = _drain(peer)
    finally:
        for s in (sdp_side, peer, stranger, *spray):
            s.close()
    assert latched == peer_addr and len(to_peer) >= 5
    assert to_stranger == []
    assert stats.packets_received == 25 - (LATCH_PACKETS - 1)  # the peer's probation packets, nothing else


def test_a_stranger_interleaving_with_the_peer_neither_wins_nor_blocks_it() -> None:
    sdp_side, peer = _session_with_nat_peer()
    peer_addr = peer.getsockname()
    stranger = _sock("127.0.0.9")

    async def main() -> Any:
        media = await _start(sdp_side.getsockname()[1])
        port = media.local_rtp_port
        for i in range(20):  # peer, stranger, peer, stranger ... each in sequence from one SSRC
            peer.sendto(_pkt(500 + i, 0x600D), ("127.0.0.1", port))
            stranger.sendto(_pkt(9000 + 3 * i, 0xBAD), ("127.0.0.1", port))  # not in sequence: a spray
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        latched = media.remote_rtp_addr
        await media.stop("test over")
        return latched, media.stats

    try:
        latched, stats = run(main())
        to_stranger = _drain(stranger)
        to_peer = _drain(peer)
    finally:
        for s in (sdp_side, peer, stranger):
            s.close()
    assert latched == peer_addr and to_stranger == [] and len(to_peer) > 0
    assert stats.packets_received == 20 - (LATCH_PACKETS - 1)


def test_a_real_nat_rebinding_is_followed() -> None:
    sdp_side, peer = _session_with_nat_peer()
    moved = _sock()
    peer_addr, moved_addr = peer.getsockname(), moved.getsockname()

    async def main() -> Any:
        media = await _start(sdp_side.getsockname()[1])
        port = media.local_rtp_port
        await _send(peer, port, [_pkt(i, 0x600D) for i in range(10)], gap=0.02)
        first = media.remote_rtp_addr
        await asyncio.sleep(0.7)  # the old mapping goes quiet (RELEARN_QUIET), the peer reappears elsewhere
        await _send(moved, port, [_pkt(10 + i, 0x600D) for i in range(10)], gap=0.02)
        second = media.remote_rtp_addr
        await media.stop("test over")
        return first, second

    try:
        first, second = run(main())
        after = _drain(moved)
    finally:
        for s in (sdp_side, peer, moved):
            s.close()
    assert first == peer_addr and second == moved_addr and len(after) > 0


def test_our_rtcp_follows_the_peer_to_a_new_port_only_on_its_own_ssrc() -> None:
    """After a rebinding the peer's reports come from a new port of the same host: ours follow them there, but
    only when they carry the SSRC of the peer's RTP stream (a stranger on that host cannot steer our reports)."""
    sdp_side, peer, rtcp_old, rtcp_new, neighbour = (_sock() for _ in range(5))

    def report(ssrc: int) -> bytes:
        return rtcp.serialize_compound([rtcp.ReceiverReport(ssrc), rtcp.SourceDescription.cname_for(ssrc, "p@h")])

    async def main() -> None:
        media = await MediaSession.create("127.0.0.1", rtcp_interval=0.2)
        media.start(params(sdp_side.getsockname()[1]), source=ArraySource(np.full(8000 * 4, 2000, np.int16)),
                    sink=ListSink())
        dest = ("127.0.0.1", media.local_rtcp_port)
        await _send(peer, media.local_rtp_port, [_pkt(i, 0x600D) for i in range(6)], gap=0.02)
        rtcp_old.sendto(report(0x600D), dest)  # the peer's first report: ours go to its port from now on
        await asyncio.sleep(0.5)
        neighbour.sendto(report(0xBAD), dest)  # same host, another port, not the peer's SSRC
        await asyncio.sleep(0.5)
        assert _drain(neighbour) == []
        rtcp_new.sendto(report(0x600D), dest)  # the peer itself, from its new port
        await asyncio.sleep(0.5)
        await media.stop("test over")

    try:
        _drain(rtcp_old)
        run(main())
        to_new, to_neighbour = _drain(rtcp_new), _drain(neighbour)
    finally:
        for s in (sdp_side, peer, rtcp_old, rtcp_new, neighbour):
            s.close()
    assert to_neighbour == []
    assert len(to_new) >= 2  # the reports after the move (and the final BYE) went to the peer's new port
