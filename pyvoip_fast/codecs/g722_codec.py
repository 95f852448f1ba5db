"""G.722 as a codec of the registry: payload type 9, 16 kHz audio on an 8 kHz RTP clock, 64 kbit/s.

RFC 3551 §4.5.2: the ``a=rtpmap`` clock rate of G.722 is 8000 although it samples at 16 kHz (an error of the
original RFC 1890 kept for compatibility), so a 20 ms packet holds 320 samples, 160 payload bytes, and
advances the RTP timestamp by 160. The encoder and decoder wrap :mod:`pyvoip_fast.codecs.g722` at 64 kbit/s
(mode 1) and keep the ADPCM state of their stream direction between packets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import g722
from .base import Codec

_INT16 = np.dtype(np.int16)

__all__ = ["G722", "G722Encoder", "G722Decoder"]


class G722Encoder:
    """16 kHz int16 PCM (native endian) -> G.722 payload; one per outgoing stream."""

    __slots__ = ("_codec",)

    def __init__(self) -> None:
        self._codec = g722.Encoder(64000)

    def encode(self, pcm: Any) -> bytes:
        return self._codec.encode(pcm)


class G722Decoder:
    """G.722 payload -> 16 kHz int16 PCM (native endian, a numpy array); one per incoming stream."""

    __slots__ = ("_codec",)

    def __init__(self) -> None:
        self._codec = g722.Decoder(64000)

    def decode(self, payload: Any) -> np.ndarray:
        return np.frombuffer(self._codec.decode(payload), _INT16)  # positional: numpy parses a keyword slowly


G722 = Codec(
    name="G722",
    clock_rate=8000,
    sample_rate=16000,
    bitrate=64000,
    payload_type=9,
    make_encoder=G722Encoder,
    make_decoder=G722Decoder,
)
