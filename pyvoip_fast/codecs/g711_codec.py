"""G.711 as codecs of the registry: PCMU (payload type 0) and PCMA (8), 8 kHz, 64 kbit/s (RFC 3551 §4.5.14).

The encoders and decoders wrap the bit-exact functions of :mod:`pyvoip_fast.codecs.g711` and keep no state.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import g711
from .base import Codec


__all__ = ["PCMU", "PCMA"]


class _Encoder:
    __slots__ = ("encode",)

    def __init__(self, fn: Callable[..., bytes]) -> None:
        self.encode = fn


class _Decoder:
    """A decoder whose ``decode`` is the compiled function itself: codes in, a new int16 array out, no Python frame
    in between (the receiver decodes every frame of every call through it)."""

    __slots__ = ("decode",)

    def __init__(self, fn: Callable[..., np.ndarray]) -> None:
        self.decode = fn


PCMU = Codec(
    name="PCMU",
    clock_rate=8000,
    sample_rate=8000,
    bitrate=64000,
    payload_type=0,
    make_encoder=lambda: _Encoder(g711.ulaw_encode),
    make_decoder=lambda: _Decoder(g711.ulaw_decode_array),
)

PCMA = Codec(
    name="PCMA",
    clock_rate=8000,
    sample_rate=8000,
    bitrate=64000,
    payload_type=8,
    make_encoder=lambda: _Encoder(g711.alaw_encode),
    make_decoder=lambda: _Decoder(g711.alaw_decode_array),
)
