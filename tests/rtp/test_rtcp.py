"""RTCP packets (RFC 3550 §6), compound validity (§6.1 / A.2), NTP and RTT helpers, sequence-number helpers.

Every packet test runs on both implementations (``impl`` fixture).
"""

from __future__ import annotations

import math
import struct
from types import ModuleType
from typing import Any, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast import _compat
from pyvoip_fast.rtp import ntp as clock, rtcp, seqnum
from pyvoip_fast.errors import RtcpParseError

# SR written out by hand from the §6.4.1 layout: V=2 P=0 RC=1 PT=200 length=12 (52 bytes), SSRC 0x01020304,
# NTP 0xe1a2b3c4_80000000, RTP ts 8000, 10 packets, 1600 octets; one block: SSRC 0x0a0b0c0d, fraction 64,
# cumulative lost -3 (0xfffffd), highest 0x0001_0005, jitter 20, LSR 0xb3c48000, DLSR 0x00018000 (1.5 s)
SR_WIRE = bytes.fromhex(
    "81c8000c 01020304 e1a2b3c4 80000000 00001f40 0000000a 00000640"
    "0a0b0c0d 40fffffd 00010005 00000014 b3c48000 00018000"
)
# SDES: V=2 SC=1 PT=202 length=3: chunk SSRC 0x01020304, CNAME(1) len 4 "a@b1", then 0 terminator + 1 pad
SDES_WIRE = bytes.fromhex("81ca0003 01020304 0104 61406231 0000")
COMPOUND = SR_WIRE + SDES_WIRE


IMPLS = ["python"] if _compat.NO_EXTENSIONS else ["cython", "python"]


@pytest.fixture
def m(impl: str) -> ModuleType:
    return _compat.module_for("_rtp", impl)


def _sr(m: ModuleType) -> Any:
    block = m.ReportBlock(0x0A0B0C0D, 64, -3, 0x10005, 20, 0xB3C48000, 0x18000)
    return m.SenderReport(0x01020304, 0xE1A2B3C480000000, 8000, 10, 1600, [block])


def test_selector_exports_the_loaded_implementation() -> None:
    assert rtcp.SenderReport is _compat.load("_rtp").SenderReport
    assert rtcp.parse is _compat.load("_rtp").parse_rtcp


def test_sender_report_exact_bytes(m: ModuleType) -> None:
    assert _sr(m).serialize() == SR_WIRE
    assert m.SourceDescription.cname_for(0x01020304, "a@b1").serialize() == SDES_WIRE
    assert m.serialize_compound([_sr(m), m.SourceDescription.cname_for(0x01020304, b"a@b1")]) == COMPOUND


def test_parse_compound_sr_sdes(m: ModuleType) -> None:
    sr, sdes = m.parse_rtcp(COMPOUND)
    assert sr == _sr(m)
    assert sr.packet_type == 200 and sdes.packet_type == 202
    assert sr.ntp_timestamp == 0xE1A2B3C480000000
    b = sr.reports[0]
    assert (b.ssrc, b.fraction_lost, b.cumulative_lost, b.highest_sequence) == (0x0A0B0C0D, 64, -3, 0x10005)
    assert (b.jitter, b.lsr, b.dlsr) == (20, 0xB3C48000, 0x18000)
    assert sdes.chunks[0].ssrc == 0x01020304 and sdes.chunks[0].cname == b"a@b1"
    assert sdes.chunks[0].items == [(1, b"a@b1")]


def test_rr_bye_app_round_trip(m: ModuleType) -> None:
    rr = m.ReceiverReport(7, [m.ReportBlock(1, 255, 0x7FFFFF, 2**32 - 1, 0, 0, 0)])
    bye = m.Bye([7, 8], "going home")
    app = m.App(5, 7, "TEST", b"12345678")
    sdes = m.SourceDescription([m.SdesChunk(7, [(1, b"x"), (2, "Zoë"), (8, b"\x03abcdef")]), m.SdesChunk(8, [])])
    wire = m.serialize_compound([rr, sdes, bye, app])
    assert len(wire) % 4 == 0
    assert m.parse_rtcp(wire) == [rr, sdes, bye, app]
    got_bye = m.parse_rtcp(wire)[2]
    assert got_bye.sources == [7, 8] and got_bye.reason == b"going home"
    assert m.parse_rtcp(m.serialize_compound([rr, m.Bye([7])]))[1].reason is None
    assert m.parse_rtcp(m.serialize_compound([rr, m.Bye([], b"")]))[1].reason == b""


