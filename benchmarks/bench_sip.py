"""SIP/SDP benchmarks: parse and serialise a realistic INVITE (12 headers + SDP), parse the SDP, and a full
transaction round trip (INVITE/100/180/200/ACK, then BYE/200) between two sans-IO endpoints in memory.

Run: ``python -m pytest benchmarks/bench_sip.py --benchmark-only``; CI runs it with ``--benchmark-disable``.
"""

from __future__ import annotations

from typing import Dict, Tuple

from pyvoip_fast.sip.sdp import SessionDescription, make_answer, make_offer
from pyvoip_fast.sip import events as ev
from pyvoip_fast.sip.endpoint import SipEndpoint
from pyvoip_fast.sip.message import parse_message

SDP = make_offer("192.168.1.20", 40000, session_id=1234567890).serialize()
INVITE = (
    b"INVITE sip:bob@192.168.1.30:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-524287-1---77ba7d84e9c5a5f4;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"Contact: <sip:alice@192.168.1.20:5060;transport=udp>\r\n"
    b"To: \"Bob\" <sip:bob@192.168.1.30:5060>\r\n"
    b"From: \"Alice\" <sip:alice@192.168.1.20:5060>;tag=6e1b8d2f\r\n"
    b"Call-ID: 93c5fbb0b3b6a8b1YjY3NWZhZDQ2ZDFmNzcxOWJiZjcyMTY2ZjBkMWZkNzQ\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n"
    b"Supported: replaces, norefersub, extended-refer, timer, X-cisco-serviceuri\r\n"
    b"User-Agent: Z 5.4.12 v2.10.12.5\r\n"
    b"Allow-Events: presence, kpml, talk\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


def test_parse_invite(benchmark) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "sip message"

    @benchmark
    def _run() -> None:
        msg = parse_message(INVITE)
        assert msg.headers.get("CSeq") == "1 INVITE"


def test_parse_invite_and_read_fields(benchmark) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "sip message"

    @benchmark
    def _run() -> None:
        msg = parse_message(INVITE)
        assert msg.from_.tag and msg.top_via.branch and msg.cseq[0] == 1 and msg.call_id


def test_serialize_invite(benchmark) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "sip message"
    msg = parse_message(INVITE)
    result = benchmark(msg.serialize)
    assert parse_message(result).body == SDP


def test_parse_sdp(benchmark) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "sdp"
    result = benchmark(SessionDescription.parse, SDP)
    assert result.first_audio() is not None


def test_sdp_offer_answer(benchmark) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "sdp"
    offer = SessionDescription.parse(SDP)
    result = benchmark(lambda: make_answer(offer, "192.168.1.30", 50000).serialize())
    assert b"m=audio 50000" in result


def _call_round_trip() -> Tuple[int, int]:
    a_addr, b_addr = ("192.168.1.20", 5060), ("192.168.1.30", 5060)
    a = SipEndpoint(a_addr)
    b = SipEndpoint(b_addr)
    eps: Dict[Tuple[str, int], SipEndpoint] = {a_addr: a, b_addr: b}
    now = 0.0
    datagrams = 0

    def pump() -> None:
        nonlocal datagrams
        moved = True
        while moved:
            moved = False
            for src, ep in eps.items():
                for data, dst in ep.datagrams_to_send(now):
                    moved = True
                    datagrams += 1
                    eps[dst].receive_datagram(data, src, now)

    handle = a.invite("sip:bob@192.168.1.30:5060", b_addr, now, body=SDP)
    pump()
    incoming = b.next_event()
    assert isinstance(incoming, ev.IncomingCall)
    b.ring(incoming.handle, now)
    b.answer(incoming.handle, now, body=SDP)
    pump()
    a.bye(handle, now)
    pump()
    return datagrams, handle


def test_transaction_round_trip(benchmark) -> None:  # type: ignore[no-untyped-def]
    """One complete call set-up and tear-down between two endpoints: 7 datagrams, 3 transactions."""
    benchmark.group = "sip endpoint"
    datagrams, _ = benchmark(_call_round_trip)
    assert datagrams == 7  # INVITE, 100, 180, 200, ACK, BYE, 200; nothing retransmitted
