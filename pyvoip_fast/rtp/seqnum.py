"""Modular arithmetic for RTP sequence numbers (16 bits) and timestamps (32 bits).

Strategy
--------
RFC 3550 sequence numbers and timestamps wrap; "later than" means "less than half the number space ahead"
(serial number arithmetic in the sense of RFC 1982). These helpers keep that rule in one place for the jitter
buffer, the statistics and the sender. Plain functions over ints; no state.
"""

from __future__ import annotations

__all__ = [
    "uint16_add",
    "uint16_diff",
    "uint16_gt",
    "uint32_add",
    "uint32_diff",
    "uint32_gt",
    "extend_sequence",
]


def uint16_add(a: int, b: int) -> int:
    """``(a + b) mod 2**16`` (``b`` may be negative)."""
    return (a + b) & 0xFFFF


def uint16_diff(a: int, b: int) -> int:
    """The signed distance ``a - b`` in -32768..32767: how far ``a`` is ahead of ``b``."""
    d = (a - b) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


def uint16_gt(a: int, b: int) -> bool:
    """True when sequence number ``a`` is later than ``b`` (at most 32767 ahead)."""
    return 0 < ((a - b) & 0xFFFF) < 0x8000


def uint32_add(a: int, b: int) -> int:
    """``(a + b) mod 2**32`` (``b`` may be negative)."""
    return (a + b) & 0xFFFFFFFF


def uint32_diff(a: int, b: int) -> int:
    """The signed distance ``a - b`` in -2**31..2**31-1 (timestamps)."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d


def uint32_gt(a: int, b: int) -> bool:
    """True when timestamp ``a`` is later than ``b`` (at most 2**31-1 ahead)."""
    return 0 < ((a - b) & 0xFFFFFFFF) < 0x80000000


def extend_sequence(seq: int, reference: int) -> int:
    """Extend a 16-bit sequence number to the extended (cycle-counting) value closest to ``reference``.

    Args:
        seq: the 16-bit sequence number from a packet.
        reference: an extended sequence number already known (e.g. the highest received).

    Returns:
        ``reference + uint16_diff(seq, reference)``; may be negative when ``reference`` is near 0.
    """
    return reference + uint16_diff(seq, reference & 0xFFFF)
