# cython: language_level=3, embedsignature=True
#
# pyvoip_fast.rtp._rtp: RTP and RTCP packets, compiled.
#
# Strategy
# --------
# Same API, same exception types and the same messages as the pure-Python twin pyvoip_fast/rtp/_rtp_py.py (the test
# oracle; the tests compare the two on every fuzz case). Packets are cdef classes whose header fields are C
# integers, filled straight from the wire by the parser; serialisation computes the exact size, allocates the
# result once (PyBytes_FromStringAndSize(NULL, n)) and writes into it with the big-endian helpers of _wire.pxd.
#
# Untrusted input: `bytes` is read through its internal pointer, any other object through the buffer protocol
# (PyBUF_SIMPLE: C-contiguous, released in a `finally`). Every read is preceded by a length check written as
# `need > n - pos` (never `pos + need > n`), so no byte past the buffer is ever read, whatever the input.
# The parsed RTP payload is a zero-copy slice: for `bytes` input the memoryview is made lazily on the first access
# to `.payload` (the bytes object is immutable, the packet keeps a reference), as one view over the bytes narrowed
# in place (two allocations instead of the four of `memoryview(data)[a:b]`); for other buffers it is made at
# parse time, so the exporting object cannot be resized under the packet.
#
# Implements: RFC 3550 §5.1 (fixed header, CSRC list, padding), §5.3.1 (header extension), RFC 8285 §4.2/§4.3
# (one-/two-byte extension elements), RFC 3550 §6.4.1 SR, §6.4.2 RR, §6.5 SDES, §6.6 BYE, §6.7 APP and the compound
# validity checks of §6.1 / appendix A.2 (plus RFC 5506 reduced-size RTCP on request). Unknown RTCP types are skipped.
# build_report() writes a whole §6.1 compound (SR/RR + blocks, SDES CNAME, optional BYE) from plain values into a
# stack buffer sized for the largest case and copies it into one bytes object: no record objects at all.
# build_packet(), write_header() and write_packet() are METH_FASTCALL functions written in C (in a verbatim block
# below): for the usual call they skip Cython's argument parsing, which cost more than the work; any other call
# form falls back to the checked def of the same name.

import logging

cimport cython
from cpython.buffer cimport (
    PyBUF_SIMPLE,
    PyBUF_WRITABLE,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from cpython.memoryview cimport PyMemoryView_FromObject, PyMemoryView_GET_BUFFER
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_Check
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memcpy, memset

from _wire cimport load_u16, load_u32, load_u64, store_u16, store_u32, store_u64

from pyvoip_fast.errors import RtcpParseError, RtpParseError
from pyvoip_fast.rtp import _rtp_py as _py

logger = logging.getLogger("pyvoip_fast.rtp._rtp")

# a builder that is not on any hot path: shared with the twin rather than written twice
encode_header_extensions = _py.encode_header_extensions

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204

__all__ = [
    "RtpPacket",
    "write_header",
    "write_packet",
    "build_packet",
    "encode_header_extensions",
    "RtcpPacket",
    "ReportBlock",
    "SenderReport",
    "ReceiverReport",
    "SdesChunk",
    "SourceDescription",
    "Bye",
    "App",
    "parse_rtcp",
    "serialize_compound",
    "build_report",
    "RTCP_SR",
    "RTCP_RR",
    "RTCP_SDES",
    "RTCP_BYE",
    "RTCP_APP",
]

cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object obj, int* overflow)
    unsigned long long PyLong_AsUnsignedLongLong(object obj) except? <unsigned long long>-1

cdef uint32_t U32_MAX = 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------------------------
# argument checks (messages shared word for word with the twin)

cdef inline long long _int_in(object v, str name, long long low, long long high) except? -1:
    cdef int overflow = 0
    cdef long long x
    if not PyLong_Check(v):
        raise TypeError(f"{name} must be an int, not {type(v).__name__}")
    x = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow or x < low or x > high:
        raise ValueError(f"{name} must be in {low}..{high}, got {v}")
    return x


cdef inline uint64_t _u64_in(object v, str name) except? 0xFFFFFFFFFFFFFFFF:
    if not PyLong_Check(v):
        raise TypeError(f"{name} must be an int, not {type(v).__name__}")
    try:
        return PyLong_AsUnsignedLongLong(v)
    except OverflowError:
        raise ValueError(f"{name} must be in 0..18446744073709551615, got {v}") from None


cdef inline bytes _bytes_in(object v, str name):
    if type(v) is bytes:
        return <bytes>v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    raise TypeError(f"{name} must be bytes, not {type(v).__name__}")


cdef int _read_buffer(object obj, Py_buffer* view, str what) except -1:
    """Acquire a read buffer; on failure raise the twin's exception (same type and message)."""
    try:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)
    except Exception:
        _py._view(obj, what)
        raise
    return 0


cdef int _write_buffer(object obj, Py_buffer* view, str what) except -1:
    try:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE | PyBUF_WRITABLE)
    except Exception:
        _py._writable_view(obj, what)
        raise
    return 0


cdef Py_ssize_t _offset_in(object offset, Py_ssize_t need, Py_ssize_t size) except -1:
    cdef int overflow = 0
    cdef long long off
    if not PyLong_Check(offset):
        raise TypeError(f"offset must be an int, not {type(offset).__name__}")
    off = PyLong_AsLongLongAndOverflow(offset, &overflow)
    if overflow < 0 or (overflow == 0 and off < 0):
        raise ValueError(f"offset must be >= 0, got {offset}")
    if overflow > 0 or off > size or need > size - off:
        raise ValueError(f"buffer too small: {need} bytes needed at offset {offset}, buffer has {size}")
    return <Py_ssize_t>off


cdef object _byte_view(object data):
    """memoryview of ``data`` as flat unsigned bytes (the twin's _view, minus its error paths)."""
    cdef object mv = memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


# ---------------------------------------------------------------------------------------------------------------
# RTP

cdef object _bytes_slice_view(bytes source, Py_ssize_t off, Py_ssize_t length):
    """``memoryview(source)[off:off + length]`` made with two objects instead of four.

    ``PyMemoryView_FromObject`` makes the managed buffer and a view over the whole (immutable) ``bytes``; the
    fresh view, not yet visible to anyone, is then narrowed in place exactly as CPython's own slicing does for a
    one-dimensional contiguous view of unsigned bytes (start pointer, length, shape[0]; stride 1 and the
    contiguity flags stay valid). Callers guarantee ``0 <= off`` and ``off + length <= len(source)`` (checked by
    the parser). The result is a genuine read-only ``memoryview`` whose ``obj`` is ``source``, as in the twin.
    """
    cdef object mv = PyMemoryView_FromObject(source)
    cdef Py_buffer* v = PyMemoryView_GET_BUFFER(mv)
    if v.ndim != 1 or v.shape == NULL or v.strides == NULL or v.strides[0] != 1:  # not expected from bytes
        return mv[off:off + length]
    v.buf = <void*>(<char*>v.buf + off)
    v.len = length
    v.shape[0] = length
    return mv


cdef inline void _write_fixed(uint8_t* o, int b0, int pt, bint marker, int seq, uint32_t ts, uint32_t ssrc) noexcept:
    o[0] = <uint8_t>b0
    o[1] = <uint8_t>(pt | (0x80 if marker else 0))
    store_u16(o + 2, <uint16_t>seq)
    store_u32(o + 4, ts)
    store_u32(o + 8, ssrc)


