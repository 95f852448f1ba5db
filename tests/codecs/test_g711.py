"""G.711 codec: bit-exactness (exhaustive), parity of the two implementations, buffer contract, errors.

The reference below is written from the G.711 quantisation tables (decision values of each segment and
the decoder's mid-interval outputs), as a threshold search: it shares no code or formulation with the
package, which uses bit arithmetic (compiled) and per-segment shifts (twin).
"""

from __future__ import annotations

import array
import sys
import threading
import warnings
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast import _compat
from pyvoip_fast.codecs import g711

ALL_PCM = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)

# ---------------------------------------------------------------------------------------------------------
# Independent reference, from G.711 Table 2 (mu-law, 14-bit magnitude units) and Table 1 (A-law, 12-bit
# magnitude units as taken by the G.191 STL): the lower decision value of each of the 128 quantisation
# intervals of one polarity, in order. A magnitude falls in the last interval whose decision value it reaches.
# Negative samples are quantised by their one's complement (-x - 1), as in the STL.
# ---------------------------------------------------------------------------------------------------------

# mu-law segment s (0..7) starts at 2**(s+5) - 33 and has 16 steps of 2**(s+1); the very first interval is
# [0, 1) (its nominal lower edge -1 is below every magnitude).
MU_EDGES = np.array([(1 << (s + 5)) - 33 + j * (2 << s) for s in range(8) for j in range(16)], dtype=np.int64)
MU_STEP = np.array([2 << s for s in range(8) for j in range(16)], dtype=np.int64)
# A-law segment 0 starts at 0 with 16 steps of 1; segment s >= 1 starts at 2**(s+3) with 16 steps of 2**(s-1)
A_EDGES = np.array([j for j in range(16)] + [(1 << (s + 3)) + j * (1 << (s - 1)) for s in range(1, 8)
                                             for j in range(16)], dtype=np.int64)
A_STEP = np.array([1] * 16 + [1 << (s - 1) for s in range(1, 8) for j in range(16)], dtype=np.int64)


