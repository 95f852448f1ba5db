"""A whole call at 16 kHz with L16 over real UDP: the media path takes every rate and size from the codec.

The caller streams a real 16 kHz WAV file holding a 6 kHz tone (8 kHz G.711 cannot carry it: its band ends at
4 kHz), the callee records a WAV file; the recording must be 16 kHz and hold the tone. A raw UDP socket that
plays the peer checks the packets themselves: 320-sample frames as 640 payload bytes, timestamps 320 apart.
A G.711 call in the same harness still runs at 8 kHz with 160-sample frames.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
import soundfile as sf

from mediakit import ArraySource, run, wait_for
from pyvoip_fast.app.phone import CallEnd, Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.codecs import L16_16K, PCMU
from pyvoip_fast.media import MediaSession
from pyvoip_fast.sip.sdp import MediaParams

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
MEDIA = {"rtcp_interval": 0.5}
TONE_HZ = 6000.0


def _tone(rate: int, seconds: float, freq: float = TONE_HZ, amplitude: float = 0.4) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype(np.int16)


def _peak_hz(pcm: np.ndarray, rate: int) -> Tuple[float, float]:
    """The strongest frequency of ``pcm`` and the share of the energy within 50 Hz of it."""
    x = pcm.astype(np.float64) * np.hanning(len(pcm))
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1.0 / rate)
    peak = float(freqs[int(np.argmax(power))])
    near = power[np.abs(freqs - peak) <= 50.0].sum()
    return peak, float(near / power.sum())


def _phone(**kw: Any) -> Phone:
    kw.setdefault("timers", FAST)
    kw.setdefault("media_options", dict(MEDIA))
    return Phone("127.0.0.1", 0, **kw)


def test_l16_call_carries_16_khz_audio_end_to_end(tmp_path: Path) -> None:
    wav_in = tmp_path / "tone16k.wav"
    sf.write(str(wav_in), _tone(16000, 1.5), 16000, subtype="PCM_16")
    wav_out = tmp_path / "heard.wav"
    digits: List[str] = []

    async def main() -> Tuple[Any, Any, str, str]:
        async with _phone(codecs=("L16", "PCMU")) as alice, _phone(codecs=("PCMU", "L16")) as bob:
            answering = asyncio.create_task(bob.answer(record=wav_out, on_dtmf=digits.append))
            call = await alice.call(bob.local_address, source=wav_in)
            bob_call = await answering
            # the offerer's preference wins: L16/16000 on its dynamic type, telephone-event at 16000 Hz
            assert call.params.codec is L16_16K and bob_call.params.codec is L16_16K
            assert call.params.payload_type == bob_call.params.payload_type == 96
            assert call.params.dtmf_payload_type == 97
            assert call.media.codec is L16_16K
            await asyncio.sleep(0.3)
            call.send_dtmf("16#")
            assert await wait_for(lambda: len(digits) == 3, 5.0), digits
            reason_a = await call.wait_done()
            reason_b = await bob_call.wait_done()
            return call.stats, bob_call.stats, reason_a, reason_b

    a, b, reason_a, reason_b = run(main())
    assert reason_a == CallEnd.SOURCE_DONE and reason_b == CallEnd.REMOTE_HANGUP
    assert digits == ["1", "6", "#"] and b.dtmf_received == "16#"
    for s in (a, b):
        assert (s.codec, s.clock_rate, s.ptime_ms) == ("L16", 16000, 20)
    # 1.5 s of 16 kHz audio in 20 ms slots: 75 packets, each 640 bytes of audio (320 samples) or, while a digit
    # played, a 4-byte telephone-event that replaced the slot's audio (RFC 4733 §2.5.1.1)
    assert b.packets_received == a.packets_sent == 75 and b.packets_lost == 0
    audio_packets, rest = divmod(a.bytes_sent - 4 * 75, 640 - 4)
    assert rest == 0 and 50 <= audio_packets < 75, a.bytes_sent
    # the recording is 16 kHz and holds the 6 kHz tone
    info = sf.info(str(wav_out))
    assert info.samplerate == 16000 and info.channels == 1
    heard, _ = sf.read(str(wav_out), dtype="int16")
    frames = heard[: len(heard) // 320 * 320].reshape(-1, 320).astype(np.float64)
    rms = np.sqrt((frames**2).mean(axis=1))
    assert (rms > 0.8 * 0.4 * 32767 / np.sqrt(2)).sum() >= 55, rms  # most 20 ms frames arrived at their level
    start = int(np.argmax(np.abs(heard) > 3000)) + 1600  # skip the onset
    peak, share = _peak_hz(heard[start:start + 8000], 16000)
    assert abs(peak - TONE_HZ) < 5.0, peak
    assert share > 0.9, share


def _capture(sock: socket.socket, count: int, timeout: float) -> List[bytes]:
    sock.settimeout(timeout)
    got: List[bytes] = []
    while len(got) < count:  # RTP only: RTCP goes to the port above
        got.append(sock.recvfrom(4096)[0])
    return got


def _stream_headers(codec: Any, pt: int, pcm: np.ndarray) -> List[Tuple[int, int, int, int, int]]:
    """Run a MediaSession that sends ``pcm`` with ``codec`` to a raw socket; the RTP headers it sent."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    port = peer.getsockname()[1]

    async def main() -> List[bytes]:
        media = await MediaSession.create("127.0.0.1", rtcp_interval=5.0)
        params = MediaParams(payload_type=pt, encoding=codec.name, clock_rate=codec.clock_rate, ptime=20,
                             dtmf_payload_type=None, remote_rtp=("127.0.0.1", port),
                             remote_rtcp=("127.0.0.1", port + 1), direction="sendonly", codec=codec)
        media.start(params, source=ArraySource(pcm))
        loop = asyncio.get_running_loop()
        packets = await loop.run_in_executor(None, _capture, peer, 20, 5.0)
        await media.stop()
        return packets

    try:
        packets = run(main())
    finally:
        peer.close()
    out = []
    for p in packets:
        _, m_pt, seq, ts, _ssrc = struct.unpack("!BBHII", p[:12])
        out.append((m_pt & 0x7F, seq, ts, len(p) - 12, m_pt >> 7))
    return out


def test_l16_packets_are_320_samples_with_timestamps_320_apart() -> None:
    pcm = _tone(16000, 1.0, 1000.0)
    headers = _stream_headers(L16_16K, 96, pcm)
    assert {h[0] for h in headers} == {96}
    assert {h[3] for h in headers} == {640}
    steps = {(b[2] - a[2]) & 0xFFFFFFFF for a, b in zip(headers, headers[1:])}
    seqs = {(b[1] - a[1]) & 0xFFFF for a, b in zip(headers, headers[1:])}
    assert steps == {320} and seqs == {1}
    assert headers[0][4] == 1  # the first packet starts a talk spurt


def test_g711_packets_stay_160_samples_at_8_khz() -> None:
    headers = _stream_headers(PCMU, 0, _tone(8000, 1.0, 1000.0))
    assert {h[0] for h in headers} == {0} and {h[3] for h in headers} == {160}
    assert {(b[2] - a[2]) & 0xFFFFFFFF for a, b in zip(headers, headers[1:])} == {160}
