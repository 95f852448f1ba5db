# cython: language_level=3, embedsignature=True
#
# pyvoip_fast.media._receiver: the state of one call's RTP receiver and its common packet, compiled.
#
# Strategy
# --------
# media.receiver.RtpReceiver is a Python subclass of ReceiverCore. The fields a packet touches live here, as
# attributes the subclass reads and writes; on_datagram takes the common packet (a plain RTP header: version 2, no
# padding, no extension, no CSRC; a payload type with a decoder that is not telephone-event; from the latched
# source; of the current SSRC) without building an RtpPacket: the header is read in place, the RFC 3550 statistics
# are updated, and the payload goes to the jitter buffer (through its C entry point when it is one of the compiled
# buffers). Every other datagram goes to the subclass's _on_datagram_rest, the whole receive path in Python, before
# anything is changed here: so the common packet has exactly one meaning, the Python one, and the pure-Python twin
# (pyvoip_fast/media/_receiver_py.py) simply sends everything there. tests/media/test_receiver_parity.py compares
# the two on the same datagrams.

import logging

import numpy as np

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t

from _wire cimport load_u16, load_u32

from pyvoip_fast.media._jitter cimport JitterBuffer, TimeStretchJitterBuffer
from pyvoip_fast.rtp import stats as _stats

__all__ = ["ReceiverCore"]

# the receiver module's own logger: a line logged here is the same line, under the same name, as the Python path's
cdef object logger = logging.getLogger("pyvoip_fast.media.receiver")
cdef object _DEBUG = logging.DEBUG
cdef object _DUPLICATE = _stats.DUPLICATE
cdef object _zeros = np.zeros
cdef object _int16 = np.int16


cdef class ReceiverCore:
    """The fields of ``media.receiver.RtpReceiver`` that a packet touches, and its common packet (see the notes)."""

    cdef public object remote_rtp, dtmf_payload_type, rx, remote_ssrc, _rx_pt, jb, concealer, _playout, sink
    cdef public dict _decoders
    cdef public bint _latched, receiving
    cdef public double last_rtp_heard
    cdef public int64_t packets, octets, invalid, payload_type, frame_samples, frames_played

    def __cinit__(self, *args, **kwargs):
        self._decoders = {}

    def on_datagram(self, data, addr, double now):
        """Take one RTP datagram; True when it was a valid packet from the peer (it counts as hearing it)."""
        cdef Py_ssize_t n, plen
        cdef const uint8_t *p
        cdef uint8_t b1
        cdef uint32_t ts, ssrc
        cdef int seq
        if not PyBytes_CheckExact(data):
            return self._on_datagram_rest(data, addr, now)
        n = PyBytes_GET_SIZE(data)
        p = <const uint8_t *>PyBytes_AS_STRING(data)
        # version 2 and none of padding, extension, CSRCs: the header is the fixed 12 bytes
        if n < 12 or p[0] != 0x80:
            return self._on_datagram_rest(data, addr, now)
        b1 = p[1]
        pt = b1 & 0x7F
        dtmf = self.dtmf_payload_type
        remote = self.remote_rtp
        if ((dtmf is not None and dtmf == pt) or self._decoders is None or pt not in self._decoders or not self._latched or remote is None
                or type(addr) is not tuple or len(<tuple>addr) < 2 or type(remote) is not tuple
                or len(<tuple>remote) < 2 or not (addr[0] == remote[0] and addr[1] == remote[1])):
            return self._on_datagram_rest(data, addr, now)
        ssrc = load_u32(p + 8)
        known = self.remote_ssrc
        if known is None or known != ssrc:
            return self._on_datagram_rest(data, addr, now)
        seq = load_u16(p + 2)
        ts = load_u32(p + 4)
        plen = n - 12
        self.last_rtp_heard = now
        status = self.rx.update(seq, ts, now, plen)
        if logger.isEnabledFor(_DEBUG):
            logger.debug("[RTP] Received packet: %d bytes (Sequence #%d)", plen, seq)
        if status == _DUPLICATE:
            return True
        # every distinct packet counts as received (RFC 3550's counters skip the probation packets)
        self.packets += 1
        self.octets += plen
        self._rx_pt = pt
        if not self.receiving:
            return True
        payload = PyBytes_FromStringAndSize(<const char *>p + 12, plen)
        jb = self.jb
        if type(jb) is JitterBuffer or type(jb) is TimeStretchJitterBuffer:
            (<JitterBuffer>jb).put_c(seq, ts, payload, now, known, (b1 & 0x80) != 0)
        else:
            jb.put(seq, ts, payload, now, known, (b1 & 0x80) != 0)
        return True

    def _on_datagram_rest(self, data, addr, now):
        raise NotImplementedError("ReceiverCore is the base of media.receiver.RtpReceiver")

    # -- playout ------------------------------------------------------------------------------------------------

    def playout(self, double now):
        """One playout tick (``media.playout.Playout``: jitter buffer, decoding, concealment, time-stretching):
        one frame to the sink, or nothing. A playout is (re)built around the current buffer and concealer by the
        subclass's ``_new_playout``."""
        jb = self.jb
        if jb is None:
            return None
        po = self._playout
        if po is None or po.jb is not jb or po.concealer is not self.concealer:
            po = self._new_playout()
        out = po.tick(now)
        if out is None:
            return None
        self.frames_played += 1
        sink = self.sink
        if sink is not None:
            try:
                sink.write(out)
            except Exception as exc:
                logger.error("[RTP] Audio sink failed, playback stopped: %s", exc)
                self.sink = None
        return None

    def _decode(self, payload):
        """A payload as one frame of int16 samples: decoded by the decoder of the stream's payload type (the
        subclass's ``_decoder_for`` finds one for a type the peer switched to), padded or cut to our frame."""
        cdef Py_ssize_t n = self.frame_samples, m
        if payload is None or len(payload) == 0:
            return _zeros(n, dtype=_int16)
        pt = self._rx_pt if self._rx_pt is not None else self.payload_type
        dec = self._decoders.get(pt) or self._decoder_for(pt)
        pcm = dec.decode(payload) if dec is not None else _zeros(0, dtype=_int16)
        if len(pcm) != n:  # the peer packetises differently: pad or cut to our frame
            fixed = _zeros(n, dtype=_int16)
            m = min(n, len(pcm))
            fixed[:m] = pcm[:m]
            pcm = fixed
        return pcm
