"""MediaSession and MediaClock over real UDP sockets on 127.0.0.1 (and ::1 when available).

Budget: the whole file runs in about 15-20 s; every call uses a short RTCP interval override.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import List

import numpy as np
import pytest

from helpers import require_ipv6, require_timerfd
from mediakit import (ArraySource, ListSink, chunk_match, g711_roundtrip, params, playout_events, run, session_pair, snr_db,
                      speech_like, wait_for)
from pyvoip_fast.rtp import rtcp
from pyvoip_fast.media.callstats import REQUIRED_KEYS
from pyvoip_fast.errors import TransportError
from pyvoip_fast.media import MediaClock, MediaSession, Pacer
from pyvoip_fast.rtp import RtpPacket

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------------------------- the clock


def test_clock_serves_many_pacers_with_one_timer() -> None:
    async def main() -> tuple:
        loop = asyncio.get_running_loop()
        clock = MediaClock(loop)
        hits: dict = {}
        start = loop.time() + 0.02
        pacers = [Pacer(clock, 0.01, lambda n, d, i=i: hits.setdefault(i, []).append((n, d, loop.time())), start=start)
                  for i in range(50)]
        await asyncio.sleep(0.3)
        for p in pacers:
            p.stop()
        return clock.wakeups, clock.callbacks_run, hits, start

    wakeups, runs, hits, start = run(main())
    assert len(hits) == 50
    # 50 streams sharing deadlines cost one wake-up per deadline, not one per stream
    assert wakeups * 10 < runs
    for seq in hits.values():
        ns = [n for n, _, _ in seq]
        assert ns == list(range(len(ns)))  # every slot exactly once, in order (no skips on an idle loop)
        for n, d, _ in seq:
            assert d == pytest.approx(start + n * 0.01, abs=1e-9)  # deadlines by multiplication: no drift


def test_pacer_bounded_burst_and_skip() -> None:
    async def main() -> tuple:
        loop = asyncio.get_running_loop()
        clock = MediaClock(loop)
        slots: list = []
        skips: list = []
        p = Pacer(clock, 0.01, lambda n, d: slots.append((n, loop.time())), max_burst=3, on_skip=skips.append)
        await asyncio.sleep(0.05)
        time.sleep(0.105)  # block the loop: ~10 slots become due at once
        await asyncio.sleep(0.05)
        p.stop()
        return slots, skips, p

    slots, skips, p = run(main())
    assert sum(skips) == p.skipped >= 6
    ns = [n for n, _ in slots]
    assert ns == sorted(ns) and len(set(ns)) == len(ns)
    # the catch-up after the stall sends at most max_burst slots in one wake-up (callbacks of one wake-up run within
    # microseconds of each other; the next wake-up comes at the next deadline, at least `early` = 0.5 ms later)
    times = np.array([t for _, t in slots])
    bursts = np.split(times, np.where(np.diff(times) > 0.0003)[0] + 1)
    assert max(len(b) for b in bursts) <= 3
    # skipped slots are missing from the sequence, everything else is present
    assert len(ns) + p.skipped == ns[-1] + 1


def test_clock_cancel_and_shared_instance() -> None:
    async def main() -> tuple:
        clock = MediaClock.for_loop()
        assert MediaClock.for_loop() is clock
        fired: list = []
        e1 = clock.call_at(clock.time() + 0.01, fired.append)
        clock.call_at(clock.time() + 0.02, fired.append)
        e1.cancel()
        await asyncio.sleep(0.05)
        return fired, e1

    fired, e1 = run(main())
    assert len(fired) == 1 and e1.cancelled


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_clock_wakes_on_a_timerfd_within_its_slack() -> None:
    """The precise clock wakes close to each deadline; the call_at clock wakes up to `early` ahead and up to
    1 ms behind it (epoll's millisecond timeout). The timerfd exists only while something is scheduled."""

    async def lateness(precise: bool) -> tuple:
        loop = asyncio.get_running_loop()
        clock = MediaClock(loop, precise=precise)
        fds_idle = _open_fds()
        late: list = []
        start = loop.time() + 0.01
        p = Pacer(clock, 0.0037, lambda n, d: late.append(loop.time() - d), start=start)  # off the ms grid
        await asyncio.sleep(0.01)
        fds_busy = _open_fds()
        await asyncio.sleep(0.4)
        p.stop()
        await asyncio.sleep(0.01)  # the cancelled entry is popped at its deadline and the timerfd released
        return clock.precise, np.array(late), fds_idle, fds_busy, _open_fds()

    require_timerfd()
    precise, late, idle, busy, after = run(lateness(True))
    assert precise
    assert busy == idle + 1 and after == idle
    assert len(late) >= 90
    assert (late >= -0.0005 - 1e-6).all()  # never more than `early` ahead (after a stall the next slot may join)
    assert (late >= -1e-6).mean() > 0.9  # and as a rule not ahead at all
    assert np.median(late) < 0.0005, np.median(late)
    coarse, late_c, idle, busy, after = run(lateness(False))
    assert not coarse and busy == idle == after
    assert late_c.min() < -0.0001  # early wake-ups: the call_at clock runs entries up to 0.5 ms ahead
    assert np.abs(np.median(late_c)) < 0.001


def test_clock_close_and_reuse() -> None:
    async def main() -> list:
        clock = MediaClock(asyncio.get_running_loop())
        fired: list = []
        clock.call_at(clock.time() + 0.005, fired.append)
        clock.close()  # drops the timer, not the entries: the next call_at re-arms it
        clock.call_at(clock.time() + 0.01, fired.append)
        await asyncio.sleep(0.05)
        return fired

    assert len(run(main())) == 2


# --------------------------------------------------------------------------------------------------- sessions


def test_bind_even_pair_and_port_in_use() -> None:
    async def main() -> None:
        a = await MediaSession.create("127.0.0.1")
        try:
            assert a.local_rtp_port % 2 == 0 and a.local_rtcp_port == a.local_rtp_port + 1
            assert 0 <= a.ssrc < 2**32 and a.cname
            with pytest.raises(TransportError):
                await MediaSession.create("127.0.0.1", rtp_port=a.local_rtp_port)
            with pytest.raises(TransportError):
                await MediaSession.create("not-a-host.invalid")
        finally:
            await a.stop()
        await a.stop()  # idempotent

    run(main())


def test_audio_round_trip_rtcp_and_bye(caplog: pytest.LogCaptureFixture) -> None:
    """Full duplex call: audio arrives bit-exact (G.711 round-trip SNR), RTCP both ways, RTT, BYE on stop."""
    caplog.set_level(logging.INFO, logger="pyvoip_fast.media")
    sent_a = speech_like(1.6, seed=1)
    sent_b = speech_like(1.6, seed=2)

    async def main() -> tuple:
        a, b = await session_pair(rtcp_interval=0.25)
        sink_a, sink_b = ListSink(), ListSink()
        a.start(params(b.local_rtp_port), source=ArraySource(sent_a), sink=sink_a)
        b.start(params(a.local_rtp_port), source=ArraySource(sent_b), sink=sink_b)
        await asyncio.wait_for(asyncio.gather(a.source_done(), b.source_done()), 5)
        await asyncio.sleep(0.3)  # let the jitter buffers drain
        assert await wait_for(lambda: a.stats.rtt_ms is not None and b.stats.rtt_ms is not None, 2)
        await a.stop("test over")
        assert await wait_for(lambda: b.bye_received.is_set(), 1)
        await b.stop()
        return a, b, sink_a, sink_b

    a, b, sink_a, sink_b = run(main())
    for sent, sink, law in ((sent_a, sink_b, "PCMU"), (sent_b, sink_a, "PCMU")):
        got = sink.pcm
        assert abs(len(got) - len(sent)) < 30 * 160  # the whole stream played (plus the concealed tail)
        assert snr_db(sent, g711_roundtrip(sent, law)) > 30  # the G.711 round-trip figure of this signal
        # every chunk of what was heard equals the G.711 round trip of the sent audio, except where the jitter
        # buffer adapted its delay inside the chunk (at most one or two on loopback)
        ok, total = chunk_match(sent, got, law)
        assert total >= 7 and ok >= total - 2
    sa, sb = a.stats, b.stats
    assert sa.packets_sent == sb.packets_received == 80
    assert sb.packets_sent == sa.packets_received == 80
    assert sa.bytes_sent == 80 * 160
    assert sa.packets_lost == sb.packets_lost == 0
    # after the last packet the buffer conceals until it declares the stream idle; nothing before that
    assert sa.frames_concealed <= 26 and sb.frames_concealed <= 26
    assert sa.rtcp_received >= 2 and sb.rtcp_received >= 2
    assert 0 <= sa.rtt_ms < 50 and 0 <= sb.rtt_ms < 50
    assert sb.bye_received and not sa.bye_received
    assert sa.jitter_ms < 20
    d = json.loads(sa.to_json())
    for key in REQUIRED_KEYS:
        assert key in d
    assert d["codec"] == "PCMU" and d["mos"] > 4.0 and d["duration"] > 1.5
    text = caplog.text
    assert "[RTP] Starting audio stream to 127.0.0.1:" in text
    assert "[RTCP Report Sent]" in text and "Total Data Sent:" in text and "kbps" in text
    assert "[RTCP Report Received]" in text and "Jitter:" in text and "Round-Trip Time:" in text
    assert "Sending packet" not in text  # per-packet lines only at DEBUG


def test_pacing_against_deadlines() -> None:
    """240 packets at 10 ms: every arrival within a few ms of start + n*ptime, no drift, timestamps step 80."""

    async def main() -> tuple:
        loop = asyncio.get_running_loop()
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        arrivals: list = []

        def on_read() -> None:
            while True:
                try:
                    data = rx.recv(2048)
                except BlockingIOError:
                    return
                arrivals.append((loop.time(), RtpPacket.parse(data)))

        loop.add_reader(rx.fileno(), on_read)
        a = await MediaSession.create("127.0.0.1", rtcp_interval=5)
        a.start(params(rx.getsockname()[1], ptime=10), source=ArraySource(speech_like(2.4)))
        await asyncio.wait_for(a.source_done(), 5)
        await asyncio.sleep(0.05)
        await a.stop()
        loop.remove_reader(rx.fileno())
        rx.close()
        return arrivals, a

    arrivals, a = run(main())
    assert len(arrivals) == 240
    pkts = [p for _, p in arrivals]
    assert [(p.sequence_number - pkts[0].sequence_number) % 65536 for p in pkts] == list(range(240))
    # the RTP timestamp follows the schedule: 80 per slot; a stall longer than the catch-up burst skips slots
    # (counted in schedule_skips, and the next packet carries the marker bit), it never shifts the timeline
    slots = np.array([((p.timestamp - pkts[0].timestamp) % 2**32) for p in pkts])
    assert np.all(slots % 80 == 0)
    slots //= 80
    skipped = int(slots[-1] - (len(pkts) - 1))
    assert skipped == a.stats.schedule_skips
    assert pkts[0].marker
    jumps = {i for i in range(1, len(pkts)) if slots[i] - slots[i - 1] > 1}
    assert {i for i in range(1, len(pkts)) if pkts[i].marker} == jumps
    assert all(len(p.payload) == 80 for p in pkts)
    t = np.array([t for t, _ in arrivals])
    dev = t - (t[0] + 0.01 * slots)
    slope = np.polyfit(slots, t, 1)[0]
    assert slope == pytest.approx(0.01, rel=0.005)  # no drift
    if skipped == 0:
        assert np.percentile(np.abs(dev), 95) < 0.004
        assert np.max(np.abs(dev)) < 0.03
    else:  # the process was stalled (a loaded machine): still on schedule most of the time
        assert np.percentile(np.abs(dev), 80) < 0.004


def test_dtmf_through_sockets() -> None:
    async def main() -> tuple:
        a, b = await session_pair(rtcp_interval=1)
        got: list = []
        a.start(params(b.local_rtp_port), source=ArraySource(speech_like(3.0)))
        b.start(params(a.local_rtp_port), on_dtmf=got.append)
        await asyncio.sleep(0.1)
        a.send_dtmf("12#9")
        ok = await wait_for(lambda: len(got) >= 4, 3)
        await asyncio.sleep(0.1)
        await a.stop()
        await b.stop()
        return ok, got, a, b

    ok, got, a, b = run(main())
    assert ok and "".join(got) == "12#9"
    assert b.stats.dtmf_received == "12#9" and a.stats.dtmf_sent == "12#9"


def test_dtmf_needs_negotiation() -> None:
    async def main() -> None:
        a = await MediaSession.create()
        a.start(params(9, dtmf=None))
        with pytest.raises(RuntimeError):
            a.send_dtmf("1")
        await a.stop()
        with pytest.raises(RuntimeError):
            a.send_dtmf("1")

    run(main())


def _raw_rtp(seq: int, ts: int, ssrc: int, payload: bytes = b"\xff" * 160, pt: int = 0, marker: bool = False) -> bytes:
    return RtpPacket(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, marker=marker,
                     payload=payload).serialize()


def test_peer_lost_when_peer_sockets_close(caplog: pytest.LogCaptureFixture) -> None:
    """A raw peer sends media, then its sockets close: ICMP port-unreachable + silence -> peer_lost."""
    caplog.set_level(logging.INFO, logger="pyvoip_fast.media")

    async def main() -> tuple:
        loop = asyncio.get_running_loop()
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        port = peer.getsockname()[1]
        a = await MediaSession.create("127.0.0.1", peer_timeout=0.4, rtcp_interval=5)
        a.start(params(port), source=ArraySource(speech_like(10)))
        for i in range(10):
            peer.sendto(_raw_rtp(100 + i, 1000 + 160 * i, 0xABCD), ("127.0.0.1", a.local_rtp_port))
            await asyncio.sleep(0.02)
        assert not a.peer_lost.is_set()
        peer.close()
        t0 = loop.time()
        await asyncio.wait_for(a.peer_lost.wait(), 3)
        elapsed = loop.time() - t0
        await a.stop()
        return a, elapsed

    a, elapsed = run(main())
    assert 0.3 < elapsed < 2.0
    assert a.stats.peer_lost and a.stats.packets_received == 10
    assert "lost" in caplog.text


def test_icmp_on_rtcp_logged_once_call_continues(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pyvoip_fast.media")

    async def main() -> MediaSession:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))  # RTP listens, RTCP port (port+1 of nothing) is closed
        dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dead.bind(("127.0.0.1", 0))
        dead_port = dead.getsockname()[1]
        dead.close()
        a = await MediaSession.create("127.0.0.1", rtcp_interval=0.1, peer_timeout=0.3)
        a.start(params(rx.getsockname()[1], rtcp_port=dead_port), source=ArraySource(speech_like(1.0)))
        await asyncio.sleep(0.8)
        assert a.running and not a.peer_lost.is_set()
        await a.stop()
        rx.close()
        return a

    a = run(main())
    assert a.stats.packets_sent >= 35
    assert caplog.text.count("does not accept RTCP") == 1


