"""Full calls against one ``pyvoip-fast listen --keep-serving`` process, driven by a real load generator.

sipp places the calls (``benchmarks/sipp/uac_rtp.xml``): INVITE with a PCMU offer, ACK, RTP from sipp's own
``rtp_stream`` thread (a raw mu-law file in a loop) for the call's duration, BYE. The listener answers every call,
streams the bundled speech back (repeated to last the whole call: it sends as long as sipp does), and receives,
measures, de-jitters and conceals what sipp sends: every call is full duplex. Neither sipp's signalling nor its RTP is the code under test.

Each step runs a fresh listener at one call rate for ``--hold`` seconds and reports:

- calls admitted (answered and completed), refused (503 from admission control, counted by the listener) and
  failed (sipp's count: a timeout, an unexpected answer);
- concurrent calls (rate x the shorter of call duration and step) and set-up latency percentiles (INVITE to
  200 OK, sipp's RTD);
- the listener's CPU per call-second over the steady part (``/proc/PID/stat``: the listener's own CPU only, so the
  generator's core is not counted against it) and its memory per established call (RSS above idle);
- how late the listener's media went out (its media clock's lateness percentiles over the whole step), the
  schedule skips and the loss it measured on what it received (the listener adds every call up in its
  ``-listener.json``: ``--summary-only`` spares it a file per call, which cost more than the call's signalling).

Run it as a script (the numbers in ``benchmarks/README.md`` come from it)::

    python benchmarks/bench_calls.py --mode capacity --rates 10,20,30,40 --call-seconds 10 --hold 25
    python benchmarks/bench_calls.py --mode setup --rates 50,100,150,200 --hold 15      # -d 2000: short calls
    python benchmarks/bench_calls.py --mode steady --rates 15,20,25 --hold 10           # 150-250 calls, then 20 s
    python benchmarks/bench_calls.py --mode capacity --rates 60 --hold 20 --max-cpu 70   # overload: call budget

Under pytest (``--benchmark-disable`` in CI) one small step runs as a smoke test of the whole harness.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "benchmarks" / "sipp" / "uac_rtp.xml"
SAMPLE = ROOT / "pyvoip_fast" / "data" / "sample.wav"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(kw_only=True)
class Measured:
    """The listener's figures of one step, as ``measured_cells`` shows them (shared with ``bench_srtp_calls.py``)."""

    setup_ms: Dict[str, float] = field(default_factory=dict)
    cpu_ms_per_call_second: Optional[float] = None
    cpu_share: Optional[float] = None
    kb_per_call: Optional[float] = None
    lateness_ms: Dict[str, float] = field(default_factory=dict)
    schedule_skips: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    #: the serving collector (``app/gc_policy.py``): survivors frozen once a second, sweeps and the longest
    gc_freezes: int = 0
    gc_sweeps: int = 0
    gc_longest_sweep_ms: float = 0.0


