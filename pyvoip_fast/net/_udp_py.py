"""Pure-Python twin of ``pyvoip_fast._udp`` (ext/udp.pyx): batched RTP send and socket draining.

Same API and exceptions as the compiled module; much slower (a Python loop of ``os.write``/``recv``), used where
no compiler is available and as the oracle in parity tests. See ext/udp.pyx for the strategy.
"""

from __future__ import annotations

import errno
import math
import operator
import os
import socket
import struct
import sys
import time
from typing import Any, List, Tuple

__all__ = ["PORTABLE", "monotonic", "send_rtp_batch", "send_rtp_batch_to", "recv_drain", "recv_stamped", "timer_open", "timer_arm",
           "timer_disarm", "timer_ack"]

#: the twin has no batched system calls and no timerfd of its own: a loop of recvmsg/sendmsg (as the compiled
#: module's portable build on systems without recvmmsg); timers through os.timerfd_* where Python has them
PORTABLE = True


def monotonic() -> float:
    """CLOCK_MONOTONIC in seconds (the clock of ``time.monotonic()`` and asyncio's ``loop.time()``)."""
    return time.monotonic()


_SSIZE = (-(1 << 63), (1 << 63) - 1)
_U32 = (0, 0xFFFFFFFF)
_INT = (-(1 << 31), (1 << 31) - 1)


def _c_int(value: Any, bounds: Tuple[int, int], what: str) -> int:
    """The compiled module's conversion of an argument to a C integer: TypeError for a non-integer, OverflowError
    for a value outside the C type (before any other check, as Cython converts arguments on entry)."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}") from None
    if not bounds[0] <= v <= bounds[1]:
        raise OverflowError(f"{what} {v} does not fit its C type")
    return v


def _span(table: Any, written: bool) -> Tuple[int, int, bool]:
    """A table's byte range in memory (empty for an empty table or one that exposes no address)."""
    iface = getattr(table, "__array_interface__", None)
    size = int(getattr(table, "nbytes", 0) or 0)
    if iface is None or size == 0:
        return (0, 0, written)
    return (int(iface["data"][0]), int(iface["data"][0]) + size, written)


def _no_overlap(tables: Any, names: Tuple[str, ...]) -> None:
    """ValueError when a table the batch writes shares memory with another argument (see the compiled module)."""
    spans = [_span(t, w) for t, w in tables]
    for i, (lo, hi, written) in enumerate(spans):
        if not written or lo == hi:
            continue
        for j, (lo2, hi2, _) in enumerate(spans):
            if j != i and lo2 != hi2 and lo < hi2 and lo2 < hi:
                raise ValueError(f"{names[min(i, j)]} and {names[max(i, j)]} share memory, and the batch writes "
                                 f"{names[i]}")


def _check_batch(packets: Any, streams: Any, length: int, sent_at: Any, out_pos: int, nstreams: int) -> None:
    """The checks both batch senders make before touching anything (same messages as the compiled module)."""
    width = packets.shape[1]
    if length < 12 or length > width:
        raise ValueError(f"length must be within 12..{width}, got {length}")
    if out_pos < 0 or len(streams) > len(sent_at) - out_pos:
        raise ValueError("sent_at is too short for this batch")
    for s in streams:
        if int(s) >= nstreams:
            raise ValueError(f"stream index {int(s)} out of range (0..{nstreams - 1})")


def send_rtp_batch(
    fds: Any,
    packets: Any,
    streams: Any,
    length: int,
    seqs: Any,
    timestamps: Any,
    ts_step: int,
    sent_at: Any,
    out_pos: int,
) -> Tuple[int, int]:
    """Stamp and send one RTP packet for each stream index in ``streams`` (see the compiled module)."""
    length = _c_int(length, _SSIZE, "length")
    ts_step = _c_int(ts_step, _U32, "ts_step")
    out_pos = _c_int(out_pos, _SSIZE, "out_pos")
    nstreams = len(fds)
    if len(packets) != nstreams or len(seqs) != nstreams or len(timestamps) != nstreams:
        raise ValueError("fds, packets, seqs and timestamps must have one entry per stream")
    _no_overlap([(fds, False), (packets, True), (streams, False), (seqs, True), (timestamps, True), (sent_at, True)],
                ("fds", "packets", "streams", "seqs", "timestamps", "sent_at"))
    _check_batch(packets, streams, length, sent_at, out_pos, nstreams)
    sent = failed = 0
    now = time.monotonic
    for i, s in enumerate(streams):
        row = packets[s]
        q = int(seqs[s])
        t = int(timestamps[s])
        row[2:8] = list(q.to_bytes(2, "big") + t.to_bytes(4, "big"))
        try:
            os.write(int(fds[s]), row[:length].tobytes())
            sent += 1
        except OSError:
            failed += 1
        sent_at[out_pos + i] = now()
        seqs[s] = (q + 1) & 0xFFFF
        timestamps[s] = (t + ts_step) & 0xFFFFFFFF
    return sent, failed


