"""Registration and digest retries in the sans-IO endpoint: a scripted registrar/proxy checks every REGISTER and
INVITE the endpoint sends (the digest is verified with the password) and answers as a server would.

Covered: 401 then 200 with the granted expiry, refresh on time, 423 with Min-Expires, a rejected password that
ends the attempt after one retry (no loop), stale nonces, NAT learning from received/rport, keep-alives,
unregistering, refresh failures retried with back-off, INVITE and BYE answered after 407/401, the outbound
proxy's pre-loaded Route, Record-Route copied into our answers and followed by our BYE.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import pytest

from pyvoip_fast.sip import events as ev
from pyvoip_fast.sip.digest import Credentials, compute_response, parse_challenges
from pyvoip_fast.sip.endpoint import RegistrationState, SipEndpoint
from pyvoip_fast.sip.message import Headers, SipRequest, SipResponse, make_response, parse_message
from pyvoip_fast.sip.transaction import TimerConfig

ME = ("127.0.0.1", 5070)
SERVER = ("127.0.0.1", 5060)
TIMERS = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def endpoint(password: str = "pw", **kw: object) -> SipEndpoint:
    return SipEndpoint(ME, timers=TIMERS, credentials=Credentials("alice", password), **kw)  # type: ignore[arg-type]


def sent(ep: SipEndpoint) -> List[Tuple[SipRequest, Tuple[str, int]]]:
    out = []
    for data, addr in ep.datagrams_to_send(0):
        msg = parse_message(data)
        if isinstance(msg, SipRequest):
            out.append((msg, addr))
    return out


def events(ep: SipEndpoint) -> List[ev.Event]:
    out = []
    while (e := ep.next_event()) is not None:
        out.append(e)
    return out


def challenge(request: SipRequest, code: int = 401, *, nonce: str = "n1", stale: bool = False,
              algorithm: str = "MD5") -> bytes:
    name = "WWW-Authenticate" if code == 401 else "Proxy-Authenticate"
    value = f'Digest realm="example.test", nonce="{nonce}", qop="auth", algorithm={algorithm}'
    if stale:
        value += ", stale=true"
    return make_response(request, code, to_tag="srv", headers=[(name, value)]).serialize()


def verify(request: SipRequest, password: str = "pw", header: str = "Authorization") -> bool:
    """The server side of digest: recompute the response from the password."""
    value = request.headers.get(header)
    assert value is not None, f"no {header} in {request.method}"
    params: Dict[str, str] = {}
    for part in value[len("Digest "):].split(", "):
        k, _, v = part.partition("=")
        params[k] = v.strip('"')
    want = compute_response(algorithm=params["algorithm"], username=params["username"], realm=params["realm"],
                            password=password, method=request.method, uri=params["uri"], nonce=params["nonce"],
                            qop=params.get("qop"), nc=params.get("nc", ""), cnonce=params.get("cnonce", ""))
    return params["response"] == want and params["uri"] == str(request.uri)


def ok(request: SipRequest, expires: Optional[int] = None, via: Optional[str] = None) -> bytes:
    headers = []
    if expires is not None:
        headers.append(("Contact", f"{request.headers.get('Contact')};expires={expires}"))
    response = make_response(request, 200, to_tag="srv", headers=headers)
    if via is not None:
        response.headers.set("Via", via)
    return response.serialize()


def test_register_with_digest_then_refresh_on_time_then_unregister() -> None:
    ep = endpoint()
    handle = ep.register("sip:alice@example.test", 0.0, dest=SERVER, expires=60)
    (req, addr), = sent(ep)
    assert addr == SERVER and req.method == "REGISTER" and str(req.uri) == "sip:example.test"
    assert req.headers.get("Expires") == "60" and "Authorization" not in req.headers
    assert str(req.to.uri) == "sip:alice@example.test" and str(req.from_.uri) == "sip:alice@example.test"
    assert ep.registration_state(handle) is RegistrationState.REGISTERING
    ep.receive_datagram(challenge(req, algorithm="SHA-256"), SERVER, 0.1)
    (req2, _), = sent(ep)
    assert req2.call_id == req.call_id and req2.cseq[0] == req.cseq[0] + 1
    assert req2.top_via.branch != req.top_via.branch and verify(req2)
    assert "algorithm=SHA-256" in (req2.headers.get("Authorization") or "")
    ep.receive_datagram(ok(req2, expires=40), SERVER, 0.2)
    (reg,) = [e for e in events(ep) if isinstance(e, ev.Registered)]
    assert reg.expires == 40 and not reg.refresh
    assert ep.registration_state(handle) is RegistrationState.REGISTERED
    # refreshed min(40/2, 30) = 20 s before it runs out
    assert ep.registration_info(handle)["refresh_at"] == pytest.approx(0.2 + 20.0)
    ep.handle_timer(20.19)
    assert sent(ep) == []
    ep.handle_timer(20.21)
    (req3, _), = sent(ep)
    assert req3.method == "REGISTER" and req3.cseq[0] == req2.cseq[0] + 1 and "Authorization" not in req3.headers
    ep.receive_datagram(challenge(req3, nonce="n2"), SERVER, 20.3)
    (req4, _), = sent(ep)
    assert verify(req4)
    ep.receive_datagram(ok(req4, expires=40), SERVER, 20.4)
    assert [e.refresh for e in events(ep) if isinstance(e, ev.Registered)] == [True]
    assert ep.unregister(handle, 21.0)
    (req5, _), = sent(ep)
    assert req5.headers.get("Expires") == "0" and req5.headers.get("Contact") == req.headers.get("Contact")
    ep.receive_datagram(ok(req5), SERVER, 21.1)
    assert any(isinstance(e, ev.Unregistered) for e in events(ep))
    assert ep.registration_state(handle) is RegistrationState.UNREGISTERED


def test_wrong_password_fails_after_one_retry_and_never_loops() -> None:
    ep = endpoint(password="wrong")
    handle = ep.register("sip:alice@example.test", 0.0, dest=SERVER)
    (req, _), = sent(ep)
    ep.receive_datagram(challenge(req, nonce="a"), SERVER, 0.1)
    (req2, _), = sent(ep)
    assert not verify(req2, password="pw")
    ep.receive_datagram(challenge(req2, nonce="b"), SERVER, 0.2)
    assert sent(ep) == []  # no third REGISTER
    (failed,) = [e for e in events(ep) if isinstance(e, ev.RegistrationFailed)]
    assert failed.auth and failed.status_code == 401 and failed.retry_in is None and "rejected" in failed.reason
    assert ep.registration_state(handle) is RegistrationState.FAILED
    for t in (1.0, 60.0, 3600.0):
        ep.handle_timer(t)
        assert sent(ep) == []


def test_stale_nonce_is_answered_again_and_403_is_final() -> None:
    ep = endpoint()
    ep.register("sip:alice@example.test", 0.0, dest=SERVER)
    (req, _), = sent(ep)
    ep.receive_datagram(challenge(req, nonce="a"), SERVER, 0.1)
    (req2, _), = sent(ep)
    ep.receive_datagram(challenge(req2, nonce="b", stale=True), SERVER, 0.2)
    (req3, _), = sent(ep)
    assert verify(req3) and 'nonce="b"' in (req3.headers.get("Authorization") or "")
    ep.receive_datagram(make_response(req3, 403, to_tag="s").serialize(), SERVER, 0.3)
    (failed,) = [e for e in events(ep) if isinstance(e, ev.RegistrationFailed)]
    assert failed.status_code == 403 and failed.auth


def test_interval_too_brief_retries_with_min_expires() -> None:
    ep = endpoint()
    ep.register("sip:alice@example.test", 0.0, dest=SERVER, expires=5)
    (req, _), = sent(ep)
    ep.receive_datagram(make_response(req, 423, to_tag="s", headers=[("Min-Expires", "30")]).serialize(),
                        SERVER, 0.1)
    (req2, _), = sent(ep)
    assert req2.headers.get("Expires") == "30"
    ep.receive_datagram(ok(req2), SERVER, 0.2)
    (reg,) = [e for e in events(ep) if isinstance(e, ev.Registered)]
    assert reg.expires == 30  # no Contact expires in the 200: the Expires we asked for


def test_refresh_failure_is_retried_with_backoff_and_timeout_reports_408() -> None:
    ep = endpoint()
    ep.register("sip:alice@example.test", 0.0, dest=SERVER, expires=10)
    (req, _), = sent(ep)
    ep.receive_datagram(ok(req, expires=10), SERVER, 0.0)
    events(ep)
    ep.handle_timer(5.0)
    (req2, _), = sent(ep)
    ep.receive_datagram(make_response(req2, 503, to_tag="s", headers=[("Retry-After", "7")]).serialize(),
                        SERVER, 5.1)
    (failed,) = [e for e in events(ep) if isinstance(e, ev.RegistrationFailed)]
    assert failed.retry_in == 7 and not failed.auth
    ep.handle_timer(12.1)
    (req3, _), = sent(ep)
    assert req3.method == "REGISTER"
    # no answer at all: Timer F (64*T1) ends the transaction with 408 and another retry is scheduled
    t = 12.1
    failures: List[ev.RegistrationFailed] = []
    while not failures and t < 30:
        t += 0.05
        ep.handle_timer(t)
        sent(ep)
        failures = [e for e in events(ep) if isinstance(e, ev.RegistrationFailed)]
    (failed2,) = failures
    assert failed2.status_code == 408 and failed2.retry_in == 30.0


def test_nat_public_address_becomes_the_contact() -> None:
    ep = endpoint()
    ep.register("sip:alice@example.test", 0.0, dest=SERVER)
    (req, _), = sent(ep)
    via = str(req.top_via.with_param("received", "203.0.113.7").with_param("rport", "40123"))
    ep.receive_datagram(ok(req, expires=60, via=via), SERVER, 0.1)
    assert not any(isinstance(e, ev.Registered) for e in events(ep))
    (req2, _), = sent(ep)
    assert req2.headers.get("Contact") == "<sip:alice@203.0.113.7:40123>"
    via2 = str(req2.top_via.with_param("received", "203.0.113.7").with_param("rport", "40123"))
    ep.receive_datagram(ok(req2, expires=60, via=via2), SERVER, 0.2)
    assert any(isinstance(e, ev.Registered) for e in events(ep))
    assert ep.contact_addr == ("203.0.113.7", 40123)


def test_keepalives_while_registered() -> None:
    ep = endpoint(transport="TCP")
    ep.register("sip:alice@example.test", 0.0, dest=SERVER, keepalive=2.0)
    (req, _), = sent(ep)
    assert req.top_via.transport == "TCP" and str(req.top_via).endswith(";rport;alias")
    assert req.headers.get("Contact") == "<sip:alice@127.0.0.1:5070;transport=tcp>"
    ep.receive_datagram(ok(req, expires=600), SERVER, 0.0)
    assert ep.keepalives_to_send() == []
    ep.handle_timer(2.0)
    assert ep.keepalives_to_send() == [(SERVER, "TCP")]
    ep.handle_timer(4.0)
    assert ep.keepalives_to_send() == [(SERVER, "TCP")]


def _invite_via_proxy(ep: SipEndpoint) -> Tuple[int, SipRequest]:
    handle = ep.invite("sip:bob@example.test", None, 0.0, body=b"v=0\r\n")
    (req, addr), = sent(ep)
    assert addr == SERVER
    return handle, req


def test_invite_through_outbound_proxy_answers_407_and_bye_follows_record_route() -> None:
    ep = endpoint(outbound_proxy="sip:127.0.0.1:5060")
    handle, req = _invite_via_proxy(ep)
    assert req.headers.get_all("Route") == ["<sip:127.0.0.1:5060;lr>"]
    assert str(req.uri) == "sip:bob@example.test"
    ep.receive_datagram(challenge(req, 407), SERVER, 0.1)
    msgs = sent(ep)
    assert [m.method for m, _ in msgs] == ["ACK", "INVITE"]
    req2 = msgs[1][0]
    assert req2.cseq[0] == 2 and req2.call_id == req.call_id and req2.from_.tag == req.from_.tag
    assert verify(req2, header="Proxy-Authorization") and req2.headers.get_all("Route") == req.headers.get_all("Route")
    ok200 = make_response(req2, 200, to_tag="bob", headers=[
        ("Record-Route", "<sip:127.0.0.1:5060;lr;transport=tcp>"), ("Contact", "<sip:bob@127.0.0.1:5090>"),
        ("Content-Type", "application/sdp")], body=b"v=0\r\n")
    ep.receive_datagram(ok200.serialize(), SERVER, 0.2)
    (ack, ack_addr), = sent(ep)
    assert ack.method == "ACK" and ack_addr == SERVER and ack.top_via.transport == "TCP"
    assert ack.headers.get_all("Route") == ["<sip:127.0.0.1:5060;lr;transport=tcp>"]
    assert str(ack.uri) == "sip:bob@127.0.0.1:5090"
    assert any(isinstance(e, ev.CallAnswered) for e in events(ep))
    ep.bye(handle, 1.0)
    (bye, bye_addr), = sent(ep)
    assert bye.method == "BYE" and bye_addr == SERVER and bye.headers.get_all("Route") == ack.headers.get_all("Route")
    # the proxy challenges the BYE too: answered once
    ep.receive_datagram(challenge(bye, 407, nonce="bye"), SERVER, 1.1)
    (bye2, _), = sent(ep)
    assert bye2.method == "BYE" and bye2.cseq[0] == bye.cseq[0] + 1 and verify(bye2, header="Proxy-Authorization")
    ep.receive_datagram(make_response(bye2, 200).serialize(), SERVER, 1.2)
    assert any(isinstance(e, ev.CallEnded) for e in events(ep))


def test_invite_with_rejected_credentials_fails_with_the_challenge_status() -> None:
    ep = endpoint(password="bad", outbound_proxy="sip:127.0.0.1:5060")
    handle, req = _invite_via_proxy(ep)
    ep.receive_datagram(challenge(req, 407, nonce="x"), SERVER, 0.1)
    req2 = [m for m, _ in sent(ep) if m.method == "INVITE"][0]
    ep.receive_datagram(challenge(req2, 407, nonce="y"), SERVER, 0.2)
    assert [m.method for m, _ in sent(ep)] == ["ACK"]
    (failed,) = [e for e in events(ep) if isinstance(e, ev.CallFailed)]
    assert failed.status_code == 407 and "rejected" in failed.reason


def test_incoming_invite_through_a_proxy_copies_record_route_and_bye_follows_it() -> None:
    ep = SipEndpoint(ME, timers=TIMERS)
    invite = (
        "INVITE sip:alice@127.0.0.1:5070 SIP/2.0\r\n"
        "Record-Route: <sip:127.0.0.1:5060;lr>\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKbob;received=127.0.0.1\r\n"
        "From: <sip:bob@example.test>;tag=b\r\nTo: <sip:alice@example.test>\r\nCall-ID: in-1\r\n"
        "CSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.1:5090>\r\nMax-Forwards: 69\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    ep.receive_datagram(invite, SERVER, 0.0)
    (incoming,) = [e for e in events(ep) if isinstance(e, ev.IncomingCall)]
    ep.datagrams_to_send(0)
    ep.answer(incoming.handle, 0.1, body=b"v=0\r\n")
    responses = [parse_message(d) for d, _ in ep.datagrams_to_send(0)]
    (ok200,) = [r for r in responses if isinstance(r, SipResponse) and r.status_code == 200]
    assert ok200.headers.get_all("Record-Route") == ["<sip:127.0.0.1:5060;lr>"]
    ack = ("ACK sip:alice@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack\r\n"
           f"From: <sip:bob@example.test>;tag=b\r\nTo: <sip:alice@example.test>;tag={ok200.to.tag}\r\n"
           "Call-ID: in-1\r\nCSeq: 1 ACK\r\nMax-Forwards: 69\r\nContent-Length: 0\r\n\r\n").encode()
    ep.receive_datagram(ack, SERVER, 0.2)
    ep.bye(incoming.handle, 0.3)
    (bye, addr), = sent(ep)
    assert addr == SERVER and bye.headers.get_all("Route") == ["<sip:127.0.0.1:5060;lr>"]
    assert str(bye.uri) == "sip:bob@127.0.0.1:5090"


def test_large_request_moves_to_tcp() -> None:
    ep = SipEndpoint(ME, timers=TIMERS)
    ep.invite("sip:bob@127.0.0.1:5090", ("127.0.0.1", 5090), 0.0, body=b"a=x-padding:" + b"x" * 1400 + b"\r\n")
    (req, _), = sent(ep)
    assert req.top_via.transport == "TCP"
    ep.invite("sip:bob@127.0.0.1:5090;transport=udp", ("127.0.0.1", 5090), 0.0, body=b"x" * 1400)
    (req2, _), = sent(ep)
    assert req2.top_via.transport == "UDP"  # the URI asked for UDP explicitly


def test_a_closed_registration_connection_registers_again_with_growing_delays() -> None:
    ep = endpoint(transport="TCP")
    ep.register("sip:alice@example.test", 0.0, dest=SERVER, expires=600)
    (req, _), = sent(ep)
    ep.receive_datagram(ok(req, expires=600), SERVER, 0.1)
    events(ep)
    ep.connection_lost(SERVER, 1.0)
    (again, _), = sent(ep)  # at once
    assert again.method == "REGISTER" and again.headers.get("Expires") == "600"
    # that connection dies too before any answer: the REGISTER fails (503) and the next try waits 1 s
    ep.connection_lost(SERVER, 1.1)
    failures = [e for e in events(ep) if isinstance(e, ev.RegistrationFailed)]
    assert failures and failures[0].status_code == 503
    ep.handle_timer(1.5)
    assert sent(ep) == []
    ep.handle_timer(2.11)
    (third, _), = sent(ep)
    ep.receive_datagram(ok(third, expires=600), SERVER, 2.2)
    assert [e.refresh for e in events(ep) if isinstance(e, ev.Registered)] == [True]


def test_cancel_after_an_authenticated_invite_matches_the_retried_request() -> None:
    ep = endpoint(outbound_proxy="sip:127.0.0.1:5060")
    handle, req = _invite_via_proxy(ep)
    ep.receive_datagram(challenge(req, 407), SERVER, 0.1)
    retried = [m for m, _ in sent(ep) if m.method == "INVITE"][0]
    ep.receive_datagram(make_response(retried, 180, to_tag="b").serialize(), SERVER, 0.2)
    ep.cancel(handle, 0.3)
    (cancel, addr), = sent(ep)
    # RFC 3261 §9.1: the CANCEL has the cancelled request's top Via (branch), CSeq number and Route
    assert cancel.method == "CANCEL" and addr == SERVER
    assert cancel.top_via.branch == retried.top_via.branch and cancel.cseq == (2, "CANCEL")
    assert cancel.headers.get_all("Route") == retried.headers.get_all("Route")
    # a CANCEL cannot be resubmitted, so a challenge to it is not answered (no second CANCEL)
    ep.receive_datagram(challenge(cancel, 407, nonce="c"), SERVER, 0.4)
    assert [m.method for m, _ in sent(ep)] == []
