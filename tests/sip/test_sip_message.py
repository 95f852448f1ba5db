"""SIP message parsing and serialisation (RFC 3261 §7, §18.3, §20, §25), limits and fuzzing.

The torture cases are our own, written in the spirit of RFC 4475 (not copied from it).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.errors import SipParseError
from pyvoip_fast.sip.message import (
    Headers,
    MessageLimits,
    SipRequest,
    SipResponse,
    Via,
    make_response,
    parse_for_error_response,
    parse_message,
)

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def invite(extra: bytes = b"", body: bytes = SDP, length: object = None) -> bytes:
    cl = len(body) if length is None else length
    return (
        b"INVITE sip:bob@127.0.0.1:5061 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK74bf9;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: Alice <sip:alice@127.0.0.1:5060>;tag=9fxced76sl\r\n"
        b"To: Bob <sip:bob@127.0.0.1:5061>\r\n"
        b"Call-ID: 3848276298220188511@127.0.0.1\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Contact: <sip:alice@127.0.0.1:5060>\r\n"
        b"Content-Type: application/sdp\r\n" + extra + b"Content-Length: " + str(cl).encode() + b"\r\n\r\n" + body
    )


def test_parse_invite() -> None:
    msg = parse_message(invite())
    assert isinstance(msg, SipRequest)
    assert msg.method == "INVITE" and str(msg.uri) == "sip:bob@127.0.0.1:5061"
    assert msg.call_id == "3848276298220188511@127.0.0.1" and msg.cseq == (1, "INVITE")
    assert msg.from_.tag == "9fxced76sl" and msg.from_.display_name == "Alice" and msg.to.tag is None
    assert msg.top_via.branch == "z9hG4bK74bf9" and msg.top_via.param("rport") == ""
    assert msg.top_via.sent_by == ("127.0.0.1", 5060)
    assert msg.content_type == "application/sdp" and msg.body == SDP
    assert msg.contact is not None and str(msg.contact.uri) == "sip:alice@127.0.0.1:5060"


def test_serialize_round_trip_and_content_length() -> None:
    msg = parse_message(invite())
    data = msg.serialize()
    again = parse_message(data)
    assert again.serialize() == data and again.headers == msg.headers and again.body == msg.body
    msg.body = b"x"
    assert b"Content-Length: 1\r\n\r\nx" in msg.serialize()


def test_compact_forms_case_and_repeated_lines() -> None:
    data = (
        b"OPTIONS sip:bob@b.example SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n"
        b"VIA: SIP/2.0/UDP p1.example;branch=z9hG4bK2, SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bK3\r\n"
        b"f: <sip:a@a.example>;tag=1\r\nt: <sip:bob@b.example>\r\ni: abc\r\ncseq: 9 OPTIONS\r\n"
        b"m: <sip:a@a.example>\r\nk: timer, 100rel\r\ns: hi\r\nl: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert msg.call_id == "abc" and msg.cseq == (9, "OPTIONS")
    assert [v.host for v in msg.vias] == ["a.example", "p1.example", "2001:db8::9"]
    assert msg.vias[2].port == 5070
    assert msg.headers.get_all("supported") == ["timer", "100rel"]
    assert msg.headers.get("SUBJECT") == "hi" and "Contact" in msg.headers
    assert b"Call-ID: abc\r\n" in msg.serialize()


def test_folding_and_whitespace() -> None:
    data = invite(b"Subject: I know you're there,\r\n   pick up the phone\r\n\tand talk to me!\r\nX-Spaces   :  v  \r\n")
    msg = parse_message(data)
    assert msg.headers.get("Subject") == "I know you're there, pick up the phone and talk to me!"
    assert msg.headers.get("x-spaces") == "v"


def test_bare_lf_and_leading_crlf_are_tolerated() -> None:
    msg = parse_message(b"\r\n\r\n" + invite().replace(b"\r\n", b"\n").replace(SDP.replace(b"\r\n", b"\n"), SDP))
    assert msg.cseq == (1, "INVITE")


def test_content_length_extra_bytes_dropped_and_absent_means_rest() -> None:
    msg = parse_message(invite(body=SDP + b"garbage", length=len(SDP)))
    assert msg.body == SDP
    no_length = invite().replace(b"Content-Length: %d\r\n" % len(SDP), b"")
    assert parse_message(no_length).body == SDP


def test_response() -> None:
    req = parse_message(invite())
    assert isinstance(req, SipRequest)
    resp = make_response(req, 180, to_tag="abc", headers=[("Contact", "<sip:bob@127.0.0.1:5061>")])
    parsed = parse_message(resp.serialize())
    assert isinstance(parsed, SipResponse)
    assert (parsed.status_code, parsed.reason) == (180, "Ringing") and parsed.to.tag == "abc"
    assert parsed.headers.get_lines("Via") == req.headers.get_lines("Via")
    assert make_response(req, 100, to_tag="x").to.tag is None  # never a tag on 100
    assert parse_message(b"SIP/2.0 200 \r\n" + resp.serialize().split(b"\r\n", 1)[1]).reason == ""


@pytest.mark.parametrize(
    "data, message, hint",
    [
        (b"", "empty", 400),
        (b"\r\n\r\n", "empty", 400),
        (invite().replace(b"\r\n\r\n", b"\r\n"), "blank line", 400),
        (invite().replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1), "unsupported SIP version", 505),
        (invite().replace(b"INVITE sip:bob@127.0.0.1:5061", b"INVITE http://x"), "scheme", 416),
        (invite().replace(b"INVITE sip:", b"INVITE  sip:"), "request line", 400),
        (invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), "does not match", 400),
        (invite().replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE"), "bad CSeq", 400),
        (invite().replace(b"CSeq: 1 INVITE", b"CSeq: 4294967296 INVITE"), "below 2**31", 400),
        (invite().replace(b"Call-ID: 3848276298220188511@127.0.0.1\r\n", b""), "missing Call-ID", 400),
        (invite().replace(b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK74bf9;rport\r\n", b""), "missing Via", 400),
        (invite(b"To: <sip:x@y>\r\n"), "more than one To", 400),
        (invite(length=len(SDP) + 10), "body shorter", 400),
        (invite(length="abc"), "bad Content-Length", 400),
        (invite(b"Content-Length: 1\r\n"), "conflicting", 400),
        (invite().replace(b"Max-Forwards: 70", b"Max-Forwards: many"), "Max-Forwards", 400),
        (invite(b"Bad Header: x\r\n"), "bad header name", 400),
        (invite(b"NoColon\r\n"), "without a colon", 400),
        (invite().replace(b"From: Alice <sip:alice@127.0.0.1:5060>", b"From: Alice <sip:alice@"), "unterminated", 400),
        (invite().replace(b"Via: SIP/2.0/UDP 127.0.0.1:5060", b"Via: SIP/2.0/UDP"), "Via", 400),
        (invite(b"X: \xff\xfe\r\n"), "UTF-8", 400),
        (invite(b"X: a\x00b\r\n"), "NUL", 400),
        (b"SIP/2.0 99 Low\r\n\r\n", "status code", 400),
        (b" INVITE sip:a@b SIP/2.0\r\n\r\n", "continuation", 400),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed(data: bytes, message: str, hint: int) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert message in str(info.value)
    assert info.value.status_hint == hint


def test_limits() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(invite(), MessageLimits(max_size=100))
    assert info.value.status_hint == 513
    with pytest.raises(SipParseError, match="header fields"):
        parse_message(invite(), MessageLimits(max_headers=5))
    with pytest.raises(SipParseError, match="longer than"):
        parse_message(invite(b"X-Long: " + b"a" * 200 + b"\r\n"), MessageLimits(max_line_length=100))
    with pytest.raises(SipParseError) as info:
        parse_message(invite(), MessageLimits(max_body=10))
    assert info.value.status_hint == 513
    with pytest.raises(ValueError):
        MessageLimits(max_size=0)


def test_salvage_for_400() -> None:
    broken = invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE")
    req = parse_for_error_response(broken)
    assert req is not None and req.method == "INVITE" and req.call_id == "3848276298220188511@127.0.0.1"
    resp = make_response(req, 400, to_tag="t")
    assert parse_message(resp.serialize()).status_code == 400  # a well-formed response
    assert parse_for_error_response(b"garbage") is None
    assert parse_for_error_response(b"SIP/2.0 200 OK\r\n\r\n") is None
    assert parse_for_error_response(invite().replace(b"INVITE sip", b"ACK sip", 1)) is None
    assert parse_for_error_response(invite().replace(b"Call-ID: ", b"X-Call: ")) is None
    assert parse_for_error_response(invite().replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE")) is None


def test_headers_api() -> None:
    h = Headers([("v", "a"), ("Contact", "<sip:a@b>, <sip:c@d>")])
    h.add("contact", "<sip:e@f>")
    assert h.get_all("m") == ["<sip:a@b>", "<sip:c@d>", "<sip:e@f>"]
    h.set("CONTACT", "<sip:z@z>")
    assert h.get_lines("Contact") == ["<sip:z@z>"] and len(h) == 2
    h.remove("via")
    assert "Via" not in h and h.get("Via", "none") == "none"
    with pytest.raises(ValueError):
        h.add("X", "a\r\nInjected: yes")
    assert Via.parse("SIP / 2.0 / UDP host;branch=z9hG4bKx").host == "host"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        parse_message(data)
    except SipParseError:
        pass
    parse_for_error_response(data)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_fuzz_mutated_invite(data: st.DataObject) -> None:
    base = bytearray(invite())
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(base) - 1))
        base[pos] = data.draw(st.sampled_from([0, 9, 10, 13, 32, 34, 44, 58, 59, 60, 62, 64, 255]))
    cut = data.draw(st.integers(0, len(base)))
    blob = bytes(base[:cut])
    try:
        msg = parse_message(blob)
    except SipParseError:
        parse_for_error_response(blob)
        return
    assert parse_message(msg.serialize()).serialize() == msg.serialize()
