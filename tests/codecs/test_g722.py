"""G.722 codec: the ITU-T conformance vectors, parity of the two implementations, the G722 package, streams.

The judge is the test set of the ITU-T G.191 Software Tools Library (``tests/data/g722``, CRC-checked): the
encoder must reproduce ``codspw.cod`` from ``inpsp.bin`` and the decoder ``outsp1/2/3.bin`` from
``codspw.cod`` in modes 1/2/3, bit for bit, in both implementations and for any cutting of the stream into
calls. Beyond the vectors, the compiled module is held to the pure-Python twin (written in the reference's
literal 16-bit style, so that every algebraic shortcut of the compiled code is checked) on arbitrary and
extreme inputs, and both to the ``G722`` package on PyPI (libg722, of the spandsp lineage), whose one known
divergence is pinned down here: it does not limit the transmit QMF's outputs to -16384..16383 as the
reference does.
"""

from __future__ import annotations

import array
import gzip
import sys
import threading
import zlib
from types import ModuleType
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import DATA, skip_or_fail
from pyvoip_fast import _compat
from pyvoip_fast.codecs import g722
from pyvoip_fast.codecs.g722_codec import G722

VECTORS = DATA / "g722"
#: CRC32 of the uncompressed files, as published with the ITU test set
CRC = {"inpsp.bin": 0xC9BACC0B, "codspw.cod": 0x4D0F0E22, "outsp1.bin": 0x28E883BA, "outsp2.bin": 0x5EFEEB04,
       "outsp3.bin": 0x57533121}
BITRATE_OF_MODE = {1: 64000, 2: 56000, 3: 48000}
SPLITS = ["whole", 160, 320, "odd"]
#: sizes cycled through by the "odd" split (PCM samples for the encoder, codes for the decoder)
ODD_PIECES = (1, 7, 159, 161, 321, 999, 2047, 3, 4097, 2)


def mod(impl: str) -> ModuleType:
    return _compat.module_for("_g722", impl)


def _impls() -> List[str]:
    return ["python"] if _compat.NO_EXTENSIONS else ["cython", "python"]


def _load(name: str) -> bytes:
    raw = gzip.decompress((VECTORS / f"{name}.gz").read_bytes())
    assert zlib.crc32(raw) == CRC[name], f"{name} is damaged"
    return raw


@pytest.fixture(scope="module")
def vectors() -> Dict[str, np.ndarray]:
    """The ITU files, little-endian on disk, as native arrays: input PCM, codes, and the three decodings."""
    out = {"pcm": np.frombuffer(_load("inpsp.bin"), dtype="<i2").astype(np.int16),
           "codes": np.frombuffer(_load("codspw.cod"), dtype="<u2").astype(np.uint8)}
    for mode in (1, 2, 3):
        out[f"out{mode}"] = np.frombuffer(_load(f"outsp{mode}.bin"), dtype="<i2").astype(np.int16)
    return out


@pytest.fixture(scope="module")
def package() -> Any:
    """The ``G722`` package (``pip install g722``): a skip on a laptop without it, a failure under CI=true."""
    try:
        import G722 as package_module
    except ImportError:
        skip_or_fail("the G722 package is not installed (it is in the test extra)")
    return package_module


def pieces(n: int, split: object) -> Iterator[slice]:
    """Consecutive slices covering range(n): one, fixed-size ones, or the irregular ODD_PIECES cycle."""
    if split == "whole":
        yield slice(0, n)
        return
    start, k = 0, 0
    while start < n:
        size = split if isinstance(split, int) else ODD_PIECES[k % len(ODD_PIECES)]
        yield slice(start, min(n, start + size))
        start += size
        k += 1


def encode_split(enc: Any, pcm: np.ndarray, split: object) -> bytes:
    return b"".join(enc.encode(pcm[s]) for s in pieces(pcm.size, split))


def decode_split(dec: Any, codes: np.ndarray, split: object) -> bytes:
    return b"".join(dec.decode(codes[s]) for s in pieces(codes.size, split))


