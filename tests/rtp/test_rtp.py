"""RTP packets (RFC 3550 §5): wire format, validation messages, zero-copy payload, RFC 8285 extensions.

Every test runs on both implementations (``impl`` fixture); parity tests compare them directly.
"""

from __future__ import annotations

import struct
from types import ModuleType
from typing import Any, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast import _compat, rtp
from pyvoip_fast.errors import ParseError, RtpParseError

# A PCMU packet written out by hand from the RFC 3550 §5.1 layout:
# V=2 P=0 X=0 CC=0 | M=1 PT=0 | seq 0x1234 | ts 0x00000a00 | ssrc 0xdeadbeef | 160 bytes 0xff
PCMU_HEADER = bytes.fromhex("80 80 1234 00000a00 deadbeef")
PCMU = PCMU_HEADER + b"\xff" * 160

# Every feature at once: P=1 X=1 CC=2, M=0 PT=8, seq 1, ts 2, ssrc 3, CSRCs 0x11 0x22,
# extension 0xBEDE length 1 word (id 1 len 2 "ab", one padding byte), payload "hello", padding 3 (00 00 03)
FULL = (
    bytes.fromhex("b2 08 0001 00000002 00000003 00000011 00000022")
    + bytes.fromhex("bede 0001 11 6162 00")
    + b"hello"
    + b"\x00\x00\x03"
)


IMPLS = ["python"] if _compat.NO_EXTENSIONS else ["cython", "python"]


@pytest.fixture
def m(impl: str) -> ModuleType:
    return _compat.module_for("_rtp", impl)


def test_selector_exports_the_loaded_implementation() -> None:
    assert rtp.RtpPacket is _compat.load("_rtp").RtpPacket
    assert rtp.write_header is _compat.load("_rtp").write_header


def test_parse_pcmu_fields(m: ModuleType) -> None:
    p = m.RtpPacket.parse(PCMU)
    assert (p.version, p.padding, p.extension, p.marker) == (2, False, False, True)
    assert (p.payload_type, p.sequence_number, p.timestamp, p.ssrc) == (0, 0x1234, 0xA00, 0xDEADBEEF)
    assert p.csrc == ()
    assert p.extension_profile is None and p.extension_data == b""
    assert p.padding_length == 0
    assert isinstance(p.payload, memoryview)
    assert bytes(p.payload) == b"\xff" * 160
    assert len(p) == 172


def test_build_pcmu_exact_bytes(m: ModuleType) -> None:
    p = m.RtpPacket(
        payload_type=0, sequence_number=0x1234, timestamp=0xA00, ssrc=0xDEADBEEF, marker=True, payload=b"\xff" * 160
    )
    assert p.serialize() == PCMU
    assert m.build_packet(0, 0x1234, 0xA00, 0xDEADBEEF, b"\xff" * 160, True) == PCMU
    assert m.build_packet(0, 0x1234, 0xA00, 0xDEADBEEF, bytearray(b"\xff" * 160), marker=True) == PCMU


def test_parse_full_featured_packet(m: ModuleType) -> None:
    p = m.RtpPacket.parse(FULL)
    assert (p.padding, p.extension, p.marker, p.payload_type) == (True, True, False, 8)
    assert (p.sequence_number, p.timestamp, p.ssrc) == (1, 2, 3)
    assert p.csrc == (0x11, 0x22)
    assert p.extension_profile == 0xBEDE
    assert p.extension_data == bytes.fromhex("11616200")
    assert p.header_extensions() == [(1, b"ab")]
    assert bytes(p.payload) == b"hello"
    assert p.padding_length == 3
    assert p.serialize() == FULL


def test_build_full_featured_packet(m: ModuleType) -> None:
    profile, data = m.encode_header_extensions([(1, b"ab")])
    p = m.RtpPacket(
        payload_type=8,
        sequence_number=1,
        timestamp=2,
        ssrc=3,
        csrc=[0x11, 0x22],
        extension_profile=profile,
        extension_data=data,
        payload=b"hello",
        padding_length=3,
    )
    assert p.serialize() == FULL
    assert m.RtpPacket.parse(FULL) == p


def test_payload_is_zero_copy(m: ModuleType) -> None:
    buf = bytearray(PCMU)
    p = m.RtpPacket.parse(buf)
    buf[12] = 0x7F  # the view sees the caller's buffer, it is not a copy
    assert p.payload[0] == 0x7F
    assert p.payload.readonly in (True, False)
    # bytes input: the view is read-only and still shares memory with the datagram
    q = m.RtpPacket.parse(PCMU)
    assert q.payload.readonly
    assert q.payload.nbytes == 160
    with pytest.raises(TypeError):
        q.payload[0] = 1  # type: ignore[index]


