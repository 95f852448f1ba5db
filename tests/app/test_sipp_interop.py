"""Interop with the real sipp (Debian package ``sip-tester``), over UDP on 127.0.0.1.

Every case is checked from both sides: our events / exception and log lines, and sipp's exit status (0 = every
call of the scenario succeeded) plus its message trace (``-trace_msg``) or statistics (``-trace_stat``).
sipp runs with ``-nostdin`` (no terminal in CI), ``-m 1`` (one call), ``-timeout 20s`` as a safety net.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from helpers import DATA, require_tool

from pyvoip_fast.errors import CallError
from pyvoip_fast.sip.sdp import SessionDescription, make_answer, make_offer, negotiate
from pyvoip_fast.app.useragent import TimerConfig, UserAgent

pytestmark = pytest.mark.interop

SCENARIOS = DATA / "sipp"
FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sipp:
    """One sipp process with its traces in ``tmp_path``."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        self.messages = tmp_path / f"{name}_messages.log"
        self.errors = tmp_path / f"{name}_errors.log"
        self.stats = tmp_path / f"{name}_stats.csv"
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.port = free_udp_port()
        self.stdout = b""
        self.stderr = b""

    async def start(self, scenario: str, *extra: str) -> None:
        exe = require_tool("sipp")
        args: List[str] = [exe, *extra]
        if scenario.endswith(".xml"):
            args += ["-sf", str(SCENARIOS / scenario)]
        else:
            args += ["-sn", scenario]
        args += [
            "-m", "1", "-timeout", "20s", "-nostdin", "-i", "127.0.0.1", "-p", str(self.port),
            "-trace_err", "-error_file", str(self.errors),
            "-trace_msg", "-message_file", str(self.messages),
            "-trace_stat", "-stf", str(self.stats),
        ]
        self.proc = await asyncio.create_subprocess_exec(
            *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        await self._wait_bound()

    async def _wait_bound(self) -> None:
        """Wait until sipp's UDP port is taken (it is listening)."""
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", self.port))
                except OSError:
                    return
            assert self.proc is not None
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.02)
        raise AssertionError("sipp did not start listening")

    async def wait(self, timeout: float = 25.0) -> int:
        assert self.proc is not None
        self.stdout, self.stderr = await asyncio.wait_for(self.proc.communicate(), timeout)
        assert self.proc.returncode is not None
        return self.proc.returncode

    def trace(self) -> str:
        return self.messages.read_text(errors="replace") if self.messages.exists() else ""

    def successful_calls(self) -> int:
        """SuccessfulCall(C) from the last line of the -trace_stat CSV."""
        lines = [ln for ln in self.stats.read_text().splitlines() if ln.strip()]
        header = lines[0].split(";")
        last = lines[-1].split(";")
        return int(last[header.index("SuccessfulCall(C)")])

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


def _received_requests(trace: str, method: str) -> int:
    """How many ``method`` requests sipp received, from its -trace_msg log."""
    count = 0
    blocks = trace.split("----------------------------------------------- ")
    for block in blocks:
        lines = block.split("\n")
        if len(lines) > 2 and "message received" in lines[1]:
            first = next((ln for ln in lines[2:] if ln.strip()), "")
            if first.startswith(method + " "):
                count += 1
    return count


async def _run(coro: "asyncio.Future[object]", sipp: Sipp) -> object:
    try:
        return await coro
    finally:
        sipp.kill()


# ---------------------------------------------------------------------------------------------------------------
# sipp calls us


