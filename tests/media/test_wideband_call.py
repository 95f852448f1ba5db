"""A whole call at 16 kHz with L16 over real UDP: the media path takes every rate and size from the codec.

The caller streams a real 16 kHz WAV file holding a 6 kHz tone (8 kHz G.711 cannot carry it: its band ends at
4 kHz), the callee records a WAV file; the recording must be 16 kHz and hold the tone. A raw UDP socket that
plays the peer checks the packets themselves: 320-sample frames as 640 payload bytes, timestamps 320 apart.
A raw peer also checks the 16 kHz clock of the statistics: the jitter the session measures, the jitter it reports
in RTCP and the jitter the peer reports back, and the RFC 4733 event durations. A G.711 call in the same harness
still runs at 8 kHz with 160-sample frames, and a sink with a rate of its own keeps the call at that rate.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
import soundfile as sf

import pytest

from mediakit import ArraySource, ListSink, run, wait_for
from pyvoip_fast import rtp
from pyvoip_fast.app.phone import CallEnd, Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.codecs import L16_16K, PCMU
from pyvoip_fast.media import MediaSession, dtmf
from pyvoip_fast.net.sockets import bind_pair
from pyvoip_fast.rtp import rtcp
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
    # RTCP flowed both ways, and the jitter figures (measured, and reported back to the caller) are those of a
    # loopback call on the 16 kHz clock: a stream read on an 8 kHz clock would show about 20 ms
    assert a.rtcp_received >= 1 and b.rtcp_received >= 1
    assert b.jitter_ms < 10.0 and a.remote_jitter_ms is not None and a.remote_jitter_ms < 10.0, (b, a)
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


def test_l16_jitter_rtcp_and_dtmf_run_on_the_16_khz_clock() -> None:
    """A raw peer sends L16 in one burst (each packet one frame, 320 timestamp units, later than the one before but
    arriving at the same instant), so the RFC 3550 jitter climbs towards 320 units: 20 ms at 16 kHz (an 8 kHz clock
    would call it 40 ms). The session reports that jitter in timestamp units, reads the peer's report of 1,600
    units as 100 ms, and sends a 100 ms DTMF digit as 1,600 units of telephone-event duration."""
    peer_rtp, peer_rtcp = bind_pair("127.0.0.1", 0)
    ssrc = 0x1234ABCD
    frame = L16_16K.encoder().encode(_tone(16000, 0.02, 500.0))

    async def main() -> Tuple[Any, List[bytes], List[bytes]]:
        media = await MediaSession.create("127.0.0.1", rtcp_interval=0.2)
        params = MediaParams(payload_type=96, encoding="L16", clock_rate=16000, ptime=20, dtmf_payload_type=97,
                             remote_rtp=peer_rtp.getsockname(), remote_rtcp=peer_rtcp.getsockname(),
                             direction="sendrecv", codec=L16_16K)
        media.start(params, source=ArraySource(_tone(16000, 3.0, 1000.0)))
        to_rtp = ("127.0.0.1", media.local_rtp_port)
        for i in range(50):
            peer_rtp.sendto(rtp.build_packet(96, 100 + i, 5000 + 320 * i, ssrc, frame, i == 0), to_rtp)
        assert await wait_for(lambda: media.stats.packets_received == 50, 3.0)
        media.send_dtmf("5")
        peer_rtcp.sendto(rtcp.build_report(ssrc, [(media.ssrc, 0, 0, 0, 1600, 0, 0)], b"peer@127.0.0.1"),
                         ("127.0.0.1", media.local_rtcp_port))
        assert await wait_for(lambda: media.stats.remote_jitter_ms is not None, 3.0)
        await asyncio.sleep(0.5)  # the digit (100 ms and its end packets) and a few more reports
        stats = media.stats
        await media.stop()
        return stats, _drain(peer_rtp), _drain(peer_rtcp)

    try:
        stats, sent_rtp, sent_rtcp = run(main())
    finally:
        peer_rtp.close()
        peer_rtcp.close()
    assert (stats.codec, stats.clock_rate) == ("L16", 16000)
    assert 14.0 < stats.jitter_ms < 21.0, stats.jitter_ms
    assert stats.remote_jitter_ms == pytest.approx(100.0)
    # what the session told the peer about its stream: the same jitter, in 16 kHz timestamp units
    blocks = [b for d in sent_rtcp for p in rtcp.parse(d) if isinstance(p, (rtcp.SenderReport, rtcp.ReceiverReport))
              for b in p.reports if b.ssrc == ssrc]
    assert blocks and blocks[-1].jitter == pytest.approx(stats.jitter_ms * 16, abs=2), (blocks[-1], stats.jitter_ms)
    # the digit: telephone-event packets on the negotiated type, ending at 100 ms = 1,600 units of the 16 kHz clock
    events = [dtmf.decode_event(rtp.RtpPacket.parse(d).payload) for d in sent_rtp if (d[1] & 0x7F) == 97]
    assert {e.event for e in events} == {5}
    ends = [e for e in events if e.end]
    assert len(ends) == 3 and {e.duration for e in ends} == {1600}, ends
    assert stats.dtmf_sent == "5"


def _drain(sock: socket.socket) -> List[bytes]:
    out: List[bytes] = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


class _RatedSink(ListSink):
    """A sink with a sample rate of its own (like a sound device opened at one rate)."""

    def __init__(self, rate: int) -> None:
        super().__init__()
        self.rate = rate


def test_g711_call_between_phones_runs_at_8_khz(tmp_path: Path) -> None:
    """Two Phones with the default codecs: PCMU, 8 kHz recordings, 160-byte frames, jitter on the 8 kHz clock."""
    wav_in = tmp_path / "tone8k.wav"
    sf.write(str(wav_in), _tone(8000, 1.0, 1000.0), 8000, subtype="PCM_16")
    wav_out = tmp_path / "heard8k.wav"

    async def main() -> Tuple[Any, Any]:
        async with _phone() as alice, _phone() as bob:
            answering = asyncio.create_task(bob.answer(record=wav_out))
            call = await alice.call(bob.local_address, source=wav_in)
            bob_call = await answering
            assert call.params.codec is PCMU and call.media.codec is PCMU and call.params.payload_type == 0
            await call.wait_done()
            await bob_call.wait_done()
            return call.stats, bob_call.stats

    a, b = run(main())
    for s in (a, b):
        assert (s.codec, s.clock_rate, s.ptime_ms) == ("PCMU", 8000, 20)
    assert a.packets_sent == b.packets_received == 50 and a.bytes_sent == 50 * 160
    info = sf.info(str(wav_out))
    assert info.samplerate == 8000 and info.channels == 1
    heard, _ = sf.read(str(wav_out), dtype="int16")
    start = int(np.argmax(np.abs(heard) > 3000)) + 800
    peak, share = _peak_hz(heard[start:start + 4000], 8000)
    assert abs(peak - 1000.0) < 5.0 and share > 0.9, (peak, share)


def test_a_sink_with_its_own_rate_keeps_the_call_at_that_rate() -> None:
    """A caller that prefers L16 but plays into an 8 kHz sink offers only its 8 kHz codecs; an answerer with a
    16 kHz sink accepts only L16 (a G.711-only offer gets 488); a sink at a rate no codec has is refused before
    any signalling."""
    from pyvoip_fast.sip.sdp import NegotiationError
    from pyvoip_fast.errors import CallError

    async def main() -> None:
        async with _phone(codecs=("L16", "PCMA", "PCMU")) as alice, _phone(codecs=("L16", "PCMU")) as bob:
            answering = asyncio.create_task(bob.answer(sink=_RatedSink(16000)))
            calling = asyncio.create_task(alice.call(bob.local_address, source=ArraySource(_tone(8000, 0.5)),
                                                     sink=_RatedSink(8000)))
            with pytest.raises(NegotiationError):
                await answering
            with pytest.raises(CallError):
                await calling

            narrow = _RatedSink(8000)
            answering = asyncio.create_task(bob.answer(sink=ListSink()))
            call = await alice.call(bob.local_address, source=ArraySource(_tone(8000, 0.5)), sink=narrow)
            bob_call = await answering
            # the offer held PCMA and PCMU only (no L16, which bob would have taken first); bob carries PCMU
            assert call.params.codec is PCMU and bob_call.params.codec is PCMU
            await call.wait_done()
            await bob_call.wait_done()
            assert bob_call.stats.packets_received == 25

            with pytest.raises(ValueError, match="the sink runs at 44100 Hz but no codec of this phone does"):
                await alice.call(bob.local_address, sink=_RatedSink(44100))

    run(main())


def test_a_reinvite_keeps_the_call_at_its_rate() -> None:
    """A re-INVITE may change the codec only to one of the call's sample rate: the source and recording stay
    open at 16 kHz. An offer of PCMU before L16 is answered with L16; an offer of PCMU alone is refused (488)."""
    from pyvoip_fast.sip.sdp import NegotiationError, make_offer

    async def main() -> None:
        async with _phone(codecs=("L16", "PCMU")) as alice, _phone(codecs=("L16", "PCMU")) as bob:
            answering = asyncio.create_task(bob.answer(sink=ListSink()))
            call = await alice.call(bob.local_address, source=ArraySource(_tone(16000, 3.0)),
                                    hangup_when_done=False)
            bob_call = await answering
            assert bob_call.params.codec is L16_16K
            port = call.media.local_rtp_port
            answer = bob_call._on_reinvite(make_offer("127.0.0.1", port, codecs=("PCMU", "L16")))
            encodings = {enc for enc, _, _ in answer.media[0].rtpmap().values()}
            assert encodings - {"telephone-event"} == {"L16"}, encodings
            assert bob_call.params.codec is L16_16K and bob_call.media.codec is L16_16K
            with pytest.raises(NegotiationError):
                bob_call._on_reinvite(make_offer("127.0.0.1", port, codecs=("PCMU",)))
            assert bob_call.media.codec is L16_16K and bob_call.media.running
            await call.hangup()
            await bob_call.wait_done()

    run(main())
