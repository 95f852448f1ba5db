"""The edges of our in-dialog requests on two sans-IO endpoints joined in memory (``test_sip_endpoint.Link``):
digest challenges answered once per request (RFC 3261 §22.2), transport errors (503, §8.1.3.1), the target refresh
of our re-INVITE's 2xx (§12.2.1.2), a request the application never answers (500 after 64·T1), and Allow (§20.5)
listing INFO, REFER and NOTIFY wherever it is sent.

Time is passed in: the 64·T1 deadlines run instantly.
"""

from __future__ import annotations

from typing import List

import pytest

from test_sip_endpoint import A, B, Link, establish
from pyvoip_fast.errors import LocalProtocolError
from pyvoip_fast.sip import events as ev
from pyvoip_fast.sip.calls import ALLOWED_METHODS
from pyvoip_fast.sip.digest import Credentials
from pyvoip_fast.sip.digest_server import AuthVerdict, DigestServer
from pyvoip_fast.sip.endpoint import SipEndpoint
from pyvoip_fast.sip.message import SipRequest, SipResponse, make_response, parse_message

HOLD = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"
ALLOW = ", ".join(ALLOWED_METHODS)


def with_credentials(link: Link) -> None:
    """A (the caller) answers digest challenges as alice."""
    link.a = SipEndpoint(A, credentials=Credentials("alice", "secret"))
    link.eps[A] = link.a


class Challenger:
    """Stands in front of B for ``method``: every request without valid credentials is answered 401 with a fresh
    challenge (a server that challenges each request, as many PBXes do); the others go through. ``always`` also
    challenges requests whose credentials are good (a server that never accepts them)."""

    def __init__(self, link: Link, method: str, *, always: bool = False) -> None:
        self.link, self.method, self.always = link, method, always
        self.server = DigestServer("example.test", {"alice": "secret"})
        self.challenged = 0
        self.passed: List[SipRequest] = []
        link.drop = self.drop

    def drop(self, data: bytes, src: object, dst: object) -> bool:
        if src != A or not data.startswith(self.method.encode() + b" "):
            return False
        request = parse_message(data)
        assert isinstance(request, SipRequest)
        verdict, _ = self.server.verify(request, self.link.now)
        if verdict is AuthVerdict.OK and not self.always:
            self.passed.append(request)
            return False
        self.challenged += 1
        challenge = make_response(request, 401, to_tag=request.to.tag,
                                  headers=[("WWW-Authenticate", self.server.challenge(self.link.now))])
        self.link.a.receive_datagram(challenge.serialize(), B, self.link.now)
        return True


def test_each_in_dialog_request_answers_its_own_challenge_once() -> None:
    """Two INFOs each challenged with a fresh nonce are both retried with credentials (one chain per request, not
    one per call); a server that refuses the credentials gets one retry, then the 401 is the answer."""
    link = Link()
    with_credentials(link)
    ha, hb = establish(link)
    gate = Challenger(link, "INFO")
    for n in (1, 2):
        rid = link.a.request(ha, "INFO", link.now, body=b"Signal=%d\r\n" % n, content_type="application/dtmf-relay")
        link.pump()
        got = link.of(B, ev.InDialogRequest)[-1]
        assert got.request.body == b"Signal=%d\r\n" % n and "Authorization" in got.request.headers
        link.b.respond(hb, got.request, link.now, 200)
        link.pump()
        assert link.of(A, ev.InDialogResponse)[-1].request_id == rid
        assert link.of(A, ev.InDialogResponse)[-1].status_code == 200
    assert gate.challenged == 2 and len(gate.passed) == 2
    cseqs = [r.cseq[0] for r in gate.passed]
    assert cseqs[0] < cseqs[1]  # §22.2: the retry is a new request, CSeq + 1

    stubborn = Challenger(link, "INFO", always=True)
    rid = link.a.request(ha, "INFO", link.now)
    link.pump()
    last = link.of(A, ev.InDialogResponse)[-1]
    assert (last.request_id, last.status_code) == (rid, 401) and stubborn.challenged == 2
    assert last.response is not None and last.response.headers.get("WWW-Authenticate")


def test_our_reinvite_answers_a_challenge_once_and_then_goes_through() -> None:
    link = Link()
    with_credentials(link)
    ha, hb = establish(link)
    gate = Challenger(link, "INVITE")
    link.a.reinvite(ha, link.now, body=HOLD)
    link.pump()
    assert gate.challenged == 1 and len(gate.passed) == 1
    received = link.of(B, ev.ReInviteReceived)[-1]
    assert received.body == HOLD and "Authorization" in received.request.headers
    link.b.answer_reinvite(hb, link.now, body=b"v=0\r\nanswer\r\n")
    link.pump()
    assert [e.status_code for e in link.of(A, ev.ReInviteAnswered)] == [200]  # the 401 was not reported
    # the challenged INVITE was ACKed by its transaction, the 2xx by the core: the re-INVITE's ACK carries its CSeq
    acks = [parse_message(d) for d, s, _ in link.wire if s == A and d.startswith(b"ACK")]
    assert received.request.cseq[0] in [a.cseq[0] for a in acks]