def test_cumulative_lost_is_signed_24_bit(m: ModuleType) -> None:
    for lost, field in [(-1, 0xFFFFFF), (-0x800000, 0x800000), (0x7FFFFF, 0x7FFFFF), (0, 0)]:
        wire = m.ReceiverReport(1, [m.ReportBlock(2, 0, lost, 0, 0, 0, 0)]).serialize()
        assert struct.unpack_from("!I", wire, 12)[0] & 0xFFFFFF == field
        assert m.parse_rtcp(wire)[0].reports[0].cumulative_lost == lost


def test_unknown_packet_types_are_skipped(m: ModuleType) -> None:
    rtpfb = bytes.fromhex("81cd0003 00000001 00000002 00050000")  # generic NACK, PT 205
    xr = bytes.fromhex("80cf0001 00000001")
    pkts = m.parse_rtcp(SR_WIRE + rtpfb + SDES_WIRE + xr)
    assert [p.packet_type for p in pkts] == [200, 202]


def test_padding_on_the_last_packet(m: ModuleType) -> None:
    bye = bytes.fromhex("a1cb0002 00000009 00000004")  # P=1, SC=1, 4 bytes of padding (count 4)
    pkts = m.parse_rtcp(SR_WIRE + bye)
    assert pkts[1].sources == [9] and pkts[1].reason is None
    app = bytes.fromhex("a4cc0004 00000009 41424344 31320000 00000003")  # data "12" + 3 padding... counted
    got = m.parse_rtcp(SR_WIRE + app)[1]
    assert got.name == b"ABCD" and got.data == b"12\x00\x00\x00"[: 20 - 12 - 3]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "RTCP packet too short: 0 bytes, the header needs 4"),
        (b"\x81\xc8\x00", "RTCP packet too short: 3 bytes, the header needs 4"),
        (b"\x41" + SR_WIRE[1:], "RTCP version 1 is not supported (expected 2)"),
        (SR_WIRE + b"\x41" + SDES_WIRE[1:], "RTCP version 1 is not supported (expected 2)"),
        (SDES_WIRE + SR_WIRE, "compound RTCP packet must start with SR or RR, not packet type 202"),
        (SR_WIRE[:40], "RTCP packet length 52 runs past the end: only 40 bytes left"),
        (SR_WIRE + b"\x00\x00", "RTCP compound packet has 2 trailing bytes after the last packet"),
        (b"\xa1" + SR_WIRE[1:] + SDES_WIRE, "RTCP padding bit set on a packet that is not the last one"),
        (SR_WIRE + bytes.fromhex("a0cb0001 00000000"), "RTCP padding length is 0 (must be at least 1)"),
        (SR_WIRE + bytes.fromhex("a0cb0001 00000009"), "RTCP padding length 9 runs past the packet body (4 bytes)"),
        (bytes.fromhex("82c80006") + SR_WIRE[4:28], "RTCP SR with 2 report blocks needs 76 bytes, packet has 28"),
        (bytes.fromhex("81c90001 00000001"), "RTCP RR with 1 report blocks needs 32 bytes, packet has 8"),
        (SR_WIRE + bytes.fromhex("82cb0001 00000001"), "RTCP BYE with 2 sources needs 12 bytes, packet has 8"),
        (SR_WIRE + bytes.fromhex("81cb0002 00000001 09414243"), "RTCP BYE reason runs past the end of the packet"),
        (SR_WIRE + bytes.fromhex("80cc0001 00000001"), "RTCP APP packet needs 12 bytes, packet has 8"),
        (SR_WIRE + bytes.fromhex("82ca0002 00000001 00000000"), "RTCP SDES chunk 1 runs past the end of the packet"),
        (SR_WIRE + bytes.fromhex("81ca0002 00000001 01024142"), "RTCP SDES chunk 0 has no terminating null item"),
        (SR_WIRE + bytes.fromhex("81ca0002 00000001 01054142"), "RTCP SDES item in chunk 0 runs past the end of the packet"),
        (
            SR_WIRE + bytes.fromhex("a1ca0003 00000001 01024142 00000004"),
            "RTCP SDES chunk 0 has no terminating null item",
        ),
    ],
)
def test_validity_errors_have_specific_messages(m: ModuleType, data: bytes, message: str) -> None:
    with pytest.raises(RtcpParseError) as exc:
        m.parse_rtcp(data)
    assert str(exc.value) == message
    assert isinstance(exc.value, ValueError)


