"""Fuzzing every packet parser of both implementations: only the documented exception or a valid result.

The bulk volume is a seeded random loop (far faster than hypothesis): random bytes, truncations and bit flips
of valid RTP and RTCP packets, and valid packets with a forged first byte or length. Every case goes to
``RtpPacket.parse``, ``parse_rtcp`` (strict and reduced-size) and, when parsing succeeds, to
``header_extensions()`` and back through the serialisers. The compiled module and the twin must agree exactly:
the same exception type and message, or equal results.

Default run: 100,000 cases (a few seconds). ``-m slow``: 2,000,000 cases.
"""

from __future__ import annotations

import random
from typing import Any, Callable, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyvoip_fast import _compat
from pyvoip_fast.errors import RtcpParseError, RtpParseError

P = _compat.module_for("_rtp", "python")
# with extensions switched off on purpose the twin is compared with itself (still checks the documented errors)
C = P if _compat.NO_EXTENSIONS else _compat.module_for("_rtp", "cython")


def _corpus(m: Any) -> Tuple[List[bytes], List[bytes]]:
    one_byte = m.encode_header_extensions([(1, b"ab"), (3, b"\x00" * 16)])
    two_byte = m.encode_header_extensions([(200, b""), (7, b"abc")], two_byte=True)
    rtp = [
        m.RtpPacket(payload_type=0, sequence_number=1, timestamp=160, ssrc=9, payload=b"\xff" * 160).serialize(),
        m.RtpPacket(
            payload_type=8, marker=True, csrc=(1, 2, 3), payload=b"hi", padding_length=5,
            extension_profile=one_byte[0], extension_data=one_byte[1],
        ).serialize(),
        m.RtpPacket(extension_profile=two_byte[0], extension_data=two_byte[1], payload=b"x" * 7).serialize(),
        m.RtpPacket(csrc=tuple(range(15)), padding_length=1).serialize(),
    ]
    block = m.ReportBlock(5, 12, -7, 70000, 33, 0xAABBCCDD, 65536)
    sr = m.SenderReport(1, 0xE1A2B3C480000000, 8000, 10, 1600, [block, block])
    rtcp = [
        m.serialize_compound([sr, m.SourceDescription.cname_for(1, "user@example.org")]),
        m.serialize_compound(
            [
                m.ReceiverReport(2, [block]),
                m.SourceDescription([m.SdesChunk(2, [(1, b"c"), (6, b"tool"), (8, b"\x01xy")]), m.SdesChunk(3)]),
                m.Bye([2, 3], "bye now"),
                m.App(3, 2, b"NAME", b"data1234"),
            ]
        ),
        m.ReceiverReport(4).serialize() + bytes.fromhex("81cd0003 00000001 00000002 00050000"),
    ]
    return rtp, rtcp


RTP_CORPUS, RTCP_CORPUS = _corpus(P)
ALL_CORPUS = RTP_CORPUS + RTCP_CORPUS


def _outcome(fn: Callable[[Any], Any], data: Any, exc_type: type) -> Tuple[str, Any]:
    try:
        return "ok", fn(data)
    except exc_type as e:
        return "err", str(e)


def _rtp_summary(p: Any) -> Tuple[Any, ...]:
    try:
        ext: Any = p.header_extensions()
    except RtpParseError as e:
        ext = ("err", str(e))
    wire = p.serialize()
    return (
        p.version, p.padding, p.extension, p.marker, p.payload_type, p.sequence_number, p.timestamp, p.ssrc,
        p.csrc, bytes(p.payload), p.extension_profile, p.extension_data, p.padding_length, ext, len(wire),
    )


def _rtcp_summary(m: Any, pkts: List[Any]) -> Tuple[Any, ...]:
    out = []
    for pkt in pkts:
        fields = []
        for f in pkt._fields:
            v = getattr(pkt, f)
            if isinstance(v, list):
                v = [tuple(getattr(x, g) for g in x._fields) if hasattr(x, "_fields") else x for x in v]
            fields.append(v)
        out.append((type(pkt).__name__, tuple(fields)))
    return tuple(out), m.serialize_compound(pkts)


def check_case(data: bytes) -> None:
    """Run every parser of both implementations on ``data`` and require identical, documented outcomes."""
    for parse_fn, exc_type, summarise in (
        (lambda m: m.RtpPacket.parse, RtpParseError, lambda m, p: _rtp_summary(p)),
        (lambda m: m.parse_rtcp, RtcpParseError, _rtcp_summary),
        (lambda m: (lambda d: m.parse_rtcp(d, reduced_size=True)), RtcpParseError, _rtcp_summary),
    ):
        results = []
        for m in (C, P):
            kind, value = _outcome(parse_fn(m), data, exc_type)
            results.append((kind, summarise(m, value) if kind == "ok" else value))
        assert results[0] == results[1], (data.hex(), results)


def mutate(rng: random.Random, corpus: List[bytes]) -> bytes:
    r = rng.random()
    if r < 0.15:
        return rng.randbytes(rng.randrange(0, 64))
    base = rng.choice(corpus)
    if r < 0.40:
        return base[: rng.randrange(0, len(base) + 1)]
    data = bytearray(base)
    if r < 0.80:
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        return bytes(data)
    if r < 0.90:  # forge the first byte (version/padding/extension/count bits) or an RTCP length
        data[0] = rng.randrange(256)
        if rng.random() < 0.5 and len(data) > 4:
            data[2:4] = rng.randrange(65536).to_bytes(2, "big")
        return bytes(data)
    # splice two packets, or append junk
    other = rng.choice(corpus)
    return bytes(data[: rng.randrange(len(data) + 1)]) + other[rng.randrange(len(other) + 1) :]


def run_fuzz(cases: int, seed: int) -> int:
    rng = random.Random(seed)
    parsed_ok = 0
    for _ in range(cases):
        data = mutate(rng, ALL_CORPUS)
        check_case(data)
        parsed_ok += 1
    return parsed_ok


def test_corpus_is_valid() -> None:
    for wire in RTP_CORPUS:
        assert C.RtpPacket.parse(wire).serialize() == wire
    for wire in RTCP_CORPUS:
        assert C.serialize_compound(C.parse_rtcp(wire)) == wire or wire.endswith(bytes.fromhex("00050000"))


def test_fuzz_100k_cases_both_implementations() -> None:
    assert run_fuzz(100_000, seed=3550) == 100_000


def test_fuzz_non_bytes_inputs() -> None:
    rng = random.Random(8)
    for _ in range(2000):
        data = mutate(rng, ALL_CORPUS)
        for wrapped in (bytearray(data), memoryview(data)):
            for m in (C, P):
                try:
                    m.RtpPacket.parse(wrapped)
                except RtpParseError:
                    pass
                try:
                    m.parse_rtcp(wrapped)
                except RtcpParseError:
                    pass
        check_case(data)


@pytest.mark.slow
def test_fuzz_2m_cases_both_implementations() -> None:
    """The longer run (about 2 minutes): deselected by default, run with ``-m slow``."""
    assert run_fuzz(2_000_000, seed=20250101) == 2_000_000


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=120))
def test_hypothesis_random_bytes(data: bytes) -> None:
    check_case(data)


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(0, len(ALL_CORPUS) - 1),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 7)), min_size=1, max_size=4),
)
def test_hypothesis_bit_flips(index: int, flips: List[Tuple[int, int]]) -> None:
    data = bytearray(ALL_CORPUS[index])
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    check_case(bytes(data))
