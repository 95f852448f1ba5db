"""A seeded, deterministic UDP relay on 127.0.0.1 that impairs media between two peers (tests only).

Peer A sends to ``relay.a_port``, peer B to ``relay.b_port``; the relay forwards A's datagrams to B from its
B-side socket and B's to A from its A-side socket, so both peers see the relay as the other party (symmetric RTP
latches onto it). Each direction has its own ``random.Random(seed)`` consumed once per datagram in arrival order,
so a given packet sequence always meets the same fate: dropped, duplicated, held back (reordered) and delayed by
a uniform random jitter. Impairments apply only to datagrams that look like RTP (version 2, not an RTCP packet
type) unless ``impair_all`` is set; the relay records what it did, per direction, with the RTP sequence numbers.

Usage::

    relay = await UdpRelay.create(("127.0.0.1", a_port), ("127.0.0.1", b_port),
                                  loss=0.05, duplicate=0.03, reorder=0.03, jitter=0.02, seed=1)
    ...
    relay.a_to_b.dropped   # list of sequence numbers dropped on the way A -> B
    relay.close()
"""

from __future__ import annotations

import asyncio
import random
import struct
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

Addr = Tuple[str, int]


@dataclass
class Impairment:
    """What one direction does to RTP datagrams (probabilities per packet, times in seconds)."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    reorder_hold: float = 0.045
    #: do not impair the first N RTP packets (lets the receiver's source validation settle)
    grace: int = 0


@dataclass
class DirectionLog:
    """What the relay did in one direction."""

    forwarded: int = 0
    rtp_seen: int = 0
    dropped: List[int] = field(default_factory=list)
    #: positions (0-based RTP packet index in this direction) of the dropped packets
    dropped_at: List[int] = field(default_factory=list)
    duplicated: List[int] = field(default_factory=list)
    reordered: List[int] = field(default_factory=list)
    other: int = 0


def _rtp_seq(data: bytes) -> Optional[int]:
    """The sequence number when ``data`` looks like RTP (not RTCP), else None."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    if 192 <= data[1] <= 223:  # RTCP packet types 192-223 in the second octet (RFC 5761 §4)
        return None
    return int(struct.unpack_from("!H", data, 2)[0])


class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: "UdpRelay", name: str) -> None:
        self.relay = relay
        self.name = name
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay._received(self.name, data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP from a closed peer: ignore
        pass


class UdpRelay:
    """Forwards datagrams between peer A and peer B with seeded impairments (see the module docstring)."""

    def __init__(
        self,
        peer_a: Addr,
        peer_b: Addr,
        a_to_b: Impairment,
        b_to_a: Impairment,
        seed: int,
        impair_all: bool,
    ) -> None:
        self.peer_a = peer_a
        self.peer_b = peer_b
        self.impair = {"a": a_to_b, "b": b_to_a}
        self.rng = {"a": random.Random(seed), "b": random.Random(seed + 1)}
        self.log = {"a": DirectionLog(), "b": DirectionLog()}
        self.impair_all = impair_all
        self.sides: dict = {}
        self._loop = asyncio.get_running_loop()
        self._handles: List[asyncio.TimerHandle] = []
        self.closed = False

    @classmethod
    async def create(
        cls,
        peer_a: Addr,
        peer_b: Addr,
        *,
        loss: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        delay: float = 0.0,
        jitter: float = 0.0,
        grace: int = 0,
        seed: int = 1,
        both_ways: bool = True,
        impair_all: bool = False,
        host: str = "127.0.0.1",
    ) -> "UdpRelay":
        """Bind the two relay sockets and start forwarding.

        Args:
            peer_a / peer_b: the peers' addresses (where their sockets receive).
            loss, duplicate, reorder: per-packet probabilities; delay (fixed) and jitter (uniform extra), s.
            grace: leave the first N RTP packets of each direction untouched.
            seed: the RNG seed (direction B->A uses seed + 1).
            both_ways: impair B->A too (else it is forwarded untouched).
            impair_all: impair every datagram, not only RTP.
        """
        imp = Impairment(loss, duplicate, reorder, delay, jitter, grace=grace)
        relay = cls(peer_a, peer_b, imp, imp if both_ways else Impairment(), seed, impair_all)
        loop = asyncio.get_running_loop()
        for name in ("a", "b"):
            _, proto = await loop.create_datagram_endpoint(lambda n=name: _Side(relay, n), local_addr=(host, 0))
            relay.sides[name] = proto
        return relay

    @property
    def a_port(self) -> int:
        """Where peer A sends."""
        return int(self.sides["a"].transport.get_extra_info("sockname")[1])

    @property
    def b_port(self) -> int:
        """Where peer B sends."""
        return int(self.sides["b"].transport.get_extra_info("sockname")[1])

    @property
    def a_to_b(self) -> DirectionLog:
        return self.log["a"]

    @property
    def b_to_a(self) -> DirectionLog:
        return self.log["b"]

    def _received(self, side: str, data: bytes, addr: Any) -> None:
        if self.closed:
            return
        out_side, dest = ("b", self.peer_b) if side == "a" else ("a", self.peer_a)
        log = self.log[side]
        seq = _rtp_seq(data)
        if seq is None and not self.impair_all:
            log.other += 1
            self._send(out_side, data, dest, 0.0)
            return
        imp = self.impair[side]
        rng = self.rng[side]
        log.rtp_seen += 1
        # always draw the same number of values per packet, so decisions do not shift with the outcome
        r_loss, r_dup, r_reorder, r_jit, r_jit2 = (rng.random() for _ in range(5))
        if log.rtp_seen <= imp.grace:
            self._send(out_side, data, dest, imp.delay)
            return
        key = seq if seq is not None else -1
        if r_loss < imp.loss:
            log.dropped.append(key)
            log.dropped_at.append(log.rtp_seen - 1)
            return
        d = imp.delay + r_jit * imp.jitter
        if r_reorder < imp.reorder:
            log.reordered.append(key)
            d += imp.reorder_hold
        self._send(out_side, data, dest, d)
        if r_dup < imp.duplicate:
            log.duplicated.append(key)
            self._send(out_side, data, dest, d + r_jit2 * max(imp.jitter, 0.005))

    def _send(self, side: str, data: bytes, dest: Addr, delay: float) -> None:
        self.log["a" if side == "b" else "b"].forwarded += 1
        transport = self.sides[side].transport
        if delay <= 0:
            transport.sendto(data, dest)
        else:
            h = self._loop.call_later(delay, self._send_now, side, data, dest)
            self._handles.append(h)
            if len(self._handles) > 1024:  # forget the handles that have run (each holds its datagram)
                now = self._loop.time()
                self._handles = [x for x in self._handles if not x.cancelled() and x.when() > now]

    def _send_now(self, side: str, data: bytes, dest: Addr) -> None:
        if not self.closed:
            self.sides[side].transport.sendto(data, dest)

    def close(self) -> None:
        """Stop forwarding and close both sockets."""
        self.closed = True
        for h in self._handles:
            h.cancel()
        for proto in self.sides.values():
            if proto.transport is not None:
                proto.transport.close()
