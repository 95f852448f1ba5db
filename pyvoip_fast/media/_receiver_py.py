"""Pure-Python twin of ``pyvoip_fast.media._receiver`` (ext/receiver.pyx): the fields of one call's RTP receiver that
a packet touches.

The compiled base takes the common packet (a plain header from the latched source, of the current SSRC, with a
payload type that has a decoder) without building an ``RtpPacket``, and sends every other datagram to
``RtpReceiver._on_datagram_rest``, the whole receive path. That path is the definition of what a datagram does; this
twin sends every datagram there, so the two differ only in speed (``tests/media/test_receiver_parity.py``).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..net.sockets import Addr

__all__ = ["ReceiverCore"]


class ReceiverCore:
    """The fields of ``media.receiver.RtpReceiver`` that a packet touches (slots, as the compiled base's fields)."""

    __slots__ = ("remote_rtp", "dtmf_payload_type", "rx", "remote_ssrc", "_rx_pt", "jb", "_decoders", "_latched",
                 "receiving", "last_rtp_heard", "packets", "octets", "invalid")

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

    def on_datagram(self, data: Any, addr: Any, now: float) -> bool:
        """Take one RTP datagram; True when it was a valid packet from the peer (it counts as hearing it)."""
        return self._on_datagram_rest(data, addr, now)

    def _on_datagram_rest(self, data: Any, addr: Any, now: float) -> bool:
        raise NotImplementedError("ReceiverCore is the base of media.receiver.RtpReceiver")