cdef class RtpPacket:
    """One RTP packet (RFC 3550 §5.1). Immutable; build it with keywords or get it from :meth:`parse`.

    Args:
        payload_type: 0..127 (RFC 3551: PCMU 0, PCMA 8).
        sequence_number: 0..65535.
        timestamp: 0..2**32-1, in the payload's clock units.
        ssrc: synchronisation source, 0..2**32-1.
        marker: the M bit (first packet of a talk spurt for audio).
        payload: the payload bytes (any bytes-like object; kept by reference, not copied).
        csrc: up to 15 contributing sources.
        extension_profile: the 16-bit "defined by profile" field of the RFC 3550 §5.3.1 header extension, or
            ``None`` for no extension (0xBEDE / 0x100X for RFC 8285 elements).
        extension_data: the extension body; its length must be a multiple of 4.
        padding_length: 0 for no padding, else the number of padding octets (1..255, count octet included).

    Raises:
        TypeError: a field of the wrong type.
        ValueError: a field out of range.

    Fields read back as attributes; ``version`` is always 2, ``padding`` and ``extension`` are derived.
    A parsed packet's ``payload`` is a zero-copy ``memoryview`` into the parsed buffer.
    """

    cdef readonly int payload_type
    cdef readonly int sequence_number
    cdef readonly uint32_t timestamp
    cdef readonly uint32_t ssrc
    cdef readonly bint marker
    cdef readonly tuple csrc
    cdef readonly object extension_profile
    cdef readonly bytes extension_data
    cdef readonly int padding_length
    cdef object _payload      # bytes / memoryview, or None while a parsed bytes packet's view is not made yet
    cdef bytes _source        # the parsed bytes object (lazy payload view)
    cdef Py_ssize_t _poff
    cdef Py_ssize_t _plen

    def __init__(
        self,
        *,
        payload_type=0,
        sequence_number=0,
        timestamp=0,
        ssrc=0,
        marker=False,
        payload=b"",
        csrc=(),
        extension_profile=None,
        extension_data=b"",
        padding_length=0,
    ):
        cdef bytes ext_data
        cdef tuple csrc_t
        self.payload_type = <int>_int_in(payload_type, "payload_type", 0, 127)
        self.sequence_number = <int>_int_in(sequence_number, "sequence_number", 0, 0xFFFF)
        self.timestamp = <uint32_t>_int_in(timestamp, "timestamp", 0, U32_MAX)
        self.ssrc = <uint32_t>_int_in(ssrc, "ssrc", 0, U32_MAX)
        self.marker = bool(marker)
        if type(payload) is bytes:
            self._payload = payload
        else:
            self._payload = _py._view(payload, "payload")
        csrc_t = csrc if type(csrc) is tuple else tuple(csrc)
        if len(csrc_t) > 15:
            raise ValueError(f"an RTP packet carries at most 15 CSRCs, got {len(csrc_t)}")
        for c in csrc_t:
            _int_in(c, "csrc", 0, U32_MAX)
        self.csrc = csrc_t
        ext_data = _bytes_in(extension_data, "extension_data")
        if extension_profile is None:
            if len(ext_data):
                raise ValueError("extension_data needs an extension_profile")
        else:
            _int_in(extension_profile, "extension_profile", 0, 0xFFFF)
            if len(ext_data) % 4:
                raise ValueError(f"extension_data length must be a multiple of 4, got {len(ext_data)}")
            if len(ext_data) > 0xFFFF * 4:
                raise ValueError(f"extension_data is too long: {len(ext_data)} bytes (at most 262140)")
        self.extension_profile = extension_profile
        self.extension_data = ext_data
        self.padding_length = <int>_int_in(padding_length, "padding_length", 0, 255)

    @classmethod
    def parse(cls, data):
        """Parse one RTP packet.

        Args:
            data: the datagram (bytes, bytearray, memoryview or any C-contiguous buffer). Not copied: the
                returned packet's ``payload`` is a view into it.

        Returns:
            The packet.

        Raises:
            RtpParseError: short packet, wrong version, CSRC list / extension / padding running past the end.
            TypeError: ``data`` is not a bytes-like object.
        """
        cdef Py_buffer view
        cdef RtpPacket pkt
        if cls is RtpPacket:
            pkt = RtpPacket.__new__(RtpPacket)
        else:
            pkt = cls.__new__(cls)
        if type(data) is bytes:
            _parse_rtp(pkt, <const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
            pkt._source = <bytes>data
            return pkt
        _read_buffer(data, &view, "RtpPacket.parse()")
        try:
            _parse_rtp(pkt, <const uint8_t*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        pkt._payload = _byte_view(data)[pkt._poff:pkt._poff + pkt._plen]
        return pkt

    @property
    def version(self):
        """Always 2."""
        return 2

    @property
    def padding(self):
        """The P bit: whether the packet carries padding."""
        return self.padding_length > 0

    @property
    def extension(self):
        """The X bit: whether the packet carries a header extension."""
        return self.extension_profile is not None

    @property
    def payload(self):
        """The payload; a zero-copy memoryview for a parsed packet."""
        if self._payload is None:
            self._payload = _bytes_slice_view(self._source, self._poff, self._plen)
        return self._payload

    cdef Py_ssize_t _payload_len(self):
        if self._payload is None:
            return self._plen
        return len(self._payload)

    cdef Py_ssize_t _header_size(self):
        cdef Py_ssize_t n = 12 + 4 * len(self.csrc)
        if self.extension_profile is not None:
            n += 4 + len(self.extension_data)
        return n

    cdef void _write_header(self, uint8_t* o) noexcept:
        cdef int b0 = 0x80 | <int>len(self.csrc)
        cdef Py_ssize_t i, pos = 12
        cdef Py_ssize_t elen
        if self.padding_length:
            b0 |= 0x20
        if self.extension_profile is not None:
            b0 |= 0x10
        _write_fixed(o, b0, self.payload_type, self.marker, self.sequence_number, self.timestamp, self.ssrc)
        for i in range(len(self.csrc)):
            store_u32(o + pos, <uint32_t>(<object>self.csrc[i]))
            pos += 4
        if self.extension_profile is not None:
            elen = len(self.extension_data)
            store_u16(o + pos, <uint16_t>(<int>self.extension_profile))
            store_u16(o + pos + 2, <uint16_t>(elen // 4))
            if elen:
                memcpy(o + pos + 4, PyBytes_AS_STRING(self.extension_data), elen)

    cdef int _write_into(self, uint8_t* o, Py_ssize_t size) except -1:
        """Write the whole packet (exactly ``size`` bytes, computed by the caller) at ``o``."""
        cdef Py_buffer view
        cdef Py_ssize_t hdr = self._header_size()
        cdef Py_ssize_t plen
        cdef bint overlap = False
        if self._payload is not None and type(self._payload) is not bytes:
            PyObject_GetBuffer(self._payload, &view, PyBUF_SIMPLE)
            overlap = (<uintptr_t>view.buf < <uintptr_t>(o + size)
                       and <uintptr_t>o < <uintptr_t>view.buf + <uintptr_t>view.len)
            PyBuffer_Release(&view)
        if overlap:  # a payload viewing the target (a packet parsed from the buffer it is packed back into):
            snapshot = self.serialize()  # write the packet as it was, as the twin does, never memcpy onto itself
            memcpy(o, PyBytes_AS_STRING(snapshot), size)
            return 0
        self._write_header(o)
        if self._payload is None:
            memcpy(o + hdr, PyBytes_AS_STRING(self._source) + self._poff, self._plen)
            plen = self._plen
        elif type(self._payload) is bytes:
            plen = PyBytes_GET_SIZE(self._payload)
            memcpy(o + hdr, PyBytes_AS_STRING(self._payload), plen)
        else:
            PyObject_GetBuffer(self._payload, &view, PyBUF_SIMPLE)
            try:
                plen = view.len
                if plen != size - hdr - self.padding_length:
                    raise ValueError("the payload buffer changed size")
                memcpy(o + hdr, view.buf, plen)
            finally:
                PyBuffer_Release(&view)
        if self.padding_length:
            memset(o + hdr + plen, 0, self.padding_length - 1)
            o[size - 1] = <uint8_t>self.padding_length
        return 0

    def serialize(self):
        """The packet on the wire.

        Returns:
            A new ``bytes`` object.
        """
        cdef Py_ssize_t size = self._header_size() + self._payload_len() + self.padding_length
        cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
        self._write_into(<uint8_t*>PyBytes_AS_STRING(out), size)
        return out

    def pack_into(self, buffer, offset=0):
        """Write the packet into a caller's buffer (a sender can reuse one buffer for a whole call).

        Args:
            buffer: a writable bytes-like object (bytearray, writable memoryview, numpy uint8 array...).
            offset: where to start writing.

        Returns:
            The number of bytes written.

        Raises:
            ValueError: the buffer is too small or the offset is negative.
            TypeError: the buffer is not writable.
        """
        cdef Py_buffer view
        cdef Py_ssize_t size, pos
        if type(buffer) is bytearray:
            size = self._header_size() + self._payload_len() + self.padding_length
            pos = _offset_in(offset, size, PyByteArray_GET_SIZE(buffer))
            self._write_into(<uint8_t*>PyByteArray_AS_STRING(buffer) + pos, size)
            return size
        _write_buffer(buffer, &view, "pack_into()")
        try:
            size = self._header_size() + self._payload_len() + self.padding_length
            pos = _offset_in(offset, size, view.len)
            self._write_into(<uint8_t*>view.buf + pos, size)
        finally:
            PyBuffer_Release(&view)
        return size

    def header_extensions(self):
        """The RFC 8285 header extension elements, parsed on request.

        Returns:
            ``[(id, data), ...]`` for a one-byte (profile 0xBEDE) or two-byte (profile 0x100X) extension, in wire
            order, padding skipped; ``[]`` without an extension or for another profile. A one-byte element with
            id 15 stops the parse (RFC 8285 §4.2).

        Raises:
            RtpParseError: an element runs past the end of the extension.
        """
        cdef list out = []
        cdef const uint8_t* d
        cdef Py_ssize_t n, pos = 0, length
        cdef int ident, b, profile
        if self.extension_profile is None:
            return out
        profile = <int>self.extension_profile
        d = <const uint8_t*>PyBytes_AS_STRING(self.extension_data)
        n = PyBytes_GET_SIZE(self.extension_data)
        if profile == 0xBEDE:
            while pos < n:
                b = d[pos]
                if b == 0:
                    pos += 1
                    continue
                ident = b >> 4
                if ident == 15:
                    break
                length = (b & 0x0F) + 1
                pos += 1
                if length > n - pos:
                    raise RtpParseError(f"RTP one-byte header extension element {ident} runs past the end")
                out.append((ident, PyBytes_FromStringAndSize(<const char*>d + pos, length)))
                pos += length
        elif (profile & 0xFFF0) == 0x1000:
            while pos < n:
                ident = d[pos]
                if ident == 0:
                    pos += 1
                    continue
                if 2 > n - pos:
                    raise RtpParseError(f"RTP two-byte header extension element {ident} runs past the end")
                length = d[pos + 1]
                pos += 2
                if length > n - pos:
                    raise RtpParseError(f"RTP two-byte header extension element {ident} runs past the end")
                out.append((ident, PyBytes_FromStringAndSize(<const char*>d + pos, length)))
                pos += length
        return out

    def _key(self):
        return (
            self.payload_type,
            self.sequence_number,
            self.timestamp,
            self.ssrc,
            self.marker,
            bytes(self.payload),
            self.csrc,
            self.extension_profile,
            self.extension_data,
            self.padding_length,
        )

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __ne__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._key() != other._key()

    __hash__ = None

    def __len__(self):
        return self._header_size() + self._payload_len() + self.padding_length

    def __repr__(self):
        extra = ""
        if self.csrc:
            extra += f", csrc={self.csrc!r}"
        if self.extension_profile is not None:
            extra += f", extension_profile={self.extension_profile:#06x}, extension_data={self.extension_data!r}"
        if self.padding_length:
            extra += f", padding_length={self.padding_length}"
        return (
            f"RtpPacket(payload_type={self.payload_type}, sequence_number={self.sequence_number}, "
            f"timestamp={self.timestamp}, ssrc={self.ssrc:#010x}, marker={bool(self.marker)}{extra}, "
            f"payload=<{self._payload_len()} bytes>)"
        )


cdef int _parse_rtp(RtpPacket pkt, const uint8_t* p, Py_ssize_t n) except -1:
    """Fill ``pkt`` from ``p[0:n]``; the payload is recorded as (offset, length) in the input."""
    cdef Py_ssize_t pos = 12, words, end = n
    cdef int b0, cc, version, pad = 0, i
    if n < 12:
        raise RtpParseError(f"RTP packet too short: {n} bytes, the fixed header needs 12")
    b0 = p[0]
    version = b0 >> 6
    if version != 2:
        raise RtpParseError(f"RTP version {version} is not supported (expected 2)")
    cc = b0 & 0x0F
    if 4 * cc > n - pos:
        raise RtpParseError(
            f"RTP CSRC list runs past the end: {cc} CSRCs need {12 + 4 * cc} bytes, packet has {n}"
        )
    if cc:
        pkt.csrc = tuple([load_u32(p + pos + 4 * i) for i in range(cc)])
        pos += 4 * cc
    else:
        pkt.csrc = ()
    if b0 & 0x10:
        if 4 > n - pos:
            raise RtpParseError(
                f"RTP header extension runs past the end: its header needs {pos + 4} bytes, packet has {n}"
            )
        pkt.extension_profile = load_u16(p + pos)
        words = load_u16(p + pos + 2)
        pos += 4
        if 4 * words > n - pos:
            raise RtpParseError(
                f"RTP header extension runs past the end: {words} words need {pos + 4 * words} bytes, "
                f"packet has {n}"
            )
        pkt.extension_data = PyBytes_FromStringAndSize(<const char*>p + pos, 4 * words)
        pos += 4 * words
    else:
        pkt.extension_data = b""
    if b0 & 0x20:
        if n == pos:
            raise RtpParseError("RTP padding bit set but no bytes follow the header")
        pad = p[n - 1]
        if pad == 0:
            raise RtpParseError("RTP padding length is 0 (must be at least 1)")
        if pad > n - pos:
            raise RtpParseError(
                f"RTP padding length {pad} runs past the end: only {n - pos} bytes follow the header"
            )
        end = n - pad
    pkt.payload_type = p[1] & 0x7F
    pkt.marker = (p[1] & 0x80) != 0
    pkt.sequence_number = load_u16(p + 2)
    pkt.timestamp = load_u32(p + 4)
    pkt.ssrc = load_u32(p + 8)
    pkt.padding_length = pad
    pkt._poff = pos
    pkt._plen = end - pos
    return 0


def write_header(buffer, offset, payload_type, sequence_number, timestamp, ssrc, marker=False):
    """Write a 12-byte RTP fixed header (no CSRC, extension or padding) into a caller's buffer.

    Args:
        buffer: a writable bytes-like object.
        offset: where the header starts.
        payload_type: 0..127.
        sequence_number: 0..65535.
        timestamp: 0..2**32-1.
        ssrc: 0..2**32-1.
        marker: the M bit.

    Returns:
        12, the number of bytes written.

    Raises:
        ValueError: a field out of range, the buffer too small or the offset negative.
        TypeError: the buffer is not writable or a field is not an int.
    """
    cdef Py_buffer view
    cdef int pt, seq
    cdef uint32_t ts, ss
    cdef Py_ssize_t pos
    cdef bint is_ba = type(buffer) is bytearray
    if not is_ba:
        _write_buffer(buffer, &view, "write_header()")
    try:
        pt = <int>_int_in(payload_type, "payload_type", 0, 127)
        seq = <int>_int_in(sequence_number, "sequence_number", 0, 0xFFFF)
        ts = <uint32_t>_int_in(timestamp, "timestamp", 0, U32_MAX)
        ss = <uint32_t>_int_in(ssrc, "ssrc", 0, U32_MAX)
        if is_ba:
            pos = _offset_in(offset, 12, PyByteArray_GET_SIZE(buffer))
            _write_fixed(<uint8_t*>PyByteArray_AS_STRING(buffer) + pos, 0x80, pt, marker, seq, ts, ss)
        else:
            pos = _offset_in(offset, 12, view.len)
            _write_fixed(<uint8_t*>view.buf + pos, 0x80, pt, marker, seq, ts, ss)
    finally:
        if not is_ba:
            PyBuffer_Release(&view)
    return 12


def write_packet(buffer, offset, payload_type, sequence_number, timestamp, ssrc, payload, marker=False):
    """Write a whole plain RTP packet (12-byte header + payload) into a caller's buffer.

    Args:
        buffer: a writable bytes-like object.
        offset: where the packet starts.
        payload_type: 0..127.
        sequence_number: 0..65535.
        timestamp: 0..2**32-1.
        ssrc: 0..2**32-1.
        payload: the payload (any bytes-like object).
        marker: the M bit.

    Returns:
        The number of bytes written (12 + payload length).

    Raises:
        ValueError: a field out of range, the buffer too small or the offset negative.
        TypeError: the buffer is not writable, the payload not bytes-like or a field not an int.
    """
    cdef Py_buffer view, pview
    cdef const uint8_t* pl
    cdef Py_ssize_t plen, pos, size
    cdef uint8_t* o
    cdef int pt, seq
    cdef uint32_t ts, ss
    cdef bint pl_bytes = type(payload) is bytes
    cdef bint is_ba = type(buffer) is bytearray
    if not is_ba:
        _write_buffer(buffer, &view, "write_packet()")
    try:
        pt = <int>_int_in(payload_type, "payload_type", 0, 127)
        seq = <int>_int_in(sequence_number, "sequence_number", 0, 0xFFFF)
        ts = <uint32_t>_int_in(timestamp, "timestamp", 0, U32_MAX)
        ss = <uint32_t>_int_in(ssrc, "ssrc", 0, U32_MAX)
        if pl_bytes:
            pl = <const uint8_t*>PyBytes_AS_STRING(payload)
            plen = PyBytes_GET_SIZE(payload)
        else:
            _read_buffer(payload, &pview, "payload")
            pl = <const uint8_t*>pview.buf
            plen = pview.len
        try:
            size = 12 + plen
            if is_ba:
                pos = _offset_in(offset, size, PyByteArray_GET_SIZE(buffer))
                o = <uint8_t*>PyByteArray_AS_STRING(buffer) + pos
            else:
                pos = _offset_in(offset, size, view.len)
                o = <uint8_t*>view.buf + pos
            if <uintptr_t>pl < <uintptr_t>(o + size) and <uintptr_t>o < <uintptr_t>(pl + plen):
                snapshot = PyBytes_FromStringAndSize(<const char*>pl, plen)  # the payload as it was (as the twin)
                pl = <const uint8_t*>PyBytes_AS_STRING(snapshot)
            _write_fixed(o, 0x80, pt, marker, seq, ts, ss)
            memcpy(o + 12, pl, plen)
        finally:
            if not pl_bytes:
                PyBuffer_Release(&pview)
    finally:
        if not is_ba:
            PyBuffer_Release(&view)
    return size


def build_packet(payload_type, sequence_number, timestamp, ssrc, payload, marker=False):
    """Build a plain RTP packet (12-byte header + payload) as new bytes: the sender's fast path.

    Args:
        payload_type: 0..127.
        sequence_number: 0..65535.
        timestamp: 0..2**32-1.
        ssrc: 0..2**32-1.
        payload: the payload (any bytes-like object).
        marker: the M bit.

    Returns:
        The packet.

    Raises:
        ValueError: a field out of range.
        TypeError: the payload is not bytes-like or a field is not an int.
    """
    cdef Py_buffer pview
    cdef bytes out
    cdef uint8_t* o
    cdef int pt = <int>_int_in(payload_type, "payload_type", 0, 127)
    cdef int seq = <int>_int_in(sequence_number, "sequence_number", 0, 0xFFFF)
    cdef uint32_t ts = <uint32_t>_int_in(timestamp, "timestamp", 0, U32_MAX)
    cdef uint32_t ss = <uint32_t>_int_in(ssrc, "ssrc", 0, U32_MAX)
    cdef Py_ssize_t plen
    if type(payload) is bytes:
        plen = PyBytes_GET_SIZE(payload)
        out = PyBytes_FromStringAndSize(NULL, 12 + plen)
        o = <uint8_t*>PyBytes_AS_STRING(out)
        _write_fixed(o, 0x80, pt, marker, seq, ts, ss)
        memcpy(o + 12, PyBytes_AS_STRING(payload), plen)
        return out
    _read_buffer(payload, &pview, "payload")
    try:
        out = PyBytes_FromStringAndSize(NULL, 12 + pview.len)
        o = <uint8_t*>PyBytes_AS_STRING(out)
        _write_fixed(o, 0x80, pt, marker, seq, ts, ss)
        memcpy(o + 12, pview.buf, pview.len)
    finally:
        PyBuffer_Release(&pview)
    return out


# build_packet, write_header and write_packet: METH_FASTCALL functions written in C. A Cython ``def`` with six to
# eight parameters spends about 35 ns parsing its arguments, more than the work (an allocation or a 12-byte write
# and a 160-byte copy), so the common call -- positional arguments that are exact ints in range, exact bytes, an
# exact bytearray as the target and a bool marker -- is served by C code that reads them straight from the
# argument vector, checks every range and length, and writes. Any other call (keywords, other buffer or int
# types, a value out of range, a buffer too small) goes to the checked ``def`` of the same name, which raises the
# documented errors. Both write the same bytes (tests/test_rtp.py compares every call form).
cdef extern from *:
    """
    static PyObject *pvf_build_fallback = NULL, *pvf_header_fallback = NULL, *pvf_packet_fallback = NULL;

    static inline int pvf_small_uint(PyObject *v, unsigned long long high, unsigned long long *out) {
        /* exact int, non-negative and <= high: 1; anything else: 0 (the checked path decides) */
        if (!PyLong_CheckExact(v)) return 0;
    #if PY_VERSION_HEX >= 0x030C0000
        if (!PyUnstable_Long_IsCompact((PyLongObject *)v)) {
            int overflow = 0;
            long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow || x < 0 || (unsigned long long)x > high) { PyErr_Clear(); return 0; }
            *out = (unsigned long long)x;
            return 1;
        }
        {
            Py_ssize_t x = PyUnstable_Long_CompactValue((PyLongObject *)v);
            if (x < 0 || (unsigned long long)x > high) return 0;
            *out = (unsigned long long)x;
            return 1;
        }
    #else
        {
            Py_ssize_t size = Py_SIZE(v);
            const digit *d = ((PyLongObject *)v)->ob_digit;
            unsigned long long x;
            if (size == 0) x = 0;
            else if (size == 1) x = d[0];
            else if (size == 2) x = ((unsigned long long)d[1] << PyLong_SHIFT) | d[0];
            else return 0;
            if (x > high) return 0;
            *out = x;
            return 1;
        }
    #endif
    }

    /* args[0..3] = payload_type, sequence_number, timestamp, ssrc; marker = NULL (absent), Py_True or Py_False.
       Writes the 12-byte fixed header to o and returns 1, or returns 0 without writing (take the checked path). */
    static inline int pvf_header(PyObject *const *args, PyObject *marker, unsigned char *o) {
        unsigned long long pt, seq, ts, ss;
        if (!(pvf_small_uint(args[0], 127, &pt) && pvf_small_uint(args[1], 0xFFFF, &seq)
              && pvf_small_uint(args[2], 0xFFFFFFFFULL, &ts) && pvf_small_uint(args[3], 0xFFFFFFFFULL, &ss)))
            return 0;
        if (marker != NULL && marker != Py_True && marker != Py_False) return 0;
        if (o == NULL) return 1;
        o[0] = 0x80;
        o[1] = (unsigned char)(pt | (marker == Py_True ? 0x80 : 0));
        o[2] = (unsigned char)(seq >> 8); o[3] = (unsigned char)seq;
        o[4] = (unsigned char)(ts >> 24); o[5] = (unsigned char)(ts >> 16);
        o[6] = (unsigned char)(ts >> 8); o[7] = (unsigned char)ts;
        o[8] = (unsigned char)(ss >> 24); o[9] = (unsigned char)(ss >> 16);
        o[10] = (unsigned char)(ss >> 8); o[11] = (unsigned char)ss;
        return 1;
    }

    /* the start of `need` writable bytes at args[1] (the offset) in the exact bytearray args[0], or NULL */
    static inline unsigned char *pvf_target(PyObject *const *args, Py_ssize_t need) {
        unsigned long long off;
        Py_ssize_t size;
        if (!PyByteArray_CheckExact(args[0]) || !pvf_small_uint(args[1], (unsigned long long)PY_SSIZE_T_MAX, &off))
            return NULL;
        size = PyByteArray_GET_SIZE(args[0]);
        if (size < need || off > (unsigned long long)(size - need)) return NULL;
        return (unsigned char *)PyByteArray_AS_STRING(args[0]) + off;
    }

    static PyObject *pvf_build_packet(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
        Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
        (void)self;
        if (kwnames == NULL && (nargs == 5 || nargs == 6) && PyBytes_CheckExact(args[4])
                && pvf_header(args, nargs == 6 ? args[5] : NULL, NULL)) {
            Py_ssize_t n = PyBytes_GET_SIZE(args[4]);
            PyObject *out = PyBytes_FromStringAndSize(NULL, 12 + n);
            unsigned char *o;
            if (out == NULL) return NULL;
            o = (unsigned char *)PyBytes_AS_STRING(out);
            pvf_header(args, nargs == 6 ? args[5] : NULL, o);
            memcpy(o + 12, PyBytes_AS_STRING(args[4]), (size_t)n);
            return out;
        }
        return PyObject_Vectorcall(pvf_build_fallback, args, nargsf, kwnames);
    }

    static PyObject *pvf_write_header(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
        Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
        unsigned char *o;
        (void)self;
        if (kwnames == NULL && (nargs == 6 || nargs == 7) && (o = pvf_target(args, 12)) != NULL
                && pvf_header(args + 2, nargs == 7 ? args[6] : NULL, o))
            return PyLong_FromLong(12);
        return PyObject_Vectorcall(pvf_header_fallback, args, nargsf, kwnames);
    }

    static PyObject *pvf_write_packet(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
        Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
        unsigned char *o;
        (void)self;
        if (kwnames == NULL && (nargs == 7 || nargs == 8) && PyBytes_CheckExact(args[6])) {
            Py_ssize_t n = PyBytes_GET_SIZE(args[6]);
            if ((o = pvf_target(args, 12 + n)) != NULL && pvf_header(args + 2, nargs == 8 ? args[7] : NULL, o)) {
                memcpy(o + 12, PyBytes_AS_STRING(args[6]), (size_t)n);
                return PyLong_FromSsize_t(12 + n);
            }
        }
        return PyObject_Vectorcall(pvf_packet_fallback, args, nargsf, kwnames);
    }

    static PyMethodDef pvf_defs[3] = {
        {"build_packet", (PyCFunction)(void (*)(void))pvf_build_packet, METH_FASTCALL | METH_KEYWORDS, NULL},
        {"write_header", (PyCFunction)(void (*)(void))pvf_write_header, METH_FASTCALL | METH_KEYWORDS, NULL},
        {"write_packet", (PyCFunction)(void (*)(void))pvf_write_packet, METH_FASTCALL | METH_KEYWORDS, NULL},
    };

    /* which: 0 build_packet, 1 write_header, 2 write_packet; doc: the checked def's docstring with a text signature */
    static PyObject *pvf_make_fast(int which, PyObject *fallback, PyObject *module_name, const char *doc) {
        PyObject **slot = which == 0 ? &pvf_build_fallback : which == 1 ? &pvf_header_fallback : &pvf_packet_fallback;
        Py_XINCREF(fallback);
        Py_XSETREF(*slot, fallback);
        pvf_defs[which].ml_doc = doc;
        return PyCFunction_NewEx(&pvf_defs[which], NULL, module_name);
    }
    """
    object pvf_make_fast(int which, object fallback, object module_name, const char *doc)


cdef bytes _fast_doc(str signature, object checked):
    """The checked def's docstring under a ``name(args)\\n--\\n\\n`` text signature (what inspect reads)."""
    lines = (checked.__doc__ or "").split("\n")
    if lines and lines[0].startswith(checked.__name__ + "("):  # embedsignature's first line
        lines = lines[1:]
    return (signature + "\n--\n\n" + "\n".join(lines).strip() + "\n").encode()


# kept alive for the C functions' ml_doc pointers
_FAST_DOCS = (
    _fast_doc("build_packet(payload_type, sequence_number, timestamp, ssrc, payload, marker=False)", build_packet),
    _fast_doc("write_header(buffer, offset, payload_type, sequence_number, timestamp, ssrc, marker=False)",
              write_header),
    _fast_doc("write_packet(buffer, offset, payload_type, sequence_number, timestamp, ssrc, payload, marker=False)",
              write_packet),
)
_build_packet_checked = build_packet
_write_header_checked = write_header
_write_packet_checked = write_packet
build_packet = pvf_make_fast(0, _build_packet_checked, __name__, _FAST_DOCS[0])
write_header = pvf_make_fast(1, _write_header_checked, __name__, _FAST_DOCS[1])
write_packet = pvf_make_fast(2, _write_packet_checked, __name__, _FAST_DOCS[2])


# ---------------------------------------------------------------------------------------------------------------
# RTCP

cdef class _Record:
    """Immutable fields, value equality over ``_fields`` and a readable repr (a frozen dataclass).

    List-valued fields (report blocks, chunks, items, sources) are lists the caller may edit; they are checked
    again when the packet is serialised.
    """

    _fields = ()

    def _values(self):
        return tuple([getattr(self, f) for f in self._fields])

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __ne__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._values() != other._values()

    __hash__ = None

    def __repr__(self):
        inner = ", ".join([f"{f}={getattr(self, f)!r}" for f in self._fields])
        return f"{type(self).__name__}({inner})"

    # every packet and block class defines these two (_Record is only a base): its exact wire size, and a writer
    # that fills exactly that many bytes at o and returns the end
    cdef Py_ssize_t _size(self) except -1:
        raise NotImplementedError(f"{type(self).__name__} does not define _size()")

    cdef uint8_t* _write(self, uint8_t* o) except NULL:
        raise NotImplementedError(f"{type(self).__name__} does not define _write()")

    def serialize(self):
        """The wire form (for a packet class: a valid stand-alone RTCP packet, 32-bit aligned).

        Raises:
            ValueError: a list field grew beyond what the packet can carry (at most 31 entries).
        """
        cdef Py_ssize_t n = self._size()
        cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
        self._write(<uint8_t*>PyBytes_AS_STRING(out))
        return out


cdef class RtcpPacket(_Record):
    """Base of the RTCP packet classes (SR, RR, SDES, BYE, APP); ``packet_type`` is the RTCP PT."""

    packet_type = 0


cdef class ReportBlock(_Record):
    """A reception report block (RFC 3550 §6.4.1).

    Args:
        ssrc: the source this block reports on.
        fraction_lost: 0..255, fixed point lost/expected * 256 over the last interval.
        cumulative_lost: signed 24-bit (-8388608..8388607); negative when duplicates were counted.
        highest_sequence: extended highest sequence number received (cycles << 16 | seq).
        jitter: interarrival jitter in timestamp units.
        lsr: middle 32 bits of the NTP timestamp of the last SR received (0 if none).
        dlsr: delay since that SR, in 1/65536 s (0 if none).
    """

    _fields = ("ssrc", "fraction_lost", "cumulative_lost", "highest_sequence", "jitter", "lsr", "dlsr")
    cdef readonly uint32_t ssrc
    cdef readonly int fraction_lost
    cdef readonly int cumulative_lost
    cdef readonly uint32_t highest_sequence
    cdef readonly uint32_t jitter
    cdef readonly uint32_t lsr
    cdef readonly uint32_t dlsr

    def __init__(self, ssrc, fraction_lost, cumulative_lost, highest_sequence, jitter, lsr, dlsr):
        self.ssrc = <uint32_t>_int_in(ssrc, "ssrc", 0, U32_MAX)
        self.fraction_lost = <int>_int_in(fraction_lost, "fraction_lost", 0, 255)
        self.cumulative_lost = <int>_int_in(cumulative_lost, "cumulative_lost", -0x800000, 0x7FFFFF)
        self.highest_sequence = <uint32_t>_int_in(highest_sequence, "highest_sequence", 0, U32_MAX)
        self.jitter = <uint32_t>_int_in(jitter, "jitter", 0, U32_MAX)
        self.lsr = <uint32_t>_int_in(lsr, "lsr", 0, U32_MAX)
        self.dlsr = <uint32_t>_int_in(dlsr, "dlsr", 0, U32_MAX)

    cdef Py_ssize_t _size(self) except -1:
        return 24

    cdef uint8_t* _write(self, uint8_t* o) except NULL:
        store_u32(o, self.ssrc)
        store_u32(o + 4, (<uint32_t>self.fraction_lost << 24) | (<uint32_t>self.cumulative_lost & 0xFFFFFF))
        store_u32(o + 8, self.highest_sequence)
        store_u32(o + 12, self.jitter)
        store_u32(o + 16, self.lsr)
        store_u32(o + 20, self.dlsr)
        return o + 24


cdef ReportBlock _new_block(uint32_t ssrc, int fraction, int lost, uint32_t highest, uint32_t jitter,
                            uint32_t lsr, uint32_t dlsr):
    """A ReportBlock from values already in range (for the statistics module and the parser)."""
    cdef ReportBlock b = ReportBlock.__new__(ReportBlock)
    b.ssrc = ssrc
    b.fraction_lost = fraction
    b.cumulative_lost = lost
    b.highest_sequence = highest
    b.jitter = jitter
    b.lsr = lsr
    b.dlsr = dlsr
    return b


cdef list _check_blocks(object reports):
    cdef list blocks = list(reports)
    if len(blocks) > 31:
        raise ValueError(f"an RTCP report carries at most 31 report blocks, got {len(blocks)}")
    for b in blocks:
        if not isinstance(b, ReportBlock):
            raise TypeError(f"reports must be ReportBlock objects, not {type(b).__name__}")
    return blocks


cdef Py_ssize_t _blocks_size(list blocks) except -1:
    if len(blocks) > 31:
        raise ValueError(f"an RTCP report carries at most 31 report blocks, got {len(blocks)}")
    for b in blocks:
        if not isinstance(b, ReportBlock):
            raise TypeError(f"reports must be ReportBlock objects, not {type(b).__name__}")
    return 24 * len(blocks)


cdef class SenderReport(RtcpPacket):
    """RTCP SR (RFC 3550 §6.4.1), packet type 200.

    Args:
        ssrc: the sender's SSRC.
        ntp_timestamp: 64-bit NTP timestamp of this report (see :func:`pyvoip_fast.rtp.ntp.ntp_from_unix`).
        rtp_timestamp: the same instant in RTP timestamp units.
        packet_count: sender's packet count (32 bits).
        octet_count: sender's payload octet count (32 bits).
        reports: up to 31 :class:`ReportBlock`.
    """

    _fields = ("ssrc", "ntp_timestamp", "rtp_timestamp", "packet_count", "octet_count", "reports")
    packet_type = RTCP_SR
    cdef readonly uint32_t ssrc
    cdef readonly uint64_t ntp_timestamp
    cdef readonly uint32_t rtp_timestamp
    cdef readonly uint32_t packet_count
    cdef readonly uint32_t octet_count
    cdef readonly list reports

    def __init__(self, ssrc, ntp_timestamp, rtp_timestamp, packet_count, octet_count, reports=()):
        self.ssrc = <uint32_t>_int_in(ssrc, "ssrc", 0, U32_MAX)
        self.ntp_timestamp = _u64_in(ntp_timestamp, "ntp_timestamp")
        self.rtp_timestamp = <uint32_t>_int_in(rtp_timestamp, "rtp_timestamp", 0, U32_MAX)
        self.packet_count = <uint32_t>_int_in(packet_count, "packet_count", 0, U32_MAX)
        self.octet_count = <uint32_t>_int_in(octet_count, "octet_count", 0, U32_MAX)
        self.reports = _check_blocks(reports)

    cdef Py_ssize_t _size(self) except -1:
        return 28 + _blocks_size(self.reports)

    cdef uint8_t* _write(self, uint8_t* o) except NULL:
        cdef Py_ssize_t rc = len(self.reports)
        o[0] = <uint8_t>(0x80 | rc)
        o[1] = RTCP_SR
        store_u16(o + 2, <uint16_t>(6 + 6 * rc))
        store_u32(o + 4, self.ssrc)
        store_u64(o + 8, self.ntp_timestamp)
        store_u32(o + 16, self.rtp_timestamp)
        store_u32(o + 20, self.packet_count)
        store_u32(o + 24, self.octet_count)
        o += 28
        for b in self.reports:
            o = (<ReportBlock>b)._write(o)
        return o


cdef class ReceiverReport(RtcpPacket):
    """RTCP RR (RFC 3550 §6.4.2), packet type 201.

    Args:
        ssrc: the reporter's SSRC.
        reports: up to 31 :class:`ReportBlock`.
    """

    _fields = ("ssrc", "reports")
    packet_type = RTCP_RR
    cdef readonly uint32_t ssrc
    cdef readonly list reports

    def __init__(self, ssrc, reports=()):
        self.ssrc = <uint32_t>_int_in(ssrc, "ssrc", 0, U32_MAX)
        self.reports = _check_blocks(reports)

    cdef Py_ssize_t _size(self) except -1:
        return 8 + _blocks_size(self.reports)

    cdef uint8_t* _write(self, uint8_t* o) except NULL:
        cdef Py_ssize_t rc = len(self.reports)
        o[0] = <uint8_t>(0x80 | rc)
        o[1] = RTCP_RR
        store_u16(o + 2, <uint16_t>(1 + 6 * rc))
        store_u32(o + 4, self.ssrc)
        o += 8
        for b in self.reports:
            o = (<ReportBlock>b)._write(o)
        return o


cdef list _check_items(object items):
    cdef list out = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError("SDES items must be (type, value) tuples")
        t = _int_in(item[0], "SDES item type", 1, 255)
        v = item[1]
        if isinstance(v, str):
            v = v.encode("utf-8")
        v = _bytes_in(v, "SDES item value")
        if len(v) > 255:
            raise ValueError(f"SDES item value is too long: {len(v)} bytes (max 255)")
        out.append((t, v))
    return out


cdef Py_ssize_t _items_size(list items) except -1:
    """Wire size of a chunk's items (no SSRC, no terminator); the strict check done before every write."""
    cdef Py_ssize_t n = 0
    for item in items:
        if type(item) is not tuple or len(<tuple>item) != 2:
            raise TypeError("SDES items must be (type, value) tuples")
        _int_in((<tuple>item)[0], "SDES item type", 1, 255)
        v = (<tuple>item)[1]
        if type(v) is not bytes:
            raise TypeError(f"SDES item value must be bytes, not {type(v).__name__}")
        if PyBytes_GET_SIZE(v) > 255:
            raise ValueError(f"SDES item value is too long: {len(v)} bytes (max 255)")
        n += 2 + PyBytes_GET_SIZE(v)
    return n


cdef class SdesChunk(_Record):
    """One SDES chunk: an SSRC/CSRC and its items (RFC 3550 §6.5).

    Args:
        ssrc: the source described.
        items: ``[(type, value), ...]`` with type 1..255 (1 CNAME, 2 NAME, 3 EMAIL, 4 PHONE, 5 LOC, 6 TOOL,
            7 NOTE, 8 PRIV) and a value of at most 255 bytes (``str`` is encoded as UTF-8).
    """

    _fields = ("ssrc", "items")
    cdef readonly uint32_t ssrc
    cdef readonly list items

    def __init__(self, ssrc, items=()):
        self.ssrc = <uint32_t>_int_in(ssrc, "ssrc", 0, U32_MAX)
        self.items = _check_items(items)

    @property
    def cname(self):
        """The first CNAME item's value, or None."""
        for t, v in self.items:
            if t == 1:
                return v
        return None

    cdef Py_ssize_t _size(self) except -1:
        return (4 + _items_size(self.items) + 1 + 3) & ~3

    cdef uint8_t* _write(self, uint8_t* o) except NULL:
        cdef uint8_t* start = o
        cdef Py_ssize_t vlen, used
        store_u32(o, self.ssrc)
        o += 4
        for item in self.items:
            v = (<tuple>item)[1]
            vlen = PyBytes_GET_SIZE(v)
            o[0] = <uint8_t>(<int>(<tuple>item)[0])
            o[1] = <uint8_t>vlen
            memcpy(o + 2, PyBytes_AS_STRING(v), vlen)
            o += 2 + vlen
        used = (o - start) + 1
        memset(o, 0, ((used + 3) & ~3) - (o - start))
        return start + ((used + 3) & ~3)


cdef list _check_chunks(object chunks):
    cdef list out = list(chunks)
    if len(out) > 31:
        raise ValueError(f"an RTCP SDES packet carries at most 31 chunks, got {len(out)}")
    for c in out:
        if not isinstance(c, SdesChunk):
            raise TypeError(f"chunks must be SdesChunk objects, not {type(c).__name__}")
    return out


cdef class SourceDescription(RtcpPacket):
    """RTCP SDES (RFC 3550 §6.5), packet type 202.

    Args:
        chunks: up to 31 :class:`SdesChunk`.
    """

    _fields = ("chunks",)
    packet_type = RTCP_SDES
    cdef readonly list chunks

    def __init__(self, chunks=()):
        self.chunks = _check_chunks(chunks)

    @classmethod
    def cname_for(cls, ssrc, cname):
        """An SDES packet with one chunk carrying just a CNAME item (what every compound packet needs)."""
        cdef SdesChunk chunk
        cdef SourceDescription sdes
        if cls is not SourceDescription:
            return cls([SdesChunk(ssrc, [(1, cname)])])
        chunk = SdesChunk.__new__(SdesChunk)
        chunk.ssrc = <uint32_t>_int_in(ssrc, "ssrc", 0, U32_MAX)
        if type(cname) is bytes and PyBytes_GET_SIZE(cname) <= 255:
            chunk.items = [(1, cname)]  # the common case, already valid
        else:
            chunk.items = _check_items(((1, cname),))
        sdes = SourceDescription.__new__(SourceDescription)
        sdes.chunks = [chunk]
        return sdes

    cdef Py_ssize_t _size(self) except -1:
        cdef Py_ssize_t n = 4
        if len(self.chunks) > 31:
            raise ValueError(f"an RTCP SDES packet carries at most 31 chunks, got {len(self.chunks)}")
        for c in self.chunks:
            if not isinstance(c, SdesChunk):
                raise TypeError(f"chunks must be SdesChunk objects, not {type(c).__name__}")
            n += (<SdesChunk>c)._size()
        return n

    cdef uint8_t* _write(self, uint8_t* o) except NULL:
        cdef uint8_t* start = o
        o += 4
        for c in self.chunks:
            o = (<SdesChunk>c)._write(o)
        start[0] = <uint8_t>(0x80 | len(self.chunks))
        start[1] = RTCP_SDES
        store_u16(start + 2, <uint16_t>((o - start) // 4 - 1))
        return o


cdef list _check_sources(object sources):
    cdef list out = list(sources)
    if len(out) > 31:
        raise ValueError(f"an RTCP BYE carries at most 31 sources, got {len(out)}")
    for s in out:
        _int_in(s, "BYE source", 0, U32_MAX)
    return out


cdef object _check_reason(object reason):
    if reason is None:
        return None
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    reason = _bytes_in(reason, "reason")
    if len(reason) > 255:
        raise ValueError(f"BYE reason is too long: {len(reason)} bytes (max 255)")
    return reason


cdef class Bye(RtcpPacket):
    """RTCP BYE (RFC 3550 §6.6), packet type 203.

    Args:
        sources: up to 31 SSRC/CSRC identifiers leaving.
        reason: optional reason for leaving (``str`` is encoded as UTF-8; at most 255 bytes); read back as bytes.
    """

    _fields = ("sources", "reason")
    packet_type = RTCP_BYE
    cdef readonly list sources
    cdef readonly object reason

    def __init__(self, sources=(), reason=None):
        self.sources = _check_sources(sources)
        self.reason = _check_reason(reason)

    cdef Py_ssize_t _size(self) except -1:
        cdef Py_ssize_t n
        _check_sources(self.sources)
        n = 4 + 4 * len(self.sources)
        if self.reason is not None:
            n += (1 + PyBytes_GET_SIZE(self.reason) + 3) & ~3
        return n

    cdef uint8_t* _write(self, uint8_t* o) except NULL:
        cdef uint8_t* start = o
        cdef Py_ssize_t rlen, used
        o += 4
        for s in self.sources:
            store_u32(o, <uint32_t>s)
            o += 4
        if self.reason is not None:
            rlen = PyBytes_GET_SIZE(self.reason)
            o[0] = <uint8_t>rlen
            memcpy(o + 1, PyBytes_AS_STRING(self.reason), rlen)
            used = 1 + rlen
            memset(o + used, 0, ((used + 3) & ~3) - used)
            o += (used + 3) & ~3
        start[0] = <uint8_t>(0x80 | len(self.sources))
        start[1] = RTCP_BYE
        store_u16(start + 2, <uint16_t>((o - start) // 4 - 1))
        return o


cdef class App(RtcpPacket):
    """RTCP APP (RFC 3550 §6.7), packet type 204, kept opaque.

    Args:
        subtype: 0..31.
        ssrc: the sender's SSRC.
        name: exactly 4 bytes (ASCII ``str`` accepted).
        data: application data, a multiple of 4 bytes.
    """

    _fields = ("subtype", "ssrc", "name", "data")
    packet_type = RTCP_APP
    cdef readonly int subtype
    cdef readonly uint32_t ssrc
    cdef readonly bytes name
    cdef readonly bytes data

    def __init__(self, subtype, ssrc, name, data=b""):
        self.subtype = <int>_int_in(subtype, "subtype", 0, 31)
        self.ssrc = <uint32_t>_int_in(ssrc, "ssrc", 0, U32_MAX)
        if isinstance(name, str):
            name = name.encode("ascii")
        name = _bytes_in(name, "name")
        if len(name) != 4:
            raise ValueError(f"APP name must be exactly 4 bytes, got {len(name)}")
        self.name = name
        data = _bytes_in(data, "data")
        if len(data) % 4:
            raise ValueError(f"APP data length must be a multiple of 4, got {len(data)}")
        self.data = data

    cdef Py_ssize_t _size(self) except -1:
        return 12 + ((PyBytes_GET_SIZE(self.data) + 3) & ~3)

    cdef uint8_t* _write(self, uint8_t* o) except NULL:
        cdef Py_ssize_t dlen = PyBytes_GET_SIZE(self.data)
        cdef Py_ssize_t padded = (dlen + 3) & ~3
        o[0] = <uint8_t>(0x80 | self.subtype)
        o[1] = RTCP_APP
        store_u16(o + 2, <uint16_t>(2 + padded // 4))
        store_u32(o + 4, self.ssrc)
        memcpy(o + 8, PyBytes_AS_STRING(self.name), 4)
        memcpy(o + 12, PyBytes_AS_STRING(self.data), dlen)
        memset(o + 12 + dlen, 0, padded - dlen)
        return o + 12 + padded


def serialize_compound(packets):
    """Concatenate RTCP packets into one compound datagram (RFC 3550 §6.1).

    Args:
        packets: SR/RR first, then SDES with a CNAME, then anything else (the order is the caller's job).

    Returns:
        The compound packet.

    Raises:
        TypeError: something that is not an RTCP packet class of this module (a ReportBlock on its own is not).
        ValueError: a packet that cannot be serialised.
    """
    cdef Py_ssize_t total = 0
    cdef bytes out
    cdef uint8_t* o
    cdef object seq = packets if type(packets) is list or type(packets) is tuple else list(packets)
    for p in seq:
        if not isinstance(p, RtcpPacket):
            raise TypeError(f"serialize_compound() cannot serialize {type(p).__name__}")
        total += (<RtcpPacket>p)._size()
    out = PyBytes_FromStringAndSize(NULL, total)
    o = <uint8_t*>PyBytes_AS_STRING(out)
    for p in seq:
        o = (<RtcpPacket>p)._write(o)
    return out


# ---------------------------------------------------------------------------------------------------------------
# one-call report builder (RFC 3550 §6.1: SR or RR, then SDES CNAME, then an optional BYE)

# largest datagram build_report can make: SR with 31 blocks (28 + 744) + SDES with a 255-byte CNAME (4 + 264)
# + BYE with a 255-byte reason (8 + 256)
cdef enum:
    _REPORT_MAX = 1304


cdef inline uint8_t* _write_block_tuple(uint8_t* o, tuple b) except NULL:
    """Check a 7-tuple report block with ReportBlock's messages and write its 24 bytes."""
    cdef uint32_t fraction, lost
    store_u32(o, <uint32_t>_int_in(b[0], "ssrc", 0, U32_MAX))
    fraction = <uint32_t>_int_in(b[1], "fraction_lost", 0, 255)
    lost = <uint32_t>_int_in(b[2], "cumulative_lost", -0x800000, 0x7FFFFF)
    store_u32(o + 4, (fraction << 24) | (lost & 0xFFFFFF))
    store_u32(o + 8, <uint32_t>_int_in(b[3], "highest_sequence", 0, U32_MAX))
    store_u32(o + 12, <uint32_t>_int_in(b[4], "jitter", 0, U32_MAX))
    store_u32(o + 16, <uint32_t>_int_in(b[5], "lsr", 0, U32_MAX))
    store_u32(o + 20, <uint32_t>_int_in(b[6], "dlsr", 0, U32_MAX))
    return o + 24


def build_report(ssrc, blocks=(), cname=b"", *, ntp_timestamp=None, rtp_timestamp=0, packet_count=0,
                 octet_count=0, reason=None):
    """Build the compound RTCP datagram of one report interval in one call (RFC 3550 §6.1).

    The result is byte for byte ``serialize_compound([SenderReport(ssrc, ntp_timestamp, rtp_timestamp,
    packet_count, octet_count, blocks) or ReceiverReport(ssrc, blocks), SourceDescription.cname_for(ssrc, cname)]
    + [Bye([ssrc], reason or None)])``, without creating those objects.

    Args:
        ssrc: the reporter's SSRC.
        blocks: up to 31 report blocks, each a :class:`ReportBlock` or a 7-tuple ``(ssrc, fraction_lost,
            cumulative_lost, highest_sequence, jitter, lsr, dlsr)`` checked as ReportBlock checks it.
        cname: the CNAME (RFC 3550 §6.5.1), 1..255 bytes; ``str`` is encoded as UTF-8.
        ntp_timestamp: the 64-bit NTP time of the report: given, the first packet is an SR; None, an RR.
        rtp_timestamp: the same instant in RTP units (SR only; checked either way).
        packet_count: sender's packet count (SR only; checked either way).
        octet_count: sender's payload octet count (SR only; checked either way).
        reason: None for no BYE; otherwise a BYE for ``ssrc`` is appended, carrying the reason text when it is
            not empty (``str`` is encoded as UTF-8; at most 255 bytes).

    Returns:
        The compound packet (bytes).

    Raises:
        TypeError: a field of the wrong type, or a block that is neither a ReportBlock nor a tuple.
        ValueError: a field out of range, more than 31 blocks, a block tuple without 7 fields, an empty or too
            long CNAME, a too long reason.
    """
    cdef uint8_t buf[_REPORT_MAX]
    cdef uint8_t* o = buf
    cdef uint32_t ssrc_v = <uint32_t>_int_in(ssrc, "ssrc", 0, U32_MAX)
    cdef bint sr = ntp_timestamp is not None
    cdef uint64_t ntp = _u64_in(ntp_timestamp, "ntp_timestamp") if sr else 0
    cdef uint32_t rtp_ts = <uint32_t>_int_in(rtp_timestamp, "rtp_timestamp", 0, U32_MAX)
    cdef uint32_t pc = <uint32_t>_int_in(packet_count, "packet_count", 0, U32_MAX)
    cdef uint32_t oc = <uint32_t>_int_in(octet_count, "octet_count", 0, U32_MAX)
    cdef object seq = blocks if type(blocks) is tuple or type(blocks) is list else list(blocks)
    cdef Py_ssize_t rc = len(seq)
    cdef Py_ssize_t i, vlen, used
    cdef bytes name, why
    if rc > 31:
        raise ValueError(f"an RTCP report carries at most 31 report blocks, got {rc}")
    o[0] = <uint8_t>(0x80 | rc)
    store_u32(o + 4, ssrc_v)
    if sr:
        o[1] = RTCP_SR
        store_u16(o + 2, <uint16_t>(6 + 6 * rc))
        store_u64(o + 8, ntp)
        store_u32(o + 16, rtp_ts)
        store_u32(o + 20, pc)
        store_u32(o + 24, oc)
        o += 28
    else:
        o[1] = RTCP_RR
        store_u16(o + 2, <uint16_t>(1 + 6 * rc))
        o += 8
    for i in range(rc):
        # by index, re-checking the length: a block's type check may run user code that edits the list, and
        # the stack buffer only has room for the `rc` blocks counted above
        if len(seq) != rc:
            raise ValueError("the report block list changed size")
        b = seq[i]
        if type(b) is ReportBlock:
            o = (<ReportBlock>b)._write(o)
        elif isinstance(b, tuple):
            if len(<tuple>b) != 7:
                raise ValueError(
                    f"a report block tuple needs 7 fields (ssrc, fraction_lost, cumulative_lost, highest_sequence,"
                    f" jitter, lsr, dlsr), got {len(<tuple>b)}"
                )
            o = _write_block_tuple(o, <tuple>b)
        elif isinstance(b, ReportBlock):
            o = (<ReportBlock>b)._write(o)
        else:
            raise TypeError(f"report blocks must be ReportBlock objects or 7-tuples, not {type(b).__name__}")
    # SDES: one chunk, one CNAME item, null terminator, padding to 32 bits
    if type(cname) is bytes:
        name = <bytes>cname
    else:
        if isinstance(cname, str):
            cname = cname.encode("utf-8")
        name = _bytes_in(cname, "SDES item value")
    vlen = PyBytes_GET_SIZE(name)
    if vlen == 0:
        raise ValueError("cname must not be empty (RFC 3550 §6.5.1: every compound packet carries a CNAME)")
    if vlen > 255:
        raise ValueError(f"SDES item value is too long: {vlen} bytes (max 255)")
    used = 4 + 2 + vlen + 1  # the chunk: SSRC, item type and length, value, null item
    o[0] = 0x81
    o[1] = RTCP_SDES
    store_u16(o + 2, <uint16_t>(((used + 3) & ~3) // 4))
    store_u32(o + 4, ssrc_v)
    o[8] = 1
    o[9] = <uint8_t>vlen
    memcpy(o + 10, PyBytes_AS_STRING(name), vlen)
    memset(o + 10 + vlen, 0, ((used + 3) & ~3) - (used - 1))
    o += 4 + ((used + 3) & ~3)
    # BYE for ssrc, with the reason text when there is one
    if reason is not None:
        why = <bytes>_check_reason(reason)
        vlen = PyBytes_GET_SIZE(why)
        o[0] = 0x81
        o[1] = RTCP_BYE
        store_u32(o + 4, ssrc_v)
        if vlen:
            o[8] = <uint8_t>vlen
            memcpy(o + 9, PyBytes_AS_STRING(why), vlen)
            used = 1 + vlen
            memset(o + 9 + vlen, 0, ((used + 3) & ~3) - used)
            store_u16(o + 2, <uint16_t>(1 + ((used + 3) & ~3) // 4))
            o += 8 + ((used + 3) & ~3)
        else:
            store_u16(o + 2, 1)
            o += 8
    return PyBytes_FromStringAndSize(<char*>buf, o - buf)


def parse_rtcp(data, reduced_size=False):
    """Parse a compound RTCP datagram with the validity checks of RFC 3550 §6.1 / A.2.

    Args:
        data: the datagram.
        reduced_size: accept RFC 5506 reduced-size RTCP (a first packet other than SR/RR).

    Returns:
        The packets in order (SR, RR, SDES, BYE and APP objects); packets of unknown types are skipped.

    Raises:
        RtcpParseError: the datagram is not a valid (compound) RTCP packet; the message says why.
        TypeError: ``data`` is not a bytes-like object.
    """
    cdef Py_buffer view
    cdef bint strict = not reduced_size
    if type(data) is bytes:
        return _parse_rtcp(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), strict)
    _read_buffer(data, &view, "rtcp.parse()")
    try:
        return _parse_rtcp(<const uint8_t*>view.buf, view.len, strict)
    finally:
        PyBuffer_Release(&view)


cdef list _parse_rtcp(const uint8_t* p, Py_ssize_t n, bint strict):
    cdef list out = []
    cdef Py_ssize_t pos = 0, plen, end, body, need, q
    cdef int b0, pt, version, count, pad, rlen
    cdef SenderReport sr
    cdef ReceiverReport rr
    cdef Bye bye
    cdef App app
    cdef list sources
    if n < 4:
        raise RtcpParseError(f"RTCP packet too short: {n} bytes, the header needs 4")
    while pos < n:
        if 4 > n - pos:
            raise RtcpParseError(f"RTCP compound packet has {n - pos} trailing bytes after the last packet")
        b0 = p[pos]
        pt = p[pos + 1]
        version = b0 >> 6
        if version != 2:
            raise RtcpParseError(f"RTCP version {version} is not supported (expected 2)")
        plen = (<Py_ssize_t>load_u16(p + pos + 2) + 1) * 4
        if plen > n - pos:
            raise RtcpParseError(f"RTCP packet length {plen} runs past the end: only {n - pos} bytes left")
        if pos == 0 and strict and pt != RTCP_SR and pt != RTCP_RR:
            raise RtcpParseError(f"compound RTCP packet must start with SR or RR, not packet type {pt}")
        end = pos + plen
        if b0 & 0x20:
            if end != n:
                raise RtcpParseError("RTCP padding bit set on a packet that is not the last one")
            pad = p[end - 1]
            if pad == 0:
                raise RtcpParseError("RTCP padding length is 0 (must be at least 1)")
            if pad > plen - 4:
                raise RtcpParseError(f"RTCP padding length {pad} runs past the packet body ({plen - 4} bytes)")
            end -= pad
        count = b0 & 0x1F
        body = end - pos
        if pt == RTCP_SR:
            need = 28 + 24 * count
            if need > body:
                raise RtcpParseError(f"RTCP SR with {count} report blocks needs {need} bytes, packet has {body}")
            sr = SenderReport.__new__(SenderReport)
            sr.ssrc = load_u32(p + pos + 4)
            sr.ntp_timestamp = load_u64(p + pos + 8)
            sr.rtp_timestamp = load_u32(p + pos + 16)
            sr.packet_count = load_u32(p + pos + 20)
            sr.octet_count = load_u32(p + pos + 24)
            sr.reports = _parse_blocks(p + pos + 28, count)
            out.append(sr)
        elif pt == RTCP_RR:
            need = 8 + 24 * count
            if need > body:
                raise RtcpParseError(f"RTCP RR with {count} report blocks needs {need} bytes, packet has {body}")
            rr = ReceiverReport.__new__(ReceiverReport)
            rr.ssrc = load_u32(p + pos + 4)
            rr.reports = _parse_blocks(p + pos + 8, count)
            out.append(rr)
        elif pt == RTCP_SDES:
            out.append(_parse_sdes(p, pos, end, count))
        elif pt == RTCP_BYE:
            need = 4 + 4 * count
            if need > body:
                raise RtcpParseError(f"RTCP BYE with {count} sources needs {need} bytes, packet has {body}")
            bye = Bye.__new__(Bye)
            sources = []
            for q in range(count):
                sources.append(load_u32(p + pos + 4 + 4 * q))
            bye.sources = sources
            q = pos + need
            if q < end:
                rlen = p[q]
                if rlen > end - q - 1:
                    raise RtcpParseError("RTCP BYE reason runs past the end of the packet")
                bye.reason = PyBytes_FromStringAndSize(<const char*>p + q + 1, rlen)
            out.append(bye)
        elif pt == RTCP_APP:
            if 12 > body:
                raise RtcpParseError(f"RTCP APP packet needs 12 bytes, packet has {body}")
            app = App.__new__(App)
            app.subtype = count
            app.ssrc = load_u32(p + pos + 4)
            app.name = PyBytes_FromStringAndSize(<const char*>p + pos + 8, 4)
            app.data = PyBytes_FromStringAndSize(<const char*>p + pos + 12, body - 12)
            out.append(app)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("skipping RTCP packet type %d (%d bytes)", pt, plen)
        pos += plen
    return out


cdef list _parse_blocks(const uint8_t* p, int count):
    """``count`` report blocks at ``p``; the caller checked that 24 * count bytes are there."""
    cdef list blocks = []
    cdef int i
    cdef uint32_t lost
    cdef int signed_lost
    for i in range(count):
        lost = load_u32(p + 4) & 0xFFFFFF
        signed_lost = <int>lost - 0x1000000 if lost & 0x800000 else <int>lost
        blocks.append(_new_block(load_u32(p), p[4], signed_lost, load_u32(p + 8), load_u32(p + 12),
                                 load_u32(p + 16), load_u32(p + 20)))
        p += 24
    return blocks


cdef SourceDescription _parse_sdes(const uint8_t* p, Py_ssize_t pos, Py_ssize_t end, int count):
    cdef list chunks = []
    cdef list items
    cdef Py_ssize_t q = pos + 4
    cdef int i, t, ilen
    cdef SdesChunk chunk
    cdef SourceDescription sdes
    for i in range(count):
        if 4 > end - q:
            raise RtcpParseError(f"RTCP SDES chunk {i} runs past the end of the packet")
        chunk = SdesChunk.__new__(SdesChunk)
        chunk.ssrc = load_u32(p + q)
        q += 4
        items = []
        while True:
            if q >= end:
                raise RtcpParseError(f"RTCP SDES chunk {i} has no terminating null item")
            t = p[q]
            if t == 0:
                q = pos + ((q - pos + 4) & ~3)
                if q > end:
                    raise RtcpParseError(f"RTCP SDES chunk {i} padding runs past the end of the packet")
                break
            if 2 > end - q:
                raise RtcpParseError(f"RTCP SDES item in chunk {i} runs past the end of the packet")
            ilen = p[q + 1]
            if ilen > end - q - 2:
                raise RtcpParseError(f"RTCP SDES item in chunk {i} runs past the end of the packet")
            items.append((t, PyBytes_FromStringAndSize(<const char*>p + q + 2, ilen)))
            q += 2 + ilen
        chunk.items = items
        chunks.append(chunk)
    sdes = SourceDescription.__new__(SourceDescription)
    sdes.chunks = chunks
    return sdes
