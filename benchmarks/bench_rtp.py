"""RTP and RTCP packet build/parse, side by side: compiled, pure-Python twin, plain ``struct``, aiortc.

Groups (ns per operation; compare within a group; each entry is listed with its exact statement further down):
- ``rtp-build``: a 172-byte PCMU packet (12-byte header + 160 bytes) from its fields to a new ``bytes``:
  ``build_packet()`` vs ``HDR.pack(...) + payload`` vs aiortc, plus our object API
  ``RtpPacket(...).serialize()``.
- ``rtp-write-packet``: the same packet written into a reused buffer: ``write_packet()`` vs
  ``HDR.pack_into(...)`` + a slice assignment of the payload.
- ``rtp-write-header``: the 12-byte header into a reused buffer: ``write_header()`` vs ``HDR.pack_into(...)``.
- ``rtp-parse``: the same packet from ``bytes`` to its ten header fields and a zero-copy payload view. Our
  ``RtpPacket.parse`` decodes all fields into C integers at once and makes the payload view on first access, so it
  is measured both alone and with the payload view materialised.
- ``rtcp-build``: an SR with one report block + SDES CNAME, built from values: through the objects
  (``serialize_compound([SenderReport(...), SourceDescription.cname_for(...)])``, created each time) and with the
  one-call ``build_report(...)``, which is like for like with the one ``struct`` function.
- ``rtcp-parse``: the same compound datagram parsed into objects.

Every entry is a zero-argument closure around one statement, run many times per round (see ``_measure``).
aiortc is measured when importable (``pip install .[bench]``); otherwise its entries are skipped.
Run: ``python -m pytest benchmarks/bench_rtp.py --benchmark-min-rounds=50 --benchmark-columns=min,median
--benchmark-sort=name``; smoke: ``--benchmark-disable``.
"""

from __future__ import annotations

import struct
import time
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
    if competitor in ("aiortc", "object-aiortc") and aiortc_rtp is None:
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


# -- measuring ---------------------------------------------------------------------------------------------------
#
# Every entry times a zero-argument closure whose body is exactly the statement a caller would write (the
# competitors' free variables are bound as default arguments, so no entry pays a global lookup the others
# do not). pytest-benchmark's own calibration often settles on ONE call per round for sub-microsecond
# functions (its first, cold call already exceeds its target round time); each round then also times the
# timer and the runner loop (~100-150 ns here), which compresses every ratio towards 1. ``_measure`` runs
# enough calls per round (about 20 us of work) for that constant to vanish, and at least
# --benchmark-min-rounds rounds (default 200).

ROUND_SECONDS = 20e-6
DEFAULT_ROUNDS = 200


def _measure(benchmark: Any, request: Any, fn: Callable[[], Any]) -> Any:
    """Benchmark ``fn()`` with a calibrated number of calls per round; returns one result of ``fn()``."""
    if getattr(benchmark, "disabled", False):
        return fn()
    for _ in range(200):  # warm up, then estimate the cost of one call
        fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2e-3:
        for _ in range(50):
            fn()
        calls += 50
    per_call = (time.perf_counter() - start) / calls
    iterations = max(1, int(ROUND_SECONDS / per_call))
    rounds = max(int(request.config.getoption("benchmark_min_rounds") or 0), DEFAULT_ROUNDS)
    benchmark.extra_info["iterations_per_round"] = iterations
    return benchmark.pedantic(fn, rounds=rounds, iterations=iterations, warmup_rounds=5)


# -- RTP build ---------------------------------------------------------------------------------------------------
# group "rtp-build": a new bytes object holding the 172-byte packet, from its fields.
#   cython / python: rtp.build_packet(pt, seq, ts, ssrc, payload)       (the sender's fast path)
#   struct:          HDR.pack(0x80, pt, seq, ts, ssrc) + payload         (the same statement with struct)
#   aiortc:          aiortc.rtp.RtpPacket(...).serialize()               (its only way to build)
#   object-cython / object-python: RtpPacket(payload_type=..., ...).serialize()   (our object API)
#   harness baseline: the same kind of closure doing nothing (what every entry pays for being measured)
# group "rtp-write-packet": the same packet written into a reused bytearray at offset 0.
#   cython / python: rtp.write_packet(buf, 0, pt, seq, ts, ssrc, payload)
#   struct:          HDR.pack_into(buf, 0, 0x80, pt, seq, ts, ssrc); buf[12:12 + len(payload)] = payload
# group "rtp-write-header": only the 12-byte fixed header written into a reused bytearray.
#   cython / python: rtp.write_header(buf, 0, pt, seq, ts, ssrc)
#   struct:          HDR.pack_into(buf, 0, 0x80, pt, seq, ts, ssrc)


