"""Pure-Python twin of the compiled G.722 codec (``pyvoip_fast.codecs._g722``): same API, errors and messages.

Use it through :mod:`pyvoip_fast.codecs.g722`. It is the fallback where no compiler was available and the
oracle the parity tests hold the compiled module to. It is slow (about 15 microseconds per sample pair).
"""

# Strategy
# --------
# * ITU-T G.722 sub-band ADPCM, bit-exact with the G.722 module of the ITU-T G.191 Software Tools Library.
#   The adaptation is written the way the reference computes it: every add, subtract, shift and product of
#   16-bit words goes through ``_sat`` / ``_mult`` exactly where the reference's basic operators saturate. The
#   compiled module instead drops the clamps that can never act and rewrites some steps algebraically; holding
#   the two against each other on arbitrary inputs (tests/codecs/test_g722.py) checks each of those shortcuts.
# * The QMFs, which hold no adaptive state, are numpy correlations over the whole call's samples with the
#   22 samples (encoder) or 11 sub-band pairs (decoder) of history in front; the ADPCM loops are plain Python.
# * Same buffer contract and messages as the compiled module (and as ``_g711``). An odd PCM sample count
#   leaves the last sample held for the next call; ``flush()`` codes it with a zero sample.

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, List, NoReturn, Optional, Tuple, Union, overload

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Buffer

logger = logging.getLogger(__name__)

__all__ = ["Encoder", "Decoder", "GIL_RELEASE_THRESHOLD", "BITRATES", "KERNEL"]

#: calls on buffers of at least this many PCM samples release the GIL in the compiled module (kept for parity)
GIL_RELEASE_THRESHOLD = 2048

#: which inner loops this implementation uses
KERNEL = "python"

#: the bit rates of ITU-T G.722 modes 1, 2 and 3
BITRATES = (64000, 56000, 48000)

_NATIVE_LITTLE = sys.byteorder == "little"
_BYTE_FORMATS = ("B", "b", "c")

# ---------------------------------------------------------------------------------------------- G.722 data

#: QMF coefficients h0..h23
_H = (3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876, 3876, 951, -805, -210, 362, 32, -156, 12, 53,
      -11, -11, 3)
#: decision levels of the 6-bit quantiser (intervals 0..30), and output levels of the 4-, 5- and 6-bit inverse
#: quantisers; the reference scales all of them by 8
_Q6 = (0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121,
       1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 3200)
_OQ4 = (0, 150, 323, 530, 786, 1121, 1612, 2557)
_OQ5 = (0, 35, 110, 190, 276, 370, 473, 587, 714, 858, 1023, 1219, 1458, 1765, 2195, 2919)
_OQ6 = (0, 17, 54, 91, 130, 170, 211, 254, 300, 347, 396, 447, 501, 558, 618, 682, 750, 822, 899, 982, 1072,
        1170, 1279, 1399, 1535, 1689, 1873, 2088, 2376, 2738, 3101)
