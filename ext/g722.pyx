# cython: language_level=3, embedsignature=True
"""Compiled G.722 codec (ITU-T G.722 sub-band ADPCM, 16 kHz PCM, 64/56/48 kbit/s): ``codecs._g722``.

Use it through :mod:`pyvoip_fast.codecs.g722`, which documents the public API; ``pyvoip_fast.codecs._g722_py``
is the pure-Python twin with the same classes, exceptions and messages.
"""
# Strategy
# --------
# * Bit-exact with the G.722 module of the ITU-T G.191 Software Tools Library (its test vectors are the
#   judge, tests/codecs/test_g722.py). The reference computes in 16-bit words with saturating basic
#   operators; here every value lives in a C int32 and is clamped exactly where one of the reference's
#   saturating operations could clamp it. Where a clamp provably never acts it is left out, and the comment
#   next to the code says why (e.g. the zero-section update stays within -32768..32767; the QMF accumulators
#   never leave 32 bits: 24 taps, sum |h| = 12964, |x| <= 32768). Products are ``(a * b) >> 15`` (the
#   reference's ``mult``), whose one saturating case, -32768 * -32768, cannot arise here.
# * ITU-T G.722 blocks map to C functions: ``g722_adapt`` is PARREC, RECONS, UPZERO, UPPOL2, UPPOL1, FILTEZ,
#   FILTEP and PREDIC (shared by both sub-bands and both directions); ``g722_scale_low/high`` are LOGSCL +
#   SCALEL and LOGSCH + SCALEH, with the 353-entry ILA table folded into two step-size tables; and
#   ``g722_quant6`` is QUANTL. The inverse quantisers (INVQAL, INVQBL in modes 1-3, INVQAH) are 64-entry
#   tables of signed levels by code.
# * Every branch of the reference that depends on a signal's sign is written as mask arithmetic
#   (``(x ^ m) - m``), so nothing in the sample loops waits on an unpredictable branch.
# * With SSE2 (every x86-64) the six zero-section coefficients and the six past differences of a sub-band live
#   in one vector register each: UPZERO, the line shift and FILTEZ's six products are a dozen vector
#   instructions instead of ~60 scalar ones, and they free the general registers for the rest of the state of
#   both bands. QUANTL's 29 decision levels are computed and compared in four vectors (unsigned high-half
#   multiply by 2*det, one compare each) and the interval is the lowest set bit of the mask. Without SSE2,
#   plain C loops. FILTEZ adds its six terms exactly, and falls back to the reference's saturating order only
#   when the sum of their magnitudes could leave 16 bits (rare: it needs extreme zero-section coefficients).
# * The QMFs run over blocks of 128 sample pairs kept contiguous with the 22 samples of history before them,
#   so each output is a 24-tap dot product of a plain window (the compiler vectorises it with pmaddwd) and the
#   ADPCM loop between them does nothing else. Both sub-bands run in one loop, so the out-of-order core
#   overlaps their independent recursions.
# * Input contract as in ``_g711``: any C-contiguous buffer; PCM is native-endian int16 (format 'h') or raw
#   bytes of even length; codes are 1-byte items. Results are allocated once and filled in place, or written
#   into a caller's ``out``. Every length is checked before a byte is read; unaligned buffers are read through
#   memcpy.
# * An odd PCM sample count: the last sample is held in the encoder and becomes the first sample of the next
#   pair, so any split of a stream codes exactly as the whole. ``flush()`` codes a held sample with a zero.
# * The GIL is released for buffers of at least ``GIL_RELEASE_THRESHOLD`` PCM samples (~2,000 samples, about
#   30 us of work, against ~0.1 us for a release and re-acquire; a 20 ms frame keeps the GIL). While released,
#   the object is marked busy: another thread calling it meanwhile gets RuntimeError instead of racing on its
#   state.

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

logger = logging.getLogger(__name__)

