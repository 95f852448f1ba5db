"""Pure-Python twin of ``pyvoip_fast.media._sender`` (ext/sender.pyx): the fields of one call's paced RTP sender that
a slot touches.

The compiled base sends the common slot (no telephone-event playing, a source that has not ended, an encoder) in C
and sends every other slot to ``RtpSender._send_slot_rest``, the whole slot in Python. That path is the definition
of what a slot does; this twin sends every slot there, so the two differ only in speed
(``tests/media/test_sender_parity.py``).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

__all__ = ["SenderCore"]


class SenderCore:
    """The fields of ``media.sender.RtpSender`` that a slot touches (slots, as the compiled base's fields)."""

    __slots__ = ("ssrc", "_seq", "_ts0", "frame_timestamps", "frame_samples", "_last_sent_n", "payload_type",
                 "marker_next", "we_sent", "sent_audio", "last_sent_at", "first_sent_at", "dtmf", "dtmf_payload_type",
                 "source", "source_done", "_encoder", "_transmit", "stats", "_now", "tx_fd", "tx_family", "tx_sockets",
                 "tx_peer", "sending", "remote_of", "proof")

    ssrc: int
    _seq: int
    _ts0: int
    frame_timestamps: int
    frame_samples: int
    _last_sent_n: int
    payload_type: int
    marker_next: bool
    we_sent: bool
    sent_audio: bool
    last_sent_at: float
    first_sent_at: Optional[float]
    dtmf: Any
    dtmf_payload_type: Optional[int]
    source: Any
    source_done: Any
    _encoder: Any
    _transmit: Callable[[Any], bool]
    stats: Any
    _now: Callable[[], float]
    tx_fd: int  # the session's RTP socket, its family, its MediaSockets and receiver: the compiled base's own send
    tx_family: int
    tx_sockets: Any
    tx_peer: Any
    # the media tick's guard: a direction that sends, the receiver whose remote_rtp is the peer, the session's
    # AddressProof (None: no address check)
    sending: bool
    remote_of: Any
    proof: Any

    def tick(self, n: int, deadline: float) -> None:
        """The media tick's send stage: slot ``n`` goes out while the direction sends, the peer's address
        (``remote_of.remote_rtp``) is known and allowed by ``proof``, and there is audio or a digit to send."""
        remote = self.remote_of.remote_rtp if self.sending and self.remote_of is not None else None
        if remote is None or (self.source is None and not (self.dtmf is not None and self.dtmf.busy)):
            return
        if self.proof is None or self.proof.allows(remote):
            self.send_slot(n)

    def send_slot(self, n: int) -> None:
        """Send slot ``n``'s packet: a telephone-event while a digit plays, else the next frame of audio."""
        self._send_slot_rest(n)

    def _send_slot_rest(self, n: int) -> None:
        raise NotImplementedError("SenderCore is the base of media.sender.RtpSender")
