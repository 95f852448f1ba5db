"""Pure-Python twin of ``pyvoip_fast.media._receiver`` (ext/receiver.pyx): the fields of one call's RTP receiver that
a packet touches.

The compiled base takes the common packet (a plain header from the latched source, of the current SSRC, with a
payload type that has a decoder) without building an ``RtpPacket``, and sends every other datagram to
``RtpReceiver._on_datagram_rest``, the whole receive path. That path is the definition of what a datagram does; this
twin sends every datagram there, so the two differ only in speed (``tests/media/test_receiver_parity.py``).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

import numpy as np

from ..net.sockets import Addr

logger = logging.getLogger("pyvoip_fast.media.receiver")  # the receiver's own: the same lines as the compiled base

__all__ = ["ReceiverCore"]


class ReceiverCore:
    """The fields of ``media.receiver.RtpReceiver`` that a packet touches (slots, as the compiled base's fields)."""

    __slots__ = ("remote_rtp", "dtmf_payload_type", "rx", "remote_ssrc", "_rx_pt", "jb", "_decoders", "_latched",
                 "receiving", "last_rtp_heard", "packets", "octets", "invalid", "payload_type", "frame_samples",
                 "frames_played", "concealer", "_playout", "sink", "proof", "on_heard")

    remote_rtp: Optional[Addr]
    dtmf_payload_type: Optional[int]
    rx: Any
    remote_ssrc: Optional[int]
    _rx_pt: Optional[int]
    jb: Any
    _decoders: Dict[int, Any]
    _latched: bool
    receiving: bool
    last_rtp_heard: float
    packets: int
    octets: int
    invalid: int
    payload_type: int
    frame_samples: int
    frames_played: int
    concealer: Any
    _playout: Any
    sink: Any
    proof: Any  # the session's ``liveness.AddressProof`` and ``PeerWatch.heard`` (the compiled base's socket reads)
    on_heard: Any

    def on_datagram(self, data: Any, addr: Any, now: float) -> bool:
        """Take one RTP datagram; True when it was a valid packet from the peer (it counts as hearing it)."""
        return self._on_datagram_rest(data, addr, now)

    def _on_datagram_rest(self, data: Any, addr: Any, now: float) -> bool:
        raise NotImplementedError("ReceiverCore is the base of media.receiver.RtpReceiver")

    # -- playout ------------------------------------------------------------------------------------------------

    def playout(self, now: float) -> None:
        """One playout tick (``media.playout.Playout``: jitter buffer, decoding, concealment, time-stretching):
        one frame to the sink, or nothing. A playout is (re)built around the current buffer and concealer by the
        subclass's ``_new_playout``."""
        jb = self.jb
        if jb is None:
            return
        po = self._playout
        if po is None or po.jb is not jb or po.concealer is not self.concealer:
            po = self._new_playout()
        out = po.tick(now)
        if out is None:
            return
        self.frames_played += 1
        sink = self.sink
        if sink is not None:
            try:
                sink.write(out)
            except Exception as exc:
                logger.error("[RTP] Audio sink failed, playback stopped: %s", exc)
                self.sink = None

    def _decode(self, payload: Any) -> np.ndarray:
        """A payload as one frame of int16 samples: decoded by the decoder of the stream's payload type (the
        subclass's ``_decoder_for`` finds one for a type the peer switched to), padded or cut to our frame."""
        n = self.frame_samples
        if payload is None or len(payload) == 0:
            return np.zeros(n, dtype=np.int16)
        pt = self._rx_pt if self._rx_pt is not None else self.payload_type
        dec = self._decoders.get(pt) or self._decoder_for(pt)
        pcm: np.ndarray = dec.decode(payload) if dec is not None else np.zeros(0, dtype=np.int16)
        if len(pcm) != n:  # the peer packetises differently: pad or cut to our frame
            fixed = np.zeros(n, dtype=np.int16)
            m = min(n, len(pcm))
            fixed[:m] = pcm[:m]
            pcm = fixed
        return pcm

    def _decoder_for(self, pt: int) -> Any:
        raise NotImplementedError("ReceiverCore is the base of media.receiver.RtpReceiver")

    def _new_playout(self) -> Any:
        raise NotImplementedError("ReceiverCore is the base of media.receiver.RtpReceiver")
