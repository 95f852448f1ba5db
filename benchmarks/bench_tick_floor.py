"""What a whole process costs per call-second when every call's tick touches no Python object: the floor.

``bench_calls.py`` measures full calls through ``listen``; ``bench_call_tick.py`` takes one call's tick apart
and times the compiled functions alone. Neither says what the same work costs in a *live* process once nothing
of it is Python: the compiled stages cost 2–4× their isolated time inside the listener (``benchmarks/README.md``),
and a design that keeps each call's state in one C structure is only worth building if that penalty is the
interpreter's, not the machine's. This benchmark answers that with a small C program
(``benchmarks/floor/tick_floor.c``, built here with the system's C compiler): a process with N calls, each its
own loopback UDP socket, on the listener's clock (a 2 ms timerfd, 10 phases of a 20 ms frame), where every call
at every tick reads its socket with ``recvmmsg``, takes each packet in (RFC 3550 statistics, a slot ring), plays
one frame (G.711 decode or a faded repeat, a 60 ms history shifted) and sends one G.711 packet with ``sendto``;
a second process of the same program is the other side of every call. The engine's own CPU (user and system,
``getrusage``) over the window gives milliseconds of CPU per call-second, the unit of issue 14's target.

It is a floor, not a competitor: no jitter-buffer adaptation, time-stretching, RTCP or signalling. Run it as a
script::

    python benchmarks/bench_tick_floor.py --calls 200,1000 --seconds 20 --repeat 2

Under pytest it runs 20 calls for 2 s and checks the two sides exchanged and played what they sent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

SOURCE = Path(__file__).resolve().parent / "floor" / "tick_floor.c"
TICKS_PER_SECOND = 50
PEER_EXTRA = 3.0  # the peer starts a second before the engine and stops two after it


def compiler() -> Optional[str]:
    """The C compiler to build with: ``$CC``, else ``cc``, ``gcc`` or ``clang`` on the PATH."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def build(directory: Path) -> Path:
    """Compile ``tick_floor.c`` into ``directory``; the path of the program."""
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC)")
    out = directory / "tick_floor"
    subprocess.run([cc, "-O2", "-Wall", "-o", str(out), str(SOURCE), "-lm"], check=True)
    return out


def run_once(program: Path, calls: int, seconds: float) -> Dict[str, Any]:
    """One measurement: the peer and the engine on two fresh ranges of loopback ports; the engine's figures."""
    for _ in range(5):
        port = random.randrange(20000, 60000 - 2 * calls, 2)
        peer_port = port + calls
        peer = subprocess.Popen([str(program), "peer", str(calls), f"{seconds + PEER_EXTRA:g}", str(port),
                                 str(peer_port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        if peer.poll() is not None:  # a port of its range was taken: try another range
            continue
        engine = subprocess.run([str(program), "engine", str(calls), f"{seconds:g}", str(port), str(peer_port)],
                                capture_output=True, text=True, timeout=seconds + 30)
        peer_out, _ = peer.communicate(timeout=seconds + 30)
        if engine.returncode == 0 and peer.returncode == 0:
            result: Dict[str, Any] = json.loads(engine.stdout)
            result["peer_sent"] = json.loads(peer_out)["sent"]
            return result
    raise RuntimeError("tick_floor could not bind its sockets in five port ranges")


def summary(r: Dict[str, Any]) -> Dict[str, float]:
    """The engine's figures per call: ms of CPU per call-second, µs of user and system time per call and tick."""
    call_seconds = r["calls"] * r["seconds"]
    ticks = call_seconds * TICKS_PER_SECOND
    return {
        "cpu_ms_per_call_second": r["cpu"] * 1000.0 / call_seconds,
        "user_us_per_tick": r["user"] * 1e6 / ticks,
        "system_us_per_tick": (r["cpu"] - r["user"]) * 1e6 / ticks,
        "received_share": r["received"] / max(1, r["sent"]),
    }


def table(rows: List[Dict[str, Any]]) -> str:
    out = ["| calls | CPU ms per call-second | user µs per call and tick | system µs per call and tick | calls per "
           "core at this cost | lateness p50 / p99 ms | received / sent |",
           "|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        s = summary(r)
        ms = s["cpu_ms_per_call_second"]
        out.append(f"| {r['calls']} | {ms:.3f} | {s['user_us_per_tick']:.1f} | {s['system_us_per_tick']:.1f} | "
                   f"{1000.0 / ms:,.0f} | {r['lateness_p50_ms']:.2f} / {r['lateness_p99_ms']:.2f} | "
                   f"{r['received']:,} / {r['sent']:,} |")
    return "\n".join(out)


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="200,1000", help="comma-separated numbers of calls (default 200,1000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (default 20)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per number of calls (default 1)")
    args = parser.parse_args(argv)
    try:
        counts = [int(c) for c in args.calls.split(",")]
    except ValueError:
        parser.error(f"--calls must be comma-separated integers, got {args.calls!r}")
    if any(not 1 <= c <= 10000 for c in counts) or not args.seconds > 0 or args.repeat < 1:
        parser.error("--calls must be 1..10000 each, --seconds positive, --repeat at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            program = build(Path(tmp))
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"bench_tick_floor: cannot build tick_floor.c: {exc}", file=sys.stderr)
            return 1
        rows = [run_once(program, calls, args.seconds) for calls in counts for _ in range(args.repeat)]
    print(table(rows))
    return 0


# -- under pytest: one short run, checked -------------------------------------------------------------------------

def test_tick_floor_exchanges_and_plays(tmp_path: Path) -> None:
    """20 calls for 2 s: the engine received what the peer sent it and played a frame at every tick."""
    if compiler() is None:
        from helpers import skip_or_fail

        skip_or_fail("no C compiler to build the floor benchmark")
    r = run_once(build(tmp_path), 20, 2.0)
    calls_ticks = 20 * 2.0 * TICKS_PER_SECOND
    # every call sends one packet a tick (a wake-up more or less at either end of the window)
    assert 0.9 * calls_ticks <= r["sent"] <= 1.05 * calls_ticks, r
    # the peer ran throughout: the engine took in nearly every packet of its window
    assert r["received"] >= 0.9 * r["sent"], r
    assert r["played"] + r["concealed"] >= 0.9 * r["sent"], r
    assert r["played"] >= 0.8 * r["sent"], r
    s = summary(r)
    assert s["cpu_ms_per_call_second"] > 0.0, r


if __name__ == "__main__":
    sys.exit(main())
