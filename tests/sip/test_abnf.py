"""The grammars' DIGIT is ASCII only: a parser that took ``str.isdigit()`` for it let ``"¹"`` through to ``int()``,
which raised a bare ``ValueError`` instead of the parser's own error (found by hypothesis on Session-Expires)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.errors import SdpParseError, SipParseError
from pyvoip_fast.sip.abnf import is_digits
from pyvoip_fast.sip.message import parse_message
from pyvoip_fast.sip.session_description import SessionDescription
from pyvoip_fast.sip.session_timer import SessionExpires
from pyvoip_fast.sip.sipfrag import parse_sipfrag
from pyvoip_fast.sip.uri import parse_uri

#: characters ``str.isdigit()`` accepts that ``int()`` refuses, and other scripts' digits ``int()`` would read
NOT_DIGITS = ["¹", "²", "³", "⁰", "①", "٣", "७", "１"]


def test_only_ascii_digits_are_digits() -> None:
    assert is_digits("0") and is_digits("0123456789")
    for bad in ["", " 1", "1 ", "-1", "+1", "1.0", "1_000", *NOT_DIGITS, "1" + "¹"]:
        assert not is_digits(bad), bad


@pytest.mark.parametrize("digit", NOT_DIGITS)
def test_every_parser_refuses_other_digits_with_its_own_error(digit: str) -> None:
    with pytest.raises(SipParseError):
        SessionExpires.parse(digit)
    with pytest.raises(SipParseError):
        parse_uri(f"sip:alice@example.com:5{digit}")
    with pytest.raises(SipParseError):
        parse_sipfrag(f"SIP/2.0 2{digit}0 OK".encode())
    request = ("INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n"
               "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: c1\r\n"
               f"CSeq: 1{digit} INVITE\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(SipParseError):
        parse_message(request.encode())
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio 400{digit} RTP/AVP 0\r\n")
    with pytest.raises(SdpParseError):
        SessionDescription.parse(sdp)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["1", "0", *NOT_DIGITS, " ", ";", "x"]), max_size=8).map("".join))
def test_session_expires_with_any_digits_parses_or_refuses(text: str) -> None:
    try:
        value = SessionExpires.parse(text)
    except SipParseError:
        return
    assert value.interval >= 0 and text.strip().split(";")[0].strip().isascii()
