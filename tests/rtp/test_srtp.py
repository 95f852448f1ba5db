"""SRTP contexts (``rtp/srtp.py``) and SDES in SDP (``sip/sdes.py``, ``sip/offer_answer.py``)."""

from __future__ import annotations

import pytest

from pyvoip_fast import rtp
from pyvoip_fast.rtp import rtcp
from pyvoip_fast.rtp.srtp import SUITES, SrtpContext, SrtpError, inline, new_key, parse_inline
from pyvoip_fast.sip import sdes
from pyvoip_fast.sip.sdp import NegotiationError, SessionDescription, make_answer, make_offer, negotiate


@pytest.mark.parametrize("suite", list(SUITES))
def test_protect_unprotect_round_trip_and_tampering(suite: str) -> None:
    a_key, b_key = new_key(), new_key()
    alice, bob = SrtpContext(suite, a_key, b_key), SrtpContext(suite, b_key, a_key)
    packet = rtp.build_packet(0, 7, 1120, 0xABCDEF01, b"\x55" * 160)
    wire = alice.protect(packet)
    assert len(wire) == len(packet) + SUITES[suite] and wire[12:] != packet[12:]  # encrypted, tag appended
    assert bob.unprotect(wire) == packet
    with pytest.raises(SrtpError):
        bob.unprotect(wire)  # a replay
    forged = bytearray(alice.protect(rtp.build_packet(0, 8, 1280, 0xABCDEF01, b"\x55" * 160)))
    forged[20] ^= 1
    with pytest.raises(SrtpError):
        bob.unprotect(bytes(forged))
    with pytest.raises(SrtpError):
        bob.unprotect(b"\x80\x00\x00")  # too short
    report = rtcp.build_report(0xABCDEF01, [], b"alice@host")
    assert bob.unprotect_rtcp(alice.protect_rtcp(report)) == report
    assert bob.rejected == 3


def test_inline_keys() -> None:
    key = new_key()
    assert parse_inline(inline(key)) == key
    for bad in ("inline:@@@", "inline:" + "QUJD", "uri:x", inline(key) + "|2^20|1:4"):
        with pytest.raises(SrtpError):
            parse_inline(bad)
    assert sdes.parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:nonsense") is None
    assert sdes.parse_crypto(f"x AES_CM_128_HMAC_SHA1_80 {inline(key)}") is None
    assert sdes.parse_crypto(f"1 F8_128_HMAC_SHA1_80 {inline(key)}") is None


def test_offer_answer_agree_on_a_suite_and_cross_the_keys() -> None:
    ka, kb = new_key(), new_key()
    offer = SessionDescription.parse(make_offer("127.0.0.1", 40000, srtp="required", srtp_key=ka).serialize())
    media = offer.first_audio()
    assert media is not None and media.proto == "RTP/SAVP" and len(media.get_attributes("crypto")) == 2
    answer = make_answer(offer, "127.0.0.1", 42000, srtp="optional", srtp_key=kb)
    assert answer.media[0].proto == "RTP/SAVP"
    assert answer.media[0].get_attributes("crypto") == [f"1 AES_CM_128_HMAC_SHA1_80 {inline(kb)}"]
    caller, callee = negotiate(offer, answer), negotiate(answer, offer)
    assert caller.srtp == ("AES_CM_128_HMAC_SHA1_80", ka, kb) and callee.srtp == ("AES_CM_128_HMAC_SHA1_80", kb, ka)


def test_srtp_refusals() -> None:
    key = new_key()
    savp = make_offer("127.0.0.1", 40000, srtp="required", srtp_key=key)
    with pytest.raises(NegotiationError, match="not enabled"):
        make_answer(savp, "127.0.0.1", 42000)
    plain = make_offer("127.0.0.1", 40000)
    with pytest.raises(NegotiationError, match="SRTP required"):
        make_answer(plain, "127.0.0.1", 42000, srtp="required", srtp_key=key)
    # optional on both sides without keys in the answer: plain RTP
    optional = make_offer("127.0.0.1", 40000, srtp="optional", srtp_key=key)
    assert optional.first_audio().proto == "RTP/AVP"  # type: ignore[union-attr]
    assert negotiate(optional, make_answer(optional, "127.0.0.1", 42000)).srtp is None
    # an RTP/SAVP answer without a key we agree on is no call
    bad = make_answer(savp, "127.0.0.1", 42000, srtp="required", srtp_key=new_key())
    bad.media[0].attributes = [a for a in bad.media[0].attributes if a[0] != "crypto"]
    with pytest.raises(NegotiationError, match="RTP/SAVP without an agreed"):
        negotiate(savp, bad)
    with pytest.raises(ValueError):
        make_offer("127.0.0.1", 40000, srtp="required")