@dataclass(kw_only=True)
class Step(Measured):
    """What one rate step measured (see the module notes)."""

    rate: float
    call_seconds: float
    hold: float
    workers: int = 1
    realtime: Optional[int] = None  # the listeners' SCHED_RR priority (``listen --realtime``), or None
    attempted: int = 0
    completed: int = 0  # sipp's successful calls: a call refused with 503 ends its scenario normally too
    failed: int = 0
    refused: int = 0
    admitted: int = 0
    concurrent: float = 0.0
    sipp_cpu_share: Optional[float] = None
    sipp_hung: bool = False  # sipp had calls left long after the last one should have ended


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Until the listener answers an OPTIONS on ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        me = s.getsockname()[1]
        end = time.monotonic() + timeout
        n = 0
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"the listener exited with {proc.returncode}")
            n += 1
            s.sendto((f"OPTIONS sip:bench@127.0.0.1:{port} SIP/2.0\r\n"
                      f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKbench{n}\r\n"
                      f"From: <sip:probe@127.0.0.1>;tag=p{n}\r\nTo: <sip:bench@127.0.0.1>\r\n"
                      f"Call-ID: bench-probe-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                      f"Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", port))
            try:
                if s.recv(4096).startswith(b"SIP/2.0 200"):
                    return
            except socket.timeout:
                pass
    raise RuntimeError("the listener never answered OPTIONS")


def _ulaw_file(path: Path) -> None:
    """sipp's ``rtp_stream`` plays raw mu-law: the bundled speech sample, encoded once."""
    import soundfile as sf

    from pyvoip_fast.codecs import g711

    pcm, rate = sf.read(str(SAMPLE), dtype="int16")
    assert rate == 8000
    path.write_bytes(bytes(g711.ulaw_encode(pcm)))


def _looped_wav(path: Path, seconds: float) -> Path:
    """The bundled speech sample repeated until it lasts ``seconds``: what the listener sends back, so that every
    call sends for its whole duration (the sample alone lasts 6.5 s; a listener that stopped sending after it
    would be measured on half-duplex calls)."""
    import soundfile as sf

    pcm, rate = sf.read(str(SAMPLE), dtype="int16")
    repeats = max(1, -(-int(seconds * rate) // len(pcm)))
    sf.write(str(path), np.tile(pcm, repeats), rate, subtype="PCM_16")
    return path


def _percentiles(values: List[float], points: List[float]) -> Dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    out = {}
    for p in points:
        k = min(len(ordered) - 1, max(0, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
        out[f"p{p:g}"] = round(ordered[k], 2)
    return out


def _sipp_counts(stdout: str) -> Dict[str, int]:
    counts = {}
    for line in stdout.splitlines():
        for label in ("Successful call", "Failed call"):
            if line.strip().startswith(label):
                counts[label] = int(line.split("|")[-1].strip() or 0)
    return counts


def _start_listener(workdir: Path, name: str, max_calls: int, max_setup: int, max_lag_ms: Optional[float],
                    audio: Path = SAMPLE, max_cpu: Optional[float] = None,
                    extra: Sequence[str] = ()) -> Tuple[subprocess.Popen, int]:
    for attempt in range(3):
        # the port is free when picked, but another socket may take it before the child binds it: then the
        # listener exits with EXIT_ADDRESS (7) and a new port is tried
        port = _free_udp_port()
        argv = [sys.executable, "-m", "pyvoip_fast", "listen", "--keep-serving", "--bind", f"127.0.0.1:{port}",
                "--file", str(audio), "--no-play", "-q", "--max-calls", str(max_calls), "--max-setup",
                str(max_setup), "--stats-json", str(workdir / f"{name}.json"), "--summary-only"]
        if max_lag_ms is not None:
            argv += ["--max-lag", str(max_lag_ms)]
        if max_cpu is not None:
            argv += ["--max-cpu", f"{max_cpu:g}"]
        argv += list(extra)
        with open(workdir / f"{name}.log", "w") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        try:
            _wait_listening(port, proc)
        except RuntimeError:
            if proc.returncode != 7 or attempt == 2:
                raise
            continue
        return proc, port
    raise AssertionError("unreachable")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_step(rate: float, call_seconds: float, hold: float, workdir: Path, *, max_lag_ms: Optional[float] = None,
             max_calls: int = 5000, max_setup: int = 1000, sipp: str = "sipp", workers: int = 1,
             max_cpu: Optional[float] = None, realtime: Optional[int] = None) -> Step:
    """One rate step: fresh listeners (``workers`` of them behind Kamailio's dispatcher when more than one), sipp at
    ``rate`` calls/s for ``hold`` s of new calls, then the reports (CPU and memory summed over the workers)."""
    step = Step(rate=rate, call_seconds=call_seconds, hold=hold, workers=workers, realtime=realtime)
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "speech.ulaw").exists():
        _ulaw_file(workdir / "speech.ulaw")
    audio = workdir / "speech-long.wav"
    if not audio.exists():
        _looped_wav(audio, call_seconds + 5.0)
    for old in glob.glob(str(workdir / "calls*.json")) + glob.glob(str(workdir / "*_rtt.csv")):
        os.unlink(old)
    listeners: List[subprocess.Popen] = []
    with contextlib.ExitStack() as stack:
        for i in range(workers):
            proc, port = _start_listener(workdir, "calls" if workers == 1 else f"calls-w{i}", max_calls, max_setup,
                                         max_lag_ms, audio, max_cpu,
                                         extra=("--realtime", str(realtime)) if realtime is not None else ())
            listeners.append(proc)
            stack.callback(_stop, proc)
            if workers > 1:
                (workdir / "dispatcher.list").open("a").write(f"1 sip:127.0.0.1:{port}\n")
        target = port
        if workers > 1:  # one SIP address in front: the recipe of deploy/kamailio, as tests/app/test_dispatcher.py
            sys.path.insert(0, str(ROOT / "tests"))
            from kamailio_harness import Kamailio

            kam = stack.enter_context(Kamailio(workdir / "kamailio", users={},
                                               template=ROOT / "deploy" / "kamailio" / "dispatcher.cfg",
                                               values={"DISPATCHER_LIST": str(workdir / "dispatcher.list")}))
            target = kam.udp_port
            time.sleep(2.0)  # the first OPTIONS probes mark every worker active
        time.sleep(0.5)
        idle_rss = sum(_rss_kb(p.pid) for p in listeners)
        calls = max(1, int(round(rate * hold)))
        sipp_argv = [sipp, f"127.0.0.1:{target}", "-sf", str(SCENARIO), "-r", f"{rate:g}", "-m", str(calls),
                     "-d", str(int(call_seconds * 1000)), "-l", "100000", "-i", "127.0.0.1", "-mi", "127.0.0.1",
                     "-p", str(_free_udp_port()), "-nostdin", "-timeout", f"{hold + call_seconds + 60:.0f}s",
                     "-trace_rtt", "-rtt_freq", "1", "-default_behaviors", "all,-abortunexp"]
        started = time.monotonic()
        gen = subprocess.Popen(sipp_argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL, cwd=workdir)
        # the steady part: every call of the step's concurrency is up. With calls shorter than the step (capacity)
        # that is from the first call's end, while calls keep being set up and torn down, until new calls stop;
        # with calls longer than the step (steady) from the last call's set-up until the first call's end: no
        # signalling at all, only the media of the calls up
        steady_from, steady_to = min(call_seconds, hold) + 1.0, max(call_seconds, hold) - 0.5
        samples = []

        def cpu() -> float:
            return sum(_cpu_seconds(p.pid) for p in listeners)

        if steady_to - steady_from >= 2.0:
            time.sleep(max(0.0, started + steady_from - time.monotonic()))
            samples.append((time.monotonic(), cpu(), _cpu_seconds(gen.pid)))
            time.sleep(max(0.0, started + steady_to - time.monotonic()))
            samples.append((time.monotonic(), cpu(), _cpu_seconds(gen.pid)))
            peak_rss = sum(_rss_kb(p.pid) for p in listeners)
        try:
            out, _ = gen.communicate(timeout=hold + call_seconds + 120)
        except subprocess.TimeoutExpired:  # calls still hanging: count what sipp says when stopped
            gen.send_signal(signal.SIGUSR1)  # sipp's "stop placing calls and end the run"
            try:
                out, _ = gen.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                gen.kill()
                out, _ = gen.communicate()
            step.sipp_hung = True
        counts = _sipp_counts(out)
        step.completed = counts.get("Successful call", 0)
        step.failed = counts.get("Failed call", 0)
        step.attempted = calls
        step.concurrent = round(min(rate * call_seconds, rate * hold), 1)
        if len(samples) == 2:
            (t1, c1, g1), (t2, c2, g2) = samples
            wall = t2 - t1
            step.cpu_share = round((c2 - c1) / wall, 3)
            step.sipp_cpu_share = round((g2 - g1) / wall, 3)
            step.cpu_ms_per_call_second = round((c2 - c1) / wall / max(step.concurrent, 1e-9) * 1000.0, 3)
            step.kb_per_call = round((peak_rss - idle_rss) / max(step.concurrent, 1e-9), 1)
    setup = []
    for path in glob.glob(str(workdir / "*_rtt.csv")):
        with open(path, newline="") as f:
            for row in csv.reader(f, delimiter=";"):
                try:
                    setup.append(float(row[1]))
                except (IndexError, ValueError):
                    continue
    step.setup_ms = _percentiles(setup, [50, 95, 99])
    for summary_path in glob.glob(str(workdir / "calls*-listener.json")):
        summary = json.loads(Path(summary_path).read_text())
        step.refused += summary["rejected"].get("busy", 0) + summary["rejected"].get("overload", 0)
        late = summary.get("media_clock", {}).get("lateness_ms", {})
        for k, v in late.items():  # over several workers: the worst worker's figure
            step.lateness_ms[k] = max(step.lateness_ms.get(k, 0.0), v)
        totals = summary.get("calls", {})  # every call's statistics, added up by the listener
        step.schedule_skips += int(totals.get("schedule_skips", 0))
        step.packets_received += int(totals.get("packets_received", 0))
        step.packets_lost += int(totals.get("packets_lost", 0))
        collector = summary.get("collector", {})
        step.gc_freezes += int(collector.get("freezes", 0))
        step.gc_sweeps += int(collector.get("sweeps", 0))
        step.gc_longest_sweep_ms = max(step.gc_longest_sweep_ms, float(collector.get("longest_sweep_ms", 0.0)))
    step.admitted = step.completed - step.refused
    if step.sipp_hung:
        step.failed = max(step.failed, step.attempted - step.completed)
    return step


def _table(steps: List[Step]) -> str:
    head = ("| workers | calls/s | concurrent | admitted / refused (503) / failed | set-up p50 / p99 ms | CPU ms per call-s "
            "| listener CPU | KB per call | lateness p50 / p99 / max ms | skips | lost / received |")
    rows = [head, "|" + "---|" * 11]
    for s in steps:
        rows.append(f"| {s.workers} | {s.rate:g} | {s.concurrent:g} | {s.admitted} / {s.refused} / {s.failed} | "
                    + measured_cells(s))
    return "\n".join(rows)


def measured_cells(s: Measured, cpu_note: str = "") -> str:
    """A table row's cells from the set-up times on: set-up p50 / p99, CPU per call-second (``cpu_note`` after it),
    listener CPU, KB per call, lateness, skips, lost / received."""
    cpu = f"{s.cpu_ms_per_call_second:.2f}{cpu_note}" if s.cpu_ms_per_call_second is not None else "n/a"
    share = f"{s.cpu_share * 100:.0f} %" if s.cpu_share is not None else "n/a"
    kb = f"{s.kb_per_call:.0f}" if s.kb_per_call is not None else "n/a"
    late = s.lateness_ms
    return (f"{s.setup_ms.get('p50', 'n/a')} / {s.setup_ms.get('p99', 'n/a')} | {cpu} | {share} | {kb} | "
            f"{late.get('p50', 'n/a')} / {late.get('p99', 'n/a')} / {late.get('max', 'n/a')} | "
            f"{s.schedule_skips} | {s.packets_lost} / {s.packets_received} |")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("capacity", "steady", "setup"), default="capacity",
                        help="capacity: 10 s calls placed for --hold s, measured while they come and go; steady: "
                        "rate x --hold calls set up, then measured for 20 s with no signalling; setup: 2 s calls")
    parser.add_argument("--rates", default="10,20,30", help="comma-separated call rates (calls/s)")
    parser.add_argument("--call-seconds", type=float, default=None, help="call duration (default 10; setup: 2)")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds of new calls per step")
    parser.add_argument("--max-lag", type=float, default=None, help="pass --max-lag MS to the listener")
    parser.add_argument("--max-cpu", type=float, default=None, help="pass --max-cpu PCT to the listener")
    parser.add_argument("--realtime", type=int, default=None, metavar="PRIORITY",
                        help="pass --realtime PRIORITY to the listener(s): SCHED_RR (needs root or CAP_SYS_NICE)")
    parser.add_argument("--workers", type=int, default=1,
                        help="listeners behind Kamailio's dispatcher (deploy/kamailio/dispatcher.cfg); 1: direct")
    parser.add_argument("--json", default=None, help="also write the steps as JSON here")
    args = parser.parse_args(argv)
    sipp = shutil.which("sipp")
    if sipp is None:
        print("bench_calls: sipp is not installed (Debian: sip-tester)", file=sys.stderr)
        return 2
    default_seconds = {"setup": 2.0, "capacity": 10.0, "steady": args.hold + 21.0}[args.mode]
    call_seconds = args.call_seconds if args.call_seconds is not None else default_seconds
    steps = []
    with tempfile.TemporaryDirectory(prefix="pyvoip-bench-calls-") as tmp:
        for rate in (float(r) for r in args.rates.split(",")):
            step = run_step(rate, call_seconds, args.hold, Path(tmp) / f"r{rate:g}", max_lag_ms=args.max_lag,
                            sipp=sipp, workers=args.workers, max_cpu=args.max_cpu, realtime=args.realtime)
            steps.append(step)
            print(json.dumps(asdict(step)), flush=True)
    return report(steps, _table(steps), args.json)


def report(steps: Sequence[Measured], table: str, json_path: Optional[str]) -> int:
    """Print the table of a run's steps, write them as JSON to ``json_path`` when given; the exit status."""
    print(table)
    if json_path:
        Path(json_path).write_text(json.dumps([asdict(s) for s in steps], indent=2) + "\n")
    return 0


def test_full_calls_through_sipp_smoke(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The whole harness once, small: 12 full-duplex calls of 2 s at 4 calls/s, all complete with audio both ways."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import require_tool

    sipp = require_tool("sipp")
    step = benchmark.pedantic(run_step, args=(4.0, 2.0, 3.0, tmp_path), kwargs={"sipp": sipp}, rounds=1,
                              iterations=1)
    assert (step.attempted, step.admitted, step.failed, step.refused) == (12, 12, 0, 0), asdict(step)
    # each call received about 2 s of sipp's RTP (100 packets of 20 ms) and the listener's media clock ran
    assert step.packets_received >= 12 * 80, asdict(step)
    assert step.setup_ms and step.lateness_ms and step.lateness_ms["p50"] < 5.0, asdict(step)
    assert step.gc_freezes >= 2, asdict(step)  # the listener's serving collector ran


if __name__ == "__main__":
    sys.exit(main())
