"""What one full-duplex call costs per 20 ms tick, stage by stage, against the compiled pieces alone.

``bench_calls.py`` measures whole calls through ``listen``; this benchmark takes one call's media tick apart,
in one process, with the real objects a call uses (no sockets are mocked: the kernel stage is a real loopback
UDP send and receive):

- ``receive``: ``RtpReceiver.on_datagram`` for one packet: parse, source rules, RFC 3550 statistics,
  jitter buffer.
- ``receive + playout``: the same packet, then ``RtpReceiver.playout`` for one tick 3 ms later, as in a call:
  the jitter buffer's take and time-stretch advice, decoding, the lookahead concealer's history, no loss. The
  ``playout`` row is the difference.
- ``send``: ``RtpSender.send_slot`` for one slot: read the audio source, encode, stamp the header (its
  ``transmit`` returns at once: the socket is the kernel stage).
- ``kernel``: one 172-byte ``sendto`` and one ``recvmmsg`` on loopback sockets: the system calls a tick needs,
  which no user-space design avoids.
- ``compiled``: the same tick done by the compiled functions the stages above call, back to back, with no
  Python object around them: parse, statistics update, G.711 decode, concealer shift, G.711 encode, header.
  It is the floor a compiled per-call pass (``ARCHITECTURE.md``) could reach before its own glue.
- ``srtp``: what an SRTP call adds: libsrtp's protection of the packet sent and unprotection of the packet
  received (``rtp.srtp.SrtpContext``), with keys of its own per call. Not part of the sums: the capacity targets
  are for plain RTP; ``bench_srtp_calls.py`` measures SRTP on whole calls.

Every stage is timed over a real speech stream (the bundled sample, looped), for one call alone and for 200
calls served in turn at every tick (as a loaded process does: their state no longer fits the CPU caches); the
table gives microseconds per call and tick, milliseconds of CPU per call-second (50 ticks) and the calls that would fill one
core at that cost. Under pytest (``--benchmark-disable`` in CI) each stage runs once on a short stream and is
checked for what it must do (every frame played, nothing concealed, valid packets sent). Run it as a script::

    python benchmarks/bench_call_tick.py --seconds 10 --repeat 3 --calls 1,200
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import sys
import time
import wave
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from pyvoip_fast import _compat, codecs, rtp
from pyvoip_fast.codecs import g711
from pyvoip_fast.media.receiver import RtpReceiver
from pyvoip_fast.media.sender import RtpSender

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "pyvoip_fast" / "data" / "sample.wav"
FRAME = 160  # samples (and timestamp units) of a 20 ms PCMU frame
TICKS_PER_SECOND = 50
PEER = ("127.0.0.1", 40000)
#: the peer's clock runs 0.02 % fast against ours, as sipp's does here: the playout's buffer slowly fills and it
#: time-stretches now and then (about once a second), as in a real call
DRIFT = 0.9998
_plc = _compat.load("_plc")
_udp = _compat.load("_udp")
_stats = _compat.load("_stats")


def speech(seconds: float) -> np.ndarray:
    """The bundled speech sample (8 kHz int16), looped to ``seconds``."""
    with wave.open(str(SAMPLE)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    n = int(seconds * 8000) // FRAME * FRAME
    return np.resize(pcm, n)


def packets(pcm: np.ndarray) -> List[bytes]:
    """The stream as the peer sends it: PCMU RTP packets, one per 20 ms frame."""
    return [rtp.build_packet(0, i & 0xFFFF, i * FRAME, 0x5EED, bytes(g711.ulaw_encode(pcm[i * FRAME:(i + 1) * FRAME])))
            for i in range(len(pcm) // FRAME)]


def _receiver() -> RtpReceiver:
    r = RtpReceiver((0.02, 0.5, 0.06), on_latched=lambda: None, on_new_source=lambda: None, on_dtmf=lambda d: None)
    r.configure(codecs.PCMU, 0, 20, None)
    r.set_remote(PEER, initial=True)
    r.new_stream()
    r.receiving = True
    return r


class _Source:
    """A file-like source over the whole stream (what ``listen --file`` reads from its clip cache)."""

    def __init__(self, pcm: np.ndarray) -> None:
        self.pcm, self.pos, self.eof = pcm, 0, False

    def read(self, n: int) -> np.ndarray:
        out = self.pcm[self.pos:self.pos + n]
        self.pos += n
        self.eof = self.pos >= len(self.pcm)
        return out


def stage_receive(pkts: List[bytes], calls: int) -> Tuple[Callable[[], None], Callable[[], Dict[str, int]]]:
    rs = [_receiver() for _ in range(calls)]

    def run() -> None:
        for i, p in enumerate(pkts):
            now = i * 0.02
            for r in rs:
                r.on_datagram(p, PEER, now)

    return run, lambda: {"received": min(r.packets for r in rs), "invalid": sum(r.invalid for r in rs)}


def stage_receive_playout(pkts: List[bytes],
                          calls: int) -> Tuple[Callable[[], None], Callable[[], Dict[str, int]]]:
    """Receive and play out, interleaved as in a call: each packet arrives a few ms before the tick that follows."""
    rs = [_receiver() for _ in range(calls)]

    def run() -> None:
        for i, p in enumerate(pkts):
            now = i * 0.02
            arrival = now * DRIFT
            for r in rs:
                r.on_datagram(p, PEER, arrival)
                r.playout(now + 0.003)

    return run, lambda: {"played": min(r.jb.stats.played for r in rs),
                         "concealed": max(r.jb.stats.concealed for r in rs)}


def stage_send(pcm: np.ndarray, calls: int) -> Tuple[Callable[[], None], Callable[[], Dict[str, int]]]:
    loop = asyncio.new_event_loop()
    sent: List[bytes] = []
    keep = sent.append

    def transmit(buf: bytearray) -> bool:
        if len(sent) < 3:
            keep(bytes(buf))
        return True

    senders = []
    for k in range(calls):
        s = RtpSender(0x1234 + k, random.Random(k), transmit, loop)
        s.configure(codecs.PCMU, 0, 20, None)
        s.set_source(_Source(pcm))
        s.start(0.0)
        senders.append(s)
    frames = len(pcm) // FRAME

    def run() -> None:
        for n in range(frames):
            for s in senders:
                s.send_slot(n)

    def check() -> Dict[str, int]:
        loop.close()
        return {"sent": min(s.stats.packet_count for s in senders),
                "valid": sum(rtp.RtpPacket.parse(b).payload_type == 0 for b in sent)}

    return run, check


def stage_kernel(count: int, calls: int) -> Tuple[Callable[[], None], Callable[[], Dict[str, int]]]:
    pairs = []
    for _ in range(calls):  # a socket of its own per call, as calls have
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        tx.setblocking(False)
        pairs.append((tx, rx, rx.getsockname(), rx.fileno()))
    datagram = bytes(172)
    got = [0]

    def run() -> None:
        for _ in range(count):
            for tx, _rx, addr, fd in pairs:
                tx.sendto(datagram, addr)
                got[0] += _udp.recv_drain(fd, 64)

    def check() -> Dict[str, int]:
        for tx, rx, _a, _f in pairs:
            tx.close()
            rx.close()
        return {"sent": count * calls, "received": got[0]}

    return run, check


def stage_compiled(pkts: List[bytes], pcm: np.ndarray,
                   calls: int) -> Tuple[Callable[[], None], Callable[[], Dict[str, int]]]:
    state = [(_stats.ReceiverStats(clock_rate=8000), np.zeros(391, dtype=np.float64), np.empty(FRAME, np.int16),
              bytearray(12 + FRAME)) for _ in range(calls)]
    frames = [pcm[i * FRAME:(i + 1) * FRAME] for i in range(len(pkts))]
    energy = [0.0]

    def run() -> None:
        for i, p in enumerate(pkts):
            now = i * 0.02
            frame = frames[i]
            for stats, hist, out, header in state:
                pkt = rtp.RtpPacket.parse(p)
                stats.update(pkt.sequence_number, pkt.timestamp, now, len(pkt.payload))
                decoded = np.frombuffer(g711.ulaw_decode(pkt.payload), dtype=np.int16)
                energy[0] += _plc.push(hist, decoded, out, 30)
                rtp.write_header(header, 0, 0, i & 0xFFFF, i * FRAME, 0x1234, False)
                header[12:] = g711.ulaw_encode(frame)

    return run, lambda: {"received": min(st[0].received for st in state), "energy": int(energy[0] > 0)}


def stage_srtp(pkts: List[bytes], calls: int) -> Tuple[Callable[[], None], Callable[[], Dict[str, int]]]:
    """What an SRTP call adds to a tick: protect the packet it sends (after the header is stamped) and unprotect the
    one it received (before parsing), each call with keys of its own (``rtp.srtp.SrtpContext``, libsrtp)."""
    from pyvoip_fast.rtp.srtp import SrtpContext, new_key

    pairs = []
    for _ in range(calls):
        ours, theirs = new_key(), new_key()
        pairs.append((SrtpContext("AES_CM_128_HMAC_SHA1_80", ours, theirs),
                      SrtpContext("AES_CM_128_HMAC_SHA1_80", theirs, ours)))
    # what each call's peer sent, already protected (the peer's work is not ours)
    arriving = [[peer.protect(p) for p in pkts] for _ctx, peer in pairs]
    got = [0]

    def run() -> None:
        for i, p in enumerate(pkts):
            for k, (ctx, _peer) in enumerate(pairs):
                ctx.protect(p)
                got[0] += len(ctx.unprotect(arriving[k][i])) == len(p)

    return run, lambda: {"unprotected": got[0]}


def _stages(seconds: float, calls: int) -> Dict[str, Tuple[Callable[[], None], Callable[[], Dict[str, int]], int]]:
    """Each stage's timed loop, its check, and how many call-ticks the loop does."""
    pcm = speech(seconds)
    pkts = packets(pcm)
    n = len(pkts)
    return {
        "receive": (*stage_receive(pkts, calls), n * calls),
        "receive + playout": (*stage_receive_playout(pkts, calls), n * calls),
        "send": (*stage_send(pcm, calls), n * calls),
        "kernel": (*stage_kernel(n, calls), n * calls),
        "compiled": (*stage_compiled(pkts, pcm, calls), n * calls),
        "srtp": (*stage_srtp(pkts, calls), n * calls),
    }