#: log scale factor increments of the low band (by 4-bit magnitude index), the high band (by magnitude 1, 2)
_WL = (-60, -30, 58, 172, 334, 538, 1198, 3042)
_WH_BY_MAG = (0, -214, 798)
_OQ2 = (0, 202, 926)
#: ILA: the antilog table of the scale factor adaptation
_ILA = (
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6,
    7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11, 12, 12, 12, 13, 13, 13, 13,
    14, 14, 15, 15, 15, 16, 16, 16, 17, 17, 18, 18, 18, 19, 19, 20, 20, 21, 21, 22, 22, 23, 23, 24, 24, 25,
    25, 26, 27, 27, 28, 28, 29, 30, 31, 31, 32, 33, 33, 34, 35, 36, 37, 37, 38, 39, 40, 41, 42, 43,
    44, 45, 46, 47, 48, 49, 50, 51, 52, 54, 55, 56, 57, 58, 60, 61, 63, 64, 65, 67, 68, 70, 71, 73,
    75, 76, 78, 80, 82, 83, 85, 87, 89, 91, 93, 95, 97, 99, 102, 104, 106, 109, 111, 113, 116, 118, 121, 124,
    127, 129, 132, 135, 138, 141, 144, 147, 151, 154, 157, 161, 165, 168, 172, 176,
    180, 184, 188, 192, 196, 200, 205, 209, 214, 219, 223, 228, 233, 238, 244, 249,
    255, 260, 266, 272, 278, 284, 290, 296, 303, 310, 316, 323, 331, 338, 345, 353,
    361, 369, 377, 385, 393, 402, 411, 420, 429, 439, 448, 458, 468, 478, 489, 500,
    511, 522, 533, 545, 557, 569, 582, 594, 607, 621, 634, 648, 663, 677, 692, 707,
    723, 739, 755, 771, 788, 806, 823, 841, 860, 879, 898, 918, 938, 958, 979, 1001,
    1023, 1045, 1068, 1092, 1115, 1140, 1165, 1190, 1216, 1243, 1270, 1298, 1327, 1356, 1386, 1416,
    1447, 1479, 1511, 1544, 1578, 1613, 1648, 1684, 1721, 1759, 1797, 1837, 1877, 1918, 1960, 2003,
    2047, 2092, 2138, 2185, 2232, 2281, 2331, 2382, 2434, 2488, 2542, 2598, 2655, 2713, 2773, 2833,
    2895, 2959, 3024, 3090, 3157, 3227, 3297, 3370, 3443, 3519, 3596, 3675, 3755, 3837, 3921, 4007,
    4095,
)


def _code_tables() -> Tuple[List[Tuple[int, int]], List[Tuple[int, int]], List[Tuple[int, int]], List[int],
                            List[int]]:
    """(negative, magnitude index) of each code for the 4-, 5- and 6-bit inverse quantisers (ITU-T G.722
    Tables 6 and 7, as the reference's tables give them, including the codes the encoder never emits), and
    the 6-bit code of each quantiser interval 1..30 for a positive and a negative error."""
    four = []
    for c in range(16):
        if c in (0, 15):
            four.append((0, 0))
        else:
            four.append((1, 8 - c) if c < 8 else (0, 15 - c))
    five = []
    for c in range(32):
        if c < 2 or c == 31:
            five.append((1, 1))
        else:
            five.append((1, 17 - c) if c < 16 else (0, 31 - c))
    six = []
    for c in range(64):
        if c < 4:
            six.append((1, 1))
        elif c < 32:
            six.append((1, 34 - c))
        elif c < 62:
            six.append((0, 62 - c))
        else:
            six.append((1, 64 - c))
    positive = [0] + [62 - m for m in range(1, 31)]
    negative = [0] + [64 - m if m <= 2 else 34 - m for m in range(1, 31)]
    return four, five, six, positive, negative


_CODE4, _CODE5, _CODE6, _CODE_POS, _CODE_NEG = _code_tables()

# ------------------------------------------------------------------------ the reference's 16-bit operators


def _sat(x: int) -> int:
    """Saturate to a 16-bit word (add, sub, shl, negate of the reference)."""
    return -32768 if x < -32768 else (32767 if x > 32767 else x)


def _mult(a: int, b: int) -> int:
    """The reference's ``mult``: (a * b) >> 15, saturated."""
    return _sat((a * b) >> 15)


class _Band:
    """One sub-band's ADPCM state, named as in ITU-T G.722."""

    __slots__ = ("s", "sp", "sz", "nb", "det", "a", "b", "d", "p", "r")

    def __init__(self, det: int) -> None:
        self.s = self.sp = self.sz = self.nb = 0
        self.det = det
        self.a = [0, 0, 0]          # a[1], a[2]: pole section
        self.b = [0] * 7            # b[1..6]: zero section
        self.d = [0] * 7            # d[0..6]: quantised difference signal, newest first
        self.p = [0, 0, 0]          # partially reconstructed signal
        self.r = [0, 0, 0]          # reconstructed signal