def test_transport_errors_answer_503() -> None:
    link = Link()
    ha, hb = establish(link)
    link.drop = lambda d, s, t: s == A
    link.a.reinvite(ha, link.now, body=HOLD)
    rid = link.a.request(ha, "REFER", link.now, headers=[("Refer-To", "<sip:carol@127.0.0.1:5070>")])
    link.a.transport_error(B, link.now, "ICMP port unreachable")
    link.pump()
    assert [(e.status_code, e.reason) for e in link.of(A, ev.ReInviteAnswered)] == [(503, "Service Unavailable")]
    assert [(e.request_id, e.status_code, e.response) for e in link.of(A, ev.InDialogResponse)] == [(rid, 503, None)]
    link.drop = lambda d, s, t: False
    link.a.reinvite(ha, link.now, body=HOLD)  # the call is still up: a new re-INVITE may go
    link.pump()
    assert link.of(B, ev.ReInviteReceived)


def test_the_2xx_of_our_reinvite_refreshes_the_remote_target() -> None:
    link = Link()
    ha, hb = establish(link)
    link.a.reinvite(ha, link.now, body=HOLD)
    link.pump()
    link.b.user = "bob-desk"  # B's Contact changes (a target refresh, §12.2.1.2)
    link.b.answer_reinvite(hb, link.now, body=b"v=0\r\n")
    link.pump()
    assert link.a.call_info(ha)["remote_target"] == "sip:bob-desk@127.0.0.1:5061"
    link.a.request(ha, "INFO", link.now)
    link.pump()
    assert str(link.of(B, ev.InDialogRequest)[-1].request.uri) == "sip:bob-desk@127.0.0.1:5061"


def test_a_request_left_unanswered_gets_500_after_64_t1_and_frees_its_transaction() -> None:
    link = Link()
    ha, hb = establish(link)
    sent_at = link.now
    link.a.request(ha, "INFO", link.now, body=b"x", content_type="text/plain")
    link.pump()
    request = link.of(B, ev.InDialogRequest)[-1].request
    assert link.b._tx_per_ip.get(A[0]) == 1  # it counts against A's transaction budget while unanswered
    link.drop = lambda d, s, t: s == B  # nothing reaches A: its own timer F must not decide for B
    link.advance(sent_at + 64 * 0.5 + 0.01)
    refusals = [parse_message(d) for d, s, _ in link.wire if s == B and d.startswith(b"SIP/2.0 500")]
    assert len(refusals) == 1 and refusals[0].cseq[1] == "INFO"  # type: ignore[union-attr]
    assert refusals[0].reason == "Not Answered"  # type: ignore[union-attr]
    assert link.b._tx_per_ip.get(A[0]) is None
    with pytest.raises(LocalProtocolError, match="waiting"):
        link.b.respond(hb, request, link.now, 200)
    assert [e.status_code for e in link.of(A, ev.InDialogResponse)] == [408]  # A gave up at its timer F
    link.drop = lambda d, s, t: False
    link.a.request(ha, "INFO", link.now)  # the call goes on
    link.pump()
    assert len(link.of(B, ev.InDialogRequest)) == 2


def test_a_respond_with_a_bad_header_leaves_the_request_waiting() -> None:
    link = Link()
    ha, hb = establish(link)
    link.a.request(ha, "NOTIFY", link.now, headers=[("Event", "refer")])
    link.pump()
    request = link.of(B, ev.InDialogRequest)[-1].request
    with pytest.raises(ValueError):
        link.b.respond(hb, request, link.now, 200, headers=[("X-Bad", "a\r\nVia: injected")])
    with pytest.raises(ValueError):
        link.b.respond(hb, request, link.now, 100)
    link.b.respond(hb, request, link.now, 481, body=b"no such subscription")
    link.pump()
    got = link.of(A, ev.InDialogResponse)[-1]
    assert got.status_code == 481 and got.response is not None
    assert got.response.content_type == "text/plain" and got.response.body == b"no such subscription"


def test_a_request_body_without_a_type_is_text_plain_never_sdp() -> None:
    link = Link()
    ha, _ = establish(link)
    link.a.request(ha, "MESSAGE", link.now, body=b"hello")
    link.pump()
    message = [parse_message(d) for d, s, _ in link.wire if s == A and d.startswith(b"MESSAGE")][-1]
    assert message.content_type == "text/plain" and message.body == b"hello"
    # MESSAGE inside a call is not ours to take (501), and the answer says what we do take
    answer = [parse_message(d) for d, s, _ in link.wire if s == B and b"CSeq: 2 MESSAGE" in d][-1]
    assert isinstance(answer, SipResponse) and answer.status_code == 501
    assert answer.headers.get("Allow") == ALLOW
    assert link.of(A, ev.InDialogResponse)[-1].status_code == 501


