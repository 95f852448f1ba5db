"""RFC 3550 §6.2/§6.3/A.7 RTCP interval computation (pure; no clock, injectable randomness)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyvoip_fast.rtp.rtcp_timing import (
    COMPENSATION,
    RtcpScheduler,
    deterministic_interval,
    reduced_minimum,
    rtcp_bandwidth,
    rtcp_interval,
    update_avg_rtcp_size,
)

G711_RTCP_BW = rtcp_bandwidth(64000)  # 5 % of 64 kbit/s = 400 octets/s


def test_constants() -> None:
    assert COMPENSATION == pytest.approx(1.21828, abs=1e-5)
    assert G711_RTCP_BW == 400.0
    assert reduced_minimum(64000) == pytest.approx(5.625)


def test_two_party_g711_is_tmin() -> None:
    # 2 members, both sending, ~100-octet compound packets: the bandwidth term (0.5 s) is below Tmin
    assert deterministic_interval(2, 2, G711_RTCP_BW, True, 100, initial=False) == 5.0
    assert deterministic_interval(2, 2, G711_RTCP_BW, True, 100, initial=True) == 2.5
    assert deterministic_interval(2, 1, G711_RTCP_BW, False, 100, initial=False) == 5.0


def test_randomisation_bounds_and_compensation() -> None:
    lo = rtcp_interval(2, 2, G711_RTCP_BW, True, 100, False, rng=lambda: 0.0)
    hi = rtcp_interval(2, 2, G711_RTCP_BW, True, 100, False, rng=lambda: 0.999999)
    assert lo == pytest.approx(2.5 / COMPENSATION)
    assert hi == pytest.approx(7.5 / COMPENSATION, rel=1e-5)
    rng = random.Random(5)
    draws = [rtcp_interval(2, 2, G711_RTCP_BW, True, 100, False, rng=rng.random) for _ in range(4000)]
    assert min(draws) >= lo and max(draws) <= hi
    assert sum(draws) / len(draws) == pytest.approx(5.0 / COMPENSATION, rel=0.02)  # about 4.1 s on average
    first = [rtcp_interval(2, 2, G711_RTCP_BW, True, 100, True, rng=rng.random) for _ in range(2000)]
    assert sum(first) / len(first) == pytest.approx(2.5 / COMPENSATION, rel=0.03)


def test_bandwidth_split_between_senders_and_receivers() -> None:
    # large session: 100 members, 2 senders (<= 25 %): senders share 1/4 of the RTCP bandwidth
    bw = rtcp_bandwidth(1_000_000)  # 6250 octets/s
    sender = deterministic_interval(100, 2, bw, True, 200, False, min_time=0)
    receiver = deterministic_interval(100, 2, bw, False, 200, False, min_time=0)
    assert sender == pytest.approx(200 * 2 / (bw * 0.25))
    assert receiver == pytest.approx(200 * 98 / (bw * 0.75))
    # senders above a quarter: everyone shares the whole bandwidth
    assert deterministic_interval(10, 5, bw, True, 200, False, min_time=0) == pytest.approx(200 * 10 / bw)
    # a big session is dominated by the bandwidth term, not Tmin
    assert deterministic_interval(1000, 1, G711_RTCP_BW, False, 100, False) == pytest.approx(100 * 999 / 300)


def test_avg_size_smoothing() -> None:
    avg = 100.0
    for _ in range(200):
        avg = update_avg_rtcp_size(avg, 72)
    assert avg == pytest.approx(100.0, abs=0.01)  # converges to size + 28 octets of UDP/IPv4
    assert update_avg_rtcp_size(100.0, 52, overhead=48) == pytest.approx(100.0)


@pytest.mark.parametrize(
    "args",
    [
        (0, 0, 400, True, 100, False),
        (2, 3, 400, True, 100, False),
        (2, 1, 0, True, 100, False),
        (2, 1, 400, True, 0, False),
    ],
)
def test_rejects_bad_arguments(args: tuple) -> None:
    with pytest.raises(ValueError):
        deterministic_interval(*args)


def test_rejects_bad_rng_and_bandwidth() -> None:
    with pytest.raises(ValueError):
        rtcp_interval(2, 1, 400, True, 100, False, rng=lambda: 1.0)
    with pytest.raises(ValueError):
        rtcp_bandwidth(0)
    with pytest.raises(ValueError):
        reduced_minimum(-1)


@given(
    members=st.integers(1, 10_000),
    sender_share=st.floats(0, 1),
    bw=st.floats(1, 1e7),
    size=st.floats(20, 1500),
    we_sent=st.booleans(),
    initial=st.booleans(),
    u=st.floats(0, 0.9999999),
)
def test_interval_properties(members: int, sender_share: float, bw: float, size: float, we_sent: bool,
                             initial: bool, u: float) -> None:
    senders = int(members * sender_share)
    td = deterministic_interval(members, senders, bw, we_sent, size, initial)
    assert td >= (2.5 if initial else 5.0)
    t = rtcp_interval(members, senders, bw, we_sent, size, initial, rng=lambda: u)
    assert math.isfinite(t) and td * 0.5 / COMPENSATION <= t * (1 + 1e-12) and t <= td * 1.5 / COMPENSATION


def test_scheduler_state() -> None:
    s = RtcpScheduler(rng=random.Random(1).random)
    first = s.next_interval()
    assert 2.5 * 0.5 / COMPENSATION <= first <= 2.5 * 1.5 / COMPENSATION
    s.on_sent(80)
    assert not s.initial and s.avg_rtcp_size == pytest.approx(100 / 16 * 15 + 108 / 16)
    assert 5 * 0.5 / COMPENSATION <= s.next_interval() <= 5 * 1.5 / COMPENSATION
    s.on_received(120)
    assert RtcpScheduler(fixed_interval=0.25).next_interval() == 0.25
