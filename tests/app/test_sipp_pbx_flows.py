"""PBX and trunk flows against the real sipp, with the scenarios kept in ``tests/data/sipp``.

As the caller: early media with a reliable 183 (PRACK; the audio sipp streams found by correlation in our
recording), our delayed offer after a 422 retry, a short session timer that we refresh with UPDATE. As the
answerer: 100rel with PRACK and UPDATE before and after the answer under a session timer the caller refreshes,
422 to an interval below our Min-SE, and unreliable early media that leaves only after the caller's own RTP.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
import pytest
import soundfile as sf

from helpers import DATA, free_udp_port, require_tool
from mediakit import RATE, g711_roundtrip, snr_db, speech_like
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig

pytestmark = pytest.mark.interop

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def _sipp_args(tmp_path: Path, scenario: str, extra: List[str]) -> List[str]:
    exe = require_tool("sipp")
    return [exe, "-sf", str(DATA / "sipp" / scenario), "-m", "1", "-timeout", "25s", "-nostdin",
            "-i", "127.0.0.1", "-mp", str(free_udp_port() & ~1),
            "-trace_err", "-error_file", str(tmp_path / "errors.log"), *extra]


def _errors(tmp_path: Path) -> str:
    path = tmp_path / "errors.log"
    return path.read_text(errors="replace") if path.exists() else ""


async def _sipp_server(tmp_path: Path, scenario: str, extra: List[str] = ()) -> Tuple[Any, int]:  # type: ignore[assignment]
    port = free_udp_port()
    proc = await asyncio.create_subprocess_exec(
        *_sipp_args(tmp_path, scenario, ["-p", str(port), *extra]), cwd=str(tmp_path),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    await asyncio.sleep(0.3)  # sipp binds its port
    return proc, port


async def _sipp_client(tmp_path: Path, scenario: str, target_port: int) -> Any:
    return await asyncio.create_subprocess_exec(
        *_sipp_args(tmp_path, scenario, [f"127.0.0.1:{target_port}", "-p", str(free_udp_port())]), cwd=str(tmp_path),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_reliable_early_media_from_sipp_is_pracked_heard_and_recorded(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    pcm = speech_like(1.6, seed=21)
    wav = tmp_path / "early.wav"
    sf.write(wav, pcm, RATE, format="WAV", subtype="ULAW")  # what sipp's rtp_stream sends as PCMU
    record = tmp_path / "heard.wav"

    async def main() -> Tuple[int, int]:
        sipp, port = await _sipp_server(tmp_path, "uas_early_media_100rel.xml")
        try:
            async with Phone("127.0.0.1", 0, timers=FAST) as phone:
                call = await asyncio.wait_for(
                    phone.call(("127.0.0.1", port), record=record, hangup_when_done=False), 15)
                early = call.stats.early_media_packets
                await asyncio.sleep(0.3)
                await call.hangup()
            await asyncio.wait_for(sipp.communicate(), 15)
            return int(sipp.returncode or 0), early
        finally:
            if sipp.returncode is None:
                sipp.kill()

    rc, early = asyncio.run(asyncio.wait_for(main(), 40))
    assert rc == 0, _errors(tmp_path)  # sipp's checks of Supported and of our PRACK's RAck passed
    assert "Sending PRACK" in caplog.text and "[RTP] Early media from 127.0.0.1:" in caplog.text
    assert early >= 60, early  # 1.6 s streamed before the 200 OK
    heard, _ = sf.read(record, dtype="int16")
    ref = g711_roundtrip(pcm)
    corr = np.correlate(heard.astype(float), ref[800:4800].astype(float), mode="valid")
    lag = int(np.argmax(corr)) - 800
    got = heard[max(lag, 0) + 800: max(lag, 0) + 800 + 8000]
    assert len(got) == 8000 and snr_db(ref[800:8800], got) > 20  # sipp's early audio, intact, in our recording


def test_as_answerer_100rel_prack_update_before_and_after_the_answer_and_a_session_timer(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    prompt = tmp_path / "prompt.wav"
    sf.write(prompt, speech_like(0.6, seed=4), RATE, subtype="PCM_16")

    async def main() -> Tuple[int, str]:
        async with Phone("127.0.0.1", 0, timers=FAST) as phone:
            sipp = await _sipp_client(tmp_path, "uac_100rel_update.xml", phone.local_address[1])
            try:
                call = await asyncio.wait_for(phone.answer(early=prompt), 10)
                reason = await call.wait_done(timeout=10)
                await asyncio.wait_for(sipp.communicate(), 15)
                return int(sipp.returncode or 0), reason
            finally:
                if sipp.returncode is None:
                    sipp.kill()

    rc, reason = asyncio.run(asyncio.wait_for(main(), 40))
    assert rc == 0, _errors(tmp_path)  # every check of the scenario passed
    text = caplog.text
    assert "Sending 183 Session Progress with SDP (reliable" in text and "Received PRACK" in text
    assert "Session timer: 90 s, refreshed by the peer" in text
    assert reason == "remote hangup"


def test_our_delayed_offer_after_a_422_asks_again_with_min_se_and_answers_in_the_ack(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def main() -> Tuple[int, Any, int]:
        sipp, port = await _sipp_server(tmp_path, "uas_422_late_offer.xml")
        try:
            async with Phone("127.0.0.1", 0, timers=FAST) as phone:
                phone.ua.endpoint.session_expires = 90  # type: ignore[union-attr]
                call = await asyncio.wait_for(phone.call(("127.0.0.1", port), late_offer=True,
                                                         hangup_when_done=False), 15)
                params = call.params
                await asyncio.sleep(0.2)
                await call.hangup()
            await asyncio.wait_for(sipp.communicate(), 15)
            return int(sipp.returncode or 0), params, 0
        finally:
            if sipp.returncode is None:
                sipp.kill()

    rc, params, _ = asyncio.run(asyncio.wait_for(main(), 40))
    assert rc == 0, _errors(tmp_path)
    assert "Session-Expires 1800, as the 422 asked" in caplog.text
    assert "Session timer: 1800 s, refreshed by us" in caplog.text
    assert params.encoding == "PCMU" and params.remote_rtp[0] == "127.0.0.1"


def test_we_refresh_a_short_session_with_update(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def main() -> Tuple[int, str]:
        sipp, port = await _sipp_server(tmp_path, "uas_session_refresh.xml")
        try:
            async with Phone("127.0.0.1", 0, timers=FAST) as phone:
                assert phone.ua is not None
                phone.ua.endpoint.session_expires = 4
                phone.ua.endpoint.min_se = 4  # below RFC 4028's 90 s: a test may, to see refreshes in seconds
                call = await asyncio.wait_for(phone.call(("127.0.0.1", port), hangup_when_done=False), 15)
                await asyncio.sleep(4.6)  # refreshes at 2 s and 4 s
                reason = "up" if not call.ended else str(call.end_reason)
                await call.hangup()
            await asyncio.wait_for(sipp.communicate(), 15)
            return int(sipp.returncode or 0), reason
        finally:
            if sipp.returncode is None:
                sipp.kill()

    rc, reason = asyncio.run(asyncio.wait_for(main(), 40))
    assert rc == 0, _errors(tmp_path)  # two UPDATEs, each with Session-Expires: 4;refresher=uac
    assert reason == "up" and caplog.text.count("(session refresh)") >= 2
    assert "Session expired" not in caplog.text


def test_as_answerer_422_then_unreliable_early_media_after_the_callers_rtp(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="pyvoip_fast.app.useragent")
    sf.write(tmp_path / "early.wav", speech_like(1.0, seed=8), RATE, format="WAV", subtype="ULAW")
    prompt = tmp_path / "prompt.wav"
    sf.write(prompt, speech_like(0.8, seed=9), RATE, subtype="PCM_16")

    async def main() -> Tuple[int, int, str]:
        async with Phone("127.0.0.1", 0, timers=FAST) as phone:
            sipp = await _sipp_client(tmp_path, "uac_422_then_early_rtp.xml", phone.local_address[1])
            try:
                call = await asyncio.wait_for(phone.answer(early=prompt, early_timeout=5.0), 15)
                reason = await call.wait_done(timeout=10)
                await asyncio.wait_for(sipp.communicate(), 15)
                return int(sipp.returncode or 0), call.stats.packets_sent, reason
            finally:
                if sipp.returncode is None:
                    sipp.kill()

    rc, sent, reason = asyncio.run(asyncio.wait_for(main(), 40))
    assert rc == 0, _errors(tmp_path)  # 422 with Min-SE 90, an unreliable 183 with SDP, then the 200
    text = caplog.text
    assert "Sending 422 Session Interval Too Small" in text
    # sipp's ACK carries the INVITE's branch (RFC 3261 §17.2.3), so it ends the 422's retransmissions: a late 422
    # would give sipp that response's To tag for its BYE, which no dialog has (481)
    assert "Received ACK for a non-2xx final response" in text
    assert "Sending 183 Session Progress with SDP" in text and "(reliable" not in text.split("Sending 183")[1][:40]
    # no PRACK (sipp did not offer 100rel): only sipp's RTP can have proved its address before our 200 OK
    started = text.index("[RTP] Starting audio stream")
    assert text.index("Sending 183 Session Progress") < started < text.index("Sending 200 OK")
    assert "Received PRACK" not in text
    assert sent >= 35 and reason == "remote hangup"


def test_as_answerer_a_delayed_offer_with_100rel_gets_our_offer_in_the_183_and_the_answer_in_the_prack(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    prompt = tmp_path / "prompt.wav"
    sf.write(prompt, speech_like(0.5, seed=6), RATE, subtype="PCM_16")

    async def main() -> Tuple[int, Any, str, int]:
        async with Phone("127.0.0.1", 0, timers=FAST) as phone:
            sipp = await _sipp_client(tmp_path, "uac_late_offer_100rel.xml", phone.local_address[1])
            try:
                call = await asyncio.wait_for(phone.answer(early=prompt), 10)
                params = call.params
                reason = await call.wait_done(timeout=10)
                await asyncio.wait_for(sipp.communicate(), 15)
                return int(sipp.returncode or 0), params, reason, call.stats.packets_sent
            finally:
                if sipp.returncode is None:
                    sipp.kill()

    rc, params, reason, sent = asyncio.run(asyncio.wait_for(main(), 40))
    assert rc == 0, _errors(tmp_path)  # reliable 183 with our offer, 200 OK without SDP
    assert params.encoding == "PCMA"  # the answer from sipp's PRACK
    assert sent >= 20 and reason == "remote hangup"  # the prompt went after the PRACK proved sipp's address
