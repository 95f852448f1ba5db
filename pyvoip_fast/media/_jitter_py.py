"""The jitter buffer in pure Python: the twin of the compiled ``pyvoip_fast.media._jitter`` (``ext/jitter.pyx``).

Same API, same results, same exceptions; :mod:`pyvoip_fast.media.jitter` picks one and explains the strategy.
"""

from __future__ import annotations

import logging
import math
from array import array
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple

from ..rtp import stats as _stats
from .jitter_stats import (
    MAX_DROPOUT,
    MAX_MISORDER,
    SEEN_WINDOW,
    JitterStats,
    buffer_settings,
    check_stretch_options,
    may_shrink,
    spread_options,
)
from .jitter_stats import SEEN_MASK as _SEEN_MASK
from .jitter_stats import SHRINK_DWELL as _SHRINK_DWELL
from .jitter_stats import SHRINK_HYSTERESIS as _SHRINK_HYSTERESIS
from .jitter_stats import TRIM_RESIDUE as _TRIM_RESIDUE

__all__ = ["JitterBuffer", "JitterStats", "TimeStretchJitterBuffer"]

logger = logging.getLogger("pyvoip_fast.media.jitter")

_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32
_NOT_SEEN = [-1]  # no masked sequence number is negative

class _Unwrapper:
    """Extends a modular counter (uint16 sequence numbers, uint32 timestamps) to an unbounded integer."""

    __slots__ = ("mod", "half", "last")

    def __init__(self, mod: int) -> None:
        self.mod = mod
        self.half = mod >> 1
        self.last: Optional[int] = None

    def extend(self, value: int) -> int:
        if self.last is None:
            self.last = value
            return value
        delta = (value - self.last) % self.mod
        if delta >= self.half:
            delta -= self.mod
        ext = self.last + delta
        if delta > 0:
            self.last = ext
        return ext

    def peek(self, value: int) -> int:
        """The extension of ``value`` without moving the reference."""
        if self.last is None:
            return value
        delta = (value - self.last) % self.mod
        if delta >= self.half:
            delta -= self.mod
        return self.last + delta


#: the buffers' attributes, as slots: a call holds one buffer, and past 30 attributes CPython gives each instance
#: a dict of its own (0.8 KB)
_BUFFER_SLOTS = (
    "clock_rate", "frame_samples", "frame_seconds", "min_delay", "max_delay", "initial_delay",
    "jitter_factor", "margin", "release_time", "window", "_coalesce", "capacity", "silence_detector", "stats",
    "ssrc", "_transit", "_last_shrink", "_seq", "_ts", "_buf", "_seen", "_next_ts",
    "_horizon", "_last_played_seq", "_lost_seqs", "_first_arrival", "_missing_run", "_offset", "_bad_seq",
    "_bad_packet",
)


