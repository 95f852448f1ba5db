"""SDP for one audio stream: the public face of :mod:`.session_description` and :mod:`.offer_answer`.

Usage::

    from pyvoip_fast.sip import sdp          # also importable as pyvoip_fast.sdp

    offer = sdp.make_offer("192.0.2.1", 40000)                    # PCMU, PCMA, telephone-event/8000
    offer = sdp.make_offer("192.0.2.1", 40000, codecs=("L16", "PCMU"))  # L16/16000 first, on a dynamic type
    answer = sdp.make_answer(sdp.SessionDescription.parse(body), "192.0.2.2", 50000)
    params = sdp.negotiate(offer, answer)     # MediaParams: codec, payload type, ptime, addresses, direction

Offers number static codecs by RFC 3551 and dynamic ones from 96, with one telephone-event per codec clock
rate; answers take the offerer's first supported format (and its clock rate's other common codecs and event).

``SessionDescription.parse`` raises ``SdpParseError`` (a ``ValueError``) on a malformed body; ``make_answer``
and ``negotiate`` raise ``NegotiationError`` when there is nothing in common (a UAS answers 488).
"""

from __future__ import annotations

from .offer_answer import (
    DTMF_PAYLOAD_TYPE,
    DTMF_PAYLOAD_TYPE_CLOCK_RATE,
    SUPPORTED_CODECS,
    CodecLike,
    MediaParams,
    NegotiationError,
    make_answer,
    make_offer,
    negotiate,
)
from .session_description import (
    DEFAULT_MAX_LINES,
    DEFAULT_MAX_MEDIA,
    DEFAULT_MAX_SIZE,
    DIRECTIONS,
    STATIC_PAYLOAD_TYPES,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
)

__all__ = [
    "SessionDescription",
    "MediaDescription",
    "Origin",
    "Connection",
    "MediaParams",
    "NegotiationError",
    "make_offer",
    "make_answer",
    "negotiate",
    "STATIC_PAYLOAD_TYPES",
    "SUPPORTED_CODECS",
    "DTMF_PAYLOAD_TYPE",
    "DTMF_PAYLOAD_TYPE_CLOCK_RATE",
    "CodecLike",
    "DIRECTIONS",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MAX_LINES",
    "DEFAULT_MAX_MEDIA",
]
