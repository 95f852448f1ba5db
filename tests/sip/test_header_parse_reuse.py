"""Parses that remember recent texts, and never answer with stale or shared values.

``parse_uri``, ``NameAddress.parse`` and ``Via.parse`` remember what recent texts held (a call's From, To, Contact
and Via come back in every message of the call, and are read many times from each): the same text again gives an
equal object of its own, a malformed text raises every time, and the answer is always the one a first parse gives.
A message's typed accessors (``from_``, ``to``, ``contact``, ``vias``, ``top_via``) follow its headers as they are
now.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.errors import SipParseError
from pyvoip_fast.sip.message import SipRequest, SipResponse, Via, make_response, parse_for_error_response, parse_message
from pyvoip_fast.sip import uri as uri_module
from pyvoip_fast.sip.uri import REMEMBERED_LENGTH, NameAddress, SipUri, parse_uri

# compact header forms (v, f, t, i, m, l), two Vias, a display name in quotes: what the accessors read, in the forms
# a peer may use
INVITE = (
    b"INVITE sip:dave@192.0.2.20:5080 SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bKfirst;rport\r\n"
    b"v: SIP/2.0/TCP [2001:db8::5]:5071;branch=z9hG4bKproxy\r\n"
    b"Max-Forwards: 69\r\n"
    b'f: "Carol C" <sip:carol@192.0.2.10:5070>;tag=c4r0l\r\n'
    b"t: <sip:dave@192.0.2.20:5080>\r\n"
    b"i: reuse-1@192.0.2.10\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"m: <sip:carol@192.0.2.10:5070;transport=udp>\r\n"
    b"l: 0\r\n\r\n"
)


def test_every_read_of_a_header_is_an_object_of_its_own() -> None:
    msg = parse_message(INVITE)
    assert msg.from_ is not msg.from_ and msg.to is not msg.to and msg.contact is not msg.contact
    assert msg.top_via is not msg.top_via and str(msg.top_via) == str(msg.vias[0])
    first = msg.from_
    first.params = ()
    assert msg.from_.tag == "c4r0l" and msg.to.tag is None
    assert [v.host for v in msg.vias] == ["192.0.2.10", "2001:db8::5"]


def test_each_read_of_the_vias_is_a_list_of_its_own() -> None:
    msg = parse_message(INVITE)
    first = msg.vias
    first.pop()
    first.append(Via("192.0.2.9", 5999))
    assert msg.vias is not first
    assert [v.host for v in msg.vias] == ["192.0.2.10", "2001:db8::5"]
    assert msg.top_via.branch == "z9hG4bKfirst"


def test_a_header_changed_after_a_read_is_parsed_again() -> None:
    msg = parse_message(INVITE)
    assert msg.from_.uri.user == "carol" and msg.to.tag is None and msg.contact is not None
    msg.headers.set("From", "<sip:carol@example.com>;tag=c1")
    msg.headers.set("To", str(msg.to.with_param("tag", "b2")))
    msg.headers.set("Contact", "*")
    assert msg.from_.uri.user == "carol" and msg.from_.tag == "c1"
    assert msg.to.tag == "b2"
    assert msg.contact is None
    msg.headers.set("Contact", "<sip:alice@192.0.2.1:5080>")
    assert msg.contact is not None and msg.contact.uri.port == 5080


def test_a_via_added_or_removed_after_a_read_is_seen() -> None:
    msg = parse_message(INVITE)
    assert len(msg.vias) == 2
    msg.headers.add("Via", "SIP/2.0/TCP 192.0.2.7:5090;branch=z9hG4bKlast")
    assert [v.transport for v in msg.vias] == ["UDP", "TCP", "TCP"]
    assert msg.top_via.host == "192.0.2.10"
    msg.headers.set("Via", "SIP/2.0/TLS 192.0.2.8;branch=z9hG4bKonly")
    assert [v.host for v in msg.vias] == ["192.0.2.8"] and msg.top_via.transport == "TLS"
    msg.headers.remove("Via")
    assert msg.vias == []
    with pytest.raises(SipParseError, match="missing Via"):
        msg.top_via


def test_a_header_made_malformed_after_a_good_read_is_an_error_not_the_old_value() -> None:
    msg = parse_message(INVITE)
    assert msg.from_.uri.user == "carol" and msg.top_via.host == "192.0.2.10"
    msg.headers.set("From", "Carol <sip:carol@192.0.2.10")  # unterminated <uri>
    with pytest.raises(SipParseError, match="unterminated"):
        msg.from_
    msg.headers.set("Via", "SIP/2.0/UDP")
    with pytest.raises(SipParseError):
        msg.top_via
    msg.headers.remove("From")
    with pytest.raises(SipParseError, match="missing From"):
        msg.from_


def test_messages_built_in_every_way_have_the_accessors() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, SipRequest)
    response = make_response(request, 180)
    assert response.from_.tag == "c4r0l" and response.top_via.branch == "z9hG4bKfirst"
    built = SipResponse(200)
    built.headers.add("To", "<sip:bob@example.com>;tag=t")
    assert built.to.tag == "t" and built.vias == [] and built.contact is None
    salvaged = parse_for_error_response(INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: 7 INVITE\r\nMax-Forwards: x"))
    assert salvaged is not None and salvaged.from_.tag == "c4r0l" and salvaged.top_via.host == "192.0.2.10"


ADDRESSES = st.sampled_from([
    "<sip:alice@127.0.0.1:5060>;tag=1", "Bob <sip:bob@example.com>", '"Carol Q" <sip:carol@[::1]:5070>;tag=x',
    "sip:dave@192.0.2.4", "<sip:erin@example.org;transport=tcp>;expires=60", "<<bad", "sip:", "",
])
VIAS = st.sampled_from([
    "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa", "SIP/2.0/TCP [::1]:5062;branch=z9hG4bKb;rport",
    "SIP/2.0/UDP host.example.com;branch=z9hG4bKc;received=192.0.2.1", "SIP/2.0/UDP", "bogus",
])
EDITS = st.lists(st.one_of(
    st.tuples(st.sampled_from(["set", "add"]), st.sampled_from(["From", "To", "Contact"]), ADDRESSES),
    st.tuples(st.sampled_from(["set", "add"]), st.just("Via"), VIAS),
    st.tuples(st.just("remove"), st.sampled_from(["From", "To", "Contact", "Via"]), st.just("")),
    st.tuples(st.just("read"), st.sampled_from(["from_", "to", "contact", "vias", "top_via"]), st.just("")),
), max_size=25)


def _fresh(msg: SipRequest, accessor: str) -> object:
    """What the accessor says, from a parse of the header as it is now (no message involved)."""
    headers = msg.headers
    if accessor in ("from_", "to"):
        value = headers.get("From" if accessor == "from_" else "To")
        if value is None:
            raise SipParseError("missing")
        return str(NameAddress.parse(value))
    if accessor == "contact":
        values = headers.get_all("Contact")
        return None if not values or values[0].strip() == "*" else str(NameAddress.parse(values[0]))
    values = headers.get_all("Via")
    if accessor == "vias":
        return [str(Via.parse(v)) for v in values]
    if not values:
        raise SipParseError("missing")
    return str(Via.parse(values[0]))  # the top one alone


def _read(msg: SipRequest, accessor: str) -> object:
    value = getattr(msg, accessor)
    if accessor == "vias":
        return [str(v) for v in value]
    return None if value is None else str(value)


@settings(max_examples=300, deadline=None)
@given(EDITS)
def test_the_accessors_always_say_what_a_fresh_parse_of_the_headers_says(edits: list) -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, SipRequest)
    for op, name, value in edits + [("read", a, "") for a in ("from_", "to", "contact", "vias", "top_via")]:
        if op == "set":
            msg.headers.set(name, value)
        elif op == "add":
            msg.headers.add(name, value)
        elif op == "remove":
            msg.headers.remove(name)
        else:
            try:
                expected: object = _fresh(msg, name)
            except SipParseError:
                with pytest.raises(SipParseError):
                    _read(msg, name)
                continue
            assert _read(msg, name) == expected


# -- texts seen again --------------------------------------------------------------------------------------------
def test_the_same_text_again_gives_an_equal_object_of_its_own() -> None:
    text = '"Alice" <sip:alice:pw@[2001:db8::1]:5062;transport=tcp?subject=x>;tag=a1;expires=60'
    first, again = NameAddress.parse(text), NameAddress.parse(text)
    assert first is not again and first.uri is not again.uri and str(first) == str(again) == str(NameAddress(
        SipUri("2001:db8::1", 5062, user="alice", password="pw", params=(("transport", "tcp"),), headers="subject=x"),
        display_name="Alice", params=(("tag", "a1"), ("expires", "60"))))
    first.uri.host = "changed.example.com"  # a caller's own object: changing it changes nothing else
    first.params = ()
    assert NameAddress.parse(text).uri.host == "2001:db8::1" and NameAddress.parse(text).tag == "a1"
    via_text = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx;rport"
    via = Via.parse(via_text)
    via.host = "elsewhere"
    assert Via.parse(via_text).host == "192.0.2.1" and Via.parse(via_text) is not Via.parse(via_text)
    u = parse_uri("sip:bob@example.com")
    assert isinstance(u, SipUri)
    u.port = 1
    assert parse_uri("sip:bob@example.com").port is None and str(parse_uri("tel:+123")) == "tel:+123"


def test_a_malformed_text_raises_every_time() -> None:
    for parse, text in ((NameAddress.parse, "Alice <sip:alice@example.com"), (Via.parse, "SIP/2.0/UDP"),
                        (parse_uri, "sip:alice@exa mple.com"), (parse_uri, "sip:bob@example.com:99999")):
        for _ in range(3):
            with pytest.raises(SipParseError):
                parse(text)


def test_texts_past_the_remembered_length_are_parsed_every_time_and_the_same() -> None:
    host = ".".join(label * 60 for label in "abcd") + ".example.com"
    text = f"<sip:user@{host}:5070;lr>;tag=long"
    assert len(text) > REMEMBERED_LENGTH
    before = uri_module._NAME_ADDRESSES.fields.cache_info().currsize
    parsed = NameAddress.parse(text)
    assert parsed.uri.host == host and parsed.uri.port == 5070 and parsed.tag == "long"
    assert uri_module._NAME_ADDRESSES.fields.cache_info().currsize == before


def test_what_is_remembered_is_bounded() -> None:
    for k in range(uri_module.REMEMBERED + 50):
        assert parse_uri(f"sip:u{k}@192.0.2.1").user == f"u{k}"
    assert uri_module._URIS.fields.cache_info().currsize <= uri_module.REMEMBERED


URI_PARTS = st.text(alphabet="abz09:;@?=<>[] ._-%\"\t", max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["sip:", "sips:", "tel:", "SIP:", "", "x:"]), URI_PARTS, URI_PARTS,
       st.sampled_from(["", '"Al" ', "Al ", "<", " "]), URI_PARTS)
def test_a_remembered_parse_says_what_a_first_parse_says(scheme: str, a: str, b: str, display: str, tail: str) -> None:
    uri_text = f"{scheme}{a}@{b}"
    for text, parse, first in (
        (uri_text, parse_uri, uri_module._parse_uri),
        (f"{display}<{uri_text}>{tail}", NameAddress.parse, NameAddress._parse),
        (f"{display}{uri_text}{tail}", NameAddress.parse, NameAddress._parse),
        (f"SIP/2.0/UDP {b}{tail}", Via.parse, Via._parse),
    ):
        try:
            expected = str(first(text))
        except SipParseError as exc:
            for _ in range(2):
                with pytest.raises(SipParseError) as again:
                    parse(text)
                assert str(again.value) == str(exc)
            continue
        assert str(parse(text)) == expected and str(parse(text)) == expected
