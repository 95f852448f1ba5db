"""Two sans-IO endpoints joined by an in-memory link (h11 ConnectionPair / aioquic roundtrip style).

Time is passed in: every retransmission and timeout path runs instantly and deterministically.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple, Type, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.errors import LocalProtocolError
from pyvoip_fast.sip.sdp import make_offer
from pyvoip_fast.sip import events as ev
from pyvoip_fast.sip.endpoint import CallState, SipEndpoint
from pyvoip_fast.sip.message import SipResponse, parse_message
from pyvoip_fast.sip.transaction import TimerConfig

A = ("127.0.0.1", 5060)
B = ("127.0.0.1", 5061)
OFFER = make_offer("127.0.0.1", 4000, session_id=1).serialize()
E = TypeVar("E", bound=ev.Event)


class Link:
    """Delivers datagrams between endpoints; ``drop`` decides per datagram (data, src, dst) whether it is lost."""

    def __init__(self, timers: Optional[TimerConfig] = None) -> None:
        self.a = SipEndpoint(A, timers=timers)
        self.b = SipEndpoint(B, user="bob", timers=timers)
        self.eps: Dict[Tuple[str, int], SipEndpoint] = {A: self.a, B: self.b}
        self.now = 0.0
        self.drop: Callable[[bytes, Tuple[str, int], Tuple[str, int]], bool] = lambda d, s, t: False
        self.wire: List[Tuple[bytes, Tuple[str, int], Tuple[str, int]]] = []
        self.events: Dict[Tuple[str, int], List[ev.Event]] = {A: [], B: []}

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for src, ep in self.eps.items():
                for data, dst in ep.datagrams_to_send(self.now):
                    moved = True
                    self.wire.append((data, src, dst))
                    if not self.drop(data, src, dst) and dst in self.eps:
                        self.eps[dst].receive_datagram(data, src, self.now)
        for addr, ep in self.eps.items():
            while (e := ep.next_event()) is not None:
                self.events[addr].append(e)

    def advance(self, until: float) -> None:
        """Fire every timer of both endpoints up to ``until``."""
        self.pump()
        while True:
            deadlines = [d for d in (self.a.get_timer(), self.b.get_timer()) if d is not None and d <= until]
            if not deadlines:
                break
            self.now = max(self.now, min(deadlines))
            for ep in self.eps.values():
                t = ep.get_timer()
                if t is not None and t <= self.now:
                    ep.handle_timer(self.now)
            self.pump()
        self.now = max(self.now, until)

    def of(self, addr: Tuple[str, int], kind: Type[E]) -> List[E]:
        return [e for e in self.events[addr] if isinstance(e, kind)]

    def sent(self, prefix: bytes, src: Tuple[str, int]) -> int:
        return sum(1 for d, s, _ in self.wire if s == src and d.startswith(prefix))


def establish(link: Link) -> Tuple[int, int]:
    h = link.a.invite("sip:bob@127.0.0.1:5061", B, link.now, body=OFFER)
    link.pump()
    incoming = link.of(B, ev.IncomingCall)[-1]
    link.b.ring(incoming.handle, link.now)
    link.b.answer(incoming.handle, link.now, body=b"v=0\r\n")
    link.pump()
    return h, incoming.handle


def test_basic_call_both_sides() -> None:
    link = Link()
    ha, hb = establish(link)
    incoming = link.of(B, ev.IncomingCall)[0]
    assert incoming.body == OFFER and incoming.content_type == "application/sdp"
    assert incoming.remote_addr == A and incoming.from_uri == "sip:pyvoip@127.0.0.1:5060"
    assert [e.status_code for e in link.of(A, ev.CallProgress)] == [100, 180]
    assert link.of(A, ev.CallAnswered)[0].body == b"v=0\r\n"
    assert link.of(B, ev.CallConfirmed) == [ev.CallConfirmed(handle=hb)]
    assert link.a.call_state(ha) is CallState.CONFIRMED and link.b.call_state(hb) is CallState.CONFIRMED
    info_a, info_b = link.a.call_info(ha), link.b.call_info(hb)
    assert info_a["call_id"] == info_b["call_id"]
    assert (info_a["local_tag"], info_a["remote_tag"]) == (info_b["remote_tag"], info_b["local_tag"])
    link.b.bye(hb, link.now)
    link.pump()
    assert link.of(A, ev.CallEnded)[0].reason == "remote hangup"
    assert link.of(B, ev.CallEnded)[0] == ev.CallEnded(handle=hb, reason="local hangup", status_code=200)
    link.advance(100.0)
    assert link.a.get_timer() is None and link.b.get_timer() is None  # nothing left running
    assert link.a.call_state(ha) is None


def test_lost_invite_is_retransmitted_and_duplicates_make_one_call() -> None:
    link = Link()
    lost = []

    def drop(data: bytes, src: object, dst: object) -> bool:
        if data.startswith(b"INVITE") and not lost:
            lost.append(data)
            return True
        return data.startswith(b"SIP/2.0 100")  # every 100 Trying lost: A keeps retransmitting

    link.drop = drop
    link.a.invite("sip:bob@127.0.0.1:5061", B, 0.0, body=OFFER)
    link.advance(0.5)
    assert len(lost) == 1 and len(link.of(B, ev.IncomingCall)) == 1
    link.advance(10.0)
    assert len(link.of(B, ev.IncomingCall)) == 1
    assert link.sent(b"INVITE", A) >= 3


def test_lost_200_is_retransmitted_until_ack_and_ack_resent() -> None:
    link = Link()
    state = {"ok_lost": 0}

    def drop(data: bytes, src: object, dst: object) -> bool:
        if data.startswith(b"SIP/2.0 200") and state["ok_lost"] < 2:
            state["ok_lost"] += 1
            return True
        return False

    link.drop = drop
    ha, hb = establish(link)
    assert link.of(B, ev.CallConfirmed) == []
    link.advance(0.5)
    link.advance(1.5)
    assert link.of(B, ev.CallConfirmed) == [ev.CallConfirmed(handle=hb)]
    assert len(link.of(A, ev.CallAnswered)) == 1
    # a late duplicate 200 (network duplication) gets another ACK, no second CallAnswered
    ok = next(d for d, s, _ in link.wire if s == B and d.startswith(b"SIP/2.0 200"))
    acks = link.sent(b"ACK", A)
    link.a.receive_datagram(ok, B, link.now)
    link.pump()
    assert link.sent(b"ACK", A) == acks + 1 and len(link.of(A, ev.CallAnswered)) == 1


def test_no_ack_gives_408_and_bye() -> None:
    link = Link()
    link.drop = lambda d, s, t: d.startswith(b"ACK")
    ha, hb = establish(link)
    link.advance(64 * 0.5 + 1)
    failed = link.of(B, ev.CallFailed)
    assert failed == [ev.CallFailed(handle=hb, status_code=408, reason="No ACK received")]
    assert link.sent(b"SIP/2.0 200", B) >= 7  # T1, 2T1, 4T1, then T2-capped retransmissions
    assert link.sent(b"BYE", B) >= 1 and link.of(A, ev.CallEnded)[0].reason == "remote hangup"


def test_timer_b_when_nobody_answers() -> None:
    link = Link(TimerConfig(t1=0.05))
    h = link.a.invite("sip:x@127.0.0.1:9", ("127.0.0.1", 9), 0.0, body=OFFER)
    link.advance(10.0)
    assert link.of(A, ev.CallFailed) == [ev.CallFailed(handle=h, status_code=408, reason="Request Timeout")]
    assert link.sent(b"INVITE", A) == 7
    assert link.wire[-1][0].startswith(b"INVITE")


@pytest.mark.parametrize("code", [486, 503, 603])
def test_rejection_is_acked_and_reported(code: int) -> None:
    link = Link()
    h = link.a.invite("sip:bob@127.0.0.1:5061", B, 0.0, body=OFFER)
    link.pump()
    hb = link.of(B, ev.IncomingCall)[0].handle
    link.b.reject(hb, link.now, status_code=code)
    link.pump()
    failed = link.of(A, ev.CallFailed)[0]
    assert failed.handle == h and failed.status_code == code
    assert link.sent(b"ACK", A) == 1
    link.advance(40.0)
    assert link.b.get_timer() is None and link.sent(b"SIP/2.0 %d" % code, B) == 1  # ACK stopped timer G


def test_cancel_before_answer_gives_487() -> None:
    link = Link()
    h = link.a.invite("sip:bob@127.0.0.1:5061", B, 0.0, body=OFFER)
    link.pump()
    hb = link.of(B, ev.IncomingCall)[0].handle
    assert link.a.cancel(h, link.now)
    link.pump()
    assert link.of(B, ev.CallCancelled) == [ev.CallCancelled(handle=hb)]
    assert link.of(A, ev.CallFailed)[0].status_code == 487
    assert link.sent(b"SIP/2.0 200", B) == 1  # 200 to the CANCEL
    with pytest.raises(LocalProtocolError):
        link.b.answer(hb, link.now)


def test_cancel_waits_for_a_provisional() -> None:
    link = Link()
    link.drop = lambda d, s, t: d.startswith(b"SIP/2.0 100")
    h = link.a.invite("sip:bob@127.0.0.1:5061", B, 0.0, body=OFFER)
    link.pump()
    link.a.cancel(h, link.now)
    link.pump()
    assert link.sent(b"CANCEL", A) == 0
    link.b.ring(link.of(B, ev.IncomingCall)[0].handle, link.now)
    link.pump()
    assert link.sent(b"CANCEL", A) == 1 and link.of(A, ev.CallFailed)[0].status_code == 487


def test_answer_racing_cancel_is_acked_then_byed() -> None:
    link = Link()
    link.drop = lambda d, s, t: d.startswith(b"CANCEL")
    h = link.a.invite("sip:bob@127.0.0.1:5061", B, 0.0, body=OFFER)
    link.pump()
    hb = link.of(B, ev.IncomingCall)[0].handle
    link.a.cancel(h, link.now)
    link.b.answer(hb, link.now, body=b"v=0\r\n")
    link.pump()
    assert link.of(A, ev.CallFailed)[0].status_code == 487
    assert link.sent(b"ACK", A) == 1 and link.sent(b"BYE", A) == 1
    assert link.of(B, ev.CallEnded)[0].reason == "remote hangup"


def test_options_481_405_and_malformed() -> None:
    ep = SipEndpoint(B)

    def ask(data: bytes) -> SipResponse:
        ep.receive_datagram(data, A, 0.0)
        out = ep.datagrams_to_send(0.0)
        assert len(out) == 1 and out[0][1] == A
        msg = parse_message(out[0][0])
        assert isinstance(msg, SipResponse)
        return msg

    base = (b"%s sip:bob@127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK%s;rport\r\n"
            b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1:5061>%s\r\nCall-ID: x\r\nCSeq: 1 %s\r\n"
            b"Content-Length: 0\r\n\r\n")
    opt = ask(base % (b"OPTIONS", b"o", b"", b"OPTIONS"))
    assert opt.status_code == 200 and "INVITE" in (opt.headers.get("Allow") or "")
    assert opt.headers.get("Accept") == "application/sdp"
    assert opt.top_via.param("received") == "127.0.0.1" and opt.top_via.param("rport") == "5060"
    assert ask(base % (b"BYE", b"b", b";tag=nope", b"BYE")).status_code == 481
    assert ask(base % (b"CANCEL", b"c", b"", b"CANCEL")).status_code == 481
    assert ask(base % (b"SUBSCRIBE", b"s", b"", b"SUBSCRIBE")).status_code == 405
    bad = ask((base % (b"INVITE", b"i", b"", b"BYE")))  # CSeq method mismatch: readable enough for 400
    assert bad.status_code == 400
    # retransmission of the OPTIONS: the same 200 again from the server transaction, no new event
    events_before = []
    while (e := ep.next_event()) is not None:
        events_before.append(e)
    assert ask(base % (b"OPTIONS", b"o", b"", b"OPTIONS")).status_code == 200
    assert ep.next_event() is None
    assert any(isinstance(e, ev.MalformedMessage) and e.answered == 400 for e in events_before)
    ep.receive_datagram(b"\x00\xffgarbage", A, 0.0)
    assert ep.datagrams_to_send(0.0) == []
    dropped = ep.next_event()
    assert isinstance(dropped, ev.MalformedMessage) and dropped.answered is None
    ep.receive_datagram(b"\r\n\r\n", A, 0.0)  # keep-alive: ignored silently
    assert ep.next_event() is None and ep.datagrams_to_send(0.0) == []


def test_reinvite_hold_on_answering_side() -> None:
    link = Link()
    ha, hb = establish(link)
    # A puts B on hold with a re-INVITE built in its dialog (sans-IO access for the test)
    call = link.a._calls[ha]
    via = link.a._via()
    hold = make_offer("127.0.0.1", 4000, direction="sendonly", session_id=1).serialize()
    req = call.dialog.create_request("INVITE", via, contact=link.a._contact(), body=hold)
    link.b.receive_datagram(req.serialize(), A, link.now)
    link.pump()
    re = link.of(B, ev.ReInviteReceived)[0]
    assert re.handle == hb and b"a=sendonly" in re.body
    link.b.answer_reinvite(hb, link.now, body=b"v=0\r\na=recvonly\r\n")
    link.pump()
    ok = [d for d, s, _ in link.wire if s == B and d.startswith(b"SIP/2.0 200")][-1]
    assert b"CSeq: 2 INVITE" in ok and b"a=recvonly" in ok
    with pytest.raises(LocalProtocolError):
        link.b.answer_reinvite(hb, link.now)


def test_unknown_handles_and_wrong_states() -> None:
    ep = SipEndpoint(A)
    with pytest.raises(LocalProtocolError):
        ep.answer(42, 0.0)
    assert ep.bye(42, 0.0) is False
    with pytest.raises(ValueError):
        ep.ring(1, 0.0, status_code=200)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_endpoint_never_raises(data: bytes) -> None:
    ep = SipEndpoint(B)
    ep.receive_datagram(data, A, 0.0)
    ep.receive_datagram(b"INVITE sip:b@h SIP/2.0\r\n" + data, A, 0.0)
    for out, addr in ep.datagrams_to_send(0.0):
        assert addr == A and isinstance(parse_message(out), SipResponse)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), loss=st.floats(0.0, 0.4))
def test_calls_survive_random_loss(seed: int, loss: float) -> None:
    """With up to 40 % independent loss, a call either gets established on both sides or fails cleanly on
    both; never two calls, never a half-open call, and all timers end."""
    import random

    rng = random.Random(seed)
    link = Link()
    link.drop = lambda d, s, t: rng.random() < loss
    h = link.a.invite("sip:bob@127.0.0.1:5061", B, 0.0, body=OFFER)
    link.advance(1.0)
    _check_call_indexes(link)
    incoming = link.of(B, ev.IncomingCall)
    assert len(incoming) <= 1
    if incoming:
        link.b.answer(incoming[0].handle, link.now, body=b"v=0\r\n")
    link.advance(40.0)
    _check_call_indexes(link)
    answered = link.of(A, ev.CallAnswered)
    assert len(answered) <= 1
    if answered and link.of(B, ev.CallConfirmed) and not link.of(B, ev.CallFailed):
        link.a.bye(h, link.now)
    link.advance(200.0)
    assert link.a.get_timer() is None and link.b.get_timer() is None
    _check_call_indexes(link)


def _check_call_indexes(link: Link) -> None:
    """The Call-ID index and the tally by state say exactly what a scan of every call says."""
    from collections import Counter

    for ep in (link.a, link.b):
        by_id = Counter(c.dialog.call_id for c in ep._calls.values())
        assert {k: len(v) for k, v in ep._by_call_id.items()} == dict(by_id)
        assert all(c.handle in ep._calls for v in ep._by_call_id.values() for c in v)
        tally = Counter(c.state for c in ep._calls.values())
        assert {k: n for k, n in ep._state_counts.items() if n} == dict(tally)


def test_many_calls_are_found_by_call_id_and_counted_without_a_scan() -> None:
    """Fifty calls up at once, then hung up one by one: every BYE finds its own call, admission's tally follows
    each state change, and the ended calls leave the index when they are forgotten."""
    link = Link()
    handles = []
    for _ in range(50):
        handles.append(link.a.invite("sip:bob@127.0.0.1:5061", B, link.now, body=OFFER))
        link.pump()
    for inc in link.of(B, ev.IncomingCall):
        link.b.answer(inc.handle, link.now, body=b"v=0\r\n")
    link.advance(link.now + 1.0)
    assert link.b._state_counts[CallState.CONFIRMED] == 50 == link.a._state_counts[CallState.CONFIRMED]
    _check_call_indexes(link)
    for i, h in enumerate(handles[:20]):
        link.a.bye(h, link.now)
        link.advance(link.now + 0.1)
        assert link.b._state_counts[CallState.CONFIRMED] == 50 - i - 1
    _check_call_indexes(link)
    assert len(link.of(B, ev.CallEnded)) == 20
    link.advance(link.now + 100.0)  # the ended calls are purged; the thirty others stay up
    assert len(link.b._by_call_id) == 30 and link.b._state_counts[CallState.CONFIRMED] == 30
    _check_call_indexes(link)
