"""Overload control from measured load (``app/load.py``): while the event loop is late, new INVITEs get 503.

A phone with ``max_loop_lag=0.15`` has its loop blocked for 500 ms (what a process far past its capacity feels
like): an INVITE then gets ``503 Service Unavailable`` with ``Retry-After`` at once, an OPTIONS still gets 200, and
the refusal is counted as ``overload``; a second later, with the loop on time again, a call is answered.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from typing import Any, List, Tuple

import numpy as np
import pytest

from mediakit import ArraySource, run
from pyvoip_fast.app.load import LoadMonitor
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.sip.admission import Admission
from pyvoip_fast.sip.message import SipResponse, parse_message

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def _request(method: str, sig_port: int, to_port: int, call_id: str) -> bytes:
    sdp = (b"v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n") if method == "INVITE" else b""
    head = (f"{method} sip:pyvoip@127.0.0.1:{to_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{sig_port};branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:caller@127.0.0.1>;tag={call_id}\r\nTo: <sip:pyvoip@127.0.0.1>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 {method}\r\nContact: <sip:caller@127.0.0.1:{sig_port}>\r\nMax-Forwards: 70\r\n")
    if sdp:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(sdp)}\r\n\r\n").encode() + sdp


def _caller_socket() -> Tuple[socket.socket, int]:
    """The caller's signalling socket on loopback (non-blocking) and its port."""
    sig = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sig.bind(("127.0.0.1", 0))
    sig.setblocking(False)
    return sig, sig.getsockname()[1]


async def _responses(sig: socket.socket, wait: float) -> List[SipResponse]:
    await asyncio.sleep(wait)
    out = []
    while True:
        try:
            msg = parse_message(sig.recv(4096))
        except BlockingIOError:
            return out
        if isinstance(msg, SipResponse):
            out.append(msg)


def test_a_late_event_loop_turns_new_invites_away_with_503_and_still_answers_options() -> None:
    sig, me = _caller_socket()

    async def main() -> Any:
        async with Phone("127.0.0.1", 0, timers=FAST, max_loop_lag=0.15) as phone:
            assert phone.load is not None
            to = phone.local_address
            asyncio.get_running_loop().call_soon(time.sleep, 0.5)  # the loop falls 500 ms behind
            await asyncio.sleep(0.12)
            assert phone.load.lag > 0.3
            sent = time.monotonic()
            sig.sendto(_request("INVITE", me, to[1], secrets.token_hex(6)), to)
            sig.sendto(_request("OPTIONS", me, to[1], secrets.token_hex(6)), to)
            refused = await _responses(sig, 0.1)
            took = time.monotonic() - sent
            assert phone.ua is not None
            counters = phone.ua.endpoint.admission.snapshot()
            await asyncio.sleep(1.2)  # a window with the loop on time: calls are taken again
            answering = asyncio.create_task(phone.answer(source=ArraySource(np.zeros(800, np.int16))))
            sig.sendto(_request("INVITE", me, to[1], secrets.token_hex(6)), to)
            taken = await _responses(sig, 0.3)
            answering.cancel()
            return refused, took, counters, taken

    try:
        refused, took, counters, taken = run(main())
    finally:
        sig.close()
    by_method = {r.headers.get("CSeq", "").split()[-1]: r for r in refused}
    assert by_method["INVITE"].status_code == 503 and by_method["INVITE"].headers.get("Retry-After")
    assert by_method["OPTIONS"].status_code == 200
    assert took < 0.6 and counters["overload"] == 1  # at once: no retransmission of the INVITE was needed
    assert any(r.status_code in (100, 180, 200) for r in taken) and not any(r.status_code == 503 for r in taken)


def test_load_monitor_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        LoadMonitor(Admission(), max_lag=0)
    with pytest.raises(ValueError):
        LoadMonitor(Admission(), max_lag=0.1, interval=0.5, window=0.1)


def test_cli_max_lag_option_is_validated() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "pyvoip_fast", "listen", "--max-lag", "0"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and "--max-lag" in result.stderr and "Traceback" not in result.stderr


# -- the call budget (--max-cpu): the calls' measured CPU cost limits how many are taken ---------------------------

def test_admission_refuses_new_invites_at_the_call_budget_and_nothing_else() -> None:
    adm = Admission()
    adm.call_budget = 3
    assert adm.check("192.0.2.1", 0.0, method="INVITE", calls=2).key == ""
    refused = adm.check("192.0.2.1", 0.0, method="INVITE", calls=3)
    assert (refused.status, refused.key, refused.retry_after) == (503, "overload", adm.retry_after)
    assert adm.check("192.0.2.1", 0.0, method="OPTIONS", calls=3).key == ""
    assert adm.check("192.0.2.1", 0.0, method="other", calls=3).key == ""  # requests within calls: never refused
    adm.call_budget = None
    assert adm.check("192.0.2.1", 0.0, method="INVITE", calls=3).key == ""
    assert adm.snapshot()["overload"] == 1


