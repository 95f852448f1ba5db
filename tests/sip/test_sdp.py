"""SDP parse/serialise (RFC 4566) and offer/answer (RFC 3264) for G.711 audio."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.errors import SdpParseError
from pyvoip_fast.sip.sdp import (
    MediaParams,
    NegotiationError,
    SessionDescription,
    make_answer,
    make_offer,
    negotiate,
)

# in the spirit of RFC 4566 §5's example, written for audio only
RFC_STYLE = (
    "v=0\r\n"
    "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n"
    "s=SDP Seminar\r\n"
    "i=A Seminar on the session description protocol\r\n"
    "u=http://www.example.com/seminars/sdp.pdf\r\n"
    "e=j.doe@example.com (Jane Doe)\r\n"
    "c=IN IP4 224.2.17.12/127\r\n"
    "b=AS:128\r\n"
    "t=2873397496 2873404696\r\n"
    "r=7d 1h 0 25h\r\n"
    "a=recvonly\r\n"
    "m=audio 49170 RTP/AVP 0\r\n"
    "m=video 51372 RTP/AVP 99\r\n"
    "a=rtpmap:99 h263-1998/90000\r\n"
)

SIPP_OFFER = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def test_parse_full_example_and_round_trip() -> None:
    sd = SessionDescription.parse(RFC_STYLE)
    assert sd.origin.username == "jdoe" and sd.origin.session_id == 2890844526
    assert sd.session_name == "SDP Seminar"
    assert sd.connection is not None and sd.connection.host == "224.2.17.12"
    assert sd.times == ["2873397496 2873404696"] and sd.repeats == ["7d 1h 0 25h"]
    assert sd.direction == "recvonly"
    assert [m.media for m in sd.media] == ["audio", "video"]
    assert sd.media[1].rtpmap() == {99: ("h263-1998", 90000, 1)}
    assert sd.serialize().decode() == RFC_STYLE
    assert SessionDescription.parse(sd.serialize()).serialize() == sd.serialize()


def test_static_payload_types_without_rtpmap_and_lf_line_ends() -> None:
    sd = SessionDescription.parse(SIPP_OFFER.replace("\r\n", "\n").replace("a=rtpmap:0 PCMU/8000\n", ""))
    audio = sd.first_audio()
    assert audio is not None and audio.rtpmap() == {0: ("PCMU", 8000, 1)}
    assert sd.media_direction(audio) == "sendrecv"


def test_make_offer_contents() -> None:
    offer = make_offer("192.0.2.1", 4000, session_id=7)
    text = offer.serialize().decode()
    for line in ("o=pyvoip_fast 7 7 IN IP4 192.0.2.1", "c=IN IP4 192.0.2.1", "m=audio 4000 RTP/AVP 0 8 101",
                 "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000",
                 "a=fmtp:101 0-15", "a=ptime:20", "a=sendrecv"):
        assert line + "\r\n" in text
    v6 = make_offer("::1", 4002, codecs=("PCMA",), dtmf=False, ptime=30, direction="sendonly")
    assert "c=IN IP6 ::1" in str(v6) and "m=audio 4002 RTP/AVP 8\r\n" in str(v6)
    assert v6.first_audio().ptime == 30 and v6.direction_of_audio == "sendonly"  # type: ignore[union-attr]


@pytest.mark.parametrize("kwargs", [{"codecs": ("G729",)}, {"ptime": 25}, {"direction": "up"}, {"codecs": ()}])
def test_make_offer_rejects_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        make_offer("127.0.0.1", 4000, **kwargs)


def test_answer_keeps_offerer_order_and_numbers() -> None:
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        "m=audio 7000 RTP/AVP 18 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-11\r\na=ptime:30\r\n"
    )
    answer = make_answer(offer, "10.0.0.2", 8000)
    audio = answer.first_audio()
    assert audio is not None
    assert audio.formats == ["8", "0", "96"]  # PCMA first, as the offerer preferred; G.729 dropped
    assert audio.fmtp() == {96: "0-11"} and audio.ptime == 30 and audio.direction == "sendrecv"
    params = negotiate(answer, offer)
    assert (params.encoding, params.payload_type, params.dtmf_payload_type, params.ptime) == ("PCMA", 8, 96, 30)
    assert params.remote_rtp == ("10.0.0.1", 7000) and params.remote_rtcp == ("10.0.0.1", 7001)
    caller_view = negotiate(offer, answer)
    assert caller_view.encoding == "PCMA" and caller_view.remote_rtp == ("10.0.0.2", 8000)


@pytest.mark.parametrize(
    "offered, wanted, expected",
    [("sendrecv", None, "sendrecv"), ("sendonly", None, "recvonly"), ("recvonly", None, "sendonly"),
     ("inactive", None, "inactive"), ("sendrecv", "sendonly", "sendonly"), ("sendonly", "sendonly", "inactive")],
)
def test_answer_direction_is_mirrored(offered: str, wanted: str, expected: str) -> None:
    offer = make_offer("127.0.0.1", 4000, direction=offered)
    answer = make_answer(offer, "127.0.0.1", 5000, direction=wanted)
    assert answer.direction_of_audio == expected
    assert negotiate(answer, offer).direction == expected


def test_no_common_codec_is_488() -> None:
    offer = SessionDescription.parse(SIPP_OFFER.replace("RTP/AVP 0", "RTP/AVP 18").replace("0 PCMU", "18 G729"))
    with pytest.raises(NegotiationError) as info:
        make_answer(offer, "127.0.0.1", 5000)
    assert info.value.status_code == 488 and "G729" in str(info.value)
    with pytest.raises(NegotiationError):
        make_answer(make_offer("127.0.0.1", 4000, codecs=("PCMA",)), "127.0.0.1", 5000, codecs=("PCMU",))


def test_extra_streams_are_rejected_with_port_zero() -> None:
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        "m=video 9000 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\nm=audio 7000 RTP/AVP 0\r\nm=audio 7002 RTP/AVP 8\r\n"
    )
    answer = make_answer(offer, "10.0.0.2", 8000)
    assert [(m.media, m.port) for m in answer.media] == [("video", 0), ("audio", 8000), ("audio", 0)]
    assert SessionDescription.parse(answer.serialize()).first_audio().port == 8000  # type: ignore[union-attr]


def test_rtcp_attribute_and_media_level_connection() -> None:
    remote = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\nc=IN IP6 ::2\r\n"
        "a=rtcp:7100 IN IP6 ::3\r\na=ptime:40\r\n"
    )
    params = negotiate(make_offer("::1", 4000), remote)
    assert isinstance(params, MediaParams)
    assert params.remote_rtp == ("::2", 7000) and params.remote_rtcp == ("::3", 7100) and params.ptime == 40


def test_negotiate_errors() -> None:
    rejected = SessionDescription.parse(SIPP_OFFER.replace("audio 6000", "audio 0"))
    with pytest.raises(NegotiationError):
        negotiate(make_offer("127.0.0.1", 4000), rejected)
    with pytest.raises(NegotiationError):
        negotiate(make_offer("127.0.0.1", 4000, codecs=("PCMA",)), SessionDescription.parse(SIPP_OFFER))


@pytest.mark.parametrize(
    "body, message",
    [
        ("", "empty"),
        ("o=- 1 1 IN IP4 1.2.3.4\r\n", "v= line"),
        ("v=1\r\n", "version"),
        ("v=0\r\ns=-\r\n", "no o= line"),
        ("v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n", "integers"),
        ("v=0\r\no=- 1 1 IN IP4\r\n", "6 fields"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 300.1.1.1\r\n", "IPv4"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP9 x\r\n", "address type"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n", "port"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP x\r\n", "payload type"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 0\r\n", "connection"),
        ("v=0\r\nbogus\r\n", "<type>=<value>"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=now\r\n", "t="),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 0\r\no=x\r\n", "not allowed"),
        (b"v=0\r\no=\xff\r\n", "UTF-8"),
    ],
)
def test_parse_errors_are_specific(body: object, message: str) -> None:
    with pytest.raises(SdpParseError) as info:
        SessionDescription.parse(body)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_limits() -> None:
    with pytest.raises(SdpParseError, match="limit"):
        SessionDescription.parse(SIPP_OFFER, max_size=20)
    with pytest.raises(SdpParseError, match="lines"):
        SessionDescription.parse(SIPP_OFFER, max_lines=3)
    many = SIPP_OFFER + "m=audio 1 RTP/AVP 0\r\n" * 3
    with pytest.raises(SdpParseError, match="media sections"):
        SessionDescription.parse(many, max_media=2)
    with pytest.raises(TypeError):
        SessionDescription.parse(12)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        SessionDescription.parse(data)
    except SdpParseError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_offer(data: st.DataObject) -> None:
    base = bytearray(make_offer("127.0.0.1", 4000, session_id=1).serialize())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(base) - 1))
        base[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(base)))
    try:
        sd = SessionDescription.parse(bytes(base[:cut]))
    except SdpParseError:
        return
    # whatever parsed re-serialises and parses to the same thing
    assert SessionDescription.parse(sd.serialize()).serialize() == sd.serialize()


@settings(max_examples=100, deadline=None)
@given(port=st.integers(1, 65535), ptime=st.sampled_from([10, 20, 30, 40, 50, 60]),
       codecs=st.permutations(["PCMU", "PCMA"]), direction=st.sampled_from(["sendrecv", "sendonly", "recvonly"]))
def test_offer_answer_round_trip_property(port: int, ptime: int, codecs: list, direction: str) -> None:
    offer = SessionDescription.parse(make_offer("127.0.0.1", port, codecs=codecs, ptime=ptime,
                                                direction=direction).serialize())
    answer = SessionDescription.parse(make_answer(offer, "127.0.0.2", 5000).serialize())
    mine, theirs = negotiate(offer, answer), negotiate(answer, offer)
    assert mine.encoding == theirs.encoding == codecs[0]
    assert mine.ptime == theirs.ptime == ptime
    assert theirs.remote_rtp == ("127.0.0.1", port) and mine.remote_rtp == ("127.0.0.2", 5000)
