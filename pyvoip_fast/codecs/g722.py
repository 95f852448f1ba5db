"""G.722 wideband codec (ITU-T G.722 sub-band ADPCM, 16 kHz audio, 64/56/48 kbit/s, RTP payload type 9).

Public API (stable)::

    from pyvoip_fast import g722
    enc = g722.Encoder()                     # bitrate=64000 (ITU mode 1); 56000, 48000 for modes 2, 3
    codes = enc.encode(pcm)                  # 16 kHz int16 PCM -> bytes, one code per two samples
    dec = g722.Decoder()
    pcm = dec.decode(codes)                  # codes -> bytes of native-endian int16, two samples per code
    enc.encode(pcm, out=buf)                 # -> int: bytes written into buf, nothing allocated

Bit-exactness: encoder and decoder reproduce the G.722 module of the ITU-T G.191 Software Tools Library (the
ITU reference) on its conformance vectors (``tests/data/g722``), in all three modes, for any split of the
stream into calls. The ``G722`` package on PyPI (libg722, from the spandsp code) agrees with us everywhere
except on input that drives a sub-band signal past +-16384 (full-scale square waves, for one): the reference
limits the transmit filter's outputs to -16384..16383 there, that package does not, so its codes differ from
then on. Its decoder agrees on every code stream; its 56/48 kbit/s codes are ours shifted right by 1/2 bits.

Modes: on the wire G.722 is always one byte per two samples. At 56000 and 48000 bit/s the one or two lowest
bits of each code carry no audio (the low band's auxiliary data channel): the ``Decoder`` ignores them and the
``Encoder`` sets them to zero. The encoder's ADPCM loop is the same in every mode (the predictors only ever
see the 4-bit embedded core of the low band), so a 64 kbit/s stream decodes at any of the three rates.

Streams: ``Encoder`` and ``Decoder`` keep the codec state between calls, so a stream coded frame by frame
gives exactly the codes of the stream coded in one piece. A code needs two samples: an odd number of samples
leaves the last one held in the encoder (``pending`` is then 1), and the next call pairs it with its first
sample, so *any* split of the samples, odd pieces included, gives the same codes as the whole. ``flush()``
ends a stream by coding a held sample together with one zero sample; ``reset()`` returns to the initial state
and drops it. One object per stream direction: the objects are not for concurrent use from several threads
(the compiled module raises ``RuntimeError`` when a second thread calls an object while a long call has the
GIL released).

Byte order and buffers: PCM is **native-endian** signed 16-bit at 16 kHz. Inputs are any C-contiguous buffer:
``bytes``, ``bytearray``, ``memoryview``, ``array.array('h')``, numpy ``int16`` arrays for PCM (raw byte
buffers of even length are read as native int16), ``uint8``/``int8`` items for codes. Results are ``bytes``;
with ``out=`` the result is written into that writable buffer (byte items for codes, int16 or byte items for
PCM) and the call returns the number of bytes written. Calls on buffers of at least ``GIL_RELEASE_THRESHOLD``
PCM samples release the GIL.

Exceptions (the same types and messages from both implementations, and as in :mod:`pyvoip_fast.codecs.g711`):

- ``TypeError``: not a buffer (e.g. ``str``, ``list``), a wrong item type (numpy ``float32``/``int32``,
  byte-swapped int16, codes wider than a byte), an ``out`` that is read-only or of the wrong item type, or a
  bitrate that is not an ``int``.
- ``ValueError``: an odd number of PCM bytes, a non-contiguous buffer, an ``out`` smaller than the result or
  overlapping the input, or a bitrate other than 64000, 56000, 48000. Nothing is ever silently truncated, and
  a call that raises leaves the codec state as it was.

``IMPLEMENTATION`` says which implementation is loaded: ``"cython"`` (``pyvoip_fast.codecs._g722``) or
``"python"`` (the twin ``pyvoip_fast.codecs._g722_py``, bit-identical and much slower).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import _compat

logger = logging.getLogger(__name__)

__all__ = ["Encoder", "Decoder", "BITRATES", "GIL_RELEASE_THRESHOLD", "KERNEL", "IMPLEMENTATION"]

if TYPE_CHECKING:
    from ._g722_py import BITRATES, GIL_RELEASE_THRESHOLD, KERNEL, Decoder, Encoder
else:
    _impl = _compat.load("_g722")
    Encoder = _impl.Encoder
    Decoder = _impl.Decoder
    BITRATES = _impl.BITRATES
    GIL_RELEASE_THRESHOLD = _impl.GIL_RELEASE_THRESHOLD
    KERNEL = _impl.KERNEL

IMPLEMENTATION: str = "python" if _compat.load("_g722").__name__.endswith("_py") else "cython"
