"""Adaptive jitter buffer for one RTP stream: pure logic, arrival times and "now" passed in.

Strategy
--------
The playout side is clocked by the caller: :meth:`JitterBuffer.get` is called once per frame period (the media
clock) and each call consumes one frame slot. The slot to play is tracked as an *extended* RTP timestamp
(``next_ts``), so the buffer works on timestamps, not arrival order: reordered packets fall into their slots,
talk-spurt gaps (DTX) and irregular sequence numbering do no harm, and the payload is never looked at (encoded
G.711 bytes, anything).

Timing model. A packet with extended timestamp ``ts`` arriving at ``a`` has the relative transit
``r = a - ts / clock_rate`` (sender clock offset plus network delay). The frame in slot ``next_ts`` is played at
the ``get`` time ``now``, which defines the playout offset ``o = now - next_ts / clock_rate``; a packet is on
time iff ``r < o`` (in slot terms: ``ts >= next_ts`` when it arrives). With ``r_min`` the smallest transit seen
in a sliding window (the fastest path), the buffering delay is ``delay_now = o - r_min`` and each packet's
jitter is its ``spread = r - r_min``. These per-packet transit statistics (the window's minimum, the smoothed
transit variation, the peak spread and the spreads' histogram below) are kept by ``rtp.stats.TransitStats``,
compiled (``ext/stats.pyx``) with its pure-Python twin.

Adaptation. The target delay is ``clamp(max(peak_spread, k * J) + frame, min_delay, max_delay)`` where ``J``
is the RFC 3550 §6.4.1 / A.8 smoothed transit variation and ``peak_spread`` follows the largest recent spread:
it jumps up at once when a packet arrives with a bigger spread (late packets count: they are the spike), and
decays exponentially (``release_time``) while the network is calm. ``get`` then steers ``delay_now`` toward the
target:

* too short by more than half a frame: **stretch** -- return a ``"lost"`` slot (the caller conceals, i.e.
  synthesises pitch periods) without consuming a frame; one frame per call, so it grows by a frame per tick;
* too long: **shrink** -- skip one buffered frame. A frame the optional ``silence_detector`` calls silent may
  be skipped (every 4 frames at most) once the excess is over one frame; speech only when the excess is over
  2.5 frames and at most once a second, so shrinking is slow, mostly inaudible, and a clean path played from
  the default 60 ms pre-buffer never loses a frame to it.

Time-stretching (:class:`TimeStretchJitterBuffer`, what the receiver uses at 8 and 16 kHz). Inserting or
skipping whole frames is audible; this buffer's ``get`` does neither and leaves the change to its caller,
:class:`pyvoip_fast.media.playout.Playout`, which decodes into a small FIFO and stretches or compresses the audio
there (``pyvoip_fast.codecs.timescale``: a pitch period, or a chunk of a pause or of an unvoiced sound, at a
time). The caller takes the next slot at the first tick where its FIFO holds less than a frame, so that slot's
*take delay* (``o - r_min`` when it is taken: what decides whether a packet is late) moves on a grid of whole
frames, and the audio delay is the take delay plus the *residue* (the FIFO's samples beyond whole frames).
Each tick the caller asks :meth:`TimeStretchJitterBuffer.advise`, telling it how much it holds (so the delay
measurement counts the FIFO): ``"grow"`` while the take delay is under the target (each insertion moves the
residue; crossing a frame delays the next take by a frame), ``"shrink"`` while it is a frame (and 2 ms) more than
needed, ``"trim"`` when the take delay is right but the residue is 4 ms or more (audio delay that protects
nothing). With sample-accurate changes the target sits close to the real spread: ``clamp(max(peak_spread,
2 J, q) + 0)`` where ``q`` is the 99.5th percentile of the recent spreads (a 1 ms histogram forgotten
exponentially, time constant 5 s), and a talk spurt starts with a take delay at the target, not half a
frame under it. The statistics ``stretched`` / ``shrunk`` then count the caller's expansions and accelerations.

Stream life cycle. Before the first packet ``get`` returns ``"empty"``; playout starts once the first packet is
``initial_delay`` old (pre-buffering, to half a frame). A missing slot inside a talk spurt is ``"lost"`` (the caller conceals).
After ``max_delay`` of consecutive missing slots with nothing buffered the stream is idle (``"empty"``, not loss)
and the next packet starts a new spurt with fresh pre-buffering at the target delay: that is where most of the
delay shrinking of a real call happens, for free.

Sequence numbers (uint16) and timestamps (uint32) are unwrapped into extended values (RFC 3550 A.1 style), so
wrap-around is invisible. Sequence numbers also detect duplicates and count loss (``lost`` = sequence numbers
skipped at playout that never arrived; a late packet is counted under ``late``, not ``lost``). An SSRC change,
or a sequence jump beyond RFC 3550 A.1's MAX_DROPOUT / MAX_MISORDER confirmed by a second sequential packet,
resets the buffer: a new stream.

Implementation. The buffer runs on every packet and every tick of every call, so it is compiled
(``ext/jitter.pyx``: ``pyvoip_fast.media._jitter``, its state in C fields) with a pure-Python twin
(``pyvoip_fast.media._jitter_py``) that gives the same results, statistics and exceptions for any sequence of calls
(``tests/media/test_jitter_parity.py``); this module picks one through ``pyvoip_fast._compat``. Their constants
and argument checks live in :mod:`pyvoip_fast.media.jitter_stats`, and so do the twin's counters (a dataclass);
the compiled buffer counts into a class of the same shape whose counters are C fields. ``JitterStats`` here is
the class of the buffers' ``stats``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _compat
from .jitter_stats import MAX_DROPOUT, MAX_MISORDER, QUANTILE_EVERY, SEEN_WINDOW

if TYPE_CHECKING:
    from ._jitter_py import JitterBuffer, JitterStats, TimeStretchJitterBuffer
else:
    _impl = _compat.load("_jitter")
    JitterBuffer = _impl.JitterBuffer
    TimeStretchJitterBuffer = _impl.TimeStretchJitterBuffer
    JitterStats = _impl.JitterStats  # the class of a buffer's ``stats`` (compiled: its counters are C fields)

__all__ = ["JitterBuffer", "JitterStats", "TimeStretchJitterBuffer", "MAX_DROPOUT", "MAX_MISORDER", "SEEN_WINDOW",
           "QUANTILE_EVERY"]
