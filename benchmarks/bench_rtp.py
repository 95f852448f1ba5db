"""RTP and RTCP packet build/parse, side by side: compiled, pure-Python twin, plain ``struct``, aiortc.

Groups (ns per operation; compare within a group; each entry is listed with its exact statement further down):
- ``rtp-build``: a 172-byte PCMU packet (12-byte header + 160 bytes) from its fields to a new ``bytes``:
  ``build_packet()`` vs the ``struct`` function with the same signature (``struct_build_rtp``, like for like, as
  the ``struct`` parser and RTCP builder are functions too) vs the bare expression ``HDR.pack(...) + payload``
  written at the call site (``struct-expression``, the floor of what ``struct`` can do) vs aiortc, plus our object
  API ``RtpPacket(...).serialize()`` and the bare loop (``harness``).
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

pytest-benchmark runs one entry after the other, so on a shared VM whose speed drifts over seconds one entry can
land in a slow spell and its neighbour in a fast one. ``python benchmarks/bench_rtp.py [--rounds N] [--repeat K]``
times the same statements INTERLEAVED instead (round 1 of every entry, then round 2 of every entry, ...), so
every entry of a group sees the same machine, and prints each group's ratios against our compiled entry.
"""

from __future__ import annotations

import argparse
import random
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest

try:
    from helpers import skip_or_fail
except ImportError:  # run as a script: the tests' helpers are not on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
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
#   struct:          build(pt, seq, ts, ssrc, payload)                    (struct_build_rtp above: the same call, the
#                                                                          same work, the marker bit included)
#   struct-expression: pack(0x80, pt, seq, ts, ssrc) + payload            (struct written inline at the call site,
#                                                                          with no function and no marker bit)
#   bytes-concat:    header + payload                                      (two bytes objects that already exist
#                                                                          joined: the cost of any new 172-byte
#                                                                          bytes, the floor for this group)
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
        return "build(pt, seq, ts, ssrc, payload)", dict(FIELDS, build=struct_build_rtp)
    if competitor == "struct-expression":
        return "pack(0x80, pt, seq, ts, ssrc) + payload", dict(FIELDS, pack=_HDR.pack)
    if competitor == "bytes-concat":
        return "header + payload", dict(FIELDS, header=REFERENCE_RTP[:12])
    return "build(pt, seq, ts, ssrc, payload)", dict(FIELDS, build=aiortc_build_rtp)


def test_rtp_harness(benchmark: Any, request: Any) -> None:
    """The bare measuring loop (a ``pass`` statement): the constant every rtp-* entry includes."""
    benchmark.group = "rtp-build"
    _measure(benchmark, request, "pass", dict(FIELDS), result="payload")


BUILD_EXTRAS = ["struct-expression", "bytes-concat", "object-cython", "object-python"]


@pytest.mark.parametrize("competitor", COMPETITORS + BUILD_EXTRAS)
def test_rtp_build(benchmark: Any, request: Any, competitor: str) -> None:
    _skip_missing(competitor)
    benchmark.group = "rtp-build"
    stmt, names = _build_entry(competitor)
    assert _measure(benchmark, request, stmt, names) == REFERENCE_RTP


def _write_packet_entry(competitor: str, buf: bytearray) -> Tuple[str, Dict[str, Any]]:
    if competitor == "struct":
        return ("pack_into(buf, 0, 0x80, pt, seq, ts, ssrc)\nbuf[12 : 12 + len(payload)] = payload",
                dict(FIELDS, pack_into=_HDR.pack_into, buf=buf))
    return ("write(buf, 0, pt, seq, ts, ssrc, payload)",
            dict(FIELDS, write=_compat.module_for("_rtp", competitor).write_packet, buf=buf))


def _write_header_entry(competitor: str, buf: bytearray) -> Tuple[str, Dict[str, Any]]:
    if competitor == "struct":
        return "pack_into(buf, 0, 0x80, pt, seq, ts, ssrc)", dict(FIELDS, pack_into=_HDR.pack_into, buf=buf)
    return ("write(buf, 0, pt, seq, ts, ssrc)",
            dict(FIELDS, write=_compat.module_for("_rtp", competitor).write_header, buf=buf))