Stmt = Callable[[], Any]


def _build_stmt(competitor: str) -> Stmt:
    if competitor in ("cython", "python"):
        build = _compat.module_for("_rtp", competitor).build_packet

        def ours(
            f: Any = build, a: int = PT, b: int = SEQ, c: int = TS, d: int = SSRC, p: bytes = PAYLOAD
        ) -> Any:
            return f(a, b, c, d, p)

        return ours
    if competitor in ("object-cython", "object-python"):
        Pkt = _compat.module_for("_rtp", competitor.split("-")[1]).RtpPacket

        def objects(
            P: Any = Pkt, a: int = PT, b: int = SEQ, c: int = TS, d: int = SSRC, p: bytes = PAYLOAD
        ) -> Any:
            return P(payload_type=a, sequence_number=b, timestamp=c, ssrc=d, payload=p).serialize()

        return objects
    if competitor == "struct":

        def with_struct(
            f: Any = _HDR.pack, a: int = PT, b: int = SEQ, c: int = TS, d: int = SSRC, p: bytes = PAYLOAD
        ) -> Any:
            return f(0x80, a, b, c, d) + p

        return with_struct

    def with_aiortc(
        f: Any = aiortc_build_rtp, a: int = PT, b: int = SEQ, c: int = TS, d: int = SSRC, p: bytes = PAYLOAD
    ) -> Any:
        return f(a, b, c, d, p)

    return with_aiortc


def test_rtp_harness_baseline(benchmark: Any, request: Any) -> None:
    """The measuring loop and a closure call that does nothing with the same bound arguments: subtract it from
    an entry of the rtp-* groups to get the cost of the statement itself."""
    benchmark.group = "rtp-build"

    def nothing(
        f: Any = None, a: int = PT, b: int = SEQ, c: int = TS, d: int = SSRC, p: bytes = PAYLOAD
    ) -> Any:
        return p

    assert _measure(benchmark, request, nothing) is PAYLOAD


@pytest.mark.parametrize("competitor", COMPETITORS + ["object-cython", "object-python"])
def test_rtp_build(benchmark: Any, request: Any, competitor: str) -> None:
    _skip_missing(competitor)
    benchmark.group = "rtp-build"
    assert _measure(benchmark, request, _build_stmt(competitor)) == REFERENCE_RTP


def _write_packet_stmt(competitor: str, buf: bytearray) -> Stmt:
    if competitor == "struct":

        def with_struct(
            h: Any = _HDR.pack_into, o: bytearray = buf,
            a: int = PT, b: int = SEQ, c: int = TS, d: int = SSRC, p: bytes = PAYLOAD,
        ) -> Any:
            h(o, 0, 0x80, a, b, c, d)
            o[12 : 12 + len(p)] = p
            return 12 + len(p)

        return with_struct
    write = _compat.module_for("_rtp", competitor).write_packet

    def ours(
        f: Any = write, o: bytearray = buf,
        a: int = PT, b: int = SEQ, c: int = TS, d: int = SSRC, p: bytes = PAYLOAD,
    ) -> Any:
        return f(o, 0, a, b, c, d, p)

    return ours


@pytest.mark.parametrize("competitor", ["cython", "python", "struct"])
def test_rtp_write_packet(benchmark: Any, request: Any, competitor: str) -> None:
    buf = bytearray(1500)
    benchmark.group = "rtp-write-packet"
    assert _measure(benchmark, request, _write_packet_stmt(competitor, buf)) == 172
    assert bytes(buf[:172]) == REFERENCE_RTP


def _write_header_stmt(competitor: str, buf: bytearray) -> Stmt:
    if competitor == "struct":

        def with_struct(
            h: Any = _HDR.pack_into, o: bytearray = buf,
            a: int = PT, b: int = SEQ, c: int = TS, d: int = SSRC,
        ) -> Any:
            return h(o, 0, 0x80, a, b, c, d)

        return with_struct
    write = _compat.module_for("_rtp", competitor).write_header

    def ours(
        f: Any = write, o: bytearray = buf, a: int = PT, b: int = SEQ, c: int = TS, d: int = SSRC
    ) -> Any:
        return f(o, 0, a, b, c, d)

    return ours


@pytest.mark.parametrize("competitor", ["cython", "python", "struct"])
def test_rtp_write_header(benchmark: Any, request: Any, competitor: str) -> None:
    buf = bytearray(1500)
    benchmark.group = "rtp-write-header"
    _measure(benchmark, request, _write_header_stmt(competitor, buf))
    assert bytes(buf[:12]) == REFERENCE_RTP[:12]


