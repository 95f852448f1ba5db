# cython: language_level=3, embedsignature=True
"""Compiled G.711 codec (ITU-T G.711 mu-law / A-law), exposed as ``pyvoip_fast.codecs._g711``.

Use it through :mod:`pyvoip_fast.codecs.g711`, which documents the public API; ``pyvoip_fast.codecs._g711_py`` is the
pure-Python twin with the same functions, exceptions and messages.
"""
# Strategy
# --------
# * Bit-exact with the g711 module of the ITU-T G.191 Software Tools Library (STL): alaw_compress,
#   alaw_expand, ulaw_compress, ulaw_expand (ITU-T G.711 Tables 1a/1b (A-law) and 2a/2b (mu-law)).
#   The mu-law encoder maps a negative sample through its one's complement (~x), as the STL does; the
#   optional ``audioop_compatible`` mode negates the 14-bit value instead, as Sun's g711.c (stdlib audioop)
#   does. Transcoding (ulaw_to_alaw / alaw_to_ulaw) is the tandem decode -> encode through these rules.
# * Encoders are branch-free arithmetic. The segment (chord) number of a magnitude is the position of its
#   leading one; converting the integer magnitude to an IEEE-754 float puts that position in the exponent
#   field and the next four bits (the step within the segment) at the top of the fraction field, so
#   ``float_bits(m) >> 19`` is ``(127 + bitlen(m) - 1) << 4 | step`` -- segment and step in one shift, with
#   no loop and no branch. Measured against a 64K-entry uint8 table indexed by the uint16 sample (see
#   benchmarks/bench_g711.py and the README): the arithmetic form vectorises and is about 2x faster on long
#   buffers, the table is a gather and cannot. On x86-64 with AVX2 (detected at import) a hand-vectorised
#   loop codes 32 samples per iteration; elsewhere the scalar loop is left to the compiler's vectoriser.
# * Decoders and transcoders are 256-entry tables built at import from the G.711 decoder rules.
# * Inputs: any C-contiguous buffer; PCM is native-endian int16 (buffer format 'h') or raw bytes (format
#   'B'/'b'/'c', even length); codes are 1-byte items. ``bytes`` takes a fast path without buffer
#   acquisition. The result is allocated once (PyBytes_FromStringAndSize(NULL, n)) and filled in place, or
#   written into a caller's writable ``out`` buffer without allocating (the call then returns the number of
#   bytes written). Every length is checked before any byte is read or written; unaligned buffers are read
#   and written through memcpy / unaligned vector loads.
# * The GIL is released only for buffers of at least ``GIL_RELEASE_THRESHOLD`` (16,384) samples. Measured on
#   x86-64/Linux, one release + re-acquire costs ~110-120 ns even uncontended (a 4,096-sample encode took
#   ~120 ns longer than a 4,064-sample one), while the AVX2 encoder codes ~8 samples per ns: below ~16K
#   samples (~2 us of work) the release would add more than ~5 % to the call, and a thread waiting for the
#   GIL needs longer than that just to be woken up, so it could not use the window anyway.

import logging
import sys

from cpython.buffer cimport (
    PyBUF_FORMAT,
    PyBUF_STRIDES,
    PyBuffer_IsContiguous,
    PyBuffer_Release,
    PyObject_CheckBuffer,
    PyObject_GetBuffer,
)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.stdint cimport int16_t, int32_t, uint8_t, uintptr_t
from libc.string cimport memcpy

cimport numpy as cnp

cnp.import_array()

logger = logging.getLogger(__name__)