@pytest.mark.parametrize("competitor", ["cython", "python", "struct"])
def test_rtp_write_packet(benchmark: Any, request: Any, competitor: str) -> None:
    buf = bytearray(1500)
    benchmark.group = "rtp-write-packet"
    stmt, names = _write_packet_entry(competitor, buf)
    if competitor == "struct":
        _measure(benchmark, request, stmt, names, result="len(payload)")
    else:
        assert _measure(benchmark, request, stmt, names) == 172
    assert bytes(buf[:172]) == REFERENCE_RTP


@pytest.mark.parametrize("competitor", ["cython", "python", "struct"])
def test_rtp_write_header(benchmark: Any, request: Any, competitor: str) -> None:
    buf = bytearray(1500)
    benchmark.group = "rtp-write-header"
    stmt, names = _write_header_entry(competitor, buf)
    _measure(benchmark, request, stmt, names)
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


def _rtcp_build_entry(competitor: str) -> Tuple[str, Dict[str, Any]]:
    values: Dict[str, Any] = {"ssrc": SSRC, "ntp": NTP, "ts": TS, "block": BLOCK, "blocks": (BLOCK,), "cname": CNAME}
    if competitor.startswith("build_report-"):
        # the one-call builder: the same values as the struct function gets, the block as a bound 1-tuple
        report = _compat.module_for("_rtp", competitor.split("-", 1)[1]).build_report
        stmt = ("build(ssrc, blocks, cname, ntp_timestamp=ntp, rtp_timestamp=ts, packet_count=500, "
                "octet_count=80000)")
        return stmt, dict(values, build=report)
    return "build(ssrc, ntp, ts, 500, 80000, block, cname)", dict(values, build=_rtcp_builder(competitor))


@pytest.mark.parametrize("competitor", COMPETITORS + ["build_report-cython", "build_report-python"])
def test_rtcp_build(benchmark: Any, request: Any, competitor: str) -> None:
    _skip_missing(competitor)
    benchmark.group = "rtcp-build"
    stmt, names = _rtcp_build_entry(competitor)
    assert _measure(benchmark, request, stmt, names) == REFERENCE_RTCP


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


# -- interleaved ratios (script mode) ---------------------------------------------------------------------------
#
# The same statements as above, compiled the same way, but timed round-robin: one round (CALLS_PER_ROUND
# statements) of every entry, in a fresh random order each time, then the next round. A slow spell of the machine
# then falls on every entry of a group alike, so the ratios hold even when absolute figures drift. The pure-Python
# twins are left out (they are 10-40x slower and not in any target). The first entry of each group is ours.


