"""The command-line peer against the real sipp (Debian package ``sip-tester``), over UDP on 127.0.0.1.

Both programs run as processes, as a user would start them: ``python -m pyvoip_fast ...`` and ``sipp``. Each case
checks our exit status, our stdout/stderr and sipp's view (its exit status: 0 = every call of its scenario
succeeded, and its ``-trace_msg`` message log). sipp runs with ``-nostdin`` (no terminal), ``-m N`` calls and
``-timeout 20s`` as a safety net, like tests/test_sipp_interop.py.

Budget: about 15 s in all.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import pytest

from helpers import DATA, ROOT, require_tool
import soundfile as sf

pytestmark = pytest.mark.interop

SCENARIOS = DATA / "sipp"
ROOT = ROOT


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _env() -> dict:  # type: ignore[type-arg]
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else str(ROOT)
    return env


class Sipp:
    """One sipp process; its message trace and screen output go to ``tmp_path``."""

    def __init__(self, tmp_path: Path, name: str, scenario: str, *extra: str, calls: int = 1,
                 remote: Optional[str] = None) -> None:
        exe = require_tool("sipp")
        self.port = free_udp_port()
        self.messages = tmp_path / f"{name}_messages.log"
        self.out = tmp_path / f"{name}_sipp.out"
        args: List[str] = [exe]
        if remote is not None:
            args.append(remote)
        args += ["-sf", str(SCENARIOS / scenario)] if scenario.endswith(".xml") else ["-sn", scenario]
        args += [*extra, "-m", str(calls), "-timeout", "20s", "-nostdin", "-i", "127.0.0.1", "-p", str(self.port),
                 "-trace_msg", "-message_file", str(self.messages)]
        self._fh = open(self.out, "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 5
        while not port_taken(self.port):  # sipp is listening once its port is taken
            assert self.proc.poll() is None and time.monotonic() < deadline, self.out.read_text()
            time.sleep(0.02)

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._fh.flush()

    def received(self, method: str) -> int:
        """How many ``method`` requests sipp received (from its -trace_msg log)."""
        if not self.messages.exists():
            return 0
        count = 0
        for block in self.messages.read_text(errors="replace").split("----------------------------------------------- "):
            lines = block.split("\n")
            if len(lines) > 2 and "message received" in lines[1]:
                first = next((ln for ln in lines[2:] if ln.strip()), "")
                count += first.startswith(method + " ")
        return count

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._fh.close()


class Cli:
    """One ``python -m pyvoip_fast`` process, stdout and stderr captured to separate files."""

    def __init__(self, tmp_path: Path, name: str, args: Sequence[str]) -> None:
        self.stdout_path = tmp_path / f"{name}.out"
        self.stderr_path = tmp_path / f"{name}.err"
        self._out = open(self.stdout_path, "w")
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "pyvoip_fast", *args], stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err, env=_env())

    @property
    def stdout(self) -> str:
        self._out.flush()
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        self._err.flush()
        return self.stderr_path.read_text()

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def wait_for(self, text: str, timeout: float = 10.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stdout.count(text) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.03)
        raise AssertionError(f"{text!r} (x{count}) not seen; stdout:\n{self.stdout}\nstderr:\n{self.stderr}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._out.close()
        self._err.close()


@pytest.fixture
def procs():
    started: List[object] = []

    def keep(p):  # type: ignore[no-untyped-def]
        started.append(p)
        return p

    yield keep
    for p in started:
        p.kill()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    t = np.arange(8000) / 8000.0  # 1 s
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000, subtype="PCM_16")
    return path


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------------------------
# we call sipp


@pytest.mark.parametrize(
    "scenario, form, code, reason",
    [
        ("uas_busy.xml", "call", 486, "Busy Here"),
        ("uas_busy.xml", "positional", 486, "Busy Here"),
        ("uas_unavailable.xml", "call", 503, "Service Unavailable"),
    ],
)
def test_cli_call_rejected(procs, tmp_path: Path, wav: Path, scenario: str, form: str, code: int,
                           reason: str) -> None:
    sipp = procs(Sipp(tmp_path, "uas", scenario))
    if form == "call":
        args = ["call", f"127.0.0.1:{sipp.port}", str(wav)]
    else:
        args = ["127.0.0.1", str(free_udp_port()), "127.0.0.1", str(sipp.port), str(wav), "caller"]
    cli = procs(Cli(tmp_path, "caller", [*args, "--no-play", "--t1", "0.05"]))
    assert cli.wait() == 3, cli.stdout + cli.stderr
    line = one_error_line(cli.stderr)
    assert f"{code} {reason}" in line and "rejected" in line
    assert "Traceback" not in cli.stdout + cli.stderr
    assert f"[SIP] Received {code} {reason}" in cli.stdout
    assert "[RTP] Starting audio stream" not in cli.stdout
    assert sipp.wait() == 0  # sipp got the ACK of its final response: its call succeeded
    assert sipp.received("ACK") >= 1


def test_cli_calls_sipp_uas(procs, tmp_path: Path, wav: Path) -> None:
    """sipp's built-in uas answers but sends no RTP and has no RTCP socket: ICMP on RTCP is logged once, the call
    goes on, the file is streamed, BYE is sent and the statistics say nothing was received."""
    sipp = procs(Sipp(tmp_path, "uas", "uas"))
    stats = tmp_path / "stats.json"
    cli = procs(Cli(tmp_path, "caller", ["call", f"127.0.0.1:{sipp.port}", str(wav), "--no-play", "--t1", "0.05",
                                         "--rtcp-interval", "0.2", "--stats-json", str(stats)]))
    assert cli.wait() == 0, cli.stdout + cli.stderr
    out = cli.stdout
    for text in ("[SIP] Received 200 OK", "[SIP] Sending ACK", "[RTP] Starting audio stream to 127.0.0.1:",
                 "does not accept RTCP (ICMP port unreachable)", "[SIP] Sending BYE", "[Call] Statistics",
                 "Total Packets Sent: 50"):
        assert text in out, (text, out)
    assert out.count("does not accept RTCP") == 1
    assert cli.stderr.strip() == "" and "Traceback" not in out
    d = json.loads(stats.read_text())
    assert d["packets_sent"] == 50 and d["packets_received"] == 0 and not d["peer_lost"]
    assert sipp.wait() == 0
    assert sipp.received("BYE") == 1 and sipp.received("ACK") == 1


def test_cli_ring_timeout_cancels(procs, tmp_path: Path, wav: Path) -> None:
    """sipp rings for ever; --ring-timeout sends CANCEL; sipp answers 200 (CANCEL) + 487, which we ACK; exit 4."""
    sipp = procs(Sipp(tmp_path, "ring", "uas_ring_cancel.xml"))
    started = time.monotonic()
    cli = procs(Cli(tmp_path, "caller", ["call", f"127.0.0.1:{sipp.port}", str(wav), "--no-play", "--t1", "0.05",
                                         "--ring-timeout", "0.5"]))
    assert cli.wait() == 4, cli.stdout + cli.stderr
    assert time.monotonic() - started < 8
    line = one_error_line(cli.stderr)
    assert "no answer" in line and "487" in line
    out = cli.stdout
    for text in ("[SIP] Received 180 Ringing", "[SIP] No answer after 0.5 s: sending CANCEL",
                 f"[SIP] Sending CANCEL to 127.0.0.1:{sipp.port}", "[SIP] Received 487 Request Terminated"):
        assert text in out, (text, out)
    assert "Traceback" not in out + cli.stderr
    assert sipp.wait() == 0  # CANCEL received, 487 ACKed
    assert sipp.received("CANCEL") == 1 and sipp.received("ACK") == 1


def test_cli_ctrl_c_while_ringing_cancels(procs, tmp_path: Path, wav: Path) -> None:
    """Ctrl-C before the answer: CANCEL, the 487 is still ACKed (sipp's call completes), exit 130."""
    sipp = procs(Sipp(tmp_path, "ring", "uas_ring_cancel.xml"))
    cli = procs(Cli(tmp_path, "caller", ["call", f"127.0.0.1:{sipp.port}", str(wav), "--no-play", "--t1", "0.05"]))
    cli.wait_for("[SIP] Received 180 Ringing")
    cli.proc.send_signal(signal.SIGINT)
    assert cli.wait(10) == 130, cli.stdout + cli.stderr
    assert "[SIP] Sending CANCEL" in cli.stdout
    assert "Traceback" not in cli.stdout + cli.stderr
    assert sipp.wait() == 0, sipp.out.read_text()
    assert sipp.received("CANCEL") == 1 and sipp.received("ACK") == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_stops_within_seconds_when_the_peer_never_answers_the_bye(procs, tmp_path: Path, wav: Path,
                                                                      signum: int) -> None:
    """SIGTERM (or Ctrl-C) during a call whose peer ignores our BYE: the BYE goes out, is waited for at most
    SHUTDOWN_GRACE (3 s), the statistics are printed, exit 130; not the BYE transaction's 32 s."""
    sipp = procs(Sipp(tmp_path, "deaf", "uas_deaf_to_bye.xml"))
    cli = procs(Cli(tmp_path, "caller", ["call", f"127.0.0.1:{sipp.port}", str(wav), "--no-play",
                                         "--duration", "60"]))
    cli.wait_for("[SIP] Received 200 OK")
    time.sleep(0.3)
    cli.proc.send_signal(signum)
    signalled = time.monotonic()
    assert cli.wait(15) == 130, cli.stdout + cli.stderr
    took = time.monotonic() - signalled
    assert 2.5 < took < 6.0, took  # waited for the BYE's answer, but not for long
    out = cli.stdout
    assert "[SIP] Sending BYE" in out and "BYE not confirmed" in out + cli.stderr
    assert "[Call] Statistics" in out
    assert "Traceback" not in out + cli.stderr


def test_cli_second_signal_exits_at_once(procs, tmp_path: Path, wav: Path) -> None:
    sipp = procs(Sipp(tmp_path, "deaf", "uas_deaf_to_bye.xml"))
    cli = procs(Cli(tmp_path, "caller", ["call", f"127.0.0.1:{sipp.port}", str(wav), "--no-play",
                                         "--duration", "60"]))
    cli.wait_for("[SIP] Received 200 OK")
    time.sleep(0.3)
    cli.proc.send_signal(signal.SIGTERM)
    cli.wait_for("[SIP] Sending BYE")
    cli.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert cli.wait(10) == 130, cli.stdout + cli.stderr
    assert time.monotonic() - signalled < 1.5
    assert "Interrupted again" in cli.stdout + cli.stderr
    assert "Traceback" not in cli.stdout + cli.stderr


# ---------------------------------------------------------------------------------------------------------------
# sipp calls us


def _listen(procs, tmp_path: Path, name: str, *extra: str) -> "tuple[Cli, int]":  # type: ignore[no-untyped-def]
    port = free_udp_port()
    cli = procs(Cli(tmp_path, name, ["listen", "--bind", f"127.0.0.1:{port}", "--no-play", "--t1", "0.05", *extra]))
    cli.wait_for("[SIP] Listening on")
    return cli, port


def test_sipp_calls_cli_listen(procs, tmp_path: Path) -> None:
    """`listen` answers sipp's uac, sipp hangs up, the listener logs it, prints its statistics and exits 0."""
    cli, port = _listen(procs, tmp_path, "listener")
    sipp = procs(Sipp(tmp_path, "uac", "uac", "-d", "300", remote=f"127.0.0.1:{port}"))
    assert sipp.wait() == 0
    assert cli.wait(10) == 0, cli.stdout + cli.stderr
    out = cli.stdout
    for text in ("[SIP] Received INVITE from 127.0.0.1:", "[SIP] Sending 180 Ringing", "[SIP] Sending 200 OK",
                 "[SIP] Received ACK", "[Call] Session established", "[SIP] Received BYE",
                 "[Call] Remote party ended the session", "[Call] Statistics"):
        assert text in out, (text, out)
    assert cli.stderr.strip() == "" and "Traceback" not in out


def test_listener_ends_a_call_whose_peer_sends_nothing(procs, tmp_path: Path) -> None:
    """sipp's uac answers nothing on media (no RTP, no RTCP) and pauses 20 s before its BYE: with
    --media-timeout 2 the listener gives the call up as a network error instead of waiting forever."""
    cli, port = _listen(procs, tmp_path, "silent", "--media-timeout", "2")
    procs(Sipp(tmp_path, "uac_silent", "uac", "-d", "20000", remote=f"127.0.0.1:{port}"))
    cli.wait_for("[Call] Session established", timeout=10)
    started = time.monotonic()
    assert cli.wait(15) == 5, cli.stdout + cli.stderr
    assert time.monotonic() - started < 8
    assert "network error" in cli.stderr and "Traceback" not in cli.stdout + cli.stderr
    assert "[SIP] Sending BYE" in cli.stdout


_VANISHING_INVITE = (
    "INVITE sip:pyvoip@127.0.0.1:{port} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKvanish1\r\n"
    "From: <sip:ghost@127.0.0.1:{me}>;tag=ghost\r\n"
    "To: <sip:pyvoip@127.0.0.1:{port}>\r\n"
    "Call-ID: vanishing-caller-1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:ghost@127.0.0.1:{me}>\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n\r\n{body}"
)
_SDP = ("v=0\r\no=ghost 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio {rtp} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def test_sipp_calls_cli_listen_keep_serving(procs, tmp_path: Path) -> None:
    """--keep-serving: a caller that vanishes before its ACK fails alone (logged at once), two sipp calls are
    answered meanwhile, each ends with its statistics; Ctrl-C then stops the listener (exit 130). The file every
    caller hears is decoded before the listener takes calls, not on the loop while the first call sets up."""
    sample = ROOT / "pyvoip_fast" / "data" / "sample.wav"
    cli, port = _listen(procs, tmp_path, "listener", "--keep-serving", "--file", str(sample))
    assert "sample.wav decoded once for every caller (6.5 s)" in cli.stdout, cli.stdout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ghost:  # closed right after: our 200s draw ICMP
        ghost.bind(("127.0.0.1", 0))
        me = ghost.getsockname()[1]
        body = _SDP.format(rtp=free_udp_port())
        ghost.sendto(_VANISHING_INVITE.format(port=port, me=me, length=len(body), body=body).encode(),
                     ("127.0.0.1", port))
        cli.wait_for("[SIP] Sending 200 OK")
    sipp = procs(Sipp(tmp_path, "uac", "uac", "-d", "300", "-l", "1", calls=2, remote=f"127.0.0.1:{port}"))
    assert sipp.wait() == 0
    cli.wait_for("[Call] Remote party ended the session", count=2)
    cli.wait_for("[Call] Call 1 failed", timeout=10)  # Timer H (64*T1 = 3.2 s) without an ACK
    assert cli.proc.poll() is None  # still serving
    cli.wait_for("[Call] Statistics", count=2)
    cli.proc.send_signal(signal.SIGINT)
    assert cli.wait(10) == 130, cli.stdout + cli.stderr
    out = cli.stdout
    assert out.count("[SIP] Received INVITE from 127.0.0.1:") == 3
    assert "Traceback" not in out + cli.stderr


def test_exit_status_mapping_matches_help() -> None:
    """Every CallError maps to the exit status that ``--help`` documents (not an interop case, but the statuses
    the cases above check)."""
    from pyvoip_fast.app import cli
    from pyvoip_fast.errors import CallError

    documented = {"call rejected": cli.EXIT_REJECTED, "no answer / no response": cli.EXIT_NO_ANSWER,
                  "other failure": cli.EXIT_FAILURE}
    for text, status in documented.items():
        assert f"{status} {text}" in cli.EXIT_HELP
    cases = [(486, "Busy Here", 3), (503, "Service Unavailable", 3), (603, "Decline", 3), (404, "Not Found", 3),
             (488, "Not Acceptable Here", 3), (408, "Request Timeout", 4), (480, "Temporarily Unavailable", 4),
             (487, "Request Terminated", 4), (0, "user agent closed", 1)]
    for code, reason, status in cases:
        got, message = cli._status_for_call_error(CallError(code, reason))
        assert got == status, (code, got)
        assert reason in message and "\n" not in message