def test_payload_view_of_bytes_behaves_like_a_slice(m: ModuleType) -> None:
    # the compiled module narrows a fresh view in place instead of slicing: it must be indistinguishable from
    # ``memoryview(data)[12:]`` (what the twin returns)
    p = m.RtpPacket.parse(FULL)
    v, ref = p.payload, memoryview(FULL)[12 + 8 + 8 : len(FULL) - 3]
    assert v.obj is FULL
    assert (v.format, v.itemsize, v.ndim, v.shape, v.strides, v.nbytes) == ("B", 1, 1, (5,), (1,), 5)
    assert v.c_contiguous and v.f_contiguous and v.contiguous and v.readonly
    assert v == ref and v.tobytes() == b"hello" and hash(v) == hash(b"hello")
    assert bytes(v[1:4]) == b"ell" and bytes(v[::-1]) == b"olleh" and v[-1] == ord("o")
    assert v.tolist() == list(b"hello") and bytes(v.cast("c")) == b"hello"
    assert bytes(memoryview(v)) == b"hello"
    q = m.RtpPacket.parse(PCMU[:12])
    assert q.payload.nbytes == 0 and bytes(q.payload) == b""


def test_payload_view_of_memoryview_and_numpy_input(m: ModuleType) -> None:
    import numpy as np

    arr = np.frombuffer(PCMU, dtype=np.uint8)
    assert bytes(m.RtpPacket.parse(arr).payload) == b"\xff" * 160
    as_u16 = memoryview(bytearray(PCMU)).cast("H")  # not unsigned bytes: parsed as its raw bytes
    assert m.RtpPacket.parse(as_u16).sequence_number == 0x1234
    assert bytes(m.RtpPacket.parse(as_u16).payload) == b"\xff" * 160


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "RTP packet too short: 0 bytes, the fixed header needs 12"),
        (PCMU[:11], "RTP packet too short: 11 bytes, the fixed header needs 12"),
        (b"\x40" + PCMU[1:], "RTP version 1 is not supported (expected 2)"),
        (b"\x00" + PCMU[1:], "RTP version 0 is not supported (expected 2)"),
        (b"\xc0" + PCMU[1:], "RTP version 3 is not supported (expected 2)"),
        (b"\x8f" + PCMU[1:40], "RTP CSRC list runs past the end: 15 CSRCs need 72 bytes, packet has 40"),
        (b"\x90" + PCMU[1:14], "RTP header extension runs past the end: its header needs 16 bytes, packet has 14"),
        (
            b"\x90" + PCMU[1:12] + b"\xbe\xde\x00\x02" + b"\x00" * 7,
            "RTP header extension runs past the end: 2 words need 24 bytes, packet has 23",
        ),
        (b"\xa0" + PCMU[1:12], "RTP padding bit set but no bytes follow the header"),
        (b"\xa0" + PCMU[1:] + b"\x00", "RTP padding length is 0 (must be at least 1)"),
        (b"\xa0" + PCMU[1:12] + b"\x01\x02\x05", "RTP padding length 5 runs past the end: only 3 bytes follow the header"),
    ],
)
def test_parse_errors_have_specific_messages(m: ModuleType, data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError) as exc:
        m.RtpPacket.parse(data)
    assert str(exc.value) == message
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, ParseError)


def test_padding_that_fills_the_whole_payload_is_valid(m: ModuleType) -> None:
    p = m.RtpPacket.parse(b"\xa0" + PCMU[1:12] + b"\x00\x00\x03")
    assert p.padding_length == 3 and bytes(p.payload) == b""


def _expected_prefix_message(k: int) -> str:
    """What parsing FULL[:k] must say: the first check that fails on a truncated packet."""
    if k < 12:
        return f"RTP packet too short: {k} bytes, the fixed header needs 12"
    if k < 20:
        return f"RTP CSRC list runs past the end: 2 CSRCs need 20 bytes, packet has {k}"
    if k < 24:
        return f"RTP header extension runs past the end: its header needs 24 bytes, packet has {k}"
    if k < 28:
        return f"RTP header extension runs past the end: 1 words need 28 bytes, packet has {k}"
    if k == 28:
        return "RTP padding bit set but no bytes follow the header"
    last = FULL[k - 1]
    if last == 0:
        return "RTP padding length is 0 (must be at least 1)"
    return f"RTP padding length {last} runs past the end: only {k - 28} bytes follow the header"


