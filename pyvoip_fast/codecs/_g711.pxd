# pyvoip_fast.codecs._g711 (ext/g711.pyx) as other compiled modules see it: ext/sender.pyx encodes a frame of a
# cached clip straight into the packet it sends. Cython finds this file by the module's name; the implementation and
# its notes are in ext/g711.pyx.

from libc.stdint cimport uint8_t

cdef enum:
    ENCODE_ULAW = 0  # the modes of encode_frame: G.711 mu-law as the ITU-T STL encodes it (ulaw_encode's default)
    ENCODE_ALAW = 2  # and A-law (alaw_encode)

cdef void encode_frame(int mode, const char *pcm, uint8_t *out, Py_ssize_t n) noexcept nogil
