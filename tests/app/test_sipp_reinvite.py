"""Interop with the real sipp (Debian package ``sip-tester``): our own re-INVITE, through ``SipCall`` alone.

sipp is the callee (``tests/data/sipp/uas_reinvite_hold.xml``): it answers our INVITE, then checks our re-INVITE
(a sendonly offer in the same dialog, CSeq 2, with Contact and an Allow listing INFO, REFER and NOTIFY, RFC 3261
§14.1) and answers 200 with a recvonly SDP, checks that our ACK carries the re-INVITE's CSeq (§13.2.2.4), and takes
our BYE. Both sides are checked: our ``SipCall`` state and log lines, sipp's exit status (0 = every check passed)
and its message trace. Without sipp the test skips on a laptop and fails under ``CI=true`` (``require_tool``).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Tuple

import pytest

from test_sipp_interop import FAST, Sipp, _received_requests
from pyvoip_fast.app.useragent import UserAgent
from pyvoip_fast.sip.sdp import SessionDescription, make_offer

pytestmark = pytest.mark.interop


def test_our_reinvite_puts_a_sipp_callee_on_hold(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pyvoip_fast.app.useragent")

    async def main() -> Tuple[int, str, str, SessionDescription, SessionDescription]:
        sipp = Sipp(tmp_path, "uas_reinvite_hold")
        await sipp.start("uas_reinvite_hold.xml")
        try:
            async with await UserAgent.create("127.0.0.1", 0, timers=FAST) as ua:
                call = await asyncio.wait_for(ua.call(f"sip:bob@127.0.0.1:{sipp.port}",
                                                      make_offer("127.0.0.1", 40020)), 10)
                first = call.local_sdp
                held = make_offer("127.0.0.1", 40020, direction="sendonly")
                answer = await asyncio.wait_for(call.reinvite(held), 10)
                assert call.local_sdp is held and call.remote_sdp is answer and not call.ended
                assert held.origin.session_id == first.origin.session_id
                assert held.origin.session_version == first.origin.session_version + 1
                await call.hangup()
                reason = await call.wait_ended()
            errors = sipp.errors.read_text(errors="replace") if sipp.errors.exists() else ""
            return await sipp.wait(), reason, sipp.trace() + errors, held, answer
        finally:
            sipp.kill()

    rc, reason, trace, held, answer = asyncio.run(main())
    assert rc == 0, trace[-3000:]
    assert reason == "local hangup"
    assert held.direction_of_audio == "sendonly" and answer.direction_of_audio == "recvonly"
    assert answer.origin.session_version == 2  # sipp's second description
    assert _received_requests(trace, "INVITE") == 2 and _received_requests(trace, "ACK") == 2
    assert _received_requests(trace, "BYE") == 1
    for line in ("[SIP] Sending INVITE to 127.0.0.1:", "[SIP] Sending re-INVITE to 127.0.0.1:",
                 "[SIP] Received 200 OK (re-INVITE)", "[SIP] Sending ACK", "[SIP] Sending BYE to 127.0.0.1:"):
        assert line in caplog.text, line