def ref_ulaw_encode(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    magnitude = np.where(x < 0, -x - 1, x) // 4
    interval = np.searchsorted(MU_EDGES, magnitude, side="right") - 1
    interval = np.maximum(interval, 0)
    return ((127 - interval) | np.where(x >= 0, 0x80, 0)).astype(np.uint8)


def ref_alaw_encode(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    magnitude = np.where(x < 0, -x - 1, x) // 16
    interval = np.searchsorted(A_EDGES, magnitude, side="right") - 1
    return ((interval | np.where(x >= 0, 0x80, 0)) ^ 0x55).astype(np.uint8)


def ref_ulaw_decode(codes: np.ndarray) -> np.ndarray:
    c = codes.astype(np.int64)
    interval = 127 - (c & 0x7F)
    # output = middle of the interval, in 16-bit units (x4); the first interval [-1, 1) gives 0
    mid = (MU_EDGES[interval] * 2 + MU_STEP[interval]) * 2
    return np.where(c & 0x80, mid, -mid).astype(np.int16)


def ref_alaw_decode(codes: np.ndarray) -> np.ndarray:
    c = codes.astype(np.int64) ^ 0x55
    interval = c & 0x7F
    mid = (A_EDGES[interval] * 2 + A_STEP[interval]) * 8  # middle of the interval, x16
    return np.where(c & 0x80, mid, -mid).astype(np.int16)


def mod(impl: str) -> ModuleType:
    return _compat.module_for("_g711", impl)


# ------------------------------------------------------------------------------------------ bit-exactness


def test_reference_known_points() -> None:
    # fixed points from the standard: zero, full scale, and the one-step sign asymmetry
    assert ref_ulaw_encode(np.array([0, -1, 32767, -32768])).tolist() == [0xFF, 0x7F, 0x80, 0x00]
    assert ref_alaw_encode(np.array([0, -1, 32767, -32768])).tolist() == [0xD5, 0x55, 0xAA, 0x2A]
    assert ref_ulaw_decode(np.array([0xFF, 0x7F, 0x80, 0x00])).tolist() == [0, 0, 32124, -32124]
    assert ref_alaw_decode(np.array([0xD5, 0x55, 0xAA, 0x2A])).tolist() == [8, -8, 32256, -32256]


def test_ulaw_encode_exhaustive(impl: str) -> None:
    got = np.frombuffer(mod(impl).ulaw_encode(ALL_PCM), dtype=np.uint8)
    np.testing.assert_array_equal(got, ref_ulaw_encode(ALL_PCM))


def test_alaw_encode_exhaustive(impl: str) -> None:
    got = np.frombuffer(mod(impl).alaw_encode(ALL_PCM), dtype=np.uint8)
    np.testing.assert_array_equal(got, ref_alaw_encode(ALL_PCM))


def test_encoders_exact_at_every_length_and_alignment(impl: str) -> None:
    # every int16 value, shuffled, coded in pieces whose lengths straddle the 32-sample vector width and
    # the GIL release threshold, starting at every 2-byte offset within a 32-byte vector: covers the vector
    # loop, the scalar tail, unaligned loads/stores and both sides of the threshold
    m = mod(impl)
    pcm = np.random.default_rng(11).permutation(ALL_PCM)
    t = m.GIL_RELEASE_THRESHOLD
    lengths = [1, 15, 31, 32, 33, 63, 64, 65, 160, 8000, t - 1, t, t + 33]
    raw = pcm.tobytes()
    for k, n in enumerate(lengths):
        start = (k * 7919) % (len(pcm) - n)
        start -= start % 16
        start += k % 16  # 2-byte offset within a 32-byte vector
        piece = memoryview(raw)[2 * start : 2 * (start + n)]  # keeps the (mis)alignment of `start`
        x = pcm[start : start + n]
        assert m.ulaw_encode(piece) == ref_ulaw_encode(x).tobytes(), n
        assert m.alaw_encode(piece) == ref_alaw_encode(x).tobytes(), n
        out = bytearray(n + 3)
        assert m.alaw_encode(bytes(piece), out=memoryview(out)[3:]) == n
        assert bytes(out[3:]) == ref_alaw_encode(x).tobytes(), n


def test_ulaw_decode_exhaustive(impl: str) -> None:
    got = np.frombuffer(mod(impl).ulaw_decode(ALL_CODES), dtype=np.int16)
    np.testing.assert_array_equal(got, ref_ulaw_decode(ALL_CODES))


def test_alaw_decode_exhaustive(impl: str) -> None:
    got = np.frombuffer(mod(impl).alaw_decode(ALL_CODES), dtype=np.int16)
    np.testing.assert_array_equal(got, ref_alaw_decode(ALL_CODES))


def test_decoding_to_an_array_is_the_decoder_on_every_code_and_buffer(impl: str) -> None:
    """``ulaw_decode_array`` / ``alaw_decode_array`` (what the receiver decodes every frame with): a new writable
    native int16 array, the reference value for all 256 codes from every kind of buffer, the decoders' errors."""
    m = mod(impl)
    for fn, ref in ((m.ulaw_decode_array, ref_ulaw_decode), (m.alaw_decode_array, ref_alaw_decode)):
        raw = bytes(ALL_CODES)
        for codes in (raw, bytearray(raw), memoryview(raw)[1:], np.frombuffer(raw, dtype=np.uint8)):
            got = fn(codes)
            assert type(got) is np.ndarray and got.dtype == np.int16 and got.dtype.isnative
            assert got.flags.writeable and got.flags.c_contiguous and got.ndim == 1
            np.testing.assert_array_equal(got, ref(np.frombuffer(bytes(codes), dtype=np.uint8)))
        assert fn(raw) is not fn(raw) and len(fn(b"")) == 0
        with pytest.raises(TypeError, match="codes must be a bytes-like object"):
            fn("abc")
        with pytest.raises(TypeError, match="8-bit codes"):
            fn(np.zeros(4, dtype=np.int16))
        with pytest.raises(ValueError, match="C-contiguous"):
            fn(memoryview(raw)[::2])


def test_transcoding_is_tandem(impl: str) -> None:
    m = mod(impl)
    u2a = np.frombuffer(m.ulaw_to_alaw(ALL_CODES), dtype=np.uint8)
    a2u = np.frombuffer(m.alaw_to_ulaw(ALL_CODES), dtype=np.uint8)
    np.testing.assert_array_equal(u2a, ref_alaw_encode(ref_ulaw_decode(ALL_CODES)))
    np.testing.assert_array_equal(a2u, ref_ulaw_encode(ref_alaw_decode(ALL_CODES)))


def test_decode_encode_round_trip_is_identity(impl: str) -> None:
    m = mod(impl)
    # every code except the duplicate zero of mu-law (0x7F, negative zero, re-encodes as 0xFF)
    assert m.alaw_encode(m.alaw_decode(ALL_CODES)) == ALL_CODES.tobytes()
    back = np.frombuffer(m.ulaw_encode(m.ulaw_decode(ALL_CODES)), dtype=np.uint8)
    differ = np.nonzero(back != ALL_CODES)[0].tolist()
    assert differ == [0x7F] and back[0x7F] == 0xFF


def test_scalar_rules_equal_buffer_path_on_all_inputs(impl: str) -> None:
    # the compiled module codes buffers with a vector loop (AVX2 where available) and single samples and
    # buffer tails with the scalar rule: both must agree everywhere
    m = mod(impl)
    values = ALL_PCM.tolist()
    assert bytes(m.ulaw_encode_sample(x) for x in values) == m.ulaw_encode(ALL_PCM)
    assert bytes(m.ulaw_encode_sample(x, audioop_compatible=True) for x in values) == m.ulaw_encode(
        ALL_PCM, audioop_compatible=True
    )
    assert bytes(m.alaw_encode_sample(x) for x in values) == m.alaw_encode(ALL_PCM)


def test_sample_helpers_match_buffers(impl: str) -> None:
    m = mod(impl)
    for x in (-32768, -31612, -1, 0, 1, 100, 32767):
        assert m.ulaw_encode_sample(x) == m.ulaw_encode(array.array("h", [x]))[0]
        assert m.ulaw_encode_sample(x, audioop_compatible=True) == m.ulaw_encode(
            array.array("h", [x]), audioop_compatible=True
        )[0]
        assert m.alaw_encode_sample(x) == m.alaw_encode(array.array("h", [x]))[0]
    for c in (0, 0x55, 0x7F, 0x80, 0xD5, 0xFF):
        assert m.ulaw_decode_sample(c) == int(ref_ulaw_decode(np.array([c]))[0])
        assert m.alaw_decode_sample(c) == int(ref_alaw_decode(np.array([c]))[0])
    with pytest.raises(ValueError, match="outside the int16 range"):
        m.ulaw_encode_sample(32768)
    with pytest.raises(TypeError, match="sample must be an int, not float"):
        m.alaw_encode_sample(1.0)
    with pytest.raises(ValueError, match="outside the range 0..255"):
        m.ulaw_decode_sample(256)
    with pytest.raises(TypeError, match="code must be an int, not bytes"):
        m.alaw_decode_sample(b"\x00")


# ----------------------------------------------------------------------------------------------- audioop


@pytest.fixture(scope="module")
def audioop() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pytest.importorskip("audioop")


def test_ulaw_differs_from_audioop_on_exactly_508_negative_inputs(impl: str, audioop: ModuleType) -> None:
    ours = np.frombuffer(mod(impl).ulaw_encode(ALL_PCM), dtype=np.uint8)
    theirs = np.frombuffer(audioop.lin2ulaw(ALL_PCM.tobytes(), 2), dtype=np.uint8)
    differ = ALL_PCM[ours != theirs]
    assert differ.size == 508
    assert (differ < 0).all()
    # the documented example: -31612..-31609 are 0x01 in the STL, 0x00 in audioop
    idx = np.arange(-31612, -31608) + 32768
    assert ours[idx].tolist() == [0x01] * 4 and theirs[idx].tolist() == [0x00] * 4
    # the difference is always exactly one quantisation step, where -x lands on a decision value
    assert (np.abs(ours[ours != theirs].astype(int) - theirs[ours != theirs].astype(int)) == 1).all()


def test_audioop_compatible_matches_lin2ulaw(impl: str, audioop: ModuleType) -> None:
    got = mod(impl).ulaw_encode(ALL_PCM, audioop_compatible=True)
    assert got == audioop.lin2ulaw(ALL_PCM.tobytes(), 2)


def test_alaw_and_decoders_agree_with_audioop(impl: str, audioop: ModuleType) -> None:
    m = mod(impl)
    assert m.alaw_encode(ALL_PCM) == audioop.lin2alaw(ALL_PCM.tobytes(), 2)
    assert m.ulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES.tobytes(), 2)
    assert m.alaw_decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES.tobytes(), 2)


