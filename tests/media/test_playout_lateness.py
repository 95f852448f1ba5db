"""A media tick that runs late plays its slot as if on time: the time-stretcher measures the jitter buffer's delay at
the slot's deadline (the packets carry the kernel's arrival times), so a stalled event loop does not make it shrink
the delay and then grow it back once the clock has caught up."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import struct
import time
from typing import Any, Tuple

import numpy as np

from mediakit import ListSink, params, run, speech_like
from pyvoip_fast.codecs import g711
from pyvoip_fast.media import MediaSession

FRAME = 160  # samples of 20 ms at 8 kHz


def _talk_and_pause(seconds: float) -> np.ndarray:
    """Speech-like audio in 300 ms bursts with 300 ms pauses (where a shrink is allowed to land)."""
    pcm = speech_like(seconds, seed=4)
    on = (np.arange(len(pcm)) // 2400) % 2 == 0
    return np.where(on, pcm, 0).astype(np.int16)


def _send_on_time(port: int, stop: Any, seconds: float) -> None:
    """A peer that is not the code under test: one PCMU packet every 20 ms on an exact grid, from its own process
    (it keeps its schedule while the session's loop is stalled, and never waits for our interpreter lock)."""
    pcm = _talk_and_pause(seconds)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        start, k = time.perf_counter(), 0
        while not stop.is_set() and (k + 1) * FRAME <= len(pcm):
            while (wait := start + k * 0.02 - time.perf_counter()) > 0:
                time.sleep(min(wait, 0.002))
            header = struct.pack("!BBHII", 0x80, 0, k & 0xFFFF, k * FRAME, 0x5EED)
            sock.sendto(header + g711.ulaw_encode(pcm[k * FRAME : (k + 1) * FRAME]), ("127.0.0.1", port))
            k += 1
    finally:
        sock.close()


def _stretch_events(session: MediaSession) -> Tuple[int, int]:
    stats = session.stats
    return int(stats.frames_stretched), int(stats.frames_shrunk)


def test_a_stalled_loop_does_not_make_the_time_stretcher_shrink_and_regrow_the_delay() -> None:
    async def main() -> Tuple[Tuple[int, int], Tuple[int, int], int]:
        session = await MediaSession.create("127.0.0.1")
        ctx = multiprocessing.get_context("fork")
        stop = ctx.Event()
        peer = ctx.Process(target=_send_on_time, args=(session.local_rtp_port, stop, 12.0), daemon=True)
        sink = ListSink()
        try:
            session.start(params(9, direction="recvonly"), sink=sink)
            peer.start()
            await asyncio.sleep(3.5)  # the buffer starts and settles (its target delay comes down: 4 shrinks)
            settled = _stretch_events(session)
            for _ in range(20):  # the loop stalls 45 ms every 300 ms: each stall makes the media ticks late
                await asyncio.sleep(0.255)
                time.sleep(0.045)
            stalled = _stretch_events(session)
            return settled, stalled, len(sink.frames)
        finally:
            stop.set()
            peer.join(5)
            if peer.is_alive():
                peer.kill()
            await session.stop()

    (grown0, shrunk0), (grown1, shrunk1), played = run(main())
    assert played > 300  # the stream played throughout
    # Measured at the time the late tick ran, each stall looked like 25-45 ms of extra delay: the buffer shrank a
    # frame (in a pause) and grew it back at the next on-time tick (before the fix: 3-6 regrowths here). Shrinks alone
    # may still come while the target delay settles; growing back means a shrink was wrong.
    assert grown1 - grown0 <= 1, (grown0, grown1, shrunk0, shrunk1)
