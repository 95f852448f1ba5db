"""The admission policy (``sip/admission.py``) and the endpoint that applies it, without sockets.

Allow-lists answer 403, process limits 503 with Retry-After (OPTIONS still answered), a source far above any
legitimate rate or one that keeps sending after being refused is dropped silently, and every refusal is counted
and logged once per source and interval.
"""

from __future__ import annotations

import logging

import pytest

from pyvoip_fast.sip import events as ev
from pyvoip_fast.sip.admission import Admission, parse_networks
from pyvoip_fast.sip.endpoint import SipEndpoint
from pyvoip_fast.sip.message import SipResponse, parse_message
from pyvoip_fast.sip.transaction import TimerConfig

ME = ("127.0.0.1", 5060)


def invite(n: int, port: int = 7000, method: str = "INVITE") -> bytes:
    return (f"{method} sip:pyvoip@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:{port};branch=z9hG4bKf{n}\r\n"
            f"From: <sip:x@10.0.0.1>;tag={n}\r\nTo: <sip:pyvoip@127.0.0.1>\r\nCall-ID: flood-{n}\r\n"
            f"CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def responses(ep: SipEndpoint) -> list:
    return [m for d, _ in ep.datagrams_to_send(0) if isinstance(m := parse_message(d), SipResponse)]


def test_networks_and_allow_list() -> None:
    nets = parse_networks(["10.0.0.0/8", "192.0.2.7", "::1"])
    assert [str(n) for n in nets] == ["10.0.0.0/8", "192.0.2.7/32", "::1/128"]
    adm = Admission(allow=nets)
    assert adm.allowed("10.1.2.3") and adm.allowed("::ffff:10.9.9.9") and adm.allowed("::1")
    assert not adm.allowed("192.0.2.8") and not adm.allowed("garbage")
    with pytest.raises(ValueError, match="not an IP address"):
        parse_networks(["example.com"])
    with pytest.raises(ValueError):
        Admission(max_calls=0)


def test_token_bucket_drops_a_source_far_above_any_legitimate_rate() -> None:
    adm = Admission(rate=10, burst=5)
    verdicts = [adm.check("10.0.0.1", 0.0, method="INVITE") for _ in range(8)]
    assert [v.drop for v in verdicts] == [False] * 5 + [True] * 3
    assert adm.check("10.0.0.2", 0.0, method="INVITE").key == ""  # another source has its own bucket
    assert adm.check("10.0.0.1", 0.1, method="INVITE").key == ""  # refilled: 10/s
    assert adm.counters["rate"] == 3


def test_limits_answer_503_and_a_source_that_keeps_going_is_silenced() -> None:
    adm = Admission(max_setup=2, refused_limit=3, refused_window=10.0)
    assert adm.check("10.0.0.1", 0.0, method="INVITE", setup=1).key == ""
    v = adm.check("10.0.0.1", 0.0, method="INVITE", setup=2)
    assert (v.status, v.retry_after, v.key) == (503, 5, "busy")
    assert adm.check("10.0.0.1", 0.0, method="OPTIONS", setup=99).key == ""  # OPTIONS always answered
    for _ in range(3):
        adm.check("10.0.0.1", 1.0, method="INVITE", setup=2)
    silenced = adm.check("10.0.0.1", 2.0, method="OPTIONS")
    assert silenced.drop and silenced.key == "silenced"
    assert adm.check("10.0.0.1", 12.5, method="OPTIONS").key == ""  # the window passed
    assert adm.snapshot()["busy"] == 4


def test_log_once_per_source_and_interval_and_bounded_tables() -> None:
    adm = Admission(log_interval=10.0, max_sources=3)
    assert adm.should_log("10.0.0.1", "busy", 0.0) and not adm.should_log("10.0.0.1", "busy", 5.0)
    assert adm.should_log("10.0.0.1", "rate", 5.0) and adm.should_log("10.0.0.1", "busy", 10.0)
    for i in range(10):
        adm.check(f"10.0.1.{i}", 0.0, method="INVITE")
    assert len(adm._sources) == 3


def test_endpoint_answers_a_flood_with_503_beyond_its_set_up_limit(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.admission")
    caplog.set_level(logging.WARNING, logger="test.admission")
    ep = SipEndpoint(ME, timers=TimerConfig(t1=0.05), admission=Admission(max_setup=20, refused_limit=50), logger=log)
    for n in range(300):
        ep.receive_datagram(invite(n, 7000 + n % 4), ("10.0.0.1", 7000 + n % 4), 0.001 * n)
    incoming = [e for e in iter(ep.next_event, None) if isinstance(e, ev.IncomingCall)]
    assert len(incoming) == 20
    got = responses(ep)
    busy = [r for r in got if r.status_code == 503]
    # every INVITE got an answer: 20 calls ringing (100 Trying), the others 503 with Retry-After, until the
    # source kept going after 50 refusals and was silenced
    assert len([r for r in got if r.status_code == 100]) == 20
    assert len(busy) == 51 and all(r.headers.get("Retry-After") == "5" for r in busy)
    assert ep.admission.snapshot() == {"forbidden": 0, "busy": 51, "rate": 0, "silenced": 229, "unauthenticated": 0,
                                       "media_address": 0, "overload": 0}
    assert caplog.text.count("over the call or transaction limits") == 1
    assert caplog.text.count("still sending after being refused") == 1
    assert len(ep._server_tx) == 20  # the refusals were stateless


def test_endpoint_allow_list_is_403_and_options_stay_answered() -> None:
    ep = SipEndpoint(ME, admission=Admission(allow=["192.0.2.0/24"], max_calls=1))
    ep.receive_datagram(invite(1), ("10.0.0.1", 7000), 0.0)
    ep.receive_datagram(invite(2, method="OPTIONS"), ("10.0.0.1", 7000), 0.0)
    assert [r.status_code for r in responses(ep)] == [403, 403]
    ep.receive_datagram(invite(3), ("192.0.2.5", 7000), 0.0)
    ep.receive_datagram(invite(4), ("192.0.2.5", 7000), 0.0)
    ep.receive_datagram(invite(5, method="OPTIONS"), ("192.0.2.5", 7000), 0.0)
    assert [r.status_code for r in responses(ep)] == [100, 503, 200]


def test_answered_transactions_do_not_count_against_the_source() -> None:
    """A load generator's answered transactions linger for timer J or L to absorb retransmissions; only those still
    waiting for our final response count against ``max_transactions_per_source``."""
    ep = SipEndpoint(ME, timers=TimerConfig(t1=0.05), admission=Admission(max_transactions_per_source=5))
    for n in range(40):  # BYEs outside any call: each answered 481 at once, its transaction kept for timer J
        ep.receive_datagram(invite(n, 7000, method="BYE"), ("10.0.0.1", 7000), 0.01 * n)
    assert len(ep._server_tx) == 40
    assert [r.status_code for r in responses(ep)] == [481] * 40
    for n in range(40, 46):  # INVITEs ringing: they wait for the application's answer
        ep.receive_datagram(invite(n), ("10.0.0.1", 7000), 1.0)
    statuses = [r.status_code for r in responses(ep)]
    assert statuses == [100] * 5 + [503]  # the sixth is over the limit of five open transactions
    assert ep.admission.counters["busy"] == 1


def test_a_call_that_is_up_can_always_be_hung_up_even_by_a_silenced_source() -> None:
    ep = SipEndpoint(ME, timers=TimerConfig(t1=0.05), admission=Admission(max_setup=1, refused_limit=3))
    src = ("10.0.0.1", 7000)
    ep.receive_datagram(invite(1), src, 0.0)
    call = next(e for e in iter(ep.next_event, None) if isinstance(e, ev.IncomingCall))
    ep.answer(call.handle, 0.0)
    ok = [r for r in responses(ep) if r.status_code == 200][0]
    ack = (f"ACK sip:pyvoip@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:7000;branch=z9hG4bKack1\r\n"
           f"From: <sip:x@10.0.0.1>;tag=1\r\nTo: {ok.headers.get('To')}\r\nCall-ID: flood-1\r\n"
           f"CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()
    ep.receive_datagram(ack, src, 0.1)
    for n in range(2, 12):  # new calls beyond max_calls ... until the source is silenced
        ep.receive_datagram(invite(n), src, 0.2)
    assert ep.admission.counters["silenced"] > 0
    assert ep.admission.check("10.0.0.1", 0.3, method="OPTIONS").drop  # silenced for anything new
    responses(ep)
    bye = (f"BYE sip:pyvoip@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:7000;branch=z9hG4bKbye1\r\n"
           f"From: <sip:x@10.0.0.1>;tag=1\r\nTo: {ok.headers.get('To')}\r\nCall-ID: flood-1\r\n"
           f"CSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()
    ep.receive_datagram(bye, src, 0.4)
    assert [r.status_code for r in responses(ep)] == [200]  # the call that was up ends normally