class JitterBuffer:
    """Reorders, de-duplicates and times the packets of one stream for playout.

    Args:
        clock_rate: RTP clock rate (8000 for G.711).
        frame_samples: timestamp units per frame (160 for 20 ms).
        min_delay: lower bound of the target delay, seconds.
        max_delay: upper bound of the target delay, seconds.
        initial_delay: target delay before any jitter was measured, seconds.
        release_time: time constant of the peak-spread decay when calm, seconds.
        window: how long the minimum transit is remembered, seconds.
        capacity: most packets held (beyond it, packets are dropped and counted as ``overflow``).
        silence_detector: optional ``payload -> bool``; silent frames are preferred when shrinking.
        jitter_factor: ``k`` in ``k * J`` (default 4; 2 in :class:`TimeStretchJitterBuffer`).
        margin: seconds added to the target delay (default one frame; 0 in :class:`TimeStretchJitterBuffer`).

    Raises:
        ValueError: inconsistent parameters.
    """

    __slots__ = _BUFFER_SLOTS

    #: whether ``get`` leaves delay changes to the caller (:class:`TimeStretchJitterBuffer`)
    time_stretch: ClassVar[bool] = False

    def __init__(
        self,
        *,
        clock_rate: int = 8000,
        frame_samples: int = 160,
        min_delay: float = 0.02,
        max_delay: float = 0.30,
        initial_delay: float = 0.06,
        jitter_factor: Optional[float] = None,
        release_time: float = 4.0,
        window: float = 10.0,
        capacity: int = 1024,
        silence_detector: Optional[Callable[[bytes], bool]] = None,
        margin: Optional[float] = None,
    ) -> None:
        cfg = buffer_settings(self.time_stretch, clock_rate, frame_samples, min_delay, max_delay, initial_delay,
                              jitter_factor, release_time, window, capacity, margin)
        self.clock_rate: int = cfg["clock_rate"]
        self.frame_samples: int = cfg["frame_samples"]
        self.frame_seconds: float = cfg["frame_seconds"]
        self.min_delay: float = cfg["min_delay"]
        self.max_delay: float = cfg["max_delay"]
        self.initial_delay: float = cfg["initial_delay"]
        self.jitter_factor: float = cfg["jitter_factor"]
        self.margin: float = cfg["margin"]
        self.release_time: float = cfg["release_time"]
        self.window: float = cfg["window"]
        self._coalesce: float = cfg["coalesce"]
        self.capacity: int = cfg["capacity"]
        self.silence_detector = silence_detector
        self.stats = JitterStats()
        self.ssrc: Optional[int] = None
        # the transit statistics (compiled ``rtp.stats.TransitStats``, or its twin): the window's minimum transit,
        # the RFC 3550 style smoothed |D| and the peak spread; the jitter and the peak survive resets (they describe
        # the network, not the stream), the window does not
        self._transit = _stats.TransitStats(
            clock_rate, max_delay=self.max_delay, window=self.window, coalesce=self._coalesce,
            release_time=self.release_time, peak=max(0.0, self.initial_delay - self.margin), **self._spread_options())
        self._last_shrink = -math.inf
        self._reset_stream()

    # ------------------------------------------------------------------ state
    def _reset_stream(self) -> None:
        self._seq = _Unwrapper(_SEQ_MOD)
        self._ts = _Unwrapper(_TS_MOD)
        self._buf: Dict[int, Tuple[int, bytes, bool]] = {}  # ext ts -> (ext seq, payload, marker)
        # recent ext seqs: slot ``eseq % SEEN_WINDOW`` holds the newest one seen with that residue, masked (1 KB; a
        # dict of the same 256 numbers took about 17 KB a call)
        self._seen = array("i", _NOT_SEEN) * SEEN_WINDOW
        self._next_ts: Optional[int] = None  # slot to play next; None = not playing (pre-buffering / idle)
        self._horizon: Optional[int] = None  # first slot not yet played (kept while idle)
        self._last_played_seq: Optional[int] = None
        self._lost_seqs: Dict[int, None] = {}  # recently skipped seqs, to move them from lost to late
        self._first_arrival: Optional[float] = None  # arrival of the first packet of the pending spurt
        self._missing_run = 0  # consecutive missing slots with nothing buffered
        self._transit.clear_window()
        self._offset: Optional[float] = None  # playout offset o of the last get
        self._bad_seq: Optional[int] = None  # RFC 3550 A.1 probation of a big jump
        self._bad_packet: Optional[Tuple[int, int, bytes, float, bool]] = None

    @property
    def delay(self) -> float:
        """Current target playout delay, seconds."""
        t = self._transit
        base = max(t.peak, self.jitter_factor * t.jitter, t.spread_quantile())
        return min(self.max_delay, max(self.min_delay, base + self.margin))

    def _spread_options(self) -> Dict[str, Any]:
        """The spread histogram's parameters of the transit statistics (:class:`TimeStretchJitterBuffer`; none
        here: its quantile reads 0)."""
        return {}

    @property
    def jitter(self) -> float:
        """Smoothed interarrival jitter estimate (RFC 3550 A.8 style), seconds."""
        return self._transit.jitter

    @property
    def current_delay(self) -> Optional[float]:
        """Measured buffering delay of the fastest packets (``o - r_min``), or ``None`` when not playing (in a
        :class:`TimeStretchJitterBuffer` the offset counts the audio the caller holds, as of the last ``advise``)."""
        low = self._transit.min_transit
        if self._offset is None or low is None or self._next_ts is None:
            return None
        return self._offset - low

    @property
    def depth(self) -> int:
        """Packets buffered now."""
        return len(self._buf)

    @property
    def playing(self) -> bool:
        """True while inside a talk spurt (slots are being consumed)."""
        return self._next_ts is not None

    # ------------------------------------------------------------------ input
    def put(
        self,
        sequence_number: int,
        timestamp: int,
        payload: bytes,
        arrival: float,
        ssrc: Optional[int] = None,
        marker: bool = False,
    ) -> str:
        """Offer one received RTP packet.

        Args:
            sequence_number: RTP sequence number (0-65535).
            timestamp: RTP timestamp (0-2^32-1).
            payload: the payload bytes (stored as given).
            arrival: arrival time, seconds on the caller's monotonic clock (the same clock as ``get``'s ``now``).
            ssrc: the packet's SSRC; a change starts a new stream.
            marker: the RTP marker bit (start of a talk spurt).

        Returns:
            ``"ok"`` (buffered), ``"duplicate"``, ``"late"`` (its slot was already played: dropped),
            ``"reset"`` (a new stream started with this packet), ``"overflow"`` (buffer full / absurdly early:
            dropped) or ``"invalid"`` (a lone packet far outside the sequence window: dropped unless the next
            packet confirms the jump).
        """
        sequence_number &= 0xFFFF
        timestamp &= 0xFFFFFFFF
        status = "ok"
        if ssrc is not None and self.ssrc is not None and ssrc != self.ssrc:
            logger.info("[Jitter] SSRC changed %08x -> %08x: new stream", self.ssrc, ssrc)
            self._new_stream()
            status = "reset"
        if ssrc is not None:
            self.ssrc = ssrc

        # RFC 3550 A.1: a big jump needs a second, sequential packet before we believe it
        if self._seq.last is not None and status == "ok":
            udelta = (sequence_number - self._seq.last) % _SEQ_MOD
            if MAX_DROPOUT <= udelta < _SEQ_MOD - MAX_MISORDER:
                if self._bad_seq is not None and sequence_number == self._bad_seq:
                    logger.info("[Jitter] sequence jump confirmed: new stream")
                    held = self._bad_packet
                    self._new_stream()
                    if held is not None:
                        self._accept(*held)
                    status = "reset"
                else:
                    self._bad_seq = (sequence_number + 1) % _SEQ_MOD
                    self._bad_packet = (sequence_number, timestamp, bytes(payload), arrival, marker)
                    self.stats.invalid += 1
                    return "invalid"
        self._bad_seq = None
        self._bad_packet = None
        result = self._accept(sequence_number, timestamp, payload, arrival, marker)
        return "reset" if status == "reset" and result == "ok" else result

    def _new_stream(self) -> None:
        self.stats.resets += 1
        self._reset_stream()

    def _accept(self, seq: int, ts: int, payload: bytes, arrival: float, marker: bool) -> str:
        eseq = self._seq.peek(seq)
        if self._seen[eseq % SEEN_WINDOW] == eseq & _SEEN_MASK:
            self.stats.duplicates += 1
            return "duplicate"
        ets = self._ts.peek(ts)
        self._transit.observe(ets, arrival)
        horizon = self._next_ts if self._next_ts is not None else self._horizon
        if horizon is not None and ets < horizon:
            self.stats.late += 1
            if eseq in self._lost_seqs:
                del self._lost_seqs[eseq]
                self.stats.lost -= 1
            self._remember(eseq)
            self._seq.extend(seq)
            return "late"
        if self._next_ts is not None and ets - self._next_ts > 2 * self.max_delay * self.clock_rate + 10 * self.frame_samples:
            # absurdly far ahead of playout: not something we will ever play in time
            self.stats.overflow += 1
            return "overflow"
        if len(self._buf) >= self.capacity:
            self.stats.overflow += 1
            return "overflow"
        # the two references move to the packet's extended values (``extend`` without computing them again)
        su, tu = self._seq, self._ts
        if su.last is None or eseq > su.last:
            su.last = eseq
        if tu.last is None or ets > tu.last:
            tu.last = ets
        self._seen[eseq % SEEN_WINDOW] = eseq & _SEEN_MASK
        if ets in self._buf:  # same timestamp, different sequence number: keep the first
            self.stats.duplicates += 1
            return "duplicate"
        self._buf[ets] = (eseq, bytes(payload), marker)
        if self._first_arrival is None and self._next_ts is None:
            self._first_arrival = arrival
        self.stats.received += 1
        if len(self._buf) > self.stats.max_depth:
            self.stats.max_depth = len(self._buf)
        return "ok"

    def _remember(self, eseq: int) -> None:
        self._seen[eseq % SEEN_WINDOW] = eseq & _SEEN_MASK

    # ------------------------------------------------------------------ output
    def get(self, now: float) -> Tuple[str, Optional[bytes]]:
        """Take the frame for this playout tick. Call once per frame period.

        Args:
            now: the current time on the same clock as the arrival times.

        Returns:
            ``("frame", payload)``; ``("lost", None)`` for a slot inside a talk spurt with no packet (a loss,
            an underrun or a delay stretch: conceal it); ``("empty", None)`` when not playing (before the first
            packet, while pre-buffering, or when the stream is idle).
        """
        if self._next_ts is None:
            if not self._buf or self._first_arrival is None:
                return "empty", None
            # time-stretch mode: the take delay starts at the target or just above it (no stretch needed at once)
            early = 0.0 if self.time_stretch else self.frame_seconds / 2
            if now - self._first_arrival < self.delay - early:
                return "empty", None
            # start a talk spurt at the earliest buffered packet
            self._next_ts = min(self._buf)
            self._missing_run = 0
            # never skip the opening frames of a spurt: a late first tick must not cost the first syllable
            self._last_shrink = now
        assert self._next_ts is not None
        if self.time_stretch:
            if self._offset is None:
                self._offset = now - self._next_ts / self.clock_rate
            return self._play_slot()
        self._offset = now - self._next_ts / self.clock_rate
        target = self.delay
        current = self.current_delay
        if current is not None and current < target - self.frame_seconds / 2:
            # grow: a synthetic slot, no frame consumed
            self.stats.concealed += 1
            self.stats.stretched += 1
            return "lost", None
        entry = self._take_slot()
        if entry is not None and current is not None and current > target + self.frame_seconds:
            if self._may_shrink(now, entry[1], current - target):
                self.stats.shrunk += 1
                self._last_shrink = now
                self._mark_played(entry[0])
                self._advance()
                self._offset = now - self._next_ts / self.clock_rate
                entry = self._take_slot()
        return self._play_slot(entry, take=False)

    def _play_slot(self, entry: Optional[Tuple[int, bytes, bool]] = None,
                   take: bool = True) -> Tuple[str, Optional[bytes]]:
        """Play slot ``next_ts`` (``entry`` already taken from it, or taken here when ``take``)."""
        if entry is None and take:
            entry = self._take_slot()
        if entry is None:
            self.stats.concealed += 1
            self._advance()
            if not self._buf:
                self._missing_run += 1
                if self._missing_run * self.frame_seconds >= self.max_delay:
                    self._go_idle()
            return "lost", None
        eseq, payload, _marker = entry
        last = self._last_played_seq
        if last is not None and eseq == last + 1:  # the next in sequence: nothing skipped
            self._last_played_seq = eseq
        else:
            self._mark_played(eseq)
        self._missing_run = 0
        self.stats.played += 1
        self._advance()
        return "frame", payload

    def peek(self, count: int) -> List[Optional[bytes]]:
        """The payloads buffered for the next ``count`` slots (``None`` where nothing is there yet), without
        taking them: what a lookahead concealer may use after a ``"lost"`` slot. Empty when not playing."""
        if self._next_ts is None:
            return []
        return [e[1] if (e := self._buf.get(self._next_ts + k * self.frame_samples)) is not None else None
                for k in range(count)]

    def _take_slot(self) -> Optional[Tuple[int, bytes, bool]]:
        """Remove and return the packet playing in slot ``next_ts`` (realigning to a packet inside the slot)."""
        assert self._next_ts is not None
        entry = self._buf.pop(self._next_ts, None)
        if entry is not None or not self._buf:
            return entry
        first = min(self._buf)
        if first < self._next_ts + self.frame_samples:
            # a packet starting inside this slot (sender frame grid differs): realign the slot to it
            self._next_ts = first
            return self._buf.pop(first)
        return None

    def _advance(self) -> None:
        assert self._next_ts is not None
        self._next_ts += self.frame_samples
        # anything that is now behind the slot can no longer be played
        if self._buf and min(self._buf) < self._next_ts:
            for k in [k for k in self._buf if k < self._next_ts]:
                eseq, _p, _m = self._buf.pop(k)
                self.stats.late += 1
                self._mark_played(eseq, count_gap=False)

    def _mark_played(self, eseq: int, *, count_gap: bool = True) -> None:
        last = self._last_played_seq
        if last is not None and count_gap and eseq > last + 1:
            for s in range(last + 1, min(eseq, last + 1 + MAX_DROPOUT)):
                if self._seen[s % SEEN_WINDOW] != s & _SEEN_MASK:
                    self.stats.lost += 1
                    self._lost_seqs[s] = None
            while len(self._lost_seqs) > SEEN_WINDOW:
                del self._lost_seqs[next(iter(self._lost_seqs))]
        if last is None or eseq > last:
            self._last_played_seq = eseq

    def _may_shrink(self, now: float, payload: bytes, excess: float) -> bool:
        """Whether to skip this frame (``jitter_stats.may_shrink``)."""
        return may_shrink(self.silence_detector, payload, now - self._last_shrink, excess, self.frame_seconds)

    def _go_idle(self) -> None:
        logger.debug("[Jitter] stream idle")
        self._horizon = self._next_ts
        self._next_ts = None
        self._first_arrival = None
        self._offset = None
        self._missing_run = 0

    def reset(self) -> None:
        """Forget the stream (keeps statistics and the jitter estimate)."""
        self._reset_stream()
        self.ssrc = None


