"""G.711 audio codec: mu-law (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8).

Public API (stable)::

    from pyvoip_fast import g711
    codes = g711.ulaw_encode(pcm)            # int16 PCM -> bytes, one code per sample
    pcm = g711.ulaw_decode(codes)            # codes -> bytes of native-endian int16
    frame = g711.ulaw_decode_array(codes)    # codes -> a new numpy int16 array (what a player plays)
    g711.alaw_encode(pcm, out=buf)           # -> int: bytes written into buf, nothing allocated

Bit-exactness: encoders and decoders reproduce the g711 module of the ITU-T G.191 Software Tools Library
(the ITU reference) for all 65,536 int16 inputs and all 256 codes. The stdlib ``audioop.lin2ulaw`` is *not*
that reference: it negates negative samples where the STL takes their one's complement, so 508 negative
inputs encode one step apart (e.g. -31612..-31609 -> 0x01 here, 0x00 in audioop). Pass
``audioop_compatible=True`` to ``ulaw_encode`` to reproduce audioop when migrating from it. A-law encoding
and both decoders agree with audioop everywhere. ``ulaw_to_alaw`` / ``alaw_to_ulaw`` transcode by tandem
(decode, then encode), without going through int16 buffers.

Byte order and buffers: PCM is **native-endian** signed 16-bit (little-endian on x86 and ARM). Inputs are
any C-contiguous buffer: ``bytes``, ``bytearray``, ``memoryview``, ``array.array('h')``, numpy ``int16``
arrays for PCM (raw byte buffers of even length are read as native int16), ``uint8``/``int8`` items for
codes. Results are ``bytes``; with ``out=`` the result is written into that writable buffer (byte items for
codes, int16 or byte items for PCM) and the call returns the number of bytes written. Calls on buffers of at
least ``GIL_RELEASE_THRESHOLD`` samples release the GIL.

Exceptions (the same types and messages from both implementations):

- ``TypeError``: not a buffer (e.g. ``str``, ``list``), a wrong item type (numpy ``float32``/``int32``,
  byte-swapped int16, codes wider than a byte), or an ``out`` that is read-only or of the wrong item type.
- ``ValueError``: an odd number of PCM bytes, a non-contiguous buffer, an ``out`` smaller than the result,
  or an ``out`` overlapping the input. Nothing is ever silently truncated.

``IMPLEMENTATION`` says which implementation is loaded: ``"cython"`` (``pyvoip_fast._g711``) or
``"python"`` (the numpy twin ``pyvoip_fast._g711_py``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import _compat

logger = logging.getLogger(__name__)

__all__ = [
    "ulaw_encode",
    "ulaw_decode",
    "ulaw_decode_array",
    "alaw_encode",
    "alaw_decode",
    "alaw_decode_array",
    "ulaw_to_alaw",
    "alaw_to_ulaw",
    "ulaw_encode_sample",
    "alaw_encode_sample",
    "ulaw_decode_sample",
    "alaw_decode_sample",
    "GIL_RELEASE_THRESHOLD",
    "IMPLEMENTATION",
]

if TYPE_CHECKING:
    from ._g711_py import (
        GIL_RELEASE_THRESHOLD,
        alaw_decode,
        alaw_decode_array,
        alaw_decode_sample,
        alaw_encode,
        alaw_encode_sample,
        alaw_to_ulaw,
        ulaw_decode,
        ulaw_decode_array,
        ulaw_decode_sample,
        ulaw_encode,
        ulaw_encode_sample,
        ulaw_to_alaw,
    )
else:
    _impl = _compat.load("_g711")
    # re-exported as they are (no wrapper): a 160-sample frame costs ~100 ns, a wrapper would add half again
    ulaw_encode = _impl.ulaw_encode
    ulaw_decode = _impl.ulaw_decode
    alaw_encode = _impl.alaw_encode
    alaw_decode = _impl.alaw_decode
    ulaw_decode_array = _impl.ulaw_decode_array
    alaw_decode_array = _impl.alaw_decode_array
    ulaw_to_alaw = _impl.ulaw_to_alaw
    alaw_to_ulaw = _impl.alaw_to_ulaw
    ulaw_encode_sample = _impl.ulaw_encode_sample
    alaw_encode_sample = _impl.alaw_encode_sample
    ulaw_decode_sample = _impl.ulaw_decode_sample
    alaw_decode_sample = _impl.alaw_decode_sample
    GIL_RELEASE_THRESHOLD = _impl.GIL_RELEASE_THRESHOLD

IMPLEMENTATION: str = "python" if _compat.load("_g711").__name__.endswith("_py") else "cython"