# -- RTP parse ---------------------------------------------------------------------------------------------------
# group "rtp-parse": bytes -> the ten header fields and a zero-copy payload view.
#   struct: struct_parse_rtp(data) (unpack + a tuple of the decoded fields + memoryview slice)
#   cython / python / aiortc: RtpPacket.parse(data); "+payload" entries also touch .payload (our view is lazy)


def _rtp_parser(competitor: str) -> Callable[[bytes], Any]:
    if competitor in ("cython", "python"):
        return _compat.module_for("_rtp", competitor).RtpPacket.parse  # type: ignore[no-any-return]
    if competitor == "struct":
        return struct_parse_rtp
    return aiortc_rtp.RtpPacket.parse  # type: ignore[no-any-return]


def _payload_of(result: Any) -> bytes:
    return bytes(result[-1]) if isinstance(result, tuple) else bytes(result.payload)


@pytest.mark.parametrize("competitor", COMPETITORS)
def test_rtp_parse(benchmark: Any, request: Any, competitor: str) -> None:
    _skip_missing(competitor)
    benchmark.group = "rtp-parse"
    parse = _rtp_parser(competitor)

    def stmt(f: Any = parse, d: bytes = REFERENCE_RTP) -> Any:
        return f(d)

    result = _measure(benchmark, request, stmt)
    assert _payload_of(result) == PAYLOAD


@pytest.mark.parametrize("impl_name", ["cython", "python"])
def test_rtp_parse_with_payload_view(benchmark: Any, request: Any, impl_name: str) -> None:
    parse = _compat.module_for("_rtp", impl_name).RtpPacket.parse
    benchmark.group = "rtp-parse"

    def stmt(f: Any = parse, d: bytes = REFERENCE_RTP) -> Any:
        return f(d).payload

    result = _measure(benchmark, request, stmt)
    assert bytes(result) == PAYLOAD


# -- RTCP --------------------------------------------------------------------------------------------------------
# group "rtcp-build": SR with one report block + SDES CNAME, from values, objects created each time.
#   cython / python: serialize_compound([SenderReport(..., [ReportBlock(*block)]),
#                                        SourceDescription.cname_for(ssrc, cname)])
#   struct: struct_build_sr_sdes(...) above; aiortc: its RtcpSrPacket + RtcpSdesPacket, bytes() of each.
#   build_report-cython / -python: build_report(ssrc, (block,), cname, ntp_timestamp=..., rtp_timestamp=...,
#                                  packet_count=..., octet_count=...), the one-call builder (no objects).
# group "rtcp-parse": that compound datagram parsed (struct_parse_compound / parse_rtcp / RtcpPacket.parse).


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


@pytest.mark.parametrize("competitor", COMPETITORS + ["build_report-cython", "build_report-python"])
def test_rtcp_build(benchmark: Any, request: Any, competitor: str) -> None:
    _skip_missing(competitor)
    benchmark.group = "rtcp-build"
    if competitor.startswith("build_report-"):
        # the one-call builder: the same values as the struct function gets, the block as a bound 1-tuple
        report = _compat.module_for("_rtp", competitor.split("-", 1)[1]).build_report

        def stmt_one_call(
            f: Any = report, s: int = SSRC, n: int = NTP, t: int = TS, bs: Any = (BLOCK,), c: bytes = CNAME
        ) -> Any:
            return f(s, bs, c, ntp_timestamp=n, rtp_timestamp=t, packet_count=500, octet_count=80000)

        assert _measure(benchmark, request, stmt_one_call) == REFERENCE_RTCP
        return
    build = _rtcp_builder(competitor)

    def stmt(
        f: Any = build, s: int = SSRC, n: int = NTP, t: int = TS, b: Any = BLOCK, c: bytes = CNAME
    ) -> Any:
        return f(s, n, t, 500, 80000, b, c)

    assert _measure(benchmark, request, stmt) == REFERENCE_RTCP


def _rtcp_parser(competitor: str) -> Callable[[bytes], Any]:
    if competitor in ("cython", "python"):
        return _compat.module_for("_rtp", competitor).parse_rtcp  # type: ignore[no-any-return]
    if competitor == "struct":
        return struct_parse_compound
    return aiortc_rtp.RtcpPacket.parse  # type: ignore[no-any-return]


@pytest.mark.parametrize("competitor", COMPETITORS)
def test_rtcp_parse(benchmark: Any, request: Any, competitor: str) -> None:
    _skip_missing(competitor)
    benchmark.group = "rtcp-parse"

    def stmt(f: Any = _rtcp_parser(competitor), d: bytes = REFERENCE_RTCP) -> Any:
        return f(d)

    result = _measure(benchmark, request, stmt)
    assert len(result) == 2
