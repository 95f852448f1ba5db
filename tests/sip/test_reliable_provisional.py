"""Reliable provisional responses (RFC 3262) and early media signalling on two sans-IO endpoints joined in memory.

Time is passed in, so retransmissions at T1, 2·T1 ... and the 64·T1 give-up run instantly.
"""

from __future__ import annotations

import pytest

from test_sip_endpoint import A, B, OFFER, Link
from pyvoip_fast.errors import LocalProtocolError
from pyvoip_fast.sip import events as ev
from pyvoip_fast.sip.endpoint import CallState
from pyvoip_fast.sip.message import parse_message
from pyvoip_fast.sip.prack import parse_rack

ANSWER = b"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n"


def _incoming(link: Link) -> ev.IncomingCall:
    link.a.invite("sip:bob@127.0.0.1:5061", B, link.now, body=OFFER)
    link.pump()
    return link.of(B, ev.IncomingCall)[-1]


def _messages(link: Link, prefix: bytes, src: tuple) -> list:  # type: ignore[type-arg]
    return [parse_message(d) for d, s, _ in link.wire if s == src and d.startswith(prefix)]


def test_our_invite_says_supported_100rel_and_timer() -> None:
    link = Link()
    incoming = _incoming(link)
    supported = incoming.request.headers.get("Supported") or ""
    assert {t.strip() for t in supported.split(",")} == {"100rel", "timer"}


def test_reliable_183_with_sdp_is_pracked_and_reported_once() -> None:
    link = Link()
    incoming = _incoming(link)
    assert link.b.ring(incoming.handle, link.now, status_code=183, body=ANSWER, reliable=True) is True
    link.pump()
    progress = [e for e in link.of(A, ev.CallProgress) if e.status_code == 183]
    assert len(progress) == 1 and progress[0].reliable and progress[0].body == ANSWER
    assert progress[0].content_type == "application/sdp" and progress[0].to_tag
    sent = _messages(link, b"SIP/2.0 183", B)[0]
    assert sent.headers.get("Require") == "100rel" and int(sent.headers.get("RSeq")) >= 1
    pracks = _messages(link, b"PRACK", A)
    assert len(pracks) == 1
    rseq, cseq, method = parse_rack(pracks[0].headers.get("RAck"))  # type: ignore[misc]
    assert (rseq, cseq, method) == (int(sent.headers.get("RSeq")), 1, "INVITE")
    assert pracks[0].to.tag == sent.to.tag  # in the early dialog of that 183
    acked = link.of(B, ev.ProvisionalAcknowledged)
    assert len(acked) == 1 and acked[0].handle == incoming.handle
    assert link.sent(b"SIP/2.0 200", B) == 1  # the PRACK's 200
    # no retransmission after the PRACK
    link.advance(link.now + 10.0)
    assert link.sent(b"SIP/2.0 183", B) == 1
    link.b.answer(incoming.handle, link.now, body=ANSWER)
    link.pump()
    assert link.of(A, ev.CallAnswered) and link.b.call_state(incoming.handle) is CallState.CONFIRMED


def test_lost_prack_the_183_is_retransmitted_with_t1_doubling_and_the_retransmissions_are_not_reported() -> None:
    link = Link()
    incoming = _incoming(link)
    lost = {"n": 0}

    def drop(data: bytes, src: tuple, dst: tuple) -> bool:  # type: ignore[type-arg]
        if data.startswith(b"PRACK") and lost["n"] < 3:
            lost["n"] += 1
            return True
        return False

    link.drop = drop
    link.b.ring(incoming.handle, link.now, status_code=183, body=ANSWER, reliable=True)
    link.pump()
    t0 = link.now
    times = []
    for step in range(40):
        link.advance(t0 + (step + 1) * 0.25)
        count = link.sent(b"SIP/2.0 183", B)
        if count > len(times) + 1:
            times.append(link.now - t0)
    # the PRACK's own client transaction retransmits it too (T1 = 0.5 s), so the 183 stops once one gets through
    assert link.of(B, ev.ProvisionalAcknowledged)
    assert len([e for e in link.of(A, ev.CallProgress) if e.status_code == 183]) == 1
    assert times and times[0] == pytest.approx(0.5, abs=0.26)


