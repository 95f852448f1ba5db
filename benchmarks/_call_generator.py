"""Load generator for bench_srtp_calls.py: full-duplex calls placed by a ``Phone`` of this library, in a process of
its own, for what sipp cannot do (sipp has no SRTP).

Usage: ``python benchmarks/_call_generator.py HOST:PORT RATE CALLS SECONDS AUDIO OUT.json [--srtp]``. It places
``CALLS`` calls at ``RATE`` a second to the listener at ``HOST:PORT``; each streams ``AUDIO`` (decoded once, shared
by every call) for ``SECONDS`` and receives what the listener sends back (counted, not played), then hangs up. With
``--srtp`` every call requires SRTP (SDES keys in the SDP over UDP signalling: loopback only). It writes what
happened to ``OUT.json``: calls attempted, completed, failed (with the first errors), how many were encrypted, the
set-up times (INVITE to 200 OK) and the packets the calls received.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

from pyvoip_fast.app.phone import Phone
from pyvoip_fast.audio import ClipCache
from pyvoip_fast.audio.sinks import NullSink


async def _one(phone: Phone, target: str, opener: Any, seconds: float, out: Dict[str, Any]) -> None:
    started = time.monotonic()
    try:
        call = await phone.call(target, source=opener, sink=NullSink(), hangup_when_done=False)
    except Exception as exc:  # a failed call is a result of the run, not a crash of the generator
        out["failed"] += 1
        if len(out["errors"]) < 5:
            out["errors"].append(f"{type(exc).__name__}: {exc}")
        return
    out["setup_ms"].append(round((time.monotonic() - started) * 1000.0, 2))
    if getattr(call.params, "srtp", None) is not None:
        out["encrypted"] += 1
    try:
        await asyncio.sleep(seconds)
        if not call.ended:
            await call.hangup()
        out["completed"] += 1
        out["packets_received"] += int(call.stats.packets_received)
    except Exception as exc:
        out["failed"] += 1
        if len(out["errors"]) < 5:
            out["errors"].append(f"{type(exc).__name__}: {exc}")


async def run(target: str, rate: float, calls: int, seconds: float, audio: str, srtp: bool) -> Dict[str, Any]:
    out: Dict[str, Any] = {"attempted": calls, "completed": 0, "failed": 0, "encrypted": 0, "errors": [],
                           "setup_ms": [], "packets_received": 0}
    cache = ClipCache()
    phone = Phone(host="127.0.0.1", port=0, srtp="required" if srtp else "off", srtp_insecure_signalling=srtp)
    await phone.start()
    tasks: List["asyncio.Task[None]"] = []
    try:
        begin = time.monotonic()
        for i in range(calls):
            await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))
            tasks.append(asyncio.ensure_future(_one(phone, target, cache.opener(audio), seconds, out)))
        await asyncio.gather(*tasks)
    finally:
        await phone.close()
    return out


def main(argv: List[str]) -> int:
    if len(argv) < 6:
        print(__doc__, file=sys.stderr)
        return 2
    target, rate, calls, seconds, audio, path = argv[:6]
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    out = asyncio.run(run(target, float(rate), int(calls), float(seconds), audio, "--srtp" in argv[6:]))
    Path(path).write_text(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
