"""Many outgoing RTP streams from one UDP socket: announcements, paging and load generation at scale.

``RtpFanout`` sends N concurrent G.711 streams, each to its own destination, from ONE local UDP port. Each
stream repeats its own encoded audio (a prompt, looped) or silence, 20 ms (``ptime``) per packet, with its own
random SSRC, sequence number and timestamp, and the marker bit on its first packet.

Strategy
--------
- **One clock, a phase grid**: streams are spread over ``phases`` groups (one per half millisecond of ``ptime``
  by default); group g is due at ``start + g·ptime/phases + n·ptime``. One ``Pacer`` per group on the loop's
  shared ``media.MediaClock``: 2,000 wake-ups a second whatever the number of streams. A group's packets leave
  one after another, so its last packet is late by the time the whole group takes: the finer the grid, the
  smaller that tail (at 3,000 streams a 1 ms grid put 150 packets, about 0.6 ms of kernel work here, in each
  batch; 0.5 ms halves it).
- **One batch per tick, in C**: a group's packets are stamped (sequence number, timestamp), refilled with each
  stream's next frame of audio and handed to the kernel with ``sendmmsg(2)``, 32 datagrams per call
  (``pyvoip_fast._udp.send_rtp_batch_to``), without the GIL and with no Python object per packet. Per-stream state
  lives in preallocated numpy tables that double when full.
- **One socket**: a per-stream socket costs the kernel a cold socket, file and route per datagram; one socket
  keeps them hot (on this 2-core VM about 3.6 us per loopback datagram against 5 us, see
  ``benchmarks/bench_capacity.py``). The price: every stream has the same source port, so it suits peers that
  take media from any source (announcements, paging, load tests), or a media server that advertises that one
  port to every call and tells calls apart by the peer's address.
- **Send only**: there is no receiving and no RTCP here; a server that needs them for its calls runs
  ``media.MediaSession`` (one per call) or handles the socket's incoming datagrams itself (``sock``).

Pure Python works too (``PYVOIP_FAST_NO_EXTENSIONS=1``), through the ``_udp`` twin, much more slowly.
"""

from __future__ import annotations

import logging
import secrets
import socket
import struct
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import _compat
from ..codecs import PCMA, PCMU
from ..errors import TransportError
from .clock import MediaClock, Pacer

_udp = _compat.load("_udp")
logger = logging.getLogger(__name__)

__all__ = ["RtpFanout"]

#: the codecs a fan-out carries: one code byte per sample (G.711), so a looped prompt refills a payload in place;
#: payload type -> (codec, the code of a zero sample)
_CODECS = {c.payload_type: (c, c.encoder().encode(np.zeros(1, dtype=np.int16))[0]) for c in (PCMU, PCMA)}
_ADDR_ROW = 28


def _sockaddr(family: int, address: Any) -> bytes:
    """A numeric (host, port) as a raw sockaddr_in / sockaddr_in6 row (family in native byte order)."""
    if not isinstance(address, (tuple, list)) or len(address) < 2 or not isinstance(address[0], str):
        raise ValueError(f"a destination is (numeric host, port), got {address!r}")
    host, port = address[0], address[1]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be in 1..65535, got {port!r}")
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise ValueError(f"not a numeric {'IPv6' if family == socket.AF_INET6 else 'IPv4'} address: {host!r}") from exc
    sa = infos[0][4]
    fam = family.to_bytes(2, sys.byteorder)
    if family == socket.AF_INET:
        return fam + struct.pack("!H", port) + socket.inet_pton(socket.AF_INET, str(sa[0])) + bytes(_ADDR_ROW - 8)
    scope = int(sa[3]) if len(sa) > 3 else 0
    return (fam + struct.pack("!HI", port, 0) + socket.inet_pton(socket.AF_INET6, str(sa[0]).split("%")[0])
            + scope.to_bytes(4, sys.byteorder))


