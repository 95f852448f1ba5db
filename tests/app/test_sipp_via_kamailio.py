"""sipp and pyvoip_fast registering and calling through the same real Kamailio (``tests/kamailio_harness.py``).

- sipp registers bob (digest auth) with a Contact where a second sipp answers; a sipp alice calls bob through
  Kamailio answering the proxy's 407: proves the registrar/proxy the other tests rely on with a third-party UA;
- a registered pyvoip_fast phone calls that sipp callee through Kamailio (407 answered, Record-Route copied by
  sipp and followed by our ACK and BYE);
- a sipp alice calls a registered pyvoip_fast phone through Kamailio: the call reaches us by AOR, our 200 OK
  carries Kamailio's Record-Route, and sipp's ACK and BYE come back along it.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path
from typing import Iterator, List

import pytest

import numpy as np

from helpers import require_tool
from kamailio_harness import Kamailio
from mediakit import ArraySource, ListSink, run
from pyvoip_fast.app.account import Account
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig

pytestmark = pytest.mark.interop

SCENARIOS = Path(__file__).resolve().parent.parent / "data" / "sipp"
USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}
FAST = TimerConfig(t1=0.1, t2=0.8, t4=1.0)


@pytest.fixture(scope="module")
def kam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    with Kamailio(tmp_path_factory.mktemp("kamailio-sipp"), users=USERS) as server:
        yield server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sipp(kam: Kamailio, scenario: str, port: int, *extra: str) -> List[str]:
    exe = require_tool("sipp")
    return [exe, f"{kam.host}:{kam.udp_port}", "-sf", str(SCENARIOS / scenario), "-m", "1", "-timeout", "20s",
            "-nostdin", "-i", "127.0.0.1", "-p", str(port), *extra]


def _wait_bound(port: int, proc: "subprocess.Popen[bytes]") -> None:
    import time

    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError("sipp did not start listening")


def _register_sipp_callee(kam: Kamailio, user: str) -> "subprocess.Popen[bytes]":
    """A sipp UAS on a free port, registered as ``user`` by a second sipp; returns the UAS process."""
    uas_port = _free_port()
    uas = subprocess.Popen(_sipp(kam, "kam_uas.xml", uas_port), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    _wait_bound(uas_port, uas)
    reg = subprocess.run(_sipp(kam, "kam_register.xml", _free_port(), "-s", user, "-au", user, "-ap", USERS[user],
                               "-key", "contact_port", str(uas_port)),
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    if reg.returncode != 0:
        uas.kill()
        uas.communicate()
    assert reg.returncode == 0, reg.stderr.decode(errors="replace")[-2000:]
    return uas


def test_sipp_registers_and_sipp_calls_it_through_kamailio(kam: Kamailio) -> None:
    byes_before = len(kam.requests("BYE"))
    uas = _register_sipp_callee(kam, "bob")
    try:
        caller = subprocess.run(_sipp(kam, "kam_uac_auth.xml", _free_port(), "-s", "bob", "-au", "alice", "-ap",
                                      USERS["alice"]),
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        assert caller.returncode == 0, caller.stderr.decode(errors="replace")[-2000:]
        out, err = uas.communicate(timeout=30)
        assert uas.returncode == 0, err.decode(errors="replace")[-2000:]
    finally:
        if uas.poll() is None:
            uas.kill()
            uas.communicate()
    assert len(kam.requests("BYE")) > byes_before


def test_pyvoip_phone_calls_a_sipp_callee_through_kamailio(kam: Kamailio) -> None:
    uas = _register_sipp_callee(kam, "carol")
    account = Account("sip:alice@example.test", password=USERS["alice"], proxy=f"sip:{kam.host}:{kam.udp_port}")

    async def main() -> int:
        async with Phone("127.0.0.1", 0, timers=FAST, account=account) as alice:
            call = await alice.call("sip:carol@example.test", source=ArraySource(np.zeros(8000, np.int16)))
            await call.wait_done()
            return int(call.stats.packets_sent)

    byes_before = len(kam.requests("BYE"))
    try:
        sent = run(main())
        out, err = uas.communicate(timeout=30)
        assert uas.returncode == 0, err.decode(errors="replace")[-2000:]
    finally:
        if uas.poll() is None:
            uas.kill()
            uas.communicate()
    assert sent == 50
    # our BYE reached Kamailio (it follows the Record-Route sipp copied into its 200 OK) and was relayed
    byes = kam.requests("BYE")[byes_before:]
    assert byes and all("From sip:alice@example.test" in line for line in byes), byes


def test_sipp_calls_a_registered_pyvoip_phone_through_kamailio(kam: Kamailio) -> None:
    account = Account("sip:bob@example.test", password=USERS["bob"], proxy=f"sip:{kam.host}:{kam.udp_port}")

    async def main() -> str:
        async with Phone("127.0.0.1", 0, timers=FAST, account=account) as bob:
            answering = asyncio.create_task(bob.answer(sink=ListSink()))
            caller = await asyncio.create_subprocess_exec(
                *_sipp(kam, "kam_uac_auth.xml", _free_port(), "-s", "bob", "-au", "alice", "-ap", USERS["alice"]),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            call = await asyncio.wait_for(answering, 20)
            # the INVITE came through Kamailio: its Record-Route is our route set, From is alice's AOR
            assert call.sip.remote_sdp is not None
            _, err = await asyncio.wait_for(caller.communicate(), 30)
            assert caller.returncode == 0, err.decode(errors="replace")[-2000:]
            return str(await asyncio.wait_for(call.wait_done(), 10))

    reason = run(main())
    assert "remote" in reason.lower(), reason
    invites = [line for line in kam.requests("INVITE") if "sip:bob@example.test" in line]
    assert invites and "From sip:alice@example.test" in invites[-1]
