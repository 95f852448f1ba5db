"""Next-hop selection (``sip/routing.py``): Route before Request-URI, transport parameters, sips, defaults."""

from __future__ import annotations

import pytest

from pyvoip_fast.sip.routing import Hop, HopError, hop_of, next_hop
from pyvoip_fast.sip.uri import parse_uri


def test_first_route_wins_over_the_request_uri() -> None:
    hop = next_hop(parse_uri("sip:bob@10.0.0.9:5080"), ["<sip:127.0.0.1:5099;lr;transport=tcp>",
                                                        "<sip:10.0.0.2;lr>"])
    assert hop == Hop("127.0.0.1", 5099, "TCP", True)


def test_uri_transport_beats_the_default_and_sips_means_tls() -> None:
    assert next_hop(parse_uri("sip:bob@10.0.0.9"), [], "TCP") == Hop("10.0.0.9", 5060, "TCP", False)
    assert hop_of(parse_uri("sip:10.0.0.9;transport=udp"), "TLS") == Hop("10.0.0.9", 5060, "UDP", True)
    assert hop_of(parse_uri("sips:bob@[::1]")) == Hop("::1", 5061, "TLS", True)
    assert hop_of(parse_uri("sip:bob@10.0.0.9;transport=TLS")).port == 5061


@pytest.mark.parametrize("uri, routes", [
    ("sip:bob@example.com", []),
    ("sip:bob@10.0.0.1;transport=sctp", []),
    ("tel:+123", []),
    ("sip:bob@10.0.0.1", ["not a route <"]),
])
def test_unreachable_hops_raise_hop_error(uri: str, routes: list) -> None:
    with pytest.raises(HopError):
        next_hop(parse_uri(uri), routes)