def interleaved_entries(with_aiortc: bool) -> Dict[str, List[Tuple[str, str, Dict[str, Any]]]]:
    """group -> [(label, statement, names)], our compiled entry first."""
    buf_p, buf_h = bytearray(1500), bytearray(1500)
    parse_names = {"data": REFERENCE_RTP}
    groups: Dict[str, List[Tuple[str, str, Dict[str, Any]]]] = {
        "rtp-build": [("build_packet", *_build_entry("cython")),
                      ("struct function", *_build_entry("struct")),
                      ("struct expression", *_build_entry("struct-expression")),
                      ("bytes concat (floor)", *_build_entry("bytes-concat")),
                      ("RtpPacket(...).serialize()", *_build_entry("object-cython"))],
        "rtp-write-packet": [("write_packet", *_write_packet_entry("cython", buf_p)),
                             ("struct pack_into + slice", *_write_packet_entry("struct", buf_p))],
        "rtp-write-header": [("write_header", *_write_header_entry("cython", buf_h)),
                             ("struct pack_into", *_write_header_entry("struct", buf_h))],
        "rtp-parse": [("RtpPacket.parse(...).payload", "parse(data).payload",
                       dict(parse_names, parse=_rtp_parser("cython"))),
                      ("RtpPacket.parse", "parse(data)", dict(parse_names, parse=_rtp_parser("cython"))),
                      ("struct parser", "parse(data)", dict(parse_names, parse=_rtp_parser("struct")))],
        "rtcp-build": [("build_report", *_rtcp_build_entry("build_report-cython")),
                       ("packet objects", *_rtcp_build_entry("cython")),
                       ("struct", *_rtcp_build_entry("struct"))],
        "rtcp-parse": [("parse_rtcp", "parse(data)", {"parse": _rtcp_parser("cython"), "data": REFERENCE_RTCP}),
                       ("struct", "parse(data)", {"parse": _rtcp_parser("struct"), "data": REFERENCE_RTCP})],
    }
    if with_aiortc:
        groups["rtp-build"].append(("aiortc", *_build_entry("aiortc")))
        groups["rtp-parse"].append(("aiortc", "parse(data)", dict(parse_names, parse=_rtp_parser("aiortc"))))
        groups["rtcp-build"].append(("aiortc", *_rtcp_build_entry("aiortc")))
        groups["rtcp-parse"].append(("aiortc", "parse(data)", {"parse": _rtcp_parser("aiortc"),
                                                               "data": REFERENCE_RTCP}))
    return groups


def run_interleaved(rounds: int, seed: Optional[int] = None) -> Dict[str, List[Tuple[str, float, float]]]:
    """Time every entry of every group round-robin; group -> [(label, min ns, median ns)] per statement."""
    rng = random.Random(seed)
    groups = interleaved_entries(aiortc_rtp is not None)
    loops = [(g, label, _compile(stmt, names)) for g, entries in groups.items() for label, stmt, names in entries]
    for _, _, loop in loops:  # warm up
        loop()
    samples: Dict[Tuple[str, str], List[float]] = {(g, label): [] for g, label, _ in loops}
    order = list(range(len(loops)))
    clock = time.perf_counter_ns
    for _ in range(rounds):
        rng.shuffle(order)
        for i in order:
            g, label, loop = loops[i]
            t0 = clock()
            loop()
            samples[(g, label)].append((clock() - t0) / CALLS_PER_ROUND)
    return {g: [(label, min(samples[(g, label)]), statistics.median(samples[(g, label)])) for label, _, _ in entries]
            for g, entries in groups.items()}


def format_interleaved(result: Dict[str, List[Tuple[str, float, float]]]) -> str:
    lines = [f"{'group / entry':<44} {'min ns':>8} {'median ns':>10} {'ratio to ours (min)':>20}"]
    for g, rows in result.items():
        lines.append(g)
        ours = rows[0][1]
        for label, lo, med in rows:
            lines.append(f"  {label:<42} {lo:>8.0f} {med:>10.0f} {lo / ours:>19.2f}x")
    return "\n".join(lines)


def test_interleaved_ratios_smoke() -> None:
    """Script mode works: every group measured, ours first, every figure positive."""
    result = run_interleaved(rounds=2, seed=1)
    assert set(result) == {"rtp-build", "rtp-write-packet", "rtp-write-header", "rtp-parse", "rtcp-build",
                           "rtcp-parse"}
    assert all(lo > 0 and med >= lo for rows in result.values() for _, lo, med in rows)
    assert "build_packet" in format_interleaved(result)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="RTP/RTCP build and parse ratios, timed interleaved (see the "
                                             "module docstring).")
    ap.add_argument("--rounds", type=int, default=500, help="rounds of 1,000 statements per entry (default 500)")
    ap.add_argument("--repeat", type=int, default=1, help="independent runs, each printed (default 1)")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.repeat < 1:
        ap.error("--rounds and --repeat must be at least 1")
    if aiortc_rtp is None:
        print("aiortc is not installed (pip install .[bench]): its entries are left out")
    for run in range(args.repeat):
        print(f"run {run + 1}/{args.repeat}: {args.rounds} interleaved rounds of {CALLS_PER_ROUND} statements")
        print(format_interleaved(run_interleaved(args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