def test_reduced_size_rtcp_on_request(m: ModuleType) -> None:
    bye = m.Bye([1]).serialize()
    with pytest.raises(RtcpParseError, match="must start with SR or RR"):
        m.parse_rtcp(bye)
    assert m.parse_rtcp(bye, reduced_size=True) == [m.Bye([1])]


def test_every_truncated_prefix_raises_the_exact_message(m: ModuleType) -> None:
    n_sr = len(SR_WIRE)
    for k in range(len(COMPOUND)):
        data = COMPOUND[:k]
        if k == n_sr:
            assert m.parse_rtcp(data) == [_sr(m)]  # a packet boundary: a valid compound of one packet
            continue
        if k < 4:
            expected = f"RTCP packet too short: {k} bytes, the header needs 4"
        elif k < n_sr:
            expected = f"RTCP packet length 52 runs past the end: only {k} bytes left"
        elif k < n_sr + 4:
            expected = f"RTCP compound packet has {k - n_sr} trailing bytes after the last packet"
        else:
            expected = f"RTCP packet length 16 runs past the end: only {k - n_sr} bytes left"
        with pytest.raises(RtcpParseError) as exc:
            m.parse_rtcp(data)
        assert str(exc.value) == expected, k


@pytest.mark.parametrize(
    "make, exc, message",
    [
        (lambda m: m.ReportBlock(1, 256, 0, 0, 0, 0, 0), ValueError, "fraction_lost must be in 0..255, got 256"),
        (
            lambda m: m.ReportBlock(1, 0, -0x800001, 0, 0, 0, 0),
            ValueError,
            "cumulative_lost must be in -8388608..8388607, got -8388609",
        ),
        (lambda m: m.SenderReport(1, -1, 0, 0, 0), ValueError, "ntp_timestamp must be in 0..18446744073709551615, got -1"),
        (lambda m: m.SenderReport(1, 2**64, 0, 0, 0), ValueError, f"ntp_timestamp must be in 0..18446744073709551615, got {2**64}"),
        (lambda m: m.ReceiverReport(1, [object()]), TypeError, "reports must be ReportBlock objects, not object"),
        (
            lambda m: m.ReceiverReport(1, [m.ReportBlock(1, 0, 0, 0, 0, 0, 0)] * 32),
            ValueError,
            "an RTCP report carries at most 31 report blocks, got 32",
        ),
        (lambda m: m.SdesChunk(1, [(0, b"x")]), ValueError, "SDES item type must be in 1..255, got 0"),
        (lambda m: m.SdesChunk(1, [(1, b"x" * 256)]), ValueError, "SDES item value is too long: 256 bytes (max 255)"),
        (lambda m: m.SdesChunk(1, [1]), TypeError, "SDES items must be (type, value) tuples"),
        (lambda m: m.SourceDescription([1]), TypeError, "chunks must be SdesChunk objects, not int"),
        (lambda m: m.Bye(range(32)), ValueError, "an RTCP BYE carries at most 31 sources, got 32"),
        (lambda m: m.Bye([1], b"x" * 256), ValueError, "BYE reason is too long: 256 bytes (max 255)"),
        (lambda m: m.App(32, 1, b"abcd"), ValueError, "subtype must be in 0..31, got 32"),
        (lambda m: m.App(1, 1, b"abc"), ValueError, "APP name must be exactly 4 bytes, got 3"),
        (lambda m: m.App(1, 1, b"abcd", b"abc"), ValueError, "APP data length must be a multiple of 4, got 3"),
        (lambda m: m.serialize_compound([m.ReportBlock(1, 0, 0, 0, 0, 0, 0)]), TypeError, "serialize_compound() cannot serialize ReportBlock"),
        (lambda m: m.parse_rtcp(1.5), TypeError, "rtcp.parse() needs a bytes-like object, not float"),
    ],
)
def test_constructor_and_serializer_errors(m: ModuleType, make: Any, exc: type, message: str) -> None:
    with pytest.raises(exc) as info:
        make(m)
    assert str(info.value) == message