def package_codes(package: Any, pcm: np.ndarray, bitrate: int) -> bytes:
    """The package's codes at our code positions (it right-aligns the 7- and 6-bit codes of modes 2 and 3)."""
    shift = {64000: 0, 56000: 1, 48000: 2}[bitrate]
    codes = np.frombuffer(package.G722(16000, bitrate).encode(pcm), dtype=np.uint8)
    return (codes.astype(np.int32) << shift).astype(np.uint8).tobytes()


def package_pcm(package: Any, codes: bytes, bitrate: int) -> bytes:
    shift = {64000: 0, 56000: 1, 48000: 2}[bitrate]
    wire = (np.frombuffer(codes, dtype=np.uint8) >> shift).astype(np.uint8).tobytes()
    return np.asarray(package.G722(16000, bitrate).decode(wire), dtype=np.int16).tobytes()


# ----------------------------------------------------------------------------------- ITU conformance vectors


def test_vector_files_are_the_published_ones(vectors: Dict[str, np.ndarray]) -> None:
    assert vectors["pcm"].size == 97536 and vectors["codes"].size == 48768
    assert all(vectors[f"out{m}"].size == 97536 for m in (1, 2, 3))


@pytest.mark.parametrize("split", SPLITS, ids=str)
def test_encoder_reproduces_the_itu_codes(impl: str, vectors: Dict[str, np.ndarray], split: object) -> None:
    got = encode_split(mod(impl).Encoder(), vectors["pcm"], split)
    np.testing.assert_array_equal(np.frombuffer(got, dtype=np.uint8), vectors["codes"])


@pytest.mark.parametrize("split", SPLITS, ids=str)
@pytest.mark.parametrize("mode", [1, 2, 3])
def test_decoder_reproduces_the_itu_output(impl: str, vectors: Dict[str, np.ndarray], mode: int,
                                           split: object) -> None:
    got = decode_split(mod(impl).Decoder(BITRATE_OF_MODE[mode]), vectors["codes"], split)
    np.testing.assert_array_equal(np.frombuffer(got, dtype=np.int16), vectors[f"out{mode}"])


def test_encoder_into_out_and_after_reset(impl: str, vectors: Dict[str, np.ndarray]) -> None:
    m = mod(impl)
    enc = m.Encoder()
    enc.encode(vectors["pcm"][:1001])
    enc.reset()
    assert enc.pending == 0
    out = bytearray(vectors["codes"].size + 3)
    assert enc.encode(vectors["pcm"], out=memoryview(out)[3:]) == vectors["codes"].size
    assert bytes(out[3:]) == vectors["codes"].tobytes()
    dec = m.Decoder()
    dec.decode(vectors["codes"][:77])
    dec.reset()
    pcm = np.zeros(vectors["pcm"].size, dtype=np.int16)
    assert dec.decode(vectors["codes"], out=pcm) == 2 * pcm.size
    np.testing.assert_array_equal(pcm, vectors["out1"])


# -------------------------------------------------------------------------------- modes 2 and 3 on the wire


def test_encoder_zeroes_the_auxiliary_bits_in_modes_2_and_3(impl: str,
                                                             vectors: Dict[str, np.ndarray]) -> None:
    m = mod(impl)
    pcm = vectors["pcm"][:8000]
    full = np.frombuffer(m.Encoder(64000).encode(pcm), dtype=np.uint8)
    assert (full & 3).any()  # mode 1 uses those bits
    assert m.Encoder(56000).encode(pcm) == (full & 0xFE).tobytes()
    assert m.Encoder(48000).encode(pcm) == (full & 0xFC).tobytes()
    assert [m.Encoder(b).bitrate for b in (64000, 56000, 48000)] == [64000, 56000, 48000]


def test_decoder_ignores_the_auxiliary_bits_in_modes_2_and_3(impl: str,
                                                             vectors: Dict[str, np.ndarray]) -> None:
    m = mod(impl)
    codes = vectors["codes"][:4000]
    for bitrate, low in ((56000, 1), (48000, 3)):
        expected = m.Decoder(bitrate).decode(codes)
        assert m.Decoder(bitrate).decode(codes & ~np.uint8(low)) == expected
        assert m.Decoder(bitrate).decode(codes | np.uint8(low)) == expected
        flipped = codes ^ np.random.default_rng(bitrate).integers(0, low + 1, codes.size).astype(np.uint8)
        assert m.Decoder(bitrate).decode(flipped) == expected
    # in mode 1 every bit counts
    assert m.Decoder(64000).decode(codes ^ np.uint8(1)) != m.Decoder(64000).decode(codes)


