"""One stream's playout in pure Python: the twin of the compiled ``pyvoip_fast.media._playout`` (``ext/playout.pyx``).

Same API, same results, same exceptions; :mod:`pyvoip_fast.media.playout` picks one and explains the strategy.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .playout_common import QUIET_RETRY_LEVEL, RETRY_AFTER, check_playout, decode_ahead, splice

__all__ = ["Playout"]

_EMPTY = np.zeros(0, dtype=np.int16)
_INT16 = np.dtype(np.int16)


class Playout:
    """One stream's playout, one frame per tick.

    Args:
        jb: the stream's :class:`~pyvoip_fast.media.jitter.JitterBuffer` (its ``time_stretch`` chooses the mode).
        decode: ``payload -> int16 samples`` of one frame (``frame_samples`` long).
        concealer: ``good(frame)``, ``lost()``, ``latency_samples`` (see the module notes).
        frame_samples: samples per frame at ``rate``.
        rate: the decoded sample rate; time-stretching works at 8000 and 16000 Hz.

    Raises:
        ValueError: a non-positive frame size, or time-stretching asked at an unsupported rate.
    """

    def __init__(
        self,
        jb: Any,
        decode: Callable[[Any], np.ndarray],
        concealer: Any,
        frame_samples: int,
        rate: int,
    ) -> None:
        self.stretching, lags = check_playout(jb, frame_samples, rate)
        self.jb = jb
        self.decode = decode
        self.concealer = concealer
        self.frame_samples = frame_samples
        self.rate = rate
        #: True from the first real frame of a stream (losses before it are not played)
        self.playing = False
        #: frames concealed since the last frame that really arrived
        self.tail_concealed = 0
        self._fifo = np.zeros(0, dtype=np.int16)
        self._history_len = lags  # 15 ms of lag + 20 ms of window, ample for the analysis
        # the last frames played, enough to hold that history (joined into one array only for an analysis)
        # (a list of at most ``_recent_len``: a deque with a maximum length allocates a block of 64 slots, 0.6 KB)
        self._recent_len = -(-lags // frame_samples) if lags else 1
        self._recent: List[np.ndarray] = []
        self._jb_stats = getattr(jb, "stats", None)  # its ``resets`` counter tells a new stream
        self._resets = getattr(self._jb_stats, "resets", 0)
        self._shrink_since: Optional[float] = None  # when the current run of "shrink" advice began
        self._retry_at: Dict[str, float] = {}  # advice -> no new attempt before this time (after a refusal)
        self._refusals: Dict[str, int] = {}  # advice -> refusals in a row
        #: frames the concealer may look ahead (its ``lookahead_frames``; 0 for a plain concealer)
        self.lookahead = int(getattr(concealer, "lookahead_frames", 0))
        # what a received frame goes through: the lookahead concealer's ``conceal`` itself (its ``good`` only
        # calls it), else ``good``
        self._good: Callable[[np.ndarray], np.ndarray] = concealer.conceal if self.lookahead else concealer.good
        self._peeked: List[Tuple[Any, np.ndarray]] = []  # payloads decoded for a look ahead, not yet taken

    @property
    def held(self) -> int:
        """Samples decoded but not played yet (the FIFO)."""
        return len(self._fifo)

    # ------------------------------------------------------------------ ticks
    def tick(self, now: float) -> Optional[np.ndarray]:
        """One playout tick.

        Args:
            now: the current time, on the clock of the packets' arrival times.

        Returns:
            One frame of int16 samples for the sink, or ``None`` (nothing to play: before the first frame,
            while pre-buffering, or idle between talk spurts).
        """
        resets = getattr(self._jb_stats, "resets", 0)
        if resets != self._resets:  # a new stream: its losses before its first frame are not played
            self._resets = resets
            self.playing = False
        if not self.stretching:
            return self._take(now)
        n = self.frame_samples
        advice, amount = self.jb.advise(now, len(self._fifo) / self.rate)
        if advice != "shrink":
            self._shrink_since = None
        elif self._shrink_since is None:
            self._shrink_since = now
        self._fill(now)
        if len(self._fifo) < n:
            if len(self._fifo) == 0:
                return None
            # the stream went idle inside a frame: the rest of it, then silence
            self._fifo = np.concatenate((self._fifo, np.zeros(n - len(self._fifo), dtype=np.int16)))
        elif advice and (now >= self._retry_at.get(advice, 0.0) or self._quiet_ahead()):
            if self._stretch(advice, amount, now):
                self._refusals.pop(advice, None)
            else:
                # refused (no pause, no steady vowel here): an analysis costs about 0.1 ms, so the next try waits
                # for new audio, twice as long after each refusal in a row (up to a second; growing never waits)
                k = self._refusals[advice] = self._refusals.get(advice, 0) + 1
                self._retry_at[advice] = now + min(RETRY_AFTER[advice] * 2 ** min(k - 1, 10), 1.0) - 1e-9
            self._fill(now)
            if len(self._fifo) < n:  # nothing more to take: pad with silence
                self._fifo = np.concatenate((self._fifo, np.zeros(n - len(self._fifo), dtype=np.int16)))
        fifo = self._fifo
        if len(fifo) == n:  # the common case: exactly one frame held, no copy
            out, self._fifo = fifo, _EMPTY
        else:
            out, self._fifo = fifo[:n].copy(), fifo[n:]
        recent = self._recent  # the analysis history, joined only when a change is tried
        recent.append(out)
        if len(recent) > self._recent_len:
            del recent[0]
        return out

    def _take(self, now: float) -> Optional[np.ndarray]:
        """One slot from the buffer: decoded and passed through the concealer, or concealed, or ``None``."""
        kind, payload = self.jb.get(now)
        if kind == "frame":
            self.playing = True
            self.tail_concealed = 0
            return np.asarray(self._good(self._decoded(payload)))
        if kind == "lost" and self.playing:
            self.tail_concealed += 1
            if self.lookahead:
                return np.asarray(self.concealer.conceal(None, self._ahead()))
            return np.asarray(self.concealer.lost())
        return None

    def _decoded(self, payload: Any) -> np.ndarray:
        """``payload`` decoded, or the samples it was decoded to when the concealer looked ahead at it (a stateful
        decoder decodes each payload once, in order)."""
        peeked = self._peeked
        if not peeked:  # the usual case: nothing was looked at ahead
            return self.decode(payload)
        for i, (seen, pcm) in enumerate(peeked):
            if seen is payload:
                del peeked[: i + 1]  # and those of slots before it, which can no longer come
                return pcm
        return self.decode(payload)

    def _ahead(self) -> List[Optional[np.ndarray]]:
        """What the jitter buffer holds of the next ``lookahead`` slots, decoded (``playout_common.decode_ahead``)."""
        return decode_ahead(self.jb.peek(self.lookahead), self._peeked, self.decode, self.lookahead)

    def _quiet_ahead(self) -> bool:
        """Whether the next frame to play is quiet (a pause: where a refused change is likely to succeed now)."""
        head = self._fifo[: self.frame_samples]
        return bool(len(head)) and int(head.max()) < QUIET_RETRY_LEVEL and int(head.min()) > -QUIET_RETRY_LEVEL

    def _fill(self, now: float) -> None:
        """Take slots until the FIFO holds a frame (or the buffer has nothing to play)."""
        while len(self._fifo) < self.frame_samples:
            pcm = self._take(now)
            if pcm is None:
                return
            if pcm.dtype is not _INT16:
                pcm = pcm.astype(np.int16)
            self._fifo = pcm if not len(self._fifo) else np.concatenate((self._fifo, pcm))

    def _stretch(self, advice: str, amount: float, now: float) -> bool:
        """Apply the buffer's advice to the FIFO (``playout_common.splice``); report what was done. False when the
        change was refused."""
        since = self._shrink_since if self._shrink_since is not None else now
        done, self._fifo, change = splice(advice, amount, now, since, self._recent, self._fifo, self._history_len,
                                          self.rate)
        if change:
            if advice == "shrink":
                self._shrink_since = now  # the next voiced cut waits again
            self.jb.note_stretch(change / self.rate)
        return done
