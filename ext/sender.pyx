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
#
# When the session gave the sender its RTP socket (tx_fd, tx_family, the owning MediaSockets and the receiver whose
# remote_rtp is the peer's address), the common slot's packet is written on the stack and leaves by a raw sendto to
# that address, converted once per address object: no bytes object, no Python transmit and socket wrapper. The
# owner's own rules still decide (closed, SRTP: the Python transmit), and a send error other than a full buffer goes
# to its rtp_send_failed, the same handling as the Python send's. tests/media/test_sender_direct.py compares the
# datagrams and the error handling with the Python transmit.
#
# A call that plays a cached clip (audio.clips.ClipSource: the sample every listener streams) with PCMU or PCMA reads
# each whole frame from the clip's array in place and encodes it straight into the packet (_g711.encode_frame): no
# array slice, copy or bytes payload, no Python read. The clip's position and end are updated as ClipSource.read
# updates them; its last, padded frame and every other source take the Python read.

import logging

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport errno, EAGAIN
from libc.stdint cimport int16_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

from _sock cimport MSG_DONTWAIT, dest_of, sendto, sockaddr, sockaddr_storage, socklen_t
from _wire cimport store_u16, store_u32

from pyvoip_fast.audio.clips import ClipSource as _ClipSource
from pyvoip_fast.codecs._g711 cimport ENCODE_ALAW, ENCODE_ULAW, encode_frame
from pyvoip_fast.codecs._g711 import alaw_encode as _alaw_encode, ulaw_encode as _ulaw_encode
from pyvoip_fast.rtp._stats cimport SenderStats

__all__ = ["SenderCore"]

# the sender module's own logger: a line logged here is the same line, under the same name, as the Python path's
cdef object logger = logging.getLogger("pyvoip_fast.media.sender")
cdef object _DEBUG = logging.DEBUG
cdef int64_t _SLOT_LIMIT = (<int64_t>1) << 62  # slot numbers beyond this (never reached) take the Python path

cdef enum:
    TX_PAYLOAD_MAX = 1400  # a payload up to this is sent from a buffer on the stack; a larger one as bytes