def test_every_truncated_prefix_raises_the_exact_message(m: ModuleType) -> None:
    for k in range(len(FULL)):
        data = FULL[:k]
        try:
            p = m.RtpPacket.parse(data)
        except RtpParseError as exc:
            assert str(exc) == _expected_prefix_message(k), k
        else:
            # a prefix whose last byte happens to be a plausible padding count parses: check it is consistent
            assert p.padding_length == data[-1] and p.padding_length <= k - 28, k
    for k in range(len(PCMU_HEADER)):
        with pytest.raises(RtpParseError, match="too short"):
            m.RtpPacket.parse(PCMU[:k])


def test_header_extensions_one_byte_form(m: ModuleType) -> None:
    # id 1 (1 byte), padding byte, id 2 (3 bytes), id 15 stops the parse, trailing junk ignored
    data = bytes([0x10, 0xAA, 0x00, 0x22, 1, 2, 3, 0xF0, 0x35, 0, 0])
    data += bytes(-len(data) % 4)
    p = m.RtpPacket(extension_profile=0xBEDE, extension_data=data)
    assert p.header_extensions() == [(1, b"\xaa"), (2, b"\x01\x02\x03")]


def test_header_extensions_two_byte_form(m: ModuleType) -> None:
    data = bytes([0x00, 200, 0, 7, 3, 0x61, 0x62, 0x63]) + bytes(4)
    p = m.RtpPacket(extension_profile=0x1005, extension_data=data)
    assert p.header_extensions() == [(200, b""), (7, b"abc")]


def test_header_extensions_other_profiles_and_none(m: ModuleType) -> None:
    assert m.RtpPacket(payload=b"x").header_extensions() == []
    assert m.RtpPacket(extension_profile=0x1234, extension_data=b"\x10\x00\x00\x00").header_extensions() == []


@pytest.mark.parametrize(
    "profile, data, message",
    [
        (0xBEDE, bytes([0x13, 1, 2, 0]), "RTP one-byte header extension element 1 runs past the end"),
        (0x1000, bytes([0, 0, 0, 9]), "RTP two-byte header extension element 9 runs past the end"),
        (0x1000, bytes([9, 3, 0, 0]), "RTP two-byte header extension element 9 runs past the end"),
    ],
)
def test_header_extension_errors(m: ModuleType, profile: int, data: bytes, message: str) -> None:
    p = m.RtpPacket(extension_profile=profile, extension_data=data)
    with pytest.raises(RtpParseError) as exc:
        p.header_extensions()
    assert str(exc.value) == message


def test_encode_header_extensions_chooses_the_form(m: ModuleType) -> None:
    assert m.encode_header_extensions([(1, b"a"), (14, b"x" * 16)])[0] == 0xBEDE
    assert m.encode_header_extensions([(15, b"a")])[0] == 0x1000
    assert m.encode_header_extensions([(1, b"")])[0] == 0x1000
    assert m.encode_header_extensions([(1, b"a")], two_byte=True) == (0x1000, b"\x01\x01a\x00")
    with pytest.raises(ValueError, match="too long"):
        m.encode_header_extensions([(1, b"x" * 256)])


def test_pack_into_reuses_a_buffer_at_an_offset(m: ModuleType) -> None:
    p = m.RtpPacket.parse(FULL)
    buf = bytearray(100)
    assert p.pack_into(buf, 10) == len(FULL)
    assert bytes(buf[10 : 10 + len(FULL)]) == FULL
    assert buf[:10] == bytes(10) and buf[10 + len(FULL) :] == bytes(100 - 10 - len(FULL))
    mv = memoryview(bytearray(len(FULL)))
    assert p.pack_into(mv) == len(FULL) and bytes(mv) == FULL


