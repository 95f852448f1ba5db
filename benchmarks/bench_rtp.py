"""RTP and RTCP packet build/parse, side by side: compiled, pure-Python twin, plain ``struct``, aiortc.

Groups (ns per operation; compare within a group; each entry is listed with its exact statement further down):
- ``rtp-build``: a 172-byte PCMU packet (12-byte header + 160 bytes) from its fields to a new ``bytes``:
  ``build_packet()`` vs ``HDR.pack(...) + payload`` vs aiortc, plus our object API
  ``RtpPacket(...).serialize()`` and the bare loop (``harness``).
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

Every entry is one statement timed inline, 1,000 times per round, like ``python -m timeit`` (see ``_measure``):
the tables' "us" per round read as ns per statement.
aiortc is measured when importable (``pip install .[bench]``); otherwise its entries are skipped.
Run: ``python -m pytest benchmarks/bench_rtp.py --benchmark-min-rounds=50 --benchmark-columns=min,median
--benchmark-sort=name``; smoke: ``--benchmark-disable``.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Dict, List, Tuple

import pytest

from helpers import skip_or_fail
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
        skip_or_fail("aiortc is not installed (pip install .[bench])")


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
# Every entry is one statement, written as a caller would write it, timed INLINE the way ``python -m timeit``
# does: it is compiled into a loop that runs it CALLS_PER_ROUND times, and the names it uses are local variables
# of that loop (bound once, so no entry pays a global or attribute lookup the others do not). Timing a closure
# per call instead (pytest-benchmark's usual way) adds its call and the runner's loop, about 140 ns here, to
# every entry, which squeezes every ratio towards 1 and measures the harness more than a 50 ns function. The
# remaining constant, the bare loop, is the ``harness`` entry (a ``pass`` statement): about 10-20 ns.
#
# Reading the tables: one round = CALLS_PER_ROUND (1,000) statements, so the "us" the table prints per round
# are ns per statement.

CALLS_PER_ROUND = 1000
DEFAULT_ROUNDS = 200


def _compile(stmt: str, names: Dict[str, Any]) -> Callable[[], None]:
    """A function running ``stmt`` CALLS_PER_ROUND times, with ``names`` as its local variables."""
    params = ", ".join(f"{k}=__names[{k!r}]" for k in names)
    body = "\n".join("        " + line for line in stmt.splitlines())
    src = f"def __loop({params}):\n    for __i in __range:\n{body}\n"
    env: Dict[str, Any] = {"__names": names, "__range": range(CALLS_PER_ROUND)}
    exec(compile(src, f"<bench: {stmt.splitlines()[0]}>", "exec"), env)
    return env["__loop"]  # type: ignore[no-any-return]


def _measure(benchmark: Any, request: Any, stmt: str, names: Dict[str, Any], result: str = "") -> Any:
    """Benchmark ``stmt`` inline (see above); returns the value of the expression ``result`` (default: the
    statement itself, when it is an expression) evaluated once with the same names, for checking."""
    loop = _compile(stmt, names)
    value = eval(result or stmt, {}, dict(names))
    if getattr(benchmark, "disabled", False):
        loop()
        return value
    rounds = max(int(request.config.getoption("benchmark_min_rounds") or 0), DEFAULT_ROUNDS)
    benchmark.extra_info["statements_per_round"] = CALLS_PER_ROUND
    benchmark.pedantic(loop, rounds=rounds, iterations=1, warmup_rounds=5)
    return value


# -- RTP build ---------------------------------------------------------------------------------------------------
# group "rtp-build": a new bytes object holding the 172-byte packet, from its fields.
#   cython / python: build(pt, seq, ts, ssrc, payload)                    (rtp.build_packet: the sender's fast path)
#   struct:          pack(0x80, pt, seq, ts, ssrc) + payload               (the same statement with struct)
#   aiortc:          aiortc.rtp.RtpPacket(...).serialize()                 (its only way to build)
#   object-cython / object-python: RtpPacket(payload_type=..., ...).serialize()   (our object API)
#   harness: pass                                                          (the loop alone)
# group "rtp-write-packet": the same packet written into a reused bytearray at offset 0.
#   cython / python: write(buf, 0, pt, seq, ts, ssrc, payload)
#   struct:          pack_into(buf, 0, 0x80, pt, seq, ts, ssrc); buf[12:12 + len(payload)] = payload
# group "rtp-write-header": only the 12-byte fixed header written into a reused bytearray.
#   cython / python: write(buf, 0, pt, seq, ts, ssrc)
#   struct:          pack_into(buf, 0, 0x80, pt, seq, ts, ssrc)

FIELDS: Dict[str, Any] = {"pt": PT, "seq": SEQ, "ts": TS, "ssrc": SSRC, "payload": PAYLOAD}


def _build_entry(competitor: str) -> Tuple[str, Dict[str, Any]]:
    if competitor in ("cython", "python"):
        return "build(pt, seq, ts, ssrc, payload)", dict(FIELDS, build=_compat.module_for("_rtp", competitor).build_packet)
    if competitor in ("object-cython", "object-python"):
        Pkt = _compat.module_for("_rtp", competitor.split("-")[1]).RtpPacket
        return ("RtpPacket(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=payload).serialize()",
                dict(FIELDS, RtpPacket=Pkt))
    if competitor == "struct":
        return "pack(0x80, pt, seq, ts, ssrc) + payload", dict(FIELDS, pack=_HDR.pack)
    return "build(pt, seq, ts, ssrc, payload)", dict(FIELDS, build=aiortc_build_rtp)


def test_rtp_harness(benchmark: Any, request: Any) -> None:
    """The bare measuring loop (a ``pass`` statement): the constant every rtp-* entry includes."""
    benchmark.group = "rtp-build"
    _measure(benchmark, request, "pass", dict(FIELDS), result="payload")


@pytest.mark.parametrize("competitor", COMPETITORS + ["object-cython", "object-python"])
def test_rtp_build(benchmark: Any, request: Any, competitor: str) -> None:
    _skip_missing(competitor)
    benchmark.group = "rtp-build"
    stmt, names = _build_entry(competitor)
    assert _measure(benchmark, request, stmt, names) == REFERENCE_RTP


@pytest.mark.parametrize("competitor", ["cython", "python", "struct"])
def test_rtp_write_packet(benchmark: Any, request: Any, competitor: str) -> None:
    buf = bytearray(1500)
    benchmark.group = "rtp-write-packet"
    if competitor == "struct":
        stmt = "pack_into(buf, 0, 0x80, pt, seq, ts, ssrc)\nbuf[12 : 12 + len(payload)] = payload"
        names = dict(FIELDS, pack_into=_HDR.pack_into, buf=buf)
        _measure(benchmark, request, stmt, names, result="len(payload)")
    else:
        names = dict(FIELDS, write=_compat.module_for("_rtp", competitor).write_packet, buf=buf)
        assert _measure(benchmark, request, "write(buf, 0, pt, seq, ts, ssrc, payload)", names) == 172
    assert bytes(buf[:172]) == REFERENCE_RTP


@pytest.mark.parametrize("competitor", ["cython", "python", "struct"])
def test_rtp_write_header(benchmark: Any, request: Any, competitor: str) -> None:
    buf = bytearray(1500)
    benchmark.group = "rtp-write-header"
    if competitor == "struct":
        _measure(benchmark, request, "pack_into(buf, 0, 0x80, pt, seq, ts, ssrc)",
                 dict(FIELDS, pack_into=_HDR.pack_into, buf=buf))
    else:
        names = dict(FIELDS, write=_compat.module_for("_rtp", competitor).write_header, buf=buf)
        _measure(benchmark, request, "write(buf, 0, pt, seq, ts, ssrc)", names)
    assert bytes(buf[:12]) == REFERENCE_RTP[:12]


# -- RTP parse ---------------------------------------------------------------------------------------------------
# group "rtp-parse": bytes -> the ten header fields and a zero-copy payload view.
#   struct: parse(data), the function struct_parse_rtp above (unpack + a tuple of the decoded fields + memoryview)
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
    result = _measure(benchmark, request, "parse(data)", {"parse": _rtp_parser(competitor), "data": REFERENCE_RTP})
    assert _payload_of(result) == PAYLOAD


@pytest.mark.parametrize("impl_name", ["cython", "python"])
def test_rtp_parse_with_payload_view(benchmark: Any, request: Any, impl_name: str) -> None:
    benchmark.group = "rtp-parse"
    names = {"parse": _compat.module_for("_rtp", impl_name).RtpPacket.parse, "data": REFERENCE_RTP}
    result = _measure(benchmark, request, "parse(data).payload", names)
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
    values: Dict[str, Any] = {"ssrc": SSRC, "ntp": NTP, "ts": TS, "block": BLOCK, "blocks": (BLOCK,), "cname": CNAME}
    if competitor.startswith("build_report-"):
        # the one-call builder: the same values as the struct function gets, the block as a bound 1-tuple
        report = _compat.module_for("_rtp", competitor.split("-", 1)[1]).build_report
        stmt = ("build(ssrc, blocks, cname, ntp_timestamp=ntp, rtp_timestamp=ts, packet_count=500, "
                "octet_count=80000)")
        assert _measure(benchmark, request, stmt, dict(values, build=report)) == REFERENCE_RTCP
        return
    stmt = "build(ssrc, ntp, ts, 500, 80000, block, cname)"
    assert _measure(benchmark, request, stmt, dict(values, build=_rtcp_builder(competitor))) == REFERENCE_RTCP


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
    result = _measure(benchmark, request, "parse(data)", {"parse": _rtcp_parser(competitor), "data": REFERENCE_RTCP})
    assert len(result) == 2