# ------------------------------------------------------------------------------------ parity and selection


@pytest.mark.cython
def test_cython_python_parity_all_inputs() -> None:
    if _compat.NO_EXTENSIONS:
        pytest.skip("extensions switched off")
    c, p = mod("cython"), mod("python")
    for compat in (False, True):
        assert c.ulaw_encode(ALL_PCM, audioop_compatible=compat) == p.ulaw_encode(
            ALL_PCM, audioop_compatible=compat
        )
    assert c.alaw_encode(ALL_PCM) == p.alaw_encode(ALL_PCM)
    for name in ("ulaw_decode", "alaw_decode", "ulaw_to_alaw", "alaw_to_ulaw"):
        assert getattr(c, name)(ALL_CODES) == getattr(p, name)(ALL_CODES), name


def test_public_module_selects_implementation() -> None:
    expected = "python" if _compat.NO_EXTENSIONS else "cython"
    assert g711.IMPLEMENTATION == expected
    assert g711.ulaw_encode is mod(expected).ulaw_encode
    assert g711.ulaw_decode(g711.ulaw_encode(b"\x00\x00")) == b"\x00\x00"


# --------------------------------------------------------------------------------------- buffer contract


def _pcm_views(samples: np.ndarray) -> list[object]:
    raw = samples.tobytes()
    return [
        raw,
        bytearray(raw),
        memoryview(raw),
        memoryview(raw).cast("h"),
        array.array("h", samples.tolist()),
        samples,
        samples.view(np.uint8),
        np.ascontiguousarray(samples.reshape(2, -1)) if samples.size % 2 == 0 else samples,
    ]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-32768, 32767), max_size=300).filter(lambda v: len(v) % 2 == 0))
