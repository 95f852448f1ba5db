"""Pure-Python twin of the compiled G.711 codec (``pyvoip_fast._g711``): same API, exceptions and messages.

Use it through :mod:`pyvoip_fast.g711`. It is the fallback where no compiler was available and the oracle
the parity tests hold the compiled module to.
"""

# Strategy
# --------
# * ITU-T G.711 (Tables 1 and 2), bit-exact with the g711 module of the ITU-T G.191 Software Tools Library:
#   negative samples are mapped through their one's complement before quantising (mu-law: 14-bit
#   magnitude, bias 33, 8 segments; A-law: 12-bit magnitude, linear first segment, even bits inverted).
#   ``audioop_compatible`` mu-law negates the 14-bit value instead (Sun's g711.c / stdlib audioop).
# * Everything is table driven with numpy: at import, the three encoders are evaluated once for all 65,536
#   int16 values (uint8 tables indexed by the sample's uint16 bit pattern) and the two decoders for all 256
#   codes (int16 tables); a call is one fancy-indexing pass. Transcoding is the tandem decode -> encode.
# * Buffer contract as in the compiled module: any C-contiguous buffer (bytes, bytearray, memoryview,
#   array.array, numpy arrays); PCM is native-endian int16 (format 'h') or raw bytes of even length; codes
#   are 1-byte items; ``out=`` must be writable, large enough, and not overlap the input.

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Optional, Union, overload

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Buffer

logger = logging.getLogger(__name__)

#: buffers of at least this many samples are coded with the GIL released (numpy does so internally)
GIL_RELEASE_THRESHOLD = 16384

#: which inner loop this implementation uses for encoding
ENCODER_KERNEL = "numpy-table"

_NATIVE_LITTLE = sys.byteorder == "little"
_BYTE_FORMATS = ("B", "b", "c")


def _build_tables() -> "tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]":
    x = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)
    neg = x < 0
    sign = np.where(neg, 0, 0x80)

    def ulaw_seg_step(biased: np.ndarray) -> np.ndarray:
        # biased magnitude 33..8191: segment k covers [64 << (k - 1), 64 << k), step = 2 << k
        seg = np.zeros_like(biased)
        for k in range(1, 8):
            seg += biased >= (32 << k)
        result: np.ndarray = (seg << 4) | ((biased >> (seg + 1)) & 0x0F)
        return result

    # mu-law (STL): one's complement of negatives, 14-bit magnitude, + 33, clip 8191
    mag = np.where(neg, ~x, x) >> 2
    ulaw = (0x7F - ulaw_seg_step(np.minimum(mag + 33, 8191))) | sign
    # mu-law (audioop): negation of the 14-bit value
    q = x >> 2
    ulaw_aud = (0x7F - ulaw_seg_step(np.minimum(np.abs(q) + 33, 8191))) | sign
    # A-law: one's complement of negatives, 12-bit magnitude; segment 0 and 1 share the step size
    m = np.where(neg, ~x, x) >> 4
    aseg = np.zeros_like(m)
    for k in range(1, 8):
        aseg += m >= (16 << (k - 1))
    astep = np.where(aseg == 0, m, m >> np.maximum(aseg - 1, 0)) & 0x0F
    alaw = (((aseg << 4) | astep) | sign) ^ 0x55

    codes = np.arange(256, dtype=np.int32)
    u = ~codes & 0x7F
    useg, ustep = u >> 4, u & 0x0F
    umag = (((ustep << 3) + 0x84) << useg) - 0x84
    ulaw_dec = np.where(codes & 0x80, umag, -umag).astype(np.int16)
    a = codes ^ 0x55
    aseg2, astep2 = (a >> 4) & 0x07, a & 0x0F
    amag = np.where(aseg2 == 0, (astep2 << 4) + 8, ((astep2 << 4) + 0x108) << np.maximum(aseg2 - 1, 0))
    alaw_dec = np.where(a & 0x80, amag, -amag).astype(np.int16)
    return (
        ulaw.astype(np.uint8),
        ulaw_aud.astype(np.uint8),
        alaw.astype(np.uint8),
        ulaw_dec,
        alaw_dec,
    )


