"""The paced RTP sender of one call: frames from a source, encoded by the codec, stamped and sent on time.

Strategy
--------
The media session's ``Pacer`` calls ``send_slot(n)`` at slot n's deadline. Slot n carries RTP timestamp
``ts0 + n · frame_timestamps`` (the codec's timestamp step for the ptime), so the timeline stays exact whatever
the wake-up jitter; a skipped slot (late wake-up) or a pause sets the marker bit on the next packet, which
starts a new talk spurt (RFC 3550 §5.1, RFC 3551 §4.1). Each slot reads ``frame_samples`` PCM samples at the
codec's sample rate from the source, encodes them with this stream's encoder and sends header + payload in one
datagram through the ``transmit`` callable the session gives (which owns the socket and the destination).

DTMF (RFC 4733): while a digit plays, ``dtmf.DtmfSender`` produces the telephone-event packets (including the
three end-of-event retransmissions) and they replace the audio of their slots (§2.5.1.1); the source keeps
being read so the audio stays in step. The sender counts what it sent for RTCP sender reports
(``rtp.stats.SenderStats``) and gives the RTP timestamp of any instant for the SR (§6.4.1).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from .. import _compat
from .. import rtp
from ..codecs import Codec
from ..rtp import stats as _stats
from . import dtmf as _dtmf
from .clock import loop_time

if TYPE_CHECKING:
    from ._sender_py import SenderCore as _Core
else:  # the fields a slot touches and the common slot, compiled (or the twin)
    _Core = _compat.load("_sender").SenderCore

logger = logging.getLogger(__name__)

__all__ = ["RtpSender"]

_MASK32 = 0xFFFFFFFF


class RtpSender(_Core):
    """RTP out for one call: sequence numbers, timestamps, marker bit, source reading, encoding, DTMF.

    Args:
        ssrc: our synchronisation source.
        rng: random numbers for the initial sequence number and timestamp (RFC 3550 §5.1).
        transmit: ``transmit(datagram) -> bool`` sends one RTP datagram; True when it left.
        loop: the event loop (for the ``source_done`` future and the send times).
    """

    def __init__(
        self,
        ssrc: int,
        rng: random.Random,
        transmit: Callable[[bytes], bool],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.ssrc = ssrc
        self._transmit = transmit
        #: the session's RTP socket (its descriptor and family), its ``MediaSockets`` and the receiver whose
        #: ``remote_rtp`` is the peer: the compiled base then sends the common slot's packet itself (-1: never)
        self.tx_fd, self.tx_family, self.tx_sockets, self.tx_peer = -1, 0, None, None
        #: the media tick's guard (``tick``): the session says whether its direction sends, and gives the receiver
        #: whose ``remote_rtp`` is the peer and its ``AddressProof``
        self.sending, self.remote_of, self.proof = False, None, None
        self._loop = loop
        self._now = loop_time(loop)
        self._seq = rng.getrandbits(16)
        self._ts0 = rng.getrandbits(32)
        self._ts0_time = 0.0
        self.source: Any = None
        #: a live source (``live = True``, the play queue of ``app.call_audio``) never ends: an empty read means
        #: "nothing to say this slot" (no packet; the next one starts a talk spurt), not the end of the audio
        self._live = False
        self.source_done: "asyncio.Future[None]" = loop.create_future()
        self.marker_next = True
        self._last_sent_n = -2
        self.stats = _stats.SenderStats()
        #: sent anything since the last RTCP report (an SR is due rather than an RR)
        self.we_sent = False
        #: sent any audio at all (media flowed, for the peer-lost check)
        self.sent_audio = False
        self.first_sent_at = None
        self.last_sent_at = 0.0
        self.dtmf = None
        #: send slots skipped because the process woke up too late to catch up
        self.skipped = 0
        # negotiated (configure)
        self.codec: Optional[Codec] = None
        self._encoder = None
        self.payload_type = 0
        self.dtmf_payload_type = None
        self.ptime = 20
        self.frame_samples = 0
        self.frame_timestamps = 0

    # -- set-up -----------------------------------------------------------------------------------------------

    def set_source(self, source: Any) -> None:
        """The audio source (``read(n)`` of int16 PCM at the codec's sample rate, ``eof``), or None."""
        self.source = source
        self._live = bool(getattr(source, "live", False))
        if source is not None and self.source_done.done():
            # a source that ended before (an early-media prompt, a file): the new one goes on, with its own end
            self.source_done = self._loop.create_future()
        if source is None and not self.source_done.done():
            self.source_done.set_result(None)

    def configure(self, codec: Codec, payload_type: int, ptime: int, dtmf_payload_type: Optional[int]) -> None:
        """Apply negotiated parameters (a new codec takes a fresh encoder; the same codec keeps its state)."""
        if codec is not self.codec or self._encoder is None:
            self._encoder = codec.encoder()
        self.codec = codec
        self.payload_type = payload_type
        self.ptime = ptime
        self.frame_samples = codec.frame_samples(ptime)
        self.frame_timestamps = codec.frame_timestamps(ptime)
        self.dtmf_payload_type = dtmf_payload_type

    def start(self, now: float) -> None:
        """Slot 0 is due at ``now``: RTP timestamp ``ts0`` corresponds to it."""
        self._ts0_time = now

    def rebase(self, n: int, slot_time: float, old_frame_timestamps: int, now: float) -> None:
        """The schedule restarts at ``now`` (a ptime change): continue the RTP timeline from slot ``n``.

        Args:
            n: the next slot of the old schedule; slot_time: its due time; old_frame_timestamps: the old step.
            now: slot 0 of the new schedule.
        """
        ts = (self._ts0 + n * old_frame_timestamps) & _MASK32
        self._ts0 = (ts + int(round((now - slot_time) * self._clock_rate))) & _MASK32
        self._ts0_time = now
        self._last_sent_n = -2
        if self.dtmf is not None and not self.dtmf.busy:
            self.dtmf = None

    @property
    def _clock_rate(self) -> int:
        return self.codec.clock_rate if self.codec is not None else 0

    def rtp_timestamp(self, now: float) -> int:
        """The RTP timestamp that corresponds to the instant ``now`` (for an RTCP sender report)."""
        return (self._ts0 + int(round((now - self._ts0_time) * self._clock_rate))) & _MASK32

    @property
    def has_work(self) -> bool:
        """True while there is audio or a DTMF digit to send."""
        return self.source is not None or (self.dtmf is not None and self.dtmf.busy)

    def queue_dtmf(self, digits: str) -> None:
        """Queue DTMF digits as RFC 4733 events on the codec's clock (ValueError for a non-digit)."""
        if self.dtmf is None:
            self.dtmf = _dtmf.DtmfSender(self._clock_rate, self.frame_timestamps)
        self.dtmf.queue(digits)

    # -- the media tick -----------------------------------------------------------------------------------------

    def on_skip(self, count: int) -> None:
        """The pacer skipped ``count`` slots (a late wake-up): the next packet starts a new talk spurt."""
        self.marker_next = True
        self.skipped += count
        logger.debug("[RTP] Late wake-up: skipped %d send slot(s)", count)

    # ``send_slot(n)`` -- send slot ``n``'s packet: a telephone-event while a digit plays, else the next frame of
    # audio -- is the base's: the common slot (no event playing, a source that has not ended) is sent there,
    # compiled; every other slot comes here, and this is what any slot means.
    def _send_slot_rest(self, n: int) -> None:
        """The whole of slot ``n`` (``send_slot``)."""
        ts = (self._ts0 + n * self.frame_timestamps) & _MASK32
        if n != self._last_sent_n + 1:
            self.marker_next = True
        ds = self.dtmf
        if ds is not None and ds.busy and self.dtmf_payload_type is not None:
            pkt = ds.next_packet(ts)
            if pkt is not None:
                payload, marker, ev_ts = pkt
                # the audio of this slot is replaced by the event (RFC 4733 §2.5.1.1)
                if self.source is not None and not self.source_done.done():
                    self._read_source()
                self._send(self.dtmf_payload_type, ev_ts, bool(marker), payload, n)
                self.marker_next = True  # audio after an event starts a new talk spurt
                return
        if self.source is None or self.source_done.done() or self._encoder is None:
            return
        pcm = self._read_source()
        if pcm is None:
            return
        payload = self._encoder.encode(pcm)
        marker = self.marker_next
        self.marker_next = False
        self._send(self.payload_type, ts, marker, payload, n)
        self.sent_audio = True
        if getattr(self.source, "eof", False):
            self.finish_source()

    def _read_source(self) -> Optional[np.ndarray]:
        try:
            pcm = self.source.read(self.frame_samples)
        except Exception as exc:
            logger.error("[RTP] Audio source failed: %s", exc)
            self.finish_source()
            return None
        if pcm is None or len(pcm) == 0:
            if self._live:
                self.marker_next = True
            else:
                self.finish_source()
            return None
        return pcm  # type: ignore[no-any-return]

    def finish_source(self) -> None:
        """The source ended (or failed): resolve ``source_done`` once, and say so."""
        if not self.source_done.done():
            self.source_done.set_result(None)
            logger.info("[RTP] Audio source finished after %s packets", f"{self.stats.packet_count:,}")

    def _send(self, pt: int, ts: int, marker: bool, payload: bytes, n: int) -> None:
        seq = self._seq
        buf = rtp.build_packet(pt, seq, ts, self.ssrc, payload, marker)  # header and payload in one compiled step
        self._seq = (seq + 1) & 0xFFFF
        self._last_sent_n = n
        if self._transmit(buf):
            self.stats.on_sent(len(payload))
            self.we_sent = True
            now = self._now()
            if self.first_sent_at is None:
                self.first_sent_at = now
            self.last_sent_at = now
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("[RTP] Sending packet: %d bytes (Sequence #%d)", len(payload), seq)
