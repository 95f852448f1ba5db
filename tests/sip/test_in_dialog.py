"""Our own re-INVITE and in-dialog INFO / REFER / NOTIFY on two sans-IO endpoints joined in memory (the
``Link`` of ``test_sip_endpoint``), and the ``message/sipfrag`` parser a transfer's NOTIFY needs.

Time is passed in: retransmissions, glare and timeouts run instantly and deterministically.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_sip_endpoint import A, B, Link, establish
from pyvoip_fast.errors import LocalProtocolError, SipParseError
from pyvoip_fast.sip import events as ev
from pyvoip_fast.sip.calls import ALLOWED_METHODS
from pyvoip_fast.sip.message import parse_message
from pyvoip_fast.sip.sipfrag import make_sipfrag, parse_sipfrag

HOLD = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"


def test_our_reinvite_is_answered_and_acked_and_a_retransmitted_200_acked_again() -> None:
    link = Link()
    ha, hb = establish(link)
    link.a.reinvite(ha, link.now, body=HOLD)
    link.pump()
    got = link.of(B, ev.ReInviteReceived)[-1]
    assert got.body == HOLD and got.request.cseq == (2, "INVITE") and "Contact" in got.request.headers
    link.b.answer_reinvite(hb, link.now, body=b"v=0\r\nanswer\r\n")
    link.pump()
    answered = link.of(A, ev.ReInviteAnswered)
    assert [(e.status_code, e.body) for e in answered] == [(200, b"v=0\r\nanswer\r\n")]
    acks = link.sent(b"ACK", A)
    assert acks == 2  # the call's ACK and the re-INVITE's
    # B's 200 is retransmitted as if our ACK was lost: A sends the ACK again, and reports nothing new
    ok = [d for d, s, _ in link.wire if s == B and d.startswith(b"SIP/2.0 200") and b"CSeq: 2 INVITE" in d][-1]
    link.a.receive_datagram(ok, B, link.now)
    link.pump()
    assert link.sent(b"ACK", A) == 3 and len(link.of(A, ev.ReInviteAnswered)) == 1


def test_a_refused_reinvite_is_reported_and_the_call_goes_on() -> None:
    link = Link()
    ha, hb = establish(link)
    link.a.reinvite(ha, link.now, body=HOLD)
    link.pump()
    link.b.answer_reinvite(hb, link.now, status_code=488)
    link.pump()
    assert [e.status_code for e in link.of(A, ev.ReInviteAnswered)] == [488]
    link.a.request(ha, "INFO", link.now)  # the dialog is still there
    link.pump()
    assert link.of(B, ev.InDialogRequest)


def test_glare_both_sides_get_491_and_a_peer_reinvite_during_ours_gets_491() -> None:
    link = Link()
    ha, hb = establish(link)
    link.a.reinvite(ha, link.now, body=HOLD)
    link.b.reinvite(hb, link.now, body=HOLD)  # both at once, before either arrives
    link.pump()
    assert [e.status_code for e in link.of(A, ev.ReInviteAnswered)] == [491]
    assert [e.status_code for e in link.of(B, ev.ReInviteAnswered)] == [491]
    assert not link.of(A, ev.ReInviteReceived) and not link.of(B, ev.ReInviteReceived)
    link.advance(link.now + 3.0)
    link.a.reinvite(ha, link.now, body=HOLD)  # the retry after the wait goes through
    link.pump()
    assert link.of(B, ev.ReInviteReceived)
    with pytest.raises(LocalProtocolError):
        link.b.reinvite(hb, link.now, body=HOLD)  # B must answer A's first (§14.1)


def test_one_reinvite_at_a_time_and_only_in_an_established_call() -> None:
    link = Link()
    ha, hb = establish(link)
    link.drop = lambda d, s, t: True  # nothing arrives: the re-INVITE stays pending, then times out
    link.a.reinvite(ha, link.now, body=HOLD)
    with pytest.raises(LocalProtocolError, match="in progress"):
        link.a.reinvite(ha, link.now, body=HOLD)
    link.advance(link.now + 40.0)
    assert [e.status_code for e in link.of(A, ev.ReInviteAnswered)] == [408]
    h = link.a.invite("sip:bob@127.0.0.1:5061", B, link.now, body=b"v=0\r\n")
    with pytest.raises(LocalProtocolError, match="established"):
        link.a.reinvite(h, link.now, body=HOLD)
    with pytest.raises(LocalProtocolError, match="established"):
        link.a.request(h, "INFO", link.now)


@pytest.mark.parametrize("method", ["INFO", "REFER", "NOTIFY"])
def test_in_dialog_requests_reach_the_application_which_answers(method: str) -> None:
    link = Link()
    ha, hb = establish(link)
    rid = link.a.request(ha, method, link.now, headers=[("Event", "refer")], body=b"SIP/2.0 200 OK\r\n",
                         content_type="message/sipfrag;version=2.0")
    link.pump()
    req = link.of(B, ev.InDialogRequest)[-1]
    assert req.handle == hb and req.request.method == method and req.request.body == b"SIP/2.0 200 OK\r\n"
    assert req.request.headers.get("Event") == "refer"
    assert not link.of(A, ev.InDialogResponse)  # nothing answered yet: the application decides
    link.b.respond(hb, req.request, link.now, 202 if method == "REFER" else 200, headers=[("X-Note", "ok")])
    link.pump()
    got = link.of(A, ev.InDialogResponse)
    assert [(e.request_id, e.method, e.status_code) for e in got] == [(rid, method, 202 if method == "REFER" else 200)]
    assert got[0].response is not None and got[0].response.headers.get("X-Note") == "ok"
    with pytest.raises(LocalProtocolError, match="waiting"):
        link.b.respond(hb, req.request, link.now, 200)  # once only


def test_a_retransmitted_request_is_answered_from_its_transaction() -> None:
    link = Link()
    ha, hb = establish(link)
    link.a.request(ha, "INFO", link.now, body=b"Signal=5\r\n", content_type="application/dtmf-relay")
    link.pump()
    info = [d for d, s, _ in link.wire if s == A and d.startswith(b"INFO")][-1]
    req = link.of(B, ev.InDialogRequest)[-1]
    link.b.respond(hb, req.request, link.now, 200)
    link.pump()
    before = link.sent(b"SIP/2.0 200", B)
    link.b.receive_datagram(info, A, link.now)  # the same INFO again (our 200 was lost, say)
    link.pump()
    assert link.sent(b"SIP/2.0 200", B) == before + 1 and len(link.of(B, ev.InDialogRequest)) == 1


def test_an_unanswered_request_times_out_with_408_and_a_call_that_ends_answers_its_leftovers() -> None:
    link = Link()
    ha, hb = establish(link)
    link.drop = lambda d, s, t: s == A and d.startswith(b"NOTIFY")
    link.a.request(ha, "NOTIFY", link.now)
    link.advance(link.now + 40.0)
    assert [e.status_code for e in link.of(A, ev.InDialogResponse)] == [408]
    link.drop = lambda d, s, t: False
    link.a.request(ha, "REFER", link.now, headers=[("Refer-To", "<sip:c@127.0.0.1>")])
    link.pump()
    assert link.of(B, ev.InDialogRequest)  # B never answers it, then hangs up
    link.b.bye(hb, link.now)
    link.pump()
    assert link.of(A, ev.InDialogResponse)[-1].status_code == 481


def test_request_refuses_methods_with_their_own_api() -> None:
    link = Link()
    ha, _ = establish(link)
    for method in ("INVITE", "BYE", "ACK", "CANCEL", "PRACK", "bad method", ""):
        with pytest.raises(ValueError):
            link.a.request(ha, method, link.now)


def test_allow_lists_info_refer_notify_and_out_of_dialog_refer_and_notify_are_refused() -> None:
    assert {"INFO", "REFER", "NOTIFY"} <= set(ALLOWED_METHODS)
    link = Link()
    ha, hb = establish(link)
    invite = [d for d, s, _ in link.wire if s == A and d.startswith(b"INVITE")][0]
    assert b"INFO, REFER, NOTIFY" in invite
    for method, code in (("REFER", 603), ("NOTIFY", 481)):
        raw = (f"{method} sip:bob@127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{method}\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\n"
               f"Call-ID: out-{method}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n").encode()
        link.b.receive_datagram(raw, A, link.now)
        answer = parse_message(link.b.datagrams_to_send(link.now)[-1][0])
        assert answer.status_code == code  # type: ignore[union-attr]


def test_a_redirect_reports_its_contacts() -> None:
    link = Link()
    h = link.a.invite("sip:bob@127.0.0.1:5061", B, link.now, body=b"v=0\r\n")
    link.pump()
    incoming = link.of(B, ev.IncomingCall)[-1]
    link.b.reject(incoming.handle, link.now, status_code=302,
                  headers=[("Contact", "<sip:carol@127.0.0.1:5070>"), ("Contact", "<sip:dave@127.0.0.1:5071>")])
    link.pump()
    failed = link.of(A, ev.CallFailed)[-1]
    assert failed.handle == h and failed.status_code == 302
    assert failed.contacts == ("<sip:carol@127.0.0.1:5070>", "<sip:dave@127.0.0.1:5071>")


@pytest.mark.parametrize("body, expected", [
    (b"SIP/2.0 100 Trying\r\n", (100, "Trying")),
    (b"SIP/2.0 200 OK\r\nContact: <sip:c@h>\r\n", (200, "OK")),
    (b"SIP/2.0 486 Busy Here", (486, "Busy Here")),
    (b"SIP/2.0 603\r\n", (603, "")),
])
def test_sipfrag_status_lines(body: bytes, expected: tuple) -> None:  # type: ignore[type-arg]
    assert parse_sipfrag(body) == expected
    assert parse_sipfrag(make_sipfrag(*expected)) == expected


@pytest.mark.parametrize("body, why", [
    (b"", "empty"), (b"\r\n", "empty"), (b"INVITE sip:x SIP/2.0\r\n", "SIP/2.0 status line"),
    (b"SIP/2.0 2000 OK", "not 100-699"), (b"SIP/2.0 099 X", "not 100-699"), (b"SIP/2.0 abc OK", "not 100-699"),
    (b"SIP/2.0 200 \xff\xfe", "UTF-8"), (b"SIP/2.0 200 " + b"x" * 600, "too long"),
])
def test_sipfrag_garbage_is_a_specific_error(body: bytes, why: str) -> None:
    with pytest.raises(SipParseError, match=why):
        parse_sipfrag(body)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_sipfrag_parses_or_raises_sip_parse_error(body: bytes) -> None:
    try:
        code, reason = parse_sipfrag(body)
    except SipParseError:
        return
    assert 100 <= code <= 699 and "\n" not in reason


def test_make_sipfrag_refuses_bad_values() -> None:
    with pytest.raises(ValueError):
        make_sipfrag(99, "x")
    with pytest.raises(ValueError):
        make_sipfrag(200, "O\r\nK")