# ------------------------------------------------------------------------------------- streams and splits


def test_odd_sample_is_held_for_the_next_call(impl: str) -> None:
    m = mod(impl)
    pcm = (np.sin(np.arange(11) * 0.7) * 9000).astype(np.int16)
    whole = m.Encoder().encode(pcm[:10])
    enc = m.Encoder()
    assert enc.encode(pcm[:3]) == whole[:1] and enc.pending == 1
    assert enc.encode(pcm[3:4]) == whole[1:2] and enc.pending == 0
    assert enc.encode(pcm[4:5]) == b"" and enc.pending == 1
    assert enc.encode(b"") == b"" and enc.pending == 1  # an empty call keeps the held sample
    out = bytearray(3)
    assert enc.encode(pcm[5:10], out=out) == 3 and bytes(out) == whole[2:5] and enc.pending == 0
    # flush() pairs a held sample with a zero one
    assert enc.flush() == b""
    assert enc.encode(pcm[10:11]) == b"" and enc.pending == 1
    tail = enc.flush()
    assert enc.pending == 0 and len(tail) == 1
    assert m.Encoder().encode(np.r_[pcm, np.int16(0)]) == whole + tail
    # reset() drops it
    enc.encode(pcm[:1])
    enc.reset()
    assert enc.pending == 0 and enc.encode(pcm[:10]) == whole


SIGNAL = st.sampled_from(["speech", "noise", "tone"])


