"""``net.sockets.resolve``: an IPv4 address in its usual form is answered without getaddrinfo, with getaddrinfo's
own answer; everything else still goes through getaddrinfo (numeric first, then names)."""

from __future__ import annotations

import socket
from typing import Any, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.errors import TransportError
from pyvoip_fast.net.sockets import resolve


def by_getaddrinfo(host: Any, port: Any, family: int) -> Tuple[int, Any]:
    if "\x00" in host:  # the C resolver reads up to the NUL; resolve refuses such a name
        return -1, "NUL"
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST)
    except (socket.gaierror, OSError, TypeError, ValueError, UnicodeError) as exc:
        return -1, type(exc).__name__
    return infos[0][0], infos[0][4]


octet = st.one_of(st.integers(0, 255).map(str), st.sampled_from(["00", "01", "256", "999", "0x1", "", " 1", "1 "]))


@settings(max_examples=400, deadline=None)
@given(
    host=st.one_of(
        st.lists(octet, min_size=1, max_size=5).map(".".join),
        st.text(alphabet="0123456789.:abcdef", max_size=20),
        st.sampled_from(["127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "127.1", "1.2.3.4\x00", "::ffff:1.2.3.4"]),
    ),
    port=st.one_of(st.integers(0, 65535), st.sampled_from([5060, 0, 65535])),
    family=st.sampled_from([socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6]),
)
def test_numeric_hosts_get_what_getaddrinfo_gives(host: str, port: int, family: int) -> None:
    expected = by_getaddrinfo(host, port, family)
    if expected[0] == -1:  # not numeric: resolve would ask DNS, which a test must not depend on (see below)
        return
    assert resolve(host, port, family) == expected


def test_names_and_bad_hosts_are_not_taken_for_addresses() -> None:
    assert resolve("localhost", 5060, socket.AF_INET) == (socket.AF_INET, ("127.0.0.1", 5060))
    assert resolve("127.0.0.1", 5060) == (socket.AF_INET, ("127.0.0.1", 5060))
    assert resolve("127.1", 5060)[1] == ("127.0.0.1", 5060)  # the short form: getaddrinfo's canonical answer
    fam, addr = resolve("::1", 5060)
    assert fam == socket.AF_INET6 and addr[:2] == ("::1", 5060)
    with pytest.raises(TransportError):
        resolve("127.0.0.1", 5060, socket.AF_INET6)
    for bad in (".0", "a..b", "1.2.3.4\x00", "x" * 300):  # never another exception
        with pytest.raises(TransportError, match="cannot resolve"):
            resolve(bad, 5060)