cdef extern from "Python.h":
    # declared here to pass NULL (an uninitialised result filled in place)
    bytes PyBytes_FromStringAndSize(const char *v, Py_ssize_t length)

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>

    /* ---- scalar rules (ITU-T G.711; bit-exact with the G.191 STL g711 module) ---------------------- */

    static inline uint32_t g711_float_bits(int32_t m) {
        float f = (float)m;
        uint32_t b;
        memcpy(&b, &f, sizeof b);
        return b;
    }

    /* mu-law: 14-bit magnitude (one's complement for negatives), + bias 33, clipped to 8191;
       (float_bits >> 19) = (127 + 5 + seg) << 4 | step = 2112 + (seg << 4 | step); the code is the
       bitwise inverse of (seg << 4 | step), i.e. 127 - (...) = 2239 - (float_bits >> 19), plus the sign
       bit 0x80 for non-negative samples. */
    static inline uint8_t g711_ulaw1(int32_t x) {
        int32_t s = x >> 31;
        int32_t m = ((x ^ s) >> 2) + 33;
        if (m > 8191) m = 8191;
        return (uint8_t)((2239 - (int32_t)(g711_float_bits(m) >> 19)) | (~s & 0x80));
    }

    /* audioop (Sun g711.c) variant: the 14-bit value (x >> 2) is negated, not complemented. */
    static inline uint8_t g711_ulaw1_audioop(int32_t x) {
        int32_t s = x >> 31;
        int32_t q = x >> 2;
        int32_t m = ((q ^ s) - s) + 33;
        if (m > 8191) m = 8191;
        return (uint8_t)((2239 - (int32_t)(g711_float_bits(m) >> 19)) | (~s & 0x80));
    }

    /* A-law: 12-bit magnitude (one's complement for negatives); segment 0 is linear (code = m for
       m < 16); above it (float_bits >> 19) = (127 + 3 + seg) << 4 | step = 2080 + (seg << 4 | step).
       Sign bit 0x80 for non-negative samples, then the even bits are inverted (XOR 0x55). */
    static inline uint8_t g711_alaw1(int32_t x) {
        int32_t s = x >> 31;
        int32_t m = (x ^ s) >> 4;
        int32_t w = m < 16 ? m : (int32_t)(g711_float_bits(m) >> 19) - 2080;
        return (uint8_t)((w | (~s & 0x80)) ^ 0x55);
    }

    static inline int16_t g711_ulaw_expand1(uint8_t c) {
        int32_t u = (~c) & 0x7F;
        int32_t seg = u >> 4, step = u & 0x0F;
        int32_t mag = (((step << 3) + 0x84) << seg) - 0x84;
        return (int16_t)((c & 0x80) ? mag : -mag);
    }

    static inline int16_t g711_alaw_expand1(uint8_t c) {
        int32_t a = c ^ 0x55;
        int32_t seg = (a >> 4) & 0x07, step = a & 0x0F;
        int32_t mag = seg == 0 ? (step << 4) + 8 : ((step << 4) + 0x108) << (seg - 1);
        return (int16_t)((a & 0x80) ? mag : -mag);
    }

    /* ---- tables ---------------------------------------------------------------------------------- */

    static int16_t g711_ulaw_table[256];
    static int16_t g711_alaw_table[256];
    static uint8_t g711_u2a_table[256];
    static uint8_t g711_a2u_table[256];
    static int g711_have_avx2 = 0;

    /* ---- loops ----------------------------------------------------------------------------------- */

    #define G711_ENC_LOOP(FN)                                                \\
        for (Py_ssize_t i = 0; i < n; i++) {                                 \\
            int16_t x;                                                       \\
            memcpy(&x, in + 2 * i, 2);                                       \\
            out[i] = FN((int32_t)x);                                         \\
        }

    static void g711_ulaw_enc_scalar(const char *restrict in, uint8_t *restrict out, Py_ssize_t n) {
        G711_ENC_LOOP(g711_ulaw1)
    }
    static void g711_ulaw_enc_audioop_scalar(const char *restrict in, uint8_t *restrict out, Py_ssize_t n) {
        G711_ENC_LOOP(g711_ulaw1_audioop)
    }
    static void g711_alaw_enc_scalar(const char *restrict in, uint8_t *restrict out, Py_ssize_t n) {
        G711_ENC_LOOP(g711_alaw1)
    }

    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    #define G711_HAVE_X86_SIMD 1
    #include <immintrin.h>

    /* 16 samples -> 16 codes in int16 lanes; mode 0 = mu-law STL, 1 = mu-law audioop, 2 = A-law.
       The magnitudes are widened to 32-bit lanes without shuffles: the even samples by masking the low
       half of each 32-bit lane, the odd ones by shifting the high half down; after the int->float
       conversion the (exponent | step) field of the even samples is shifted into the low half and that of
       the odd samples into the high half, and one 16-bit blend puts every sample back in its own lane. */
    __attribute__((target("avx2")))
    static inline __attribute__((always_inline)) __m256i g711_enc16_avx2(const char *p, int mode) {
        __m256i x = _mm256_loadu_si256((const __m256i *)p);
        __m256i s = _mm256_srai_epi16(x, 15);
        __m256i m, v, fe, fo;
        if (mode == 2) {
            m = _mm256_srli_epi16(_mm256_xor_si256(x, s), 4);
        } else if (mode == 1) {
            m = _mm256_add_epi16(_mm256_abs_epi16(_mm256_srai_epi16(x, 2)), _mm256_set1_epi16(33));
        } else {
            m = _mm256_add_epi16(_mm256_srli_epi16(_mm256_xor_si256(x, s), 2), _mm256_set1_epi16(33));
        }
        fe = _mm256_castps_si256(_mm256_cvtepi32_ps(_mm256_and_si256(m, _mm256_set1_epi32(0xFFFF))));
        fo = _mm256_castps_si256(_mm256_cvtepi32_ps(_mm256_srli_epi32(m, 16)));
        /* v = float_bits >> 19 per sample (12 significant bits: the sign of a positive float is 0) */
        v = _mm256_blend_epi16(_mm256_srli_epi32(fe, 19), _mm256_srli_epi32(fo, 3), 0xAA);
        if (mode == 2) {
            /* segments 0 and 1 are linear (code = m for m < 32); above, the float field minus 2080. For
               m < 16 the float field gives a value <= m (or a negative one), for 16 <= m < 32 exactly m,
               for m >= 32 the code, which is >= 32: so the code is max(field - 2080, min(m, 31)).
               The sign bit 0x80 marks a non-negative sample; the XOR 0x55 is applied after packing. */
            __m256i w = _mm256_max_epi16(_mm256_sub_epi16(v, _mm256_set1_epi16(2080)),
                                         _mm256_min_epi16(m, _mm256_set1_epi16(31)));
            return _mm256_or_si256(w, _mm256_andnot_si256(s, _mm256_set1_epi16(0x80)));
        }
        /* mu-law: the clip of m to 8191 is folded into a saturating subtract: a magnitude of 8192 or more
           has a field >= 2240, and 2239 - field saturates to code 0, the code of 8191 (segment 7, step 15). */
        return _mm256_or_si256(_mm256_subs_epu16(_mm256_set1_epi16(2239), v),
                               _mm256_andnot_si256(s, _mm256_set1_epi16(0x80)));
    }

    /* one loop per mode, so that each is compiled with its mode a constant (no branch in the loop) */
    #define G711_AVX2_LOOP(NAME, MODE, TAIL)                                                   \
        __attribute__((target("avx2")))                                                     \
        static void NAME(const char *restrict in, uint8_t *restrict out, Py_ssize_t n) {   \
            Py_ssize_t i = 0;                                                               \
            for (; n - i >= 32; i += 32) {                                                  \
                __m256i a = g711_enc16_avx2(in + 2 * i, MODE);                              \
                __m256i b = g711_enc16_avx2(in + 2 * i + 32, MODE);                         \
                __m256i r = _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xD8);      \
                if (MODE == 2) r = _mm256_xor_si256(r, _mm256_set1_epi8(0x55));             \
                _mm256_storeu_si256((__m256i *)(out + i), r);                               \
            }                                                                               \
            TAIL(in + 2 * i, out + i, n - i);                                               \
        }
    G711_AVX2_LOOP(g711_ulaw_enc_avx2, 0, g711_ulaw_enc_scalar)
    G711_AVX2_LOOP(g711_ulaw_enc_audioop_avx2, 1, g711_ulaw_enc_audioop_scalar)
    G711_AVX2_LOOP(g711_alaw_enc_avx2, 2, g711_alaw_enc_scalar)

    static void g711_enc_avx2(const char *restrict in, uint8_t *restrict out, Py_ssize_t n, int mode) {
        if (mode == 2) g711_alaw_enc_avx2(in, out, n);
        else if (mode == 1) g711_ulaw_enc_audioop_avx2(in, out, n);
        else g711_ulaw_enc_avx2(in, out, n);
    }
    #endif

    /* mode 0 = mu-law (STL), 1 = mu-law (audioop-compatible), 2 = A-law */
    static void g711_encode(const char *restrict in, uint8_t *restrict out, Py_ssize_t n, int mode) {
    #ifdef G711_HAVE_X86_SIMD
        if (g711_have_avx2) { g711_enc_avx2(in, out, n, mode); return; }
    #endif
        if (mode == 2) g711_alaw_enc_scalar(in, out, n);
        else if (mode == 1) g711_ulaw_enc_audioop_scalar(in, out, n);
        else g711_ulaw_enc_scalar(in, out, n);
    }

    static void g711_expand(const uint8_t *restrict in, char *restrict out, Py_ssize_t n, int alaw) {
        const int16_t *t = alaw ? g711_alaw_table : g711_ulaw_table;
        for (Py_ssize_t i = 0; i < n; i++) {
            int16_t v = t[in[i]];
            memcpy(out + 2 * i, &v, 2);
        }
    }

    static void g711_transcode(const uint8_t *restrict in, uint8_t *restrict out, Py_ssize_t n, int a2u) {
        const uint8_t *t = a2u ? g711_a2u_table : g711_u2a_table;
        for (Py_ssize_t i = 0; i < n; i++) out[i] = t[in[i]];
    }

    static void g711_init(void) {
        for (int c = 0; c < 256; c++) {
            g711_ulaw_table[c] = g711_ulaw_expand1((uint8_t)c);
            g711_alaw_table[c] = g711_alaw_expand1((uint8_t)c);
        }
        for (int c = 0; c < 256; c++) {
            g711_u2a_table[c] = g711_alaw1(g711_ulaw_table[c]);
            g711_a2u_table[c] = g711_ulaw1(g711_alaw_table[c]);
        }
    #ifdef G711_HAVE_X86_SIMD
        __builtin_cpu_init();
        g711_have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    #endif
    }
    """
    uint8_t g711_ulaw1(int32_t x) nogil
    uint8_t g711_ulaw1_audioop(int32_t x) nogil
    uint8_t g711_alaw1(int32_t x) nogil
    int16_t g711_ulaw_table[256]
    int16_t g711_alaw_table[256]
    uint8_t g711_u2a_table[256]
    uint8_t g711_a2u_table[256]
    int g711_have_avx2
    void g711_encode(const char *inp, uint8_t *out, Py_ssize_t n, int mode) noexcept nogil
    void g711_expand(const uint8_t *inp, char *out, Py_ssize_t n, int alaw) noexcept nogil
    void g711_transcode(const uint8_t *inp, uint8_t *out, Py_ssize_t n, int a2u) noexcept nogil
    void g711_init() noexcept

g711_init()

#: buffers of at least this many samples are coded with the GIL released
GIL_RELEASE_THRESHOLD = 16384
cdef Py_ssize_t _GIL_THRESHOLD = GIL_RELEASE_THRESHOLD

#: which inner loop this build and CPU use for encoding ("avx2" or "scalar")
ENCODER_KERNEL = "avx2" if g711_have_avx2 else "scalar"

cdef enum:
    OP_ULAW_ENC = 0
    OP_ULAW_ENC_AUDIOOP = 1
    OP_ALAW_ENC = 2
    OP_ULAW_DEC = 3
    OP_ALAW_DEC = 4
    OP_U2A = 5
    OP_A2U = 6

cdef enum:
    KIND_PCM = 0      # native-endian int16 or raw bytes
    KIND_CODES = 1    # 1-byte items
    KIND_OUT_CODES = 2
    KIND_OUT_PCM = 3

cdef bint _NATIVE_LITTLE = sys.byteorder == "little"


cdef inline void _kernel(int op, const char *src, char *dst, Py_ssize_t n) noexcept nogil:
    if op <= OP_ALAW_ENC:
        g711_encode(src, <uint8_t *>dst, n, op)
    elif op == OP_ULAW_DEC:
        g711_expand(<const uint8_t *>src, dst, n, 0)
    elif op == OP_ALAW_DEC:
        g711_expand(<const uint8_t *>src, dst, n, 1)
    elif op == OP_U2A:
        g711_transcode(<const uint8_t *>src, <uint8_t *>dst, n, 0)
    else:
        g711_transcode(<const uint8_t *>src, <uint8_t *>dst, n, 1)


cdef void encode_frame(int mode, const char *pcm, uint8_t *out, Py_ssize_t n) noexcept nogil:
    """Encode ``n`` native int16 samples at ``pcm`` into ``n`` codes at ``out`` (``ENCODE_ULAW`` or ``ENCODE_ALAW``,
    pyvoip_fast/codecs/_g711.pxd): what ``ulaw_encode`` / ``alaw_encode`` compute, for other compiled modules. The
    caller guarantees both spans."""
    g711_encode(pcm, out, n, OP_ALAW_ENC if mode == ENCODE_ALAW else OP_ULAW_ENC)


cdef inline void _code(int op, const char *src, char *dst, Py_ssize_t n):
    if n >= _GIL_THRESHOLD:
        with nogil:
            _kernel(op, src, dst, n)
    else:
        _kernel(op, src, dst, n)


cdef int _format_ok(const char *fmt, Py_ssize_t itemsize, bint int16_ok):
    """1 when the struct-module format names raw bytes, or native int16 when ``int16_ok``."""
    if fmt == NULL:
        return itemsize == 1
    if fmt[0] == b'@' or fmt[0] == b'=':
        fmt += 1
    elif fmt[0] == b'<':
        if not _NATIVE_LITTLE:
            return 0
        fmt += 1
    elif fmt[0] == b'>' or fmt[0] == b'!':
        if _NATIVE_LITTLE:
            return 0
        fmt += 1
    if fmt[0] == 0 or fmt[1] != 0:
        return 0
    if fmt[0] == b'B' or fmt[0] == b'b' or fmt[0] == b'c':
        return itemsize == 1
    if fmt[0] == b'h':
        return int16_ok and itemsize == 2
    return 0


cdef str _name(int kind):
    return "pcm" if kind == KIND_PCM else ("codes" if kind == KIND_CODES else "out")


cdef object _format_error(int kind, str fmt):
    if kind == KIND_PCM:
        return TypeError(f"pcm must hold native-endian int16 samples or raw bytes, not buffer format {fmt!r}")
    if kind == KIND_CODES:
        return TypeError(f"codes must hold 8-bit codes (bytes or a uint8 array), not buffer format {fmt!r}")
    if kind == KIND_OUT_CODES:
        return TypeError(f"out must be a byte buffer (bytearray or uint8 array), not buffer format {fmt!r}")
    return TypeError(f"out must be a native-endian int16 or byte buffer, not buffer format {fmt!r}")


cdef int _acquire(object obj, Py_buffer *view, int kind) except -1:
    """Get a C-contiguous buffer of the right item type from ``obj`` (released by the caller)."""
    cdef bint writable = kind >= KIND_OUT_CODES
    if not PyObject_CheckBuffer(obj):
        if writable:
            raise TypeError(f"out must be a writable bytes-like object, not {type(obj).__name__}")
        raise TypeError(
            f"{_name(kind)} must be a bytes-like object (bytes, bytearray, memoryview, array, numpy array), "
            f"not {type(obj).__name__}"
        )
    PyObject_GetBuffer(obj, view, PyBUF_FORMAT | PyBUF_STRIDES)
    if writable and view.readonly:
        PyBuffer_Release(view)
        raise TypeError("out must be writable, not a read-only buffer")
    if not _format_ok(view.format, view.itemsize, kind == KIND_PCM or kind == KIND_OUT_PCM):
        fmt = (<bytes>view.format).decode("ascii", "replace") if view.format != NULL else "B"
        PyBuffer_Release(view)
        raise _format_error(kind, fmt)
    if not PyBuffer_IsContiguous(view, b'C'):
        PyBuffer_Release(view)
        raise ValueError(f"{_name(kind)} must be C-contiguous")
    return 0


cdef object _run(int op, object src_obj, object out):
    cdef int in_kind = KIND_PCM if op <= OP_ALAW_ENC else KIND_CODES
    cdef bint pcm_out = op == OP_ULAW_DEC or op == OP_ALAW_DEC
    cdef Py_buffer vin
    cdef Py_buffer vout
    cdef bint have_in = False
    cdef const char *src
    cdef Py_ssize_t nbytes, n, need
    cdef bytes result
    cdef uintptr_t a0, a1, b0, b1

    if PyBytes_CheckExact(src_obj):
        src = PyBytes_AS_STRING(src_obj)
        nbytes = PyBytes_GET_SIZE(src_obj)
    else:
        _acquire(src_obj, &vin, in_kind)
        have_in = True
        src = <const char *>vin.buf
        nbytes = vin.len
    try:
        if in_kind == KIND_PCM:
            if nbytes & 1:
                raise ValueError(f"pcm must have an even number of bytes (2 per int16 sample), got {nbytes}")
            n = nbytes >> 1
        else:
            n = nbytes
        need = 2 * n if pcm_out else n
        if out is None:
            result = PyBytes_FromStringAndSize(NULL, need)
            if n:
                _code(op, src, PyBytes_AS_STRING(result), n)
            return result
        _acquire(out, &vout, KIND_OUT_PCM if pcm_out else KIND_OUT_CODES)
        try:
            if vout.len < need:
                raise ValueError(f"out is too small: {need} bytes needed, {vout.len} available")
            if n:
                a0 = <uintptr_t>src
                a1 = a0 + <uintptr_t>nbytes
                b0 = <uintptr_t>vout.buf
                b1 = b0 + <uintptr_t>need
                if a0 < b1 and b0 < a1:
                    raise ValueError("out must not overlap the input buffer")
                _code(op, src, <char *>vout.buf, n)
        finally:
            PyBuffer_Release(&vout)
        return need
    finally:
        if have_in:
            PyBuffer_Release(&vin)


def ulaw_encode(pcm, out=None, *, bint audioop_compatible=False):
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
    return _run(OP_ULAW_ENC_AUDIOOP if audioop_compatible else OP_ULAW_ENC, pcm, out)


def alaw_encode(pcm, out=None):
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
    return _run(OP_ALAW_ENC, pcm, out)


def ulaw_decode(codes, out=None):
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
    return _run(OP_ULAW_DEC, codes, out)


def alaw_decode(codes, out=None):
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
    return _run(OP_ALAW_DEC, codes, out)


cdef object _decode_array(int op, object codes):
    """Codes to a new native int16 numpy array (the checks of ``_run`` for the input)."""
    cdef Py_buffer vin
    cdef cnp.npy_intp n
    cdef cnp.ndarray out
    if PyBytes_CheckExact(codes):
        n = PyBytes_GET_SIZE(codes)
        out = cnp.PyArray_EMPTY(1, &n, cnp.NPY_INT16, 0)
        if n:
            _code(op, PyBytes_AS_STRING(codes), <char *>cnp.PyArray_DATA(out), n)
        return out
    _acquire(codes, &vin, KIND_CODES)
    try:
        n = vin.len
        out = cnp.PyArray_EMPTY(1, &n, cnp.NPY_INT16, 0)
        if n:
            _code(op, <const char *>vin.buf, <char *>cnp.PyArray_DATA(out), n)
        return out
    finally:
        PyBuffer_Release(&vin)


def ulaw_decode_array(codes):
    """Decode G.711 mu-law codes to a new numpy int16 array (native-endian, writable, one sample per code): what
    ``ulaw_decode`` gives, as the array a media path plays, without the bytes in between.

    Raises:
        TypeError, ValueError: as ``ulaw_decode`` for ``codes``.
    """
    return _decode_array(OP_ULAW_DEC, codes)


def alaw_decode_array(codes):
    """Decode G.711 A-law codes to a new numpy int16 array (see ``ulaw_decode_array``)."""
    return _decode_array(OP_ALAW_DEC, codes)


def ulaw_to_alaw(codes, out=None):
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
    return _run(OP_U2A, codes, out)


def alaw_to_ulaw(codes, out=None):
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
    return _run(OP_A2U, codes, out)


cdef int32_t _sample_arg(object sample) except? -1:
    if not isinstance(sample, int) or isinstance(sample, bool):
        raise TypeError(f"sample must be an int, not {type(sample).__name__}")
    if not -32768 <= sample <= 32767:
        raise ValueError(f"sample {sample} is outside the int16 range -32768..32767")
    return <int32_t>sample


cdef int _code_arg(object code) except -1:
    if not isinstance(code, int) or isinstance(code, bool):
        raise TypeError(f"code must be an int, not {type(code).__name__}")
    if not 0 <= code <= 255:
        raise ValueError(f"code {code} is outside the range 0..255")
    return <int>code


def ulaw_encode_sample(sample, *, bint audioop_compatible=False):
    """Encode one int16 sample (-32768..32767) to a mu-law code (0..255).

    Raises:
        TypeError: ``sample`` is not an int.
        ValueError: ``sample`` is outside the int16 range.
    """
    cdef int32_t x = _sample_arg(sample)
    return g711_ulaw1_audioop(x) if audioop_compatible else g711_ulaw1(x)


def alaw_encode_sample(sample):
    """Encode one int16 sample (-32768..32767) to an A-law code (0..255).

    Raises:
        TypeError: ``sample`` is not an int.
        ValueError: ``sample`` is outside the int16 range.
    """
    return g711_alaw1(_sample_arg(sample))


def ulaw_decode_sample(code):
    """Decode one mu-law code (0..255) to an int sample.

    Raises:
        TypeError: ``code`` is not an int.
        ValueError: ``code`` is outside 0..255.
    """
    return g711_ulaw_table[_code_arg(code)]


def alaw_decode_sample(code):
    """Decode one A-law code (0..255) to an int sample.

    Raises:
        TypeError: ``code`` is not an int.
        ValueError: ``code`` is outside 0..255.
    """
    return g711_alaw_table[_code_arg(code)]
