"""E-model (ITU-T G.107) R-factor and MOS, checked against values computed by hand from the formulas."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyvoip_fast.media import quality
from pyvoip_fast.media.quality import estimate, mos_from_r, r_factor


def test_default_rating_is_93_2() -> None:
    # G.107 defaults: Ro = 94.77, Is = 1.41, Idle(Tr=0) = 0.15 -> R = 93.2
    assert quality._RO == pytest.approx(94.77, abs=0.01)
    assert quality._simultaneous_is(0.0) == pytest.approx(1.41, abs=0.01)
    assert quality.default_r() == pytest.approx(93.2, abs=0.01)
    assert r_factor(0.0) == pytest.approx(93.2, abs=0.01)


def test_mos_hand_computed() -> None:
    # 1 + 0.035*93.2 + 93.2*33.2*6.8*7e-6 = 1 + 3.262 + 0.147286
    assert mos_from_r(93.2) == pytest.approx(4.409286, abs=1e-6)
    assert mos_from_r(50.0) == pytest.approx(1 + 1.75 + 50 * -10 * 50 * 7e-6)  # 2.575
    assert mos_from_r(0.0) == 1.0
    assert mos_from_r(-5.0) == 1.0
    assert mos_from_r(100.0) == 4.5
    assert mos_from_r(120.0) == 4.5


def test_g711_loss_with_and_without_plc() -> None:
    r0 = quality.default_r()
    # Ie,eff = 95 * 1 / (1 + 25.1) = 3.63985 with PLC; 95 / (1 + 4.3) = 17.92453 without
    assert r_factor(1.0) == pytest.approx(r0 - 95 / 26.1, abs=1e-9)
    assert r_factor(1.0, plc=False) == pytest.approx(r0 - 95 / 5.3, abs=1e-9)
    # bursty loss: 95 * 5 / (5/2 + 25.1)
    assert r_factor(5.0, burst_ratio=2.0) == pytest.approx(r0 - 95 * 5 / 27.6, abs=1e-9)
    est = estimate(2.0)
    assert est.r_factor == pytest.approx(r0 - 95 * 2 / 27.1)
    assert est.r_factor_no_plc == pytest.approx(r0 - 95 * 2 / 6.3)
    assert est.mos == pytest.approx(mos_from_r(est.r_factor))
    assert est.mos_no_plc < est.mos
    assert 4.2 < est.mos < 4.3


def test_delay_impairment_idd_hand_computed() -> None:
    assert quality._idd(100.0) == 0.0
    # Ta = 200 ms: X = 1, Idd = 25 * (2**(1/6) - 3 * (1 + 3**-6)**(1/6) + 2)
    expected = 25 * (2 ** (1 / 6) - 3 * (1 + 3.0**-6) ** (1 / 6) + 2)
    assert quality._idd(200.0) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(3.0444, abs=1e-3)


def test_simplified_delay_model_hand_computed() -> None:
    assert quality.delay_impairment(100, model="simplified") == pytest.approx(2.4)
    assert quality.delay_impairment(200, model="simplified") == pytest.approx(4.8 + 0.11 * 22.7)
    assert r_factor(0.0, 200, delay_model="simplified") == pytest.approx(93.2 - 4.8 - 2.497)


@pytest.mark.parametrize("ta", [0, 50, 100, 150, 200, 250, 300])
def test_full_g107_delay_close_to_the_linear_fit(ta: float) -> None:
    # the linear fit was derived from G.107 with default parameters: they agree within ~0.5 R up to 300 ms
    full = quality.delay_impairment(ta)
    fit = quality.delay_impairment(ta, model="simplified")
    assert abs(full - fit) < 0.6


def test_delay_lowers_r_monotonically() -> None:
    rs = [r_factor(0.0, d) for d in range(0, 600, 25)]
    assert all(a >= b for a, b in zip(rs, rs[1:]))
    assert r_factor(0.0, 150.0) > 89


@given(st.floats(0, 100), st.floats(0, 1000), st.booleans())
def test_r_and_mos_in_range(loss: float, delay: float, plc: bool) -> None:
    r = r_factor(loss, delay, plc=plc)
    assert 0.0 <= r <= 100.0
    assert 1.0 <= mos_from_r(r) <= 4.5
    assert r_factor(loss, delay, plc=True) >= r_factor(loss, delay, plc=False) - 1e-9


@pytest.mark.parametrize(
    "kwargs",
    [
        {"packet_loss_percent": -1},
        {"packet_loss_percent": 101},
        {"packet_loss_percent": math.nan},
        {"packet_loss_percent": 1, "one_way_delay_ms": -1},
        {"packet_loss_percent": 1, "burst_ratio": 0.5},
        {"packet_loss_percent": 1, "delay_model": "nope"},
    ],
)
def test_bad_arguments(kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        r_factor(**kwargs)
    with pytest.raises(ValueError):
        mos_from_r(math.nan)


def test_wideband_r_for_g722_follows_g107_1_on_the_129_scale() -> None:
    from pyvoip_fast.media.quality import RO_WB, WB_SCALE, WIDEBAND_IE, delay_impairment, estimate_wideband, \
        wideband_r_factor

    assert (RO_WB, WB_SCALE, WIDEBAND_IE["G722"]) == (129.0, 1.29, 13.0)
    # no loss, 50 ms: Ro,wb - 1.29 Id - Ie,wb
    assert wideband_r_factor(0.0, 50.0) == pytest.approx(129.0 - 1.29 * delay_impairment(50.0) - 13.0)
    assert wideband_r_factor(0.0, 0.0, codec="L16") == pytest.approx(129.0)
    rs = [wideband_r_factor(loss, 80.0) for loss in (0, 1, 3, 10, 30)]
    assert rs == sorted(rs, reverse=True) and rs[-1] >= 0.0
    est = estimate_wideband(3.0, 80.0)
    assert est.r_factor > est.r_factor_no_plc and 1.0 <= est.mos_no_plc < est.mos <= 4.5
    assert estimate_wideband(0.0, 0.0, codec="L16").mos == pytest.approx(4.5)
    with pytest.raises(ValueError, match="no wideband impairment"):
        wideband_r_factor(0.0, codec="opus")
