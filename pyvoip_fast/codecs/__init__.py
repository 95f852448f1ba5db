"""Codecs: the layer that turns PCM into RTP payloads and back, and conceals lost frames.

Owns the codec interface (``Codec``, ``Encoder``, ``Decoder``) and the registry (``get``, ``find``,
``resolve``, ``DEFAULT_CODECS``); G.711 (``g711``: the bit-exact compiled ``_g711`` and its twin
``_g711_py``; ``PCMU``/``PCMA`` codec objects), G.722 (``g722``: the bit-exact compiled ``_g722`` and its twin
``_g722_py``; the ``G722`` codec object: 16 kHz audio on an 8 kHz RTP clock), L16 at 16 kHz (``l16``) and
packet-loss concealment on decoded
PCM (``plc.Concealer``). Frame sizes, sample and clock rates live here and nowhere else.

May import: ``pyvoip_fast.errors`` and ``pyvoip_fast._compat`` only (the bottom layer).
"""

from __future__ import annotations

from .base import DYNAMIC_PAYLOAD_TYPES, Codec, Decoder, Encoder
from .g711_codec import PCMA, PCMU
from .g722_codec import G722
from .l16 import L16_16K
from .registry import DEFAULT_CODECS, available, by_static_payload_type, find, get, register, resolve

__all__ = [
    "Codec",
    "Encoder",
    "Decoder",
    "DYNAMIC_PAYLOAD_TYPES",
    "PCMU",
    "PCMA",
    "G722",
    "L16_16K",
    "DEFAULT_CODECS",
    "available",
    "by_static_payload_type",
    "find",
    "get",
    "register",
    "resolve",
]
