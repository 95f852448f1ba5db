"""What both jitter buffer implementations share: their counters, their numbers and their settings' checks.

The buffer itself is compiled (``ext/jitter.pyx``, ``pyvoip_fast.media._jitter``) with a pure-Python twin
(``pyvoip_fast.media._jitter_py``); :mod:`pyvoip_fast.media.jitter` picks one. Both read their constants and check
their arguments here, so the two cannot drift apart on a number.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Optional

__all__ = [
    "JitterStats", "MAX_DROPOUT", "MAX_MISORDER", "SEEN_WINDOW", "SEEN_MASK", "SHRINK_HYSTERESIS", "TRIM_RESIDUE",
    "SHRINK_DWELL", "QUANTILE_EVERY", "buffer_settings", "spread_options", "check_stretch_options", "may_shrink",
]

logger = logging.getLogger("pyvoip_fast.media.jitter")

#: RFC 3550 A.1: a sequence jump this big (or more than MAX_MISORDER back) needs a second sequential packet
MAX_DROPOUT = 3000
MAX_MISORDER = 100
#: sequence numbers remembered as received (duplicates) and as skipped (a late arrival turns a loss into a late
#: packet): 256 packets, 5 s at 20 ms. Nothing older can still matter: a packet more than 2 x max_delay ahead of
#: playout is refused, and one behind it is late whatever it is. (2,048 cost about 130 KB per call.)
SEEN_WINDOW = 256
#: the seen-ring keeps an extended sequence number's low 31 bits (4 bytes a slot): two numbers in one slot differ
#: by a multiple of 256, and look alike only 2**31 packets apart (over a year at 50 a second)
SEEN_MASK = (1 << 31) - 1
#: time-stretch mode: the take delay must exceed the target by a frame plus this before a shrink (no dithering)
SHRINK_HYSTERESIS = 0.002
#: time-stretch mode: a residue (audio delay beyond the take delay) from this long on is worth trimming
TRIM_RESIDUE = 0.004
#: time-stretch mode: no shrink for this long after the delay grew: a target hovering at a frame boundary (a
#: sender's timing jitter) would otherwise make the delay see-saw, a splice each way every second or so
SHRINK_DWELL = 2.0
#: the spread quantile of a time-stretching buffer is recomputed after this many packets (100 ms at 20 ms)
QUANTILE_EVERY = 5
_MAX_COUNT = (1 << 31) - 1


@dataclass
class JitterStats:
    """Counters of one jitter buffer (cumulative over resets)."""

    received: int = 0
    """Packets accepted into the buffer."""
    played: int = 0
    """Frames returned as ``"frame"``."""
    lost: int = 0
    """Sequence numbers skipped at playout that never arrived."""
    late: int = 0
    """Packets that arrived after their slot was played (dropped)."""
    duplicates: int = 0
    """Packets seen twice (dropped)."""
    resets: int = 0
    """New streams: SSRC change or sequence jump."""
    max_depth: int = 0
    """Most packets buffered at once."""
    concealed: int = 0
    """``"lost"`` slots returned (gaps, underruns and stretches): frames the caller concealed."""
    stretched: int = 0
    """Slots inserted to grow the delay (included in ``concealed``); in a ``TimeStretchJitterBuffer``:
    expansions the caller made (pitch periods or quiet chunks inserted, not concealment)."""
    shrunk: int = 0
    """Frames skipped to shrink the delay; in a ``TimeStretchJitterBuffer``: accelerations (periods or
    chunks removed)."""
    overflow: int = 0
    """Packets dropped because the buffer was full or too far ahead."""
    invalid: int = 0
    """Lone packets far outside the sequence window, dropped pending confirmation."""

    def as_dict(self) -> Dict[str, int]:
        """A plain dict (for JSON)."""
        return asdict(self)


def buffer_settings(
    time_stretch: bool,
    clock_rate: int,
    frame_samples: int,
    min_delay: float,
    max_delay: float,
    initial_delay: float,
    jitter_factor: Optional[float],
    release_time: float,
    window: float,
    capacity: int,
    margin: Optional[float],
) -> Dict[str, Any]:
    """A jitter buffer's arguments checked and completed (defaults that depend on the mode, clamps).

    Raises:
        TypeError: a count (``clock_rate``, ``frame_samples``, ``capacity``) that is not an integer.
        ValueError: inconsistent parameters, or a count beyond 2**31 - 1.
    """
    for name, count in (("clock_rate", clock_rate), ("frame_samples", frame_samples), ("capacity", capacity)):
        if not isinstance(count, int) or isinstance(count, bool):
            raise TypeError(f"{name} must be an integer, got {count!r}")
        if count > _MAX_COUNT:
            raise ValueError(f"{name} must be at most {_MAX_COUNT}, got {count}")
    if clock_rate <= 0 or frame_samples <= 0:
        raise ValueError("clock_rate and frame_samples must be positive")
    if not 0 <= min_delay <= max_delay:
        raise ValueError(f"need 0 <= min_delay <= max_delay, got {min_delay}, {max_delay}")
    if capacity < 4:
        raise ValueError("capacity must be at least 4 packets")
    frame_seconds = frame_samples / clock_rate
    jitter_factor = (2.0 if time_stretch else 4.0) if jitter_factor is None else jitter_factor
    margin = (0.0 if time_stretch else frame_seconds) if margin is None else margin
    if jitter_factor < 0 or margin < 0:
        raise ValueError(f"jitter_factor and margin must be >= 0, got {jitter_factor}, {margin}")
    window = float(window)
    return {
        "clock_rate": clock_rate, "frame_samples": frame_samples, "frame_seconds": frame_seconds,
        "min_delay": float(min_delay), "max_delay": float(max_delay),
        "initial_delay": min(max(float(initial_delay), float(min_delay)), float(max_delay)),
        "jitter_factor": float(jitter_factor), "margin": float(margin), "release_time": float(release_time),
        "window": window, "coalesce": window / 10.0, "capacity": capacity,
    }


def spread_options(max_delay: float, frame_seconds: float, memory: float, quantile: float) -> Dict[str, Any]:
    """The spread histogram of a time-stretching buffer's transit statistics: 1 ms bins up to ``max_delay``,
    exponentially forgotten per packet (time constant ``memory``, at least two packets), in single precision
    (2 KB a call); the
    quantile is recomputed once per QUANTILE_EVERY packets (the histogram forgets over seconds; a spike is the
    peak spread's business, which follows it at once)."""
    return {"bins": int(math.ceil(max_delay * 1000.0)) + 1, "forget": 1.0 / max(2.0, memory / frame_seconds),
            "quantile": quantile, "quantile_every": QUANTILE_EVERY}


def check_stretch_options(quantile: float, memory: float) -> None:
    """Raise ValueError unless ``quantile`` is in (0, 1] and ``memory`` is positive."""
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    if not memory > 0.0:
        raise ValueError(f"memory must be positive, got {memory}")


def may_shrink(detector: Optional[Callable[[bytes], bool]], payload: bytes, since: float, excess: float,
               frame_seconds: float) -> bool:
    """Whether a whole-frame buffer skips this frame to shrink its delay: a frame ``detector`` calls silent once the
    ``excess`` is over one frame (every 4 frames at most), speech only when the excess is over 2.5 frames and at
    most once a second (``since``: seconds since the last skip), so a clean path never loses a frame."""
    if detector is not None:
        try:
            silent = bool(detector(payload))
        except Exception:  # a detector bug must not stop playout
            logger.exception("[Jitter] silence detector failed")
            silent = False
        if silent:
            return since >= 4 * frame_seconds
    return excess > 2.5 * frame_seconds and since >= 1.0