def test_edited_lists_are_checked_again_on_serialize(m: ModuleType) -> None:
    rr = m.ReceiverReport(1)
    rr.reports.append("junk")
    with pytest.raises(TypeError, match="^reports must be ReportBlock objects, not str$"):
        rr.serialize()
    chunk = m.SdesChunk(1, [(1, b"a")])
    chunk.items.append((1, "text"))
    with pytest.raises(TypeError, match="^SDES item value must be bytes, not str$"):
        m.serialize_compound([m.ReceiverReport(1), m.SourceDescription([chunk])])
    bye = m.Bye([1])
    bye.sources.extend(range(31))
    with pytest.raises(ValueError, match="at most 31 sources"):
        bye.serialize()


def test_packets_are_immutable_values(m: ModuleType) -> None:
    sr = _sr(m)
    with pytest.raises(AttributeError):
        sr.ssrc = 5
    assert sr == m.parse_rtcp(SR_WIRE)[0]
    assert sr != m.SenderReport(1, 0, 0, 0, 0)
    assert repr(sr).startswith("SenderReport(ssrc=16909060, ntp_timestamp=")
    assert isinstance(sr, m.RtcpPacket) and not isinstance(sr.reports[0], m.RtcpPacket)


# -- NTP, RTT, sequence numbers -------------------------------------------------------------------------------


def test_ntp_conversions() -> None:
    assert rtcp.ntp_from_unix(0.0) == 2_208_988_800 << 32
    assert rtcp.ntp_from_unix(1.5) == ((2_208_988_800 + 1) << 32) | 0x80000000
    t = 1_700_000_000.123456
    assert abs(rtcp.unix_from_ntp(rtcp.ntp_from_unix(t)) - t) < 1e-6
    # 2036-02-07 06:28:16 UTC: NTP seconds wrap to 0 (era 1); RFC 4330 §3 reads a clear MSB as era 1
    wrap = 2**32 - 2_208_988_800
    assert rtcp.ntp_from_unix(wrap + 0.25) == 0x40000000
    assert rtcp.unix_from_ntp(rtcp.ntp_from_unix(wrap + 10.5)) == wrap + 10.5
    assert rtcp.ntp_middle32(0x1122334455667788) == 0x33445566
    assert rtcp.ntp_from_unix(0.9999999999999) == (2_208_988_801 << 32)  # the fraction rounds into a carry
    with pytest.raises(ValueError):
        rtcp.ntp_from_unix(math.nan)
    with pytest.raises(ValueError):
        rtcp.ntp_from_unix(-3e9)
    assert isinstance(rtcp.ntp_now(), int)


def test_rtt_example_of_rfc3550_figure_2() -> None:
    # A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000 (46853.125 s), DLSR = 0x0005:4000 (5.250 s)
    assert rtcp.rtt_seconds(0xB7108000, 0xB7052000, 0x00054000) == 6.125
    assert rtcp.rtt_seconds(0xB7108000, 0, 0x00054000) is None
    assert rtcp.rtt_seconds(0xB7052000, 0xB7052000, 0x00054000) == 0.0  # would be negative: clamped
    assert rtcp.rtt_seconds(0x00001000, 0xFFFFF000, 0) == 0x2000 / 65536  # across the 32-bit wrap
    assert rtcp.dlsr_units(5.25) == 0x54000
    assert rtcp.dlsr_units(-1.0) == 0 and rtcp.dlsr_units(1e12) == 0xFFFFFFFF
    assert clock.rtt_seconds is rtcp.rtt_seconds


def test_seqnum_helpers() -> None:
    assert seqnum.uint16_add(65535, 2) == 1
    assert seqnum.uint16_diff(1, 65535) == 2 and seqnum.uint16_diff(65535, 1) == -2
    assert seqnum.uint16_gt(0, 65535) and not seqnum.uint16_gt(65535, 0) and not seqnum.uint16_gt(5, 5)
    assert seqnum.uint32_add(2**32 - 1, 1) == 0
    assert seqnum.uint32_diff(0, 2**32 - 160) == 160
    assert seqnum.uint32_gt(10, 2**32 - 10)
    assert seqnum.extend_sequence(2, 65534) == 65538 and seqnum.extend_sequence(65530, 65538) == 65530