_ULAW_ENC, _ULAW_ENC_AUDIOOP, _ALAW_ENC, _ULAW_DEC, _ALAW_DEC = _build_tables()
_U2A = _ALAW_ENC[_ULAW_DEC.view(np.uint16)]
_A2U = _ULAW_ENC[_ALAW_DEC.view(np.uint16)]

_KIND_PCM, _KIND_CODES, _KIND_OUT_CODES, _KIND_OUT_PCM = range(4)
_NAMES = ("pcm", "codes", "out", "out")


def _format_ok(fmt: str, itemsize: int, int16_ok: bool) -> bool:
    if fmt[:1] in ("@", "="):
        fmt = fmt[1:]
    elif fmt[:1] == "<":
        if not _NATIVE_LITTLE:
            return False
        fmt = fmt[1:]
    elif fmt[:1] in (">", "!"):
        if _NATIVE_LITTLE:
            return False
        fmt = fmt[1:]
    if fmt in _BYTE_FORMATS:
        return itemsize == 1
    return fmt == "h" and int16_ok and itemsize == 2


def _format_error(kind: int, fmt: str) -> TypeError:
    if kind == _KIND_PCM:
        return TypeError(f"pcm must hold native-endian int16 samples or raw bytes, not buffer format {fmt!r}")
    if kind == _KIND_CODES:
        return TypeError(f"codes must hold 8-bit codes (bytes or a uint8 array), not buffer format {fmt!r}")
    if kind == _KIND_OUT_CODES:
        return TypeError(f"out must be a byte buffer (bytearray or uint8 array), not buffer format {fmt!r}")
    return TypeError(f"out must be a native-endian int16 or byte buffer, not buffer format {fmt!r}")


def _acquire(obj: object, kind: int) -> memoryview:
    writable = kind >= _KIND_OUT_CODES
    try:
        view = memoryview(obj)  # type: ignore[arg-type]
    except TypeError:
        if writable:
            raise TypeError(f"out must be a writable bytes-like object, not {type(obj).__name__}") from None
        raise TypeError(
            f"{_NAMES[kind]} must be a bytes-like object (bytes, bytearray, memoryview, array, numpy array), "
            f"not {type(obj).__name__}"
        ) from None
    if writable and view.readonly:
        raise TypeError("out must be writable, not a read-only buffer")
    if not _format_ok(view.format, view.itemsize, kind in (_KIND_PCM, _KIND_OUT_PCM)):
        raise _format_error(kind, view.format)
    if not view.c_contiguous:
        raise ValueError(f"{_NAMES[kind]} must be C-contiguous")
    return view


def _as_bytes_array(view: memoryview) -> np.ndarray:
    # the raw bytes of a (validated, C-contiguous) buffer, zero-copy; writable when the buffer is
    return np.frombuffer(view, dtype=np.uint8)


def _run(src_obj: object, out: object, table: np.ndarray, pcm_in: bool) -> Union[bytes, int]:
    view = _acquire(src_obj, _KIND_PCM if pcm_in else _KIND_CODES)
    nbytes = view.nbytes
    raw = _as_bytes_array(view)
    if pcm_in:
        if nbytes & 1:
            raise ValueError(f"pcm must have an even number of bytes (2 per int16 sample), got {nbytes}")
        index: np.ndarray = raw.view(np.uint16)
    else:
        index = raw
    pcm_out = table.dtype == np.int16
    need = (2 if pcm_out else 1) * index.size
    if out is None:
        return bytes(table[index].tobytes())
    oview = _acquire(out, _KIND_OUT_PCM if pcm_out else _KIND_OUT_CODES)
    if oview.nbytes < need:
        raise ValueError(f"out is too small: {need} bytes needed, {oview.nbytes} available")
    dst = _as_bytes_array(oview)[:need]
    if need and np.may_share_memory(raw, dst):
        raise ValueError("out must not overlap the input buffer")
    np.take(table, index, out=dst.view(table.dtype))
    return need