def test_every_pcm_buffer_type_gives_the_same_codes(samples: list[int]) -> None:
    pcm = np.array(samples, dtype=np.int16)
    expect_u, expect_a = ref_ulaw_encode(pcm).tobytes(), ref_alaw_encode(pcm).tobytes()
    for impl in _impls():
        m = mod(impl)
        for buf in _pcm_views(pcm):
            assert m.ulaw_encode(buf) == expect_u
            assert m.alaw_encode(buf) == expect_a


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=400))
def test_every_code_buffer_type_gives_the_same_pcm(codes: bytes) -> None:
    c = np.frombuffer(codes, dtype=np.uint8)
    expect_u, expect_a = ref_ulaw_decode(c).tobytes(), ref_alaw_decode(c).tobytes()
    for impl in _impls():
        m = mod(impl)
        for buf in (codes, bytearray(codes), memoryview(codes), array.array("B", codes), c, c.view(np.int8)):
            assert m.ulaw_decode(buf) == expect_u
            assert m.alaw_decode(buf) == expect_a


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-32768, 32767), max_size=200), st.integers(0, 5), st.integers(0, 3))
def test_out_buffers_filled_in_place(samples: list[int], slack: int, offset: int) -> None:
    pcm = np.array(samples, dtype=np.int16)
    n = pcm.size
    for impl in _impls():
        m = mod(impl)
        # encode into an unaligned slice of a bigger bytearray; bytes beyond the result stay untouched
        store = bytearray(b"\xee" * (offset + n + slack))
        target = memoryview(store)[offset:]
        assert m.ulaw_encode(pcm, out=target) == n
        assert bytes(store[offset : offset + n]) == ref_ulaw_encode(pcm).tobytes()
        assert store[:offset] == b"\xee" * offset and store[offset + n :] == b"\xee" * slack
        # decode into a numpy int16 array and into an unaligned byte slice
        codes = ref_alaw_encode(pcm)
        dst = np.full(n + slack, 7, dtype=np.int16)
        assert m.alaw_decode(codes, out=dst) == 2 * n
        np.testing.assert_array_equal(dst[:n], ref_alaw_decode(codes))
        assert (dst[n:] == 7).all()
        raw = bytearray(2 * n + offset + 1)
        assert m.alaw_decode(codes, out=memoryview(raw)[offset + 1 :]) == 2 * n
        assert bytes(raw[offset + 1 : offset + 1 + 2 * n]) == ref_alaw_decode(codes).tobytes()


