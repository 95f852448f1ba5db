"""Capacity: how many concurrent 20 ms PCMU streams one process sends on one core, and how punctually.

Each design sends N streams of 172-byte RTP packets (12-byte header + 160 bytes of μ-law) every 20 ms from
127.0.0.1, one UDP socket per stream (as calls have), to a receiver in another process
(``_capacity_receiver.py``) that counts what arrives. We measure every packet's lateness against its deadline
(start + n·20 ms, CLOCK_MONOTONIC) and the loss (scheduled − received). Designs, side by side in one run:

- ``naive``: one asyncio task per stream sleeping to its next deadline (``asyncio.sleep``), ``sock.send``.
- ``clock-python``: one ``Pacer`` per stream on the shared ``MediaClock`` (one timer for all), header stamped
  with ``struct`` and ``sock.send`` from Python; this is the per-packet work of ``MediaSession``.
- ``clock-batch``: the ``MediaClock`` with streams grouped on a 1 ms phase grid; each tick's packets are
  stamped and sent in one call to ``pyvoip_fast.net._udp.send_rtp_batch`` (a C loop without the GIL).

Every run starts with a full garbage collection, then freezes the surviving objects and disables the collector
until it ends, as a media server's hot loop would. The receiver drains on a 2 ms timer instead of blocking on
the socket. On loopback the receive path runs on the sending core, so a blocked receiver would make every send
pay for waking it.

Smoke mode (the default under ``--benchmark-disable`` or without ``PYVOIP_BENCH_FULL=1``): 20 streams for
about a second per design. Full run::

    PYVOIP_BENCH_FULL=1 python -m pytest benchmarks/bench_capacity.py -s --benchmark-only
    python benchmarks/bench_capacity.py --seconds 5 --naive 500,1000 --clock 1000,2000 --batch 1000,3000,5000
"""

from __future__ import annotations

import os

# numpy's OpenBLAS starts a worker thread per core whose idle loop spins for a while; on a 2-core machine that
# competes with the sender and the receiver for the very cores being measured (3,000 streams lost 150 packets
# to it in one run here). A real-time media process should run with one BLAS thread; set it before numpy loads
# (under pytest numpy is usually loaded already: export the variable for a full run there).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import gc  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Dict, List, Optional  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pyvoip_fast import _compat  # noqa: E402
from pyvoip_fast.codecs import g711  # noqa: E402
from pyvoip_fast.media.fanout import RtpFanout  # noqa: E402
from pyvoip_fast.media import MediaClock, Pacer  # noqa: E402

_udp = _compat.load("_udp")

PTIME = 0.020
PACKET = 172
#: one second of a 440 Hz tone in PCMU, the fan-out streams' prompt (their payload changes every packet)
PROMPT = bytes(g711.ulaw_encode((6000 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000.0)).astype(np.int16)))
FULL = os.environ.get("PYVOIP_BENCH_FULL", "") not in ("", "0")
#: MediaClock wakes from a timerfd (True) or from loop.call_at (False; --coarse)
PRECISE = True
HERE = Path(__file__).resolve().parent


