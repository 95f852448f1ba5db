"""Per-tick playout of one received stream: jitter buffer, decoder, concealment and time-stretching.

Strategy
--------
:class:`Playout` is what :meth:`pyvoip_fast.media.receiver.RtpReceiver.playout` runs at every tick of the media
clock (and what ``benchmarks/bench_playout.py`` measures). Each :meth:`Playout.tick` returns exactly one frame
of samples for the sink, or ``None`` when nothing plays.

* **Whole-frame mode** (a :class:`~pyvoip_fast.media.jitter.JitterBuffer` without ``time_stretch``): one
  ``get`` per tick; a frame is decoded and passed through the concealer's ``good``, a ``"lost"`` slot (a loss,
  or the buffer growing its delay) becomes the concealer's ``lost``. The buffer shrinks its delay by skipping
  whole frames. This is the behaviour before time-stretching, kept for comparison.
* **Time-stretching mode** (``time_stretch=True``): decoded, concealed audio goes into a small FIFO; a tick
  takes the next slot from the buffer only when the FIFO holds less than a frame, then plays the FIFO's first
  frame. At the start of the tick the buffer is asked for advice (:meth:`~pyvoip_fast.media.jitter.JitterBuffer.advise`,
  told how much audio the FIFO holds, so its delay measurement counts it):

  - ``"grow"``: :func:`pyvoip_fast.codecs.timescale.expand` inserts a pitch period (or a quiet or unvoiced
    chunk) at the head of the FIFO; once the FIFO holds a frame more, the next slot is taken a tick later;
  - ``"shrink"``: :func:`~pyvoip_fast.codecs.timescale.accelerate` removes one; when the FIFO is left short
    of a frame the next slot is taken at once, a tick earlier. Shrinking is never urgent: it waits for a pause
    or an unvoiced sound, and cuts into voiced speech only when none came for ``VOICED_SHRINK_WAIT`` seconds;
  - ``"trim"``: the delay is right but the FIFO holds a residue beyond whole frames (audio delay that buys no
    protection against late packets): removed in pauses and unvoiced sounds only, never across a whole frame.

  The splice always lands on audio not played yet, right after what was played (the last few milliseconds of
  output are kept as history for the analysis), so the output stays continuous. A refused change (a loud,
  non-periodic stretch) is simply tried again at the next tick: changes land in pauses, unvoiced sounds and
  steady vowels. Every change is reported to the buffer (``note_stretch``: its ``stretched`` and ``shrunk``
  statistics count these events).

The concealer is any object with ``good(frame) -> frame``, ``lost() -> frame`` (one frame of int16 samples
each, possibly delayed by a constant ``latency_samples``), such as :class:`pyvoip_fast.codecs.plc.Concealer`.
A concealer with ``lookahead_frames`` > 0 (:class:`pyvoip_fast.codecs.plc_lookahead.LookaheadConcealer`) gets,
for each lost slot, what the jitter buffer already holds of the next slots (``JitterBuffer.peek``), decoded:
when the frame after a gap has arrived (it usually has: the buffer holds 20-60 ms), the gap is interpolated
towards it instead of extrapolated, at no extra delay. A payload decoded for such a look is not decoded again
when its slot comes (stateful decoders see each payload once, in order).

Implementation. A tick runs for every call 50 times a second, so :class:`Playout` is compiled (``ext/playout.pyx``:
``pyvoip_fast.media._playout``), and calls the compiled jitter buffer's C entry points directly when it plays one
(``pyvoip_fast.media._jitter.pxd``); any other buffer works through its Python methods. The pure-Python twin
(``pyvoip_fast.media._playout_py``) gives the same frames and the same counters for any stream
(``tests/media/test_playout_parity.py``); this module picks one through ``pyvoip_fast._compat``. Their tuning
numbers live in :mod:`pyvoip_fast.media.playout_common`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _compat
from ..codecs import timescale  # noqa: F401 - the stretches' analysis (tests count its calls through here)
from .playout_common import GROW_CORRELATION, QUIET_RETRY_LEVEL, RETRY_AFTER, SHRINK_CORRELATION, VOICED_SHRINK_WAIT

if TYPE_CHECKING:
    from ._playout_py import Playout
else:
    Playout = _compat.load("_playout").Playout

__all__ = ["Playout", "GROW_CORRELATION", "SHRINK_CORRELATION", "VOICED_SHRINK_WAIT", "RETRY_AFTER",
           "QUIET_RETRY_LEVEL"]