def test_garbage_and_ssrc_change() -> None:
    async def main() -> MediaSession:
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        a = await MediaSession.create("127.0.0.1", rtcp_interval=5)
        a.start(params(peer.getsockname()[1]), sink=ListSink())
        dest = ("127.0.0.1", a.local_rtp_port)
        for junk in (b"", b"\x00", b"\x80" * 11, b"\x40" + b"\x00" * 20, b"\xbf\x00" + b"\x00" * 10, b"\x80\x63" + b"\x00" * 30):
            peer.sendto(junk, dest)
        peer.sendto(b"garbage", ("127.0.0.1", a.local_rtcp_port))
        for i in range(20):
            peer.sendto(_raw_rtp(500 + i, 160 * i, 0x1111), dest)
            await asyncio.sleep(0.005)
        for i in range(20):
            peer.sendto(_raw_rtp(9000 + i, 777 + 160 * i, 0x2222), dest)
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)
        await a.stop()
        peer.close()
        return a

    a = run(main())
    s = a.stats
    assert s.packets_invalid == 6
    assert s.remote_ssrc == 0x2222
    assert s.packets_received >= 36  # both streams counted (probation may hold back a packet or two each)
    assert s.packets_lost == 0


def _rtp_capture(loop: asyncio.AbstractEventLoop) -> tuple:
    """A UDP socket on 127.0.0.1 that parses every RTP datagram into ``got`` as ``(arrival, packet)``."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    got: list = []
    loop.add_reader(rx.fileno(), lambda: got.append((loop.time(), RtpPacket.parse(rx.recv(2048)))))
    return rx, got


def test_hold_and_resume_marker() -> None:
    async def main() -> tuple:
        loop = asyncio.get_running_loop()
        rx, got = _rtp_capture(loop)
        a = await MediaSession.create("127.0.0.1", rtcp_interval=5)
        port = rx.getsockname()[1]
        a.start(params(port), source=ArraySource(speech_like(5)))
        await asyncio.sleep(0.2)
        a.update(params(port, direction="recvonly"))  # we put the call on hold
        await asyncio.sleep(0.05)
        n_hold = len(got)
        await asyncio.sleep(0.2)
        n_after = len(got)
        a.update(params(port, direction="sendrecv"))
        await asyncio.sleep(0.2)
        await a.stop()
        loop.remove_reader(rx.fileno())
        rx.close()
        return got, n_hold, n_after

    got, n_hold, n_after = run(main())
    assert n_after == n_hold  # nothing sent on hold
    pkts = [p for _, p in got]
    assert pkts[0].marker and pkts[n_after].marker  # each talk spurt starts with the marker bit
    assert sum(p.marker for p in pkts) == 2
    # the timestamp jumped over the hold period while the sequence number stayed contiguous
    assert (pkts[n_after].sequence_number - pkts[n_after - 1].sequence_number) % 65536 == 1
    assert (pkts[n_after].timestamp - pkts[n_after - 1].timestamp) % 2**32 > 160 * 5


def test_pcma_and_ptime_30() -> None:
    sent = speech_like(0.9, seed=5)

    async def main() -> tuple:
        a, b = await session_pair(rtcp_interval=5)
        sink = ListSink()
        a.start(params(b.local_rtp_port, encoding="PCMA", ptime=30), source=ArraySource(sent))
        b.start(params(a.local_rtp_port, encoding="PCMA", ptime=30), sink=sink)
        await asyncio.wait_for(a.source_done(), 3)
        await asyncio.sleep(0.3)
        await a.stop()
        await b.stop()
        return sink, a, b

    sink, a, b = run(main())
    ok, total = chunk_match(sent, sink.pcm, "PCMA", chunk=800)
    assert total >= 7 and ok >= total - 2
    assert a.stats.packets_sent == 30 and b.stats.codec == "PCMA" and b.stats.ptime_ms == 30


def test_ipv6_loopback() -> None:
    require_ipv6()

    async def main() -> tuple:
        a = await MediaSession.create("::1", rtcp_interval=0.2)
        b = await MediaSession.create("::1", rtcp_interval=0.2)
        a.start(params(b.local_rtp_port, host="::1"), source=ArraySource(speech_like(0.5)))
        b.start(params(a.local_rtp_port, host="::1"))
        await asyncio.wait_for(a.source_done(), 3)
        await asyncio.sleep(0.3)
        await a.stop()
        await b.stop()
        return a, b

    a, b = run(main())
    assert b.stats.packets_received == a.stats.packets_sent == 25
    assert b.stats.rtcp_received >= 1


def test_rtcp_final_report_is_parseable_compound() -> None:
    """stop() sends SR + SDES(CNAME) + BYE as one compound packet."""

    async def main() -> tuple:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(1)
        a = await MediaSession.create("127.0.0.1", rtcp_interval=30)
        a.start(params(9, rtcp_port=rx.getsockname()[1]), source=ArraySource(speech_like(0.2)))
        await asyncio.wait_for(a.source_done(), 2)
        await a.stop("bye now")
        data = rx.recv(2048)
        rx.close()
        return a, rtcp.parse(data)

    a, pkts = run(main())
    sr, sdes, bye = pkts
    assert isinstance(sr, rtcp.SenderReport) and sr.ssrc == a.ssrc and sr.packet_count == 10
    assert sr.octet_count == 1600
    assert isinstance(sdes, rtcp.SourceDescription) and sdes.chunks[0].cname == a.cname.encode()
    assert isinstance(bye, rtcp.Bye) and list(bye.sources) == [a.ssrc] and bye.reason == b"bye now"


def test_receiver_report_log_counts_what_the_call_received(caplog: pytest.LogCaptureFixture) -> None:
    """A listener's "[RTCP Report Sent] (receiver report)" lines give the call's own counts, so the last one
    matches the end-of-call summary (RFC 3550 A.1's `received` leaves out the first packet of a source)."""
    caplog.set_level(logging.INFO, logger="pyvoip_fast.media")

    async def main() -> tuple:
        a, b = await session_pair(rtcp_interval=0.2)
        b.start(params(a.local_rtp_port), sink=ListSink())
        a.start(params(b.local_rtp_port), source=ArraySource(speech_like(0.8)))
        await asyncio.wait_for(a.source_done(), 3)
        assert await wait_for(lambda: b.stats.packets_received == 40, 2)
        await b.stop("test over")  # its final compound carries a receiver report
        await a.stop()
        return b

    b = run(main())
    reports = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[RTCP Report Sent] (receiver")]
    assert reports, "the listener sent no receiver report"
    counts = [int(line.split(":")[1].replace(",", "")) for r in reports for line in r.splitlines()
              if line.startswith("Total Packets Received:")]
    assert counts == sorted(counts) and counts[-1] == b.stats.packets_received == 40
    assert reports[-1].splitlines()[2] == "Packet Loss: 0"


def test_wav_file_in_wav_recording_out(tmp_path: "object") -> None:
    """The real audio_io path: a WAV file streamed (used bit for bit), a WAV recording of what was heard."""
    import soundfile as sf

    from pyvoip_fast.audio import WavRecorder, open_source

    sent = speech_like(1.2, seed=9)
    src_path = tmp_path / "in.wav"  # type: ignore[operator]
    sf.write(str(src_path), sent, 8000, subtype="PCM_16")
    out_path = tmp_path / "heard.wav"  # type: ignore[operator]

    async def main() -> tuple:
        a, b = await session_pair(rtcp_interval=5)
        rec = WavRecorder(out_path)
        a.start(params(b.local_rtp_port), source=open_source(src_path))
        b.start(params(a.local_rtp_port), sink=rec)
        await asyncio.wait_for(a.source_done(), 4)
        await asyncio.sleep(0.3)
        await a.stop()
        await b.stop()
        rec.close()
        return a, b

    a, b = run(main())
    heard, rate = sf.read(str(out_path), dtype="int16")
    assert rate == 8000 and a.stats.packets_sent == 60
    ok, total = chunk_match(sent, heard)
    assert total >= 4 and ok >= total - 1 - playout_events(b.stats)


def test_update_changes_ptime_on_the_same_timeline() -> None:
    async def main() -> list:
        loop = asyncio.get_running_loop()
        rx, got = _rtp_capture(loop)
        a = await MediaSession.create("127.0.0.1", rtcp_interval=5)
        port = rx.getsockname()[1]
        a.start(params(port), source=ArraySource(speech_like(3)))
        await asyncio.sleep(0.2)
        a.update(params(port, ptime=40))
        await asyncio.sleep(0.4)
        await a.stop()
        loop.remove_reader(rx.fileno())
        rx.close()
        return got

    got = run(main())
    sizes = [len(p.payload) for _, p in got]
    k = sizes.index(320)
    assert set(sizes[:k]) == {160} and set(sizes[k:]) == {320} and len(sizes) - k >= 8
    ts = [p.timestamp for _, p in got]
    steps = [(b - a) % 2**32 for a, b in zip(ts, ts[1:])]
    assert all(s == 160 for s in steps[: k - 1]) and all(s == 320 for s in steps[k:])
    assert 0 < steps[k - 1] < 1600  # the switch keeps the timestamp on the wall-clock timeline
    arrivals = [t for t, _ in got]
    assert np.median(np.diff(arrivals[k:])) == pytest.approx(0.04, abs=0.003)


def test_strict_source_ignores_intruders_and_follows_a_moved_peer() -> None:
    """Once latched, RTP from another address is ignored while the peer talks (no third-party takeover); when
    the peer really moves (quiet, then a run of sequential packets from a new port), the stream follows it."""

    def packet(seq: int, ssrc: int, fill: int) -> bytes:
        return RtpPacket(payload_type=0, sequence_number=seq & 0xFFFF, timestamp=(seq * 160) & 0xFFFFFFFF,
                         ssrc=ssrc, payload=bytes([fill]) * 160).serialize()

    async def main() -> tuple:
        sink = ListSink()
        a = await MediaSession.create("127.0.0.1", rtcp_interval=5)
        old, intruder, new = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3))
        for s in (old, intruder, new):
            s.bind(("127.0.0.1", 0))
        a.start(params(old.getsockname()[1]), sink=sink)
        dest = ("127.0.0.1", a.local_rtp_port)
        for i in range(25):  # the peer talks; an intruder injects its own stream at the same time
            old.sendto(packet(100 + i, 0x1111, 0xFF), dest)
            intruder.sendto(packet(5000 + i, 0x6666, 0x00), dest)
            await asyncio.sleep(0.02)
        latched_during_talk = a.remote_rtp_addr
        await asyncio.sleep(0.7)  # the peer goes quiet, then reappears from another port (NAT rebinding)
        for i in range(25):
            new.sendto(packet(125 + i, 0x1111, 0xFF), dest)
            await asyncio.sleep(0.02)
        moved_to = a.remote_rtp_addr
        await a.stop()
        names = old.getsockname(), new.getsockname()
        for s in (old, intruder, new):
            s.close()
        return latched_during_talk, moved_to, a.stats, *names

    latched, moved_to, stats, old_addr, new_addr = run(main())
    assert latched[:2] == old_addr and moved_to[:2] == new_addr
    assert stats.packets_invalid >= 25  # every intruder packet (and the new port's first few) dropped
    assert stats.remote_ssrc == 0x1111