def test_no_prack_at_all_rejects_the_invite_with_500_after_64_t1() -> None:
    link = Link()
    incoming = _incoming(link)
    link.drop = lambda d, s, t: d.startswith(b"PRACK")
    link.b.ring(incoming.handle, link.now, status_code=183, body=ANSWER, reliable=True)
    link.advance(link.now + 40.0)
    sent_183 = link.sent(b"SIP/2.0 183", B)
    assert 6 <= sent_183 <= 8  # 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5: doubling, no T2 cap
    failed = link.of(B, ev.CallFailed)
    assert [(e.status_code, e.reason) for e in failed] == [(500, "No PRACK Received")]
    assert [e.status_code for e in link.of(A, ev.CallFailed)] == [500]


def test_unreliable_when_the_caller_does_not_support_100rel_and_reliable_when_it_requires_it() -> None:
    link = Link()
    link.a.invite("sip:bob@127.0.0.1:5061", B, link.now, body=OFFER)
    link.a.datagrams_to_send(link.now)  # drop A's INVITE; send a hand-made one without Supported
    raw = (b"INVITE sip:bob@127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnr1\r\n"
           b"From: <sip:x@127.0.0.1>;tag=nr\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: nr1@x\r\nCSeq: 1 INVITE\r\n"
           b"Contact: <sip:x@127.0.0.1:5060>\r\nContent-Length: 0\r\n\r\n")
    link.b.receive_datagram(raw, A, link.now)
    handle = [e for e in iter(link.b.next_event, None) if isinstance(e, ev.IncomingCall)][0].handle
    assert link.b.ring(handle, link.now, status_code=183, body=ANSWER, reliable=True) is False
    out = [d for d, _ in link.b.datagrams_to_send(link.now) if d.startswith(b"SIP/2.0 183")]
    assert out and b"RSeq" not in out[0] and b"Require: 100rel" not in out[0]
    required = raw.replace(b"nr1@x", b"nr2@x").replace(b"tag=nr", b"tag=nr2").replace(
        b"branch=z9hG4bKnr1", b"branch=z9hG4bKnr2").replace(b"Content-Length", b"Require: 100rel\r\nContent-Length")
    link.b.receive_datagram(required, A, link.now)
    handle2 = [e for e in iter(link.b.next_event, None) if isinstance(e, ev.IncomingCall)][0].handle
    assert link.b.ring(handle2, link.now, status_code=180) is True  # required: reliable even when not asked
    out = [d for d, _ in link.b.datagrams_to_send(link.now) if d.startswith(b"SIP/2.0 180")]
    assert b"RSeq: " in out[0] and b"Require: 100rel" in out[0]


def test_a_second_reliable_1xx_waits_for_the_first_prack_and_prack_mismatch_gets_481() -> None:
    link = Link()
    incoming = _incoming(link)
    link.drop = lambda d, s, t: d.startswith(b"PRACK")
    link.b.ring(incoming.handle, link.now, status_code=180, reliable=True)
    link.b.ring(incoming.handle, link.now, status_code=183, body=ANSWER, reliable=True)
    link.pump()
    assert link.sent(b"SIP/2.0 183", B) == 0  # queued behind the unacknowledged 180
    link.drop = lambda d, s, t: False
    link.advance(link.now + 1.0)  # the PRACK's retransmission gets through; then the 183 goes and is PRACKed
    assert link.sent(b"SIP/2.0 183", B) >= 1
    assert len(link.of(B, ev.ProvisionalAcknowledged)) == 2
    rseqs = [int(m.headers.get("RSeq")) for m in _messages(link, b"SIP/2.0 18", B)]
    assert sorted(set(rseqs)) == [rseqs[0], rseqs[0] + 1]
    # a PRACK naming an RSeq we never sent
    prack = _messages(link, b"PRACK", A)[-1]
    bogus = prack.serialize().replace(prack.headers.get("RAck").encode(), b"99 1 INVITE").replace(
        b"branch=z9hG4bK", b"branch=z9hG4bKx")
    bogus = bogus.replace(f"CSeq: {prack.cseq[0]} PRACK".encode(), f"CSeq: {prack.cseq[0] + 5} PRACK".encode())
    link.b.receive_datagram(bogus, A, link.now)
    assert any(d.startswith(b"SIP/2.0 481") for d, _ in link.b.datagrams_to_send(link.now))


def test_a_final_response_stops_the_retransmission_and_ring_checks_its_input() -> None:
    link = Link()
    incoming = _incoming(link)
    link.drop = lambda d, s, t: d.startswith(b"PRACK")
    link.b.ring(incoming.handle, link.now, status_code=183, body=ANSWER, reliable=True)
    link.b.answer(incoming.handle, link.now, body=ANSWER)
    link.advance(link.now + 10.0)
    assert link.sent(b"SIP/2.0 183", B) == 1
    with pytest.raises(ValueError):
        link.b.ring(incoming.handle, link.now, status_code=200)
    with pytest.raises(LocalProtocolError):
        link.b.ring(incoming.handle, link.now, status_code=183)  # answered already


