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
from typing import Any, List

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
    sig = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sig.bind(("127.0.0.1", 0))
    sig.setblocking(False)
    me = sig.getsockname()[1]

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
