"""SIP: sans-IO signalling (RFC 3261) and session descriptions (SDP, RFC 4566/3264).

Owns messages, URIs, transactions, dialogs and the endpoint (with registration, digest authentication both ways,
routing, admission control and stream framing), and SDP parsing, offers and answers (``sdp``, ``sdes``).
Nothing in this package performs I/O or reads a clock: ``SipEndpoint`` takes datagrams and the current time and
gives back datagrams, events and its next deadline. ``pyvoip_fast.app.useragent`` runs it on asyncio.

May import: ``pyvoip_fast.rtp`` (SRTP key formats, for ``a=crypto``), ``pyvoip_fast.codecs`` (the codec registry,
for offers and answers) and the bottom layer (``errors``). Never asyncio, socket, time or threading
(``tests/test_sourcecode.py``).
"""

from __future__ import annotations

from .endpoint import ALLOWED_METHODS, CallState, SipEndpoint
from .events import (
    CallAnswered,
    CallCancelled,
    CallConfirmed,
    CallEnded,
    CallFailed,
    CallProgress,
    Event,
    InDialogRequest,
    InDialogResponse,
    IncomingCall,
    MalformedMessage,
    ReInviteAnswered,
    ReInviteReceived,
    RequestAnswered,
)
from .message import Headers, MessageLimits, SipRequest, SipResponse, Via, make_response, parse_message
from .sipfrag import make_sipfrag, parse_sipfrag
from .transaction import TimerConfig
from .uri import AbsoluteUri, NameAddress, SipUri, parse_uri

__all__ = [
    "SipEndpoint",
    "CallState",
    "ALLOWED_METHODS",
    "TimerConfig",
    "MessageLimits",
    "Headers",
    "SipRequest",
    "SipResponse",
    "Via",
    "parse_message",
    "make_response",
    "SipUri",
    "AbsoluteUri",
    "NameAddress",
    "parse_uri",
    "Event",
    "IncomingCall",
    "CallProgress",
    "CallAnswered",
    "CallConfirmed",
    "CallFailed",
    "CallCancelled",
    "CallEnded",
    "ReInviteReceived",
    "ReInviteAnswered",
    "InDialogRequest",
    "InDialogResponse",
    "RequestAnswered",
    "MalformedMessage",
    "parse_sipfrag",
    "make_sipfrag",
]
