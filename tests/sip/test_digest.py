"""Digest authentication (``sip/digest.py``) against the published examples and the loop guard.

RFC 2617 §3.5 (MD5, qop=auth) and RFC 7616 §3.9.1 (SHA-256 and MD5 of one challenge) give the password, so the
``response`` values are checked to the character. RFC 3261 §22 has no password in its examples.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.errors import SipParseError
from pyvoip_fast.sip.digest import (
    AuthenticationRejected,
    Challenge,
    Credentials,
    DigestAuth,
    SUPPORTED_ALGORITHMS,
    authorization_value,
    challenges_of,
    choose,
    compute_response,
    parse_challenges,
)
from pyvoip_fast.sip.message import Headers, SipResponse


def test_rfc2617_section_3_5_md5_example() -> None:
    assert compute_response(
        algorithm="MD5", username="Mufasa", realm="testrealm@host.com", password="Circle Of Life", method="GET",
        uri="/dir/index.html", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", qop="auth", nc="00000001",
        cnonce="0a4f113b",
    ) == "6629fae49393a05397450978507c4ef1"


RFC7616 = dict(username="Mufasa", realm="http-auth@example.org", password="Circle of Life", method="GET",
               uri="/dir/index.html", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", qop="auth",
               nc="00000001", cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")


def test_rfc7616_section_3_9_1_sha256_example() -> None:
    assert compute_response(algorithm="SHA-256", **RFC7616) == \
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def test_rfc7616_section_3_9_1_md5_example() -> None:
    assert compute_response(algorithm="MD5", **RFC7616) == "8ca523f5e9506fed4657c9700eebdbec"


def test_rfc7616_challenge_parses_both_algorithms_and_answer_reproduces_the_example() -> None:
    header = ('Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
              'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
              'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", '
              'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, '
              'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
              'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
    sha, md5 = parse_challenges(header)
    assert (sha.algorithm, md5.algorithm) == ("SHA-256", "MD5")
    assert sha.qop == ("auth", "auth-int") and sha.opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    # the server's preference (first) wins within a realm (RFC 8760 §2.4)
    assert choose([sha, md5]) == [sha]
    value = authorization_value(sha, Credentials("Mufasa", "Circle of Life"), "GET", "/dir/index.html",
                                cnonce=RFC7616["cnonce"])
    assert 'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"' in value
    assert "qop=auth," in value and "nc=00000001" in value and "algorithm=SHA-256" in value
    assert 'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"' in value


def test_no_qop_is_rfc2069_and_auth_int_hashes_the_body() -> None:
    ha1 = hashlib.md5(b"bob:r:pw").hexdigest()
    ha2 = hashlib.md5(b"INVITE:sip:x@y").hexdigest()
    assert compute_response(algorithm="MD5", username="bob", realm="r", password="pw", method="INVITE",
                            uri="sip:x@y", nonce="n") == hashlib.md5(f"{ha1}:n:{ha2}".encode()).hexdigest()
    body = b"v=0\r\n"
    ha2i = hashlib.md5(f"INVITE:sip:x@y:{hashlib.md5(body).hexdigest()}".encode()).hexdigest()
    want = hashlib.md5(f"{ha1}:n:00000001:c:auth-int:{ha2i}".encode()).hexdigest()
    assert compute_response(algorithm="MD5", username="bob", realm="r", password="pw", method="INVITE",
                            uri="sip:x@y", nonce="n", qop="auth-int", cnonce="c", body=body) == want
    value = authorization_value(Challenge("r", "n"), Credentials("bob", "pw"), "INVITE", "sip:x@y")
    assert "qop" not in value and "nc=" not in value


def test_sess_variant_and_sha512_256() -> None:
    assert "SHA-512-256" in SUPPORTED_ALGORITHMS and "MD5-SESS" in SUPPORTED_ALGORITHMS
    ha1 = hashlib.md5(hashlib.md5(b"u:r:p").hexdigest().encode() + b":n:c").hexdigest()
    ha2 = hashlib.md5(b"REGISTER:sip:r").hexdigest()
    want = hashlib.md5(f"{ha1}:n:00000001:c:auth:{ha2}".encode()).hexdigest()
    assert compute_response(algorithm="MD5-sess", username="u", realm="r", password="p", method="REGISTER",
                            uri="sip:r", nonce="n", qop="auth", cnonce="c") == want


def test_quoted_commas_escapes_other_schemes_and_errors() -> None:
    (ch,) = parse_challenges('Basic realm="x", Digest realm="a, \\"b\\"", nonce="n1", stale=TRUE, '
                             'qop="auth-int"')
    assert ch.realm == 'a, "b"' and ch.stale and ch.qop == ("auth-int",) and ch.supported
    assert not Challenge("r", "n", algorithm="SHA-1").supported
    assert not Challenge("r", "n", qop=("token",)).supported
    for bad in ('Digest realm="unterminated', 'Digest nonce="n"', 'realm="r"', 'Digest realm='):
        with pytest.raises(SipParseError):
            parse_challenges(bad)


def test_credentials_repr_hides_the_password() -> None:
    assert "s3cret" not in repr(Credentials("alice", "s3cret"))
    with pytest.raises(ValueError):
        Credentials("", "x")


def _challenge_response(code: int, *values: str) -> SipResponse:
    name = "WWW-Authenticate" if code == 401 else "Proxy-Authenticate"
    h = Headers([("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx"), ("From", "<sip:a@b>;tag=1"),
                 ("To", "<sip:a@b>;tag=2"), ("Call-ID", "c"), ("CSeq", "1 REGISTER")])
    for v in values:
        h.add(name, v)
    return SipResponse(code, None, h)


def test_digest_auth_never_loops_on_a_rejected_password() -> None:
    auth = DigestAuth(Credentials("alice", "wrong"))
    chain: dict = {}
    lines = auth.answer(_challenge_response(401, 'Digest realm="r", nonce="n1", qop="auth"'), "REGISTER",
                        "sip:r", chain)
    assert [name for name, _ in lines] == ["Authorization"] and "nc=00000001" in lines[0][1]
    with pytest.raises(AuthenticationRejected) as info:
        auth.answer(_challenge_response(401, 'Digest realm="r", nonce="n2", qop="auth"'), "REGISTER", "sip:r", chain)
    assert info.value.status_code == 401 and "rejected" in info.value.reason and "wrong" not in info.value.reason
    # stale=true: the password was right, the nonce old: answer again
    lines = auth.answer(_challenge_response(401, 'Digest realm="r", nonce="n3", qop="auth", stale=true'),
                        "REGISTER", "sip:r", chain)
    assert 'nonce="n3"' in lines[0][1]
    # a fresh chain (the next refresh) starts over; the nonce count goes on for a reused nonce
    lines = auth.answer(_challenge_response(401, 'Digest realm="r", nonce="n3", qop="auth"'), "REGISTER",
                        "sip:r", {})
    assert "nc=00000002" in lines[0][1]


def test_proxy_then_callee_challenge_is_answered_with_both_realms() -> None:
    auth = DigestAuth(Credentials("alice", "pw"))
    chain: dict = {}
    auth.answer(_challenge_response(407, 'Digest realm="proxy", nonce="p", qop="auth"'), "INVITE", "sip:b@x",
                chain)
    lines = auth.answer(_challenge_response(401, 'Digest realm="callee", nonce="c", algorithm=SHA-256'),
                        "INVITE", "sip:b@x", chain)
    assert sorted(name for name, _ in lines) == ["Authorization", "Proxy-Authorization"]


def test_without_credentials_or_usable_challenge() -> None:
    with pytest.raises(AuthenticationRejected, match="none were given"):
        DigestAuth(None).answer(_challenge_response(407, 'Digest realm="r", nonce="n"'), "INVITE", "sip:x", {})
    with pytest.raises(AuthenticationRejected, match="SHA-1"):
        DigestAuth(Credentials("a", "b")).answer(
            _challenge_response(401, 'Digest realm="r", nonce="n", algorithm=SHA-1'), "INVITE", "sip:x", {})
    assert challenges_of(_challenge_response(401)) == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_garbage_challenges_raise_parse_errors_only(text: str) -> None:
    try:
        parse_challenges(text)
    except SipParseError:
        pass
