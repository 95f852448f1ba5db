"""HD voice end to end: G.722 negotiated (``a=rtpmap:9 G722/8000``, offered first only when asked for) and carried
at 16 kHz between real peers on loopback.

- Our RTP, caught on a plain UDP socket: payload type 9, 160 bytes and a timestamp step of 160 per 20 ms (the 8 kHz
  RTP clock of RFC 3551 for 16 kHz audio), decoded by the independent ``G722`` package to exactly what our own
  encoder and decoder give for the source.
- Two pyvoip_fast phones: a 16 kHz recording that keeps what only wideband carries (a 5 kHz tone), and the wideband
  E-model (R on G.107.1's 0-129 scale).
- A third-party peer: baresip with its ``g722`` module plays a 5 kHz sine; we hear it, so the band is really wide.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
import pytest
import soundfile as sf

from helpers import require_tool, skip_or_fail, stop_process
from mediakit import ArraySource, ListSink, run
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig, UserAgent
from pyvoip_fast.codecs import g722
from pyvoip_fast.sip.sdp import make_answer, make_offer

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
RATE = 16000
DATA = Path(__file__).resolve().parent.parent / "data" / "baresip"


def _wideband(seconds: float) -> np.ndarray:
    """Speech-band harmonics plus a 5 kHz tone: the tone only survives a wideband path."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 8)) * 4000 + np.sin(2 * np.pi * 5000 * t) * 3000
    return np.round(x).astype(np.int16)


def _band_energy(pcm: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm)))) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1 / RATE)
    return float(spec[(freqs >= lo) & (freqs < hi)].sum() / spec.sum())


def _g722_package() -> Any:
    try:
        import G722  # the independent C implementation on PyPI (package ``g722``)
    except ImportError:
        skip_or_fail("the g722 package is not installed (pip install g722)")
    return G722


def test_offer_puts_g722_first_only_when_asked_for() -> None:
    default = make_offer("127.0.0.1", 4000).serialize().decode()
    assert "G722" not in default and "m=audio 4000 RTP/AVP 0 8 101" in default
    hd = make_offer("127.0.0.1", 4000, codecs=("G722", "PCMU", "PCMA")).serialize().decode()
    assert "m=audio 4000 RTP/AVP 9 0 8 101" in hd and "a=rtpmap:9 G722/8000" in hd


def test_our_g722_rtp_on_the_wire_decodes_with_the_g722_package() -> None:
    package = _g722_package()
    source = _wideband(1.0)

    async def main() -> List[bytes]:
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.bind(("127.0.0.1", 0))
        raw.setblocking(False)
        port = raw.getsockname()[1]
        loop = asyncio.get_running_loop()
        packets: List[bytes] = []
        try:
            async with await UserAgent.create("127.0.0.1", 0, timers=FAST) as ua, \
                    Phone("127.0.0.1", 0, timers=FAST, codecs=("G722", "PCMU")) as phone:
                async def answer() -> Any:
                    incoming = await ua.incoming()
                    return await incoming.answer(make_answer(incoming.offer, "127.0.0.1", port, codecs=("G722",)))

                answering = asyncio.ensure_future(answer())
                call = await phone.call(ua.local_address, source=ArraySource(source), hangup_when_done=False)
                sip = await answering
                assert call.params.encoding == "G722" and call.params.clock_rate == 8000
                deadline = loop.time() + 3.0
                while len(packets) < 50 and loop.time() < deadline:
                    try:
                        packets.append(await asyncio.wait_for(loop.sock_recv(raw, 2048), 1.0))
                    except asyncio.TimeoutError:
                        break
                await call.hangup()
                await sip.wait_ended()
        finally:
            raw.close()
        return packets

    packets = run(main())
    assert len(packets) == 50
    headers = [struct.unpack("!BBHII", p[:12]) for p in packets]
    assert all(h[1] & 0x7F == 9 and len(p) == 12 + 160 for h, p in zip(headers, packets))
    steps = {(b[3] - a[3]) & 0xFFFFFFFF for a, b in zip(headers, headers[1:])}
    assert steps == {160}  # 20 ms on the 8 kHz RTP clock, 320 samples of audio
    payload = b"".join(p[12:] for p in packets)
    theirs = np.asarray(package.G722(RATE, 64000).decode(payload), dtype=np.int16)
    ours = np.frombuffer(g722.Decoder(64000).decode(payload), dtype=np.int16)
    assert np.array_equal(theirs, ours)
    local = np.frombuffer(g722.Decoder().decode(g722.Encoder().encode(source[: 50 * 320])), dtype=np.int16)
    assert np.array_equal(ours, local)  # exactly the source, coded once: nothing lost or reordered on the way


