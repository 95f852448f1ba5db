"""The jitter buffer alone, as a call's tick uses it: compiled vs its pure-Python twin vs aiortc's.

Every call has a time-stretching buffer (the listener's). Each 20 ms tick, every call's buffer takes the
packet that arrived (``put``) and hands out the next slot the way the playout asks for it (``advise``,
``get``, then ``peek`` of one slot ahead for the lookahead concealer). The packets of each call arrive in
order, or with every fifth pair swapped (reordered). Calls are served one after another at each tick, as the
media clock serves a group of calls, so a figure for 200 calls includes their state falling out of the
processor's caches.

aiortc's ``JitterBuffer`` (the buffer of a Python WebRTC stack; it assembles frames and keeps no timing) gets
the same packets as ``RtpPacket`` objects through ``add``, with the capacity and prefetch aiortc uses for
audio. It does less per packet than ours (no delay estimate, no playout clock, no loss accounting): a floor
for the pure Python way, not a like-for-like rival.

Run: ``python benchmarks/bench_jitter.py`` (the table: µs per call and tick, best of 5), or
``python -m pytest benchmarks/bench_jitter.py --benchmark-columns=median,mean``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, List, Optional

import pytest

from pyvoip_fast import _compat

try:
    from aiortc.jitterbuffer import JitterBuffer as AiortcJitterBuffer
    from aiortc.rtp import RtpPacket
except ImportError:  # pragma: no cover - depends on the environment
    AiortcJitterBuffer = None
    RtpPacket = None

FRAME = 160
PAYLOADS = [bytes([k]) * FRAME for k in range(256)]


def _order(ticks: int, reordered: bool) -> List[int]:
    """The packet index arriving at each tick (every fifth pair swapped when ``reordered``)."""
    order = list(range(ticks))
    if reordered:
        for k in range(0, ticks - 1, 10):
            order[k], order[k + 1] = order[k + 1], order[k]
    return order


def make_calls(impl: str, calls: int) -> List[Any]:
    mod = _compat.module_for("_jitter", impl)
    return [mod.TimeStretchJitterBuffer() for _ in range(calls)]


def run_ticks(buffers: List[Any], order: List[int], t0: float, start: int) -> List[int]:
    """Ticks ``start`` .. ``len(order)``: every buffer takes its packet and plays a slot; the played frames of
    the first buffer (their first payload byte) come back."""
    played: List[int] = []
    first = buffers[0]
    for k in range(start, len(order)):
        i = order[k]
        now = t0 + k * 0.02
        seq, ts, payload = i & 0xFFFF, (i * FRAME) & 0xFFFFFFFF, PAYLOADS[i & 255]
        for jb in buffers:
            jb.put(seq, ts, payload, now)
        tick = now + 0.005
        for jb in buffers:
            jb.advise(tick, 0.0)
            kind, got = jb.get(tick)
            jb.peek(1)
            if jb is first and kind == "frame":
                played.append(got[0])
    return played


def make_aiortc(calls: int) -> List[Any]:
    return [AiortcJitterBuffer(capacity=16, prefetch=4) for _ in range(calls)]


def run_aiortc(buffers: List[Any], packets: List[Any]) -> int:
    frames = 0
    for packet in packets:
        for jb in buffers:
            _pli, frame = jb.add(packet)
            if frame is not None:
                frames += 1
    return frames


def _aiortc_packets(order: List[int]) -> List[Any]:
    out = []
    for i in order:
        packet = RtpPacket(payload_type=0, sequence_number=i & 0xFFFF, timestamp=(i * FRAME) & 0xFFFFFFFF,
                           ssrc=1, payload=PAYLOADS[i & 255])
        packet._data = packet.payload  # what aiortc's receiver sets before ``add`` (a G.711 payload as it is)
        out.append(packet)
    return out


def measure(impl: str, calls: int, ticks: int, reordered: bool, repeat: int) -> float:
    """Our buffer (``impl``: "cython" or "python"): µs per call and tick, best of ``repeat`` fresh runs (after 50
    warm-up ticks each)."""
    order = _order(ticks + 50, reordered)

    def one() -> float:
        buffers = make_calls(impl, calls)
        run_ticks(buffers, order[:50], 0.0, 0)
        t = time.perf_counter()
        run_ticks(buffers, order, 0.0, 50)
        return time.perf_counter() - t

    return min(one() for _ in range(repeat)) / (ticks * calls) * 1e6


def measure_aiortc(calls: int, ticks: int, reordered: bool, repeat: int) -> Optional[float]:
    """aiortc's buffer, the same way (None when aiortc is not installed)."""
    if AiortcJitterBuffer is None:
        return None
    packets = _aiortc_packets(_order(ticks + 50, reordered))

    def one() -> float:
        buffers = make_aiortc(calls)
        run_aiortc(buffers, packets[:50])
        t = time.perf_counter()
        run_aiortc(buffers, packets[50:])
        return time.perf_counter() - t

    return min(one() for _ in range(repeat)) / (ticks * calls) * 1e6


