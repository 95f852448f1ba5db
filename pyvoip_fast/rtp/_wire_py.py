"""Shared pieces of the pure-Python RTP and RTCP twins: argument checks, buffer views, packed-field formats.

The check messages are word for word those of ``ext/rtp.pyx``, so both implementations raise the same errors.
"""

from __future__ import annotations

import struct
from typing import Any, Union

Buffer = Union[bytes, bytearray, memoryview]

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204

_FIXED = struct.Struct("!BBHII")
_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
_HH = struct.Struct("!HH")
_RTCP_HDR = struct.Struct("!BBH")
_SR_HEAD = struct.Struct("!BBHIQIII")  # header, ssrc, ntp, rtp ts, packet count, octet count
_RR_HEAD = struct.Struct("!BBHI")
_BLOCK = struct.Struct("!IIIIII")  # ssrc, (fraction<<24 | lost & 0xffffff), highest, jitter, lsr, dlsr

_U32_MAX = 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------------------------
# argument checks (messages shared word for word with ext/rtp.pyx)


def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < low or value > high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return int(value)


def _check_bytes(value: Any, name: str) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


def _view(data: Any, what: str) -> memoryview:
    """A flat unsigned-byte view of any C-contiguous buffer (TypeError for anything else)."""
    try:
        mv = memoryview(data)
    except TypeError:
        raise TypeError(f"{what} needs a bytes-like object, not {type(data).__name__}") from None
    if not mv.c_contiguous:  # a strided view: refused (the compiled module asks for a simple buffer)
        raise TypeError(f"{what} needs a C-contiguous buffer")
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def _writable_view(buffer: Any, what: str) -> memoryview:
    try:
        mv = memoryview(buffer)
    except TypeError:
        raise TypeError(f"{what} needs a writable bytes-like object, not {type(buffer).__name__}") from None
    if mv.readonly:
        raise TypeError(f"{what} needs a writable bytes-like object, not {type(buffer).__name__}")
    if not mv.c_contiguous:  # a strided view: refused (the compiled module asks for a simple buffer)
        raise TypeError(f"{what} needs a C-contiguous buffer")
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def _overlaps(a: Any, b: Any) -> bool:
    """Whether two buffers share memory (the compiled module compares their addresses)."""
    import numpy as np

    try:
        x, y = np.frombuffer(a, dtype=np.uint8), np.frombuffer(b, dtype=np.uint8)
    except (TypeError, ValueError):
        return False
    return bool(x.size and y.size and np.may_share_memory(x, y))


def _check_offset(offset: Any, need: int, size: int) -> int:
    if not isinstance(offset, int):
        raise TypeError(f"offset must be an int, not {type(offset).__name__}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if offset > size or need > size - offset:
        raise ValueError(f"buffer too small: {need} bytes needed at offset {offset}, buffer has {size}")
    return int(offset)


# ---------------------------------------------------------------------------------------------------------------
