"""Where media may go: one rule for every connection address a peer gives us, in offers, answers and re-INVITEs.

A session description names where we are to send RTP and RTCP, and nothing checks it but us: an address that is
not the peer's turns our media into a flood aimed at someone else (RFC 3264 §5.1, RFC 3550 §8.2's concerns).

- ``0.0.0.0`` and ``::`` mean the peer wants no media on the stream (the old way of holding a call, RFC 3264
  §8.4). We send nothing there (Linux would deliver it to this host's own port); we still receive if the
  direction says so.
- Multicast, broadcast and other IPv4 addresses that are not one host's (``255.255.255.255``, ``0.0.0.0/8``,
  ``240.0.0.0/4``; IPv4-mapped IPv6 forms alike) are refused: 488 Not Acceptable Here with a ``Warning``
  header.
- Loopback and link-local addresses are accepted only when the signalling came from the same scope: a call
  signalled from elsewhere cannot point our media at this host's (or this link's) own services.
- Host names are never resolved here: the application resolves them with the event loop's resolver (with a
  timeout) and applies this rule again to the address it got.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Optional, Tuple, Union

from ..errors import NegotiationError

__all__ = ["MediaAddressRefused", "MediaAddressUnresolved", "scope_of", "vet_media_host", "warning_header"]

_Ip = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


class MediaAddressRefused(NegotiationError):
    """The peer's media address is not one we send to (488 with a Warning saying why)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.warning = message


class MediaAddressUnresolved(NegotiationError):
    """The peer's media host name did not resolve in time (480: try again later)."""

    status_code = 480
    reason = "Temporarily Unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.warning = message


def warning_header(text: str) -> Tuple[str, str]:
    """A ``Warning`` header (RFC 3261 §20.43): code 399 (miscellaneous), our pseudonym, the text quoted."""
    clean = text.replace("\\", "/").replace('"', "'").replace("\r", " ").replace("\n", " ")
    return ("Warning", f'399 pyvoip-fast "{clean}"')


def _ip(host: str) -> Optional[_Ip]:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")


@functools.lru_cache(maxsize=1024)
def _classify(host: str) -> Tuple[str, str]:
    """``(kind, scope)`` of a host: kind is ``name``, ``unspecified``, ``multicast``, ``not one host's address``,
    ``reserved`` or ``unicast``; scope as ``scope_of``. Remembered: every call's SDP names the same few hosts,
    and ``ipaddress`` takes microseconds per look."""
    ip = _ip(host)
    if ip is None:
        return ("name", "global")
    scope = "loopback" if ip.is_loopback else "link-local" if ip.is_link_local else "global"
    if ip.is_unspecified:
        return ("unspecified", scope)
    if ip.is_multicast:
        return ("multicast", scope)
    if isinstance(ip, ipaddress.IPv4Address):
        if ip == _BROADCAST or ip in _THIS_NETWORK:
            return ("not one host's address", scope)
        if ip.is_reserved:  # 240.0.0.0/4
            return ("reserved", scope)
    return ("unicast", scope)


def scope_of(host: str) -> str:
    """``loopback``, ``link-local`` or ``global`` (every other unicast address, private ones included)."""
    return _classify(host)[1]


def vet_media_host(host: str, signalled_from: Optional[str] = None) -> bool:
    """Apply the rule to one connection address.

    Args:
        host: the address from ``c=`` (or ``a=rtcp``); a host name passes (to be resolved and vetted later).
        signalled_from: the IP address the SIP message came from; None skips the scope check.

    Returns:
        True when media may be sent there; False for ``0.0.0.0`` / ``::`` (the peer wants none).

    Raises:
        MediaAddressRefused: multicast, broadcast, reserved, or loopback/link-local from another scope.
    """
    kind, scope = _classify(host)
    if kind == "name":
        return True
    if kind == "unspecified":
        return False
    if kind != "unicast":
        raise MediaAddressRefused(f"media address {host} refused: {kind}")
    if scope != "global" and signalled_from is not None and scope_of(signalled_from) != scope:
        raise MediaAddressRefused(f"media address {host} refused: {scope}, but the call was signalled from "
                                  f"{signalled_from}")
    return True