def test_a_g722_call_between_our_phones_is_recorded_at_16_khz_with_the_wideband_band(tmp_path: Path) -> None:
    source = _wideband(1.5)

    async def main() -> Tuple[Any, Any]:
        async with Phone("127.0.0.1", 0, timers=FAST, codecs=("G722", "PCMU")) as callee, \
                Phone("127.0.0.1", 0, timers=FAST, codecs=("G722", "PCMU")) as caller:
            answering = asyncio.ensure_future(callee.answer(record=tmp_path / "heard.wav", ring=False))
            call = await caller.call(callee.local_address, source=ArraySource(source))
            answered = await answering
            await call.wait_done(timeout=10)
            await answered.wait_done(timeout=5)
            return call, answered

    call, answered = run(main())
    heard, rate = sf.read(tmp_path / "heard.wav", dtype="int16")
    assert rate == RATE and answered.params.encoding == "G722"
    middle = heard[len(heard) // 2 - 8000: len(heard) // 2 + 8000]
    assert _band_energy(middle, 4500, 5500) > 0.1  # the 5 kHz tone, which G.711 could not carry
    s = answered.stats
    assert s.codec == "G722" and s.clock_rate == 8000 and s.packets_lost == 0
    assert s.r_scale == 129 and 100 < s.r_factor <= 129 and 4.0 < s.mos <= 4.5


@pytest.mark.interop
def test_g722_call_with_baresip_carries_its_5_khz_sine(tmp_path: Path) -> None:
    exe = require_tool("baresip")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        rtp_base = s.getsockname()[1] & ~1
    conf = tmp_path / "baresip"
    conf.mkdir()
    text = (DATA / "config").read_text().replace("@SIP_PORT@", str(port))
    text = text.replace("@RTP_PORTS@", f"{rtp_base}-{rtp_base + 20}").replace("srtp.so", "g722.so")
    text = text.replace("ausine,440", "ausine,5000")
    (conf / "config").write_text(text)
    (conf / "accounts").write_text("<sip:bob@127.0.0.1>;regint=0;answermode=auto;audio_codecs=G722\n")
    log = open(tmp_path / "baresip.log", "w")
    proc = subprocess.Popen([exe, "-f", str(conf)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 10
        while "baresip is ready" not in (tmp_path / "baresip.log").read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "baresip.log").read_text()
            time.sleep(0.05)

        async def main() -> Tuple[Any, np.ndarray]:
            async with Phone("127.0.0.1", 0, timers=TimerConfig(t1=0.1), codecs=("G722",),
                             media_options={"rtcp_interval": 1.0}) as phone:
                heard = ListSink()
                call = await phone.call(f"sip:bob@127.0.0.1:{port}", source=ArraySource(_wideband(8.0)),
                                        sink=heard, hangup_when_done=False)
                params = call.params
                await asyncio.sleep(6.5)
                stats = call.stats
                await call.hangup()
                return (params, stats), np.concatenate(heard.frames)

        (params, stats), pcm = run(main())
    finally:
        stop_process(proc)
    log_text = (tmp_path / "baresip.log").read_text()
    assert params.encoding == "G722" and params.payload_type == 9, log_text[-2000:]
    assert stats.packets_received > 250, stats
    segment = pcm[RATE * 2: RATE * 4].astype(np.float64)
    freqs = np.fft.rfftfreq(len(segment), 1 / RATE)
    peak = freqs[int(np.argmax(np.abs(np.fft.rfft(segment * np.hanning(len(segment))))))]
    assert abs(peak - 5000.0) < 20, peak  # baresip's 5 kHz sine: only a wideband codec carries it
    assert stats.rtcp_received >= 1 and stats.remote_packets_lost is not None, stats  # it decoded ours too


def test_cli_codec_g722_call_records_16_khz_and_reports_the_wideband_rating(tmp_path: Path) -> None:
    from test_cli_e2e import Peer

    audio = tmp_path / "wb.wav"
    sf.write(audio, _wideband(2.0), RATE, subtype="PCM_16")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rec = tmp_path / "heard.wav"
    listener = Peer(["listen", "--bind", f"127.0.0.1:{port}", "--no-play", "--record", str(rec), "--codec", "g722"],
                    tmp_path / "listen.log")
    try:
        listener.wait_for("Listening on")
        caller = Peer(["call", f"127.0.0.1:{port}", str(audio), "--no-play", "--codec", "g722"], tmp_path / "call.log")
        try:
            assert caller.wait(30) == 0, caller.output()
        finally:
            caller.kill()
        assert listener.wait(15) == 0, listener.output()
        summary = listener.output()
    finally:
        listener.kill()
    assert "G722/8000 (16 kHz audio)" in summary and "of 129 (wideband, G.107.1)" in summary, summary[-1500:]
    heard, rate = sf.read(rec, dtype="int16")
    assert rate == RATE and _band_energy(heard[RATE // 2: RATE // 2 + RATE], 4500, 5500) > 0.1
