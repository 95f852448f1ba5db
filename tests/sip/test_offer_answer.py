"""Codec-generic offer/answer: payload types from the codec registry, telephone-event per clock rate."""

from __future__ import annotations

from typing import Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyvoip_fast.sdp as root_sdp
from pyvoip_fast import codecs
from pyvoip_fast.codecs import L16_16K, PCMA, PCMU, Codec
from pyvoip_fast.sip import sdp
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
HEADER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"

# G.722's shape (RFC 3551 §4.5.2): rtpmap G722/8000 for 16 kHz audio on static type 9. Not registered (the
# registry has no way to take a codec back out), so tests hand it over as a Codec object.
G722_LIKE = Codec(name="G722", clock_rate=8000, sample_rate=16000, bitrate=64000, payload_type=9,
                  make_encoder=PCMU.make_encoder, make_decoder=PCMU.make_decoder)

# sdp.__all__ before the split into session_description and offer_answer
NAMES_BEFORE_THE_SPLIT = [
    "SessionDescription", "MediaDescription", "Origin", "Connection", "MediaParams", "NegotiationError",
    "make_offer", "make_answer", "negotiate", "STATIC_PAYLOAD_TYPES", "DIRECTIONS", "DEFAULT_MAX_SIZE",
    "DEFAULT_MAX_LINES", "DEFAULT_MAX_MEDIA",
]


def _rtpmap(sd: SessionDescription) -> Dict[int, Tuple[str, int, int]]:
    media = sd.first_audio()
    assert media is not None
    return media.rtpmap()


def _formats(sd: SessionDescription) -> List[str]:
    media = sd.first_audio()
    assert media is not None
    return media.formats


def _events(sd: SessionDescription) -> Dict[int, int]:
    return {pt: rate for pt, (enc, rate, _) in _rtpmap(sd).items() if enc == "telephone-event"}


def _dynamic_8k(name: str) -> Codec:
    return Codec(name=name, clock_rate=8000, sample_rate=8000, bitrate=64000,
                 make_encoder=PCMU.make_encoder, make_decoder=PCMU.make_decoder)


# -- the public face -----------------------------------------------------------------------------------------


def test_every_name_sdp_exported_still_imports_from_both_paths() -> None:
    for name in NAMES_BEFORE_THE_SPLIT + ["SUPPORTED_CODECS", "DTMF_PAYLOAD_TYPE"]:
        assert name in sdp.__all__ and name in root_sdp.__all__
        assert getattr(sdp, name) is getattr(root_sdp, name)
    for name in sdp.__all__:
        assert hasattr(sdp, name), name


def test_supported_codecs_is_derived_from_the_registry() -> None:
    assert sdp.SUPPORTED_CODECS["PCMU"] == 0 and sdp.SUPPORTED_CODECS["PCMA"] == 8
    assert sdp.SUPPORTED_CODECS["L16"] is None  # dynamic
    assert set(sdp.SUPPORTED_CODECS) == {codecs.get(key).name for key in codecs.available()}
    assert (sdp.DTMF_PAYLOAD_TYPE, sdp.DTMF_PAYLOAD_TYPE_CLOCK_RATE) == (101, PCMU.clock_rate)


# -- offers --------------------------------------------------------------------------------------------------


def test_the_default_offer_is_g711_as_it_always_was() -> None:
    assert make_offer("127.0.0.1", 40000, session_id=7).serialize().decode() == G711_OFFER
    named = make_offer("127.0.0.1", 40000, codecs=(PCMU, "pcma"), session_id=7)
    assert named.serialize().decode() == G711_OFFER


def test_l16_is_offered_only_when_asked_for_on_a_dynamic_type() -> None:
    assert "L16" not in str(make_offer("127.0.0.1", 40000))
    offer = make_offer("127.0.0.1", 40000, codecs=("L16", "PCMU"), session_id=7)
    media = offer.first_audio()
    assert media is not None
    assert media.formats == ["96", "0", "97", "101"]
    assert _rtpmap(offer) == {
        96: ("L16", 16000, 1),
        0: ("PCMU", 8000, 1),
        97: ("telephone-event", 16000, 1),
        101: ("telephone-event", 8000, 1),
    }
    assert media.fmtp() == {97: "0-15", 101: "0-15"}


def test_without_an_8khz_codec_101_is_not_reserved() -> None:
    offer = make_offer("127.0.0.1", 40000, codecs=("L16",))
    assert _formats(offer) == ["96", "97"] and _events(offer) == {97: 16000}


