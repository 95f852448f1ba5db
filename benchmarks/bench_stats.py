"""RFC 3550 receiver statistics: one ``update`` per received packet, compiled vs twin vs aiortc.

Each benchmark call feeds the next 1,000 packets of one continuous 20 ms PCMU stream (sequence numbers and
timestamps keep increasing and wrap, arrival times grow), so the statistics see a real stream rather than the same
packet again (which would be a duplicate). The figure per packet is the mean time divided by 1,000 and includes
the Python loop that makes the calls (about 30 ns). aiortc's ``StreamStatistics.add`` (which takes a packet
object and reads the wall clock itself) is measured when aiortc is installed.

Run: ``python -m pytest benchmarks/bench_stats.py --benchmark-columns=median,mean,ops``.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterator, List, Tuple

import pytest

from helpers import skip_or_fail
from pyvoip_fast import _compat

try:
    from aiortc import rtp as aiortc_rtp
    from aiortc.rtcrtpreceiver import StreamStatistics as AiortcStreamStatistics
except ImportError:  # pragma: no cover - depends on the environment
    aiortc_rtp = None
    AiortcStreamStatistics = None

CHUNK = 1000
N_CHUNKS = 66  # 66,000 packets: the sequence number wraps inside the cycle


def _stream() -> List[List[Tuple[int, int, float]]]:
    packets = [(i & 0xFFFF, (i * 160) & 0xFFFFFFFF, 1000.0 + i * 0.02 + (i % 7) * 0.0004) for i in range(CHUNK * N_CHUNKS)]
    return [packets[k : k + CHUNK] for k in range(0, len(packets), CHUNK)]


CHUNKS = _stream()


@pytest.mark.parametrize("impl_name", ["cython", "python"])
def test_receiver_stats_update_1000_packets(benchmark: Any, impl_name: str) -> None:
    m = _compat.module_for("_stats", impl_name)
    rs = m.ReceiverStats(8000)
    chunks: Iterator[List[Tuple[int, int, float]]] = itertools.cycle(CHUNKS)
    update = rs.update

    def run() -> None:
        for seq, ts, arrival in next(chunks):
            update(seq, ts, arrival, 160)

    benchmark.group = "stats-update-x1000"
    benchmark(run)
    assert rs.valid and rs.duplicates == 0 and rs.received > 0


def test_receiver_stats_update_aiortc(benchmark: Any) -> None:
    if AiortcStreamStatistics is None:
        skip_or_fail("aiortc is not installed (pip install .[bench])")
    st = AiortcStreamStatistics(clockrate=8000)
    packets = [
        [aiortc_rtp.RtpPacket(payload_type=0, sequence_number=s, timestamp=ts, ssrc=1, payload=b"") for s, ts, _ in c]
        for c in CHUNKS[:8]
    ]
    chunks = itertools.cycle(packets)
    add = st.add

    def run() -> None:
        for pkt in next(chunks):
            add(pkt)

    benchmark.group = "stats-update-x1000"
    benchmark(run)
    assert st.packets_received > 0


@pytest.mark.parametrize("impl_name", ["cython", "python"])
def test_sender_stats_on_sent_1000(benchmark: Any, impl_name: str) -> None:
    ss = _compat.module_for("_stats", impl_name).SenderStats()
    on_sent = ss.on_sent
    rng = range(CHUNK)

    def run() -> None:
        for _ in rng:
            on_sent(160)

    benchmark.group = "sender-stats-x1000"
    benchmark(run)
    assert ss.packet_count > 0
