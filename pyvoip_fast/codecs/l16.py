"""L16: uncompressed 16-bit linear PCM (RFC 3551 §4.5.11), mono at 16 kHz on a dynamic payload type.

Samples travel in network byte order (big-endian), one 16-bit word per sample, so the RTP clock rate equals
the sample rate. RFC 3551's static L16 types (10 and 11) are 44.1 kHz; this codec is the 16 kHz mono variant
(``a=rtpmap:<dyn> L16/16000``) that wideband peers offer. It ships in the registry but is not offered by
default: pass ``codecs=("L16", ...)`` (or ``--codec l16``) to use it. A payload of odd length is decoded up to
its last whole sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Codec

__all__ = ["L16_16K", "L16Encoder", "L16Decoder"]

_WIRE = np.dtype(">i2")


class L16Encoder:
    """int16 PCM (native endian) → big-endian payload."""

    __slots__ = ()

    def encode(self, pcm: Any) -> bytes:
        samples = np.asarray(pcm)
        if samples.dtype != np.int16:
            samples = np.frombuffer(memoryview(pcm).cast("B"), dtype=np.int16)
        return samples.astype(_WIRE, copy=False).tobytes()


class L16Decoder:
    """Big-endian payload → int16 PCM (native endian)."""

    __slots__ = ()

    def decode(self, payload: Any) -> np.ndarray:
        data = memoryview(payload).cast("B")
        whole = len(data) & ~1
        return np.frombuffer(data[:whole], dtype=_WIRE).astype(np.int16)


L16_16K = Codec(
    name="L16",
    clock_rate=16000,
    sample_rate=16000,
    bitrate=256000,
    payload_type=None,
    make_encoder=L16Encoder,
    make_decoder=L16Decoder,
)
