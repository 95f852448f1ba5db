"""``pyvoip-fast bench``: how much real-time headroom this machine has for the media path.

It times one 20 ms PCMU frame through everything a stream does per packet, on both ends:

- send: G.711 encode of 160 samples, RTP header + payload packed into a reused buffer;
- receive: RTP parse, RFC 3550 receiver-statistics update, G.711 decode.

and reports the cost per frame, the real-time factor (seconds of audio handled per second of CPU) and the
number of full-duplex streams one core could carry on that path alone (sockets, scheduling and the jitter buffer
come on top: ``benchmarks/bench_capacity.py`` measures whole streams over real sockets).
"""

from __future__ import annotations

import time
from typing import Callable, List

import numpy as np

from .. import IMPLEMENTATION, __version__
from ..codecs import g711
from ..rtp import RtpPacket, write_header
from ..rtp.stats import ReceiverStats

FRAME = 160  # samples in 20 ms at 8 kHz
FRAME_SECONDS = 0.020


def _speechlike_frames(count: int, seed: int = 1) -> List[bytes]:
    """Distinct 160-sample int16 frames (a wandering harmonic signal plus noise), so no branch predictor can
    memorise one frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(count * FRAME) / 8000.0
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 8000.0
    sig = sum(np.sin(k * phase) / k for k in range(1, 8)) * 6000 + rng.normal(0, 800, t.size)
    pcm = np.clip(sig, -32768, 32767).astype(np.int16)
    return [pcm[i * FRAME : (i + 1) * FRAME].tobytes() for i in range(count)]


def _time_per_call(fn: Callable[[int], None], seconds: float) -> float:
    """Median-of-batches seconds per call of ``fn(i)``."""
    batch = 2000
    results: List[float] = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline or len(results) < 3:
        start = time.perf_counter()
        for _ in range(batch):
            fn(i)
            i += 1
        results.append((time.perf_counter() - start) / batch)
    results.sort()
    return results[len(results) // 2]


def realtime_headroom(seconds: float = 2.0) -> str:
    """Measure and return a printable report (see module docstring)."""
    frames = _speechlike_frames(64)
    n_frames = len(frames)
    buf = bytearray(12 + FRAME)
    view = memoryview(buf)
    packets = []
    for i, f in enumerate(frames):
        write_header(buf, 0, 0, i, i * FRAME, 0x1234ABCD, False)
        g711.ulaw_encode(f, out=view[12:])
        packets.append(bytes(buf))

    def send(i: int) -> None:
        write_header(buf, 0, 0, i & 0xFFFF, (i * FRAME) & 0xFFFFFFFF, 0x1234ABCD, False)
        g711.ulaw_encode(frames[i % n_frames], out=view[12:])

    stats = ReceiverStats(clock_rate=8000)
    t0 = time.perf_counter()

    def receive(i: int) -> None:
        pkt = RtpPacket.parse(packets[i % n_frames])
        stats.update(i & 0xFFFF, (i * FRAME) & 0xFFFFFFFF, t0 + i * FRAME_SECONDS, len(pkt.payload))
        g711.ulaw_decode(pkt.payload)

    share = max(seconds / 2, 0.2)
    t_send = _time_per_call(send, share)
    t_recv = _time_per_call(receive, share)
    per_frame = t_send + t_recv
    rtf = FRAME_SECONDS / per_frame
    lines = [
        f"pyvoip-fast {__version__} bench ({IMPLEMENTATION} implementation)",
        "Per 20 ms PCMU frame (160 samples), median of batches:",
        f"  send    (G.711 encode + RTP header into a reused buffer): {t_send * 1e9:9,.0f} ns",
        f"  receive (RTP parse + RFC 3550 statistics + G.711 decode): {t_recv * 1e9:9,.0f} ns",
        f"  both directions:                                          {per_frame * 1e9:9,.0f} ns",
        f"Real-time factor: {rtf:,.0f}x (seconds of full-duplex audio processed per CPU second)",
        f"Headroom: one core could code and packetise about {rtf:,.0f} full-duplex calls at once",
        "(sockets, pacing and the jitter buffer come on top: see benchmarks/bench_capacity.py)",
    ]
    return "\n".join(lines)
