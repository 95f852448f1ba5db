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
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t
from posix.time cimport clock_gettime, timespec, CLOCK_REALTIME

from _sock cimport (CONTROL_SIZE, iovec_t, mmsghdr, sockaddr_storage, addr_tuple, ask_sources, point_at,
                    recv_waiting, same_host_port, sockaddr_of, stamp_of)
from _wire cimport load_u16, load_u32

from pyvoip_fast.media._jitter cimport JitterBuffer, TimeStretchJitterBuffer
from pyvoip_fast.media._playout cimport Playout
from pyvoip_fast.rtp._stats cimport C_DUPLICATE, ReceiverStats
from pyvoip_fast.rtp import stats as _stats

__all__ = ["ReceiverCore"]

cdef enum:
    RX_BATCH = 8      # datagrams per recvmmsg in poll_socket (a call's socket holds about one a tick)
    RX_SLOT = 2048    # net.sockets.MAX_DATAGRAM

# the receiver module's own logger: a line logged here is the same line, under the same name, as the Python path's
cdef object logger = logging.getLogger("pyvoip_fast.media.receiver")
cdef object _DEBUG = logging.DEBUG
cdef object _DUPLICATE = _stats.DUPLICATE
cdef object _zeros = np.zeros
cdef object _int16 = np.int16