def test_call_budget_is_the_cpu_limit_over_what_a_call_costs_over_the_window() -> None:
    cpu = [0.0]
    calls = [40]
    mon = LoadMonitor(Admission(), max_cpu=0.8, calls=lambda: calls[0], cpu_time=lambda: cpu[0], window=1.0)
    budgets = []
    for k in range(21):  # 1 s at 50 ms: the process uses 60 % of a core for 40 calls, 15 ms per call-second
        cpu[0] = 0.6 * k * 0.05
        budgets.append(mon._budget(k * 0.05))
    assert budgets[:10] == [None] * 10  # less than half a window of history: no figure yet
    assert mon.cpu_share == pytest.approx(0.6) and mon.call_cost == pytest.approx(0.015)
    assert budgets[-1] == 53  # 0.8 / 0.015
    for k in range(21, 61):  # the calls get cheaper (20 % for 40 calls): the budget follows within a window
        cpu[0] += 0.2 * 0.05
        budget = mon._budget(k * 0.05)
    assert budget == 160
    calls[0] = 5
    for k in range(61, 101):  # a handful of calls says nothing of the cost of many: no budget
        cpu[0] += 0.01 * 0.05
        budget = mon._budget(k * 0.05)
    assert budget is None and mon.call_cost is None


def test_load_monitor_needs_a_limit_and_calls_for_the_cpu_budget() -> None:
    with pytest.raises(ValueError, match="max_lag, max_cpu"):
        LoadMonitor(Admission())
    with pytest.raises(ValueError, match="calls"):
        LoadMonitor(Admission(), max_cpu=0.5)
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="share of one core"):
            LoadMonitor(Admission(), max_cpu=bad, calls=lambda: 0)
    with pytest.raises(ValueError, match="share of one core"):
        Phone("127.0.0.1", 0, max_cpu=2.0)


def test_a_phone_at_its_cpu_budget_answers_new_invites_503_at_once_and_still_options(monkeypatch: Any) -> None:
    """One call ringing costs (by a CPU clock that says so) a whole core: with ``max_cpu=0.5`` the budget is that
    one call, so the next INVITE gets 503 with Retry-After at once; OPTIONS still get 200."""
    from pyvoip_fast.app import load

    monkeypatch.setattr(load, "MIN_CALLS", 1)
    sig, me = _caller_socket()

    async def main() -> Any:
        async with Phone("127.0.0.1", 0, timers=FAST, max_cpu=0.5) as phone:
            assert phone.load is not None and phone.ua is not None
            loop = asyncio.get_running_loop()
            phone.load._cpu_time = loop.time  # a busy process: one CPU second per second
            to = phone.local_address
            sig.sendto(_request("INVITE", me, to[1], secrets.token_hex(6)), to)  # rings: not answered
            first = await _responses(sig, 1.3)
            budget, live = phone.ua.endpoint.admission.call_budget, phone.ua.endpoint.live_calls
            sent = time.monotonic()
            sig.sendto(_request("INVITE", me, to[1], secrets.token_hex(6)), to)
            sig.sendto(_request("OPTIONS", me, to[1], secrets.token_hex(6)), to)
            refused = await _responses(sig, 0.1)
            took = time.monotonic() - sent
            return first, budget, live, refused, took, phone.ua.endpoint.admission.snapshot()

    try:
        first, budget, live, refused, took, counters = run(main())
    finally:
        sig.close()
    assert not any(r.status_code == 503 for r in first) and any(r.status_code in (100, 180) for r in first)
    assert (budget, live) == (1, 1)
    by_method = {r.headers.get("CSeq", "").split()[-1]: r for r in refused}
    assert by_method["INVITE"].status_code == 503 and by_method["INVITE"].headers.get("Retry-After")
    assert by_method["OPTIONS"].status_code == 200
    assert took < 0.6 and counters["overload"] == 1


def test_cli_max_cpu_option_is_validated() -> None:
    import subprocess
    import sys

    for bad in ("0", "101", "x"):
        result = subprocess.run([sys.executable, "-m", "pyvoip_fast", "listen", "--max-cpu", bad],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and "--max-cpu" in result.stderr and "Traceback" not in result.stderr


def test_without_media_a_busy_loop_below_a_frame_never_marks_a_small_max_lag_overloaded() -> None:
    """``--max-lag 1`` with no call up: a caller's INVITEs keep the loop a few milliseconds busy at a time. That makes
    no packet late, so it must not mark the process overloaded (the mark would then hold, and no call be let in);
    a loop blocked for longer than a frame still does."""
    from pyvoip_fast.app.load import NO_MEDIA_MIN_LAG

    async def main() -> Any:
        adm = Admission()
        mon = LoadMonitor(adm, max_lag=0.001)
        mon.start()
        loop = asyncio.get_running_loop()
        marked = False
        for _ in range(60):  # 0.6 s of 4 ms callbacks every 10 ms
            loop.call_soon(time.sleep, 0.004)
            await asyncio.sleep(0.01)
            marked |= adm.overloaded
        busy_worst = mon.lag
        loop.call_soon(time.sleep, NO_MEDIA_MIN_LAG + 0.08)  # longer than the monitor's interval: it sees the lag
        await asyncio.sleep(0.12)
        blocked = adm.overloaded
        mon.stop()
        return marked, busy_worst, blocked

    marked, busy_worst, blocked = run(main())
    assert 0.001 < busy_worst < NO_MEDIA_MIN_LAG  # late by more than max_lag, less than a frame
    assert not marked and blocked