# -- properties ------------------------------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
blocks = st.lists(
    st.tuples(u32, st.integers(0, 255), st.integers(-0x800000, 0x7FFFFF), u32, u32, u32, u32), max_size=31
)
items = st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=255)), max_size=5)
packet_spec = st.one_of(
    st.tuples(st.just("sr"), u32, st.integers(0, 2**64 - 1), u32, u32, u32, blocks),
    st.tuples(st.just("rr"), u32, blocks),
    st.tuples(st.just("sdes"), st.lists(st.tuples(u32, items), max_size=4)),
    st.tuples(st.just("bye"), st.lists(u32, max_size=31), st.none() | st.binary(max_size=255)),
    st.tuples(st.just("app"), st.integers(0, 31), u32, st.binary(min_size=4, max_size=4), st.binary(max_size=40)),
)


def _build(m: ModuleType, spec: Any) -> Any:
    kind = spec[0]
    if kind == "sr":
        return m.SenderReport(*spec[1:6], [m.ReportBlock(*b) for b in spec[6]])
    if kind == "rr":
        return m.ReceiverReport(spec[1], [m.ReportBlock(*b) for b in spec[2]])
    if kind == "sdes":
        return m.SourceDescription([m.SdesChunk(s, i) for s, i in spec[1]])
    if kind == "bye":
        return m.Bye(spec[1], spec[2])
    data = spec[4][: len(spec[4]) // 4 * 4]
    return m.App(spec[1], spec[2], spec[3], data)


@settings(max_examples=150, deadline=None)
@given(first=packet_spec.filter(lambda s: s[0] in ("sr", "rr")), rest=st.lists(packet_spec, max_size=4))
def test_compound_round_trip_both_implementations(first: Any, rest: List[Any]) -> None:
    wires = []
    for impl in IMPLS:
        m = _compat.module_for("_rtp", impl)
        pkts = [_build(m, s) for s in [first, *rest]]
        wire = m.serialize_compound(pkts)
        assert m.parse_rtcp(wire) == pkts
        assert b"".join(p.serialize() for p in pkts) == wire
        wires.append(wire)
    assert len(set(wires)) == 1


@settings(max_examples=100, deadline=None)
@given(spec=packet_spec)
def test_each_packet_type_round_trips_alone(spec: Any) -> None:
    for impl in IMPLS:
        m = _compat.module_for("_rtp", impl)
        pkt = _build(m, spec)
        assert m.parse_rtcp(pkt.serialize(), reduced_size=True) == [pkt]


# -- build_report: the one-call builder, byte for byte the object path ------------------------------------------

block_tuples = st.lists(
    st.tuples(u32, st.integers(0, 255), st.integers(-0x800000, 0x7FFFFF), u32, u32, u32, u32), max_size=31
)
report_spec = st.tuples(
    u32,  # ssrc
    block_tuples,
    st.lists(st.booleans(), min_size=31, max_size=31),  # per block: pass a ReportBlock (True) or the 7-tuple
    st.binary(min_size=1, max_size=255) | st.text(min_size=1, max_size=60).filter(lambda t: len(t.encode()) <= 255),
    st.none() | st.tuples(st.integers(0, 2**64 - 1), u32, u32, u32),  # SR sender info, or None for an RR
    st.none() | st.binary(max_size=255) | st.text(max_size=40),  # BYE reason
)


def _object_path(m: ModuleType, spec: Any) -> bytes:
    ssrc, blocks, _, cname, sender, reason = spec
    rbs = [m.ReportBlock(*b) for b in blocks]
    first = m.SenderReport(ssrc, *sender, rbs) if sender is not None else m.ReceiverReport(ssrc, rbs)
    pkts = [first, m.SourceDescription.cname_for(ssrc, cname)]
    if reason is not None:
        pkts.append(m.Bye([ssrc], reason or None))
    return m.serialize_compound(pkts)  # type: ignore[no-any-return]


def _one_call(m: ModuleType, spec: Any) -> bytes:
    ssrc, blocks, as_object, cname, sender, reason = spec
    arg = [m.ReportBlock(*b) if obj else b for b, obj in zip(blocks, as_object)]
    if sender is None:
        return m.build_report(ssrc, arg, cname, reason=reason)  # type: ignore[no-any-return]
    ntp, ts, pc, oc = sender
    return m.build_report(  # type: ignore[no-any-return]
        ssrc, arg, cname, ntp_timestamp=ntp, rtp_timestamp=ts, packet_count=pc, octet_count=oc, reason=reason
    )


@settings(max_examples=200, deadline=None)
@given(spec=report_spec)
def test_build_report_equals_the_object_path_both_implementations(spec: Any) -> None:
    wires = []
    for impl in IMPLS:
        m = _compat.module_for("_rtp", impl)
        wire = _one_call(m, spec)
        assert wire == _object_path(m, spec)
        parsed = m.parse_rtcp(wire)
        assert [type(p) for p in parsed][:2] == [
            m.SenderReport if spec[4] is not None else m.ReceiverReport,
            m.SourceDescription,
        ]
        assert m.serialize_compound(parsed) == wire  # round trip
        assert len(parsed) == (3 if spec[5] is not None else 2)
        wires.append(wire)
    assert len(set(wires)) == 1


def test_build_report_exact_bytes(m: ModuleType) -> None:
    block = (0x0A0B0C0D, 64, -3, 0x10005, 20, 0xB3C48000, 0x18000)
    wire = m.build_report(0x01020304, [block], b"a@b1", ntp_timestamp=0xE1A2B3C480000000, rtp_timestamp=8000,
                          packet_count=10, octet_count=1600)
    assert wire == COMPOUND
    assert m.build_report(0x01020304, (m.ReportBlock(*block),), "a@b1", ntp_timestamp=0xE1A2B3C480000000,
                          rtp_timestamp=8000, packet_count=10, octet_count=1600) == COMPOUND
    # an RR with no blocks, then SDES, then a BYE without reason text (reason="") and one with a reason
    rr_sdes = bytes.fromhex("80c90001 01020304") + SDES_WIRE
    assert m.build_report(0x01020304, iter(()), "a@b1") == rr_sdes
    assert m.build_report(0x01020304, (), "a@b1", reason="") == rr_sdes + bytes.fromhex("81cb0001 01020304")
    assert m.build_report(0x01020304, (), "a@b1", reason="ok") == rr_sdes + bytes.fromhex(
        "81cb0002 01020304 026f6b00"
    )


def test_build_report_block_list_growing_during_the_call_cannot_overrun(m: ModuleType) -> None:
    class Sneaky:
        """Grows the block list when its type is inspected (a __class__ property runs during isinstance)."""

        def __init__(self, blocks: List[Any]) -> None:
            self.blocks = blocks

        @property  # type: ignore[misc]
        def __class__(self) -> type:
            self.blocks.extend([(1, 0, 0, 0, 0, 0, 0)] * 40)
            return Sneaky

    blocks: List[Any] = []
    blocks.append(Sneaky(blocks))
    with pytest.raises(TypeError, match="^report blocks must be ReportBlock objects or 7-tuples, not Sneaky$"):
        m.build_report(1, blocks, b"x")
    assert len(blocks) in (1, 81)  # the twin's two isinstance() calls ran the property; compiled type checks do not


_BLOCK_OK = (1, 2, 3, 4, 5, 6, 7)


@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        ({"ssrc": -1}, ValueError, "ssrc must be in 0..4294967295, got -1"),
        ({"ssrc": 1.0}, TypeError, "ssrc must be an int, not float"),
        ({"ntp_timestamp": 2**64}, ValueError, "ntp_timestamp must be in 0..18446744073709551615, got 18446744073709551616"),
        ({"ntp_timestamp": -1}, ValueError, "ntp_timestamp must be in 0..18446744073709551615, got -1"),
        ({"ntp_timestamp": "now"}, TypeError, "ntp_timestamp must be an int, not str"),
        ({"rtp_timestamp": 2**32}, ValueError, "rtp_timestamp must be in 0..4294967295, got 4294967296"),
        ({"packet_count": -1}, ValueError, "packet_count must be in 0..4294967295, got -1"),
        ({"octet_count": None}, TypeError, "octet_count must be an int, not NoneType"),
        ({"blocks": [_BLOCK_OK] * 32}, ValueError, "an RTCP report carries at most 31 report blocks, got 32"),
        ({"blocks": [_BLOCK_OK[:6]]}, ValueError,
         "a report block tuple needs 7 fields (ssrc, fraction_lost, cumulative_lost, highest_sequence, jitter, lsr,"
         " dlsr), got 6"),
        ({"blocks": [list(_BLOCK_OK)]}, TypeError, "report blocks must be ReportBlock objects or 7-tuples, not list"),
        ({"blocks": [(2**32, 0, 0, 0, 0, 0, 0)]}, ValueError, "ssrc must be in 0..4294967295, got 4294967296"),
        ({"blocks": [(1, 256, 0, 0, 0, 0, 0)]}, ValueError, "fraction_lost must be in 0..255, got 256"),
        ({"blocks": [(1, 0, -0x800001, 0, 0, 0, 0)]}, ValueError,
         "cumulative_lost must be in -8388608..8388607, got -8388609"),
        ({"blocks": [(1, 0, 0, -1, 0, 0, 0)]}, ValueError, "highest_sequence must be in 0..4294967295, got -1"),
        ({"blocks": [(1, 0, 0, 0, 1.5, 0, 0)]}, TypeError, "jitter must be an int, not float"),
        ({"blocks": [(1, 0, 0, 0, 0, -1, 0)]}, ValueError, "lsr must be in 0..4294967295, got -1"),
        ({"blocks": [(1, 0, 0, 0, 0, 0, 2**32)]}, ValueError, "dlsr must be in 0..4294967295, got 4294967296"),
        ({"cname": b""}, ValueError,
         "cname must not be empty (RFC 3550 §6.5.1: every compound packet carries a CNAME)"),
        ({"cname": ""}, ValueError,
         "cname must not be empty (RFC 3550 §6.5.1: every compound packet carries a CNAME)"),
        ({"cname": b"x" * 256}, ValueError, "SDES item value is too long: 256 bytes (max 255)"),
        ({"cname": "é" * 128}, ValueError, "SDES item value is too long: 256 bytes (max 255)"),
        ({"cname": 5}, TypeError, "SDES item value must be bytes, not int"),
        ({"reason": b"r" * 256}, ValueError, "BYE reason is too long: 256 bytes (max 255)"),
        ({"reason": 3}, TypeError, "reason must be bytes, not int"),
    ],
)
def test_build_report_errors(m: ModuleType, kwargs: Any, exc: type, message: str) -> None:
    args: Any = {"ssrc": 1, "blocks": [_BLOCK_OK], "cname": b"me@host", "ntp_timestamp": 1}
    args.update(kwargs)
    with pytest.raises(exc) as info:
        m.build_report(args.pop("ssrc"), args.pop("blocks"), args.pop("cname"), **args)
    assert str(info.value) == message


