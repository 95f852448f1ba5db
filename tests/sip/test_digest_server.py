"""Digest as a UAS (``sip/digest_server.py``): our client's answers accepted, wrong passwords, forged or expired
nonces, replays and garbage refused, and the endpoint answering unauthenticated INVITEs with 401 statelessly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.sip import events as ev
from pyvoip_fast.sip.digest import Credentials, DigestAuth
from pyvoip_fast.sip.digest_server import AuthVerdict, DigestServer
from pyvoip_fast.sip.endpoint import SipEndpoint
from pyvoip_fast.sip.message import SipResponse, make_response, parse_message

INVITE = ("INVITE sip:pyvoip@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bK{b}\r\n"
          "From: <sip:c@127.0.0.1>;tag=1\r\nTo: <sip:pyvoip@127.0.0.1>\r\nCall-ID: auth-{b}\r\nCSeq: {n} INVITE\r\n"
          "Max-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n")


def request(auth: str = "", b: str = "1", n: int = 1):  # type: ignore[no-untyped-def]
    line = f"Authorization: {auth}\r\n" if auth else ""
    return parse_message(INVITE.format(auth=line, b=b, n=n).encode())


def answer(server: DigestServer, password: str, now: float, chain: dict = None, client: DigestAuth = None) -> str:  # type: ignore[assignment]
    req = request()
    challenge = make_response(req, 401, to_tag="x", headers=[("WWW-Authenticate", server.challenge(now))])
    client = client or DigestAuth(Credentials("alice", password))
    ((_, value),) = client.answer(challenge, "INVITE", str(req.uri), chain if chain is not None else {})
    return value


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_our_client_is_accepted_and_a_wrong_password_is_not(algorithm: str) -> None:
    server = DigestServer("pyvoip-fast", {"alice": "s3cret"}, algorithm=algorithm)
    assert server.verify(request(), 0.0) == (AuthVerdict.CHALLENGE, None)
    assert server.verify(request(answer(server, "s3cret", 0.0)), 1.0) == (AuthVerdict.OK, "alice")
    assert server.verify(request(answer(server, "wrong", 0.0)), 1.0)[0] is AuthVerdict.REJECTED


def test_replay_forgery_expiry_and_other_realms() -> None:
    server = DigestServer("r", {"alice": "pw"}, nonce_ttl=60)
    good = answer(server, "pw", 0.0)
    assert server.verify(request(good), 1.0)[0] is AuthVerdict.OK
    assert server.verify(request(good), 2.0)[0] is AuthVerdict.REJECTED  # the same nc again: a replay
    other = DigestServer("r", {"alice": "pw"})  # another process's secret: our nonce is not its nonce
    assert other.verify(request(answer(server, "pw", 0.0)), 1.0)[0] is AuthVerdict.REJECTED
    assert server.verify(request(answer(server, "pw", 0.0)), 61.0)[0] is AuthVerdict.STALE
    assert "stale=true" in server.challenge(61.0, stale=True)
    foreign = good.replace('realm="r"', 'realm="elsewhere"')
    assert server.verify(request(foreign), 1.0)[0] is AuthVerdict.CHALLENGE
    # the uri is hashed into the answer: changing it breaks the response
    moved = answer(server, "pw", 0.0).replace("sip:pyvoip@127.0.0.1:5060", "sip:other@127.0.0.1")
    assert server.verify(request(moved), 1.0)[0] is AuthVerdict.REJECTED


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=300))
def test_garbage_credentials_are_refused_never_raised(text: str) -> None:
    server = DigestServer("r", {"alice": "pw"})
    verdict, user = server.verify(request("Digest " + text.replace("\r", "").replace("\n", "")), 1.0)
    assert verdict is not AuthVerdict.OK and user is None


def test_endpoint_challenges_statelessly_and_takes_the_authenticated_invite() -> None:
    server = DigestServer("pyvoip-fast", {"alice": "pw"})
    ep = SipEndpoint(("127.0.0.1", 5060), require_auth=server)
    ep.receive_datagram(INVITE.format(auth="", b="1", n=1).encode(), ("127.0.0.1", 7000), 0.0)
    (challenge,) = [parse_message(d) for d, _ in ep.datagrams_to_send(0)]
    assert isinstance(challenge, SipResponse) and challenge.status_code == 401
    assert ep.next_event() is None and not ep._server_tx  # no state for an unauthenticated INVITE
    client = DigestAuth(Credentials("alice", "pw"))
    ((_, value),) = client.answer(challenge, "INVITE", "sip:pyvoip@127.0.0.1:5060", {})
    ep.receive_datagram(INVITE.format(auth=f"Authorization: {value}\r\n", b="2", n=2).encode(),
                        ("127.0.0.1", 7000), 0.1)
    assert isinstance(ep.next_event(), ev.IncomingCall)
    assert ep.admission.counters["unauthenticated"] == 0
