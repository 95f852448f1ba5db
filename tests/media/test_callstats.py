"""CallStatistics: fields, JSON form and the E-model estimate."""

from __future__ import annotations

import json

import pytest

from pyvoip_fast.media.callstats import REQUIRED_KEYS, CallStatistics


def test_json_has_required_keys_and_round_trips() -> None:
    s = CallStatistics(codec="PCMU", packets_sent=250, bytes_sent=40000, packets_received=248, packets_lost=2,
                       packets_expected=250, loss_percent=0.8, jitter_ms=1.23456, rtt_ms=0.4, duration=5.0)
    s.update_quality()
    d = json.loads(s.to_json())
    for key in REQUIRED_KEYS + ("bytes_sent", "bytes_received", "packets_late", "packets_duplicated",
                                "frames_concealed", "jitter_buffer_delay_ms", "r_factor", "r_factor_no_plc",
                                "mos_no_plc", "duration", "codec"):
        assert key in d
    assert d["jitter_ms"] == 1.235 and d["packets_lost"] == 2 and d["codec"] == "PCMU"
    assert 1.0 <= d["mos"] <= 4.5 and d["mos"] >= d["mos_no_plc"]
    assert d["one_way_delay_ms"] == pytest.approx(0.2 + 20.0)


def test_rtt_unknown_is_null() -> None:
    d = CallStatistics().to_dict()
    assert d["rtt_ms"] is None and d["remote_ssrc"] is None


def test_quality_falls_with_loss_and_plc_helps() -> None:
    clean = CallStatistics(packets_expected=1000)
    clean.update_quality()
    lossy = CallStatistics(packets_expected=1000, packets_lost=50, loss_percent=5.0)
    lossy.update_quality()
    assert clean.r_factor > 90 and clean.mos > 4.3
    assert lossy.r_factor < clean.r_factor
    assert lossy.r_factor > lossy.r_factor_no_plc  # Bpl 25.1 with concealment vs 4.3 without
    assert lossy.mos > lossy.mos_no_plc


def test_copy_is_independent() -> None:
    s = CallStatistics(packets_sent=1)
    c = s.copy()
    s.packets_sent = 2
    assert c.packets_sent == 1


def test_no_audio_received_means_no_quality_estimate() -> None:
    """A side that heard nothing (a send-only caller) has no audio to rate: MOS and R are null, not 4.4."""
    s = CallStatistics(codec="PCMU", packets_sent=300, bytes_sent=48000)
    s.update_quality()
    d = json.loads(s.to_json())
    assert d["mos"] is None and d["r_factor"] is None and d["mos_no_plc"] is None and d["r_factor_no_plc"] is None
