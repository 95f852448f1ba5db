"""Media: one call's audio on the wire, paced and received.

Owns the shared media clock and pacing (``clock``: ``MediaClock``, ``Pacer``), the media session (``session``:
``MediaSession``) and the parts it composes: the paced RTP sender (``sender``), the receiver with its source
rules and playout (``receiver``) and the RTCP reporter (``reporter``); also the jitter buffer (``jitter``),
RFC 4733 DTMF (``dtmf``), call statistics and the E-model estimate (``callstats``, ``quality``) and the
many-stream sender ``RtpFanout`` (``fanout``).

May import: ``pyvoip_fast.net``, ``pyvoip_fast.audio``, ``pyvoip_fast.sip``, ``pyvoip_fast.rtp``,
``pyvoip_fast.codecs`` and the bottom layer. ``pyvoip_fast.media.MediaSession`` is re-exported here.
"""

from __future__ import annotations

from .clock import ClockEntry, MediaClock, Pacer
from .session import DIRECTIONS, MediaSession

__all__ = ["MediaClock", "ClockEntry", "Pacer", "MediaSession", "DIRECTIONS"]