def test_empty_inputs(impl: str) -> None:
    m = mod(impl)
    for f in (m.ulaw_encode, m.alaw_encode, m.ulaw_decode, m.alaw_decode, m.ulaw_to_alaw, m.alaw_to_ulaw):
        assert f(b"") == b""
        assert f(bytearray(), out=bytearray()) == 0


def test_native_byte_order_is_the_contract(impl: str) -> None:
    m = mod(impl)
    pcm = m.ulaw_decode(bytes([0x80]))  # +32124
    assert np.frombuffer(pcm, dtype=np.int16)[0] == 32124
    assert pcm == (32124).to_bytes(2, sys.byteorder, signed=True)
    explicit = np.array([32124], dtype="<i2" if sys.byteorder == "little" else ">i2")
    assert m.ulaw_encode(explicit) == bytes([0x80])


# ----------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "bad, exc, message",
    [
        ("text", TypeError, "pcm must be a bytes-like object .* not str"),
        ([1, 2], TypeError, "pcm must be a bytes-like object .* not list"),
        (None, TypeError, "not NoneType"),
        (12, TypeError, "not int"),
        (np.zeros(4, dtype=np.float32), TypeError, "native-endian int16 .* not buffer format 'f'"),
        (np.zeros(4, dtype=np.int32), TypeError, "not buffer format 'i'"),
        (np.zeros(4, dtype=np.uint16), TypeError, "not buffer format 'H'"),
        (array.array("d", [0.0]), TypeError, "not buffer format 'd'"),
        (np.zeros(4, dtype=np.int16).byteswap().view(np.dtype(np.int16).newbyteorder()), TypeError,
         "not buffer format '[<>]h'"),
        (b"\x00\x01\x02", ValueError, r"even number of bytes \(2 per int16 sample\), got 3"),
        (np.zeros(8, dtype=np.int16)[::2], ValueError, "pcm must be C-contiguous"),
    ],
)
def test_encode_rejects_bad_pcm(impl: str, bad: object, exc: type, message: str) -> None:
    m = mod(impl)
    for f in (m.ulaw_encode, m.alaw_encode):
        with pytest.raises(exc, match=message):
            f(bad)