def _signal(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(-32768, 32768, n).astype(np.int16)
    if kind == "tone":
        return (np.sin(np.arange(n) * (0.05 + seed % 50 / 40)) * (1000 + seed % 31000)).astype(np.int16)
    t = np.arange(n)
    return (np.sin(t * 0.13) * 6000 + np.sin(t * 0.031) * 4000 + rng.normal(0, 500, n)).clip(
        -32768, 32767).astype(np.int16)


@settings(max_examples=25, deadline=None)
@given(kind=SIGNAL, n=st.integers(0, 700), seed=st.integers(0, 2**16),
       cuts=st.lists(st.integers(0, 700), max_size=8))
def test_any_split_of_a_stream_codes_as_the_whole(kind: str, n: int, seed: int, cuts: List[int]) -> None:
    pcm = _signal(kind, n, seed)
    bounds = sorted({0, n, *[c for c in cuts if c <= n]})
    for impl in _impls():
        m = mod(impl)
        whole_enc = m.Encoder()
        whole = whole_enc.encode(pcm)
        enc = m.Encoder()
        parts = b"".join(enc.encode(pcm[a:b]) for a, b in zip(bounds, bounds[1:]))
        assert parts == whole and enc.pending == whole_enc.pending == n % 2
        assert enc.flush() == whole_enc.flush()
        codes = np.frombuffer(whole, dtype=np.uint8)
        half = sorted({0, codes.size, *[c // 2 for c in cuts if c // 2 <= codes.size]})
        for bitrate in (64000, 48000):
            dec = m.Decoder(bitrate)
            split = b"".join(dec.decode(codes[a:b]) for a, b in zip(half, half[1:]))
            assert split == m.Decoder(bitrate).decode(codes)


# ----------------------------------------------------------------------------- parity and extreme inputs


def _extremes() -> Dict[str, np.ndarray]:
    n = 3000
    square = {f"square{p}": np.tile(np.r_[np.full(p, 32767), np.full(p, -32768)], n // (2 * p) + 1)[:n]
              for p in (1, 3, 8, 40, 160)}
    return {
        **square,
        "all_min": np.full(n, -32768),
        "all_max": np.full(n, 32767),
        "alternating": np.tile([32767, -32768], n // 2),
        "alternating_pairs": np.tile([32767, 32767, -32768, -32768], n // 4),
        "min_then_max": np.r_[np.full(n // 2, -32768), np.full(n // 2, 32767)],
        "silence": np.zeros(n),
    }


EXTREMES = {name: x.astype(np.int16) for name, x in _extremes().items()}


def _tx_in_range(pcm: np.ndarray) -> bool:
    """Whether the transmit QMF's outputs stay within the reference's -16384..16383 for this input."""
    twin = mod("python")
    line = np.r_[np.zeros(22, dtype=np.int64), pcm[: pcm.size & ~1].astype(np.int64)]
    sums = [twin._window_sums(line, taps) >> 14 for taps in (twin._TX_LOW, twin._TX_HIGH)]
    return all(s.min() >= -16384 and s.max() <= 16383 for s in sums)


@pytest.mark.parametrize("name", sorted(EXTREMES))
@pytest.mark.parametrize("bitrate", [64000, 56000, 48000])
def test_extreme_inputs_agree_across_implementations(name: str, bitrate: int) -> None:
    pcm = EXTREMES[name]
    results = {impl: mod(impl).Encoder(bitrate).encode(pcm) for impl in _impls()}
    decoded = {impl: mod(impl).Decoder(bitrate).decode(results[impl]) for impl in _impls()}
    assert len(set(results.values())) == 1 and len(set(decoded.values())) == 1
    assert len(results["python"]) == pcm.size // 2


@pytest.mark.parametrize("name", sorted(EXTREMES))
@pytest.mark.parametrize("bitrate", [64000, 56000, 48000])
def test_extreme_inputs_against_the_g722_package(package: Any, name: str, bitrate: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pcm = EXTREMES[name]
    ours = g722.Encoder(bitrate).encode(pcm)
    theirs = package_codes(package, pcm, bitrate)
    # both decoders agree on any code stream, ours included
    assert g722.Decoder(bitrate).decode(ours) == package_pcm(package, ours, bitrate)
    if _tx_in_range(pcm):
        assert ours == theirs
    else:
        # the one divergence: the reference limits the sub-band signals to -16384..16383, the package does not
        # (which may or may not change a code); our twin without that limit is the package exactly
        monkeypatch.setattr(mod("python"), "_TX_LIMIT", (-(2**31), 2**31 - 1))
        assert mod("python").Encoder(bitrate).encode(pcm) == theirs


def test_the_known_divergence_needs_a_full_scale_signal(package: Any, vectors: Dict[str, np.ndarray]) -> None:
    assert _tx_in_range(vectors["pcm"]) and _tx_in_range(EXTREMES["silence"])
    assert not _tx_in_range(EXTREMES["square8"])
    assert g722.Encoder().encode(EXTREMES["square8"]) != package_codes(package, EXTREMES["square8"], 64000)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=SIGNAL, n=st.integers(0, 1200), seed=st.integers(0, 2**16), gain=st.sampled_from([1, 2, 4, 8]))
def test_arbitrary_signals_match_the_twin_and_the_package(kind: str, n: int, seed: int, gain: int) -> None:
    pcm = (_signal(kind, n, seed).astype(np.int64) * gain).clip(-32768, 32767).astype(np.int16)
    try:
        import G722 as package_module
    except ImportError:
        package_module = None
    for bitrate in (64000, 56000):
        codes = {impl: mod(impl).Encoder(bitrate).encode(pcm) for impl in _impls()}
        assert len(set(codes.values())) == 1
        pcm_out = {impl: mod(impl).Decoder(bitrate).decode(codes["python"]) for impl in _impls()}
        assert len(set(pcm_out.values())) == 1
        if package_module is not None:
            if _tx_in_range(pcm):
                assert codes["python"] == package_codes(package_module, pcm, bitrate)
            assert pcm_out["python"] == package_pcm(package_module, codes["python"], bitrate)


@settings(max_examples=30, deadline=None)
@given(codes=st.binary(max_size=600), bitrate=st.sampled_from([64000, 56000, 48000]))
def test_arbitrary_code_streams_decode_alike(codes: bytes, bitrate: int) -> None:
    """Every byte is a valid code (6-bit codes 0-3, which no encoder emits, included): no error, same PCM."""
    results = {impl: mod(impl).Decoder(bitrate).decode(codes) for impl in _impls()}
    assert len(set(results.values())) == 1 and len(results["python"]) == 4 * len(codes)
    try:
        import G722 as package_module
    except ImportError:
        return
    assert results["python"] == package_pcm(package_module, codes, bitrate)


def test_every_code_decodes_alike_in_every_mode(package: Any) -> None:
    codes = bytes(np.random.default_rng(5).permutation(np.tile(np.arange(256, dtype=np.uint8), 40)))
    for bitrate in (64000, 56000, 48000):
        ours = {impl: mod(impl).Decoder(bitrate).decode(codes) for impl in _impls()}
        assert len(set(ours.values())) == 1
        assert ours["python"] == package_pcm(package, codes, bitrate)


def test_the_package_reproduces_the_itu_vectors_too(package: Any, vectors: Dict[str, np.ndarray]) -> None:
    """The comparisons above mean something: the package is itself bit-exact on the ITU set."""
    assert package_codes(package, vectors["pcm"], 64000) == vectors["codes"].tobytes()
    for mode in (1, 2, 3):
        got = package_pcm(package, vectors["codes"].tobytes(), BITRATE_OF_MODE[mode])
        assert got == vectors[f"out{mode}"].tobytes()


# ------------------------------------------------------------------------------------ buffers and errors


def _pcm_views(samples: np.ndarray) -> List[object]:
    raw = samples.tobytes()
    return [raw, bytearray(raw), memoryview(raw), memoryview(raw).cast("h"),
            array.array("h", samples.tolist()), samples, samples.view(np.uint8),
            np.ascontiguousarray(samples.reshape(2, -1))]


def test_every_buffer_type_gives_the_same_result(impl: str) -> None:
    m = mod(impl)
    pcm = _signal("speech", 640, 3)
    expected = m.Encoder().encode(pcm)
    for buf in _pcm_views(pcm):
        assert m.Encoder().encode(buf) == expected, type(buf)
    codes = np.frombuffer(expected, dtype=np.uint8)
    expected_pcm = m.Decoder().decode(expected)
    for cbuf in (expected, bytearray(expected), memoryview(expected), array.array("B", expected), codes,
                 codes.view(np.int8)):
        assert m.Decoder().decode(cbuf) == expected_pcm, type(cbuf)
    assert np.frombuffer(expected_pcm, dtype=np.int16).dtype == np.dtype("=i2")


def test_native_byte_order_is_the_contract(impl: str) -> None:
    m = mod(impl)
    pcm = _signal("tone", 320, 9)
    swapped = pcm.astype(">i2" if sys.byteorder == "little" else "<i2")
    with pytest.raises(TypeError, match="not buffer format '[<>]h'"):
        m.Encoder().encode(swapped)
    explicit = pcm.astype("<i2" if sys.byteorder == "little" else ">i2")
    assert m.Encoder().encode(explicit) == m.Encoder().encode(pcm)


def test_empty_inputs(impl: str) -> None:
    m = mod(impl)
    assert m.Encoder().encode(b"") == b"" and m.Decoder().decode(b"") == b""
    assert m.Encoder().encode(bytearray(), out=bytearray()) == 0
    assert m.Decoder().decode(bytearray(), out=bytearray()) == 0


@pytest.mark.parametrize("bitrate, exc, message", [
    (32000, ValueError, "bitrate must be 64000, 56000 or 48000, not 32000"),
    (0, ValueError, "bitrate must be 64000, 56000 or 48000, not 0"),
    (64000.0, TypeError, "bitrate must be an int, not float"),
    ("64000", TypeError, "bitrate must be an int, not str"),
    (True, TypeError, "bitrate must be an int, not bool"),
    (None, TypeError, "bitrate must be an int, not NoneType"),
])
def test_bad_bitrates(impl: str, bitrate: object, exc: type, message: str) -> None:
    for cls in (mod(impl).Encoder, mod(impl).Decoder):
        with pytest.raises(exc, match=message):
            cls(bitrate)


@pytest.mark.parametrize("bad, exc, message", [
    ("text", TypeError, "pcm must be a bytes-like object .* not str"),
    ([1, 2], TypeError, "pcm must be a bytes-like object .* not list"),
    (None, TypeError, "pcm must be a bytes-like object .* not NoneType"),
    (np.zeros(4, dtype=np.float32), TypeError, "pcm must hold native-endian int16 .* not buffer format 'f'"),
    (np.zeros(4, dtype=np.int32), TypeError, "not buffer format 'i'"),
    (array.array("H", [1, 2]), TypeError, "not buffer format 'H'"),
    (b"\x00\x01\x02", ValueError, r"even number of bytes \(2 per int16 sample\), got 3"),
    (np.zeros(8, dtype=np.int16)[::2], ValueError, "pcm must be C-contiguous"),
])
def test_encode_rejects_bad_pcm(impl: str, bad: object, exc: type, message: str) -> None:
    with pytest.raises(exc, match=message):
        mod(impl).Encoder().encode(bad)


@pytest.mark.parametrize("bad, exc, message", [
    ("text", TypeError, "codes must be a bytes-like object .* not str"),
    (np.zeros(4, dtype=np.int16), TypeError, "8-bit codes .* not buffer format 'h'"),
    (np.zeros(4, dtype=np.float64), TypeError, "not buffer format 'd'"),
    (np.zeros(8, dtype=np.uint8)[::2], ValueError, "codes must be C-contiguous"),
])
def test_decode_rejects_bad_codes(impl: str, bad: object, exc: type, message: str) -> None:
    with pytest.raises(exc, match=message):
        mod(impl).Decoder().decode(bad)


def test_out_errors_leave_the_state_untouched(impl: str) -> None:
    m = mod(impl)
    pcm = _signal("speech", 401, 4)
    enc, ref = m.Encoder(), m.Encoder()
    first = enc.encode(pcm[:101])  # 50 codes, one sample held
    assert ref.encode(pcm[:101]) == first
    cases = [
        (dict(out=bytearray(99)), ValueError, "out is too small: 150 bytes needed, 99 available"),
        (dict(out=bytes(200)), TypeError, "out must be writable"),
        (dict(out=memoryview(bytearray(200)).toreadonly()), TypeError, "out must be writable"),
        (dict(out=[0] * 200), TypeError, "out must be a writable bytes-like object, not list"),
        (dict(out=np.zeros(200, dtype=np.int16)), TypeError,
         "out must be a byte buffer .* not buffer format 'h'"),
        (dict(out=np.zeros(400, dtype=np.uint8)[::2]), ValueError, "out must be C-contiguous"),
    ]
    for kwargs, exc, message in cases:
        with pytest.raises(exc, match=message):
            enc.encode(pcm[101:401], **kwargs)
    shared = bytearray(pcm[101:401].tobytes() + bytes(100))
    with pytest.raises(ValueError, match="out must not overlap the input buffer"):
        enc.encode(memoryview(shared)[:600], out=memoryview(shared)[500:])
    assert enc.pending == 1 and enc.encode(pcm[101:401]) == ref.encode(pcm[101:401])

    codes = m.Encoder().encode(pcm[:400])
    dec, dref = m.Decoder(), m.Decoder()
    assert dec.decode(codes[:10]) == dref.decode(codes[:10])
    for kwargs, exc, message in [
        (dict(out=bytearray(759)), ValueError, "out is too small: 760 bytes needed, 759 available"),
        (dict(out=np.zeros(380, dtype=np.float32)), TypeError,
         "out must be a native-endian int16 or byte buffer, not buffer format 'f'"),
        (dict(out=bytes(760)), TypeError, "out must be writable"),
    ]:
        with pytest.raises(exc, match=message):
            dec.decode(codes[10:200], **kwargs)
    both = bytearray(1000)
    with pytest.raises(ValueError, match="out must not overlap the input buffer"):
        dec.decode(memoryview(both)[:100], out=memoryview(both)[50:])
    assert both == bytearray(1000)
    assert dec.decode(codes[10:200]) == dref.decode(codes[10:200])


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.binary(max_size=64), st.text(max_size=8), st.integers(), st.lists(st.integers(0, 255)),
                 st.none(), st.floats()))
def test_garbage_raises_only_documented_exceptions(value: object) -> None:
    outcomes = []
    for impl in _impls():
        m = mod(impl)
        for call in (m.Encoder().encode, m.Decoder().decode):
            try:
                result = call(value)
            except (TypeError, ValueError) as exc:
                outcomes.append((type(exc), str(exc)))
                continue
            assert isinstance(result, bytes)
            outcomes.append((bytes, result))
    if len(_impls()) == 2:
        assert outcomes[:2] == outcomes[2:]


def test_codec_objects_are_not_copied(impl: str) -> None:
    import copy
    import pickle

    for obj in (mod(impl).Encoder(), mod(impl).Decoder()):
        name = type(obj).__name__
        for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
            with pytest.raises(TypeError, match=f"cannot pickle or copy a G.722 {name}: its state belongs"):
                attempt(obj)


def test_repr_and_attributes(impl: str) -> None:
    m = mod(impl)
    assert repr(m.Encoder(56000)) == "Encoder(bitrate=56000)"
    assert repr(m.Decoder()) == "Decoder(bitrate=64000)"
    assert m.BITRATES == (64000, 56000, 48000) and m.GIL_RELEASE_THRESHOLD == 2048
    assert m.KERNEL in (("sse2", "scalar") if impl == "cython" else ("python",))


# ------------------------------------------------------------------------------------------------ threads


@pytest.mark.cython
def test_big_buffers_in_threads_and_a_busy_object_refuses() -> None:
    if _compat.NO_EXTENSIONS:
        pytest.skip("extensions switched off")
    m = mod("cython")
    pcm = np.tile(_signal("speech", 16000, 8), 100)  # 1.6 M samples: far above the GIL threshold
    expected = m.Encoder().encode(pcm)
    # two threads, two encoders: both results exact
    results: List[object] = [None, None]
    barrier = threading.Barrier(2)

    def work(k: int) -> None:
        barrier.wait()
        results[k] = m.Encoder().encode(pcm)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [expected, expected]
    # one encoder, a second thread poking it while the GIL is released: refused, and the stream stays exact
    shared = m.Encoder()
    refusals = []
    done = threading.Event()

    def poke() -> None:
        while not done.is_set():
            try:
                shared.encode(b"")
            except RuntimeError as exc:
                refusals.append(str(exc))

    poker = threading.Thread(target=poke)
    poker.start()
    try:
        got = [shared.encode(pcm) for _ in range(3)]
    finally:
        done.set()
        poker.join(timeout=60)
    reference = m.Encoder()
    assert got == [reference.encode(pcm) for _ in range(3)]
    assert refusals and set(refusals) == {"this Encoder is in use by another thread"}


# ---------------------------------------------------------------------------------- public module and codec


def test_public_module_selects_implementation() -> None:
    import pyvoip_fast.g722 as short

    expected = "python" if _compat.NO_EXTENSIONS else "cython"
    assert g722.IMPLEMENTATION == expected
    assert g722.Encoder is mod(expected).Encoder and g722.Decoder is mod(expected).Decoder
    for name in g722.__all__:
        assert getattr(short, name) is getattr(g722, name)
    assert short.__all__ == g722.__all__


def test_codec_object_describes_g722() -> None:
    assert (G722.name, G722.clock_rate, G722.sample_rate, G722.bitrate, G722.payload_type) == (
        "G722", 8000, 16000, 64000, 9)
    assert G722.key == "G722/8000" and G722.static
    assert (G722.frame_samples(20), G722.frame_timestamps(20), G722.payload_bytes(20)) == (320, 160, 160)


def test_codec_streams_packets_like_the_module(vectors: Dict[str, np.ndarray]) -> None:
    enc, dec = G722.encoder(), G722.decoder()
    pcm = vectors["pcm"][: 320 * 30]
    payloads = [enc.encode(pcm[k : k + 320]) for k in range(0, pcm.size, 320)]
    assert all(isinstance(p, bytes) and len(p) == G722.payload_bytes(20) for p in payloads)
    assert b"".join(payloads) == vectors["codes"][: pcm.size // 2].tobytes()
    frames = [dec.decode(p) for p in payloads]
    assert all(isinstance(f, np.ndarray) and f.dtype == np.int16 and f.size == 320 for f in frames)
    np.testing.assert_array_equal(np.concatenate(frames), vectors["out1"][: pcm.size])
    # fresh objects per stream direction
    assert G722.encoder() is not enc and G722.encoder().encode(pcm[:320]) == payloads[0]