def measure(seconds: float, repeat: int, calls: int = 1) -> Dict[str, float]:
    """Microseconds per call and tick of each stage (best of ``repeat`` fresh runs over ``seconds`` of stream),
    with ``calls`` calls served in turn at every tick."""
    best: Dict[str, float] = {}
    for _ in range(repeat):
        for name, (run, check, ticks) in _stages(seconds, calls).items():
            t0 = time.perf_counter()
            run()
            us = (time.perf_counter() - t0) / ticks * 1e6
            check()
            best[name] = min(best.get(name, float("inf")), us)
    return best


def table(us: Dict[str, float]) -> str:
    rows = ["| stage | µs per call and tick | CPU ms per call-second | calls per core at this cost alone |",
            "|---|---:|---:|---:|"]

    def row(label: str, v: float) -> None:
        ms = v * TICKS_PER_SECOND / 1000.0
        rows.append(f"| {label} | {v:.2f} | {ms:.3f} | {1000.0 / ms:,.0f} |")

    row("receive", us["receive"])
    row("playout", us["receive + playout"] - us["receive"])
    for name in ("send", "kernel", "compiled"):
        row(name, us[name])
    row("**receive + playout + send + kernel**", us["receive + playout"] + us["send"] + us["kernel"])
    row("**compiled + kernel**", us["compiled"] + us["kernel"])
    row("srtp (an SRTP call adds)", us["srtp"])
    return "\n".join(rows)


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of stream per call and run (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per stage; the best is kept (default 3)")
    parser.add_argument("--calls", default="1,200", help="calls served in turn at every tick, comma-separated: "
                        "1 keeps one call's state in the CPU caches, 200 is a loaded process (default 1,200)")
    args = parser.parse_args(argv)
    print(f"implementation: {_compat.implementation()}")
    for calls in (int(c) for c in args.calls.split(",")):
        print(f"\n{calls} call(s), {args.seconds:g} s of stream each, best of {args.repeat}:\n")
        print(table(measure(args.seconds, args.repeat, calls)))
    return 0


# -- under pytest: each stage once, checked ---------------------------------------------------------------------

def test_call_tick_stages(benchmark: Any) -> None:
    """Each stage does its work on 4 s of speech: all received, all played without concealment, valid packets."""
    stages = _stages(4.0, 2)
    results = {}

    def run_all() -> None:
        for name, (run, check, _ticks) in stages.items():
            run()
            results[name] = check()

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    n = len(packets(speech(4.0)))
    assert results["receive"] == {"received": n, "invalid": 0}
    # every frame plays but the last few, still behind the buffer's delay when the stream ends; none concealed
    assert n - 4 <= results["receive + playout"]["played"] < n, results
    assert results["receive + playout"]["concealed"] == 0, results
    assert results["send"] == {"sent": n, "valid": 3}
    assert results["kernel"] == {"sent": 2 * n, "received": 2 * n}
    # RFC 3550 A.1's counter leaves out the first packet (its source is on probation until the second)
    assert results["compiled"] == {"received": n - 1, "energy": 1}
    assert results["srtp"] == {"unprotected": 2 * n}


if __name__ == "__main__":
    sys.exit(main())