cdef class SenderCore:
    """The fields of ``media.sender.RtpSender`` that a slot touches, and its common slot (see the notes)."""

    cdef public int64_t ssrc, _seq, _ts0, frame_timestamps, frame_samples, _last_sent_n, payload_type
    cdef public bint marker_next, we_sent, sent_audio
    cdef public double last_sent_at
    cdef public object first_sent_at, dtmf, dtmf_payload_type, source, source_done, _encoder, _transmit, stats, _now
    cdef public int tx_fd, tx_family
    cdef public object tx_sockets, tx_peer
    cdef public bint sending
    cdef public object remote_of, proof
    cdef object _to_key, _clip_of
    cdef const int16_t[::1] _clip
    cdef Py_ssize_t _clip_pos
    cdef sockaddr_storage _to
    cdef socklen_t _to_len

    def __cinit__(self, *args, **kwargs):
        self.tx_fd = -1

    def tick(self, n, deadline):
        """The media tick's send stage (see the twin): slot ``n`` goes out while the direction sends, the peer's
        address (``remote_of.remote_rtp``) is known and allowed by ``proof``, and there is audio or a digit."""
        peer = self.remote_of
        if not self.sending or peer is None:
            return None
        remote = peer.remote_rtp
        if remote is None:
            return None
        if self.source is None:
            ds = self.dtmf
            if ds is None or not ds.busy:
                return None
        proof = self.proof
        if proof is not None and proof.all_proven is not True and not proof.allows(remote):
            return None
        return self.send_slot(n)

    def send_slot(self, n):
        """Send slot ``n``'s packet: a telephone-event while a digit plays, else the next frame of audio."""
        cdef int64_t slot, plen
        cdef uint32_t ts
        cdef bint marker
        cdef uint8_t *o
        cdef uint8_t packet[12 + TX_PAYLOAD_MAX]
        cdef bint direct, sent
        cdef int mode
        cdef Py_ssize_t pos = 0
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
        mode = self._clip_mode(source)
        if mode >= 0:  # a whole frame of a cached clip: read as ClipSource.read reads it, encoded in place below
            pos = self._clip_pos
            plen = self.frame_samples
            source._pos = pos + plen
            if pos + plen >= self._clip.shape[0]:
                source.eof = True
            payload = None
        else:
            pcm = self._read_source()
            if pcm is None:
                return None
            payload = self._encoder.encode(pcm)
        marker = self.marker_next
        self.marker_next = False
        if mode < 0 and type(payload) is not bytes:  # an encoder that gives another bytes-like object: Python send
            self._send(self.payload_type, ts, marker, payload, n)
        else:
            if mode < 0:
                plen = PyBytes_GET_SIZE(payload)
            direct = plen <= TX_PAYLOAD_MAX and self._direct()
            if direct:
                o = packet
            else:
                buf = PyBytes_FromStringAndSize(NULL, 12 + plen)
                o = <uint8_t *>PyBytes_AS_STRING(buf)
            o[0] = 0x80
            o[1] = <uint8_t>((0x80 if marker else 0) | self.payload_type)
            store_u16(o + 2, <unsigned short>self._seq)
            store_u32(o + 4, ts)
            store_u32(o + 8, <uint32_t>self.ssrc)
            if mode >= 0:
                encode_frame(mode, <const char *>&self._clip[pos], o + 12, plen)
            elif plen:
                memcpy(o + 12, PyBytes_AS_STRING(payload), <size_t>plen)
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFFFF
            self._last_sent_n = slot
            if direct:
                sent = self._send_direct(packet, 12 + plen)
            else:
                sent = self._transmit(buf)
            if sent:
                st = self.stats
                if type(st) is SenderStats:  # the compiled counters: a C call
                    (<SenderStats>st).on_sent_c(plen)
                else:
                    st.on_sent(plen)
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

    cdef int _clip_mode(self, source) except -2:
        """The G.711 mode (``_g711.ENCODE_ULAW``/``ENCODE_ALAW``) in which this slot's frame can be encoded straight
        from a cached clip, or -1: a ``ClipSource`` (that exact class) that has a whole frame left at its position
        (its last, padded frame is the Python read's) in a C-contiguous array, and the PCMU or PCMA encoder. The
        position is left in ``_clip_pos``; nothing changes here."""
        cdef Py_ssize_t frame = self.frame_samples
        if type(source) is not _ClipSource or not 1 <= frame <= TX_PAYLOAD_MAX or source.eof:
            return -1
        fn = getattr(self._encoder, "encode", None)
        mode = ENCODE_ULAW if fn is _ulaw_encode else ENCODE_ALAW if fn is _alaw_encode else -1
        if mode < 0:
            return -1
        samples = source.samples
        if samples is not self._clip_of:  # the array's buffer, held while the clip plays (its samples never change)
            self._clip_of = None
            try:
                self._clip = samples
            except (ValueError, TypeError, BufferError):  # not one C-contiguous run of native int16
                return -1
            self._clip_of = samples
        pos = source._pos
        if type(pos) is not int or not 0 <= pos <= self._clip.shape[0] - frame:
            return -1
        self._clip_pos = pos
        return mode

    cdef bint _direct(self) except -1:
        """Whether this slot's packet may leave by a raw ``sendto`` here: a socket (``tx_fd``) whose owner
        (``tx_sockets``, ``net.sockets.MediaSockets``) is open and sends plain RTP, and the peer's address
        (``tx_peer.remote_rtp``, as the session's transmit reads it) in a form the socket takes (converted again
        only when it is another object). Otherwise the packet goes to ``_transmit``, the Python send."""
        owner = self.tx_sockets
        if self.tx_fd < 0 or owner is None or self.tx_peer is None or owner.closed or owner.srtp is not None:
            return False
        remote = self.tx_peer.remote_rtp
        if remote is not self._to_key:
            self._to_len = dest_of(remote, self.tx_family, &self._to) if remote is not None else 0
            self._to_key = remote
        return self._to_len != 0

    cdef bint _send_direct(self, const uint8_t *packet, Py_ssize_t length) except -1:
        """Send the packet to the cached address; False when it did not leave (a full send buffer drops it, as real
        time media must; any other error goes to the owner's ``rtp_send_failed``, as the Python send's would)."""
        cdef ssize_t r = sendto(self.tx_fd, packet, <size_t>length, MSG_DONTWAIT, <sockaddr *>&self._to, self._to_len)
        if r >= 0:
            return True
        if errno == EAGAIN:  # (EWOULDBLOCK is EAGAIN on Linux and the BSDs)
            return False
        self.tx_sockets.rtp_send_failed(errno, self._to_key)
        return False

    def _send_slot_rest(self, n):
        raise NotImplementedError("SenderCore is the base of media.sender.RtpSender")