@pytest.mark.parametrize(
    "buf, offset, exc, message",
    [
        (bytearray(35), 0, ValueError, "buffer too small: 36 bytes needed at offset 0, buffer has 35"),
        (bytearray(50), 15, ValueError, "buffer too small: 36 bytes needed at offset 15, buffer has 50"),
        (bytearray(50), 51, ValueError, "buffer too small: 36 bytes needed at offset 51, buffer has 50"),
        (bytearray(50), 2**80, ValueError, f"buffer too small: 36 bytes needed at offset {2**80}, buffer has 50"),
        (bytearray(50), -1, ValueError, "offset must be >= 0, got -1"),
        (bytearray(50), 1.0, TypeError, "offset must be an int, not float"),
        (b"x" * 50, 0, TypeError, "pack_into() needs a writable bytes-like object, not bytes"),
        (5, 0, TypeError, "pack_into() needs a writable bytes-like object, not int"),
    ],
)
def test_pack_into_errors(m: ModuleType, buf: Any, offset: Any, exc: type, message: str) -> None:
    p = m.RtpPacket.parse(FULL)
    with pytest.raises(exc) as info:
        p.pack_into(buf, offset)
    assert str(info.value) == message


def test_write_header_and_write_packet(m: ModuleType) -> None:
    buf = bytearray(200)
    assert m.write_header(buf, 4, 0, 0x1234, 0xA00, 0xDEADBEEF, True) == 12
    assert bytes(buf[4:16]) == PCMU_HEADER
    assert m.write_packet(buf, 0, 0, 0x1234, 0xA00, 0xDEADBEEF, b"\xff" * 160, marker=True) == 172
    assert bytes(buf[:172]) == PCMU
    view = memoryview(bytearray(12))
    m.write_header(view, 0, 8, 1, 2, 3)
    assert bytes(view) == bytes.fromhex("80 08 0001 00000002 00000003")
    with pytest.raises(ValueError, match=r"^buffer too small: 12 bytes needed at offset 190, buffer has 200$"):
        m.write_header(buf, 190, 0, 0, 0, 0)
    with pytest.raises(ValueError, match=r"^buffer too small: 172 bytes needed at offset 100, buffer has 200$"):
        m.write_packet(buf, 100, 0, 0, 0, 0, bytes(160))
    with pytest.raises(TypeError, match=r"^write_header\(\) needs a writable bytes-like object, not bytes$"):
        m.write_header(b"x" * 12, 0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        ({"payload_type": 128}, ValueError, "payload_type must be in 0..127, got 128"),
        ({"payload_type": -1}, ValueError, "payload_type must be in 0..127, got -1"),
        ({"sequence_number": 65536}, ValueError, "sequence_number must be in 0..65535, got 65536"),
        ({"timestamp": 2**32}, ValueError, "timestamp must be in 0..4294967295, got 4294967296"),
        ({"ssrc": 2**70}, ValueError, f"ssrc must be in 0..4294967295, got {2**70}"),
        ({"ssrc": "1"}, TypeError, "ssrc must be an int, not str"),
        ({"csrc": range(16)}, ValueError, "an RTP packet carries at most 15 CSRCs, got 16"),
        ({"csrc": [-1]}, ValueError, "csrc must be in 0..4294967295, got -1"),
        ({"extension_data": b"abcd"}, ValueError, "extension_data needs an extension_profile"),
        ({"extension_profile": 1, "extension_data": b"abc"}, ValueError, "extension_data length must be a multiple of 4, got 3"),
        ({"extension_profile": 65536}, ValueError, "extension_profile must be in 0..65535, got 65536"),
        ({"padding_length": 256}, ValueError, "padding_length must be in 0..255, got 256"),
        ({"payload": 3}, TypeError, "payload needs a bytes-like object, not int"),
    ],
)
def test_constructor_validation(m: ModuleType, kwargs: dict, exc: type, message: str) -> None:
    with pytest.raises(exc) as info:
        m.RtpPacket(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "args, exc, message",
    [
        ((bytearray(12), 0, 200, 0, 0, 0), ValueError, "payload_type must be in 0..127, got 200"),
        ((bytearray(12), 0, 0, -5, 0, 0), ValueError, "sequence_number must be in 0..65535, got -5"),
        ((bytearray(12), 0, 0, 0, 0, 1.5), TypeError, "ssrc must be an int, not float"),
        ((bytearray(12), -3, 0, 0, 0, 0), ValueError, "offset must be >= 0, got -3"),
    ],
)
def test_write_header_argument_errors(m: ModuleType, args: tuple, exc: type, message: str) -> None:
    with pytest.raises(exc) as info:
        m.write_header(*args)
    assert str(info.value) == message


class _Int(int):
    pass


