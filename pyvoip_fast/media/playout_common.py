"""What both playout implementations share (the compiled ``ext/playout.pyx`` and its twin
``pyvoip_fast.media._playout_py``): the numbers that say when a time-stretch may splice and how a refused one is
tried again, and the two steps off a tick's common path, written once: the splice itself and decoding what a
lookahead concealer may look at.

:mod:`pyvoip_fast.media.playout` explains the strategy.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from ..codecs import timescale

__all__ = ["GROW_CORRELATION", "SHRINK_CORRELATION", "VOICED_SHRINK_WAIT", "RETRY_AFTER", "QUIET_RETRY_LEVEL",
           "splice", "decode_ahead", "check_playout"]

_EMPTY = np.zeros(0, dtype=np.int16)

#: correlation voiced speech needs before a pitch period is inserted: packets would be late otherwise, so a
#: little less than for removing one
GROW_CORRELATION = 0.75
#: correlation voiced speech needs before a pitch period is removed (shrinking is never urgent)
SHRINK_CORRELATION = 0.9

#: after a refused change, the next attempt of the same kind waits this long (seconds), doubled after each further
#: refusal in a row up to 1 s: growing is urgent (packets would be late), shrinking and trimming are not; each
#: attempt analyses the audio
RETRY_AFTER = {"grow": 0.0, "shrink": 0.1, "trim": 0.1}
#: ... unless the next frame stays within this level (peak, int16 units): a pause begins, where changes are
#: inaudible
QUIET_RETRY_LEVEL = 600
#: a shrink waits this long (seconds) for a pause or an unvoiced sound before it cuts into voiced speech: at most
#: one voiced splice per this time, and none at all while speech has pauses every couple of seconds
VOICED_SHRINK_WAIT = 2.0


def splice(advice: str, amount: float, now: float, since: float, recent: List[np.ndarray], fifo: np.ndarray,
           keep: int, rate: int) -> Tuple[bool, np.ndarray, int]:
    """Apply the buffer's advice to the FIFO (see :mod:`pyvoip_fast.media.playout`).

    Args:
        advice: ``"grow"``, ``"shrink"`` or ``"trim"``; amount: the advice's seconds.
        now: the tick; since: when the current run of ``"shrink"`` advice began.
        recent: the frames played last (the analysis history); fifo: the audio not played yet.
        keep: samples of history the analysis needs; rate: the sample rate.

    Returns:
        ``(done, fifo, change)``: ``done`` is False when the change was refused (no pause, no steady vowel here);
        the FIFO after the change; the samples inserted (> 0) or removed (< 0), 0 when nothing changed (a trim
        too small to be worth it counts as done).
    """
    played = np.concatenate(recent) if recent else _EMPTY
    history = played[len(played) - min(keep, len(played)) :]
    if len(history) < keep:  # the stream has just begun: silence before it
        history = np.concatenate((np.zeros(keep - len(history), dtype=np.int16), history))
    buf = np.concatenate((history, fifo))
    if advice == "grow":
        result = timescale.expand(buf, rate, keep=keep, min_correlation=GROW_CORRELATION)
        sign = 1
    else:
        limit = int(amount * rate + 1e-6)
        if advice == "trim":
            if limit < timescale.min_lag(rate):
                return True, fifo, 0  # nothing worth trimming: not a refusal
            result = timescale.accelerate(buf, rate, keep=keep, max_change=limit, voiced=False)
        else:
            result = timescale.accelerate(buf, rate, keep=keep, min_correlation=SHRINK_CORRELATION,
                                          voiced=now - since >= VOICED_SHRINK_WAIT)
        sign = -1
    if not result.change:
        return False, fifo, 0
    return True, result.samples[keep:], sign * int(result.change)


def decode_ahead(payloads: List[Optional[Any]], peeked: List[Tuple[Any, np.ndarray]],
                 decode: Callable[[Any], np.ndarray], lookahead: int) -> List[Optional[np.ndarray]]:
    """What the jitter buffer holds of the next slots (``payloads``, from its ``peek``), decoded, up to the first
    gap after a frame (the concealer looks no further). A payload decoded here is remembered in ``peeked`` (at most
    ``lookahead`` of them) so that its slot does not decode it again: stateful decoders see each payload once."""
    ahead: List[Optional[np.ndarray]] = []
    known = {id(p): pcm for p, pcm in peeked}
    for payload in payloads:
        if payload is None:
            if any(a is not None for a in ahead):
                break
            ahead.append(None)
            continue
        pcm = known.get(id(payload))
        if pcm is None:
            pcm = decode(payload)
            peeked.append((payload, pcm))
            del peeked[:-lookahead]  # never more than a look ahead's worth
        ahead.append(pcm)
    return ahead


def check_playout(jb: Any, frame_samples: int, rate: int) -> Tuple[bool, int]:
    """A playout's arguments checked: whether ``jb`` time-stretches, and the samples of history its analysis keeps
    (15 ms of lag and 20 ms of window; 0 without time-stretching).

    Raises:
        ValueError: a non-positive frame size, or time-stretching asked at an unsupported rate.
    """
    if frame_samples <= 0:
        raise ValueError(f"frame_samples must be positive, got {frame_samples}")
    stretching = bool(getattr(jb, "time_stretch", False))
    if stretching and rate not in timescale.RATES:
        raise ValueError(f"time-stretching needs a rate in {timescale.RATES}, got {rate}")
    return stretching, (timescale.max_lag(rate) + rate // 50 if stretching else 0)
