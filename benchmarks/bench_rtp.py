"""RTP and RTCP packet build/parse, side by side: compiled, pure-Python twin, plain ``struct``, aiortc.

Groups (ns per packet; compare within a group):
- ``rtp-build``: a 172-byte PCMU packet (12-byte header + 160 bytes) from its fields to ``bytes``.
  Our entries: ``build_packet()`` (the sender's fast path), ``RtpPacket(...).serialize()`` (the object API) and
  ``write_packet()`` into a reused buffer.
- ``rtp-parse``: the same packet from ``bytes`` to its ten header fields and a zero-copy payload view. Our
  ``RtpPacket.parse`` decodes all fields into C integers at once and makes the payload view on first access, so it
  is measured both alone and with the payload view materialised.
- ``rtcp-build``: an SR with one report block + SDES CNAME, built from values (objects created each time).
- ``rtcp-parse``: the same compound datagram parsed into objects.

aiortc is measured when importable (``pip install .[bench]``); otherwise its entries are skipped.
Run: ``python -m pytest benchmarks/bench_rtp.py --benchmark-columns=median,mean,ops --benchmark-sort=name``.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, List, Tuple

import pytest

from pyvoip_fast import _compat

try:  # optional competitor
    from aiortc import rtp as aiortc_rtp
except ImportError:  # pragma: no cover - depends on the environment
    aiortc_rtp = None

COMPETITORS = ["cython", "python", "struct", "aiortc"]

PT, SEQ, TS, SSRC = 0, 0x1234, 0x00A0B0C0, 0xDEADBEEF
PAYLOAD = bytes(range(160))
NTP = 0xE1A2B3C480000000
CNAME = b"alice@192.0.2.10"


def _skip_missing(competitor: str) -> None:
    if competitor == "aiortc" and aiortc_rtp is None:
        pytest.skip("aiortc is not installed (pip install .[bench])")


# -- the plain struct implementation the targets are measured against ------------------------------------------

_HDR = struct.Struct("!BBHII")
_SR = struct.Struct("!BBHIQIII")
_BLOCK = struct.Struct("!IIIIII")
_RTCP_HDR = struct.Struct("!BBH")
_U32 = struct.Struct("!I")


def struct_build_rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return _HDR.pack(0x80, pt | (0x80 if marker else 0), seq, ts, ssrc) + payload


def struct_parse_rtp(data: bytes) -> Tuple[Any, ...]:
    b0, b1, seq, ts, ssrc = _HDR.unpack_from(data)
    cc = b0 & 0x0F
    return (
        b0 >> 6, bool(b0 & 0x20), bool(b0 & 0x10), cc, bool(b1 & 0x80), b1 & 0x7F, seq, ts, ssrc,
        memoryview(data)[12 + 4 * cc :],
    )


def struct_build_sr_sdes(ssrc: int, ntp: int, ts: int, pc: int, oc: int, block: Tuple[int, ...], cname: bytes) -> bytes:
    sr = _SR.pack(0x81, 200, 12, ssrc, ntp, ts, pc, oc) + _BLOCK.pack(
        block[0], (block[1] << 24) | (block[2] & 0xFFFFFF), *block[3:]
    )
    chunk = _U32.pack(ssrc) + bytes((1, len(cname))) + cname + b"\0"
    chunk += bytes(-len(chunk) % 4)
    return sr + _RTCP_HDR.pack(0x81, 202, len(chunk) // 4) + chunk


def struct_parse_compound(data: bytes) -> List[Tuple[Any, ...]]:
    out: List[Tuple[Any, ...]] = []
    pos, n = 0, len(data)
    while pos < n:
        b0, pt, length = _RTCP_HDR.unpack_from(data, pos)
        end = pos + (length + 1) * 4
        if pt == 200:
            _, _, _, ssrc, ntp, ts, pc, oc = _SR.unpack_from(data, pos)
            blocks = []
            for i in range(b0 & 0x1F):
                s, lw, hi, j, lsr, dlsr = _BLOCK.unpack_from(data, pos + 28 + 24 * i)
                lost = lw & 0xFFFFFF
                blocks.append((s, lw >> 24, lost - 0x1000000 if lost & 0x800000 else lost, hi, j, lsr, dlsr))
            out.append(("sr", ssrc, ntp, ts, pc, oc, blocks))
        elif pt == 202:
            q = pos + 4
            chunks = []
            for _ in range(b0 & 0x1F):
                (ssrc,) = _U32.unpack_from(data, q)
                q += 4
                items = []
                while data[q]:
                    items.append((data[q], data[q + 2 : q + 2 + data[q + 1]]))
                    q += 2 + data[q + 1]
                q = pos + ((q - pos + 4) & ~3)
                chunks.append((ssrc, items))
            out.append(("sdes", chunks))
        pos = end
    return out


# -- fixtures ----------------------------------------------------------------------------------------------------

REFERENCE_RTP = struct_build_rtp(PT, SEQ, TS, SSRC, PAYLOAD)
BLOCK = (0x01020304, 12, 7, 0x10005, 40, 0xB3C48000, 0x18000)
REFERENCE_RTCP = struct_build_sr_sdes(SSRC, NTP, TS, 500, 80000, BLOCK, CNAME)


def aiortc_build_rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes) -> bytes:
    return aiortc_rtp.RtpPacket(  # type: ignore[no-any-return]
        payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=payload
    ).serialize()


def _rtp_builder(competitor: str) -> Callable[..., bytes]:
    if competitor in ("cython", "python"):
        return _compat.module_for("_rtp", competitor).build_packet  # type: ignore[no-any-return]
    if competitor == "struct":
        return struct_build_rtp
    return aiortc_build_rtp


@pytest.mark.parametrize("competitor", COMPETITORS)
def test_rtp_build(benchmark: Any, competitor: str) -> None:
    _skip_missing(competitor)
    benchmark.group = "rtp-build"
    assert benchmark(_rtp_builder(competitor), PT, SEQ, TS, SSRC, PAYLOAD) == REFERENCE_RTP


@pytest.mark.parametrize("impl_name", ["cython", "python"])
def test_rtp_build_object_api(benchmark: Any, impl_name: str) -> None:
    Pkt = _compat.module_for("_rtp", impl_name).RtpPacket
    benchmark.group = "rtp-build"

    def run(pt: int, seq: int, ts: int, ssrc: int, payload: bytes) -> bytes:
        return Pkt(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=payload).serialize()

    assert benchmark(run, PT, SEQ, TS, SSRC, PAYLOAD) == REFERENCE_RTP


@pytest.mark.parametrize("impl_name", ["cython", "python"])
def test_rtp_write_packet_into_buffer(benchmark: Any, impl_name: str) -> None:
    write_packet = _compat.module_for("_rtp", impl_name).write_packet
    buf = bytearray(1500)
    benchmark.group = "rtp-build"
    assert benchmark(write_packet, buf, 0, PT, SEQ, TS, SSRC, PAYLOAD) == 172
    assert bytes(buf[:172]) == REFERENCE_RTP


def _rtp_parser(competitor: str) -> Callable[[bytes], Any]:
    if competitor in ("cython", "python"):
        return _compat.module_for("_rtp", competitor).RtpPacket.parse  # type: ignore[no-any-return]
    if competitor == "struct":
        return struct_parse_rtp
    return aiortc_rtp.RtpPacket.parse  # type: ignore[no-any-return]


def _payload_of(result: Any) -> bytes:
    return bytes(result[-1]) if isinstance(result, tuple) else bytes(result.payload)


@pytest.mark.parametrize("competitor", COMPETITORS)
def test_rtp_parse(benchmark: Any, competitor: str) -> None:
    _skip_missing(competitor)
    benchmark.group = "rtp-parse"
    result = benchmark(_rtp_parser(competitor), REFERENCE_RTP)
    assert _payload_of(result) == PAYLOAD


@pytest.mark.parametrize("impl_name", ["cython", "python"])
def test_rtp_parse_with_payload_view(benchmark: Any, impl_name: str) -> None:
    parse = _compat.module_for("_rtp", impl_name).RtpPacket.parse
    benchmark.group = "rtp-parse"

    def run(data: bytes) -> Any:
        return parse(data).payload

    assert bytes(benchmark(run, REFERENCE_RTP)) == PAYLOAD


def _rtcp_builder(competitor: str) -> Callable[..., bytes]:
    if competitor in ("cython", "python"):
        m = _compat.module_for("_rtp", competitor)
        SR, RB, SDES, compound = m.SenderReport, m.ReportBlock, m.SourceDescription, m.serialize_compound

        def build(ssrc: int, ntp: int, ts: int, pc: int, oc: int, block: Tuple[int, ...], cname: bytes) -> bytes:
            return compound([SR(ssrc, ntp, ts, pc, oc, [RB(*block)]), SDES.cname_for(ssrc, cname)])  # type: ignore[no-any-return]

        return build
    if competitor == "struct":
        return struct_build_sr_sdes
    a = aiortc_rtp

    def build_aiortc(ssrc: int, ntp: int, ts: int, pc: int, oc: int, block: Tuple[int, ...], cname: bytes) -> bytes:
        sr = a.RtcpSrPacket(
            ssrc=ssrc,
            sender_info=a.RtcpSenderInfo(ntp_timestamp=ntp, rtp_timestamp=ts, packet_count=pc, octet_count=oc),
            reports=[a.RtcpReceiverInfo(*block)],
        )
        sdes = a.RtcpSdesPacket(chunks=[a.RtcpSourceInfo(ssrc=ssrc, items=[(1, cname)])])
        return bytes(sr) + bytes(sdes)

    return build_aiortc


@pytest.mark.parametrize("competitor", COMPETITORS)
def test_rtcp_build(benchmark: Any, competitor: str) -> None:
    _skip_missing(competitor)
    benchmark.group = "rtcp-build"
    assert benchmark(_rtcp_builder(competitor), SSRC, NTP, TS, 500, 80000, BLOCK, CNAME) == REFERENCE_RTCP


def _rtcp_parser(competitor: str) -> Callable[[bytes], Any]:
    if competitor in ("cython", "python"):
        return _compat.module_for("_rtp", competitor).parse_rtcp  # type: ignore[no-any-return]
    if competitor == "struct":
        return struct_parse_compound
    return aiortc_rtp.RtcpPacket.parse  # type: ignore[no-any-return]


@pytest.mark.parametrize("competitor", COMPETITORS)
def test_rtcp_parse(benchmark: Any, competitor: str) -> None:
    _skip_missing(competitor)
    benchmark.group = "rtcp-parse"
    result = benchmark(_rtcp_parser(competitor), REFERENCE_RTCP)
    assert len(result) == 2