def test_build_report_field_errors_match_the_object_constructors(m: ModuleType) -> None:
    """Where the object path rejects the same value, it says the same thing."""
    cases = [
        (lambda: m.ReportBlock(1, 256, 0, 0, 0, 0, 0), lambda: m.build_report(1, [(1, 256, 0, 0, 0, 0, 0)], b"x")),
        (lambda: m.SenderReport(1, -1, 0, 0, 0), lambda: m.build_report(1, (), b"x", ntp_timestamp=-1)),
        (lambda: m.SenderReport(1, 0, 0, 0, 0, [_BLOCK_OK] * 32),
         lambda: m.build_report(1, [_BLOCK_OK] * 32, b"x", ntp_timestamp=0)),
        (lambda: m.SourceDescription.cname_for(1, b"x" * 300), lambda: m.build_report(1, (), b"x" * 300)),
        (lambda: m.SourceDescription.cname_for(1, 7), lambda: m.build_report(1, (), 7)),
        (lambda: m.Bye([1], b"x" * 300), lambda: m.build_report(1, (), b"x", reason=b"x" * 300)),
    ]
    for objects, one_call in cases:
        with pytest.raises((TypeError, ValueError)) as a:
            objects()
        with pytest.raises((TypeError, ValueError)) as b:
            one_call()
        assert (type(a.value), str(a.value)) == (type(b.value), str(b.value))


def test_build_report_exported_by_rtcp() -> None:
    assert rtcp.build_report is _compat.load("_rtp").build_report