cdef class ReceiverCore:
    """The fields of ``media.receiver.RtpReceiver`` that a packet touches, and its common packet (see the notes)."""

    cdef public object remote_rtp, dtmf_payload_type, rx, remote_ssrc, _rx_pt, jb, concealer, _playout, sink
    cdef public object proof, on_heard
    cdef object _sa_key
    cdef sockaddr_storage _sa
    cdef int _sa_family
    cdef public dict _decoders
    cdef public bint _latched, receiving
    cdef public double last_rtp_heard
    cdef public int64_t packets, octets, invalid, payload_type, frame_samples, frames_played

    def __cinit__(self, *args, **kwargs):
        self._decoders = {}

    def on_datagram(self, data, addr, double now):
        """Take one RTP datagram; True when it was a valid packet from the peer (it counts as hearing it)."""
        if not PyBytes_CheckExact(data):
            return self._on_datagram_rest(data, addr, now)
        remote = self.remote_rtp
        if (type(addr) is not tuple or len(<tuple>addr) < 2 or type(remote) is not tuple or len(<tuple>remote) < 2
                or not (addr[0] == remote[0] and addr[1] == remote[1])
                or not self._common(<const uint8_t *>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), now)):
            return self._on_datagram_rest(data, addr, now)
        return True

    cdef bint _common(self, const uint8_t *p, Py_ssize_t n, double now) except -1:
        """The common packet from the latched source address: taken (1), or 0 with nothing changed (the caller
        sends it to the Python path)."""
        cdef Py_ssize_t plen
        cdef uint8_t b1
        cdef uint32_t ts, ssrc
        cdef int seq
        # version 2 and none of padding, extension, CSRCs: the header is the fixed 12 bytes
        if n < 12 or p[0] != 0x80:
            return False
        b1 = p[1]
        pt = b1 & 0x7F
        dtmf = self.dtmf_payload_type
        # (both callers matched the source against remote_rtp already)
        if (dtmf is not None and dtmf == pt) or self._decoders is None or pt not in self._decoders or not self._latched:
            return False
        ssrc = load_u32(p + 8)
        known = self.remote_ssrc
        if known is None or known != ssrc:
            return False
        seq = load_u16(p + 2)
        ts = load_u32(p + 4)
        plen = n - 12
        self.last_rtp_heard = now
        rx = self.rx
        if type(rx) is ReceiverStats and plen <= 0xFFFF:  # the compiled statistics: C numbers in, a C status out
            duplicate = (<ReceiverStats>rx).update_c(<uint16_t>seq, ts, now, <uint16_t>plen) == C_DUPLICATE
        else:
            duplicate = rx.update(seq, ts, now, plen) == _DUPLICATE
        if logger.isEnabledFor(_DEBUG):
            logger.debug("[RTP] Received packet: %d bytes (Sequence #%d)", plen, seq)
        if duplicate:
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

    def poll_socket(self, int fd, Py_ssize_t limit, now, deliver, owner):
        """Read the RTP datagrams waiting on the call's non-blocking socket ``fd`` (at most ``limit``; the socket
        has ``SO_TIMESTAMPNS`` on) and take each: the common packet from the latched source address here, once the
        session's ``proof`` has proven every address, then ``on_heard(arrival)`` (the peer was heard); anything
        else as ``deliver(data, addr, arrival)``, the session's whole receive path, exactly as
        ``net.sockets.MediaSockets.poll_rtp`` delivers it. ``arrival`` is the kernel's receive time on the clock
        of ``now()`` (None, or ``now()`` here, without one). Stops when ``owner.closed`` turns true.

        Returns:
            an errno for the caller to handle as ``MediaSockets.poll_rtp`` does (an ICMP error reported for
            something sent from the socket, or an error that stopped the reading); 0 when there was none.
        """
        cdef mmsghdr msgs[RX_BATCH]
        cdef iovec_t iovs[RX_BATCH]
        cdef sockaddr_storage names[RX_BATCH]
        cdef uint8_t control[RX_BATCH][CONTROL_SIZE]
        cdef uint8_t buf[RX_BATCH * RX_SLOT]
        cdef int i, n, want, err = 0, tries = 0
        cdef Py_ssize_t total = 0, length
        cdef double offset = 0.0, base = 0.0, stamp, arrival, pending = -1.0
        cdef bint timed = False, fast
        cdef timespec ts
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        fast = self._direct()
        while total < limit:
            want = <int>(limit - total if limit - total < RX_BATCH else RX_BATCH)
            point_at(msgs, iovs, buf, RX_SLOT, want)
            ask_sources(msgs, names, &control[0][0], want)
            # non-blocking, so the GIL stays held (the datagrams are read into this frame's buffer)
            n = recv_waiting(fd, msgs, want, &err, &tries)
            if n <= 0:
                break
            if not timed:  # kernel stamps are CLOCK_REALTIME: moved onto now()'s clock once per read
                base = now()
                clock_gettime(CLOCK_REALTIME, &ts)
                offset = base - (<double>ts.tv_sec + <double>ts.tv_nsec * 1e-9)
                timed = True
            for i in range(n):
                if owner.closed:
                    break
                length = min(<Py_ssize_t>msgs[i].msg_len, <Py_ssize_t>RX_SLOT)
                stamp = stamp_of(&msgs[i].msg_hdr)
                arrival = stamp + offset if stamp >= 0.0 else base
                if (fast and same_host_port(&names[i], msgs[i].msg_hdr.msg_namelen, &self._sa)
                        and self._common(&buf[i * RX_SLOT], length, arrival)):
                    pending = arrival
                    continue
                if pending >= 0.0:
                    self.on_heard(pending)
                    pending = -1.0
                deliver(PyBytes_FromStringAndSize(<const char *>&buf[i * RX_SLOT], length),
                        addr_tuple(&names[i], msgs[i].msg_hdr.msg_namelen), arrival if stamp >= 0.0 else None)
                fast = self._direct()  # the Python path may have latched a new source or proven the peer
            total += n
            if n < want or owner.closed:
                break
        if pending >= 0.0:
            self.on_heard(pending)
        return err

    cdef bint _direct(self) except -1:
        """Whether a datagram from the latched address may be taken here: every address proven (nothing for the
        session's proof to learn from it), a hearing callback, and the address as a sockaddr (converted again
        only when ``remote_rtp`` is another object)."""
        remote = self.remote_rtp
        if remote is not self._sa_key:
            self._sa_family = sockaddr_of(remote, &self._sa)
            self._sa_key = remote
        proof = self.proof
        return self._sa_family != 0 and self.on_heard is not None and proof is not None and proof.all_proven is True

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
        out = (<Playout>po).tick_c(now) if type(po) is Playout else po.tick(now)  # (compiled: at C level)
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
