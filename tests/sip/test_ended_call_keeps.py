"""What an ended call leaves behind for RFC 6026's 32 s, and that it still absorbs every late retransmission.

A listener at 150 set-ups/s holds about 4,800 ended calls at once (timer B after each end; timers J and L on
their transactions). They keep the dialog's identity, our ACK, the INVITE's CSeq number and each response's bytes,
and no request: a request with its headers and URIs was most of an ended call's memory and of what the garbage
collector's older generations scanned.
"""

from __future__ import annotations

import gc
import re
from typing import Iterable, List

import pytest
from test_sip_endpoint import A, B, Link, establish

from pyvoip_fast.errors import LocalProtocolError
from pyvoip_fast.sip import events as ev
from pyvoip_fast.sip.endpoint import CallState, SipEndpoint
from pyvoip_fast.sip.message import SipRequest


_CONTAINERS = (list, tuple, dict, set, frozenset)


def _requests_reachable(roots: Iterable[object], stop: object) -> List[SipRequest]:
    """Every ``SipRequest`` reachable from ``roots`` through the SIP layer's own objects and plain containers (not
    through functions, methods, loggers or the endpoint ``stop``: those lead to the rest of the process)."""
    seen = {id(stop)}
    found: List[SipRequest] = []
    todo = list(roots)
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        assert len(seen) < 50_000, "the walk left the endpoint's own objects"
        if isinstance(obj, SipRequest):
            found.append(obj)
        if isinstance(obj, _CONTAINERS) or type(obj).__module__.startswith("pyvoip_fast.sip"):
            todo.extend(o for o in gc.get_referents(obj) if not isinstance(o, type))
    return found


def _kept(ep: SipEndpoint) -> List[object]:
    return [*ep._calls.values(), *ep._server_tx.values()]


def _answers_bye(data: bytes) -> bool:
    return data.startswith(b"SIP/2.0 200") and re.search(rb"\r\nCSeq: \d+ BYE\r\n", data) is not None


def _first(link: Link, prefix: bytes, src: object) -> bytes:
    return next(d for d, s, _ in link.wire if s == src and d.startswith(prefix))


@pytest.mark.parametrize("hangs_up", ["caller", "callee"])
def test_an_ended_call_keeps_no_request_and_absorbs_late_retransmissions(hangs_up: str) -> None:
    link = Link()
    ha, hb = establish(link)
    live = _requests_reachable(_kept(link.b), link.b)
    assert any(r.method == "INVITE" for r in live)  # a call that is up keeps its INVITE (answers, refreshes)
    (link.a.bye(ha, link.now) if hangs_up == "caller" else link.b.bye(hb, link.now))
    link.pump()
    assert link.a.call_state(ha) is CallState.ENDED and link.b.call_state(hb) is CallState.ENDED
    bye_from, bye_to = (A, link.b) if hangs_up == "caller" else (B, link.a)
    # answered transactions wait for retransmissions: the INVITE's (timer L) and the BYE's (timer J)
    assert {tx.method for tx in link.b._server_tx.values()} >= {"INVITE"}
    assert {tx.method for tx in bye_to._server_tx.values()} >= {"BYE"}
    for ep in (link.a, link.b):
        assert _requests_reachable(_kept(ep), ep) == []
        for tx in ep._server_tx.values():
            assert tx.method in ("INVITE", "BYE")
            with pytest.raises(LocalProtocolError, match="no longer kept"):
                tx.request
    assert (link.b.live_calls, link.b.kept_calls) == (0, 1)  # ended, kept for timer B
    callee = link.b._calls[hb]
    assert callee.invite_cseq == 1
    with pytest.raises(LocalProtocolError, match="has ended"):
        callee.invite

    # late copies of every message of the call, 10 s after its end
    link.advance(link.now + 10.0)
    invite, ok = _first(link, b"INVITE", A), _first(link, b"SIP/2.0 200", B)
    events_b, sent_b = len(link.events[B]), len(link.wire)
    link.b.receive_datagram(invite, A, link.now)  # the same branch: the INVITE transaction absorbs it
    link.pump()
    assert len(link.events[B]) == events_b and len(link.wire) == sent_b
    other_branch = invite.replace(b";branch=z9hG4bK", b";branch=z9hG4bKx", 1)  # RFC 2543-style: the call's CSeq
    link.b.receive_datagram(other_branch, A, link.now)
    link.pump()
    assert link.of(B, ev.IncomingCall)[1:] == []
    acks = link.sent(b"ACK", A)
    link.a.receive_datagram(ok, B, link.now)  # a late 2xx: ACKed again from the kept bytes
    link.pump()
    assert link.sent(b"ACK", A) == acks + 1 and len(link.of(A, ev.CallAnswered)) == 1
    bye = _first(link, b"BYE", bye_from)
    answers = [d for d, s, _ in link.wire if s != bye_from and _answers_bye(d)]
    bye_to.receive_datagram(bye, bye_from, link.now)  # the BYE's transaction answers with the same bytes
    link.pump()
    again = [d for d, s, _ in link.wire if s != bye_from and _answers_bye(d)]
    assert len(answers) == 1 and again == answers * 2

    link.advance(link.now + 100.0)
    assert link.a.get_timer() is None and link.b.get_timer() is None
    assert link.a.call_state(ha) is None and link.b.call_state(hb) is None
    assert link.a.kept_calls == link.b.kept_calls == 0