def test_payload_types_never_collide() -> None:
    offer = make_offer("127.0.0.1", 40000, codecs=("PCMA", "L16/16000", "PCMU"), dtmf=True)
    formats = _formats(offer)
    assert len(set(formats)) == len(formats) == 5
    assert _formats(make_offer("127.0.0.1", 40000, codecs=("L16",), dtmf=False)) == ["96"]


def test_dynamic_codecs_step_over_the_telephone_event_type() -> None:
    many = [_dynamic_8k(f"X{i}") for i in range(7)]
    offer = make_offer("127.0.0.1", 40000, codecs=many + [PCMU])
    assert _formats(offer) == ["96", "97", "98", "99", "100", "102", "103", "0", "101"]
    assert _events(offer) == {101: 8000}
    assert _rtpmap(offer)[102] == ("X5", 8000, 1)


def test_the_dynamic_range_running_out_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="96-127"):
        make_offer("127.0.0.1", 40000, codecs=[_dynamic_8k(f"X{i}") for i in range(32)])


def test_two_codecs_on_one_static_type_are_refused() -> None:
    with pytest.raises(ValueError, match="both claim payload type 0"):
        make_offer("127.0.0.1", 40000, codecs=(PCMU, Codec(name="FAKE", clock_rate=8000, sample_rate=8000,
                                                             bitrate=1, payload_type=0,
                                                             make_encoder=PCMU.make_encoder,
                                                             make_decoder=PCMU.make_decoder)))


def test_telephone_event_is_offered_once_per_clock_rate() -> None:
    wide = Codec(name="WIDE", clock_rate=16000, sample_rate=16000, bitrate=1,
                 make_encoder=PCMU.make_encoder, make_decoder=PCMU.make_decoder)
    offer = make_offer("127.0.0.1", 40000, codecs=(L16_16K, "PCMU", wide, "PCMA"))
    assert _events(offer) == {98: 16000, 101: 8000}
    assert _formats(offer) == ["96", "0", "97", "8", "98", "101"]


def test_unknown_codec_is_a_value_error_naming_what_exists() -> None:
    with pytest.raises(ValueError, match=r"unknown codec 'G729'.*PCMU/8000, PCMA/8000, G722/8000, L16/16000"):
        make_offer("127.0.0.1", 40000, codecs=("G729",))
    with pytest.raises(ValueError, match=r"unknown codec 'OPUS'"):
        make_answer(make_offer("127.0.0.1", 40000), "127.0.0.1", 50000, codecs=("OPUS",))


# -- answers and negotiate -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, expect",
    [(("L16", "PCMU"), L16_16K), (("PCMU", "L16"), L16_16K), (("PCMU", "PCMA"), PCMU), (("PCMA",), PCMA)],
)
def test_the_answer_takes_the_offerers_first_common_codec(ours: tuple, expect: Codec) -> None:
    offer = make_offer("127.0.0.1", 40000, codecs=("L16", "PCMU", "PCMA"))
    answer = make_answer(offer, "127.0.0.1", 50000, codecs=ours)
    for local, remote in ((offer, answer), (answer, offer)):
        params = negotiate(local, remote)
        assert params.codec is expect
        assert (params.encoding, params.clock_rate) == (expect.name, expect.clock_rate)
    # the offer's numbering; the common codecs of the chosen clock rate; its telephone-event and no other
    in_offer = (L16_16K, PCMU, PCMA)
    offered_pt = {codec: int(pt) for pt, codec in zip(_formats(offer)[:3], in_offer, strict=True)}
    ours_resolved = codecs.resolve(ours)
    same_rate = [c for c in in_offer if c in ours_resolved and c.clock_rate == expect.clock_rate]
    events = {pt: rate for pt, rate in _events(offer).items() if rate == expect.clock_rate}
    assert _formats(answer) == [str(offered_pt[c]) for c in same_rate] + [str(pt) for pt in events]
    assert _events(answer) == events
    assert negotiate(answer, offer).payload_type == offered_pt[expect]
    dtmf = min(events)
    assert negotiate(answer, offer).dtmf_payload_type == negotiate(offer, answer).dtmf_payload_type == dtmf