@pytest.mark.parametrize("scenario", ["uac", "uac_pcmu.xml"])
def test_sipp_calls_us(tmp_path: Path, scenario: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pyvoip_fast.app.useragent")

    async def main() -> Tuple[int, str, SessionDescription, int]:
        async with await UserAgent.create("127.0.0.1", 0) as ua:
            sipp = Sipp(tmp_path, "uac")
            host, port = ua.local_address
            await sipp.start(scenario, f"{host}:{port}")
            try:
                incoming = await asyncio.wait_for(ua.incoming(), 10)
                await incoming.ring()
                call = await incoming.answer(make_answer(incoming.offer, "127.0.0.1", 40000))
                reason = await asyncio.wait_for(call.wait_ended(), 15)
                rc = await sipp.wait()
            finally:
                sipp.kill()
            return rc, reason, incoming.offer, sipp.successful_calls()

    rc, reason, offer, successes = asyncio.run(main())
    assert rc == 0, "sipp reported a failed call"
    assert successes == 1
    assert reason == "remote hangup"
    assert offer.first_audio() is not None
    log = caplog.text
    for line in ("[SIP] Received INVITE from 127.0.0.1:", "[SIP] Sending 100 Trying", "[SIP] Sending 180 Ringing",
                 "[SIP] Sending 200 OK", "[SIP] Received ACK", "[SIP] Received BYE"):
        assert line in log


# ---------------------------------------------------------------------------------------------------------------
# we call sipp


def test_we_call_sipp_uas(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pyvoip_fast.app.useragent")

    async def main() -> Tuple[int, str, str]:
        sipp = Sipp(tmp_path, "uas")
        await sipp.start("uas")
        try:
            async with await UserAgent.create("127.0.0.1", 0) as ua:
                call = await asyncio.wait_for(ua.call(("127.0.0.1", sipp.port), make_offer("127.0.0.1", 40002)), 10)
                params = negotiate(call.local_sdp, call.remote_sdp)
                assert params.encoding == "PCMU" and params.payload_type == 0
                await call.hangup()
                reason = await call.wait_ended()
            return await sipp.wait(), reason, sipp.trace()
        finally:
            sipp.kill()

    rc, reason, trace = asyncio.run(main())
    assert rc == 0
    assert reason == "local hangup"
    assert _received_requests(trace, "ACK") >= 1 and _received_requests(trace, "BYE") >= 1
    for line in ("[SIP] Sending INVITE to 127.0.0.1:", "[SIP] Received 200 OK", "[SIP] Sending ACK",
                 "[SIP] Sending BYE"):
        assert line in caplog.text


def test_we_call_sipp_pcmu_answer(tmp_path: Path) -> None:
    async def main() -> Tuple[int, str]:
        sipp = Sipp(tmp_path, "uas_pcmu")
        await sipp.start("uas_pcmu.xml")
        try:
            async with await UserAgent.create("127.0.0.1", 0) as ua:
                call = await asyncio.wait_for(ua.call(f"sip:bob@127.0.0.1:{sipp.port}",
                                                      make_offer("127.0.0.1", 40004)), 10)
                params = negotiate(call.local_sdp, call.remote_sdp)
                assert (params.encoding, params.ptime, params.dtmf_payload_type) == ("PCMU", 20, None)
                assert params.remote_rtp[0] == "127.0.0.1"
                await call.hangup()
                return await sipp.wait(), await call.wait_ended()
        finally:
            sipp.kill()

    rc, reason = asyncio.run(main())
    assert rc == 0  # sipp's regexps on our offer matched (check_it) and the call completed
    assert reason == "local hangup"


@pytest.mark.parametrize(
    "scenario, code, reason",
    [("uas_busy.xml", 486, "Busy Here"), ("uas_unavailable.xml", 503, "Service Unavailable")],
)
def test_sipp_rejects(tmp_path: Path, scenario: str, code: int, reason: str,
                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pyvoip_fast.app.useragent")

    async def main() -> Tuple[CallError, int, str]:
        sipp = Sipp(tmp_path, scenario[:-4])
        await sipp.start(scenario)
        try:
            async with await UserAgent.create("127.0.0.1", 0, timers=FAST) as ua:
                with pytest.raises(CallError) as info:
                    await asyncio.wait_for(ua.call(("127.0.0.1", sipp.port), make_offer("127.0.0.1", 40006)), 10)
            return info.value, await sipp.wait(), sipp.trace()
        finally:
            sipp.kill()

    error, rc, trace = asyncio.run(main())
    assert (error.status_code, error.reason) == (code, reason)
    assert rc == 0  # sipp got the ACK for its final response: its call succeeded
    assert _received_requests(trace, "ACK") >= 1
    assert f"[SIP] Call failed: {code} {reason}" in caplog.text


def test_sipp_never_answers_timer_b(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pyvoip_fast.app.useragent")

    async def main() -> Tuple[CallError, float, str]:
        sipp = Sipp(tmp_path, "uas_silent")
        await sipp.start("uas_silent.xml")
        try:
            async with await UserAgent.create("127.0.0.1", 0, timers=FAST) as ua:
                loop = asyncio.get_running_loop()
                start = loop.time()
                with pytest.raises(CallError) as info:
                    await asyncio.wait_for(ua.call(("127.0.0.1", sipp.port), make_offer("127.0.0.1", 40008)), 10)
                elapsed = loop.time() - start
            await sipp.wait()
            return info.value, elapsed, sipp.trace()
        finally:
            sipp.kill()

    error, elapsed, trace = asyncio.run(main())
    assert error.status_code == 408 and error.reason == "Request Timeout"
    assert "no response" in str(error)
    assert 64 * FAST.t1 - 0.1 <= elapsed < 64 * FAST.t1 + 2.0
    # Timer A: the INVITE was retransmitted (sent 7 times in 64*T1: at 0, 1, 3, 7, 15, 31, 63 T1)
    assert caplog.text.count("[SIP] Retransmitting INVITE") >= 5
    assert _received_requests(trace, "INVITE") >= 1


class _LossyRelay(asyncio.DatagramProtocol):
    """Forwards UDP between our UA and sipp, dropping the first datagram from the UA (the INVITE)."""

    def __init__(self, server: Tuple[str, int]) -> None:
        self.server = server
        self.client: Optional[Tuple[str, int]] = None
        self.dropped: List[bytes] = []
        self.transport: Optional[asyncio.DatagramTransport] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Tuple[str, int]) -> None:
        assert self.transport is not None
        if addr == self.server:
            if self.client is not None:
                self.transport.sendto(data, self.client)
            return
        self.client = addr
        if not self.dropped:
            self.dropped.append(data)
            return
        self.transport.sendto(data, self.server)


def test_first_invite_lost_retransmission_carries_call(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pyvoip_fast.app.useragent")

    async def main() -> Tuple[int, str, List[bytes], str]:
        sipp = Sipp(tmp_path, "uas_lossy")
        await sipp.start("uas_pcmu.xml")
        loop = asyncio.get_running_loop()
        relay_transport, relay = await loop.create_datagram_endpoint(
            lambda: _LossyRelay(("127.0.0.1", sipp.port)), local_addr=("127.0.0.1", 0)
        )
        try:
            relay_addr = relay_transport.get_extra_info("sockname")[:2]
            async with await UserAgent.create("127.0.0.1", 0, timers=TimerConfig(t1=0.2)) as ua:
                call = await asyncio.wait_for(ua.call(tuple(relay_addr), make_offer("127.0.0.1", 40010)), 10)
                await call.hangup()
                reason = await call.wait_ended()
            return await sipp.wait(), reason, relay.dropped, sipp.trace()
        finally:
            relay_transport.close()
            sipp.kill()

    rc, reason, dropped, trace = asyncio.run(main())
    assert len(dropped) == 1 and dropped[0].startswith(b"INVITE ")
    assert rc == 0
    assert reason == "local hangup"
    assert "[SIP] Retransmitting INVITE" in caplog.text
    # sipp saw exactly one INVITE: the retransmission (byte-identical to the lost one)
    assert _received_requests(trace, "INVITE") == 1


# ---------------------------------------------------------------------------------------------------------------
# what we start inside a call: hold by our own re-INVITE, a blind transfer by REFER


def test_we_hold_and_transfer_a_sipp_callee(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """sipp checks our re-INVITE offers sendonly and our REFER names the target; its recvonly answer and its
    NOTIFY (a message/sipfrag 200 OK) come back to us: the call shows held, the transfer succeeds, we hang up."""
    from pyvoip_fast.app.call_events import CallEnd, CallState
    from pyvoip_fast.app.phone import Phone

    caplog.set_level(logging.INFO)

    async def main() -> Tuple[int, str, List[Tuple[int, str]]]:
        sipp = Sipp(tmp_path, "uas_reinvite_refer")
        await sipp.start("uas_reinvite_refer.xml")
        try:
            async with Phone("127.0.0.1", 0, timers=FAST) as phone:
                call = await asyncio.wait_for(phone.call(f"sip:bob@127.0.0.1:{sipp.port}",
                                                         hangup_when_done=False), 10)
                await asyncio.wait_for(call.hold(), 10)
                assert call.state is CallState.HELD and call.params.direction == "sendonly"
                progress: List[Tuple[int, str]] = []
                code = await asyncio.wait_for(
                    call.transfer("sip:carol@192.0.2.7:5070", on_progress=lambda c, r: progress.append((c, r))), 10)
                assert code == 200
                reason = await call.wait_done(timeout=5)
                return await sipp.wait(), reason, progress
        finally:
            sipp.kill()

    rc, reason, progress = asyncio.run(main())
    assert rc == 0, (tmp_path / "uas_reinvite_refer_errors.log").read_text(errors="replace") \
        if (tmp_path / "uas_reinvite_refer_errors.log").exists() else rc
    assert reason == CallEnd.TRANSFERRED and progress == [(200, "OK")]
    assert "[SIP] Sending re-INVITE to" in caplog.text and "[SIP] Sending REFER" in caplog.text