@overload
def ulaw_encode(pcm: Buffer, out: None = None, *, audioop_compatible: bool = False) -> bytes: ...
@overload
def ulaw_encode(pcm: Buffer, out: Buffer, *, audioop_compatible: bool = False) -> int: ...
def ulaw_encode(
    pcm: Buffer, out: Optional[Buffer] = None, *, audioop_compatible: bool = False
) -> Union[bytes, int]:
    """Encode native-endian int16 PCM to G.711 mu-law codes (ITU-T G.191 STL bit-exact).

    Args:
        pcm: buffer of native-endian int16 samples (format 'h') or their raw bytes (even length).
        out: optional writable byte buffer receiving the codes; nothing is allocated then.
        audioop_compatible: quantise negative samples as stdlib ``audioop.lin2ulaw`` does (differs from
            the ITU reference on 508 negative inputs).

    Returns:
        ``bytes`` of one code per sample, or the number of bytes written when ``out`` is given.

    Raises:
        TypeError: not a buffer, wrong item type (e.g. float32/int32 array), read-only or mistyped ``out``.
        ValueError: odd byte length, non-contiguous buffer, ``out`` too small or overlapping the input.
    """
    return _run(pcm, out, _ULAW_ENC_AUDIOOP if audioop_compatible else _ULAW_ENC, True)


@overload
def alaw_encode(pcm: Buffer, out: None = None) -> bytes: ...
@overload
def alaw_encode(pcm: Buffer, out: Buffer) -> int: ...
def alaw_encode(pcm: Buffer, out: Optional[Buffer] = None) -> Union[bytes, int]:
    """Encode native-endian int16 PCM to G.711 A-law codes (ITU-T G.191 STL bit-exact).

    Args:
        pcm: buffer of native-endian int16 samples (format 'h') or their raw bytes (even length).
        out: optional writable byte buffer receiving the codes; nothing is allocated then.

    Returns:
        ``bytes`` of one code per sample, or the number of bytes written when ``out`` is given.

    Raises:
        TypeError: not a buffer, wrong item type, read-only or mistyped ``out``.
        ValueError: odd byte length, non-contiguous buffer, ``out`` too small or overlapping the input.
    """
    return _run(pcm, out, _ALAW_ENC, True)


@overload
def ulaw_decode(codes: Buffer, out: None = None) -> bytes: ...
@overload
def ulaw_decode(codes: Buffer, out: Buffer) -> int: ...
def ulaw_decode(codes: Buffer, out: Optional[Buffer] = None) -> Union[bytes, int]:
    """Decode G.711 mu-law codes to native-endian int16 PCM.

    Args:
        codes: buffer of 8-bit codes (bytes, bytearray, memoryview, uint8 array).
        out: optional writable buffer (int16 or bytes) of at least ``2 * len(codes)`` bytes.

    Returns:
        ``bytes`` of native-endian int16 samples, or the number of bytes written when ``out`` is given.

    Raises:
        TypeError: not a buffer, items wider than one byte, read-only or mistyped ``out``.
        ValueError: non-contiguous buffer, ``out`` too small or overlapping the input.
    """
    return _run(codes, out, _ULAW_DEC, False)


@overload
def alaw_decode(codes: Buffer, out: None = None) -> bytes: ...
@overload
def alaw_decode(codes: Buffer, out: Buffer) -> int: ...
def alaw_decode(codes: Buffer, out: Optional[Buffer] = None) -> Union[bytes, int]:
    """Decode G.711 A-law codes to native-endian int16 PCM.

    Args:
        codes: buffer of 8-bit codes (bytes, bytearray, memoryview, uint8 array).
        out: optional writable buffer (int16 or bytes) of at least ``2 * len(codes)`` bytes.

    Returns:
        ``bytes`` of native-endian int16 samples, or the number of bytes written when ``out`` is given.

    Raises:
        TypeError: not a buffer, items wider than one byte, read-only or mistyped ``out``.
        ValueError: non-contiguous buffer, ``out`` too small or overlapping the input.
    """
    return _run(codes, out, _ALAW_DEC, False)


def ulaw_decode_array(codes: Buffer) -> np.ndarray:
    """Decode G.711 mu-law codes to a new numpy int16 array (native-endian, writable, one sample per code): what
    ``ulaw_decode`` gives, as the array a media path plays, without the bytes in between.

    Raises:
        TypeError, ValueError: as ``ulaw_decode`` for ``codes``.
    """
    return np.frombuffer(ulaw_decode(codes), dtype=np.int16).copy()


