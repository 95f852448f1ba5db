"""SIP URIs and name-addr / addr-spec parsing (RFC 3261 §19.1, §20.10, §25.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.errors import SipParseError
from pyvoip_fast.sip.uri import AbsoluteUri, NameAddress, SipUri, parse_uri


@pytest.mark.parametrize(
    "text, user, host, port, params",
    [
        ("sip:alice@atlanta.example.com", "alice", "atlanta.example.com", None, ()),
        ("sip:alice:secret@192.0.2.4:5070;transport=udp", "alice", "192.0.2.4", 5070, (("transport", "udp"),)),
        ("sips:[2001:db8::1]:5061;lr", None, "2001:db8::1", 5061, (("lr", None),)),
        ("sip:+1-212-555-1212;npdi@gw.example.com;user=phone", "+1-212-555-1212;npdi", "gw.example.com", None,
         (("user", "phone"),)),
        ("sip:127.0.0.1:5060", None, "127.0.0.1", 5060, ()),
    ],
)
def test_parse_sip_uri(text: str, user: object, host: str, port: object, params: tuple) -> None:
    uri = SipUri.parse(text)
    assert (uri.user, uri.host, uri.port, uri.params) == (user, host, port, params)
    assert str(uri) == text
    assert SipUri.parse(str(uri)) == uri


def test_headers_password_and_equality() -> None:
    uri = SipUri.parse("sip:bob:pw@example.com?subject=project%20x&priority=urgent")
    assert uri.password == "pw" and uri.headers == "subject=project%20x&priority=urgent"
    assert SipUri.parse("SIP:bob@EXAMPLE.com") == SipUri.parse("sip:bob@example.com")
    assert SipUri.parse("sip:bob@example.com") != SipUri.parse("sip:bob@example.com:5070")
    assert SipUri("::1", 5060).host_port == "[::1]:5060"


@pytest.mark.parametrize(
    "text, message",
    [
        ("alice@example.com", "scheme"),
        ("sip:", "empty host"),
        ("sip:bob@", "empty host"),
        ("sip:bob@host:99999", "bad port"),
        ("sip:bob@host:5x", "bad port"),
        ("sip:bob@[::1", "unterminated"),
        ("sip:bob@[zz::1]", "IPv6"),
        ("sip:bob@300.1.1.1", "IPv4"),
        ("sip:bob@exa mple.com", "space"),
        ("sip:bob@host;=x", "bad parameter"),
        ("sip:@host", "empty user"),
        ("sip:bob@ho_st", "bad host"),
    ],
)
def test_bad_uris(text: str, message: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert message in str(info.value)


def test_other_schemes_are_opaque() -> None:
    uri = parse_uri("tel:+1-201-555-0123")
    assert isinstance(uri, AbsoluteUri) and str(uri) == "tel:+1-201-555-0123"
    with pytest.raises(SipParseError) as info:
        SipUri.parse("tel:+1")
    assert info.value.status_hint == 416


@pytest.mark.parametrize(
    "text, display, uri, tag",
    [
        ('"Alice \\"A\\" Liddell" <sip:alice@a.example>;tag=1928', 'Alice "A" Liddell', "sip:alice@a.example", "1928"),
        ("Bob <sip:bob@b.example:5070;transport=udp>;tag=a6c85cf", "Bob", "sip:bob@b.example:5070;transport=udp",
         "a6c85cf"),
        ("<sip:carol@c.example>", None, "sip:carol@c.example", None),
        ("sip:dave@d.example;tag=xyz", None, "sip:dave@d.example", "xyz"),
        ("  The Operator <sip:op@[::1]> ;tag=1 ", "The Operator", "sip:op@[::1]", "1"),
    ],
)
def test_name_addr_forms(text: str, display: object, uri: str, tag: object) -> None:
    addr = NameAddress.parse(text)
    assert addr.display_name == display and str(addr.uri) == uri and addr.tag == tag
    again = NameAddress.parse(str(addr))
    assert again.display_name == display and again.tag == tag and str(again.uri) == uri


def test_with_param_replaces() -> None:
    addr = NameAddress.parse("<sip:a@b>;tag=1").with_param("tag", "2")
    assert str(addr) == "<sip:a@b>;tag=2"


@pytest.mark.parametrize(
    "text", ['"unterminated <sip:a@b>', "Bob <sip:a@b", "<sip:a@b> junk", "sip:a@b?x=y", '"x" sip:a@b', ""]
)
def test_bad_name_addr(text: str) -> None:
    with pytest.raises(SipParseError):
        NameAddress.parse(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_uri_and_address(text: str) -> None:
    for parser in (parse_uri, NameAddress.parse):
        try:
            parser(text)
        except SipParseError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(alphabet="0123456789.", max_size=20),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-:[]", max_size=30),
    st.sampled_from(["127.0.0.1", "256.1.1.1", "1.2.3", "[::1]", "[::1", "[zz::]", "example.com", "-a.b", "a..b"]),
))
def test_a_host_checked_again_gets_the_same_answer(host: str) -> None:
    """The checked hosts are remembered: asking again gives what the checks give, and a bad host is refused every
    time (a refusal is never remembered)."""
    from pyvoip_fast.sip import uri

    def answer() -> object:
        try:
            return uri._check_host(host, "test")
        except SipParseError as exc:
            return ("refused", str(exc))

    first = answer()
    assert answer() == first
    try:
        direct: object = uri._check_host_text(host, "test")
    except SipParseError as exc:
        direct = ("refused", str(exc))
    assert first == direct
    assert (host in uri._VALID_HOSTS) == (not isinstance(first, tuple))


def test_the_remembered_hosts_stay_bounded() -> None:
    from pyvoip_fast.sip import uri

    for i in range(3 * uri._VALID_HOSTS_MAX):
        assert parse_uri(f"sip:alice@host{i}.example.com").host == f"host{i}.example.com"
        assert len(uri._VALID_HOSTS) <= uri._VALID_HOSTS_MAX
    assert parse_uri("sip:alice@[::1]:5060").host == "::1"
    with pytest.raises(SipParseError, match="bad IPv4"):
        parse_uri("sip:alice@256.0.0.1")
    with pytest.raises(SipParseError, match="bad IPv4"):
        parse_uri("sip:alice@256.0.0.1")