@pytest.mark.parametrize(
    "args, kwargs, exc, message",
    [
        ((128, 0, 0, 0, b""), {}, ValueError, "payload_type must be in 0..127, got 128"),
        ((0, 65536, 0, 0, b""), {}, ValueError, "sequence_number must be in 0..65535, got 65536"),
        ((0, 0, -1, 0, b""), {}, ValueError, "timestamp must be in 0..4294967295, got -1"),
        ((0, 0, 0, 2**64, b""), {}, ValueError, "ssrc must be in 0..4294967295, got 18446744073709551616"),
        ((1.0, 0, 0, 0, b""), {}, TypeError, "payload_type must be an int, not float"),
        ((0, 0, 0, 0, "x"), {}, TypeError, "payload needs a bytes-like object, not str"),
        ((0, 0, 0), {}, TypeError, None),
        ((0, 0, 0, 0, b"", False, 7), {}, TypeError, None),
        ((0, 0, 0, 0), {"payload": b"", "colour": 1}, TypeError, None),
    ],
)
def test_build_packet_errors(m: ModuleType, args: tuple, kwargs: dict, exc: type, message: str) -> None:
    """The compiled build_packet's C fast path hands every unusual call to the checked path: same errors."""
    with pytest.raises(exc) as info:
        m.build_packet(*args, **kwargs)
    if message is not None:
        assert str(info.value) == message
    else:
        assert "build_packet()" in str(info.value)


@settings(max_examples=300, deadline=None)
@given(
    pt=st.integers(0, 127), seq=st.integers(0, 0xFFFF), ts=st.integers(0, 2**32 - 1), ssrc=st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=300), marker=st.sampled_from([None, False, True, 0, 1, _Int(1)]),
    form=st.sampled_from(["positional", "keywords", "bytearray", "int-subclass"]),
)
def test_build_packet_all_call_forms_agree(
    pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: Any, form: str
) -> None:
    """Fast path (exact ints, bytes, bool marker) and checked path (everything else) build the same bytes as
    the pure-Python twin and as a struct packer."""
    expected = struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq, ts, ssrc) + payload
    for mod in (_compat.module_for("_rtp", "python"), rtp):
        extra: tuple = () if marker is None else (marker,)
        if form == "positional":
            got = mod.build_packet(pt, seq, ts, ssrc, payload, *extra)
        elif form == "keywords":
            kw = {} if marker is None else {"marker": marker}
            got = mod.build_packet(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=payload, **kw)
        elif form == "bytearray":
            got = mod.build_packet(pt, seq, ts, ssrc, bytearray(payload), *extra)
        else:
            got = mod.build_packet(_Int(pt), seq, _Int(ts), ssrc, payload, *extra)
        assert got == expected and type(got) is bytes


def test_parse_rejects_non_buffers(m: ModuleType) -> None:
    with pytest.raises(TypeError) as info:
        m.RtpPacket.parse("not bytes")
    assert str(info.value) == "RtpPacket.parse() needs a bytes-like object, not str"


def test_packets_are_immutable_values(m: ModuleType) -> None:
    p = m.RtpPacket.parse(PCMU)
    with pytest.raises(AttributeError):
        p.sequence_number = 3  # type: ignore[misc]
    assert p == m.RtpPacket.parse(bytearray(PCMU))
    assert p != m.RtpPacket.parse(FULL)
    assert "sequence_number=4660" in repr(p)
    with pytest.raises(TypeError):
        hash(p)


# -- properties ------------------------------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
ext_elements = st.lists(st.tuples(st.integers(1, 14), st.binary(min_size=1, max_size=16)), max_size=4)
packet_kwargs = st.fixed_dictionaries(
    {
        "payload_type": st.integers(0, 127),
        "sequence_number": st.integers(0, 65535),
        "timestamp": u32,
        "ssrc": u32,
        "marker": st.booleans(),
        "payload": st.binary(max_size=300),
        "csrc": st.lists(u32, max_size=15).map(tuple),
        "padding_length": st.integers(0, 255),
    }
)


@settings(max_examples=150, deadline=None)
@given(kw=packet_kwargs, ext=st.none() | ext_elements, two_byte=st.booleans())
def test_round_trip_both_implementations(kw: dict, ext: Any, two_byte: bool) -> None:
    p_mod = _compat.module_for("_rtp", "python")
    c_mod = _compat.module_for("_rtp", IMPLS[0])
    if ext is not None:
        kw = dict(kw)
        kw["extension_profile"], kw["extension_data"] = p_mod.encode_header_extensions(ext, two_byte)
    wires: List[bytes] = []
    for mod in (c_mod, p_mod):
        pkt = mod.RtpPacket(**kw)
        wire = pkt.serialize()
        back = mod.RtpPacket.parse(wire)
        assert back == pkt
        assert back.serialize() == wire
        if ext is not None:
            assert back.header_extensions() == [(i, bytes(d)) for i, d in ext]
        buf = bytearray(len(wire) + 3)
        assert back.pack_into(buf, 3) == len(wire) and bytes(buf[3:]) == wire
        wires.append(wire)
    assert len(set(wires)) == 1
    hdr = struct.unpack_from("!BBHII", wires[0])
    assert hdr[2:] == (kw["sequence_number"], kw["timestamp"], kw["ssrc"])


