"""Session timers (RFC 4028): the header values and the arithmetic, without I/O.

A session timer keeps a call from outliving a crashed peer or a proxy that lost its state: one side (the
*refresher*) sends a session refresh (a re-INVITE or an UPDATE) every half interval, and the other side ends the
call with BYE when no refresh came by the interval's end less ``min(32, interval / 3)`` seconds (§10).

- ``SessionExpires.parse("1800;refresher=uac")`` / ``str(...)``: the ``Session-Expires`` header (§4).
- ``parse_min_se("90")``: the ``Min-SE`` header (§5): the smallest interval a side accepts; below it, 422.
- ``SessionTimer``: one call's running timer: who refreshes, when the next refresh is due, when the call
  expires.

Values a peer sends are checked: a malformed header is a ``SipParseError`` (the request is answered 400), an
interval below 90 s (the floor RFC 4028 §4 fixes for everyone) is raised to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import SipParseError
from .abnf import is_digits

__all__ = ["SessionExpires", "SessionTimer", "parse_min_se", "MIN_SE_FLOOR", "DEFAULT_SESSION_EXPIRES",
           "expiry_margin"]

#: RFC 4028 §4: no one may ask for less than 90 seconds
MIN_SE_FLOOR = 90
#: RFC 4028 §4 recommends 1800 seconds for the interval a UAC asks for
DEFAULT_SESSION_EXPIRES = 1800
#: a delta-seconds value is at most 2**32 - 1 (RFC 3261 §25.1); anything longer is a parse error
_MAX_DELTA = 2 ** 32 - 1


def _delta(text: str, what: str) -> int:
    text = text.strip()
    if not is_digits(text) or len(text) > 10:
        raise SipParseError(f"bad {what} value {text!r}: expected delta-seconds")
    value = int(text)
    if value > _MAX_DELTA:
        raise SipParseError(f"bad {what} value {text!r}: too large")
    return value


@dataclass(frozen=True)
class SessionExpires:
    """A ``Session-Expires`` value: the interval in seconds and who refreshes (``"uac"``, ``"uas"`` or None)."""

    interval: int
    refresher: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "SessionExpires":
        """Parse ``delta-seconds *(;param)`` (also the compact form ``x``'s value).

        Raises:
            SipParseError: not delta-seconds, or a refresher other than uac/uas.
        """
        parts = [p.strip() for p in text.split(";")]
        interval = _delta(parts[0], "Session-Expires")
        refresher: Optional[str] = None
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "refresher":
                refresher = value.strip().lower()
                if refresher not in ("uac", "uas"):
                    raise SipParseError(f"bad Session-Expires refresher {value.strip()!r}: expected uac or uas")
        return cls(interval, refresher)

    def __str__(self) -> str:
        return f"{self.interval};refresher={self.refresher}" if self.refresher else str(self.interval)


def parse_min_se(text: str) -> int:
    """The seconds of a ``Min-SE`` header (its parameters ignored).

    Raises:
        SipParseError: not delta-seconds.
    """
    return _delta(text.split(";", 1)[0], "Min-SE")


def expiry_margin(interval: float) -> float:
    """§10: the side that does not refresh sends BYE this many seconds before the interval ends."""
    return min(32.0, interval / 3.0)


class SessionTimer:
    """The session timer of one call.

    Args:
        interval: the negotiated Session-Expires, seconds.
        we_refresh: True when this side is the refresher.
        now: when the interval (re)starts: the 2xx of the INVITE or of the last refresh.
    """

    __slots__ = ("interval", "we_refresh", "refresh_at", "expires_at", "refreshing")

    def __init__(self, interval: int, we_refresh: bool, now: float) -> None:
        self.interval = interval
        self.we_refresh = we_refresh
        self.refresh_at = 0.0
        self.expires_at = 0.0
        #: a refresh of ours is in flight (its answer restarts the timer)
        self.refreshing = False
        self.restart(now)

    def restart(self, now: float, interval: Optional[int] = None, we_refresh: Optional[bool] = None) -> None:
        """A refresh succeeded (or the session started) at ``now``: count the interval again from there."""
        if interval is not None:
            self.interval = interval
        if we_refresh is not None:
            self.we_refresh = we_refresh
        self.refreshing = False
        self.refresh_at = now + self.interval / 2.0
        self.expires_at = now + self.interval - expiry_margin(self.interval)

    def next_deadline(self) -> float:
        """When something is due: our next refresh (refresher), or the expiry (the other side)."""
        return self.refresh_at if self.we_refresh and not self.refreshing else self.expires_at

    def header(self, we_are_uac: bool) -> str:
        """The ``Session-Expires`` value that describes this timer, from the point of view of the dialog's roles."""
        refresher = "uac" if self.we_refresh == we_are_uac else "uas"
        return str(SessionExpires(self.interval, refresher))
