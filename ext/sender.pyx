# cython: language_level=3, embedsignature=True
#
# pyvoip_fast.media._sender: the state of one call's paced RTP sender and its common slot, compiled.
#
# Strategy
# --------
# media.sender.RtpSender is a Python subclass of SenderCore. The fields a slot touches live here, as attributes
# the subclass reads and writes; send_slot takes the common slot (no telephone-event playing, a source that has not
# ended, an encoder, a payload type in 0..127) in C: the slot's RTP timestamp, the marker bit, the source's next
# frame (read through the subclass's _read_source, which owns what a failing or ending source means), the encoding,
# the 12-byte header written in place, the transmit callable, the sender statistics and the send times. Every other
# slot goes to the subclass's _send_slot_rest, the whole slot in Python, before anything is changed here: that path
# is the one definition of a slot, and the pure-Python twin (pyvoip_fast/media/_sender_py.py) sends every slot there.
# tests/media/test_sender_parity.py compares the two.

import logging

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

from _wire cimport store_u16, store_u32

__all__ = ["SenderCore"]

# the sender module's own logger: a line logged here is the same line, under the same name, as the Python path's
cdef object logger = logging.getLogger("pyvoip_fast.media.sender")
cdef object _DEBUG = logging.DEBUG
cdef int64_t _SLOT_LIMIT = (<int64_t>1) << 62  # slot numbers beyond this (never reached) take the Python path


cdef class SenderCore:
    """The fields of ``media.sender.RtpSender`` that a slot touches, and its common slot (see the notes)."""

    cdef public int64_t ssrc, _seq, _ts0, frame_timestamps, frame_samples, _last_sent_n, payload_type
    cdef public bint marker_next, we_sent, sent_audio
    cdef public double last_sent_at
    cdef public object first_sent_at, dtmf, dtmf_payload_type, source, source_done, _encoder, _transmit, stats, _now

    def send_slot(self, n):
        """Send slot ``n``'s packet: a telephone-event while a digit plays, else the next frame of audio."""
        cdef int64_t slot, plen
        cdef uint32_t ts
        cdef bint marker
        cdef uint8_t *o
        if type(n) is not int or not -_SLOT_LIMIT < n < _SLOT_LIMIT:
            return self._send_slot_rest(n)
        slot = n
        ds = self.dtmf
        source = self.source
        if ((ds is not None and ds.busy and self.dtmf_payload_type is not None) or source is None
                or self._encoder is None or self.source_done.done() or not 0 <= self.payload_type <= 127
                or not 0 <= self.ssrc <= 0xFFFFFFFF or not 0 <= self._seq <= 0xFFFF):
            return self._send_slot_rest(n)
        # the slot's timestamp: ts0 + n * step modulo 2**32 (unsigned 64-bit arithmetic wraps modulo 2**64, which
        # keeps the low 32 bits exact for any signed operands)
        ts = <uint32_t>(<uint64_t>self._ts0 + <uint64_t>slot * <uint64_t>self.frame_timestamps)
        if slot != self._last_sent_n + 1:
            self.marker_next = True
        pcm = self._read_source()
        if pcm is None:
            return None
        payload = self._encoder.encode(pcm)
        marker = self.marker_next
        self.marker_next = False
        if type(payload) is not bytes:  # an encoder that gives another bytes-like object: the Python send
            self._send(self.payload_type, ts, marker, payload, n)
        else:
            plen = PyBytes_GET_SIZE(payload)
            buf = PyBytes_FromStringAndSize(NULL, 12 + plen)
            o = <uint8_t *>PyBytes_AS_STRING(buf)
            o[0] = 0x80
            o[1] = <uint8_t>((0x80 if marker else 0) | self.payload_type)
            store_u16(o + 2, <unsigned short>self._seq)
            store_u32(o + 4, ts)
            store_u32(o + 8, <uint32_t>self.ssrc)
            if plen:
                memcpy(o + 12, PyBytes_AS_STRING(payload), <size_t>plen)
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFFFF
            self._last_sent_n = slot
            if self._transmit(buf):
                self.stats.on_sent(plen)
                self.we_sent = True
                now = self._now()
                if self.first_sent_at is None:
                    self.first_sent_at = now
                self.last_sent_at = now
                if logger.isEnabledFor(_DEBUG):
                    logger.debug("[RTP] Sending packet: %d bytes (Sequence #%d)", plen, seq)
        self.sent_audio = True
        if getattr(self.source, "eof", False):
            self.finish_source()
        return None

    def _send_slot_rest(self, n):
        raise NotImplementedError("SenderCore is the base of media.sender.RtpSender")