def test_out_of_order_and_retransmitted_reliable_1xx_are_dropped_by_the_caller() -> None:
    link = Link()
    incoming = _incoming(link)
    link.b.ring(incoming.handle, link.now, status_code=183, body=ANSWER, reliable=True)
    link.pump()
    first = [d for d, s, _ in link.wire if s == B and d.startswith(b"SIP/2.0 183")][0]
    link.a.receive_datagram(first, B, link.now)  # a retransmission: no new event, no new PRACK
    rseq = int(parse_message(first).headers.get("RSeq"))
    skipped = first.replace(f"RSeq: {rseq}".encode(), f"RSeq: {rseq + 2}".encode())
    link.a.receive_datagram(skipped, B, link.now)  # a gap in RSeq (§4): dropped
    link.pump()
    assert len([e for e in link.of(A, ev.CallProgress) if e.status_code == 183]) == 1
    assert link.sent(b"PRACK", A) == 1


def test_parse_rack() -> None:
    assert parse_rack("5 1 INVITE") == (5, 1, "INVITE")
    for bad in (None, "", "5 1", "a 1 INVITE", "5 b INVITE", "5 1 INVITE x", "99999999999 1 INVITE"):
        assert parse_rack(bad) is None


def test_offer_in_a_reliable_183_to_an_offerless_invite_is_answered_in_the_prack() -> None:
    link = Link()
    ha = link.a.invite("sip:bob@127.0.0.1:5061", B, link.now, late_offer=True)
    link.pump()
    hb = link.of(B, ev.IncomingCall)[-1].handle
    link.b.ring(hb, link.now, status_code=183, body=ANSWER, reliable=True)  # B's offer
    link.pump()
    progress = [e for e in link.of(A, ev.CallProgress) if e.status_code == 183][0]
    assert progress.reliable and progress.body == ANSWER
    assert link.sent(b"PRACK", A) == 0  # the PRACK waits for our answer
    with pytest.raises(LocalProtocolError):
        link.a.ack(ha, link.now, body=OFFER)  # no 2xx yet
    link.a.prack(ha, link.now, body=OFFER)
    with pytest.raises(LocalProtocolError):
        link.a.prack(ha, link.now, body=OFFER)  # once
    link.pump()
    acked = link.of(B, ev.ProvisionalAcknowledged)
    assert [(e.body, e.content_type) for e in acked] == [(OFFER, "application/sdp")]
    link.b.answer(hb, link.now)  # no SDP: the exchange is complete
    link.pump()
    assert link.of(A, ev.CallAnswered)[0].body == b""
    ack = [parse_message(d) for d, s, _ in link.wire if s == A and d.startswith(b"ACK")][0]
    assert ack.body == b""  # sent at once by the endpoint, no answer in it
    assert link.a.call_state(ha) is CallState.CONFIRMED and link.b.call_state(hb) is CallState.CONFIRMED


def test_forked_early_dialogs_the_one_that_answers_is_kept() -> None:
    link = Link()
    ha = link.a.invite("sip:bob@127.0.0.1:5061", B, link.now, body=OFFER)
    link.pump()
    incoming = link.of(B, ev.IncomingCall)[-1]
    link.b.ring(incoming.handle, link.now, status_code=183, body=ANSWER)
    link.pump()
    first = [d for d, s, _ in link.wire if s == B and d.startswith(b"SIP/2.0 183")][0]
    tag = parse_message(first).to.tag
    assert tag is not None
    # a second branch of a forking proxy answers the same INVITE with its own early dialog and SDP
    other = first.replace(f"tag={tag}".encode(), b"tag=forkB").replace(b"m=audio 4002", b"m=audio 4010")
    link.a.receive_datagram(other, B, link.now)
    link.pump()
    bodies = [e.body for e in link.of(A, ev.CallProgress) if e.status_code == 183]
    assert len(bodies) == 2 and {e.to_tag for e in link.of(A, ev.CallProgress) if e.status_code == 183} == {tag, "forkB"}
    link.b.answer(incoming.handle, link.now, body=ANSWER)  # the first branch answers
    link.pump()
    assert link.a.call_info(ha)["remote_tag"] == tag and link.a.call_state(ha) is CallState.CONFIRMED
