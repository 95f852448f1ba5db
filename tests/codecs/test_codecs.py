"""The codec interface and registry: what every codec promises the media path and SDP, and L16 on the wire."""

from __future__ import annotations

import array

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyvoip_fast import codecs
from pyvoip_fast.codecs import L16_16K, PCMA, PCMU, Codec
from pyvoip_fast.codecs import g711

ALL = [codecs.get(name) for name in codecs.available()]


def test_registry_holds_g711_g722_and_l16_and_offers_g711_by_default() -> None:
    assert codecs.available() == ["PCMU/8000", "PCMA/8000", "G722/8000", "L16/16000"]
    assert codecs.DEFAULT_CODECS == ("PCMU", "PCMA")
    assert codecs.get("pcmu") is PCMU and codecs.get("PCMA/8000") is PCMA
    assert codecs.get("l16") is L16_16K and codecs.get("L16/16000") is L16_16K
    assert codecs.find("pcmu", 8000) is PCMU and codecs.find("L16", 16000) is L16_16K
    assert codecs.find("PCMU", 16000) is None and codecs.find("L16", 16000, 2) is None
    assert codecs.by_static_payload_type(0) is PCMU and codecs.by_static_payload_type(8) is PCMA
    assert codecs.by_static_payload_type(96) is None
    g722 = codecs.get("g722")
    assert g722 is codecs.G722 and codecs.by_static_payload_type(9) is g722 and codecs.find("G722", 8000) is g722
    # RFC 3551 §4.5.2: 16 kHz audio on an 8 kHz RTP clock; 20 ms = 320 samples, 160 bytes, timestamp + 160
    assert (g722.sample_rate, g722.clock_rate) == (16000, 8000)
    assert (g722.frame_samples(20), g722.payload_bytes(20), g722.frame_timestamps(20)) == (320, 160, 160)


def test_unknown_codec_names_the_available_ones() -> None:
    with pytest.raises(ValueError,
                       match=r"unknown codec 'opus' \(available: PCMU/8000, PCMA/8000, G722/8000, L16/16000\)"):
        codecs.get("opus")
    with pytest.raises(ValueError, match="at least one codec"):
        codecs.resolve([])
    assert codecs.resolve(["PCMA", PCMU, "pcma"]) == [PCMA, PCMU]


def test_registering_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="PCMU/8000 is already registered"):
        codecs.register(PCMU)
    clash = Codec(name="XPT", clock_rate=8000, sample_rate=8000, bitrate=8000, payload_type=0,
                  make_encoder=PCMU.make_encoder, make_decoder=PCMU.make_decoder)
    with pytest.raises(ValueError, match="static payload type 0 already belongs to PCMU/8000"):
        codecs.register(clash)
    assert codecs.get("PCMU") is PCMU and "XPT/8000" not in codecs.available()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="pcmu"), "upper case"),
        (dict(name=""), "upper case"),
        (dict(clock_rate=0), "clock_rate must be a positive int"),
        (dict(sample_rate=-8000), "sample_rate must be a positive int"),
        (dict(payload_type=128), "payload_type must be 0..127"),
    ],
)
def test_codec_descriptions_are_checked(kwargs: dict, message: str) -> None:
    base = dict(name="X", clock_rate=8000, sample_rate=8000, bitrate=64000, make_encoder=PCMU.make_encoder,
                make_decoder=PCMU.make_decoder)
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Codec(**base)


@pytest.mark.parametrize("codec", ALL, ids=lambda c: c.key)
@pytest.mark.parametrize("ptime", [10, 20, 30, 60])
def test_frame_geometry_comes_from_the_codec(codec: Codec, ptime: int) -> None:
    n = codec.frame_samples(ptime)
    assert n == codec.sample_rate * ptime // 1000
    assert codec.frame_timestamps(ptime) == codec.clock_rate * ptime // 1000
    pcm = (np.sin(np.arange(n) * 0.05) * 12000).astype(np.int16)
    payload = codec.encoder().encode(pcm)
    assert len(payload) == codec.payload_bytes(ptime)
    out = codec.decoder().decode(payload)
    assert out.dtype == np.int16 and len(out) == n


def test_a_wideband_codec_may_run_its_rtp_clock_slower_than_its_audio() -> None:
    # G.722's case (RFC 3551 §4.5.2): 16 kHz audio, 8 kHz RTP clock; frames and timestamps differ
    g722_like = Codec(name="G722", clock_rate=8000, sample_rate=16000, bitrate=64000, payload_type=9,
                      make_encoder=PCMU.make_encoder, make_decoder=PCMU.make_decoder)
    assert g722_like.frame_samples(20) == 320 and g722_like.frame_timestamps(20) == 160
    assert g722_like.key == "G722/8000" and g722_like.static


def test_g711_codecs_are_the_bit_exact_functions() -> None:
    pcm = np.arange(-32768, 32768, 7, dtype=np.int16)
    assert PCMU.encoder().encode(pcm) == g711.ulaw_encode(pcm)
    assert PCMA.encoder().encode(pcm) == g711.alaw_encode(pcm)
    codes = bytes(range(256))
    assert PCMU.decoder().decode(codes).tobytes() == g711.ulaw_decode(codes)
    assert PCMA.decoder().decode(codes).tobytes() == g711.alaw_decode(codes)


def test_l16_is_network_byte_order() -> None:
    pcm = np.array([1, -2, 0x1234, -32768, 32767], dtype=np.int16)
    wire = L16_16K.encoder().encode(pcm)
    assert wire == b"\x00\x01\xff\xfe\x12\x34\x80\x00\x7f\xff"
    assert L16_16K.decoder().decode(wire).tolist() == pcm.tolist()
    # any int16 buffer is accepted, in native byte order
    assert L16_16K.encoder().encode(array.array("h", pcm.tolist())) == wire
    assert L16_16K.encoder().encode(pcm.tobytes()) == wire


def test_l16_decodes_an_odd_payload_up_to_its_last_whole_sample() -> None:
    assert L16_16K.decoder().decode(b"\x00\x05\x01").tolist() == [5]
    assert L16_16K.decoder().decode(b"").tolist() == []


@given(st.lists(st.integers(-32768, 32767), max_size=640))
def test_l16_round_trips_every_sample(samples: list) -> None:
    pcm = np.array(samples, dtype=np.int16)
    assert L16_16K.decoder().decode(L16_16K.encoder().encode(pcm)).tolist() == samples


@given(st.binary(max_size=2000))
def test_decoders_take_any_payload(payload: bytes) -> None:
    for codec in ALL:
        out = codec.decoder().decode(payload)
        assert out.dtype == np.int16
