"""Clocks: NTP (RFC 5905 / RFC 3550 §4) timestamps and the round-trip time of RFC 3550 §6.4.1.

Strategy
--------
Pure functions over integers and floats; nothing here reads a clock except :func:`ntp_now`, so callers (and the
sans-IO layers) pass time in. Wall-clock time is only used for NTP timestamps in SRs; every interval (jitter,
RTT hold time, pacing) is measured on a monotonic clock by the caller.

- A 64-bit NTP timestamp counts seconds since 1900-01-01 in its high 32 bits and the fraction in the low 32.
  Unix time + 2,208,988,800 s = NTP time. The 32-bit seconds field wraps on 2036-02-07 06:28:16 UTC; as RFC 4330
  §3 suggests, :func:`unix_from_ntp` reads a timestamp whose top bit is clear as belonging to the era after 2036.
- LSR is the middle 32 bits of the last SR's NTP timestamp (16.16 fixed point); DLSR is in 1/65536 s; the
  round-trip time is ``A - LSR - DLSR`` in the same unit, computed modulo 2**32 (RFC 3550 §6.4.1, figure 2).

The same helpers are re-exported by :mod:`pyvoip_fast.rtcp`.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Optional

logger = logging.getLogger(__name__)

__all__ = ["NTP_UNIX_OFFSET", "ntp_from_unix", "unix_from_ntp", "ntp_middle32", "ntp_now", "rtt_seconds", "dlsr_units"]

#: seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01)
NTP_UNIX_OFFSET = 2_208_988_800
_ERA = 1 << 32


def ntp_from_unix(t: float) -> int:
    """Unix time (seconds, e.g. ``time.time()``) to a 64-bit NTP timestamp.

    Args:
        t: seconds since 1970-01-01 UTC.

    Returns:
        The NTP timestamp (0 .. 2**64-1); times after 2036-02-07 wrap into NTP era 1 as the wire format does.

    Raises:
        ValueError: ``t`` is not finite or before 1900.
    """
    if not math.isfinite(t):
        raise ValueError(f"cannot convert {t!r} to an NTP timestamp")
    secs = math.floor(t)
    frac = round((t - secs) * _ERA)
    if frac >= _ERA:  # rounding carried into the next second
        secs += 1
        frac -= _ERA
    ntp_secs = secs + NTP_UNIX_OFFSET
    if ntp_secs < 0:
        raise ValueError(f"unix time {t!r} is before the NTP epoch (1900)")
    return ((ntp_secs % _ERA) << 32) | frac


def unix_from_ntp(n: int) -> float:
    """A 64-bit NTP timestamp to Unix time.

    Args:
        n: the NTP timestamp (0 .. 2**64-1).

    Returns:
        Seconds since 1970-01-01 UTC. A timestamp whose most significant bit is clear is taken to be in era 1
        (2036-2104), per RFC 4330 §3, so conversions stay right across the 2036 wrap.

    Raises:
        ValueError: ``n`` is outside 0 .. 2**64-1.
    """
    if n < 0 or n > 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"NTP timestamp must be in 0..2**64-1, got {n}")
    secs = n >> 32
    if not secs & 0x80000000:
        secs += _ERA
    return secs - NTP_UNIX_OFFSET + (n & 0xFFFFFFFF) / _ERA


def ntp_middle32(n: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp (the LSR field of a report block)."""
    return (n >> 16) & 0xFFFFFFFF


def ntp_now() -> int:
    """The current wall-clock time as a 64-bit NTP timestamp (for the SR's NTP field)."""
    return ntp_from_unix(time.time())


def rtt_seconds(arrival_ntp_middle32: int, lsr: int, dlsr: int) -> Optional[float]:
    """Round-trip time from a received report block (RFC 3550 §6.4.1): ``A - LSR - DLSR``.

    Args:
        arrival_ntp_middle32: A, the middle 32 bits of the NTP time at which the report arrived.
        lsr: the block's LSR field.
        dlsr: the block's DLSR field (1/65536 s).

    Returns:
        Seconds, or ``None`` when ``lsr`` is 0 (the peer has not received an SR yet). Computed modulo 2**32;
        a negative result (clock steps, a peer's rounding of DLSR) is clamped to 0.0, never returned as garbage.
    """
    if lsr == 0:
        return None
    d = (arrival_ntp_middle32 - lsr - dlsr) & 0xFFFFFFFF
    if d & 0x80000000:
        return 0.0
    return d / 65536.0


def dlsr_units(seconds: float) -> int:
    """A delay in seconds to DLSR units (1/65536 s), rounded and clamped to 0 .. 2**32-1."""
    if not seconds > 0:  # also NaN
        return 0
    units = round(seconds * 65536.0)
    return units if units <= 0xFFFFFFFF else 0xFFFFFFFF
