"""Media: one call's audio on the wire, paced and received.

Owns the shared media clock and pacing (``MediaClock``, ``Pacer``), the media session (``MediaSession``) and
the parts it composes, the jitter buffer (``jitter``), RFC 4733 DTMF (``dtmf``), call statistics and the
E-model estimate (``callstats``, ``quality``) and the many-stream sender ``RtpFanout`` (``fanout``).

May import: ``pyvoip_fast.net``, ``pyvoip_fast.audio``, ``pyvoip_fast.sip``, ``pyvoip_fast.rtp``,
``pyvoip_fast.codecs`` and the bottom layer. ``pyvoip_fast.media.MediaSession`` is re-exported here.
"""

from __future__ import annotations

from .session import DIRECTIONS, ClockEntry, MediaClock, MediaSession, Pacer

__all__ = ["MediaClock", "ClockEntry", "Pacer", "MediaSession", "DIRECTIONS"]