def test_allow_lists_info_refer_notify_everywhere_it_is_sent() -> None:
    """Allow (§20.5) is in our INVITE, our 2xx, our re-INVITE and its 2xx, OPTIONS answers in and out of a call,
    and 405: each time the same list, with INFO, REFER and NOTIFY."""
    assert ALLOW == "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, PRACK, UPDATE"
    link = Link()
    ha, hb = establish(link)
    link.a.reinvite(ha, link.now, body=HOLD)
    link.pump()
    link.b.answer_reinvite(hb, link.now, body=b"v=0\r\n")
    link.a.request(ha, "OPTIONS", link.now)
    link.pump()
    in_call = link.of(A, ev.InDialogResponse)[-1]
    assert in_call.method == "OPTIONS" and in_call.status_code == 200 and in_call.response is not None
    assert in_call.response.headers.get("Allow") == ALLOW
    messages = [parse_message(d) for d, _, _ in link.wire]
    invites = [m for m in messages if isinstance(m, SipRequest) and m.method == "INVITE"]
    oks = [m for m in messages if isinstance(m, SipResponse) and m.status_code == 200 and m.cseq[1] == "INVITE"]
    assert len(invites) == 2 and len(oks) >= 2
    assert all(m.headers.get("Allow") == ALLOW for m in invites + oks)
    for method, code in (("OPTIONS", 200), ("PUBLISH", 405)):
        raw = (f"{method} sip:bob@127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKo{method}\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\n"
               f"Call-ID: out-{method}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n").encode()
        link.b.receive_datagram(raw, A, link.now)
        answer = parse_message(link.b.datagrams_to_send(link.now)[-1][0])
        assert isinstance(answer, SipResponse) and answer.status_code == code
        assert answer.headers.get("Allow") == ALLOW


def test_a_redirect_with_a_contact_list_in_one_header_reports_each_target() -> None:
    link = Link()
    h = link.a.invite("sip:bob@127.0.0.1:5061", B, link.now, body=b"v=0\r\n")
    link.pump()
    incoming = link.of(B, ev.IncomingCall)[-1]
    link.b.reject(incoming.handle, link.now, status_code=301, reason="Moved Permanently",
                  headers=[("Contact", '"Carol" <sip:carol@127.0.0.1:5070>;q=0.7, <sip:dave@127.0.0.1:5071>')])
    link.pump()
    failed = link.of(A, ev.CallFailed)[-1]
    assert (failed.handle, failed.status_code, failed.reason) == (h, 301, "Moved Permanently")
    assert failed.contacts == ('"Carol" <sip:carol@127.0.0.1:5070>;q=0.7', "<sip:dave@127.0.0.1:5071>")
    assert link.sent(b"ACK", A) == 1  # the transaction ACKed the 3xx


def test_a_rejection_carries_no_contacts() -> None:
    link = Link()
    link.a.invite("sip:bob@127.0.0.1:5061", B, link.now, body=b"v=0\r\n")
    link.pump()
    incoming = link.of(B, ev.IncomingCall)[-1]
    link.b.reject(incoming.handle, link.now, status_code=486, headers=[("Contact", "<sip:bob@127.0.0.1:5061>")])
    link.pump()
    assert link.of(A, ev.CallFailed)[-1].contacts == ()


def test_a_peer_reinvite_while_ours_is_unanswered_gets_491_then_goes_through_once_ours_is_done() -> None:
    """Our re-INVITE is on its way (lost once, so still pending) when the peer's arrives: §14.2 says 491, which the
    peer's INVITE transaction ACKs; once ours is answered, the peer's retry is taken."""
    link = Link()
    ha, hb = establish(link)
    lost: List[bytes] = []

    def drop(data: bytes, src: object, dst: object) -> bool:
        if src == A and data.startswith(b"INVITE ") and not lost:
            lost.append(data)
            return True
        return False

    link.drop = drop
    link.a.reinvite(ha, link.now, body=HOLD)
    link.pump()
    link.b.reinvite(hb, link.now, body=HOLD)
    link.pump()
    refused = link.of(B, ev.ReInviteAnswered)
    assert [(e.status_code, e.reason) for e in refused] == [(491, "Request Pending")]
    assert not link.of(A, ev.ReInviteReceived)
    assert link.sent(b"ACK", B) == 1  # B's transaction ACKed the 491 (§17.1.1.3)
    link.advance(link.now + 0.6)  # timer A: our re-INVITE is sent again and arrives
    link.b.answer_reinvite(hb, link.now, body=b"v=0\r\n")
    link.pump()
    assert [e.status_code for e in link.of(A, ev.ReInviteAnswered)] == [200]
    link.b.reinvite(hb, link.now, body=HOLD)
    link.pump()
    assert len(link.of(A, ev.ReInviteReceived)) == 1