def _update(band: _Band, dq: int) -> None:
    """PARREC, RECONS, UPZERO, UPPOL2, UPPOL1, FILTEZ, FILTEP and PREDIC after d(n) = ``dq`` is known."""
    d, b, a, p, r = band.d, band.b, band.a, band.p, band.r
    d[0] = dq
    p[0] = _sat(dq + band.sz)
    r[0] = _sat(band.s + dq)
    # UPZERO
    wd1 = 0 if dq == 0 else 128
    sg0 = dq >> 15
    for i in range(6, 0, -1):
        wd2 = wd1 if (d[i] >> 15) == sg0 else _sat(-wd1)
        b[i] = _sat(wd2 + _mult(b[i], 32640))
        d[i] = d[i - 1]
    # UPPOL2
    sg0, sg1, sg2 = p[0] >> 15, p[1] >> 15, p[2] >> 15
    wd1 = _sat(a[1] * 4)
    wd2 = _sat(-wd1) if sg0 == sg1 else wd1
    wd2 >>= 7
    wd3 = 128 if sg0 == sg2 else -128
    apl2 = _sat(_sat(wd2 + wd3) + _mult(a[2], 32512))
    apl2 = 12288 if apl2 > 12288 else (-12288 if apl2 < -12288 else apl2)
    a[2] = apl2
    # UPPOL1
    apl1 = _sat((192 if sg0 == sg1 else -192) + _mult(a[1], 32640))
    wd3 = _sat(15360 - apl2)
    if apl1 > wd3:
        apl1 = wd3
    elif _sat(apl1 + wd3) < 0:
        apl1 = _sat(-wd3)
    p[2], p[1] = p[1], p[0]
    a[1] = apl1
    # FILTEZ
    sz = 0
    for i in range(6, 0, -1):
        sz = _sat(sz + _mult(_sat(d[i] + d[i]), b[i]))
    # FILTEP
    r[2], r[1] = r[1], r[0]
    sp = _sat(_mult(a[1], _sat(r[1] + r[1])) + _mult(a[2], _sat(r[2] + r[2])))
    # PREDIC
    band.sz, band.sp = sz, sp
    band.s = _sat(sp + sz)


def _scale_low(band: _Band, il: int) -> None:
    """LOGSCL and SCALEL."""
    nb = _sat(_mult(band.nb, 32512) + _WL[_CODE4[il >> 2][1]])
    nb = 0 if nb < 0 else (18432 if nb > 18432 else nb)
    band.nb = nb
    band.det = _sat((_ILA[((nb >> 6) & 511) + 64] + 1) * 4)


def _scale_high(band: _Band, ih: int) -> None:
    """LOGSCH and SCALEH."""
    nb = _sat(_mult(band.nb, 32512) + _WH_BY_MAG[2 - (ih & 1)])
    nb = 0 if nb < 0 else (22528 if nb > 22528 else nb)
    band.nb = nb
    band.det = _sat((_ILA[(nb >> 6) & 511] + 1) * 4)


def _level(table: List[Tuple[int, int]], levels: Tuple[int, ...], code: int, det: int) -> int:
    """An inverse quantiser: det times the signed output level of ``code``."""
    negative, index = table[code]
    wd = levels[index] * 8
    return _mult(det, -wd if negative else wd)


def _invq_high(ih: int, det: int) -> int:
    """INVQAH: the 2-bit inverse quantiser."""
    wd = _OQ2[2 - (ih & 1)] * 8
    return _mult(-wd if ih < 2 else wd, det)


def _encode_pair(lo: _Band, hi: _Band, xl: int, xh: int) -> int:
    """LSBCOD and HSBCOD of one pair of sub-band samples: the 8-bit code (high band in bits 6, 7)."""
    # low band: QUANTL on the one's complement magnitude of the error
    el = _sat(xl - lo.s)
    wd = el if el >= 0 else 32767 - (el & 32767)
    mil = 1
    while mil < 30 and _mult(_Q6[mil] * 8, lo.det) <= wd:
        mil += 1
    il = _CODE_NEG[mil] if el < 0 else _CODE_POS[mil]
    dl = _level(_CODE4, _OQ4, il >> 2, lo.det)
    _scale_low(lo, il)
    _update(lo, dl)
    # high band: QUANTH
    eh = _sat(xh - hi.s)
    wd = eh if eh >= 0 else 32767 - (eh & 32767)
    big = wd >= _mult(564 * 8, hi.det)
    ih = (0 if big else 1) if eh < 0 else (2 if big else 3)
    dh = _invq_high(ih, hi.det)
    _scale_high(hi, ih)
    _update(hi, dh)
    return (ih << 6) | il


