"""Per-call media statistics: one flat, JSON-friendly record of what a call's media did.

Strategy: a plain (mutable, slotted) dataclass that ``media.MediaSession`` keeps up to date while the call runs
and freezes when it stops; ``to_dict()`` / ``to_json()`` give the form the command line writes with
``--stats-json``. Values come from RFC 3550 receiver statistics (appendix A.1/A.3/A.8: received, expected, lost,
interarrival jitter), sender counters (§6.4.1), the round-trip time from our SRs echoed in the peer's report
blocks (§6.4.1 LSR/DLSR), the jitter buffer and the concealer, and an ITU-T G.107 E-model estimate (R-factor and
MOS, with and without packet-loss concealment; Ie = 0, Bpl = 25.1 / 4.3 for G.711 per ITU-T G.113 Appendix I)
computed by ``pyvoip_fast.quality`` from the measured loss and an estimated mouth-to-ear delay.

The one-way delay fed to the E-model is ``rtt/2 + jitter-buffer delay + one packet time`` (network, playout
buffering and packetisation); with no RTT measured yet only the local parts count.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Optional

from ..codecs import PCMU
from . import quality  # at load, not at the first call's end: its import (2 ms) would hold every call's media

logger = logging.getLogger(__name__)

__all__ = ["CallStatistics", "REQUIRED_KEYS"]

#: keys every JSON form carries (the command line's ``--stats-json`` contract)
REQUIRED_KEYS = ("packets_sent", "packets_received", "packets_lost", "jitter_ms", "rtt_ms", "mos")


@dataclass(slots=True)  # 45 fields: past 30 attributes an instance would carry a dict of its own
class CallStatistics:
    """Statistics of one call's media stream, both directions.

    Attributes:
        codec: negotiated encoding name (``Codec.name``: "PCMU", "PCMA", "L16"), "" before the stream starts.
        clock_rate: RTP clock rate in Hz of that codec (G.711's until the stream starts); the jitter figures are
            converted to milliseconds on it.
        ptime_ms: packet time in milliseconds.
        duration: seconds between ``start()`` and now (or ``stop()``).
        local_ssrc: our synchronisation source.
        remote_ssrc: the peer's current SSRC, or None before its first packet.
        packets_sent: RTP packets we sent (audio and telephone-events).
        bytes_sent: RTP payload octets we sent (the SR "sender's octet count").
        packets_received: RTP packets accepted from the peer (duplicates excluded).
        early_media_packets: of those, the ones that came before the call was answered (early media after a
            183 with SDP; they were played and recorded like the rest).
        bytes_received: payload octets of those packets.
        packets_lost: cumulative packets lost (RFC 3550 A.3: expected − received, never below 0).
        loss_percent: ``packets_lost / expected`` in percent.
        packets_expected: extended highest sequence − base + 1 (A.3).
        packets_late: packets that arrived after their playout time (dropped by the jitter buffer).
        packets_duplicated: duplicate packets (same sequence number seen twice).
        packets_reordered: packets that arrived out of order.
        packets_invalid: datagrams on the RTP port that did not parse as RTP (or unknown payload type).
        frames_concealed: 20 ms (ptime) frames synthesised by packet-loss concealment.
        frames_played: frames delivered to the sink (received or concealed).
        frames_stretched / frames_shrunk: slots the jitter buffer inserted to grow its delay, and frames it skipped
            to shrink it (since the call's last change of codec or frame size).
        schedule_skips: send slots skipped because the process woke up too late to catch up.
        jitter_ms: interarrival jitter (A.8) of the peer's stream, in milliseconds.
        jitter_buffer_delay_ms: the jitter buffer's playout delay now, as measured (how long the fastest packets
            wait before they are played; the target while nothing plays).
        jitter_buffer_target_ms: the delay the buffer adapts towards (from the measured jitter).
        rtt_ms: round-trip time from the peer's report blocks (A − LSR − DLSR), None until measured.
        remote_packets_lost: cumulative loss the peer reported about our stream.
        remote_jitter_ms: jitter the peer reported about our stream.
        rtcp_sent: compound RTCP packets we sent.
        rtcp_received: compound RTCP packets received.
        rtcp_strangers: RTCP datagrams dropped because they came from neither the peer's RTP host nor the RTCP
            address it negotiated.
        r_factor / mos: E-model estimate with packet-loss concealment (the way we play the audio); None while
            nothing has been received on this side.
        r_factor_no_plc / mos_no_plc: the same without concealment, for comparison.
        r_scale: the scale of ``r_factor``: 100 (G.107, narrowband) or 129 (G.107.1, wideband: G.722, L16/16000).
        dtmf_sent / dtmf_received: telephone-event digits sent and received (and SIP INFO digits received).
        audio_in_dropped: frames that ``Call.audio_in`` consumers did not take in time (the oldest are dropped).
        bye_received: the peer sent an RTCP BYE.
        peer_lost: the peer vanished (ICMP unreachable and silence).
    """

    codec: str = ""
    clock_rate: int = PCMU.clock_rate
    ptime_ms: int = 20
    duration: float = 0.0
    local_ssrc: int = 0
    remote_ssrc: Optional[int] = None
    packets_sent: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    bytes_received: int = 0
    packets_lost: int = 0
    loss_percent: float = 0.0
    packets_expected: int = 0
    packets_late: int = 0
    packets_duplicated: int = 0
    packets_reordered: int = 0
    packets_invalid: int = 0
    frames_concealed: int = 0
    frames_played: int = 0
    frames_stretched: int = 0
    frames_shrunk: int = 0
    schedule_skips: int = 0
    jitter_ms: float = 0.0
    jitter_buffer_delay_ms: float = 0.0
    jitter_buffer_target_ms: float = 0.0
    rtt_ms: Optional[float] = None
    remote_packets_lost: Optional[int] = None
    remote_jitter_ms: Optional[float] = None
    rtcp_sent: int = 0
    rtcp_received: int = 0
    rtcp_strangers: int = 0
    r_factor: Optional[float] = None
    r_scale: int = 100
    mos: Optional[float] = None
    r_factor_no_plc: Optional[float] = None
    mos_no_plc: Optional[float] = None
    dtmf_sent: str = ""
    dtmf_received: str = ""
    audio_in_dropped: int = 0
    early_media_packets: int = 0
    bye_received: bool = False
    peer_lost: bool = False

    @property
    def one_way_delay_ms(self) -> float:
        """Estimated mouth-to-ear delay: half the RTT, the jitter-buffer delay and one packet time."""
        return (self.rtt_ms or 0.0) / 2.0 + self.jitter_buffer_delay_ms + float(self.ptime_ms)

    def update_quality(self) -> None:
        """Recompute the E-model fields (``r_factor``, ``mos``, ``*_no_plc``) from loss and delay.

        Uses ``pyvoip_fast.quality.estimate``; when nothing was expected yet the loss is taken as 0.
        """
        if self.packets_received == 0 and self.packets_expected == 0:
            # nothing heard on this side (a send-only caller, a silent peer): there is no audio to rate
            self.r_factor = self.mos = self.r_factor_no_plc = self.mos_no_plc = None
            return
        loss = self.loss_percent if self.packets_expected > 0 else 0.0
        if self.codec in quality.WIDEBAND_IE:  # 16 kHz audio: G.107.1, R on the 0-129 scale
            q = quality.estimate_wideband(loss, self.one_way_delay_ms, codec=self.codec, plc=True)
            self.r_scale = 129
        else:
            q = quality.estimate(loss, self.one_way_delay_ms, plc=True)
            self.r_scale = 100
        self.r_factor = round(float(q.r_factor), 2)
        self.mos = round(float(q.mos), 2)
        self.r_factor_no_plc = round(float(q.r_factor_no_plc), 2)
        self.mos_no_plc = round(float(q.mos_no_plc), 2)

    def to_dict(self) -> Dict[str, Any]:
        """A plain dict of every field (JSON-serialisable; floats rounded to 3 decimals)."""
        out: Dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float):
                v = round(v, 3)
            out[f.name] = v
        out["one_way_delay_ms"] = round(self.one_way_delay_ms, 3)
        return out

    def to_json(self, *, indent: Optional[int] = 2) -> str:
        """The ``to_dict()`` form as a JSON string (keys in field order)."""
        return json.dumps(self.to_dict(), indent=indent)

    def copy(self) -> "CallStatistics":
        """An independent snapshot."""
        return CallStatistics(**asdict(self))
