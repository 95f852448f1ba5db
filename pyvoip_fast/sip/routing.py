"""Where a request goes next, and over which transport (RFC 3261 §8.1.2, §12.2.1.1, §16.12, §18.1.1).

A sans-IO core has no DNS: a hop is a URI whose host is an IP literal, plus its port and transport. The rules:

- The next hop is the first ``Route`` of the request when there is one (loose routing: the URI carries ``;lr``);
  otherwise the Request-URI. A first route without ``lr`` is a strict router (RFC 2543): the request is sent to
  it all the same, which is what a strict router expects of the transport layer.
- A ``;transport=`` parameter on the hop's URI wins; a ``sips:`` URI means TLS; otherwise the default transport
  of the user agent (``--transport``). The port defaults to 5060, 5061 for TLS.
- A request that would travel over UDP is moved to TCP when it is larger than 1,300 bytes and its hop did not
  ask for UDP explicitly (§18.1.1: fragmentation loses more than the connection costs).

``HopError`` is raised for a hop whose host is a name: the adapter resolves names before handing addresses in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

from ..errors import SipParseError
from .calls import is_ip_literal
from .uri import NameAddress, SipUri, Uri

__all__ = ["Hop", "HopError", "TRANSPORTS", "uri_transport", "hop_of", "next_hop", "UDP_SIZE_LIMIT",
           "default_port"]

#: transports a hop may name (upper case)
TRANSPORTS = ("UDP", "TCP", "TLS")
#: requests larger than this go over TCP unless their hop names UDP (RFC 3261 §18.1.1, MTU unknown)
UDP_SIZE_LIMIT = 1300


class HopError(ValueError):
    """A hop this core cannot reach by itself (a host name, another scheme, an unknown transport)."""


@dataclass(frozen=True)
class Hop:
    """The next hop of a request: an IP literal, a port, a transport, and whether the URI named the transport."""

    host: str
    port: int
    transport: str
    explicit: bool = False

    @property
    def addr(self) -> Tuple[str, int]:
        return (self.host, self.port)


def default_port(transport: str) -> int:
    """5061 for TLS, 5060 otherwise (RFC 3261 §19.1.2)."""
    return 5061 if transport.upper() == "TLS" else 5060


def uri_transport(uri: SipUri, default: str = "UDP") -> Tuple[str, bool]:
    """The transport a URI asks for and whether it asked explicitly.

    Raises:
        HopError: a ``;transport=`` value we do not speak (e.g. ``sctp``).
    """
    named = uri.param("transport")
    if named:
        transport = named.upper()
        if transport not in TRANSPORTS:
            raise HopError(f"unsupported transport {named!r} in {uri}")
        return transport, True
    if uri.scheme.lower() == "sips":
        return "TLS", True
    return default.upper(), False


def hop_of(uri: Uri, default_transport: str = "UDP") -> Hop:
    """The hop a URI names.

    Raises:
        HopError: not a SIP URI, or its host is a name (resolve it first).
    """
    if not isinstance(uri, SipUri):
        raise HopError(f"cannot route to a non-SIP URI {uri}")
    transport, explicit = uri_transport(uri, default_transport)
    if not is_ip_literal(uri.host):
        raise HopError(f"{uri.host!r} is a host name: the next hop needs an IP address")
    port = uri.port if uri.port is not None else default_port(transport)
    return Hop(uri.host, port, transport, explicit)


def next_hop(request_uri: Uri, routes: Sequence[str], default_transport: str = "UDP") -> Hop:
    """The next hop of a request with Request-URI ``request_uri`` and ``Route`` values ``routes`` (in order).

    Raises:
        HopError: the hop cannot be reached without DNS, or the first Route is malformed.
    """
    if routes:
        try:
            first = NameAddress.parse(routes[0]).uri
        except SipParseError as exc:
            raise HopError(f"malformed Route {routes[0][:80]!r}: {exc}") from None
        return hop_of(first, default_transport)
    return hop_of(request_uri, default_transport)
