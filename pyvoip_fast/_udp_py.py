"""Pure-Python twin of ``pyvoip_fast._udp`` (ext/udp.pyx): batched RTP send and socket draining.

Same API and exceptions as the compiled module; much slower (a Python loop of ``os.write``/``recv``), used where
no compiler is available and as the oracle in parity tests. See ext/udp.pyx for the strategy.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Tuple

__all__ = ["monotonic", "send_rtp_batch", "recv_drain"]


def monotonic() -> float:
    """CLOCK_MONOTONIC in seconds (the clock of ``time.monotonic()`` and asyncio's ``loop.time()``)."""
    return time.monotonic()


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
    nstreams = len(fds)
    if len(packets) != nstreams or len(seqs) != nstreams or len(timestamps) != nstreams:
        raise ValueError("fds, packets, seqs and timestamps must have one entry per stream")
    width = packets.shape[1]
    if length < 12 or length > width:
        raise ValueError(f"length must be within 12..{width}, got {length}")
    count = len(streams)
    if out_pos < 0 or count > len(sent_at) - out_pos:
        raise ValueError("sent_at is too short for this batch")
    for s in streams:
        if int(s) >= nstreams:
            raise ValueError(f"stream index {int(s)} out of range (0..{nstreams - 1})")
    sent = failed = 0
    now = time.monotonic
    for i, s in enumerate(streams):
        row = packets[s]
        q = int(seqs[s])
        t = int(timestamps[s])
        row[2] = q >> 8
        row[3] = q & 0xFF
        row[4] = t >> 24
        row[5] = (t >> 16) & 0xFF
        row[6] = (t >> 8) & 0xFF
        row[7] = t & 0xFF
        try:
            os.write(int(fds[s]), row[:length].tobytes())
            sent += 1
        except OSError:
            failed += 1
        sent_at[out_pos + i] = now()
        seqs[s] = (q + 1) & 0xFFFF
        timestamps[s] = (t + ts_step) & 0xFFFFFFFF
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