class Receiver:
    """The counting receiver process."""

    def __init__(self, cpu: Optional[int] = None) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(HERE.parent) + os.pathsep + env.get("PYTHONPATH", "")
        args = [sys.executable, str(HERE / "_capacity_receiver.py")] + ([str(cpu)] if cpu is not None else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            self.close()
            raise RuntimeError(f"receiver did not start: {line}")
        self.port = int(line[1])

    def count(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(3)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


@dataclass
class Result:
    design: str
    streams: int
    seconds: float
    scheduled: int
    sent: int
    received: int
    skipped: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    steal_ms: float = 0.0

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.scheduled if self.scheduled else 0.0

    def row(self) -> str:
        return (
            f"{self.design:<13} {self.streams:>6} {self.scheduled:>9,} {self.received:>9,} {self.loss * 100:>6.2f}% "
            f"{self.skipped:>6} {self.p50_ms:>7.2f} {self.p99_ms:>7.2f} {self.max_ms:>8.2f} {self.steal_ms:>7.0f}"
        )


HEADER = f"{'design':<13} {'streams':>6} {'scheduled':>9} {'received':>9} {'loss':>7} {'skips':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>8} {'steal':>7}"


def steal_ms() -> float:
    """CPU time the hypervisor took from this VM's CPUs so far, all CPUs together (Linux /proc/stat; else 0).

    A virtual CPU that is not running cannot send: steal during a run shows up as lateness that no design can
    avoid, so every row reports how much there was.
    """
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return float(fields[8]) * 1000.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _sockets(n: int, port: int) -> List[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def _payload() -> bytes:
    t = np.arange(160) / 8000.0
    return bytes(g711.ulaw_encode((6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)))


async def _naive(n: int, seconds: float, port: int) -> tuple:
    loop = asyncio.get_running_loop()
    socks = _sockets(n, port)
    k = int(seconds / PTIME)
    late = np.zeros((n, k))
    sent = [0]
    payload = _payload()
    base = loop.time() + 0.2

    async def stream(i: int) -> None:
        sock = socks[i]
        buf = bytearray(12) + payload
        ssrc = random.getrandbits(32)
        seq, ts = random.getrandbits(16), random.getrandbits(32)
        start = base + random.random() * PTIME
        row = late[i]
        for j in range(k):
            d = start + j * PTIME
            wait = d - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            struct.pack_into("!BBHII", buf, 0, 0x80, 0, (seq + j) & 0xFFFF, (ts + 160 * j) & 0xFFFFFFFF, ssrc)
            try:
                sock.send(buf)
                sent[0] += 1
            except OSError:
                pass
            row[j] = loop.time() - d

    await asyncio.gather(*(stream(i) for i in range(n)))
    for s in socks:
        s.close()
    return late.ravel(), sent[0], 0


async def _clock_python(n: int, seconds: float, port: int) -> tuple:
    loop = asyncio.get_running_loop()
    clock = MediaClock(loop, precise=PRECISE)
    socks = _sockets(n, port)
    k = int(seconds / PTIME)
    late: List[float] = []
    sent = [0]
    payload = _payload()
    base = loop.time() + 0.2
    done = asyncio.Event()
    remaining = [n]
    pacers: List[Pacer] = []
    pack = struct.Struct("!BBHII").pack_into

    def make(i: int) -> Callable[[int, float], None]:
        sock = socks[i]
        buf = bytearray(12) + payload
        ssrc = random.getrandbits(32)
        seq, ts = random.getrandbits(16), random.getrandbits(32)
        send = sock.send
        append = late.append
        now = loop.time

        def slot(j: int, deadline: float) -> None:
            if j >= k:
                pacers[i].stop()
                remaining[0] -= 1
                if not remaining[0]:
                    done.set()
                return
            pack(buf, 0, 0x80, 0, (seq + j) & 0xFFFF, (ts + 160 * j) & 0xFFFFFFFF, ssrc)
            try:
                send(buf)
                sent[0] += 1
            except OSError:
                pass
            append(now() - deadline)

        return slot

    for i in range(n):
        pacers.append(Pacer(clock, PTIME, make(i), start=base + random.random() * PTIME))
    await done.wait()
    for s in socks:
        s.close()
    return np.array(late), sent[0], sum(p.skipped for p in pacers)


async def _clock_batch(n: int, seconds: float, port: int, phases: int = 20) -> tuple:
    loop = asyncio.get_running_loop()
    clock = MediaClock(loop, precise=PRECISE)
    socks = _sockets(n, port)
    k = int(seconds / PTIME)
    fds = np.array([s.fileno() for s in socks], dtype=np.int32)
    packets = np.zeros((n, PACKET), dtype=np.uint8)
    packets[:, 0] = 0x80
    packets[:, 12:] = np.frombuffer(_payload(), dtype=np.uint8)
    ssrcs = np.random.default_rng().integers(0, 2**32, n, dtype=np.uint32)
    packets[:, 8:12] = ssrcs.astype(">u4").view(np.uint8).reshape(n, 4)
    seqs = np.random.default_rng().integers(0, 2**16, n, dtype=np.uint16)
    tss = np.random.default_rng().integers(0, 2**32, n, dtype=np.uint32)
    sent_at = np.zeros(n * k + n)
    deadlines = np.zeros(n * k + n)
    pos = [0]
    sent = [0]
    groups = [np.arange(g, n, phases, dtype=np.uint32) for g in range(phases)]
    base = loop.time() + 0.2
    done = asyncio.Event()
    remaining = [phases]
    pacers: List[Pacer] = []
    send_batch = _udp.send_rtp_batch

    def make(g: int) -> Callable[[int, float], None]:
        idx = groups[g]
        m = len(idx)

        def slot(j: int, deadline: float) -> None:
            if j >= k or m == 0:
                pacers[g].stop()
                remaining[0] -= 1
                if not remaining[0]:
                    done.set()
                return
            p = pos[0]
            ok, _failed = send_batch(fds, packets, idx, PACKET, seqs, tss, 160, sent_at, p)
            deadlines[p : p + m] = deadline
            pos[0] = p + m
            sent[0] += ok

        return slot

    for g in range(phases):
        pacers.append(Pacer(clock, PTIME, make(g), start=base + g * PTIME / phases))
    await done.wait()
    for s in socks:
        s.close()
    p = pos[0]
    return sent_at[:p] - deadlines[:p], sent[0], sum(p.skipped for p in pacers) * (n // phases)


async def _fanout(n: int, seconds: float, port: int) -> tuple:
    k = int(seconds / PTIME)
    fan = RtpFanout(("127.0.0.1", 0), ptime=PTIME, clock=MediaClock(asyncio.get_running_loop(), precise=PRECISE),
                    record=n * k + n)
    try:
        for _ in range(n):
            fan.add(("127.0.0.1", port), audio=PROMPT)
        base = fan.clock.time() + 0.2
        fan.start(at=base)
        # every group has sent its k-th packet 1 ms before base + k·ptime, when group 0's (k+1)-th is due
        done = asyncio.get_running_loop().create_future()
        fan.clock.call_at(base + k * PTIME - 0.00025, lambda _t: done.done() or done.set_result(None))
        await done
        fan.stop()
        late = fan.lateness()
        # the stop is timed to the last slot; report what was really due so an extra packet cannot hide a loss
        return late, fan.sent, fan.skipped, fan.sent + fan.failed + fan.skipped
    finally:
        fan.close()


def kernel_send_cost(port: int, n: int = 1000, rounds: int = 10) -> float:
    """Seconds per datagram of the bare C send loop (``send_rtp_batch``) to the receiver: the kernel's floor.

    One core cannot send more than ``1 / cost`` datagrams per second whatever the Python design.
    """
    socks = _sockets(n, port)
    try:
        fds = np.array([s.fileno() for s in socks], dtype=np.int32)
        packets = np.zeros((n, PACKET), dtype=np.uint8)
        packets[:, 0] = 0x80
        seqs = np.zeros(n, dtype=np.uint16)
        tss = np.zeros(n, dtype=np.uint32)
        sent_at = np.zeros(n)
        idx = np.arange(n, dtype=np.uint32)
        best = float("inf")
        for _ in range(rounds):
            t = time.perf_counter()
            _udp.send_rtp_batch(fds, packets, idx, PACKET, seqs, tss, 160, sent_at, 0)
            best = min(best, time.perf_counter() - t)
            time.sleep(0.02)
        return best / n
    finally:
        for s in socks:
            s.close()


DESIGNS: Dict[str, Callable[..., object]] = {
    "naive": _naive,
    "clock-python": _clock_python,
    "clock-batch": _clock_batch,
    "fanout": _fanout,
}


def measure(design: str, n: int, seconds: float, receiver: Receiver) -> Result:
    """Run one design with ``n`` streams for ``seconds`` and collect lateness and loss."""
    before = receiver.count()
    # A full (generation 2) collection during a run stalls every stream at once: 38 ms was seen at 3,000
    # streams, from the return tuple of one batch call. A media server would do the same: freeze what setup
    # allocated and keep the collector out of the hot loop (the run allocates almost nothing that lives).
    gc.collect()
    gc.freeze()
    gc.disable()
    stolen = steal_ms()
    try:
        out = asyncio.run(DESIGNS[design](n, seconds, receiver.port))  # type: ignore[arg-type]
        late, sent, skipped = out[:3]  # type: ignore[index]
        due = out[3] if len(out) > 3 else None  # type: ignore[arg-type, index]
    finally:
        gc.enable()
        gc.unfreeze()
    stolen = steal_ms() - stolen
    time.sleep(0.3)  # in-flight datagrams
    received = receiver.count() - before
    k = int(seconds / PTIME)
    lat = np.asarray(late) * 1000.0
    return Result(
        design=design,
        streams=n,
        seconds=seconds,
        scheduled=n * k if due is None else due,
        sent=sent,
        received=received,
        skipped=skipped,
        p50_ms=float(np.percentile(lat, 50)) if len(lat) else 0.0,
        p99_ms=float(np.percentile(lat, 99)) if len(lat) else 0.0,
        max_ms=float(np.max(lat)) if len(lat) else 0.0,
        steal_ms=stolen,
    )


# ------------------------------------------------------------------------------------------------- pytest


@pytest.fixture(scope="module")
def receiver() -> object:
    r = Receiver()
    yield r
    r.close()


def _sizes(request: pytest.FixtureRequest) -> tuple:
    disabled = bool(request.config.getoption("benchmark_disable", False))
    if FULL and not disabled:
        return 5.0, {"naive": [500, 1000], "clock-python": [1000, 2000], "clock-batch": [1000, 3000, 5000],
                     "fanout": [3000, 5000]}
    return 1.0, {"naive": [20], "clock-python": [20], "clock-batch": [20], "fanout": [20]}


@pytest.mark.parametrize("design", list(DESIGNS))
def test_capacity(design: str, benchmark: object, receiver: Receiver, request: pytest.FixtureRequest) -> None:
    seconds, sizes = _sizes(request)
    results: List[Result] = []

    def _run() -> None:
        results.clear()
        for n in sizes[design]:
            results.append(measure(design, n, seconds, receiver))

    benchmark.group = "capacity: concurrent 20 ms PCMU streams"  # type: ignore[attr-defined]
    benchmark.pedantic(_run, rounds=1, iterations=1)  # type: ignore[attr-defined]
    print("\n" + HEADER)
    for r in results:
        print(r.row())
        benchmark.extra_info[f"{r.streams}"] = {  # type: ignore[attr-defined]
            "p99_ms": round(r.p99_ms, 3), "loss": round(r.loss, 5), "skipped": r.skipped}
    for r in results:
        assert r.scheduled > 0 and r.received > 0
        if r.streams <= 50:  # smoke: a handful of streams must be punctual and lossless anywhere
            assert r.loss < 0.01
            assert r.p99_ms < 20.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--naive", default="500,1000")
    ap.add_argument("--clock", default="1000,2000")
    ap.add_argument("--batch", default="1000,3000,5000")
    ap.add_argument("--fanout", default="3000,5000")
    ap.add_argument("--pin", action="store_true", help="pin the sender to CPU 0 and the receiver to CPU 1")
    ap.add_argument("--coarse", action="store_true", help="MediaClock on loop.call_at instead of a timerfd")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every size this many times, interleaved, and summarise (median p99, worst loss)")
    args = ap.parse_args()
    global PRECISE
    PRECISE = not args.coarse
    if args.pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    rx = Receiver(cpu=1 if args.pin else None)
    try:
        print(f"implementation: {_compat.implementation()}, {args.seconds:.0f} s per run, "
              f"media clock on {'a timerfd' if PRECISE else 'loop.call_at'}")
        cost = kernel_send_cost(rx.port)
        print(f"kernel floor: {cost * 1e6:.2f} us per loopback datagram -> at most {1 / cost / 50:,.0f} "
              f"streams of 50 packets/s per core with no Python at all")
        print(HEADER)
        plan = [(design, int(x)) for design, spec in (("naive", args.naive), ("clock-python", args.clock),
                                                      ("clock-batch", args.batch), ("fanout", args.fanout))
                for x in spec.split(",") if x]
        runs: Dict[tuple, List[Result]] = {}
        for _ in range(max(1, args.repeat)):  # interleaved, so a slow spell of the machine hits every design
            for design, n in plan:
                r = measure(design, n, args.seconds, rx)
                runs.setdefault((design, n), []).append(r)
                print(r.row(), flush=True)
        if args.repeat > 1:
            print(f"\nsummary over {args.repeat} runs each")
            print(f"{'design':<13} {'streams':>6} {'median p99':>10} {'p99 range':>15} {'worst loss':>10} {'met':>4}")
            for (design, n), rs in runs.items():
                p99s = sorted(r.p99_ms for r in rs)
                med = float(np.median(p99s))
                worst = max(r.loss for r in rs)
                met = "yes" if med < 2.0 and worst == 0 else "no"
                print(f"{design:<13} {n:>6} {med:>10.2f} {p99s[0]:>7.2f}-{p99s[-1]:<7.2f} {worst * 100:>9.2f}% {met:>4}")
    finally:
        rx.close()


if __name__ == "__main__":
    main()
