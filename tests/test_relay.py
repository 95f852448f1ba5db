"""End to end through tests/relay.py: seeded loss, duplication, reordering and delay jitter on 127.0.0.1.

Budget: about 8 s (two calls of ~3.5 s).
"""

from __future__ import annotations

import asyncio

import pytest

from mediakit import ArraySource, ListSink, chunk_match, params, run, session_pair, speech_like
from relay import UdpRelay

pytestmark = pytest.mark.timeout(60)


async def _call_through_relay(seconds: float, **impair: float) -> tuple:
    a, b = await session_pair(rtcp_interval=0.3, jitter_initial_delay=0.02, jitter_min_delay=0.02)
    relay = await UdpRelay.create(("127.0.0.1", a.local_rtp_port), ("127.0.0.1", b.local_rtp_port), **impair)
    # RTCP goes through its own relay without impairment
    rtcp_relay = await UdpRelay.create(("127.0.0.1", a.local_rtcp_port), ("127.0.0.1", b.local_rtcp_port))
    sent = speech_like(seconds, seed=11)
    sink = ListSink()
    a.start(params(relay.a_port, rtcp_port=rtcp_relay.a_port), source=ArraySource(sent))
    b.start(params(relay.b_port, rtcp_port=rtcp_relay.b_port), sink=sink)
    await asyncio.wait_for(a.source_done(), seconds + 3)
    await asyncio.sleep(0.4)
    delay_ms = b.stats.jitter_buffer_delay_ms
    await a.stop()
    await asyncio.sleep(0.05)
    await b.stop()
    relay.close()
    rtcp_relay.close()
    return a, b, relay, sent, sink, delay_ms


def test_lossy_relay_statistics_concealment_and_adaptation() -> None:
    a, b, relay, sent, sink, delay_ms = run(
        _call_through_relay(3.0, loss=0.05, duplicate=0.04, reorder=0.04, jitter=0.03, grace=3, seed=7)
    )
    log = relay.a_to_b
    sa, sb = a.stats, b.stats
    assert sa.packets_sent == 150 == log.rtp_seen
    assert len(log.dropped) >= 4  # the seed really impairs this stream
    assert len(log.duplicated) >= 3 and len(log.reordered) >= 3
    # the receiver's statistics report what the relay did
    # (a drop of the very last packet is invisible to RFC 3550 loss counting)
    assert len(log.dropped) - 1 <= sb.packets_lost <= len(log.dropped)
    assert sb.packets_received == 150 - len(log.dropped)
    assert sb.packets_duplicated == len(log.duplicated)
    assert sb.packets_reordered >= 1
    assert sb.loss_percent == pytest.approx(100.0 * len(log.dropped) / 150, abs=1.0)
    # concealment ran for the missing frames and the jitter buffer grew its delay above the 20 ms start
    assert sb.frames_concealed >= len(log.dropped)
    assert delay_ms > 40.0
    assert sb.jitter_ms > 1.0
    # the peer heard about it through RTCP
    assert sa.remote_packets_lost is not None and sa.remote_packets_lost >= 1
    assert sa.rtt_ms is not None and sa.rtt_ms < 100
    # loss lowers the E-model estimate, concealment softens it
    assert sb.mos < 4.4 and sb.r_factor > sb.r_factor_no_plc and sb.mos >= sb.mos_no_plc
    # what was heard is still the sent audio where packets arrived
    ok, total = chunk_match(sent, sink.pcm, chunk=800)
    assert total >= 20 and ok >= total // 2


def test_relay_is_deterministic() -> None:
    """The same seed drops, duplicates and reorders the same packets."""
    runs = [
        run(_call_through_relay(0.8, loss=0.1, duplicate=0.05, reorder=0.05, jitter=0.01, seed=3))[2].a_to_b
        for _ in range(2)
    ]
    assert runs[0].rtp_seen == runs[1].rtp_seen == 40
    # sequence numbers start at random values: compare positions in the stream
    assert runs[0].dropped_at == runs[1].dropped_at and len(runs[0].dropped_at) >= 2
    first = [[(s - l.dropped[0]) % 65536 for s in l.duplicated] for l in runs]
    assert first[0] == first[1] and len(runs[0].duplicated) >= 1