def _decode_code(lo: _Band, hi: _Band, code: int, mode: int) -> Tuple[int, int]:
    """LSBDEC and HSBDEC of one code: the low- and high-band reconstructed samples."""
    il, ih = code & 0x3F, code >> 6
    if mode == 0:
        dl = _level(_CODE6, _OQ6, il, lo.det)
    elif mode == 1:
        dl = _level(_CODE5, _OQ5, il >> 1, lo.det)
    else:
        dl = _level(_CODE4, _OQ4, il >> 2, lo.det)
    rl = _sat(lo.s + dl)
    rl = 16383 if rl > 16383 else (-16384 if rl < -16384 else rl)
    dq = _level(_CODE4, _OQ4, il >> 2, lo.det)
    _scale_low(lo, il)
    _update(lo, dq)
    dh = _invq_high(ih, hi.det)
    rh = _sat(hi.s + dh)
    _scale_high(hi, ih)
    _update(hi, dh)
    rh = 16383 if rh > 16383 else (-16384 if rh < -16384 else rh)
    return rl, rh


# QMF taps over a window of 24 values, oldest first (h is symmetric, h[k] == h[23 - k])
_TX_LOW = np.array(_H, dtype=np.int64)
_TX_HIGH = np.array([h if k & 1 else -h for k, h in enumerate(_H)], dtype=np.int64)
_RX_FIRST = np.array([0 if k & 1 else _H[k + 1] for k in range(24)], dtype=np.int64)
_RX_SECOND = np.array([_H[k - 1] if k & 1 else 0 for k in range(24)], dtype=np.int64)


#: the reference limits the transmit QMF's outputs (the sub-band signals) to this range
_TX_LIMIT = (-16384, 16383)


