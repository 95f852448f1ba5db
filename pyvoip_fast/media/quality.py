"""Call-quality estimate with the ITU-T G.107 E-model: R-factor and MOS for G.711 over a lossy, delayed path, and
its wideband form (G.107.1, R on a 0-129 scale) for G.722 and 16 kHz L16 (``estimate_wideband``).

Strategy
--------
The E-model (ITU-T G.107 §3) rates a connection as ``R = Ro - Is - Id - Ie,eff + A``. Everything that is not
measured by a VoIP endpoint (loudness ratings, room noise, side-tone, echo loss...) is left at the G.107 §3.7
default values, for which ``Ro - Is - Id`` is 93.2 (more precisely 93.206; we compute it from the G.107
formulas, we do not hard-code it).
What *is* measured enters the model:

* **Packet loss** through the effective equipment impairment (G.107 §3.5, eq. 7-29)::

      Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)

  with the G.711 values of ITU-T G.113 Appendix I (Table I.3): ``Ie = 0``; packet-loss robustness
  ``Bpl = 25.1`` with the G.711 Appendix I concealment and ``Bpl = 4.3`` without concealment (silence
  insertion). ``BurstR = 1`` for random loss, > 1 for bursty loss.

* **One-way delay** through the delay impairment ``Id = Idte + Idle + Idd`` (G.107 §3.4). Two models:

  - ``"g107"`` (default): the full G.107 formulas with default echo parameters (TELR 65 dB, WEPL 110 dB) and
    the usual VoIP assumption that the talker-echo path delay ``T`` equals the mouth-to-ear delay ``Ta`` and the
    listener-echo round trip is ``Tr = 2 * Ta``. ``Idd = 0`` up to 100 ms.
  - ``"simplified"``: the common linear fit ``Id = 0.024 * Ta + 0.11 * (Ta - 177.3) * H(Ta - 177.3)``
    (Cole & Rosenbluth, 2001) on top of 93.2, as quoted in REFERENCE.md.

* **MOS** from R with G.107 Annex B (eq. B-4): ``1`` for ``R <= 0``, ``4.5`` for ``R >= 100``, else
  ``1 + 0.035 R + R (R - 60)(100 - R) 7e-6``.

Everything here is pure arithmetic: no I/O, no clock.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

__all__ = [
    "G711_IE",
    "G711_BPL_PLC",
    "G711_BPL_NO_PLC",
    "QualityEstimate",
    "r_factor",
    "mos_from_r",
    "estimate",
    "delay_impairment",
    "effective_equipment_impairment",
    "default_r",
    "WIDEBAND_IE",
    "RO_WB",
    "WB_SCALE",
    "wideband_r_factor",
    "estimate_wideband",
]

logger = logging.getLogger(__name__)

#: Equipment impairment factor of G.711 (ITU-T G.113 Appendix I).
G711_IE = 0.0
#: Packet-loss robustness factor of G.711 with Appendix I packet-loss concealment (G.113 Appendix I).
G711_BPL_PLC = 25.1
#: Packet-loss robustness factor of G.711 without concealment (G.113 Appendix I).
G711_BPL_NO_PLC = 4.3

#: ITU-T G.107.1: the wideband rating scale runs to 129; ``WB_SCALE`` is its ratio to the narrowband one
RO_WB = 129.0
WB_SCALE = 1.29
#: wideband equipment impairment factors Ie,wb (ITU-T G.113 wideband tables): G.722 at 64 kbit/s; linear PCM at
#: 16 kHz is the wideband reference itself
WIDEBAND_IE = {"G722": 13.0, "L16": 0.0}

# G.107 §3.7 Table 1 default values (dB, dBm0, dB(A), ms as noted).
_SLR = 8.0  # send loudness rating
_RLR = 2.0  # receive loudness rating
_STMR = 15.0  # sidetone masking rating
_LSTR = 18.0  # listener sidetone rating
_DS = 3.0  # D-value of telephone, send side
_TELR = 65.0  # talker echo loudness rating
_WEPL = 110.0  # weighted echo path loss
_QDU = 1.0  # number of quantization distortion units
_NC = -70.0  # circuit noise referred to the 0 dBr point (dBm0p)
_NFOR = -64.0  # noise floor at the receive side (dBmp)
_PS = 35.0  # room noise at the send side (dB(A))
_PR = 35.0  # room noise at the receive side (dB(A))
_MT = 100.0  # minimum perceivable delay for Idd (ms)
_ST = 1.0  # delay sensitivity
_OLR = _SLR + _RLR


def _log10_sum(*levels: float) -> float:
    return 10.0 * math.log10(sum(10.0 ** (x / 10.0) for x in levels))


def _noise_no() -> float:
    """Total noise power ``No`` (G.107 eq. 7-3 to 7-6)."""
    nos = _PS - _SLR - _DS - 100.0 + 0.004 * (_PS - _OLR - _DS - 14.0) ** 2
    pre = _PR + 10.0 * math.log10(1.0 + 10.0 ** ((10.0 - _LSTR) / 10.0))
    nor = _RLR - 121.0 + pre + 0.008 * (pre - 35.0) ** 2
    nfo = _NFOR + _RLR
    return _log10_sum(_NC, nos, nor, nfo)


_NO = _noise_no()
_RO = 15.0 - 1.5 * (_SLR + _NO)  # basic signal-to-noise ratio, eq. 7-2


def _stmro(t_ms: float) -> float:
    return -10.0 * math.log10(10.0 ** (-_STMR / 10.0) + math.exp(-t_ms / 4.0) * 10.0 ** (-_TELR / 10.0))


def _simultaneous_is(t_ms: float) -> float:
    """Simultaneous impairment ``Is = Iolr + Ist + Iq`` (G.107 §3.3)."""
    xolr = _OLR + 0.2 * (64.0 + _NO - _RLR)
    iolr = 20.0 * ((1.0 + (xolr / 8.0) ** 8) ** (1.0 / 8.0) - xolr / 8.0)
    s = _stmro(t_ms)
    ist = (
        12.0 * (1.0 + ((s - 13.0) / 6.0) ** 8) ** (1.0 / 8.0)
        - 28.0 * (1.0 + ((s + 1.0) / 19.4) ** 35) ** (1.0 / 35.0)
        - 13.0 * (1.0 + ((s - 3.0) / 33.0) ** 13) ** (1.0 / 13.0)
        + 29.0
    )
    q = 37.0 - 15.0 * math.log10(_QDU)
    g = 1.07 + 0.258 * q + 0.0602 * q * q
    y = (_RO - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0
    z = 46.0 / 30.0 - g / 40.0
    iq = 15.0 * math.log10(1.0 + 10.0**y + 10.0**z)
    return float(iolr + ist + iq)


def default_r() -> float:
    """R for the G.107 default parameters, zero delay and no loss: ``Ro - Is - Id(0)`` = 93.2.

    (``Ro`` = 94.77, ``Is`` = 1.41 and the listener-echo part of ``Id`` = 0.15 at ``Tr = 0``.)
    """
    return _RO - _simultaneous_is(0.0) - _idte(0.0) - _idle(0.0) - _idd(0.0)


def _idd(ta_ms: float) -> float:
    """Impairment by too-long absolute delay ``Idd`` (G.107 eq. 7-27/7-28)."""
    if ta_ms <= _MT:
        return 0.0
    x = math.log10(ta_ms / _MT) / math.log10(2.0)
    e = 6.0 * _ST
    return float(25.0 * ((1.0 + x**e) ** (1.0 / e) - 3.0 * (1.0 + (x / 3.0) ** e) ** (1.0 / e) + 2.0))


def _idte(t_ms: float) -> float:
    """Talker-echo impairment ``Idte`` (G.107 eq. 7-22 to 7-25), STMR 15 dB (no low-STMR correction)."""
    roe = -1.5 * (_NO - _RLR)
    terv = _TELR - 40.0 * math.log10((1.0 + t_ms / 10.0) / (1.0 + t_ms / 150.0)) + 6.0 * math.exp(-0.3 * t_ms**2)
    re = 80.0 + 2.5 * (terv - 14.0)
    d = roe - re
    return (d / 2.0 + math.sqrt(d * d / 4.0 + 100.0) - 1.0) * (1.0 - math.exp(-t_ms))


def _idle(tr_ms: float) -> float:
    """Listener-echo impairment ``Idle`` (G.107 eq. 7-26)."""
    rle = 10.5 * (_WEPL + 7.0) * (tr_ms + 1.0) ** (-0.25)
    d = _RO - rle
    return float(d / 2.0 + math.sqrt(d * d / 4.0 + 169.0))


def delay_impairment(one_way_delay_ms: float, *, model: str = "g107") -> float:
    """Delay impairment ``Id`` relative to the zero-delay rating.

    For ``model="g107"`` this is ``Id(Ta) - Id(0)`` with ``T = Ta``, ``Tr = 2 Ta`` (the part of ``Idle`` and
    ``Is`` present at zero delay is already inside the 93.2 of :func:`default_r`).

    Args:
        one_way_delay_ms: mouth-to-ear delay ``Ta`` in milliseconds (>= 0).
        model: ``"g107"`` (full formulas, default) or ``"simplified"`` (linear fit).

    Returns:
        The impairment in R units (>= 0 up to rounding).

    Raises:
        ValueError: negative or non-finite delay, unknown model.
    """
    ta = float(one_way_delay_ms)
    if not math.isfinite(ta) or ta < 0:
        raise ValueError(f"one-way delay must be a finite number >= 0 ms, got {one_way_delay_ms!r}")
    if model == "simplified":
        return 0.024 * ta + (0.11 * (ta - 177.3) if ta > 177.3 else 0.0)
    if model != "g107":
        raise ValueError(f"unknown delay model {model!r} (use 'g107' or 'simplified')")

    def total(t: float) -> float:
        return _simultaneous_is(t) + _idte(t) + _idle(2.0 * t) + _idd(t)

    return total(ta) - total(0.0)


def effective_equipment_impairment(
    packet_loss_percent: float, *, ie: float = G711_IE, bpl: float = G711_BPL_PLC, burst_ratio: float = 1.0
) -> float:
    """``Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)`` (G.107 eq. 7-29).

    Args:
        packet_loss_percent: ``Ppl``, 0-100.
        ie: equipment impairment of the codec.
        bpl: packet-loss robustness factor.
        burst_ratio: ``BurstR`` (1 for random loss).

    Raises:
        ValueError: a value out of range.
    """
    ppl = float(packet_loss_percent)
    if not math.isfinite(ppl) or not 0.0 <= ppl <= 100.0:
        raise ValueError(f"packet loss must be a percentage in [0, 100], got {packet_loss_percent!r}")
    if not (math.isfinite(burst_ratio) and burst_ratio >= 1.0):
        raise ValueError(f"burst ratio must be >= 1, got {burst_ratio!r}")
    if not (math.isfinite(bpl) and bpl > 0):
        raise ValueError(f"Bpl must be > 0, got {bpl!r}")
    return ie + (95.0 - ie) * ppl / (ppl / burst_ratio + bpl)


def r_factor(
    packet_loss_percent: float,
    one_way_delay_ms: float = 0.0,
    *,
    plc: bool = True,
    burst_ratio: float = 1.0,
    ie: float = G711_IE,
    bpl: float | None = None,
    delay_model: str = "g107",
) -> float:
    """Transmission rating R for a G.711 call (G.107 eq. 7-1 with default parameters and A = 0).

    Args:
        packet_loss_percent: random packet-loss rate ``Ppl`` in percent (0-100).
        one_way_delay_ms: mouth-to-ear delay ``Ta`` in ms.
        plc: whether the receiver conceals lost packets (selects ``Bpl`` 25.1 or 4.3).
        burst_ratio: ``BurstR`` (1.0 for random loss).
        ie: codec equipment impairment (0 for G.711).
        bpl: override the packet-loss robustness factor.
        delay_model: ``"g107"`` or ``"simplified"``, see :func:`delay_impairment`.

    Returns:
        R, clamped to [0, 100].

    Raises:
        ValueError: an argument out of range.
    """
    b = (G711_BPL_PLC if plc else G711_BPL_NO_PLC) if bpl is None else bpl
    base = default_r() if delay_model == "g107" else 93.2
    r = base - delay_impairment(one_way_delay_ms, model=delay_model)
    r -= effective_equipment_impairment(packet_loss_percent, ie=ie, bpl=b, burst_ratio=burst_ratio)
    return min(100.0, max(0.0, r))


def mos_from_r(r: float) -> float:
    """Estimated conversational MOS from R (G.107 Annex B, eq. B-4).

    Returns 1.0 for ``R <= 0`` and 4.5 for ``R >= 100``; the cubic is floored at 1.0 (it would give 0.9998
    around R = 3).

    Raises:
        ValueError: R is NaN.
    """
    r = float(r)
    if math.isnan(r):
        raise ValueError("R must be a number, got NaN")
    if r <= 0.0:
        return 1.0
    if r >= 100.0:
        return 4.5
    # the cubic dips a hair below 1 for 0 < R < 6.5; MOS is 1 at worst
    return max(1.0, 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6)


@dataclass(frozen=True)
class QualityEstimate:
    """E-model result for one call."""

    r_factor: float
    """R with the concealment setting the estimate was asked for."""
    mos: float
    """MOS from ``r_factor``."""
    r_factor_no_plc: float
    """R if the receiver had inserted silence instead of concealing (Bpl = 4.3)."""
    mos_no_plc: float
    """MOS from ``r_factor_no_plc``."""


def estimate(
    packet_loss_percent: float, one_way_delay_ms: float = 0.0, *, plc: bool = True, burst_ratio: float = 1.0
) -> QualityEstimate:
    """R-factor and MOS for G.711 with and without packet-loss concealment.

    Args:
        packet_loss_percent: measured loss in percent (0-100).
        one_way_delay_ms: measured or estimated mouth-to-ear delay (e.g. RTT/2 + jitter-buffer delay + 20 ms).
        plc: whether ``r_factor``/``mos`` assume concealment.
        burst_ratio: ``BurstR``.

    Returns:
        A :class:`QualityEstimate`.
    """
    r = r_factor(packet_loss_percent, one_way_delay_ms, plc=plc, burst_ratio=burst_ratio)
    r0 = r_factor(packet_loss_percent, one_way_delay_ms, plc=False, burst_ratio=burst_ratio)
    return QualityEstimate(r_factor=r, mos=mos_from_r(r), r_factor_no_plc=r0, mos_no_plc=mos_from_r(r0))


def wideband_r_factor(
    packet_loss_percent: float,
    one_way_delay_ms: float = 0.0,
    *,
    codec: str = "G722",
    plc: bool = True,
    burst_ratio: float = 1.0,
    delay_model: str = "g107",
) -> float:
    """Transmission rating on the wideband scale of ITU-T G.107.1 (0-129) for a 16 kHz codec.

    ``R = Ro,wb - Id,wb - Ie,eff,wb`` with ``Ro,wb = 129`` (a wideband terminal with the default parameters:
    ``Is,wb = 0``), the delay impairment of :func:`delay_impairment` carried onto the wideband scale
    (``Id,wb = 1.29 * Id``), and ``Ie,eff,wb`` from eq. 7-29 with the codec's ``Ie,wb`` (``WIDEBAND_IE``: 13 for
    G.722 at 64 kbit/s). The loss robustness ``Bpl`` is G.711's (25.1 with concealment, 4.3 without): our
    concealment is the same algorithm at 16 kHz, and we have no published G.722 figure to put in its place.

    Raises:
        ValueError: an unknown codec or an argument out of range.
    """
    if codec.upper() not in WIDEBAND_IE:
        raise ValueError(f"no wideband impairment for codec {codec!r} (known: {', '.join(WIDEBAND_IE)})")
    ie = WIDEBAND_IE[codec.upper()]
    bpl = G711_BPL_PLC if plc else G711_BPL_NO_PLC
    r = RO_WB - WB_SCALE * delay_impairment(one_way_delay_ms, model=delay_model)
    r -= effective_equipment_impairment(packet_loss_percent, ie=ie, bpl=bpl, burst_ratio=burst_ratio)
    return min(RO_WB, max(0.0, r))


def estimate_wideband(
    packet_loss_percent: float, one_way_delay_ms: float = 0.0, *, codec: str = "G722", plc: bool = True,
    burst_ratio: float = 1.0,
) -> QualityEstimate:
    """R on the wideband scale (0-129) and MOS, with and without concealment, for a 16 kHz codec.

    The MOS takes R back to the narrowband scale (``R / 1.29``) and applies G.107 Annex B, so a wideband call
    without impairments rates MOS 4.5 and a G.722 call at most about 4.3 (its own coding impairment).
    """
    r = wideband_r_factor(packet_loss_percent, one_way_delay_ms, codec=codec, plc=plc, burst_ratio=burst_ratio)
    r0 = wideband_r_factor(packet_loss_percent, one_way_delay_ms, codec=codec, plc=False, burst_ratio=burst_ratio)
    return QualityEstimate(r_factor=r, mos=mos_from_r(r / WB_SCALE), r_factor_no_plc=r0,
                           mos_no_plc=mos_from_r(r0 / WB_SCALE))