# ------------------------------------------------------------------ pytest (timing, and a smoke test)
def _check_played(played: List[int], ticks: int) -> None:
    # every packet is played once, in order, after the buffer's opening delay
    assert len(played) >= ticks - 10
    assert played == [k & 255 for k in range(played[0], played[0] + len(played))]


@pytest.mark.parametrize("reordered", [False, True], ids=["in-order", "reordered"])
@pytest.mark.parametrize("impl", ["cython", "python"])
def test_jitter_buffer_tick_20_calls_100_ticks(benchmark: Any, impl: str, reordered: bool) -> None:
    from helpers import skip_or_fail

    if impl == "cython" and (_compat.NO_EXTENSIONS or "_jitter" in _compat.MISSING_EXTENSIONS):
        skip_or_fail("the compiled jitter buffer is not built")
    order = _order(100, reordered)
    results: List[List[int]] = []

    def run() -> None:
        results.append(run_ticks(make_calls(impl, 20), order, 0.0, 0))

    benchmark.group = "jitter-buffer-20-calls-x100-ticks"
    benchmark(run)
    _check_played(results[-1], 100)


def test_jitter_buffer_aiortc_20_calls_100_packets(benchmark: Any) -> None:
    from helpers import skip_or_fail

    if AiortcJitterBuffer is None:
        skip_or_fail("aiortc is not installed (pip install .[bench])")
    packets = _aiortc_packets(_order(100, False))
    frames: List[int] = []

    def run() -> None:
        frames.append(run_aiortc(make_aiortc(20), packets))

    benchmark.group = "jitter-buffer-20-calls-x100-ticks"
    benchmark(run)
    assert frames[-1] >= 20 * 90  # aiortc hands out a frame per packet once its prefetch is filled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", default="1,200",
                    help="calls served at every tick, comma-separated (default 1,200)")
    ap.add_argument("--ticks", type=int, default=500, help="ticks measured per run (default 500)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per figure; the best is kept (default 5)")
    args = ap.parse_args()
    print("| calls | packets | compiled µs | twin µs | twin / compiled | aiortc µs (add only) |")
    print("|---:|---|---:|---:|---:|---:|")
    for calls in [int(c) for c in args.calls.split(",")]:
        for reordered in (False, True):
            c = measure("cython", calls, args.ticks, reordered, args.repeat)
            p = measure("python", calls, args.ticks, reordered, args.repeat)
            a = measure_aiortc(calls, args.ticks, reordered, args.repeat)
            kind = "reordered" if reordered else "in order"
            rival = "—" if a is None else f"{a:.2f}"
            print(f"| {calls} | {kind} | {c:.2f} | {p:.2f} | {p / c:.1f}× | {rival} |")


if __name__ == "__main__":
    main()
