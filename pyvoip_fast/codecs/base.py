"""The codec interface: what the media path, SDP offer/answer and statistics need to know about an encoding.

Strategy
--------
A ``Codec`` is an immutable description plus two factories. Everything that used to be a literal (8000 Hz,
160 samples, payload type 0) is read from it:

- ``name`` and ``clock_rate`` (and ``channels``) are the SDP ``a=rtpmap`` encoding (RFC 4566 §6, RFC 3551 §6);
- ``payload_type`` is the RFC 3551 static type, or ``None`` for a dynamic one that the offer assigns (96–127);
- ``sample_rate`` is the PCM rate that goes into the encoder and comes out of the decoder. It equals the RTP
  clock rate for G.711 and L16, and differs for G.722 (16 kHz audio, 8 kHz RTP clock: RFC 3551 §4.5.2);
- ``frame_samples(ptime)`` is the PCM samples of one packet, ``frame_timestamps(ptime)`` the RTP timestamp step;
- ``encoder()`` / ``decoder()`` make fresh stateful objects, one per stream direction (G.711 and L16 keep no
  state; ADPCM codecs such as G.722 do).

PCM is native-endian int16 in numpy arrays, mono; encoders accept any int16 buffer of ``frame_samples`` samples.
This module imports nothing from the rest of the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import numpy as np

__all__ = ["Codec", "Encoder", "Decoder", "DYNAMIC_PAYLOAD_TYPES"]

#: RFC 3551 §6: payload types 96-127 are assigned dynamically by the session description
DYNAMIC_PAYLOAD_TYPES = range(96, 128)


class Encoder(Protocol):
    """Encodes one frame of int16 PCM at the codec's sample rate into an RTP payload."""

    def encode(self, pcm: Any) -> bytes: ...


class Decoder(Protocol):
    """Decodes one RTP payload into int16 PCM at the codec's sample rate (a numpy array)."""

    def decode(self, payload: Any) -> np.ndarray: ...


@dataclass(frozen=True)
class Codec:
    """One audio encoding, as SDP names it and as the media path runs it.

    Attributes:
        name: the ``a=rtpmap`` encoding name, upper case (``"PCMU"``, ``"L16"``).
        clock_rate: the RTP timestamp clock rate in Hz, as ``a=rtpmap`` gives it.
        sample_rate: the PCM sample rate in Hz of the encoder's input and the decoder's output.
        bitrate: bits per second of payload at any ptime (for logs and the RTCP bandwidth share).
        payload_type: the RFC 3551 static payload type, or ``None`` when the offer assigns a dynamic one.
        channels: audio channels (the media path carries mono).
        make_encoder / make_decoder: factories of fresh encoder and decoder objects.
    """

    name: str
    clock_rate: int
    sample_rate: int
    bitrate: int
    make_encoder: Callable[[], Encoder] = field(repr=False, compare=False)
    make_decoder: Callable[[], Decoder] = field(repr=False, compare=False)
    payload_type: Optional[int] = None
    channels: int = 1

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.upper():
            raise ValueError(f"codec name must be non-empty upper case, got {self.name!r}")
        for what in ("clock_rate", "sample_rate", "bitrate", "channels"):
            value = getattr(self, what)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{what} must be a positive int, got {value!r}")
        if self.payload_type is not None and not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload_type must be 0..127 or None, got {self.payload_type!r}")

    @property
    def key(self) -> str:
        """``NAME/clock_rate`` (``/channels`` when more than one): the registry key and the rtpmap text."""
        base = f"{self.name}/{self.clock_rate}"
        return base if self.channels == 1 else f"{base}/{self.channels}"

    @property
    def static(self) -> bool:
        """True for an RFC 3551 static payload type."""
        return self.payload_type is not None

    def frame_samples(self, ptime_ms: int) -> int:
        """PCM samples in one packet of ``ptime_ms`` milliseconds."""
        return self.sample_rate * int(ptime_ms) // 1000

    def frame_timestamps(self, ptime_ms: int) -> int:
        """RTP timestamp units that one packet of ``ptime_ms`` milliseconds advances."""
        return self.clock_rate * int(ptime_ms) // 1000

    def payload_bytes(self, ptime_ms: int) -> int:
        """Payload bytes of one packet of ``ptime_ms`` milliseconds."""
        return self.bitrate * int(ptime_ms) // 8000

    def matches(self, encoding: str, clock_rate: int, channels: int = 1) -> bool:
        """Whether an ``a=rtpmap`` entry names this codec (encoding names are case-insensitive)."""
        return encoding.upper() == self.name and clock_rate == self.clock_rate and channels == self.channels

    def encoder(self) -> Encoder:
        """A fresh encoder (one per outgoing stream)."""
        return self.make_encoder()

    def decoder(self) -> Decoder:
        """A fresh decoder (one per incoming stream)."""
        return self.make_decoder()
