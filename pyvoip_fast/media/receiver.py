"""The RTP receiver of one call: which source to trust, RFC 3550 statistics, jitter buffer, decoding, playout.

Strategy
--------
- **Source rules** (symmetric RTP, RFC 4961, hardened against "RTP Bleed", CVE-2017-14099): a packet from the
  address negotiated in SDP latches at once; a packet from anywhere else (a peer behind NAT never sends from its
  SDP address) latches only once that source sent ``LATCH_PACKETS`` packets in sequence from one SSRC with a
  negotiated payload type (one stray packet, or a spray from many ports, never does), and the sender then
  answers there. With SRTP only packets that authenticated get here at all. Once latched, RTP from anywhere else
  is ignored (a third party cannot take the stream over), with two exceptions: the address the peer negotiated
  in SDP always wins over whatever latched first, and a peer that really moved (a NAT rebinding, a new port) is
  re-learnt when the latched source has been quiet for ``RELEARN_QUIET`` seconds and the newcomer sent
  ``RELEARN_PACKETS`` packets in sequence from one SSRC.
- **Receiving**: parse errors and unexpected payload types are counted and logged at DEBUG, never fatal. A
  packet updates the RFC 3550 appendix A statistics of its SSRC (``rtp.stats.ReceiverStats``; a new SSRC starts
  a new stream and the old one's totals are kept), then goes to the adaptive jitter buffer; telephone-events go
  to ``dtmf.DtmfReceiver`` instead.
- **Playout** (``media.playout.Playout``): at each tick of the session's media clock the jitter buffer gives a
  frame or a loss; a frame is decoded by the decoder of its payload type (the negotiated codec, or a static type
  of the same rates that the peer switched to) and a loss is concealed on the codec's sample rate
  (``codecs.plc_lookahead.LookaheadConcealer``: interpolated towards the next frame when the buffer already
  holds it, else extrapolated like ``codecs.plc.Concealer``); the buffer's delay follows the network by
  time-stretching the decoded audio (``codecs.timescale``) at 8 and 16 kHz, by whole frames otherwise. One
  frame of PCM goes to the sink per tick, so a sink without a clock of its own (a WAV file) is written in real
  time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import _compat
from .. import codecs as _codecs
from .. import rtp
from ..codecs import Codec, Decoder, plc, plc_lookahead
from ..codecs import timescale
from ..errors import RtpParseError
from ..net.sockets import Addr, fmt_addr, same_addr
from ..rtp import stats as _stats
from . import dtmf as _dtmf
from . import jitter
from .playout import Playout

if TYPE_CHECKING:
    from ._receiver_py import ReceiverCore as _Core
else:  # the fields a packet touches and the common packet, compiled (or the twin)
    _Core = _compat.load("_receiver").ReceiverCore

logger = logging.getLogger(__name__)

__all__ = ["RtpReceiver", "RELEARN_QUIET", "RELEARN_PACKETS", "LATCH_PACKETS"]

#: strict RTP source: a different source address replaces the latched one only after the latched one was quiet
#: this long (seconds) and the newcomer sent this many packets in sequence from one SSRC
RELEARN_QUIET = 0.5
RELEARN_PACKETS = 4
#: before the first packet from the negotiated address, a source elsewhere (a peer behind NAT) is latched only
#: once it sent this many packets in sequence from one SSRC with a negotiated payload type (RTP Bleed)
LATCH_PACKETS = 3
#: a frame whose samples all stay below this (about -42 dBFS) is silence: the jitter buffer drops those first to
#: bring its delay back to the target after a burst or the pre-buffering of a talk spurt
SILENCE_LEVEL = 256
_CANDIDATES = 16  # sources on probation remembered at once (a spray from many ports forgets the oldest)


class RtpReceiver(_Core):
    """RTP in for one call: the peer's address, statistics per SSRC, jitter buffer, decoding and playout.

    Args:
        jitter_args: ``(min_delay, max_delay, initial_delay)`` of the jitter buffer, in seconds.
        on_latched: called when the peer's RTP address is learnt (the sender may now announce its stream).
        on_new_source: called when the peer starts a new SSRC (its RTCP state no longer applies).
        on_dtmf: called with each DTMF digit received.
        plc_lookahead: how many frames after a lost one the concealer may use, when the jitter buffer already
            holds them (``codecs.plc_lookahead``; no extra delay); 0 conceals from the past alone.
    """

    # slots, not an instance dict: a call holds one of these, and past 30 attributes CPython gives each
    # instance a dict of its own (0.8 KB). The fields a packet touches are the base's (``_receiver.ReceiverCore``):
    # remote_rtp, _latched, last_rtp_heard, receiving, dtmf_payload_type, _decoders, rx, packets, octets,
    # remote_ssrc, invalid, _rx_pt, jb, payload_type, frame_samples, frames_played, concealer, _playout, sink, proof
    # and on_heard. The base also plays out (``playout``) and decodes (``_decode``); the compiled one also reads the
    # call's RTP socket itself (``poll_socket``).
    __slots__ = (
        "_jb_args", "plc_lookahead", "_on_latched", "_on_new_source", "_on_dtmf", "_sdp_rtp", "_candidates", "codec",
        "frame_timestamps", "_rx_totals", "probation", "_dtmf_receiver", "_probe",
    )

    def __init__(
        self,
        jitter_args: Tuple[float, float, float],
        *,
        on_latched: Callable[[], None],
        on_new_source: Callable[[], None],
        on_dtmf: Callable[[str], None],
        plc_lookahead: int = 1,
    ) -> None:
        if isinstance(plc_lookahead, bool) or not isinstance(plc_lookahead, int) or plc_lookahead < 0:
            raise ValueError(f"plc_lookahead must be an int >= 0, got {plc_lookahead!r}")
        self._jb_args = jitter_args
        #: frames after a lost one the concealer may use when the jitter buffer already holds them (0: none)
        self.plc_lookahead = plc_lookahead
        self._on_latched = on_latched
        self._on_new_source = on_new_source
        self._on_dtmf = on_dtmf
        #: where our RTP goes: the negotiated address until the peer's first packet, then its real source
        self.remote_rtp = None
        self._latched = False
        self._sdp_rtp: Optional[Addr] = None  # the RTP address the peer negotiated
        #: sources that are not the stream (yet): address -> (ssrc, last seq, run length); a few, newest last
        self._candidates: Dict[Addr, Tuple[int, int, int]] = {}
        self.last_rtp_heard = 0.0
        #: the session's ``AddressProof`` and ``PeerWatch.heard``: the compiled base's ``poll_socket`` takes a
        #: packet itself only once every address is proven, and tells ``on_heard`` when the peer was heard
        self.proof: Any = None
        self.on_heard: Optional[Callable[[float], None]] = None
        self.sink = None
        self.receiving = False
        # negotiated (configure)
        self.codec: Optional[Codec] = None
        self.payload_type = 0
        self.dtmf_payload_type: Optional[int] = None
        self.frame_samples = 0
        self.frame_timestamps = 0
        self._decoders = {}
        # statistics
        self.rx = None  # ReceiverStats of the current remote SSRC
        self._rx_totals = [0, 0, 0, 0]  # expected, lost, duplicates, reordered of earlier SSRCs
        self.packets = 0  # distinct RTP packets received, all SSRCs
        self.octets = 0
        self.remote_ssrc = None
        self.invalid = 0
        #: packets dropped while their source was on probation (not the negotiated address, not latched yet)
        self.probation = 0
        self.frames_played = 0
        self._rx_pt = None
        self._dtmf_receiver: Optional[_dtmf.DtmfReceiver] = None  # made by the first telephone-event
        # playout
        self.jb = None
        self.concealer = None
        self._playout = None  # built at the first tick: around whatever concealer is set

    # -- set-up -------------------------------------------------------------------------------------------------

    def configure(self, codec: Codec, payload_type: int, ptime: int, dtmf_payload_type: Optional[int]) -> bool:
        """Apply negotiated parameters; True when the rates or the frame size changed (a new jitter buffer and
        concealer are due: the old ones hold frames of another geometry)."""
        frame_timestamps = codec.frame_timestamps(ptime)
        old = self.codec
        changed = (
            old is None
            or (old.clock_rate, old.sample_rate) != (codec.clock_rate, codec.sample_rate)
            or frame_timestamps != self.frame_timestamps
        )
        if codec is not self.codec:
            self._decoders = {}
        self.codec = codec
        self.payload_type = payload_type
        self.dtmf_payload_type = dtmf_payload_type
        self.frame_samples = codec.frame_samples(ptime)
        self.frame_timestamps = frame_timestamps
        self._decoders.setdefault(payload_type, codec.decoder())
        return changed

    def set_remote(self, addr: Optional[Addr], *, initial: bool) -> None:
        """The RTP address the peer negotiated; a changed one replaces the latched address."""
        if initial or not same_addr(addr, self.remote_rtp):
            self.remote_rtp = addr
            self._latched = False
        self._sdp_rtp = addr

    def new_stream(self) -> None:
        """A fresh jitter buffer and concealer for the current codec and ptime."""
        assert self.codec is not None
        lo, hi, init = self._jb_args
        # time-stretching where the codec's rate allows it (media.playout), else whole frames inserted/skipped
        stretch = self.codec.sample_rate in timescale.RATES
        self.jb = (jitter.TimeStretchJitterBuffer if stretch else jitter.JitterBuffer)(
            clock_rate=self.codec.clock_rate,
            frame_samples=self.frame_timestamps,
            min_delay=lo,
            max_delay=hi,
            initial_delay=init,
            silence_detector=self._silent,
        )
        self._playout = None  # rebuilt at the next tick around the new buffer and concealer
        self._probe = self.codec.decoder()  # its own state: a stateful codec's playout decoder is not disturbed
        rate = self.codec.sample_rate
        if self.plc_lookahead and rate in plc_lookahead.RATES:
            self.concealer = plc_lookahead.LookaheadConcealer(self.frame_samples, rate, self.plc_lookahead)
        else:
            self.concealer = plc.Concealer(self.frame_samples, rate)

    def _silent(self, payload: bytes) -> bool:
        """Whether a buffered frame is silence (asked only when the buffer is too long, so rarely)."""
        pcm = self._probe.decode(payload)
        return len(pcm) == 0 or int(np.max(np.abs(pcm.astype(np.int32)))) < SILENCE_LEVEL

    # -- receiving ------------------------------------------------------------------------------------------------

    def _decoder_for(self, pt: int) -> Optional[Decoder]:
        """The decoder of payload type ``pt``: the negotiated one, or a static type of the same rates (before
        the stream is configured, any static type we carry: the peer's first packets may overtake our start)."""
        dec = self._decoders.get(pt)
        if dec is None:
            other = _codecs.by_static_payload_type(pt)
            if other is not None and (
                self.codec is None
                or (other.sample_rate, other.clock_rate) == (self.codec.sample_rate, self.codec.clock_rate)
            ):
                dec = self._decoders[pt] = other.decoder()
        return dec

    # ``on_datagram(data, addr, now)`` -- take one RTP datagram; True when it was a valid packet from the peer (it
    # counts as hearing it) -- is the base's: the common packet (a plain header from the latched source, of the
    # current SSRC, with a payload type that has a decoder) is taken there, compiled; every other datagram comes
    # here, and this is what any datagram means.
    def _on_datagram_rest(self, data: bytes, addr: Addr, now: float) -> bool:
        """The whole receive path of one datagram (``on_datagram``)."""
        try:
            pkt = rtp.RtpPacket.parse(data)
        except RtpParseError as exc:
            self.invalid += 1
            logger.debug("[RTP] Dropped invalid packet from %s: %s", fmt_addr(addr), exc)
            return False
        pt = pkt.payload_type
        if pt not in self._decoders and pt != self.dtmf_payload_type and self._decoder_for(pt) is None:
            self.invalid += 1
            logger.debug("[RTP] Dropped packet with unexpected payload type %d", pt)
            return False
        remote = self.remote_rtp  # the latched source, as it is (the common case), or the source rules
        if not (self._latched and remote is not None and addr[0] == remote[0] and addr[1] == remote[1]) \
                and not self._check_source(addr, pkt, now):
            self.invalid += 1
            return False
        self.last_rtp_heard = now
        ssrc = pkt.ssrc
        if ssrc != self.remote_ssrc:
            if self.codec is None and pt != self.dtmf_payload_type:
                self._rx_pt = pt
            self._switch_ssrc(ssrc)
        payload = pkt.payload
        seq = pkt.sequence_number
        status = self.rx.update(seq, pkt.timestamp, now, len(payload))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("[RTP] Received packet: %d bytes (Sequence #%d)", len(payload), seq)
        if status == _stats.DUPLICATE:
            return True
        # every distinct packet counts as received (RFC 3550's counters skip the probation packets)
        self.packets += 1
        self.octets += len(payload)
        if pt == self.dtmf_payload_type:
            if self._dtmf_receiver is None:
                self._dtmf_receiver = _dtmf.DtmfReceiver(self.clock_rate)
            digit = self._dtmf_receiver.feed(pkt.timestamp, bytes(payload), pkt.marker)
            if digit:
                self._on_dtmf(digit)
            return True
        self._rx_pt = pt
        if not self.receiving:
            return True
        # a new stream ("reset") restarts the playout's wait for a real frame: Playout sees the buffer's resets
        self.jb.put(seq, pkt.timestamp, bytes(payload), now, ssrc=ssrc, marker=pkt.marker)
        return True

    def _check_source(self, addr: Addr, pkt: Any, now: float) -> bool:
        """Whether RTP from ``addr`` belongs to the stream (the latching rules of the module notes)."""
        if not self._latched:
            if not same_addr(addr, self._sdp_rtp) and not self._in_sequence(addr, pkt, LATCH_PACKETS):
                self.probation += 1
                return False
            self._latched = True
            self._candidates.clear()
            if not same_addr(addr, self.remote_rtp):
                logger.info("[RTP] Peer sends from %s; sending there (symmetric RTP)", fmt_addr(addr))
            self.remote_rtp = addr
            self._on_latched()
        elif not same_addr(addr, self.remote_rtp) and same_addr(addr, self._sdp_rtp):
            # the address the peer negotiated in SDP always wins over whatever latched first (an early
            # packet from a third party must not capture the stream before the peer's first packet arrives)
            logger.info("[RTP] Peer sends from its negotiated address %s; following it", fmt_addr(addr))
            self.remote_rtp = addr
            self._candidates.clear()
        elif not same_addr(addr, self.remote_rtp) and not self._accept_new_source(addr, pkt, now):
            return False
        return True

    def _accept_new_source(self, addr: Addr, pkt: Any, now: float) -> bool:
        """Whether RTP from ``addr`` (not the latched source) should become the stream.

        Only when the latched source has gone quiet for ``RELEARN_QUIET`` seconds and ``addr`` has since sent
        ``RELEARN_PACKETS`` packets in sequence from one SSRC: then the peer moved (a NAT rebinding, a new
        port) and we follow it; a third party injecting packets into a live stream never qualifies.
        """
        if self._in_sequence(addr, pkt, RELEARN_PACKETS) and now - self.last_rtp_heard >= RELEARN_QUIET:
            logger.info("[RTP] Peer now sends from %s (was %s); following it", fmt_addr(addr),
                        fmt_addr(self.remote_rtp))
            self.remote_rtp = addr
            self._candidates.clear()
            return True
        return False

    def _in_sequence(self, addr: Addr, pkt: Any, needed: int) -> bool:
        """Whether ``addr`` has now sent ``needed`` packets in sequence from one SSRC (the candidate source)."""
        key = (addr[0], addr[1])
        cand = self._candidates.pop(key, None)
        seq = pkt.sequence_number
        count = cand[2] + 1 if cand is not None and cand[0] == pkt.ssrc and seq == (cand[1] + 1) & 0xFFFF else 1
        self._candidates[key] = (pkt.ssrc, seq, count)  # each source on its own: interleaving resets nobody
        if len(self._candidates) > _CANDIDATES:
            del self._candidates[next(iter(self._candidates))]
        return count >= needed

    def _switch_ssrc(self, ssrc: int) -> None:
        if self.rx is not None:
            rx = self.rx
            t = self._rx_totals
            t[0] += rx.expected
            t[1] += max(0, rx.cumulative_lost)
            t[2] += rx.duplicates
            t[3] += rx.reordered
            logger.info("[RTP] New stream from the peer: SSRC %08x (was %08x)", ssrc, self.remote_ssrc or 0)
        self.remote_ssrc = ssrc
        self.rx = _stats.ReceiverStats(clock_rate=self.clock_rate)
        self._dtmf_receiver = None
        self._on_new_source()

    @property
    def clock_rate(self) -> int:
        """The RTP clock rate of the stream (of the first packet's static type before it is configured)."""
        if self.codec is not None:
            return self.codec.clock_rate
        first = _codecs.by_static_payload_type(self._rx_pt if self._rx_pt is not None else self.payload_type)
        return first.clock_rate if first is not None else _codecs.PCMU.clock_rate

    def totals(self) -> List[float]:
        """``[expected, lost, duplicates, reordered, jitter seconds]`` over every SSRC of the call."""
        expected, lost, dups, reord = self._rx_totals
        jitter_s = 0.0
        rx = self.rx
        if rx is not None:
            expected += rx.expected
            lost += max(0, rx.cumulative_lost)
            dups += rx.duplicates
            reord += rx.reordered
            jitter_s = rx.jitter_seconds
        return [expected, lost, dups, reord, jitter_s]

    # -- playout ------------------------------------------------------------------------------------------------

    @property
    def tail_concealed(self) -> int:
        """Frames concealed since the last frame that really arrived (the tail after a stream stopped)."""
        return self._playout.tail_concealed if self._playout is not None else 0

    def _new_playout(self) -> Playout:
        """A playout around the current jitter buffer and concealer (the base's ``playout`` asks for one at the first
        tick and after either changed)."""
        assert self.codec is not None
        po = self._playout = Playout(self.jb, self._decode, self.concealer, self.frame_samples, self.codec.sample_rate)
        return po
