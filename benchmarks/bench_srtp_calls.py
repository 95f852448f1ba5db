"""What SRTP costs a listener: the same full calls through one ``pyvoip-fast listen --keep-serving``, plain RTP
and then SRTP, side by side.

The capacity targets are for plain RTP; SRTP calls protect every packet after it is stamped and unprotect every
packet before it is parsed (libsrtp through ``pylibsrtp``), and this benchmark measures what that adds. sipp has no
SRTP, so the calls come from a second process of this library (``_call_generator.py``: a ``Phone`` that places
calls at a rate, each streaming the bundled speech and receiving what the listener sends back, for the call's
duration, then BYE). Both runs of a step use that same generator, so the difference between them is SRTP's
alone. What is measured is the listener's, as in ``bench_calls.py``:

- its own CPU per call-second over the steady part, from ``/proc/PID/stat`` (the generator's core is not
  counted), once every call of the step is up and before the first ends: no signalling, only media;
- its memory per call (RSS above idle, idle measured after one warm-up call: what the process loads once is
  not a call's), how late its media went out (its media clock's lateness percentiles over
  the whole step), the schedule skips and the loss it measured on what it received;
- from the generator: calls completed and failed, how many were encrypted (SRTP negotiated: the SDP's
  ``a=crypto`` keys, required on both sides, so a call that is not encrypted fails), set-up times.

Run it as a script (the numbers in ``benchmarks/README.md`` come from it)::

    python benchmarks/bench_srtp_calls.py --calls 50,100 --rate 20

Under pytest (``--benchmark-disable`` in CI) one small SRTP step runs as a smoke test of the whole harness.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import bench_calls as base

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = Path(__file__).resolve().parent / "_call_generator.py"
SRTP_FLAGS = ("--srtp", "required", "--srtp-insecure-signalling")


@dataclass(kw_only=True)
class SrtpStep(base.Measured):
    """What one run measured (see the module notes)."""

    media: str = "RTP"
    calls: int = 0
    rate: float = 0.0
    call_seconds: float = 0.0
    completed: int = 0
    failed: int = 0
    encrypted: int = 0
    errors: List[str] = field(default_factory=list)
    generator_cpu_share: Optional[float] = None


def run_step(srtp: bool, calls: int, rate: float, workdir: Path, call_seconds: Optional[float] = None) -> SrtpStep:
    """``calls`` calls at ``rate`` a second against a fresh listener, plain or SRTP; each lasts until ``call_seconds``
    (default: the ramp plus 21 s, so that every call is up for a 20 s steady window)."""
    ramp = calls / rate
    seconds = ramp + 21.0 if call_seconds is None else call_seconds
    step = SrtpStep(media="SRTP" if srtp else "RTP", calls=calls, rate=rate, call_seconds=seconds)
    workdir.mkdir(parents=True, exist_ok=True)
    audio = workdir / "speech-long.wav"
    if not audio.exists():
        base._looped_wav(audio, seconds + 5.0)
    name = "srtp" if srtp else "plain"
    report = workdir / f"{name}-generator.json"
    with contextlib.ExitStack() as stack:
        proc, port = base._start_listener(workdir, name, max_calls=5000, max_setup=1000, max_lag_ms=None,
                                          audio=audio, extra=SRTP_FLAGS if srtp else ())
        stack.callback(base._stop, proc)

        def generator(count: int, duration: float, path: Path) -> subprocess.Popen:
            argv = [sys.executable, str(GENERATOR), f"127.0.0.1:{port}", f"{rate:g}", str(count), f"{duration:g}",
                    str(audio), str(path)] + (["--srtp"] if srtp else [])
            return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    stdin=subprocess.DEVNULL, cwd=ROOT)

        # one call first, so that what the process loads once (the modules a call imports on first use, and with
        # SRTP libsrtp and its crypto library: megabytes) is in the idle figure, not counted against every call
        warm = generator(1, 1.0, workdir / f"{name}-warm.json")
        warm.communicate(timeout=60)
        time.sleep(0.5)
        idle_rss = base._rss_kb(proc.pid)
        started = time.monotonic()
        gen = generator(calls, seconds, report)
        steady_from, steady_to = ramp + 1.0, seconds - 0.5  # every call up, none ended yet
        samples = []
        if steady_to - steady_from >= 1.0:
            for at in (steady_from, steady_to):
                time.sleep(max(0.0, started + at - time.monotonic()))
                samples.append((time.monotonic(), base._cpu_seconds(proc.pid), base._cpu_seconds(gen.pid)))
            step.kb_per_call = round((base._rss_kb(proc.pid) - idle_rss) / calls, 1)
        try:
            out, _ = gen.communicate(timeout=seconds + ramp + 120)
        except subprocess.TimeoutExpired:
            gen.kill()
            out, _ = gen.communicate()
        if gen.returncode != 0 or not report.exists():
            raise RuntimeError(f"the call generator failed ({gen.returncode}): {out[-2000:]}")
    made: Dict[str, Any] = json.loads(report.read_text())
    step.completed, step.failed, step.encrypted = made["completed"], made["failed"], made["encrypted"]
    step.errors = made["errors"]
    step.setup_ms = base._percentiles(made["setup_ms"], [50, 95, 99])
    if len(samples) == 2:
        (t1, c1, g1), (t2, c2, g2) = samples
        wall = t2 - t1
        step.cpu_share = round((c2 - c1) / wall, 3)
        step.generator_cpu_share = round((g2 - g1) / wall, 3)
        step.cpu_ms_per_call_second = round((c2 - c1) / wall / calls * 1000.0, 3)
    summary = json.loads((workdir / f"{name}-listener.json").read_text())
    step.lateness_ms = summary.get("media_clock", {}).get("lateness_ms", {})
    totals = summary.get("calls", {})
    step.schedule_skips = int(totals.get("schedule_skips", 0))
    step.packets_received = int(totals.get("packets_received", 0))
    step.packets_lost = int(totals.get("packets_lost", 0))
    return step


def _table(steps: List[SrtpStep]) -> str:
    rows = ["| media | calls | completed / failed | encrypted | set-up p50 / p99 ms | CPU ms per call-s | listener CPU "
            "| KB per call | lateness p50 / p99 / max ms | skips | lost / received |", "|" + "---|" * 11]
    plain: Dict[int, SrtpStep] = {}
    for s in steps:
        note = ""
        if s.media == "RTP":
            plain[s.calls] = s
        elif s.calls in plain and plain[s.calls].cpu_ms_per_call_second and s.cpu_ms_per_call_second:
            note = f" (x{s.cpu_ms_per_call_second / plain[s.calls].cpu_ms_per_call_second:.2f})"
        rows.append(f"| {s.media} | {s.calls} | {s.completed} / {s.failed} | {s.encrypted} | "
                    + base.measured_cells(s, note))
    return "\n".join(rows)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="50,100", help="comma-separated numbers of concurrent calls")
    parser.add_argument("--rate", type=float, default=20.0, help="calls placed a second while ramping up")
    parser.add_argument("--json", default=None, help="also write the steps as JSON here")
    args = parser.parse_args(argv)
    steps = []
    with tempfile.TemporaryDirectory(prefix="pyvoip-bench-srtp-") as tmp:
        for calls in (int(c) for c in args.calls.split(",")):
            for srtp in (False, True):
                step = run_step(srtp, calls, args.rate, Path(tmp) / f"c{calls}")
                steps.append(step)
                print(json.dumps(asdict(step)), flush=True)
    return base.report(steps, _table(steps), args.json)


def test_srtp_calls_smoke(benchmark: Any, tmp_path: Path) -> None:
    """The whole harness once, small: 6 SRTP calls of 3 s at 4 calls/s, all complete, all encrypted, with audio
    both ways, and the table shows them."""
    step = benchmark.pedantic(run_step, args=(True, 6, 4.0, tmp_path), kwargs={"call_seconds": 3.0}, rounds=1,
                              iterations=1)
    assert (step.completed, step.failed, step.encrypted) == (6, 0, 6), asdict(step)
    # the listener received about 3 s of each call's SRTP (150 packets of 20 ms), decrypted
    assert step.packets_received >= 6 * 110 and step.packets_lost == 0, asdict(step)
    assert step.lateness_ms and step.lateness_ms["p50"] < 5.0, asdict(step)
    assert "| SRTP | 6 | 6 / 0 | 6 |" in _table([step])


if __name__ == "__main__":
    sys.exit(main())