cdef extern from "Python.h":
    # declared here to pass NULL (an uninitialised result filled in place)
    bytes PyBytes_FromStringAndSize(const char *v, Py_ssize_t length)

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__SSE2__) && defined(__GNUC__) && !defined(G722_NO_SIMD)
    #include <emmintrin.h>
    #define G722_SSE2 1
    #define G722_HAVE_SSE2 1
    #else
    #define G722_HAVE_SSE2 0
    #endif
    #if defined(__GNUC__)
    #define G722_INLINE static inline __attribute__((always_inline))
    #define G722_UNLIKELY(x) __builtin_expect(!!(x), 0)
    #else
    #define G722_INLINE static inline
    #define G722_UNLIKELY(x) (x)
    #endif

    /* ---- data of ITU-T G.722 --------------------------------------------------------------------------- */

    /* QMF coefficients h0..h23 (transmit and receive filters share them; h[k] == h[23 - k]) */
    static const int32_t g722_h[24] = {3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876,
                                       3876, 951, -805, -210, 362, 32, -156, 12, 53, -11, -11, 3};
    /* decision levels of the 6-bit low-band quantiser, intervals 0..29 (the reference scales them by 8) */
    static const int32_t g722_q6[30] = {0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650,
                                        714, 786, 858, 940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980,
                                        2195, 2557, 2919};
    /* output levels of the 4-, 5- and 6-bit inverse quantisers */
    static const int32_t g722_oq4[8] = {0, 150, 323, 530, 786, 1121, 1612, 2557};
    static const int32_t g722_oq5[16] = {0, 35, 110, 190, 276, 370, 473, 587, 714, 858, 1023, 1219, 1458,
                                         1765, 2195, 2919};
    static const int32_t g722_oq6[31] = {0, 17, 54, 91, 130, 170, 211, 254, 300, 347, 396, 447, 501, 558, 618,
                                         682, 750, 822, 899, 982, 1072, 1170, 1279, 1399, 1535, 1689, 1873,
                                         2088, 2376, 2738, 3101};
    /* log scale factor increments: low band by 4-bit magnitude index, high band by 2-bit code */
    static const int32_t g722_wl[8] = {-60, -30, 58, 172, 334, 538, 1198, 3042};
    static const int32_t g722_wh[4] = {798, -214, 798, -214};
    /* 2-bit inverse quantiser, by high-band code (x8) */
    static const int32_t g722_qm2[4] = {-926 * 8, -202 * 8, 926 * 8, 202 * 8};
    /* ILA: antilog table of the scale factor adaptation (step size = (ILA[i] + 1) * 4) */
    static const int16_t g722_ila[353] = {
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4,
        4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6,
        7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 9, 9, 9, 9, 10,
        10, 10, 10, 11, 11, 11, 11, 12, 12, 12, 13, 13, 13, 13, 14, 14,
        15, 15, 15, 16, 16, 16, 17, 17, 18, 18, 18, 19, 19, 20, 20, 21,
        21, 22, 22, 23, 23, 24, 24, 25, 25, 26, 27, 27, 28, 28, 29, 30,
        31, 31, 32, 33, 33, 34, 35, 36, 37, 37, 38, 39, 40, 41, 42, 43,
        44, 45, 46, 47, 48, 49, 50, 51, 52, 54, 55, 56, 57, 58, 60, 61,
        63, 64, 65, 67, 68, 70, 71, 73, 75, 76, 78, 80, 82, 83, 85, 87,
        89, 91, 93, 95, 97, 99, 102, 104, 106, 109, 111, 113, 116, 118, 121, 124,
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
        4095};

    /* ---- tables built at import ------------------------------------------------------------------------ */

    static int32_t g722_detl[289];      /* low-band step size by nbl >> 6 (nbl <= 18432) */
    static int32_t g722_deth[353];      /* high-band step size by nbh >> 6 (nbh <= 22528) */
    static int32_t g722_inv4[64];       /* 6-bit code -> signed 4-bit level (x8): what the predictor sees */
    static int32_t g722_wl6[64];        /* 6-bit code -> log scale factor increment */
    static int32_t g722_invq[3][64];    /* mode 1/2/3: 6-bit code -> signed 6/5/4-bit output level (x8) */
    static uint8_t g722_code_q[64];     /* negative << 5 | quantiser interval (1..30) -> 6-bit code */
    static int32_t g722_inv4_q[64];     /* ... -> g722_inv4 of that code */
    static int32_t g722_wl_q[64];       /* ... -> g722_wl6 of that code */
    static int32_t g722_q6x8[30];
    #ifdef G722_SSE2
    static uint16_t g722_q6_lanes[32] __attribute__((aligned(16)));   /* lane m: level m, 1..29, else 0 */
    #endif
    static int16_t g722_cs[24];   /* transmit QMF, low band:  h[j] over the 24 newest samples, oldest first */
    static int16_t g722_cd[24];   /* transmit QMF, high band: (-1)^(j+1) h[j] */
    static int16_t g722_c1[24];   /* receive QMF, first sample:  h[k+1] at even k (differences), 0 at odd k */
    static int16_t g722_c2[24];   /* receive QMF, second sample: h[k-1] at odd k (sums), 0 at even k */

    /* signed output level (x8) of a 4-bit (c4 = code >> 2), 5-bit (code >> 1) or 6-bit code (G.722 Tab. 6) */
    static int32_t g722_level4(int c4) {
        if (c4 == 0 || c4 == 15) return 0;
        return c4 < 8 ? -g722_oq4[8 - c4] * 8 : g722_oq4[15 - c4] * 8;
    }
    static int g722_index4(int c4) {
        if (c4 == 0 || c4 == 15) return 0;
        return c4 < 8 ? 8 - c4 : 15 - c4;
    }
    static int32_t g722_level5(int c5) {
        if (c5 < 2 || c5 == 31) return -g722_oq5[1] * 8;
        return c5 < 16 ? -g722_oq5[17 - c5] * 8 : g722_oq5[31 - c5] * 8;
    }
    static int32_t g722_level6(int c6) {
        if (c6 < 4) return -g722_oq6[1] * 8;
        if (c6 < 32) return -g722_oq6[34 - c6] * 8;
        if (c6 < 62) return g722_oq6[62 - c6] * 8;
        return -g722_oq6[64 - c6] * 8;
    }

    static void g722_init(void) {
        int i;
        for (i = 0; i < 289; i++) g722_detl[i] = (g722_ila[i + 64] + 1) * 4;
        for (i = 0; i < 353; i++) g722_deth[i] = (g722_ila[i] + 1) * 4;
        for (i = 0; i < 64; i++) {
            g722_inv4[i] = g722_level4(i >> 2);
            g722_wl6[i] = g722_wl[g722_index4(i >> 2)];
            g722_invq[0][i] = g722_level6(i);
            g722_invq[1][i] = g722_level5(i >> 1);
            g722_invq[2][i] = g722_level4(i >> 2);
        }
        for (i = 0; i < 64; i++) {
            /* interval m of a positive error codes as 62 - m; of a negative one as 63, 62, then 34 - m */
            int m = i & 31, code = 0;
            if (m >= 1 && m <= 30) code = (i & 32) ? (m <= 2 ? 64 - m : 34 - m) : 62 - m;
            g722_code_q[i] = (uint8_t)code;
            g722_inv4_q[i] = g722_inv4[code];
            g722_wl_q[i] = g722_wl6[code];
        }
        for (i = 0; i < 30; i++) g722_q6x8[i] = g722_q6[i] * 8;
    #ifdef G722_SSE2
        for (i = 0; i < 32; i++) g722_q6_lanes[i] = (uint16_t)(i >= 1 && i <= 29 ? g722_q6[i] * 8 : 0);
    #endif
        for (i = 0; i < 24; i++) {
            g722_cs[i] = (int16_t)g722_h[i];
            g722_cd[i] = (int16_t)(i & 1 ? g722_h[i] : -g722_h[i]);
            g722_c1[i] = (int16_t)(i & 1 ? 0 : g722_h[i + 1]);
            g722_c2[i] = (int16_t)(i & 1 ? g722_h[i - 1] : 0);
        }
    }

    /* ---- state ----------------------------------------------------------------------------------------- */

    /* one sub-band's ADPCM state as it is kept between calls */
    typedef struct {
        int32_t s;        /* signal estimate s(n) = sp(n) + sz(n) */
        int32_t sz;       /* zero-section estimate */
        int32_t nb;       /* log scale factor */
        int32_t det;      /* quantiser step size */
        int32_t a1, a2;   /* pole-section coefficients */
        int32_t p1, p2;   /* partially reconstructed signal p(n-1), p(n-2) (only their signs are used) */
        int32_t r1, r2;   /* reconstructed signal, doubled and saturated: sat(2 r(n-1)), sat(2 r(n-2)) */
        int16_t b[8];     /* zero-section coefficients b1..b6 (lanes 6, 7 stay 0) */
        int16_t d[8];     /* quantised difference signal d(n-1)..d(n-6) (lanes 6, 7 unused) */
    } g722_band_state;

    typedef struct {
        g722_band_state lo, hi;
        int16_t hist[22];   /* QMF history, oldest first: the encoder's last 22 input samples, or the
                               decoder's last 11 (difference, sum) pairs of the two bands */
    } g722_state;

    static void g722_reset(g722_state *st) {
        memset(st, 0, sizeof *st);
        st->lo.det = 32;
        st->hi.det = 8;
    }

    static inline void g722_load1(int16_t *dst, const char *src) { memcpy(dst, src, 2); }

    /* the working copy of a sub-band inside a loop (its two lines in vector registers where there are any) */
    typedef struct {
        int32_t s, sz, nb, det, a1, a2, p1, p2, r1, r2;
    #ifdef G722_SSE2
        __m128i b, d;
    #else
        int16_t b[8], d[8];
    #endif
    } g722_band;

    G722_INLINE void g722_band_load(g722_band *w, const g722_band_state *s) {
        w->s = s->s; w->sz = s->sz; w->nb = s->nb; w->det = s->det; w->a1 = s->a1; w->a2 = s->a2;
        w->p1 = s->p1; w->p2 = s->p2; w->r1 = s->r1; w->r2 = s->r2;
    #ifdef G722_SSE2
        w->b = _mm_loadu_si128((const __m128i *)s->b);
        w->d = _mm_loadu_si128((const __m128i *)s->d);
    #else
        memcpy(w->b, s->b, sizeof w->b);
        memcpy(w->d, s->d, sizeof w->d);
    #endif
    }

    G722_INLINE void g722_band_store(g722_band_state *s, const g722_band *w) {
        s->s = w->s; s->sz = w->sz; s->nb = w->nb; s->det = w->det; s->a1 = w->a1; s->a2 = w->a2;
        s->p1 = w->p1; s->p2 = w->p2; s->r1 = w->r1; s->r2 = w->r2;
    #ifdef G722_SSE2
        _mm_storeu_si128((__m128i *)s->b, w->b);
        _mm_storeu_si128((__m128i *)s->d, w->d);
    #else
        memcpy(s->b, w->b, sizeof w->b);
        memcpy(s->d, w->d, sizeof w->d);
    #endif
    }

    /* ---- arithmetic of the reference ------------------------------------------------------------------- */

    G722_INLINE int32_t g722_clamp(int32_t x, int32_t lo, int32_t hi) {
        return x < lo ? lo : (x > hi ? hi : x);
    }
    G722_INLINE int32_t g722_sat(int32_t x) { return g722_clamp(x, -32768, 32767); }
    G722_INLINE int32_t g722_mult(int32_t a, int32_t b) { return (a * b) >> 15; }
    /* -x when mask is -1, x when it is 0 */
    G722_INLINE int32_t g722_negif(int32_t x, int32_t mask) { return (x ^ mask) - mask; }

    /* FILTEZ's saturating sum t6 + t5 + ... + t1 in the reference's order (used only when it can saturate) */
    static int32_t g722_sat_chain(const int16_t *t) {
        int32_t sz = t[5];
        for (int i = 4; i >= 0; i--) sz = g722_sat(sz + t[i]);
        return sz;
    }

    /* UPZERO then FILTEZ: update b1..b6 by the signs of d(n) and d(n-i), shift d(n) into the line, return sz.
       mult(b, 32640) (leakage 1 - 2^-8) lies in -32640..32639, so +-128 never saturates; (2 d * b) >> 15 is
       (d * b) >> 14 with |d| <= 10228; the six terms are added exactly unless their magnitudes could
       saturate. */
    G722_INLINE int32_t g722_zero_section(g722_band *bd, int32_t dq) {
    #ifdef G722_SSE2
        const __m128i zero = _mm_setzero_si128();
        __m128i q = _mm_set1_epi16((short)dq);
        __m128i differ = _mm_srai_epi16(_mm_xor_si128(bd->d, q), 15);
        __m128i g = _mm_andnot_si128(_mm_cmpeq_epi16(q, zero),
                                     _mm_setr_epi16(128, 128, 128, 128, 128, 128, 0, 0));
        __m128i c = _mm_set1_epi16(32640);
        /* (b * 32640) >> 15 from the high and low halves of the 32-bit products */
        __m128i b = _mm_or_si128(_mm_slli_epi16(_mm_mulhi_epi16(bd->b, c), 1),
                                 _mm_srli_epi16(_mm_mullo_epi16(bd->b, c), 15));
        b = _mm_add_epi16(b, _mm_sub_epi16(_mm_xor_si128(g, differ), differ));
        __m128i d = _mm_insert_epi16(_mm_slli_si128(bd->d, 2), dq, 0);
        __m128i t = _mm_or_si128(_mm_slli_epi16(_mm_mulhi_epi16(d, b), 2),
                                 _mm_srli_epi16(_mm_mullo_epi16(d, b), 14));
        __m128i ta = _mm_max_epi16(t, _mm_sub_epi16(zero, t));
        __m128i ones = _mm_set1_epi16(1);
        __m128i st = _mm_madd_epi16(t, ones), sa = _mm_madd_epi16(ta, ones);
        __m128i x = _mm_add_epi32(_mm_unpacklo_epi64(st, sa), _mm_unpackhi_epi64(st, sa));
        int32_t sz, mag;
        x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xB1));
        sz = _mm_cvtsi128_si32(x);
        mag = _mm_cvtsi128_si32(_mm_shuffle_epi32(x, 2));
        bd->b = b;
        bd->d = d;
        if (G722_UNLIKELY(mag > 32767)) {
            int16_t tt[8];
            _mm_storeu_si128((__m128i *)tt, t);
            sz = g722_sat_chain(tt);
        }
        return sz;
    #else
        int16_t tt[8];
        int32_t g = (dq != 0) << 7, sz = 0, mag = 0;
        int i;
        for (i = 0; i < 6; i++) {
            int32_t b = bd->b[i];
            bd->b[i] = (int16_t)(b - ((b + 255) >> 8) + g722_negif(g, (bd->d[i] ^ dq) >> 31));
        }
        for (i = 5; i > 0; i--) bd->d[i] = bd->d[i - 1];
        bd->d[0] = (int16_t)dq;
        for (i = 0; i < 6; i++) {
            int32_t t = ((int32_t)bd->d[i] * bd->b[i]) >> 14;
            tt[i] = (int16_t)t;
            sz += t;
            mag += t < 0 ? -t : t;
        }
        if (G722_UNLIKELY(mag > 32767)) sz = g722_sat_chain(tt);
        return sz;
    #endif
    }

    /* the adaptive predictor of one sub-band once its quantised difference d(n) is known: PARREC, RECONS,
       UPZERO, UPPOL2, UPPOL1, FILTEZ, FILTEP, PREDIC. mult(x, 32640) and mult(x, 32512) are written as
       x - ceil(x / 256) and x - ceil(x / 128), exact for every int16 x. */
    G722_INLINE void g722_adapt(g722_band *bd, int32_t dq) {
        int32_t p = dq + bd->sz;             /* p(n): only its sign is used, which saturation keeps */
        int32_t rx = g722_sat((bd->s + dq) * 2);   /* sat(2 sat(s + d)) == sat(2 (s + d)) */
        int32_t s0 = p >> 31;
        int32_t same1 = ~(s0 ^ (bd->p1 >> 31));    /* -1 when p(n) and p(n-1) have the same sign */
        int32_t same2 = ~(s0 ^ (bd->p2 >> 31));
        int32_t w, a1, a2, sp, sz;
        sz = g722_zero_section(bd, dq);
        /* UPPOL2 (with the old a1): sat(-sat(4 a1)) >> 7 == clamp(-4 a1 >> 7, -256, 255), and unnegated */
        w = g722_clamp(g722_negif(bd->a1 * 4, same1) >> 7, -256, 255);
        a2 = g722_clamp(w + g722_negif(-128, same2) + bd->a2 - ((bd->a2 + 127) >> 7), -12288, 12288);
        /* UPPOL1 (with the new a2) */
        w = 15360 - a2;
        a1 = g722_clamp(g722_negif(-192, same1) + bd->a1 - ((bd->a1 + 255) >> 8), -w, w);
        bd->a1 = a1;
        bd->a2 = a2;
        bd->p2 = bd->p1;
        bd->p1 = p;
        /* FILTEP over the new r(n) and r(n-1) */
        sp = g722_sat(g722_mult(a1, rx) + g722_mult(a2, bd->r1));
        bd->r2 = bd->r1;
        bd->r1 = rx;
        bd->sz = sz;
        bd->s = g722_sat(sp + sz);           /* PREDIC */
    }

    /* LOGSCL + SCALEL, LOGSCH + SCALEH */
    G722_INLINE void g722_scale_low(g722_band *bd, int32_t wl) {
        int32_t nb = g722_clamp(bd->nb - ((bd->nb + 127) >> 7) + wl, 0, 18432);
        bd->nb = nb;
        bd->det = g722_detl[nb >> 6];
    }
    G722_INLINE void g722_scale_high(g722_band *bd, int32_t wh) {
        int32_t nb = g722_clamp(bd->nb - ((bd->nb + 127) >> 7) + wh, 0, 22528);
        bd->nb = nb;
        bd->det = g722_deth[nb >> 6];
    }

    /* QUANTL's interval (1..30) of an error magnitude wd >= 0: the first m >= 1 whose decision level
       (q6[m] * 8 * det) >> 15 exceeds wd, or 30. The levels grow with m, so those above wd are a suffix. */
    G722_INLINE int g722_quant6(int32_t wd, int32_t det) {
    #ifdef G722_SSE2
        const __m128i *q = (const __m128i *)g722_q6_lanes;
        /* (level * 2det) >> 16, unsigned, is (level * det) >> 15 (2 det <= 32768 fits 16 bits); the results
           are at most 12800, so the signed compares against wd are exact */
        __m128i vd = _mm_set1_epi16((short)(uint16_t)(det * 2));
        __m128i vw = _mm_set1_epi16((short)wd);
        __m128i g0 = _mm_cmpgt_epi16(_mm_mulhi_epu16(_mm_load_si128(q + 0), vd), vw);
        __m128i g1 = _mm_cmpgt_epi16(_mm_mulhi_epu16(_mm_load_si128(q + 1), vd), vw);
        __m128i g2 = _mm_cmpgt_epi16(_mm_mulhi_epu16(_mm_load_si128(q + 2), vd), vw);
        __m128i g3 = _mm_cmpgt_epi16(_mm_mulhi_epu16(_mm_load_si128(q + 3), vd), vw);
        uint32_t above = (uint32_t)_mm_movemask_epi8(_mm_packs_epi16(g0, g1))
                       | ((uint32_t)_mm_movemask_epi8(_mm_packs_epi16(g2, g3)) << 16);
        return __builtin_ctz(above | (1u << 30));
    #else
        int m = 1;
        while (m < 30 && g722_mult(g722_q6x8[m], det) <= wd) m++;
        return m;
    #endif
    }

    G722_INLINE int32_t g722_dot24(const int16_t *w, const int16_t *c) {
        int32_t acc = 0;
        for (int k = 0; k < 24; k++) acc += (int32_t)w[k] * c[k];
        return acc;
    }

    /* ---- encoder / decoder ----------------------------------------------------------------------------- */

    #define G722_CHUNK 128

    /* n pairs of native int16 samples -> n codes; mask clears the low bits of modes 2 and 3 */
    static void g722_encode(g722_state *restrict st, const char *restrict in, Py_ssize_t n,
                            uint8_t *restrict out, uint8_t mask) {
        int16_t buf[22 + 2 * G722_CHUNK];
        int32_t xlb[G722_CHUNK], xhb[G722_CHUNK];
        g722_band lo, hi;
        g722_band_load(&lo, &st->lo);
        g722_band_load(&hi, &st->hi);
        memcpy(buf, st->hist, sizeof st->hist);
        while (n > 0) {
            Py_ssize_t c = n < G722_CHUNK ? n : G722_CHUNK, j;
            memcpy(buf + 22, in, (size_t)c * 4);
            /* transmit QMF of the whole chunk: the window of pair j is buf[2j .. 2j + 23] */
            for (j = 0; j < c; j++) {
                xlb[j] = g722_clamp(g722_dot24(buf + 2 * j, g722_cs) >> 14, -16384, 16383);
                xhb[j] = g722_clamp(g722_dot24(buf + 2 * j, g722_cd) >> 14, -16384, 16383);
            }
            memmove(buf, buf + 2 * c, sizeof st->hist);
            for (j = 0; j < c; j++) {
                /* low band: 6-bit quantiser; the predictor runs on the embedded 4-bit level */
                int32_t el = g722_sat(xlb[j] - lo.s);
                int32_t neg = el >> 31;
                int q = (neg & 32) | g722_quant6(el ^ neg, lo.det);   /* one's complement magnitude */
                int32_t dl = g722_mult(lo.det, g722_inv4_q[q]);
                g722_scale_low(&lo, g722_wl_q[q]);
                g722_adapt(&lo, dl);
                /* high band: 2-bit quantiser */
                int32_t eh = g722_sat(xhb[j] - hi.s);
                int32_t nh = eh >> 31;
                int ih = ((eh ^ nh) >= g722_mult(564 * 8, hi.det) ? 2 : 3) + (nh & -2);
                int32_t dh = g722_mult(hi.det, g722_qm2[ih]);
                g722_scale_high(&hi, g722_wh[ih]);
                g722_adapt(&hi, dh);
                out[j] = (uint8_t)(((ih << 6) | g722_code_q[q]) & mask);
            }
            in += 4 * c;
            out += c;
            n -= c;
        }
        memcpy(st->hist, buf, sizeof st->hist);
        g722_band_store(&st->lo, &lo);
        g722_band_store(&st->hi, &hi);
    }

    /* n codes -> 2n native int16 samples; mode 0, 1, 2 = 64, 56, 48 kbit/s */
    static void g722_decode(g722_state *restrict st, const uint8_t *restrict in, Py_ssize_t n,
                            char *restrict out, int mode) {
        int16_t y[22 + 2 * G722_CHUNK];
        g722_band lo, hi;
        const int32_t *invq = g722_invq[mode];
        g722_band_load(&lo, &st->lo);
        g722_band_load(&hi, &st->hi);
        memcpy(y, st->hist, sizeof st->hist);
        while (n > 0) {
            Py_ssize_t c = n < G722_CHUNK ? n : G722_CHUNK, j;
            for (j = 0; j < c; j++) {
                int il = in[j] & 0x3F, ih = in[j] >> 6;
                int32_t rl = g722_clamp(lo.s + g722_mult(lo.det, invq[il]), -16384, 16383);
                int32_t dl = g722_mult(lo.det, g722_inv4[il]);
                int32_t dh = g722_mult(hi.det, g722_qm2[ih]);
                int32_t rh = g722_clamp(hi.s + dh, -16384, 16383);
                g722_scale_low(&lo, g722_wl6[il]);
                g722_adapt(&lo, dl);
                g722_scale_high(&hi, g722_wh[ih]);
                g722_adapt(&hi, dh);
                y[22 + 2 * j] = (int16_t)(rl - rh);
                y[23 + 2 * j] = (int16_t)(rl + rh);
            }
            /* receive QMF of the whole chunk: the window of code j is y[2j .. 2j + 23] */
            for (j = 0; j < c; j++) {
                int16_t pcm[2];
                pcm[0] = (int16_t)g722_sat(g722_dot24(y + 2 * j, g722_c1) >> 11);
                pcm[1] = (int16_t)g722_sat(g722_dot24(y + 2 * j, g722_c2) >> 11);
                memcpy(out + 4 * j, pcm, 4);
            }
            memmove(y, y + 2 * c, sizeof st->hist);
            in += c;
            out += 4 * c;
            n -= c;
        }
        memcpy(st->hist, y, sizeof st->hist);
        g722_band_store(&st->lo, &lo);
        g722_band_store(&st->hi, &hi);
    }
    """
    ctypedef struct g722_state:
        pass
    int G722_HAVE_SSE2
    void g722_init() noexcept
    void g722_reset(g722_state *st) noexcept nogil
    void g722_load1(int16_t *dst, const char *src) noexcept nogil
    void g722_encode(g722_state *st, const char *inp, Py_ssize_t n, uint8_t *out, uint8_t mask) noexcept nogil
    void g722_decode(g722_state *st, const uint8_t *inp, Py_ssize_t n, char *out, int mode) noexcept nogil

g722_init()

#: calls on buffers of at least this many PCM samples (encode input, decode output) release the GIL
GIL_RELEASE_THRESHOLD = 2048
cdef Py_ssize_t _GIL_THRESHOLD = GIL_RELEASE_THRESHOLD

#: which inner loops this build uses: "sse2" (x86-64) or "scalar" (portable C)
KERNEL = "sse2" if G722_HAVE_SSE2 else "scalar"

#: the bit rates of ITU-T G.722 modes 1, 2 and 3
BITRATES = (64000, 56000, 48000)

cdef enum:
    KIND_PCM = 0      # native-endian int16 or raw bytes
    KIND_CODES = 1    # 1-byte items
    KIND_OUT_CODES = 2
    KIND_OUT_PCM = 3

cdef bint _NATIVE_LITTLE = sys.byteorder == "little"


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


cdef int _mode_of(object bitrate) except -1:
    """0, 1 or 2 for 64000, 56000 or 48000 bit/s (ITU-T G.722 modes 1, 2, 3)."""
    if not isinstance(bitrate, int) or isinstance(bitrate, bool):
        raise TypeError(f"bitrate must be an int, not {type(bitrate).__name__}")
    if bitrate == 64000:
        return 0
    if bitrate == 56000:
        return 1
    if bitrate == 48000:
        return 2
    raise ValueError(f"bitrate must be 64000, 56000 or 48000, not {bitrate}")


cdef int _check_overlap(const char *src, Py_ssize_t nsrc, const char *dst, Py_ssize_t ndst) except -1:
    cdef uintptr_t a0 = <uintptr_t>src
    cdef uintptr_t a1 = a0 + <uintptr_t>nsrc
    cdef uintptr_t b0 = <uintptr_t>dst
    cdef uintptr_t b1 = b0 + <uintptr_t>ndst
    if nsrc and ndst and a0 < b1 and b0 < a1:
        raise ValueError("out must not overlap the input buffer")
    return 0


cdef class Encoder:
    """G.722 encoder: 16 kHz native int16 PCM -> one code byte per two samples (see ``g722.Encoder``)."""

    cdef g722_state _st
    cdef int _mode
    cdef uint8_t _mask
    cdef int _held          # 1 when a sample waits for its pair
    cdef int16_t _held_sample
    cdef bint _busy

    def __cinit__(self):
        g722_reset(&self._st)
        self._mode = 0
        self._mask = 0xFF
        self._held = 0
        self._held_sample = 0
        self._busy = False

    def __init__(self, bitrate=64000):
        """Args:
            bitrate: 64000, 56000 or 48000 bit/s (ITU-T G.722 modes 1, 2, 3). In modes 2 and 3 the one or two
                low bits of each code (the low band's auxiliary-data bits) are zero.

        Raises:
            TypeError: ``bitrate`` is not an int.
            ValueError: ``bitrate`` is not one of the three G.722 rates.
        """
        self._mode = _mode_of(bitrate)
        self._mask = (0xFF, 0xFE, 0xFC)[self._mode]

    @property
    def bitrate(self):
        """The bit rate the codes are meant for: 64000, 56000 or 48000."""
        return BITRATES[self._mode]

    @property
    def pending(self):
        """PCM samples held for the next call (0 or 1): the odd sample of the input so far."""
        return self._held

    def __repr__(self):
        return f"Encoder(bitrate={BITRATES[self._mode]})"

    def __reduce__(self):
        raise TypeError("cannot pickle or copy a G.722 Encoder: its state belongs to one stream")

    cdef int _enter(self) except -1:
        if self._busy:
            raise RuntimeError("this Encoder is in use by another thread")
        return 0

    def reset(self):
        """Return to the initial state of ITU-T G.722 (and drop a held sample)."""
        self._enter()
        g722_reset(&self._st)
        self._held = 0
        self._held_sample = 0

    cdef void _code(self, const char *src, Py_ssize_t n, uint8_t *dst):
        """Code ``n`` samples at ``src`` (after a held one) into ``(held + n) // 2`` codes at ``dst``."""
        cdef int16_t pair[2]
        cdef Py_ssize_t pairs
        if n == 0:
            return
        if self._held:
            pair[0] = self._held_sample
            g722_load1(&pair[1], src)
            g722_encode(&self._st, <const char *>pair, 1, dst, self._mask)
            self._held = 0
            src += 2
            n -= 1
            dst += 1
        pairs = n >> 1
        if pairs >= (_GIL_THRESHOLD >> 1):
            self._busy = True
            with nogil:
                g722_encode(&self._st, src, pairs, dst, self._mask)
            self._busy = False
        elif pairs:
            g722_encode(&self._st, src, pairs, dst, self._mask)
        if n & 1:
            g722_load1(&self._held_sample, src + 4 * pairs)
            self._held = 1

    def encode(self, pcm, out=None):
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
        cdef Py_buffer vin
        cdef Py_buffer vout
        cdef bint have_in = False
        cdef const char *src
        cdef Py_ssize_t nbytes, n, need
        cdef bytes result
        self._enter()
        if PyBytes_CheckExact(pcm):
            src = PyBytes_AS_STRING(pcm)
            nbytes = PyBytes_GET_SIZE(pcm)
        else:
            _acquire(pcm, &vin, KIND_PCM)
            have_in = True
            src = <const char *>vin.buf
            nbytes = vin.len
        try:
            if nbytes & 1:
                raise ValueError(f"pcm must have an even number of bytes (2 per int16 sample), got {nbytes}")
            n = nbytes >> 1
            need = (n + self._held) >> 1
            if out is None:
                result = PyBytes_FromStringAndSize(NULL, need)
                self._code(src, n, <uint8_t *>PyBytes_AS_STRING(result))
                return result
            _acquire(out, &vout, KIND_OUT_CODES)
            try:
                if vout.len < need:
                    raise ValueError(f"out is too small: {need} bytes needed, {vout.len} available")
                _check_overlap(src, nbytes, <const char *>vout.buf, need)
                self._code(src, n, <uint8_t *>vout.buf)
            finally:
                PyBuffer_Release(&vout)
            return need
        finally:
            if have_in:
                PyBuffer_Release(&vin)

    def flush(self):
        """Code a held odd sample paired with a zero sample (the end of a stream).

        Returns:
            ``bytes`` of one code when a sample was held, else ``b""``.
        """
        cdef int16_t pair[2]
        cdef uint8_t code
        self._enter()
        if not self._held:
            return b""
        pair[0] = self._held_sample
        pair[1] = 0
        g722_encode(&self._st, <const char *>pair, 1, &code, self._mask)
        self._held = 0
        return bytes([code])


cdef class Decoder:
    """G.722 decoder: one code byte -> two 16 kHz native-endian int16 samples (see ``g722.Decoder``)."""

    cdef g722_state _st
    cdef int _mode
    cdef bint _busy

    def __cinit__(self):
        g722_reset(&self._st)
        self._mode = 0
        self._busy = False

    def __init__(self, bitrate=64000):
        """Args:
            bitrate: 64000, 56000 or 48000 bit/s (ITU-T G.722 modes 1, 2, 3). In modes 2 and 3 the one or two
                low bits of each code are ignored.

        Raises:
            TypeError: ``bitrate`` is not an int.
            ValueError: ``bitrate`` is not one of the three G.722 rates.
        """
        self._mode = _mode_of(bitrate)

    @property
    def bitrate(self):
        """The bit rate the codes are decoded at: 64000, 56000 or 48000."""
        return BITRATES[self._mode]

    def __repr__(self):
        return f"Decoder(bitrate={BITRATES[self._mode]})"

    def __reduce__(self):
        raise TypeError("cannot pickle or copy a G.722 Decoder: its state belongs to one stream")

    cdef int _enter(self) except -1:
        if self._busy:
            raise RuntimeError("this Decoder is in use by another thread")
        return 0

    def reset(self):
        """Return to the initial state of ITU-T G.722."""
        self._enter()
        g722_reset(&self._st)

    cdef void _code(self, const uint8_t *src, Py_ssize_t n, char *dst):
        if 2 * n >= _GIL_THRESHOLD:
            self._busy = True
            with nogil:
                g722_decode(&self._st, src, n, dst, self._mode)
            self._busy = False
        elif n:
            g722_decode(&self._st, src, n, dst, self._mode)

    def decode(self, codes, out=None):
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
        cdef Py_buffer vin
        cdef Py_buffer vout
        cdef bint have_in = False
        cdef const uint8_t *src
        cdef Py_ssize_t n, need
        cdef bytes result
        self._enter()
        if PyBytes_CheckExact(codes):
            src = <const uint8_t *>PyBytes_AS_STRING(codes)
            n = PyBytes_GET_SIZE(codes)
        else:
            _acquire(codes, &vin, KIND_CODES)
            have_in = True
            src = <const uint8_t *>vin.buf
            n = vin.len
        try:
            need = 4 * n
            if out is None:
                result = PyBytes_FromStringAndSize(NULL, need)
                self._code(src, n, PyBytes_AS_STRING(result))
                return result
            _acquire(out, &vout, KIND_OUT_PCM)
            try:
                if vout.len < need:
                    raise ValueError(f"out is too small: {need} bytes needed, {vout.len} available")
                _check_overlap(<const char *>src, n, <const char *>vout.buf, need)
                self._code(src, n, <char *>vout.buf)
            finally:
                PyBuffer_Release(&vout)
            return need
        finally:
            if have_in:
                PyBuffer_Release(&vin)
