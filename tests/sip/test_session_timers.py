"""UPDATE (RFC 3311) and session timers (RFC 4028) on two sans-IO endpoints joined in memory, and the header
parsers. Time is passed in: a 90-second session runs in microseconds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from test_sip_endpoint import A, B, OFFER, Link, establish
from pyvoip_fast.errors import LocalProtocolError, SipParseError
from pyvoip_fast.sip import events as ev
from pyvoip_fast.sip.endpoint import CallState
from pyvoip_fast.sip.message import parse_message
from pyvoip_fast.sip.session_timer import SessionExpires, SessionTimer, expiry_margin, parse_min_se

NEW = b"v=0\r\no=- 1 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4010 RTP/AVP 0\r\n"


def _short(link: Link, seconds: int = 90) -> None:
    link.a.session_expires = seconds
    link.b.session_expires = seconds


def _sent(link: Link, prefix: bytes, src: tuple) -> list:  # type: ignore[type-arg]
    return [parse_message(d) for d, s, _ in link.wire if s == src and d.startswith(prefix)]


def test_the_2xx_grants_the_interval_and_names_the_caller_as_refresher() -> None:
    link = Link()
    _short(link)
    establish(link)
    invite = _sent(link, b"INVITE", A)[0]
    assert invite.headers.get("Session-Expires") == "90" and invite.headers.get("Min-SE") == "90"
    ok = _sent(link, b"SIP/2.0 200", B)[0]
    assert ok.headers.get("Session-Expires") == "90;refresher=uac"
    assert "timer" in (ok.headers.get("Require") or "")


def test_the_refresher_refreshes_with_update_at_half_the_interval_and_the_call_lives_on() -> None:
    link = Link()
    _short(link)
    ha, hb = establish(link)
    start = link.now
    link.advance(start + 44.0)
    assert not _sent(link, b"UPDATE", A)
    link.advance(start + 46.0)
    updates = _sent(link, b"UPDATE", A)
    assert len(updates) == 1 and not updates[0].body
    assert updates[0].headers.get("Session-Expires") == "90;refresher=uac" and updates[0].contact is not None
    link.advance(start + 600.0)  # ten minutes: refreshed every 45 s, never expired
    assert len(_sent(link, b"UPDATE", A)) >= 12
    assert link.a.call_state(ha) is CallState.CONFIRMED and link.b.call_state(hb) is CallState.CONFIRMED
    assert not link.of(A, ev.UpdateAnswered)  # refreshes are the endpoint's own business
    assert not link.of(B, ev.UpdateReceived)  # an UPDATE without a body is answered by the endpoint


def test_the_refresher_uses_reinvite_when_the_peer_does_not_allow_update() -> None:
    link = Link()
    _short(link)
    ha, hb = establish(link)
    link.a._calls[ha].peer_allow = ("INVITE", "ACK", "BYE")
    link.advance(link.now + 46.0)
    assert not _sent(link, b"UPDATE", A)
    reinvites = [m for m in _sent(link, b"INVITE", A) if m.cseq[0] > 1]
    assert reinvites and reinvites[0].body == OFFER  # our last description again
    assert link.of(B, ev.ReInviteReceived)


def test_no_refresh_ends_the_call_with_bye_before_the_interval_ends() -> None:
    link = Link()
    _short(link)
    ha, hb = establish(link)
    start = link.now
    link.drop = lambda d, s, t: d.startswith(b"UPDATE") or d.startswith(b"INVITE")  # the refreshes are lost
    link.advance(start + 100.0)
    ended_b = link.of(B, ev.CallEnded)
    assert [e.reason for e in ended_b] == ["session expired"]
    assert any(s == B for d, s, _ in link.wire if d.startswith(b"BYE"))  # the non-refresher hung up
    assert link.b.call_state(hb) in (CallState.ENDED, None)
    assert [e.reason for e in link.of(A, ev.CallEnded)][:1] in (["remote hangup"], ["session expired"])


def test_the_non_refresher_hangs_up_at_the_interval_less_a_third() -> None:
    link = Link()
    _short(link)
    ha, hb = establish(link)
    start = link.now
    link.a._calls[ha].timer = None  # the refresher forgot its duty
    link.advance(start + 59.0)
    assert not link.of(B, ev.CallEnded)
    link.advance(start + 61.0)  # 90 - min(32, 90 / 3) = 60 s
    assert [e.reason for e in link.of(B, ev.CallEnded)] == ["session expired"]
    assert [e.reason for e in link.of(A, ev.CallEnded)] == ["remote hangup"]


def test_422_below_our_min_se_and_the_caller_retries_with_it() -> None:
    link = Link()
    link.a.session_expires = 90
    link.b.min_se = 300
    ha, hb = establish(link)
    responses = [d.split(b"\r\n", 1)[0] for d, s, _ in link.wire if s == B and d.startswith(b"SIP/2.0 4")]
    assert responses == [b"SIP/2.0 422 Session Interval Too Small"]
    invites = _sent(link, b"INVITE", A)
    assert [m.headers.get("Session-Expires") for m in invites] == ["90", "300"]
    assert invites[1].cseq[0] == invites[0].cseq[0] + 1 and invites[1].call_id == invites[0].call_id
    assert link.a.call_state(ha) is CallState.CONFIRMED
    assert _sent(link, b"SIP/2.0 200", B)[0].headers.get("Session-Expires") == "300;refresher=uac"


def test_no_session_timer_when_the_caller_asks_for_none() -> None:
    link = Link()
    link.a.session_expires = None
    establish(link)
    assert _sent(link, b"INVITE", A)[0].headers.get("Session-Expires") is None
    assert _sent(link, b"SIP/2.0 200", B)[0].headers.get("Session-Expires") is None
    link.advance(link.now + 4000.0)
    assert not _sent(link, b"UPDATE", A) and not link.of(B, ev.CallEnded)


def test_update_with_an_offer_in_a_confirmed_dialog() -> None:
    link = Link()
    link.a.session_expires = None
    ha, hb = establish(link)
    link.a.update(ha, link.now, body=NEW)
    with pytest.raises(LocalProtocolError):
        link.a.update(ha, link.now, body=NEW)  # one at a time
    link.pump()
    got = link.of(B, ev.UpdateReceived)
    assert len(got) == 1 and got[0].body == NEW
    link.b.answer_update(hb, link.now, body=b"v=0\r\nanswer\r\n")
    link.pump()
    answered = link.of(A, ev.UpdateAnswered)
    assert [(e.status_code, e.body) for e in answered] == [(200, b"v=0\r\nanswer\r\n")]
    with pytest.raises(LocalProtocolError):
        link.b.answer_update(hb, link.now)  # answered already
    link.a.update(ha, link.now, body=NEW)
    link.pump()
    link.b.answer_update(hb, link.now, status_code=488)
    link.pump()
    assert [e.status_code for e in link.of(A, ev.UpdateAnswered)] == [200, 488]
    assert link.a.call_state(ha) is CallState.CONFIRMED


def test_update_in_the_early_dialog_after_a_reliable_183() -> None:
    link = Link()
    ha = link.a.invite("sip:bob@127.0.0.1:5061", B, link.now, body=OFFER)
    link.pump()
    hb = link.of(B, ev.IncomingCall)[-1].handle
    link.b.ring(hb, link.now, status_code=183, body=b"v=0\r\nearly\r\n", reliable=True)
    link.pump()
    link.a.update(ha, link.now, body=NEW)
    link.pump()
    assert link.of(B, ev.UpdateReceived)[0].body == NEW
    link.b.answer_update(hb, link.now, body=b"v=0\r\nearly2\r\n")
    link.pump()
    assert link.of(A, ev.UpdateAnswered)[0].body == b"v=0\r\nearly2\r\n"
    link.b.answer(hb, link.now, body=b"v=0\r\nearly2\r\n")
    link.pump()
    assert link.a.call_state(ha) is CallState.CONFIRMED


def test_update_offer_crossing_ours_gets_491_and_update_outside_a_call_481() -> None:
    link = Link()
    link.a.session_expires = None
    ha, hb = establish(link)
    link.a.update(ha, link.now, body=NEW)
    link.b.update(hb, link.now, body=NEW)
    link.pump()
    assert [e.status_code for e in link.of(A, ev.UpdateAnswered)] == [491]
    assert [e.status_code for e in link.of(B, ev.UpdateAnswered)] == [491]
    stray = (b"UPDATE sip:bob@127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKst\r\n"
             b"From: <sip:x@127.0.0.1>;tag=s1\r\nTo: <sip:bob@127.0.0.1>;tag=nope\r\nCall-ID: stray@x\r\n"
             b"CSeq: 5 UPDATE\r\nContent-Length: 0\r\n\r\n")
    link.b.receive_datagram(stray, A, link.now)
    assert any(d.startswith(b"SIP/2.0 481") for d, _ in link.b.datagrams_to_send(link.now))


def test_an_unanswered_update_gets_500_and_the_call_goes_on() -> None:
    link = Link()
    link.a.session_expires = None
    ha, hb = establish(link)
    link.a.update(ha, link.now, body=NEW)
    link.advance(link.now + 40.0)
    assert [e.status_code for e in link.of(A, ev.UpdateAnswered)] in ([500], [408])
    assert link.a.call_state(ha) is CallState.CONFIRMED


def test_options_answer_lists_allow_supported_accept() -> None:
    link = Link()
    raw = (b"OPTIONS sip:bob@127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKop\r\n"
           b"From: <sip:x@127.0.0.1>;tag=o1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: op@x\r\nCSeq: 1 OPTIONS\r\n"
           b"Content-Length: 0\r\n\r\n")
    link.b.options_sdp = lambda: NEW
    link.b.receive_datagram(raw, A, link.now)
    out = parse_message([d for d, _ in link.b.datagrams_to_send(link.now)][0])
    assert out.status_code == 200  # type: ignore[union-attr]
    assert out.headers.get("Allow") == "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, PRACK, UPDATE"
    assert out.headers.get("Supported") == "100rel, timer" and out.headers.get("Accept") == "application/sdp"
    assert out.body == NEW and out.content_type == "application/sdp"


def test_require_of_an_unknown_extension_gets_420_naming_only_it() -> None:
    link = Link()
    raw = (b"INVITE sip:bob@127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKrq\r\n"
           b"From: <sip:x@127.0.0.1>;tag=r1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: rq@x\r\nCSeq: 1 INVITE\r\n"
           b"Require: 100rel, timer, foo\r\nContent-Length: 0\r\n\r\n")
    link.b.receive_datagram(raw, A, link.now)
    out = parse_message([d for d, _ in link.b.datagrams_to_send(link.now)][-1])
    assert out.status_code == 420 and out.headers.get("Unsupported") == "foo"  # type: ignore[union-attr]


def test_session_expires_and_min_se_parsers() -> None:
    assert SessionExpires.parse("1800") == SessionExpires(1800)
    assert SessionExpires.parse(" 90 ; refresher=UAS ") == SessionExpires(90, "uas")
    assert str(SessionExpires(90, "uac")) == "90;refresher=uac"
    assert parse_min_se("90;x=1") == 90
    for bad in ("", "abc", "-5", "1800;refresher=proxy", "99999999999"):
        with pytest.raises(SipParseError):
            SessionExpires.parse(bad)
    with pytest.raises(SipParseError):
        parse_min_se("x")
    assert expiry_margin(90) == 30 and expiry_margin(1800) == 32
    timer = SessionTimer(90, True, 0.0)
    assert timer.next_deadline() == 45.0 and timer.expires_at == 60.0
    assert timer.header(we_are_uac=True) == "90;refresher=uac" and timer.header(we_are_uac=False) == "90;refresher=uas"


@given(st.text(max_size=40))
def test_session_expires_parser_never_raises_anything_but_parse_errors(text: str) -> None:
    try:
        value = SessionExpires.parse(text)
    except SipParseError:
        return
    assert value.interval >= 0 and value.refresher in (None, "uac", "uas")
