"""Codec-generic offer/answer: payload types from the codec registry, telephone-event per clock rate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyvoip_fast import codecs
from pyvoip_fast.codecs import L16_16K, PCMA, PCMU, Codec
from pyvoip_fast.sip.sdp import NegotiationError, SessionDescription, make_answer, make_offer, negotiate

G711_OFFER = (
    "v=0\r\n"
    "o=pyvoip_fast 7 7 IN IP4 127.0.0.1\r\n"
    "s=pyvoip_fast\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)


def _audio(sd: SessionDescription) -> dict:
    media = sd.first_audio()
    assert media is not None
    return media.rtpmap()


def test_the_default_offer_is_g711_as_it_always_was() -> None:
    assert make_offer("127.0.0.1", 40000, session_id=7).serialize().decode() == G711_OFFER


def test_l16_is_offered_only_when_asked_for_on_a_dynamic_type() -> None:
    assert "L16" not in str(make_offer("127.0.0.1", 40000))
    offer = make_offer("127.0.0.1", 40000, codecs=("L16", "PCMU"), session_id=7)
    media = offer.first_audio()
    assert media is not None
    assert media.formats == ["96", "0", "97", "101"]
    assert _audio(offer) == {
        96: ("L16", 16000, 1),
        0: ("PCMU", 8000, 1),
        97: ("telephone-event", 16000, 1),
        101: ("telephone-event", 8000, 1),
    }
    assert media.fmtp() == {97: "0-15", 101: "0-15"}


def test_payload_types_never_collide() -> None:
    offer = make_offer("127.0.0.1", 40000, codecs=("PCMA", "L16/16000", "PCMU"), dtmf=True)
    media = offer.first_audio()
    assert media is not None and len(set(media.formats)) == len(media.formats) == 5
    no_dtmf = make_offer("127.0.0.1", 40000, codecs=("L16",), dtmf=False).first_audio()
    assert no_dtmf is not None and no_dtmf.formats == ["96"]


def test_unknown_codec_is_a_value_error_naming_what_exists() -> None:
    with pytest.raises(ValueError, match=r"unknown codec 'G729'.*PCMU/8000, PCMA/8000, L16/16000"):
        make_offer("127.0.0.1", 40000, codecs=("G729",))


@pytest.mark.parametrize(
    "ours, expect",
    [(("L16", "PCMU"), L16_16K), (("PCMU", "PCMA"), PCMU), (("PCMA",), PCMA)],
)
def test_the_answer_takes_the_offerers_first_common_codec(ours: tuple, expect: Codec) -> None:
    offer = make_offer("127.0.0.1", 40000, codecs=("L16", "PCMU", "PCMA"))
    answer = make_answer(offer, "127.0.0.1", 50000, codecs=ours)
    for local, remote in ((offer, answer), (answer, offer)):
        params = negotiate(local, remote)
        assert params.codec is expect
        assert (params.encoding, params.clock_rate) == (expect.name, expect.clock_rate)
    # the answer keeps the offer's numbering and only the telephone-event of the accepted clock rates
    rates = {c.clock_rate for c in codecs.resolve(ours)}
    events = {rate for enc, rate, _ in _audio(answer).values() if enc == "telephone-event"}
    assert events == rates & {8000, 16000}
    assert negotiate(answer, offer).payload_type == (96 if expect is L16_16K else expect.payload_type)


def test_dtmf_is_negotiated_at_the_codecs_clock_rate() -> None:
    offer = make_offer("127.0.0.1", 40000, codecs=("L16", "PCMU"))
    answer = make_answer(offer, "127.0.0.1", 50000, codecs=("L16",))
    assert negotiate(offer, answer).dtmf_payload_type == 97
    # a peer whose only telephone-event runs at 8000 Hz gives no DTMF on a 16 kHz codec
    body = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 30000 RTP/AVP 100 101\r\na=rtpmap:100 L16/16000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
    remote = SessionDescription.parse(body)
    answer = make_answer(remote, "127.0.0.1", 50000, codecs=("L16",))
    assert "telephone-event" not in str(answer)
    params = negotiate(answer, remote)
    assert params.payload_type == 100 and params.dtmf_payload_type is None and params.codec is L16_16K


def test_static_types_without_rtpmap_are_understood() -> None:
    body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 18 8\r\n"
    answer = make_answer(SessionDescription.parse(body), "127.0.0.1", 50000)
    assert negotiate(answer, SessionDescription.parse(body)).codec is PCMA


def test_nothing_in_common_names_both_sides() -> None:
    offer = make_offer("127.0.0.1", 40000, codecs=("L16",), dtmf=False)
    with pytest.raises(NegotiationError, match=r"no codec in common: offered L16/96, we support PCMA, PCMU"):
        make_answer(offer, "127.0.0.1", 50000)


def test_a_codec_whose_rtp_clock_differs_from_its_audio_rate() -> None:
    # G.722's shape (RFC 3551 §4.5.2): rtpmap G722/8000 for 16 kHz audio, static type 9
    g722_like = Codec(name="G722", clock_rate=8000, sample_rate=16000, bitrate=64000, payload_type=9,
                      make_encoder=PCMU.make_encoder, make_decoder=PCMU.make_decoder)
    offer = make_offer("127.0.0.1", 40000, codecs=(g722_like, PCMU))
    media = offer.first_audio()
    assert media is not None and media.formats == ["9", "0", "101"]
    assert _audio(offer)[9] == ("G722", 8000, 1)


@given(st.permutations(["PCMU", "PCMA", "L16"]), st.integers(1, 3), st.integers(1, 3), st.booleans())
def test_every_offer_and_answer_agree_on_one_codec(order: list, n_offer: int, n_answer: int, dtmf: bool) -> None:
    offered = order[:n_offer]
    accepted = order[-n_answer:]
    offer = make_offer("127.0.0.1", 40000, codecs=offered, dtmf=dtmf)
    media = offer.first_audio()
    assert media is not None and len(set(media.formats)) == len(media.formats)
    common = [name for name in offered if name in accepted]
    if not common:
        with pytest.raises(NegotiationError):
            make_answer(offer, "127.0.0.1", 50000, codecs=accepted, dtmf=dtmf)
        return
    answer = make_answer(SessionDescription.parse(offer.serialize()), "127.0.0.1", 50000, codecs=accepted,
                         dtmf=dtmf)
    caller = negotiate(offer, SessionDescription.parse(answer.serialize()))
    callee = negotiate(answer, offer)
    assert caller.codec is callee.codec is codecs.get(common[0])
    assert caller.payload_type == callee.payload_type
    assert (caller.dtmf_payload_type is None) == (not dtmf)
