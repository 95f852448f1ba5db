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


def scope_of(host: str) -> str:
    """``loopback``, ``link-local`` or ``global`` (every other unicast address, private ones included)."""
    ip = _ip(host)
    if ip is None:
        return "global"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    return "global"


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
    ip = _ip(host)
    if ip is None:
        return True
    if ip.is_unspecified:
        return False
    if ip.is_multicast:
        raise MediaAddressRefused(f"media address {host} refused: multicast")
    if isinstance(ip, ipaddress.IPv4Address) and (ip == ipaddress.IPv4Address("255.255.255.255")
                                                  or ip in ipaddress.IPv4Network("0.0.0.0/8")):
        raise MediaAddressRefused(f"media address {host} refused: not one host's address")
    if isinstance(ip, ipaddress.IPv4Address) and ip.is_reserved:  # 240.0.0.0/4
        raise MediaAddressRefused(f"media address {host} refused: reserved")
    scope = scope_of(host)
    if scope != "global" and signalled_from is not None and scope_of(signalled_from) != scope:
        raise MediaAddressRefused(f"media address {host} refused: {scope}, but the call was signalled from "
                                  f"{signalled_from}")
    return True