@settings(max_examples=300, deadline=None)
@given(
    pt=st.integers(0, 127), seq=st.integers(0, 0xFFFF), ts=st.integers(0, 2**32 - 1), ssrc=st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=200), marker=st.sampled_from([None, False, True, 0, 1]),
    size=st.integers(0, 240), offset=st.integers(-2, 240),
    form=st.sampled_from(["positional", "keywords", "memoryview-target", "bytearray-payload"]),
)
def test_write_header_and_packet_all_call_forms_agree(
    pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: Any, size: int, offset: int, form: str
) -> None:
    """The compiled writers' C fast path (exact bytearray target, exact ints, bytes, bool marker) and their
    checked path give the twin's results: the same bytes written, the same count, the same error and message."""
    twin = _compat.module_for("_rtp", "python")

    def run(mod: ModuleType, fn: str) -> tuple:
        buf = bytearray(size)
        target: Any = memoryview(buf) if form == "memoryview-target" else buf
        pl: Any = bytearray(payload) if form == "bytearray-payload" else payload
        head = (target, offset, pt, seq, ts, ssrc) + ((pl,) if fn == "write_packet" else ())
        extra: tuple = () if marker is None else (marker,)
        try:
            if form == "keywords":
                kw: dict = {"marker": marker} if marker is not None else {}
                n = getattr(mod, fn)(*head[:2], payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc,
                                     **({"payload": pl} if fn == "write_packet" else {}), **kw)
            else:
                n = getattr(mod, fn)(*head, *extra)
        except (ValueError, TypeError) as exc:
            return type(exc), str(exc), bytes(buf)
        return n, bytes(buf)

    for fn in ("write_header", "write_packet"):
        assert run(rtp, fn) == run(twin, fn)


# -- found by the coverage-guided run of the compiled modules (tests/fuzz/atheris_compiled.py) -----------------

def test_strided_buffers_are_refused_the_same_way_by_both(m: ModuleType) -> None:
    """A non-contiguous view (``memoryview(...)[::2]``) is refused with the twin's TypeError everywhere: the
    compiled module used to raise BufferError, and the twin wrote into it through ``pack_into``."""
    backing = bytearray(80)
    strided = memoryview(backing)[::2]
    calls = [
        lambda: m.write_header(strided, 0, 0, 0, 0, 0),
        lambda: m.write_packet(strided, 0, 0, 0, 0, 0, b"ab"),
        lambda: m.RtpPacket(payload=b"").pack_into(strided, 0),
        lambda: m.RtpPacket.parse(memoryview(PCMU * 2)[::2]),
        lambda: m.parse_rtcp(memoryview(bytes(64))[::2]),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="C-contiguous"):
            call()
    assert backing == bytearray(80)


def test_a_payload_viewing_its_own_target_buffer_is_written_as_it_was(m: ModuleType) -> None:
    """A payload that is a view into the buffer being written (a packet parsed from a receive buffer and packed
    back into it, or ``write_packet`` from a slice of its own buffer) is copied as it was before the call, in
    both implementations: the compiled module used to ``memcpy`` a region onto itself after the header had been
    written over part of it."""
    buf = bytearray(FULL)
    packet = m.RtpPacket.parse(memoryview(buf))
    expected = packet.serialize()
    assert packet.pack_into(buf, 0) == len(FULL) and bytes(buf) == expected
    shifted = bytearray(64)
    shifted[:len(FULL)] = FULL
    packet = m.RtpPacket.parse(memoryview(shifted)[: len(FULL)])
    packet.pack_into(shifted, 3)  # overlapping, not at the same place
    assert bytes(shifted[3 : 3 + len(FULL)]) == expected
    raw = bytearray(range(40))
    before = bytes(raw[4:24])
    n = m.write_packet(raw, 0, 0, 1, 2, 3, memoryview(raw)[4:24])
    assert n == 32 and bytes(raw[12:32]) == before