def _sockaddr(row: Any) -> Tuple[Any, ...]:
    """Decode a raw sockaddr_in / sockaddr_in6 (family in native order) into a socket-module address."""
    fam = int.from_bytes(bytes(row[0:2]), sys.byteorder)
    port = int.from_bytes(bytes(row[2:4]), "big")
    if fam == socket.AF_INET:
        return socket.AF_INET, (socket.inet_ntop(socket.AF_INET, bytes(row[4:8])), port)
    flow = int.from_bytes(bytes(row[4:8]), "big")
    scope = int.from_bytes(bytes(row[24:28]), sys.byteorder)
    return socket.AF_INET6, (socket.inet_ntop(socket.AF_INET6, bytes(row[8:24])), port, flow, scope)


def send_rtp_batch_to(
    fd: int,
    packets: Any,
    streams: Any,
    length: int,
    seqs: Any,
    timestamps: Any,
    ts_step: int,
    addrs: Any,
    audio: Any,
    cursors: Any,
    sent_at: Any,
    out_pos: int,
) -> Tuple[int, int]:
    """Stamp, refill and send one RTP packet per stream in ``streams`` from one socket (see the compiled module)."""
    fd = _c_int(fd, _INT, "fd")
    length = _c_int(length, _SSIZE, "length")
    ts_step = _c_int(ts_step, _U32, "ts_step")
    out_pos = _c_int(out_pos, _SSIZE, "out_pos")
    nstreams = len(packets)
    if len(seqs) != nstreams or len(timestamps) != nstreams or len(addrs) != nstreams or len(cursors) != nstreams:
        raise ValueError("packets, seqs, timestamps, addrs and cursors must have one entry per stream")
    if addrs.shape[1] < 28:
        raise ValueError(f"addrs rows must hold at least 28 bytes, got {addrs.shape[1]}")
    if cursors.shape[1] != 3:
        raise ValueError("cursors rows must be (start, size, position)")
    _no_overlap([(packets, True), (streams, False), (seqs, True), (timestamps, True), (addrs, False), (audio, False),
                 (cursors, True), (sent_at, True)],
                ("packets", "streams", "seqs", "timestamps", "addrs", "audio", "cursors", "sent_at"))
    _check_batch(packets, streams, length, sent_at, out_pos, nstreams)
    plen = length - 12
    for s in streams:
        s = int(s)
        fam = int.from_bytes(bytes(addrs[s][0:2]), sys.byteorder)
        if fam not in (socket.AF_INET, socket.AF_INET6):
            raise ValueError(f"stream {s}: unsupported address family {fam}")
        a0, asz, apos = (int(x) for x in cursors[s])
        if asz != 0 and (a0 < 0 or asz < plen or a0 > len(audio) - asz or apos < 0 or apos >= asz):
            raise ValueError(f"stream {s}: audio range ({a0}, {asz}, {apos}) outside the audio buffer "
                             f"of {len(audio)} bytes or shorter than one payload of {plen}")
    sock = socket.socket(fileno=os.dup(fd))
    sent = failed = 0
    now = time.monotonic
    try:
        for i, s in enumerate(streams):
            s = int(s)
            row = packets[s]
            q = int(seqs[s])
            t = int(timestamps[s])
            row[2:8] = list(q.to_bytes(2, "big") + t.to_bytes(4, "big"))
            seqs[s] = (q + 1) & 0xFFFF
            timestamps[s] = (t + ts_step) & 0xFFFFFFFF
            a0, asz, apos = (int(x) for x in cursors[s])
            if asz and plen:
                frame = bytes(audio[a0 + apos : a0 + min(asz, apos + plen)])
                if len(frame) < plen:
                    frame += bytes(audio[a0 : a0 + plen - len(frame)])
                row[12:length] = list(frame)
                cursors[s, 2] = (apos + plen) % asz
            family, address = _sockaddr(addrs[s])
            try:
                if family != sock.family:  # what the kernel says of it: EAFNOSUPPORT / EINVAL
                    raise OSError(errno.EAFNOSUPPORT, "address family does not match the socket")
                sock.sendto(row[:length].tobytes(), address)
                sent += 1
            except OSError:
                failed += 1
            sent_at[out_pos + i] = now()
            row[1] &= 0x7F
    finally:
        sock.close()  # the duplicate descriptor only
    return sent, failed


