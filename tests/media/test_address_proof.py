"""``media.liveness.AddressProof``: media goes only to addresses the peer proved (RFC 3261 ACK, or its RTP/RTCP)."""

from __future__ import annotations

from pyvoip_fast.media.liveness import AddressProof


def test_an_answerer_sends_only_where_it_heard_from_until_the_ack() -> None:
    proof = AddressProof()
    assert proof.allows(("192.0.2.1", 4000))  # a caller: the peer answered our INVITE
    proof.reset(False)
    assert not proof.allows(("192.0.2.1", 4000)) and not proof.allows(None)
    assert proof.heard(("192.0.2.1", 4000, 0, 0))  # the flow and scope of an IPv6 address do not matter
    assert not proof.heard(("192.0.2.1", 4000))  # already proven
    assert proof.allows(("192.0.2.1", 4000)) and not proof.allows(("192.0.2.1", 4002))
    assert proof.confirm() and proof.allows(("198.51.100.7", 9)) and not proof.confirm()
    assert not proof.heard(("198.51.100.7", 9))  # after the ACK nothing new is proven by hearing
    proof.reset(False)
    assert not proof.allows(("192.0.2.1", 4000))  # a new stream proves its addresses again


def test_proofs_are_per_call_and_bounded() -> None:
    a, b = AddressProof(), AddressProof()
    a.reset(False)
    b.reset(False)
    for port in range(20):
        a.heard(("192.0.2.1", 5000 + port))
    assert [a.allows(("192.0.2.1", 5000 + p)) for p in range(10)] == [True] * 8 + [False] * 2  # a spray stops
    assert not any(b.allows(("192.0.2.1", 5000 + p)) for p in range(20))  # nothing leaked into another call
    assert b.heard(("192.0.2.9", 7)) and not a.allows(("192.0.2.9", 7))
