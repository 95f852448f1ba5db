"""A delayed offer (RFC 3261 §13.2.1, RFC 3264): an INVITE without SDP, as Cisco CUCM, many SBCs and trunks send
it. The answerer offers in its 200 OK and takes the answer from the ACK; an ACK without a usable answer ends the
call with BYE. The caller is the real sipp, with scenarios kept in ``tests/data/sipp``.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path
from typing import Any, Tuple

import pytest

from helpers import DATA, free_udp_port, require_tool
from pyvoip_fast.app.phone import CallEnd, Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.errors import CallError

pytestmark = pytest.mark.interop

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


async def sipp_calls(tmp_path: Path, scenario: str, port: int) -> "asyncio.subprocess.Process":
    exe = require_tool("sipp")
    return await asyncio.create_subprocess_exec(
        exe, "-sf", str(DATA / "sipp" / scenario), f"127.0.0.1:{port}", "-m", "1", "-timeout", "20s", "-nostdin",
        "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(free_udp_port() & ~1),
        "-trace_err", "-error_file", str(tmp_path / "errors.log"),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_delayed_offer_is_answered_with_our_offer_and_the_ack_answer_is_used(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def main() -> Tuple[int, Any, str, int]:
        async with Phone("127.0.0.1", 0, timers=FAST) as phone:
            sipp = await sipp_calls(tmp_path, "uac_late_offer.xml", phone.local_address[1])
            try:
                call = await asyncio.wait_for(phone.answer(), 10)
                params = call.params
                await call.play(b"\x00\x10" * 1600)  # we send to the address the ACK's answer gave
                reason = await call.wait_done(timeout=10)
                await asyncio.wait_for(sipp.communicate(), 15)
                return int(sipp.returncode or 0), params, reason, call.stats.packets_sent
            finally:
                if sipp.returncode is None:
                    sipp.kill()

    rc, params, reason, sent = asyncio.run(asyncio.wait_for(main(), 30))
    errors = (tmp_path / "errors.log").read_text(errors="replace") if (tmp_path / "errors.log").exists() else ""
    assert rc == 0, errors  # sipp's checks of our offer in the 200 OK matched and the call completed
    assert params.encoding == "PCMA" and params.remote_rtp[0] == "127.0.0.1"  # the answer from the ACK
    assert reason == CallEnd.REMOTE_HANGUP and sent >= 5


def test_an_ack_without_an_answer_ends_the_call_with_bye(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def main() -> Tuple[int, int]:
        async with Phone("127.0.0.1", 0, timers=FAST) as phone:
            sipp = await sipp_calls(tmp_path, "uac_late_offer_no_answer.xml", phone.local_address[1])
            try:
                with pytest.raises(CallError) as err:
                    await asyncio.wait_for(phone.answer(), 10)
                await asyncio.wait_for(sipp.communicate(), 15)
                return int(sipp.returncode or 0), err.value.status_code
            finally:
                if sipp.returncode is None:
                    sipp.kill()

    rc, code = asyncio.run(asyncio.wait_for(main(), 30))
    assert rc == 0 and code == 488  # sipp got our BYE and answered it
    assert "no usable SDP answer in the ACK" in caplog.text
