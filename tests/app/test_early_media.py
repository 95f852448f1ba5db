"""Early media both ways between two real pyvoip_fast phones on loopback (real UDP sockets): a prompt played with
183 Session Progress before the answer (reliable, with PRACK, since both sides support 100rel), heard and recorded
by the caller and found there by correlation; a caller that ignores early media; a delayed offer from the caller
(``late_offer``); OPTIONS describing what we would offer."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
import pytest
import soundfile as sf

from mediakit import RATE, g711_roundtrip, snr_db, speech_like
from pyvoip_fast.app.phone import CallEnd, Phone
from pyvoip_fast.audio import ToneSource
from pyvoip_fast.app.useragent import TimerConfig

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def _prompt(tmp_path: Path) -> Tuple[Path, np.ndarray]:
    pcm = speech_like(1.2, seed=11)
    path = tmp_path / "prompt.wav"
    sf.write(path, pcm, RATE, subtype="PCM_16")
    return path, pcm


async def _pair(tmp_path: Path, early: Any, *, early_media: bool = True, late_offer: bool = False,
                answer_silence: float = 0.6) -> Tuple[Any, Any, Path]:
    record = tmp_path / "heard.wav"
    async with Phone("127.0.0.1", 0, timers=FAST) as callee, Phone("127.0.0.1", 0, timers=FAST) as caller:
        async def answer() -> Any:
            quiet = ToneSource(1000.0, amplitude=0.005, duration=answer_silence, rate=RATE)
            return await callee.answer(early=early, source=quiet)

        answering = asyncio.ensure_future(answer())
        call = await caller.call(callee.local_address, record=record, early_media=early_media,
                                 late_offer=late_offer, hangup_when_done=False)
        answered = await asyncio.wait_for(answering, 10)
        await asyncio.sleep(0.4)
        await call.hangup()
        await answered.wait_done(timeout=5)
        return call, answered, record


def test_a_prompt_played_as_early_media_is_heard_and_recorded_before_the_answer(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    prompt, pcm = _prompt(tmp_path)
    call, answered, record = asyncio.run(asyncio.wait_for(_pair(tmp_path, prompt), 30))
    text = caplog.text
    assert "Sending 183 Session Progress with SDP (reliable" in text and "Sending PRACK" in text
    assert "[RTP] Early media from 127.0.0.1:" in text
    early = call.stats.early_media_packets
    assert early >= 50, early  # 1.2 s of prompt = 60 packets, all before the 200 OK
    heard, rate = sf.read(record, dtype="int16")
    assert rate == RATE
    ref = g711_roundtrip(pcm)
    corr = np.correlate(heard[: len(heard)].astype(float), ref.astype(float), mode="valid")
    lag = int(np.argmax(corr))
    got = heard[lag: lag + len(ref)]
    assert len(got) == len(ref) and snr_db(ref[400:-400], got[400:-400]) > 20  # the prompt, intact
    assert call.end_reason == CallEnd.LOCAL_HANGUP


def test_a_caller_that_ignores_early_media_records_nothing_before_the_answer(tmp_path: Path) -> None:
    prompt, _ = _prompt(tmp_path)
    call, answered, record = asyncio.run(asyncio.wait_for(_pair(tmp_path, prompt, early_media=False), 30))
    assert call.stats.early_media_packets == 0
    heard, _ = sf.read(record, dtype="int16")
    assert len(heard) > RATE // 4 and np.max(np.abs(heard)) < 400  # only the quiet audio sent after the answer


def test_a_delayed_offer_from_our_caller(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    call, answered, _ = asyncio.run(asyncio.wait_for(_pair(tmp_path, None, late_offer=True), 30))
    assert call.params.encoding == answered.params.encoding == "PCMU"
    assert call.stats.packets_received > 0  # the callee's audio reached the address our ACK's answer gave
    assert "Delayed offer" not in caplog.text  # no failure path


def test_options_answer_carries_what_we_would_offer_with_port_zero() -> None:
    async def main() -> bytes:
        async with Phone("127.0.0.1", 0, timers=FAST, codecs=("PCMA", "PCMU")) as phone:
            loop = asyncio.get_running_loop()
            got: "asyncio.Future[bytes]" = loop.create_future()

            class Probe(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: Any) -> None:
                    if not got.done():
                        got.set_result(data)

            transport, _ = await loop.create_datagram_endpoint(Probe, local_addr=("127.0.0.1", 0))
            port = transport.get_extra_info("sockname")[1]
            host, sip_port = phone.local_address
            transport.sendto(
                (f"OPTIONS sip:x@{host}:{sip_port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKo1\r\n"
                 f"From: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:x@{host}>\r\nCall-ID: o1@x\r\nCSeq: 1 OPTIONS\r\n"
                 "Accept: application/sdp\r\nContent-Length: 0\r\n\r\n").encode(), (host, sip_port))
            try:
                return await asyncio.wait_for(got, 5)
            finally:
                transport.close()

    reply = asyncio.run(main())
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"SIP/2.0 200") and b"Supported: 100rel, timer" in head
    assert b"Content-Type: application/sdp" in head and b"m=audio 0 RTP/AVP 8 0 101" in body


@pytest.mark.parametrize("caller_flags, hears_prompt", [([], True), (["--no-early-media", "--late-offer"], False)])
def test_cli_listen_early_and_call_flags(tmp_path: Path, caller_flags: List[str], hears_prompt: bool) -> None:
    import socket

    from test_cli_e2e import Peer

    prompt, pcm = _prompt(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(RATE // 2, np.int16), RATE, subtype="PCM_16")
    rec = tmp_path / "heard.wav"
    listener = Peer(["listen", "--bind", f"127.0.0.1:{port}", "--no-play", "--early", str(prompt), "--t1", "0.05"],
                    tmp_path / "listen.log")
    try:
        listener.wait_for("Listening on")
        caller = Peer(["call", f"127.0.0.1:{port}", str(quiet), "--no-play", "--record", str(rec), "--t1", "0.05",
                       *caller_flags], tmp_path / "call.log")
        try:
            assert caller.wait(30) == 0, caller.output()
            out = caller.output()
        finally:
            caller.kill()
        assert listener.wait(15) == 0, listener.output()
    finally:
        listener.kill()
    assert ("[RTP] Early media from 127.0.0.1:" in out) is hears_prompt, out
    heard, _ = sf.read(rec, dtype="int16")
    loud = int(np.sum(np.abs(heard.astype(np.int32)) > 2000))
    assert (loud > RATE // 2) is hears_prompt  # the prompt's speech, or only the quiet file after the answer


def test_a_delayed_offer_with_100rel_completes_the_exchange_in_the_183_and_prack(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    prompt, _ = _prompt(tmp_path)
    call, answered, _ = asyncio.run(asyncio.wait_for(_pair(tmp_path, prompt, late_offer=True), 30))
    text = caplog.text
    assert "Sending 183 Session Progress with SDP (reliable" in text  # the callee's offer
    assert "Sending PRACK to" in text and ", with SDP)" in text  # the caller's answer
    assert call.params.encoding == answered.params.encoding == "PCMU"
    assert answered.stats.packets_sent >= 60 and call.stats.packets_received > 0