def alaw_decode_array(codes: Buffer) -> np.ndarray:
    """Decode G.711 A-law codes to a new numpy int16 array (see ``ulaw_decode_array``)."""
    return np.frombuffer(alaw_decode(codes), dtype=np.int16).copy()


@overload
def ulaw_to_alaw(codes: Buffer, out: None = None) -> bytes: ...
@overload
def ulaw_to_alaw(codes: Buffer, out: Buffer) -> int: ...
def ulaw_to_alaw(codes: Buffer, out: Optional[Buffer] = None) -> Union[bytes, int]:
    """Transcode mu-law codes to A-law (tandem: G.711 mu-law decoder, then A-law encoder).

    Args:
        codes: buffer of 8-bit mu-law codes.
        out: optional writable byte buffer of at least ``len(codes)`` bytes.

    Returns:
        ``bytes`` of A-law codes, or the number of bytes written when ``out`` is given.

    Raises:
        TypeError: not a buffer, items wider than one byte, read-only or mistyped ``out``.
        ValueError: non-contiguous buffer, ``out`` too small or overlapping the input.
    """
    return _run(codes, out, _U2A, False)


@overload
def alaw_to_ulaw(codes: Buffer, out: None = None) -> bytes: ...
@overload
def alaw_to_ulaw(codes: Buffer, out: Buffer) -> int: ...
def alaw_to_ulaw(codes: Buffer, out: Optional[Buffer] = None) -> Union[bytes, int]:
    """Transcode A-law codes to mu-law (tandem: G.711 A-law decoder, then mu-law encoder).

    Args:
        codes: buffer of 8-bit A-law codes.
        out: optional writable byte buffer of at least ``len(codes)`` bytes.

    Returns:
        ``bytes`` of mu-law codes, or the number of bytes written when ``out`` is given.

    Raises:
        TypeError: not a buffer, items wider than one byte, read-only or mistyped ``out``.
        ValueError: non-contiguous buffer, ``out`` too small or overlapping the input.
    """
    return _run(codes, out, _A2U, False)


def _sample_arg(sample: object) -> int:
    if not isinstance(sample, int) or isinstance(sample, bool):
        raise TypeError(f"sample must be an int, not {type(sample).__name__}")
    if not -32768 <= sample <= 32767:
        raise ValueError(f"sample {sample} is outside the int16 range -32768..32767")
    return sample & 0xFFFF


def _code_arg(code: object) -> int:
    if not isinstance(code, int) or isinstance(code, bool):
        raise TypeError(f"code must be an int, not {type(code).__name__}")
    if not 0 <= code <= 255:
        raise ValueError(f"code {code} is outside the range 0..255")
    return code


def ulaw_encode_sample(sample: int, *, audioop_compatible: bool = False) -> int:
    """Encode one int16 sample (-32768..32767) to a mu-law code (0..255).

    Raises:
        TypeError: ``sample`` is not an int.
        ValueError: ``sample`` is outside the int16 range.
    """
    table = _ULAW_ENC_AUDIOOP if audioop_compatible else _ULAW_ENC
    return int(table[_sample_arg(sample)])


def alaw_encode_sample(sample: int) -> int:
    """Encode one int16 sample (-32768..32767) to an A-law code (0..255).

    Raises:
        TypeError: ``sample`` is not an int.
        ValueError: ``sample`` is outside the int16 range.
    """
    return int(_ALAW_ENC[_sample_arg(sample)])


def ulaw_decode_sample(code: int) -> int:
    """Decode one mu-law code (0..255) to an int sample.

    Raises:
        TypeError: ``code`` is not an int.
        ValueError: ``code`` is outside 0..255.
    """
    return int(_ULAW_DEC[_code_arg(code)])


def alaw_decode_sample(code: int) -> int:
    """Decode one A-law code (0..255) to an int sample.

    Raises:
        TypeError: ``code`` is not an int.
        ValueError: ``code`` is outside 0..255.
    """
    return int(_ALAW_DEC[_code_arg(code)])