class RtpFanout:
    """N outgoing G.711 RTP streams, each to its own destination, from one UDP socket (see the module notes).

    Use it on a running event loop::

        fanout = RtpFanout(("0.0.0.0", 40000))
        prompt = g711.ulaw_encode(samples_8khz_int16)
        for callee in callees:
            fanout.add(callee, audio=prompt)
        fanout.start()
        ...
        fanout.close()

    Args:
        local: (host, port) to bind; port 0 picks one. The family follows the host.
        ptime: packet interval in seconds (10..60 ms).
        payload_type: 0 (PCMU) or 8 (PCMA); ``audio`` must be encoded to match.
        phases: groups the streams are spread over (default: one per 0.5 ms of ``ptime``).
        clock: the media clock (default: the loop's shared one).
        record: keep the send time and deadline of up to this many packets, for ``lateness()``.

    Raises:
        ValueError: a bad argument.
        TransportError: the address cannot be bound.
    """

    def __init__(
        self,
        local: Tuple[str, int] = ("0.0.0.0", 0),
        *,
        ptime: float = 0.020,
        payload_type: int = 0,
        phases: Optional[int] = None,
        clock: Optional[MediaClock] = None,
        record: int = 0,
    ) -> None:
        if isinstance(ptime, bool) or not isinstance(ptime, (int, float)) or not 0.010 <= ptime <= 0.060:
            raise ValueError(f"ptime must be within 10..60 ms, got {ptime!r}")
        if payload_type not in _CODECS:
            raise ValueError(f"payload_type must be 0 (PCMU) or 8 (PCMA), got {payload_type!r}")
        self.ptime = ptime
        self.payload_type = payload_type
        self.codec, self._silence = _CODECS[payload_type]
        self.samples = int(round(ptime * self.codec.clock_rate))
        self.phases = phases if phases is not None else max(1, int(round(ptime * 2000)))
        if isinstance(self.phases, bool) or not isinstance(self.phases, int) or not 1 <= self.phases <= 1000:
            raise ValueError(f"phases must be within 1..1000, got {phases!r}")
        if not isinstance(local, (tuple, list)) or len(local) < 2:
            raise ValueError(f"local must be (host, port), got {local!r}")
        self.clock = clock or MediaClock.for_loop()
        family = socket.AF_INET6 if ":" in str(local[0]) else socket.AF_INET
        self.family = family
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
            except OSError:
                pass
            self.sock.bind(local)
        except OSError as exc:
            self.sock.close()
            raise TransportError(f"cannot bind RTP fan-out socket to {local[0]}:{local[1]}: {exc.strerror or exc}") from exc
        except (TypeError, ValueError, OverflowError) as exc:
            self.sock.close()
            raise ValueError(f"local must be (host, port), got {local!r}: {exc}") from exc
        self.local_address: Tuple[str, int] = self.sock.getsockname()[:2]
        width = 12 + self.samples
        self._width = width
        self._cap = 0
        self._packets = np.zeros((0, width), dtype=np.uint8)
        self._seqs = np.zeros(0, dtype=np.uint16)
        self._tss = np.zeros(0, dtype=np.uint32)
        self._addrs = np.zeros((0, _ADDR_ROW), dtype=np.uint8)
        self._cursors = np.zeros((0, 3), dtype=np.int64)
        self._ssrcs = np.zeros(0, dtype=np.uint32)
        self._audio = np.zeros(0, dtype=np.uint8)
        self._prompts: Dict[bytes, Tuple[int, int]] = {}
        self._free: List[int] = []
        self._phase_of: Dict[int, int] = {}
        self._groups: List[List[int]] = [[] for _ in range(self.phases)]
        self._group_idx: List[Optional[np.ndarray]] = [None] * self.phases
        self._next_phase = 0
        self._pacers: List[Pacer] = []
        self._record = np.zeros((2, max(0, int(record))))
        self._recorded = 0
        self._closed = False
        #: datagrams the kernel took / refused, and packets skipped by late wake-ups
        self.sent = 0
        self.failed = 0
        self.skipped = 0

    # -- streams ---------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._phase_of)

    def _grow(self) -> None:
        cap = max(64, self._cap * 2)

        def grow(a: np.ndarray) -> np.ndarray:
            out = np.zeros((cap,) + a.shape[1:], dtype=a.dtype)
            out[: len(a)] = a
            return out

        self._packets, self._seqs, self._tss = grow(self._packets), grow(self._seqs), grow(self._tss)
        self._addrs, self._cursors, self._ssrcs = grow(self._addrs), grow(self._cursors), grow(self._ssrcs)
        self._free.extend(range(cap - 1, self._cap - 1, -1))
        self._cap = cap

    def _prompt(self, audio: bytes) -> Tuple[int, int]:
        got = self._prompts.get(audio)
        if got is None:
            got = (len(self._audio), len(audio))
            self._audio = np.concatenate([self._audio, np.frombuffer(audio, dtype=np.uint8)])
            self._prompts[audio] = got
        return got

    def add(self, remote: Tuple[str, int], *, audio: Optional[bytes] = None, ssrc: Optional[int] = None) -> int:
        """Add a stream to ``remote`` (numeric host, port); returns its id (for ``remove``).

        Args:
            remote: the destination; its family must be the socket's.
            audio: encoded G.711 (the fan-out's payload type) played in a loop; None sends silence. A prompt
                shared by many streams is stored once (streams given equal bytes share them).
            ssrc: the stream's SSRC (random by default).

        Raises:
            ValueError: a bad address, audio shorter than one packet, or a closed fan-out.
        """
        if self._closed:
            raise ValueError("the fan-out is closed")
        row = _sockaddr(self.family, remote)
        if audio is not None:
            audio = bytes(audio)
            if len(audio) < self.samples:
                raise ValueError(f"audio must hold at least one packet ({self.samples} bytes), got {len(audio)}")
        if ssrc is None:
            ssrc = secrets.randbits(32)
        elif not isinstance(ssrc, int) or not 0 <= ssrc <= 0xFFFFFFFF:
            raise ValueError(f"ssrc must be in 0..4294967295, got {ssrc!r}")
        if not self._free:
            self._grow()
        sid = self._free.pop()
        pkt = self._packets[sid]
        pkt[0] = 0x80
        pkt[1] = 0x80 | self.payload_type  # marker on the first packet
        pkt[8:12] = np.frombuffer(ssrc.to_bytes(4, "big"), dtype=np.uint8)
        pkt[12:] = self._silence
        self._seqs[sid] = secrets.randbits(16)
        self._tss[sid] = secrets.randbits(32)
        self._ssrcs[sid] = ssrc
        self._addrs[sid] = np.frombuffer(row, dtype=np.uint8)
        self._cursors[sid] = (*self._prompt(audio), 0) if audio is not None else (0, 0, 0)
        phase = self._next_phase
        self._next_phase = (phase + 1) % self.phases
        self._groups[phase].append(sid)
        self._group_idx[phase] = None
        self._phase_of[sid] = phase
        return sid

    def remove(self, sid: int) -> None:
        """Stop stream ``sid`` (unknown ids are ignored)."""
        phase = self._phase_of.pop(sid, None)
        if phase is None:
            return
        self._groups[phase].remove(sid)
        self._group_idx[phase] = None
        self._free.append(sid)

    def ssrc(self, sid: int) -> int:
        """The SSRC of stream ``sid``."""
        if sid not in self._phase_of:
            raise KeyError(sid)
        return int(self._ssrcs[sid])

    # -- running ---------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return bool(self._pacers)

    def start(self, at: Optional[float] = None) -> None:
        """Start sending: group g's first packets are due at ``at + g·ptime/phases`` (default ``at``: now)."""
        if self._closed:
            raise ValueError("the fan-out is closed")
        if self._pacers:
            return
        base = self.clock.time() if at is None else at
        step = self.ptime / self.phases
        self._pacers = [
            Pacer(self.clock, self.ptime, self._tick_for(g), start=base + g * step, on_skip=self._on_skip(g))
            for g in range(self.phases)
        ]

    def stop(self) -> None:
        """Stop sending (``start()`` resumes; the streams keep their sequence numbers and timestamps)."""
        for p in self._pacers:
            p.stop()
        self._pacers = []

    def close(self) -> None:
        """Stop and close the socket."""
        self.stop()
        if not self._closed:
            self._closed = True
            self.sock.close()

    def __enter__(self) -> "RtpFanout":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_skip(self, g: int) -> Callable[[int], None]:
        def skipped(k: int) -> None:
            idx = np.array(self._groups[g], dtype=np.intp)
            self.skipped += k * len(idx)
            # the timestamps jump over the skipped slots and the next packet opens a talk spurt (marker); the
            # sequence numbers continue, since no packet was lost (RFC 3550 §5.1)
            self._tss[idx] += np.uint32((k * self.samples) & 0xFFFFFFFF)
            self._packets[idx, 1] |= 0x80
            logger.debug("[RTP] fan-out phase %d late: skipped %d packets", g, k * len(idx))

        return skipped

    def _tick_for(self, g: int) -> Callable[[int, float], None]:
        send = _udp.send_rtp_batch_to
        length = self._width
        step = self.samples
        fd = self.sock.fileno()
        scratch = np.zeros(0)

        def tick(_n: int, deadline: float) -> None:
            nonlocal scratch
            idx = self._group_idx[g]
            if idx is None:
                idx = self._group_idx[g] = np.array(self._groups[g], dtype=np.uint32)
            m = len(idx)
            if not m:
                return
            rec = self._record
            pos = self._recorded
            if pos + m <= rec.shape[1]:
                out, at = rec[0], pos
                self._recorded = pos + m
                rec[1, pos : pos + m] = deadline
            else:
                if len(scratch) < m:
                    scratch = np.zeros(m)
                out, at = scratch, 0
            ok, bad = send(fd, self._packets, idx, length, self._seqs, self._tss, step, self._addrs, self._audio,
                           self._cursors, out, at)
            self.sent += ok
            self.failed += bad

        return tick

    def lateness(self) -> np.ndarray:
        """Seconds each recorded packet left after its deadline (``record`` packets at most, in send order)."""
        n = self._recorded
        return np.asarray(self._record[0, :n] - self._record[1, :n])