def recv_drain(fd: int, limit: int = 1 << 30) -> int:
    """Read and discard datagrams from a non-blocking socket until it is empty; returns how many were read."""
    sock = socket.socket(fileno=os.dup(fd))
    sock.setblocking(False)
    total = 0
    buf = bytearray(2048)
    try:
        while total < limit:
            try:
                sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                break
            total += 1
    finally:
        sock.close()
    return total


_SCM_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")


def recv_stamped(fd: int, limit: int = 64) -> Tuple[List[Tuple[bytes, Any, float]], int]:
    """Read what is waiting, each datagram with its kernel receive time; see ext/udp.pyx for the contract."""
    fd = _c_int(fd, _INT, "fd")
    limit = _c_int(limit, _SSIZE, "limit")
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    sock = socket.socket(fileno=os.dup(fd))
    sock.setblocking(False)
    out: List[Tuple[bytes, Any, float]] = []
    err = 0
    space = socket.CMSG_SPACE(_TIMESPEC.size)
    tries = 0
    try:
        while len(out) < limit:
            try:
                data, ancdata, _flags, addr = sock.recvmsg(2048, space)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                err = exc.errno or 0
                if err in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH) and tries < 8:
                    tries += 1  # an ICMP error reported once: the data waiting is still there
                    continue
                break
            stamp = -1.0
            for level, kind, raw in ancdata:
                if level == socket.SOL_SOCKET and kind == _SCM_TIMESTAMPNS and len(raw) >= _TIMESPEC.size:
                    sec, nsec = _TIMESPEC.unpack_from(raw)
                    stamp = sec + nsec * 1e-9
                    break
            out.append((data, addr, stamp))
    finally:
        sock.close()  # the duplicate descriptor only
    return out, err


# -- timerfd (os.timerfd_* exists from Python 3.13 on Linux; older interpreters report ENOSYS and the media clock
#    falls back to loop.call_at)


def timer_open() -> int:
    """Create a non-blocking, close-on-exec timerfd on CLOCK_MONOTONIC, disarmed; returns its descriptor."""
    create = getattr(os, "timerfd_create", None)
    if create is None:
        raise OSError(errno.ENOSYS, "timerfd is not available in this Python")
    # the TFD_* constants exist from Python 3.13 on (getattr: typed the same on every version mypy checks)
    fd: int = create(time.CLOCK_MONOTONIC, flags=getattr(os, "TFD_NONBLOCK") | getattr(os, "TFD_CLOEXEC"))
    return fd


def timer_arm(fd: int, when: float) -> None:
    """Arm timerfd ``fd`` to expire once at the absolute CLOCK_MONOTONIC time ``when`` (seconds)."""
    if not (isinstance(when, (int, float)) and 0.0 < when < 1e15 and math.isfinite(when)):
        raise ValueError(f"when must be a positive, finite monotonic time, got {when!r}")
    settime = getattr(os, "timerfd_settime", None)
    if settime is None:
        raise OSError(errno.ENOSYS, "timerfd is not available in this Python")
    settime(fd, flags=getattr(os, "TFD_TIMER_ABSTIME"), initial=float(when))


def timer_disarm(fd: int) -> None:
    """Stop timerfd ``fd`` (a pending expiry is dropped)."""
    settime = getattr(os, "timerfd_settime", None)
    if settime is None:
        raise OSError(errno.ENOSYS, "timerfd is not available in this Python")
    settime(fd, initial=0.0)


def timer_ack(fd: int) -> int:
    """Consume timerfd ``fd``'s expirations; returns how many there were (0 when it has not expired)."""
    try:
        data = os.read(fd, 8)
    except (BlockingIOError, InterruptedError):
        return 0
    return int.from_bytes(data, sys.byteorder) if len(data) == 8 else 0
