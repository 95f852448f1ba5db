"""The media-plane rules across a real NAT: three hosts in network namespaces (``netlab.NatLab``).

- A caller behind the NAT offers its private address; the listener on the public host latches to the NAT's
  public port (symmetric RTP), and when the router's mapping moves to another port mid-call (mapping flushed, new
  port range) both directions follow it within a second and the call ends normally through the new mapping.
- A loopback or link-local media address offered by a caller on another host is refused with 488 and a Warning,
  and counted in the listener's ``-listener.json``: such an address could only name the listener's own host.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterator

import pytest

from helpers import ROOT, SAMPLE, stop_process
from netlab import FIRST_PORTS, LAN_ADDR, NAT_PUBLIC, PUB_ADDR, REBOUND_PORTS, NatLab, require_netlab

pytestmark = [pytest.mark.timeout(90), pytest.mark.interop]  # network namespaces: Linux and root only


@pytest.fixture()
def lab() -> Iterator[NatLab]:
    require_netlab()
    with NatLab() as made:
        yield made


def _wait_for(path: Path, pattern: str, proc: subprocess.Popen, timeout: float) -> re.Match:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = path.read_text(errors="replace") if path.exists() else ""
        found = re.search(pattern, text)
        if found:
            return found
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"never logged {pattern!r}:\n{path.read_text(errors='replace')[-3000:]}")


def _listener(lab: NatLab, tmp: Path, *extra: str) -> subprocess.Popen:
    with open(tmp / "listener.log", "w") as log:
        proc = subprocess.Popen(
            lab.python(lab.pub, "-m", "pyvoip_fast", "listen", "--bind", f"{PUB_ADDR}:5060", "--no-play",
                       "--stats-json", str(tmp / "listener.json"), *extra),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
    _wait_for(tmp / "listener.log", r"\[SIP\] Listening on", proc, 20)
    return proc


def test_a_nat_rebinding_mid_call_is_followed_both_ways(lab: NatLab, tmp_path: Path) -> None:
    listener = _listener(lab, tmp_path, "--file", str(SAMPLE))
    caller_log = tmp_path / "caller.log"
    try:
        with open(caller_log, "w") as out:
            caller = subprocess.Popen(
                lab.python(lab.lan, "-m", "pyvoip_fast", "call", f"{PUB_ADDR}:5060", str(SAMPLE),
                           "--bind", f"{LAN_ADDR}:5060", "--no-play", "--rtcp-interval", "1", "--stats-json",
                           str(tmp_path / "caller.json")),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        latched = _wait_for(tmp_path / "listener.log",
                            r"\[RTP\] Peer sends from ([\d.]+):(\d+); sending there", listener, 20)
        assert latched.group(1) == NAT_PUBLIC  # the NAT's public side, not the private address in the SDP
        assert FIRST_PORTS[0] <= int(latched.group(2)) <= FIRST_PORTS[1]
        # the peer's first report came through the first mapping too (so ours must follow it when it moves)
        _wait_for(tmp_path / "listener.log", r"\[RTCP Report Received\]", listener, 10)
        time.sleep(0.3)
        lab.rebind()
        rebound_at = time.monotonic()
        moved = _wait_for(tmp_path / "listener.log",
                          r"\[RTP\] Peer now sends from ([\d.]+):(\d+) \(was [\d.]+:(\d+)\); following it",
                          listener, 10)
        followed_after = time.monotonic() - rebound_at
        assert moved.group(1) == NAT_PUBLIC
        assert REBOUND_PORTS[0] <= int(moved.group(2)) <= REBOUND_PORTS[1]
        assert moved.group(3) == latched.group(2), moved.group(0)
        assert caller.wait(40) == 0, caller_log.read_text()[-3000:]
        assert listener.wait(20) == 0
    finally:
        stop_process(listener)
        if "caller" in locals():
            stop_process(caller)
    log = (tmp_path / "listener.log").read_text()
    # the peer's reports, from their new port too, are still the peer's, and ours follow them there
    assert re.search(r"\[RTCP\] Peer's reports now come from " + re.escape(NAT_PUBLIC) + r":3\d{4}", log), log
    assert "Traceback" not in log and "Traceback" not in caller_log.read_text()
    heard_by_caller = json.loads((tmp_path / "caller.json").read_text())
    heard_by_listener = json.loads((tmp_path / "listener.json").read_text())
    sent = heard_by_caller["packets_sent"]
    # both ways, only what was in flight while the router had no mapping is missing: about half a second
    # (the listener waits RELEARN_QUIET for the old source before it follows the new one)
    for side in (heard_by_caller, heard_by_listener):
        assert side["packets_sent"] >= 300
        assert side["packets_received"] >= side["packets_sent"] - 60, side
        assert side["packets_lost"] <= 60, side
    assert heard_by_listener["packets_received"] >= sent - 60
    assert followed_after < 3.0
    assert heard_by_caller["bye_received"] is False  # the caller hung up at the end of its file


_SCOPE_PROBE = r"""
import json, socket, sys, time
sys.path.insert(0, sys.argv[1])
from rawsip import invite
from pyvoip_fast.sip.message import SipResponse, parse_message

host, target, media = sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, 0))
s.settimeout(0.5)
s.sendto(invite(s.getsockname()[1], 5060, media, 40000, "scope" + media.replace(".", ""), host=host,
                to_host=target), (target, 5060))
end = time.monotonic() + 8
while time.monotonic() < end:
    try:
        msg = parse_message(s.recv(4096))
    except socket.timeout:
        continue
    if isinstance(msg, SipResponse) and msg.status_code >= 200:
        print(json.dumps({"status": msg.status_code, "warning": msg.headers.get("Warning")}))
        sys.exit(0)
sys.exit("no final response")
"""


def test_loopback_and_link_local_media_from_another_host_are_refused(lab: NatLab, tmp_path: Path) -> None:
    listener = _listener(lab, tmp_path, "--keep-serving")
    answers: Dict[str, Dict] = {}
    try:
        for media in ("127.0.0.1", "169.254.10.20"):
            probe = subprocess.run(
                lab.python(lab.lan, "-c", _SCOPE_PROBE, str(ROOT / "tests"), LAN_ADDR, PUB_ADDR, media),
                capture_output=True, text=True, timeout=30, cwd=ROOT)
            assert probe.returncode == 0, probe.stderr
            answers[media] = json.loads(probe.stdout)
    finally:
        stop_process(listener, 15)
    for media, answer in answers.items():
        assert answer["status"] == 488, (media, answer)
        assert answer["warning"] and answer["warning"].startswith("399 "), answer
    counts = json.loads((tmp_path / "listener-listener.json").read_text())
    assert counts["rejected"]["media_address"] == 2, counts
    log = (tmp_path / "listener.log").read_text()
    assert "Traceback" not in log

