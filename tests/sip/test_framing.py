"""Stream framing (``sip/framing.py``): messages cut by Content-Length from any split, keep-alives, bad streams."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.sip.framing import PING, PONG, SipFramingError, StreamFramer, sent_transport
from pyvoip_fast.sip.message import parse_message

INVITE = (b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
          b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
          b"Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n")
OK = (b"SIP/2.0 200 OK\r\nv: SIP/2.0/TLS 127.0.0.1:5071;branch=z9hG4bK2\r\nFrom: <sip:a@h>;tag=1\r\n"
      b"To: <sip:b@h>;tag=2\r\nCall-ID: y\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n")


def test_two_messages_and_keepalives_in_one_read() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n" + INVITE + b"\r\n" + OK) == [PING, INVITE, PONG, OK]
    assert framer.pending == 0
    assert parse_message(INVITE).body == b"v=0\r\n"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_any_split_gives_the_same_messages(cuts: list) -> None:
    stream = INVITE + OK + b"\r\n\r\n" + INVITE
    framer = StreamFramer()
    out = []
    i = 0
    for n in cuts:
        out += framer.feed(stream[i:i + n])
        i += n
    out += framer.feed(stream[i:])
    # a ping cut between its two CRLFs reads as two pongs (harmless: a pong needs no answer)
    assert (out.count(PING), out.count(PONG)) in ((1, 0), (0, 2))
    assert [o for o in out if isinstance(o, bytes)] == [INVITE, OK, INVITE]


@pytest.mark.parametrize("data, message", [
    (b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n", "without Content-Length"),
    (b"OPTIONS sip:x SIP/2.0\r\nContent-Length: abc\r\n\r\n", "bad Content-Length"),
    (b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "conflicting"),
    (b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n", "exceeds the limit"),
    (b"OPTIONS sip:x SIP/2.0\r\n" + b"X-Long: " + b"a" * 20000, "no end of the header"),
])
def test_broken_streams_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(SipFramingError, match=message):
        StreamFramer().feed(data)


def test_sent_transport_reads_the_top_via() -> None:
    assert sent_transport(INVITE) == "TCP"
    assert sent_transport(OK) == "TLS"
    assert sent_transport(b"\r\n\r\n") is None
    assert sent_transport(b"BYE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=1\r\nVia: SIP/2.0/TCP g\r\n\r\n") == "UDP"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_never_raises_anything_but_a_framing_error(data: bytes) -> None:
    framer = StreamFramer(max_header=256, max_body=256)
    try:
        for item in framer.feed(data):
            assert isinstance(item, (bytes, str))
    except SipFramingError:
        pass
