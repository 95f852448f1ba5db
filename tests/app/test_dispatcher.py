"""Scale-out behind Kamailio's dispatcher (``deploy/kamailio/dispatcher.cfg``), with a real Kamailio and sipp.

Three ``pyvoip-fast listen --keep-serving`` workers behind one Kamailio that hashes new calls over the Call-ID
and probes the workers with OPTIONS every second. sipp places calls at the proxy: they spread over the workers
and all complete. One worker is killed; after the probe interval the next calls go to the two others and not one
fails.

Kamailio's parallel UDP workers can deliver a 180 after the 200: sipp runs with ``-default_behaviors
all,-abortunexp`` and the scenario's 180 is merely optional, so a late 180 is ignored instead of failing the call
(or, as ``optional="global"`` did, sending the scenario back to wait for a 200 that already came).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from helpers import require_tool
from kamailio_harness import Kamailio

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "deploy" / "kamailio" / "dispatcher.cfg"
pytestmark = [pytest.mark.timeout(120), pytest.mark.interop]  # Kamailio and sipp
SCENARIO = Path(__file__).resolve().parents[1] / "data" / "sipp" / "uac_via_proxy.xml"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Worker:
    def __init__(self, workdir: Path, index: int) -> None:
        self.port = _free_port()
        self.out = workdir / f"worker{index}.out"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._fh = open(self.out, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "pyvoip_fast", "listen", "--keep-serving", "--bind",
                                      f"127.0.0.1:{self.port}", "--no-play", "--t1", "0.1"],
                                     stdout=self._fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 10
        while "[SIP] Listening on" not in self.text():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.text()
            time.sleep(0.05)

    def text(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.out.read_text(errors="replace")

    def calls(self) -> int:
        return self.text().count("[SIP] Received INVITE from")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._fh.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[List[_Worker]]:
    started = [_Worker(tmp_path, i) for i in range(3)]
    yield started
    for w in started:
        w.stop()


def _sipp_calls(kam: Kamailio, workdir: Path, calls: int, tag: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    sipp = require_tool("sipp")
    return subprocess.run([sipp, f"127.0.0.1:{kam.udp_port}", "-sf", str(SCENARIO), "-m", str(calls),
                           "-r", "10", "-default_behaviors", "all,-abortunexp", "-i", "127.0.0.1", "-p", str(_free_port()), "-timeout", "40s",
                           "-timeout_error", "-nostdin", "-trace_err", "-error_file", str(workdir / f"sipp-{tag}.err")],
                          capture_output=True, text=True, timeout=60, cwd=workdir)


def _errors(workdir: Path, tag: str) -> str:
    path = workdir / f"sipp-{tag}.err"
    return path.read_text(errors="replace")[:6000] if path.exists() else "(no sipp error file)"


def test_calls_spread_over_workers_and_avoid_a_dead_one(tmp_path: Path, workers: List[_Worker]) -> None:
    listing = tmp_path / "dispatcher.list"
    listing.write_text("".join(f"1 sip:127.0.0.1:{w.port}\n" for w in workers))
    values: Dict[str, str] = {"DISPATCHER_LIST": str(listing)}
    with Kamailio(tmp_path / "kamailio", users={}, template=RECIPE, values=values) as kam:
        first = _sipp_calls(kam, tmp_path, 24, "before")
        assert first.returncode == 0, _errors(tmp_path, "before") + kam.log_tail(60)
        before = [w.calls() for w in workers]
        assert sum(before) == 24 and all(n >= 1 for n in before), before  # Call-ID hashing spreads them
        workers[1].stop()  # a worker dies
        time.sleep(3.0)  # the probe interval (1 s) and the inactive threshold (1 failed probe), with margin
        second = _sipp_calls(kam, tmp_path, 24, "after")
        log = kam.log_text()
    assert second.returncode == 0, _errors(tmp_path, "after") + log[-6000:]
    after = [w.calls() - b for w, b in zip(workers, before)]
    assert after[1] == 0 and after[0] + after[2] == 24, after
    for w in (workers[0], workers[2]):
        assert "Traceback" not in w.text()