def _window_sums(line: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """sum_k taps[k] * line[2j + k] for every pair j whose window fits (numpy, exact in int64)."""
    return np.correlate(line, taps, mode="valid")[0::2]


# ------------------------------------------------------------------------------------------ buffer contract

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


def _mode_of(bitrate: object) -> int:
    if not isinstance(bitrate, int) or isinstance(bitrate, bool):
        raise TypeError(f"bitrate must be an int, not {type(bitrate).__name__}")
    if bitrate not in BITRATES:
        raise ValueError(f"bitrate must be 64000, 56000 or 48000, not {bitrate}")
    return BITRATES.index(bitrate)


def _checked_out(out: object, kind: int, need: int, src: np.ndarray) -> np.ndarray:
    """The first ``need`` bytes of the caller's ``out``, checked before anything is coded (as the compiled
    module checks it): writable, of the right item type, large enough, not overlapping the input."""
    oview = _acquire(out, kind)
    if oview.nbytes < need:
        raise ValueError(f"out is too small: {need} bytes needed, {oview.nbytes} available")
    dst = np.frombuffer(oview, dtype=np.uint8)[:need]
    if need and src.size and np.may_share_memory(src, dst):
        raise ValueError("out must not overlap the input buffer")
    return dst


# --------------------------------------------------------------------------------------------------- codecs


class Encoder:
    """G.722 encoder: 16 kHz native int16 PCM -> one code byte per two samples (see ``g722.Encoder``)."""

    __slots__ = ("_mode", "_mask", "_lo", "_hi", "_hist", "_held", "_busy")

    def __init__(self, bitrate: int = 64000) -> None:
        """Args:
            bitrate: 64000, 56000 or 48000 bit/s (ITU-T G.722 modes 1, 2, 3). In modes 2 and 3 the one or two
                low bits of each code (the low band's auxiliary-data bits) are zero.

        Raises:
            TypeError: ``bitrate`` is not an int.
            ValueError: ``bitrate`` is not one of the three G.722 rates.
        """
        self._mode = _mode_of(bitrate)
        self._mask = (0xFF, 0xFE, 0xFC)[self._mode]
        self._busy = False
        self._lo = _Band(32)
        self._hi = _Band(8)
        self._hist = np.zeros(22, dtype=np.int64)
        self._held: Optional[int] = None

    @property
    def bitrate(self) -> int:
        """The bit rate the codes are meant for: 64000, 56000 or 48000."""
        return BITRATES[self._mode]

    @property
    def pending(self) -> int:
        """PCM samples held for the next call (0 or 1): the odd sample of the input so far."""
        return 0 if self._held is None else 1

    def __repr__(self) -> str:
        return f"Encoder(bitrate={BITRATES[self._mode]})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("cannot pickle or copy a G.722 Encoder: its state belongs to one stream")

    def _enter(self) -> None:
        if self._busy:
            raise RuntimeError("this Encoder is in use by another thread")

    def reset(self) -> None:
        """Return to the initial state of ITU-T G.722 (and drop a held sample)."""
        self._enter()
        self._lo = _Band(32)
        self._hi = _Band(8)
        self._hist = np.zeros(22, dtype=np.int64)
        self._held = None

    def _code(self, samples: np.ndarray) -> bytes:
        if self._held is not None and samples.size:
            samples = np.concatenate([np.array([self._held], dtype=np.int64), samples])
            self._held = None
        pairs = samples.size >> 1
        if samples.size & 1:
            self._held = int(samples[-1])
        if not pairs:
            return b""
        line = np.concatenate([self._hist, samples[: 2 * pairs]])
        self._hist = line[-22:].copy()
        xl = np.clip(_window_sums(line, _TX_LOW) >> 14, *_TX_LIMIT).tolist()
        xh = np.clip(_window_sums(line, _TX_HIGH) >> 14, *_TX_LIMIT).tolist()
        lo, hi, mask = self._lo, self._hi, self._mask
        self._busy = True
        try:
            codes = bytes(_encode_pair(lo, hi, a, b) & mask for a, b in zip(xl, xh))
        finally:
            self._busy = False
        return codes

    @overload
    def encode(self, pcm: Buffer, out: None = None) -> bytes: ...
    @overload
    def encode(self, pcm: Buffer, out: Buffer) -> int: ...
    def encode(self, pcm: Buffer, out: Optional[Buffer] = None) -> Union[bytes, int]:
        """Encode 16 kHz int16 PCM into G.722 codes, continuing the stream of the previous calls.

        Args:
            pcm: buffer of native-endian int16 samples (format 'h') or their raw bytes (even length). An odd
                sample count leaves the last sample held for the next call (``pending``).
            out: optional writable byte buffer receiving the codes; nothing is allocated then.

        Returns:
            ``bytes`` of ``(pending + samples) // 2`` codes, or the number of bytes written into ``out``.

        Raises:
            TypeError: not a buffer, wrong item type, read-only or mistyped ``out``.
            ValueError: odd byte length, non-contiguous buffer, ``out`` too small or overlapping the input.
            RuntimeError: the encoder is busy in another thread.
        """
        self._enter()
        view = _acquire(pcm, _KIND_PCM)
        nbytes = view.nbytes
        if nbytes & 1:
            raise ValueError(f"pcm must have an even number of bytes (2 per int16 sample), got {nbytes}")
        raw = np.frombuffer(view, dtype=np.uint8)
        samples = raw.view(np.int16)
        if out is None:
            return self._code(samples.astype(np.int64))
        dst = _checked_out(out, _KIND_OUT_CODES, (samples.size + self.pending) >> 1, raw)
        dst[:] = np.frombuffer(self._code(samples.astype(np.int64)), dtype=np.uint8)
        return int(dst.size)

    def flush(self) -> bytes:
        """Code a held odd sample paired with a zero sample (the end of a stream).

        Returns:
            ``bytes`` of one code when a sample was held, else ``b""``.
        """
        self._enter()
        if self._held is None:
            return b""
        return self._code(np.zeros(1, dtype=np.int64))


class Decoder:
    """G.722 decoder: one code byte -> two 16 kHz native-endian int16 samples (see ``g722.Decoder``)."""

    __slots__ = ("_mode", "_lo", "_hi", "_hist", "_busy")

    def __init__(self, bitrate: int = 64000) -> None:
        """Args:
            bitrate: 64000, 56000 or 48000 bit/s (ITU-T G.722 modes 1, 2, 3). In modes 2 and 3 the one or two
                low bits of each code are ignored.

        Raises:
            TypeError: ``bitrate`` is not an int.
            ValueError: ``bitrate`` is not one of the three G.722 rates.
        """
        self._mode = _mode_of(bitrate)
        self._busy = False
        self._lo = _Band(32)
        self._hi = _Band(8)
        self._hist = np.zeros(22, dtype=np.int64)

    @property
    def bitrate(self) -> int:
        """The bit rate the codes are decoded at: 64000, 56000 or 48000."""
        return BITRATES[self._mode]

    def __repr__(self) -> str:
        return f"Decoder(bitrate={BITRATES[self._mode]})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("cannot pickle or copy a G.722 Decoder: its state belongs to one stream")

    def _enter(self) -> None:
        if self._busy:
            raise RuntimeError("this Decoder is in use by another thread")

    def reset(self) -> None:
        """Return to the initial state of ITU-T G.722."""
        self._enter()
        self._lo = _Band(32)
        self._hi = _Band(8)
        self._hist = np.zeros(22, dtype=np.int64)

    def _code(self, codes: np.ndarray) -> bytes:
        n = codes.size
        if not n:
            return b""
        lo, hi, mode = self._lo, self._hi, self._mode
        line = np.empty(22 + 2 * n, dtype=np.int64)
        line[:22] = self._hist
        self._busy = True
        try:
            bands = [_decode_code(lo, hi, c, mode) for c in codes.tolist()]
        finally:
            self._busy = False
        both = np.array(bands, dtype=np.int64).reshape(n, 2)
        line[22::2] = both[:, 0] - both[:, 1]    # receive QMF input: difference and sum of the bands
        line[23::2] = both[:, 0] + both[:, 1]
        self._hist = line[-22:].copy()
        pcm = np.empty(2 * n, dtype=np.int16)
        pcm[0::2] = np.clip(_window_sums(line, _RX_FIRST) >> 11, -32768, 32767)
        pcm[1::2] = np.clip(_window_sums(line, _RX_SECOND) >> 11, -32768, 32767)
        return pcm.tobytes()

    @overload
    def decode(self, codes: Buffer, out: None = None) -> bytes: ...
    @overload
    def decode(self, codes: Buffer, out: Buffer) -> int: ...
    def decode(self, codes: Buffer, out: Optional[Buffer] = None) -> Union[bytes, int]:
        """Decode G.722 codes into 16 kHz native-endian int16 PCM, continuing the stream of earlier calls.

        Args:
            codes: buffer of 8-bit codes (bytes, bytearray, memoryview, uint8 array).
            out: optional writable buffer (int16 or bytes) of at least ``4 * len(codes)`` bytes.

        Returns:
            ``bytes`` of two int16 samples per code, or the number of bytes written into ``out``.

        Raises:
            TypeError: not a buffer, items wider than one byte, read-only or mistyped ``out``.
            ValueError: non-contiguous buffer, ``out`` too small or overlapping the input.
            RuntimeError: the decoder is busy in another thread.
        """
        self._enter()
        view = _acquire(codes, _KIND_CODES)
        raw = np.frombuffer(view, dtype=np.uint8)
        if out is None:
            return self._code(raw)
        dst = _checked_out(out, _KIND_OUT_PCM, 4 * raw.size, raw)
        dst[:] = np.frombuffer(self._code(raw), dtype=np.uint8)
        return int(dst.size)
