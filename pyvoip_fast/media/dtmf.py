"""DTMF digits as RFC 4733 telephone-events: the 4-byte payload, a per-tick sender and a de-duplicating receiver.

Strategy
--------
RFC 4733 §2.3 payload (network byte order)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     event     |E|R| volume    |          duration             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

* Events 0-9 are the digits, 10 ``*``, 11 ``#``, 12-15 ``A``-``D`` (RFC 4733 §3.2 Table 7).
* ``E`` marks the end of the event; ``R`` is reserved: sent as 0, ignored on receipt (§2.3.3).
* ``volume`` is the power level in -dBm0, 0-63 (§2.3.4); ``duration`` is in timestamp units from the event's
  start to the end of the data in this packet (§2.3.5).
* All packets of one event carry the event's start timestamp (§2.3.1); the first one has the RTP marker bit
  (§2.5.1.1); updates follow every packetisation interval while the tone lasts (§2.5.1.2); the final (``E``)
  packet is sent three times with unchanged duration and timestamp (§2.5.1.4).

:class:`DtmfSender` is a pull object: the media engine calls :meth:`DtmfSender.next_packet` once per frame tick
with the RTP timestamp of that tick; it returns a packet to send instead of audio, or ``None`` (send audio).
Between two digits it leaves ``pause_ms`` of audio. Events longer than 65535 timestamp units (8.19 s at 8 kHz)
are not produced (``duration_ms`` is bounded instead of using §2.5.1.3 segmentation).

:class:`DtmfReceiver` identifies an event by its RTP timestamp (and code), so it reports each key press exactly
once no matter how many updates or end retransmissions arrive, and in whatever order; it reports the digit on
**first sight** (the earliest useful moment for an IVR) and records ``(digit, duration_ms)`` when the event ends
(or, if every end packet was lost, when the next event starts or :meth:`DtmfReceiver.flush` is called).
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from dataclasses import dataclass
from typing import Deque, List, Optional, Tuple

from ..errors import ParseError

__all__ = [
    "DIGITS",
    "DtmfPayload",
    "encode_event",
    "decode_event",
    "digit_to_event",
    "event_to_digit",
    "DtmfSender",
    "DtmfReceiver",
]

logger = logging.getLogger(__name__)

#: Event codes 0-15 in order (RFC 4733 §3.2).
DIGITS = "0123456789*#ABCD"

_STRUCT = struct.Struct("!BBH")
_MAX_DURATION = 0xFFFF
_END_REPEATS = 3


def digit_to_event(digit: str) -> int:
    """Event code of a DTMF digit (``"0"``-``"9"``, ``"*"``, ``"#"``, ``"A"``-``"D"``; lower case accepted).

    Raises:
        ValueError: not a DTMF digit.
    """
    if not isinstance(digit, str) or len(digit) != 1 or digit.upper() not in DIGITS:
        raise ValueError(f"not a DTMF digit: {digit!r} (allowed: {DIGITS})")
    return DIGITS.index(digit.upper())


def event_to_digit(event: int) -> Optional[str]:
    """The digit for event codes 0-15, ``None`` for any other (non-DTMF) event."""
    return DIGITS[event] if 0 <= event < 16 else None


@dataclass(frozen=True)
class DtmfPayload:
    """One decoded telephone-event block."""

    event: int
    """Event code 0-255 (0-15 are DTMF)."""
    end: bool
    """The E bit: this is (a retransmission of) the final packet of the event."""
    volume: int
    """Power level in -dBm0 (0-63)."""
    duration: int
    """Timestamp units since the event began (0-65535)."""

    @property
    def digit(self) -> Optional[str]:
        """The DTMF digit, or ``None`` for a non-DTMF event."""
        return event_to_digit(self.event)


def encode_event(event: int, end: bool, volume: int, duration: int) -> bytes:
    """Build the 4-byte telephone-event payload (R bit 0).

    Args:
        event: event code 0-255.
        end: the E bit.
        volume: 0-63 (-dBm0).
        duration: 0-65535 timestamp units.

    Returns:
        4 bytes.

    Raises:
        ValueError: a field out of range.
    """
    if not 0 <= event <= 255:
        raise ValueError(f"event code must be 0-255, got {event}")
    if not 0 <= volume <= 63:
        raise ValueError(f"volume must be 0-63 (-dBm0), got {volume}")
    if not 0 <= duration <= _MAX_DURATION:
        raise ValueError(f"duration must be 0-65535 timestamp units, got {duration}")
    return _STRUCT.pack(event, (0x80 if end else 0) | volume, duration)


def decode_event(payload: bytes) -> DtmfPayload:
    """Parse a 4-byte telephone-event payload (the reserved R bit is ignored, RFC 4733 §2.3.3).

    Raises:
        ParseError: the payload is not exactly 4 bytes.
    """
    try:
        n = len(payload)
    except TypeError:
        raise ParseError(f"telephone-event payload must be bytes-like, got {type(payload).__name__}") from None
    if n != 4:
        raise ParseError(f"telephone-event payload must be 4 bytes, got {n}")
    event, flags, duration = _STRUCT.unpack(bytes(payload))
    return DtmfPayload(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)


class DtmfSender:
    """Turns queued digits into RFC 4733 packets, one per frame tick.

    Args:
        clock_rate: RTP clock of the telephone-event payload type (8000 with G.711).
        frame_samples: timestamp units per tick (the audio ptime: 160 for 20 ms).
        duration_ms: tone length of each digit (40-8000 ms; RFC 4733 suggests at least 40 ms).
        pause_ms: audio between two digits (>= 0).
        volume: power level 0-63 (-dBm0).

    Raises:
        ValueError: an argument out of range.
    """

    def __init__(
        self,
        clock_rate: int = 8000,
        frame_samples: int = 160,
        *,
        duration_ms: int = 100,
        pause_ms: int = 60,
        volume: int = 10,
    ) -> None:
        if clock_rate <= 0 or frame_samples <= 0:
            raise ValueError("clock_rate and frame_samples must be positive")
        if not 0 <= volume <= 63:
            raise ValueError(f"volume must be 0-63 (-dBm0), got {volume}")
        if pause_ms < 0:
            raise ValueError(f"pause_ms must be >= 0, got {pause_ms}")
        units = round(duration_ms * clock_rate / 1000)
        if duration_ms < 10 or units > _MAX_DURATION:
            raise ValueError(
                f"duration_ms must be 10-{_MAX_DURATION * 1000 // clock_rate} ms at {clock_rate} Hz, got {duration_ms}"
            )
        self.clock_rate = clock_rate
        self.frame_samples = frame_samples
        self.volume = volume
        # whole ticks: the tone lasts at least duration_ms
        self._ticks = max(1, -(-units // frame_samples))
        self._pause_ticks = -(-round(pause_ms * clock_rate / 1000) // frame_samples)
        self._queue: Deque[int] = deque()
        self._event: Optional[int] = None
        self._start_ts = 0
        self._tick = 0  # packets of the current event sent so far
        self._ends_sent = 0
        self._pause_left = 0

    def queue(self, digits: str) -> None:
        """Queue digits to send, in order.

        Raises:
            ValueError: a character that is not in :data:`DIGITS` (lower-case ``a``-``d`` accepted); nothing is
                queued then.
        """
        events = [digit_to_event(d) for d in digits]
        self._queue.extend(events)

    @property
    def active(self) -> bool:
        """True while an event is being sent (ticks that return packets)."""
        return self._event is not None

    @property
    def pending(self) -> int:
        """Digits queued and not started yet."""
        return len(self._queue)

    @property
    def busy(self) -> bool:
        """True while anything is left to do: an event in progress, the pause after it, or queued digits."""
        return self._event is not None or self._pause_left > 0 or bool(self._queue)

    def next_packet(self, timestamp_of_this_frame: int) -> Optional[Tuple[bytes, bool, int]]:
        """The telephone-event packet for this tick, or ``None`` to send audio.

        Args:
            timestamp_of_this_frame: the RTP timestamp the audio frame of this tick would carry.

        Returns:
            ``(payload, marker, rtp_timestamp)``: send it with the telephone-event payload type, the given marker
            and timestamp (the event's start timestamp), and the next sequence number; or ``None``.
        """
        if self._event is None:
            if self._pause_left > 0:
                self._pause_left -= 1
                return None
            if not self._queue:
                return None
            self._event = self._queue.popleft()
            self._start_ts = timestamp_of_this_frame & 0xFFFFFFFF
            self._tick = 0
            self._ends_sent = 0
        event = self._event
        if self._tick < self._ticks:
            self._tick += 1
            duration = min(self._tick * self.frame_samples, _MAX_DURATION)
            end = self._tick == self._ticks
            marker = self._tick == 1
        else:
            duration = min(self._ticks * self.frame_samples, _MAX_DURATION)
            end = True
            marker = False
        if end:
            self._ends_sent += 1
            if self._ends_sent >= _END_REPEATS:
                self._event = None
                self._pause_left = self._pause_ticks
                logger.debug("[DTMF] sent %s (%d units)", DIGITS[event], duration)
        return encode_event(event, end, self.volume, duration), marker, self._start_ts


class DtmfReceiver:
    """Reports each received telephone-event once.

    ``feed`` returns the digit the first time a packet of a new event is seen; ``events`` collects
    ``(digit, duration_ms)`` per event once its end is known. ``digits`` is everything reported so far.

    Args:
        clock_rate: RTP clock of the telephone-event payload type.
    """

    def __init__(self, clock_rate: int = 8000) -> None:
        if clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        self.clock_rate = clock_rate
        self.events: List[Tuple[str, float]] = []
        self.digits = ""
        self.malformed = 0
        self._current: Optional[Tuple[int, int]] = None  # (timestamp, event) of the event in progress
        self._current_duration = 0
        self._current_ended = False
        self._recent: Deque[Tuple[int, int]] = deque(maxlen=16)  # events already reported

    def feed(self, rtp_timestamp: int, payload: bytes, marker: bool = False) -> Optional[str]:
        """Process one telephone-event packet.

        Args:
            rtp_timestamp: the packet's RTP timestamp (the event start).
            payload: the RTP payload.
            marker: the RTP marker bit (informational; events are told apart by timestamp).

        Returns:
            The digit when this packet starts a new DTMF event, else ``None`` (updates, retransmissions,
            duplicates, non-DTMF events and malformed payloads).
        """
        n = len(payload)
        if n < 4 or n % 4:
            self.malformed += 1
            logger.debug("[DTMF] ignoring telephone-event payload of %d bytes", n)
            return None
        ev = decode_event(bytes(payload[:4]))
        digit = ev.digit
        if digit is None:
            return None
        key = (rtp_timestamp & 0xFFFFFFFF, ev.event)
        if key == self._current:
            if not self._current_ended:
                self._current_duration = max(self._current_duration, ev.duration)
                if ev.end:
                    self._finish()
            return None
        if key in self._recent:
            return None  # a straggler of an event already finished
        if self._current is not None and not self._current_ended:
            self._finish()  # its end packets were all lost
        self._current = key
        self._current_duration = ev.duration
        self._current_ended = False
        self._recent.append(key)
        self.digits += digit
        logger.info("[DTMF] Received digit %s", digit)
        if ev.end:
            self._finish()
        return digit

    def _finish(self) -> None:
        assert self._current is not None
        digit = DIGITS[self._current[1]]
        self.events.append((digit, self._current_duration * 1000.0 / self.clock_rate))
        self._current_ended = True

    def flush(self) -> None:
        """Record the event in progress (e.g. at the end of the call when its end packets never came)."""
        if self._current is not None and not self._current_ended:
            self._finish()