def test_shared_clock_for_a_loop_without_attributes() -> None:
    """A loop that refuses attributes still gets one shared clock; one with its own time() gets call_at wake-ups."""

    class SlotLoop(asyncio.SelectorEventLoop):
        # what a compiled loop class does to setattr: refuses it (a read-only attribute stands in for that here)
        _pyvoip_fast_media_clock = property(lambda self: None)

        def time(self) -> float:  # not BaseEventLoop.time: the clock must not assume CLOCK_MONOTONIC
            return super().time()

    loop = SlotLoop()
    try:
        async def main() -> tuple:
            clock = MediaClock.for_loop()
            fired: list = []
            clock.call_at(clock.time() + 0.01, fired.append)
            await asyncio.sleep(0.03)
            return clock, MediaClock.for_loop(), fired

        clock, again, fired = loop.run_until_complete(main())
        assert clock is again and not clock.precise and len(fired) == 1
        from pyvoip_fast.media import clock as media

        assert media._SHARED_CLOCKS.get(loop) is clock
    finally:
        loop.close()


def test_rtcp_from_a_stranger_is_dropped_counted_and_never_answered() -> None:
    """Issue 19: receiver reports and a BYE from another address right after the call starts used to make the
    session send its own reports there and mark the peer's BYE. Only the peer's RTP host or its negotiated RTCP
    address is heard now; the stranger gets nothing and the peer keeps getting our reports."""
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.9", 0))
    stranger.setblocking(False)

    async def main() -> tuple:
        a, b = await session_pair(rtcp_interval=0.25)
        a.start(params(b.local_rtp_port), source=ArraySource(speech_like(1.0, seed=5)), sink=ListSink())
        b.start(params(a.local_rtp_port), source=ArraySource(speech_like(1.0, seed=6)), sink=ListSink())
        forged_ssrc = 0x5EED5EED
        block = rtcp.ReportBlock(b.ssrc, 255, 5000, 1, 9999, 0, 0)
        for _ in range(3):
            stranger.sendto(rtcp.serialize_compound([rtcp.ReceiverReport(forged_ssrc, [block]),
                                                     rtcp.SourceDescription.cname_for(forged_ssrc, "x@y")]),
                            ("127.0.0.1", b.local_rtcp_port))
        stranger.sendto(rtcp.serialize_compound([rtcp.ReceiverReport(forged_ssrc),
                                                 rtcp.Bye([forged_ssrc], "bye from a stranger")]),
                        ("127.0.0.1", b.local_rtcp_port))
        await asyncio.wait_for(asyncio.gather(a.source_done(), b.source_done()), 5)
        await asyncio.sleep(0.4)
        assert not b.bye_received.is_set()
        await a.stop("test over")
        await b.stop()
        return a.stats, b.stats

    try:
        sa, sb = run(main())
        got = []
        while True:
            try:
                got.append(stranger.recv(2048))
            except BlockingIOError:
                break
    finally:
        stranger.close()
    assert got == []  # not one of our reports went to the stranger
    assert sb.rtcp_strangers == 4 and sa.rtcp_strangers == 0
    assert sa.rtcp_received >= 2  # the peer kept getting ours
    assert sb.remote_packets_lost in (None, 0)  # the forged block (5,000 lost) was not taken as the peer's


