"""The media address rule (``sip/media_address.py``) and how ``negotiate`` applies it (sans-IO)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.sip.media_address import MediaAddressRefused, scope_of, vet_media_host, warning_header
from pyvoip_fast.sip.sdp import SessionDescription, make_offer, negotiate


@pytest.mark.parametrize("host", ["192.0.2.10", "10.1.2.3", "2001:db8::5", "203.0.113.9", "pbx.example.com"])
def test_unicast_addresses_and_names_may_receive_media(host: str) -> None:
    assert vet_media_host(host, "198.51.100.1") is True


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "::ffff:0.0.0.0"])
def test_unspecified_means_no_media(host: str) -> None:
    assert vet_media_host(host, "198.51.100.1") is False


@pytest.mark.parametrize("host, why", [
    ("224.0.0.1", "multicast"), ("239.1.2.3", "multicast"), ("ff02::1", "multicast"),
    ("255.255.255.255", "not one host"), ("0.1.2.3", "not one host"), ("240.0.0.1", "reserved"),
    ("::ffff:224.0.0.1", "multicast"),
])
def test_non_unicast_addresses_are_refused(host: str, why: str) -> None:
    with pytest.raises(MediaAddressRefused, match=why) as info:
        vet_media_host(host, "198.51.100.1")
    assert info.value.status_code == 488 and host in (info.value.warning or "")


@pytest.mark.parametrize("host, source, allowed", [
    ("127.0.0.1", "127.0.0.1", True), ("127.0.0.5", "::1", True), ("::1", "127.0.0.1", True),
    ("127.0.0.1", "192.0.2.1", False), ("::1", "2001:db8::1", False),
    ("169.254.7.7", "169.254.1.1", True), ("fe80::1", "fe80::2", True),
    ("169.254.7.7", "192.0.2.1", False), ("fe80::1", "127.0.0.1", False), ("169.254.7.7", "127.0.0.1", False),
    ("192.0.2.7", "127.0.0.1", True),  # a loopback caller may point at any unicast host (it is this host)
])
def test_loopback_and_link_local_media_only_from_the_same_scope(host: str, source: str, allowed: bool) -> None:
    if allowed:
        assert vet_media_host(host, source) is True
    else:
        with pytest.raises(MediaAddressRefused, match="signalled from"):
            vet_media_host(host, source)


def test_scopes() -> None:
    assert [scope_of(h) for h in ("127.0.0.1", "::1", "169.254.0.1", "fe80::9", "10.0.0.1", "name")] == \
        ["loopback", "loopback", "link-local", "link-local", "global", "global"]


def test_warning_header_quotes_safely() -> None:
    name, value = warning_header('media address "x" refused\r\n')
    assert name == "Warning" and value == "399 pyvoip-fast \"media address 'x' refused  \""


def _remote(host: str, rtcp: str = "") -> SessionDescription:
    return SessionDescription.parse(f"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
                                    f"m=audio 7000 RTP/AVP 0\r\n{rtcp}")


def test_negotiate_applies_the_rule_to_offers_and_answers_alike() -> None:
    ours = make_offer("192.0.2.9", 4000)
    assert negotiate(ours, _remote("192.0.2.1"), signalled_from="192.0.2.1").direction == "sendrecv"
    assert negotiate(ours, _remote("0.0.0.0"), signalled_from="192.0.2.1").direction == "recvonly"
    with pytest.raises(MediaAddressRefused):
        negotiate(ours, _remote("224.0.0.1"))
    with pytest.raises(MediaAddressRefused, match="loopback"):
        negotiate(ours, _remote("127.0.0.1"), signalled_from="192.0.2.1")
    with pytest.raises(MediaAddressRefused, match="multicast"):  # a=rtcp names a destination too
        negotiate(ours, _remote("192.0.2.1", "a=rtcp:7001 IN IP4 239.0.0.1\r\n"), signalled_from="192.0.2.1")


def _reference(host: str, source: str) -> "bool | str":
    """The rule computed from ``ipaddress`` at every call, as the module did before it remembered hosts."""
    def ip(h: str) -> "ipaddress.IPv4Address | ipaddress.IPv6Address | None":
        try:
            a = ipaddress.ip_address(h.split("%", 1)[0].strip("[]"))
        except ValueError:
            return None
        return a.ipv4_mapped if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None else a

    def scope(h: str) -> str:
        a = ip(h)
        return "global" if a is None else "loopback" if a.is_loopback else \
            "link-local" if a.is_link_local else "global"

    a = ip(host)
    if a is None:
        return True
    if a.is_unspecified:
        return False
    if a.is_multicast or (isinstance(a, ipaddress.IPv4Address) and (
            a == ipaddress.IPv4Address("255.255.255.255") or a in ipaddress.IPv4Network("0.0.0.0/8")
            or a.is_reserved)):
        return "refused"
    return True if scope(host) == "global" or scope(source) == scope(host) else "refused"


def _outcome(host: str, source: str) -> "bool | str":
    try:
        return vet_media_host(host, source)
    except MediaAddressRefused:
        return "refused"


_HOSTS = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
    st.sampled_from(["127.0.0.1", "::1", "169.254.3.3", "fe80::1%eth0", "[::1]", "pbx.example.com", "0.0.0.0"]),
    st.text(max_size=20),
)


@settings(max_examples=400, deadline=None)
@given(host=_HOSTS, source=_HOSTS)
def test_remembered_hosts_answer_as_the_rule_computed_each_time(host: str, source: str) -> None:
    expected = _reference(host, source)
    assert _outcome(host, source) == expected
    assert _outcome(host, source) == expected  # the second look is answered from memory: the same answer