_STRETCH_SLOTS = (
    "quantile", "memory", "_last_grow", "_offset_time",
)


class TimeStretchJitterBuffer(JitterBuffer):
    """A :class:`JitterBuffer` whose caller adapts the delay by time-stretching (see the module notes).

    ``get`` never inserts or skips a frame; :meth:`advise` tells the caller (:class:`pyvoip_fast.media.playout.Playout`)
    when to stretch or compress the audio it holds, and :meth:`note_stretch` counts what it did. The target
    delay is ``clamp(max(peak_spread, k * J, q) + margin)`` with ``k = 2`` and ``margin = 0`` by default, and
    ``q`` the ``quantile`` of the recent spreads.

    Args:
        quantile: the share of packets the target delay should cover, in ``(0, 1]``.
        memory: time constant, in seconds, of the exponential forgetting of the spreads' histogram: after a
            rough patch the target comes back down in about ``memory * ln(1 / (1 - quantile))`` (26 s).
        **kwargs: as :class:`JitterBuffer`.

    Raises:
        ValueError: inconsistent parameters.
    """

    __slots__ = _STRETCH_SLOTS

    time_stretch: ClassVar[bool] = True

    def __init__(self, *, quantile: float = 0.995, memory: float = 5.0, **kwargs: Any) -> None:
        check_stretch_options(quantile, memory)
        self.quantile = float(quantile)
        self.memory = float(memory)
        super().__init__(**kwargs)
        self._last_grow = -math.inf  # when the delay last grew (no shrink right after: no see-saw)
        self._offset_time = 0.0  # the ``now`` of the last advice

    def _spread_options(self) -> Dict[str, Any]:
        return spread_options(self.max_delay, self.frame_seconds, self.memory, self.quantile)

    def advise(self, now: float, held: float = 0.0) -> Tuple[str, float]:
        """Time-stretching advice for this tick: how the caller should move the delay (see the module notes).

        Args:
            now: the current time (the tick).
            held: seconds of audio the caller buffers ahead of the sink.

        Returns:
            ``("grow", s)``: the take delay is under the target: insert up to ``s`` seconds (each insertion
            moves the residue; crossing a whole frame delays the next take by a frame); ``("shrink", s)``: the
            take delay could be a frame shorter and still above the target: remove up to ``s`` seconds;
            ``("trim", s)``: the take delay is right, remove at most ``s`` seconds of residue (only where it is
            inaudible); ``("", 0.0)``: nothing to do (or not playing).
        """
        low = self._transit.min_transit
        if self._next_ts is None or low is None:
            return "", 0.0
        frame = self.frame_seconds
        self._offset_time = now
        held = max(0.0, float(held))
        self._offset = now + held - self._next_ts / self.clock_rate
        whole = math.floor(held / frame + 1e-9)
        residue = max(0.0, held - whole * frame)
        take = self._offset - residue - low
        target = self.delay
        if take < target - 1e-9:
            return "grow", frame
        if take >= target + frame + _SHRINK_HYSTERESIS and now - self._last_grow >= _SHRINK_DWELL:
            return "shrink", frame
        if residue >= _TRIM_RESIDUE:
            return "trim", residue
        return "", 0.0

    def note_stretch(self, seconds: float) -> None:
        """Count a time-stretch the caller applied: ``seconds`` > 0 inserted (``stretched``), < 0 removed
        (``shrunk``). The delay measurement needs no update: the caller's ``held`` already reflects it."""
        if seconds > 0:
            self.stats.stretched += 1
            self._last_grow = self._offset_time
        elif seconds < 0:
            self.stats.shrunk += 1