def test_a_sipp_style_offer_of_l16_and_pcmu() -> None:
    body = HEADER + (
        "m=audio 6000 RTP/AVP 98 0 101 100\r\na=rtpmap:98 L16/16000\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=rtpmap:100 telephone-event/16000\r\na=fmtp:100 0-16\r\n"
    )
    offer = SessionDescription.parse(body)
    wide = make_answer(offer, "127.0.0.1", 50000, codecs=("PCMU", "L16"))
    assert _formats(wide) == ["98", "100"] and wide.first_audio().fmtp() == {100: "0-16"}  # type: ignore[union-attr]
    params = negotiate(wide, offer)
    assert (params.codec, params.payload_type, params.dtmf_payload_type) == (L16_16K, 98, 100)
    narrow = make_answer(offer, "127.0.0.1", 50000, codecs=("PCMU",))
    assert _formats(narrow) == ["0", "101"]
    params = negotiate(narrow, offer)
    assert (params.codec, params.payload_type, params.dtmf_payload_type) == (PCMU, 0, 101)


def test_formats_we_do_not_know_are_skipped() -> None:
    body = HEADER + (
        "m=audio 6000 RTP/AVP 111 18 96 8\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:96 L16/16000/2\r\n"
    )
    offer = SessionDescription.parse(body)
    answer = make_answer(offer, "127.0.0.1", 50000, codecs=("L16", "PCMA"))
    assert _formats(answer) == ["8"]
    assert negotiate(answer, offer).codec is PCMA
    with pytest.raises(NegotiationError, match=r"in common: offered opus/111, G729/18, L16/96, PCMA/8"):
        make_answer(offer, "127.0.0.1", 50000, codecs=("L16", "PCMU"))


