"""The numbers both playout implementations share (the compiled ``ext/playout.pyx`` and its twin
``pyvoip_fast.media._playout_py``): when a time-stretch may splice, and how a refused one is tried again.

:mod:`pyvoip_fast.media.playout` explains the strategy they tune.
"""

from __future__ import annotations

__all__ = ["GROW_CORRELATION", "SHRINK_CORRELATION", "VOICED_SHRINK_WAIT", "RETRY_AFTER", "QUIET_RETRY_LEVEL"]

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