@pytest.mark.parametrize(
    "bad, exc, message",
    [
        ("text", TypeError, "codes must be a bytes-like object .* not str"),
        (np.zeros(4, dtype=np.int16), TypeError, "8-bit codes .* not buffer format 'h'"),
        (np.zeros(4, dtype=np.float64), TypeError, "not buffer format 'd'"),
        (np.zeros(8, dtype=np.uint8)[::2], ValueError, "codes must be C-contiguous"),
    ],
)
def test_decode_rejects_bad_codes(impl: str, bad: object, exc: type, message: str) -> None:
    m = mod(impl)
    for f in (m.ulaw_decode, m.alaw_decode, m.ulaw_to_alaw, m.alaw_to_ulaw):
        with pytest.raises(exc, match=message):
            f(bad)


def test_out_errors(impl: str) -> None:
    m = mod(impl)
    pcm = np.arange(10, dtype=np.int16)
    with pytest.raises(ValueError, match="out is too small: 10 bytes needed, 9 available"):
        m.ulaw_encode(pcm, out=bytearray(9))
    with pytest.raises(ValueError, match="out is too small: 20 bytes needed, 19 available"):
        m.ulaw_decode(bytes(10), out=bytearray(19))
    with pytest.raises(TypeError, match="out must be writable"):
        m.alaw_encode(pcm, out=bytes(10))
    with pytest.raises(TypeError, match="out must be writable"):
        m.alaw_decode(bytes(10), out=memoryview(bytearray(20)).toreadonly())
    with pytest.raises(TypeError, match="out must be a writable bytes-like object, not list"):
        m.ulaw_encode(pcm, out=[0] * 10)
    with pytest.raises(TypeError, match="out must be a byte buffer .* not buffer format 'h'"):
        m.ulaw_encode(pcm, out=np.zeros(10, dtype=np.int16))
    with pytest.raises(TypeError, match="out must be a native-endian int16 or byte buffer, not buffer format 'f'"):
        m.ulaw_decode(bytes(10), out=np.zeros(10, dtype=np.float32))
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        m.ulaw_to_alaw(bytes(4), out=np.zeros(8, dtype=np.uint8)[::2])
    shared = bytearray(40)
    with pytest.raises(ValueError, match="out must not overlap the input buffer"):
        m.ulaw_decode(memoryview(shared)[:10], out=memoryview(shared)[5:])
    with pytest.raises(ValueError, match="out must not overlap the input buffer"):
        m.ulaw_to_alaw(shared, out=shared)
    assert shared == bytearray(40)  # nothing written on error


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.binary(max_size=64), st.text(max_size=8), st.integers(), st.lists(st.integers(0, 255)),
                 st.none(), st.floats()))
def test_garbage_raises_only_documented_exceptions(value: object) -> None:
    for impl in _impls():
        m = mod(impl)
        for f in (m.ulaw_encode, m.alaw_encode, m.ulaw_decode, m.alaw_decode, m.ulaw_to_alaw):
            try:
                result = f(value)
            except (TypeError, ValueError):
                continue
            assert isinstance(result, bytes)


# ------------------------------------------------------------------------------------------------ threads


def test_big_buffers_in_concurrent_threads(impl: str) -> None:
    m = mod(impl)
    # 400,000-sample buffers are far above the release threshold of either implementation
    assert m.GIL_RELEASE_THRESHOLD == 16384  # same constant in both implementations
    rng = np.random.default_rng(7)
    inputs = [(rng.standard_normal(400_000) * 6000).clip(-32768, 32767).astype(np.int16) for _ in range(2)]
    expected = [ref_ulaw_encode(x).tobytes() for x in inputs]
    results: list[object] = [None, None]
    barrier = threading.Barrier(2)

    def work(k: int) -> None:
        barrier.wait()
        out = bytearray(inputs[k].size)
        for _ in range(3):
            assert m.ulaw_encode(inputs[k], out=out) == inputs[k].size
        results[k] = bytes(out)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == expected


def _impls() -> list[str]:
    return ["python"] if _compat.NO_EXTENSIONS else ["cython", "python"]