def test_dtmf_is_negotiated_at_the_codecs_clock_rate() -> None:
    offer = make_offer("127.0.0.1", 40000, codecs=("L16", "PCMU"))
    answer = make_answer(offer, "127.0.0.1", 50000, codecs=("L16",))
    assert negotiate(offer, answer).dtmf_payload_type == 97
    # a peer whose only telephone-event runs at 8000 Hz gives no DTMF on a 16 kHz codec
    body = HEADER + (
        "m=audio 30000 RTP/AVP 100 101\r\na=rtpmap:100 L16/16000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
    remote = SessionDescription.parse(body)
    answer = make_answer(remote, "127.0.0.1", 50000, codecs=("L16",))
    assert "telephone-event" not in str(answer)
    params = negotiate(answer, remote)
    assert params.payload_type == 100 and params.dtmf_payload_type is None and params.codec is L16_16K
    # nor does an 8 kHz event we listed when the peer has one only at 16 kHz
    body = HEADER + "m=audio 30000 RTP/AVP 0 100\r\na=rtpmap:100 telephone-event/16000\r\n"
    assert negotiate(make_offer("127.0.0.1", 40000), SessionDescription.parse(body)).dtmf_payload_type is None


def test_static_types_without_rtpmap_are_understood() -> None:
    body = HEADER + "m=audio 30000 RTP/AVP 18 8\r\n"
    answer = make_answer(SessionDescription.parse(body), "127.0.0.1", 50000)
    assert _formats(answer) == ["8"] and _rtpmap(answer) == {8: ("PCMA", 8000, 1)}
    assert negotiate(answer, SessionDescription.parse(body)).codec is PCMA


def test_nothing_in_common_names_both_sides() -> None:
    offer = make_offer("127.0.0.1", 40000, codecs=("L16",), dtmf=False)
    with pytest.raises(NegotiationError, match=r"no codec in common: offered L16/96, we support PCMA, PCMU"):
        make_answer(offer, "127.0.0.1", 50000)
    with pytest.raises(NegotiationError, match=r"no codec in common: remote offers L16/96, local PCMU/0"):
        negotiate(make_offer("127.0.0.1", 50000, codecs=("PCMU",), dtmf=False), offer)


def test_negotiate_fills_the_codec() -> None:
    offer = make_offer("127.0.0.1", 40000, codecs=("PCMA", "PCMU"))
    answer = make_answer(offer, "127.0.0.1", 50000)
    params = negotiate(offer, answer)
    assert params.codec is PCMA and params.codec is codecs.get("PCMA")
    assert (params.encoding, params.clock_rate, params.payload_type) == ("PCMA", 8000, 8)
    # MediaParams built by hand (the media layer's tests do) still needs no codec
    assert sdp.MediaParams(0, "PCMU", 8000, 20, None, ("h", 1), ("h", 2), "sendrecv").codec is None


# -- a codec whose RTP clock is not its audio rate -----------------------------------------------------------


def test_a_codec_whose_rtp_clock_differs_from_its_audio_rate() -> None:
    offer = make_offer("127.0.0.1", 40000, codecs=(G722_LIKE, PCMU, L16_16K))
    assert _formats(offer) == ["9", "0", "96", "101", "97"]
    assert _rtpmap(offer)[9] == ("G722", 8000, 1)
    # its events run on its 8000 Hz RTP clock, shared with PCMU, not on its 16 kHz audio rate
    assert _events(offer) == {101: 8000, 97: 16000}
    answer = make_answer(offer, "127.0.0.1", 50000, codecs=(PCMU, G722_LIKE))
    assert _formats(answer) == ["9", "0", "101"]
    for local, remote in ((offer, answer), (answer, offer)):
        params = negotiate(local, remote, codecs=(G722_LIKE, PCMU, L16_16K))
        assert params.codec is G722_LIKE and (params.payload_type, params.dtmf_payload_type) == (9, 101)
        assert params.clock_rate == 8000 and params.codec.sample_rate == 16000
        codec = params.codec
        assert (codec.frame_timestamps(params.ptime), codec.frame_samples(params.ptime)) == (160, 320)


def test_a_static_codec_object_matches_a_bare_static_type() -> None:
    body = HEADER + "m=audio 30000 RTP/AVP 9 0\r\n"
    offer = SessionDescription.parse(body)
    answer = make_answer(offer, "127.0.0.1", 50000, codecs=(G722_LIKE, "PCMU"))
    assert _formats(answer) == ["9", "0"] and _rtpmap(answer)[9] == ("G722", 8000, 1)
    assert negotiate(answer, offer, codecs=(G722_LIKE, "PCMU")).codec is G722_LIKE
    # without being told of it, negotiate knows the registry only: its type-9 codec if it has one, else PCMU
    assert negotiate(answer, offer).codec is (codecs.by_static_payload_type(9) or PCMU)
    with pytest.raises(ValueError, match="unknown codec"):
        negotiate(answer, offer, codecs=("NO-SUCH-CODEC",))


# -- every combination ---------------------------------------------------------------------------------------


@st.composite
def _preferences(draw: st.DrawFn) -> List[object]:
    """A non-empty ordered subset of the registered codecs, each named by key, bare name or object."""
    keys = draw(st.permutations(codecs.available()))
    chosen = keys[: draw(st.integers(1, len(keys)))]
    return [draw(st.sampled_from([key, codecs.get(key).name.lower(), codecs.get(key)])) for key in chosen]


@settings(max_examples=150, deadline=None)
@given(
    offered=_preferences(), accepted=_preferences(), dtmf=st.booleans(), ptime=st.sampled_from([10, 20, 30])
)
def test_every_offer_and_answer_agree_on_one_codec(
    offered: list, accepted: list, dtmf: bool, ptime: int
) -> None:
    offer = make_offer("127.0.0.1", 40000, codecs=offered, dtmf=dtmf, ptime=ptime)
    wanted = codecs.resolve(offered)
    formats = _formats(offer)
    assert len(set(formats)) == len(formats)
    rtpmap = _rtpmap(offer)
    described = [rtpmap[int(pt)] for pt in formats[: len(wanted)]]
    assert described == [(c.name, c.clock_rate, c.channels) for c in wanted]
    for pt, codec in zip(formats[: len(wanted)], wanted, strict=True):
        assert int(pt) == codec.payload_type if codec.static else int(pt) in codecs.DYNAMIC_PAYLOAD_TYPES
    rates = sorted({c.clock_rate for c in wanted}) if dtmf else []
    assert sorted(_events(offer).values()) == rates
    common = [c for c in wanted if c in codecs.resolve(accepted)]
    if not common:
        with pytest.raises(NegotiationError, match="no codec in common"):
            make_answer(offer, "127.0.0.1", 50000, codecs=accepted, dtmf=dtmf)
        return
    answer = make_answer(SessionDescription.parse(offer.serialize()), "127.0.0.1", 50000, codecs=accepted,
                         dtmf=dtmf)
    caller = negotiate(offer, SessionDescription.parse(answer.serialize()))
    callee = negotiate(answer, offer)
    assert caller.codec is callee.codec is common[0]
    assert caller.payload_type == callee.payload_type and caller.clock_rate == callee.clock_rate
    assert caller.ptime == callee.ptime == ptime
    assert caller.dtmf_payload_type == callee.dtmf_payload_type
    if dtmf:
        assert _events(offer)[caller.dtmf_payload_type] == common[0].clock_rate  # type: ignore[index]
    else:
        assert caller.dtmf_payload_type is None