def test_the_first_call_of_a_process_imports_nothing() -> None:
    """A module imported by a process's first call runs on the event loop that carries every call's media (the
    E-model module took 2 ms at the first call's end, the idna codec that ``getaddrinfo`` needs 1 ms and a megabyte
    at its start). Checked in a fresh interpreter: two sessions set up, a call both ways, statistics, stop."""
    import subprocess
    import sys

    probe = (
        "import asyncio, sys\n"
        "import numpy as np\n"
        "sys.path.insert(0, 'tests')\n"
        "from mediakit import ArraySource, ListSink, params\n"
        "from pyvoip_fast.media import MediaSession\n"
        "before = set(sys.modules)\n"
        "async def main():\n"
        "    a = await MediaSession.create('127.0.0.1')\n"
        "    b = await MediaSession.create('127.0.0.1')\n"
        "    sink = ListSink()\n"
        "    tone = (3000 * np.sin(np.arange(2400) * 0.3)).astype(np.int16)\n"
        "    a.start(params(b.local_rtp_port), source=ArraySource(tone))\n"
        "    b.start(params(a.local_rtp_port), source=ArraySource(tone), sink=sink)\n"
        "    await asyncio.wait_for(asyncio.gather(a.source_done(), b.source_done()), 5)\n"
        "    await asyncio.sleep(0.15)\n"
        "    await a.stop(); await b.stop()\n"
        "    assert b.stats.packets_received == 15 and b.stats.mos is not None, b.stats\n"
        "asyncio.run(main())\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported by the first call: {done.stdout.strip()}"


def test_a_calls_tick_sends_before_it_receives_and_its_lateness_is_the_sends() -> None:
    """The media clock runs a wake-up's calls stage by stage; the send stage goes first, so a call's packet leaves
    before the group's receiving and playout, and the lateness the clock records (``note_stage``) is the send's.
    Measured at 450 calls: p99 send lateness 1.3-7 ms send-first, 17-32 ms when every call received first."""

    async def main() -> None:
        a = await MediaSession.create("127.0.0.1")
        b = await MediaSession.create("127.0.0.1")
        order: List[str] = []
        try:
            tone = (3000 * np.sin(np.arange(1600) * 0.3)).astype(np.int16)
            a.start(params(b.local_rtp_port), source=ArraySource(tone))
            b.start(params(a.local_rtp_port), source=ArraySource(tone), sink=ListSink())
            pacer = a._pacer
            assert pacer is not None and pacer.stages
            assert pacer.stages[pacer.note_stage] == a._sender.tick and pacer.note_stage == 0
            send, receive, play = pacer.stages
            pacer.stages = (lambda n, d: (order.append("send"), send(n, d)),
                            lambda n, d: (order.append("receive"), receive(n, d)),
                            lambda n, d: (order.append("play"), play(n, d)))
            await asyncio.wait_for(b.source_done(), 5)
            await asyncio.sleep(0.1)
            assert a.stats.packets_received >= 9 and a.stats.packets_sent == 10
        finally:
            await a.stop()
            await b.stop()
        assert order[:3] == ["send", "receive", "play"] and len(order) >= 15

    run(main())
