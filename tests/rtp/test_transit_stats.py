"""``TransitStats``: the transit-time statistics an adaptive jitter buffer reads at every packet.

Checked three ways: against the rules written out here in plain Python (sliding-window minimum by brute force,
the smoothed jitter, the peak's release, the histogram's quantile), compiled against twin on the same streams
(every output equal, bit for bit, after every packet), and on arbitrary inputs from hypothesis, where both must
give the same result or raise the same exception.
"""

from __future__ import annotations

import math
import random
from types import ModuleType
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast import _compat

RATE = 8000
IMPLS = ["python"] if _compat.NO_EXTENSIONS else ["cython", "python"]
KW = dict(max_delay=0.5, window=10.0, coalesce=1.0, release_time=5.0, peak=0.04, bins=501, forget=0.004,
          quantile=0.995, quantile_every=5)


@pytest.fixture
def m(impl: str) -> ModuleType:
    return _compat.module_for("_stats", impl)


def stream(n: int, seed: int, *, jitter: float = 0.01, drift: float = 1.0, ts0: int = 1000) -> List[Tuple[int, float]]:
    """``n`` packets of 20 ms: (extended timestamp, arrival), with random delay up to ``jitter`` s and the sender's
    clock running ``drift`` times ours."""
    rng = random.Random(seed)
    return [(ts0 + 160 * i, 3.0 + i * 0.02 * drift + rng.random() * jitter) for i in range(n)]


def test_the_window_minimum_jitter_and_peak_follow_their_rules(m: ModuleType) -> None:
    ts = m.TransitStats(RATE, **KW)
    seen: List[Tuple[float, float]] = []  # every (arrival, transit), for the brute-force minimum
    jitter, prev, peak, peak_time = 0.0, None, KW["peak"], None
    for ets, arrival in stream(2000, 1, jitter=0.03):
        r = arrival - ets / RATE
        spread = ts.observe(ets, arrival)
        seen.append((arrival, r))
        # the minimum of a packet inside the window; coalescing may forget a packet up to ``coalesce`` early
        exact = min(t for a, t in seen if a >= arrival - KW["window"])
        short = min(t for a, t in seen if a >= arrival - KW["window"] + KW["coalesce"])
        assert exact <= ts.min_transit <= short
        assert spread == pytest.approx(r - ts.min_transit, abs=1e-12)
        if prev is not None and abs(r - prev) < 1.0:
            jitter += (abs(r - prev) - jitter) / 16.0
        prev = r
        if peak_time is not None and arrival > peak_time:
            peak *= math.exp(-(arrival - peak_time) / KW["release_time"])
        peak_time = arrival
        peak = max(peak, min(spread, KW["max_delay"]))
        assert ts.jitter == pytest.approx(jitter, rel=1e-12, abs=1e-15)
        assert ts.peak == pytest.approx(peak, rel=1e-12, abs=1e-15)
    # 30 ms of uniform delay: the 99.5 % quantile is near its top, in whole milliseconds
    assert 0.025 <= ts.spread_quantile() <= 0.031
    assert ts.entries <= 12  # coalesced: about window / coalesce entries, not one per packet of the window


def test_a_slow_sender_clock_keeps_the_window_small_and_a_step_restarts_it(m: ModuleType) -> None:
    ts = m.TransitStats(RATE, **KW)
    for ets, arrival in stream(3000, 2, jitter=0.0, drift=1.0005):  # every transit a little longer
        ts.observe(ets, arrival)
    assert ts.entries <= 12
    newest = 3.0 + 2999 * 0.02 * 1.0005
    assert newest - 11.0 <= ts.oldest[0] <= newest - 9.0 + 1e-9
    ts.observe(10**9, newest + 0.02)  # a timestamp step: the old transits mean nothing now
    assert ts.entries == 1 and ts.min_transit < 0.0
    ts.clear_window()
    assert ts.entries == 0 and ts.min_transit is None and ts.oldest is None and ts.jitter > 0.0


def test_the_quantile_is_recomputed_every_few_packets_and_is_zero_without_a_histogram(m: ModuleType) -> None:
    ts = m.TransitStats(RATE, **KW)
    assert ts.spread_quantile() == 0.0
    ts.observe(160, 1.0)
    ts.observe(320, 1.02 + 0.1)  # 100 ms late: a spread of 0.1 s, but the quantile waits for its 5 packets
    assert ts.spread_quantile() == 0.0
    for i in range(3, 6):
        ts.observe(160 * i, 1.0 + 0.02 * (i - 1))
    assert ts.spread_quantile() == pytest.approx(0.101)  # 1 of 5: above the 0.5 % tail, the top of its bin
    plain = m.TransitStats(RATE, max_delay=0.5, window=10.0, coalesce=1.0, release_time=5.0)
    for ets, arrival in stream(50, 3):
        plain.observe(ets, arrival)
    assert plain.spread_quantile() == 0.0 and plain.peak > 0.0


def test_the_histogram_forgets_and_rescales_without_overflow(m: ModuleType) -> None:
    ts = m.TransitStats(RATE, **{**KW, "forget": 0.5})  # each packet weighs twice the last: rescales every ~66
    for ets, arrival in stream(1000, 4, jitter=0.004):
        ts.observe(ets, arrival)
    q = ts.spread_quantile()
    assert 0.0 < q <= 0.005 and math.isfinite(q)


@pytest.mark.parametrize("bad", [dict(clock_rate=0), dict(bins=-1), dict(quantile_every=0),
                                 dict(coalesce=11.0), dict(coalesce=-1.0), dict(window=math.nan),
                                 # a packet weighing 1 / (1 - forget) times the one before: 1 divided by zero
                                 dict(forget=1.0), dict(forget=-0.1), dict(forget=math.nan)])
def test_bad_parameters_are_refused(m: ModuleType, bad: dict) -> None:
    args = {"clock_rate": RATE, **KW, **bad}
    rate = args.pop("clock_rate")
    with pytest.raises(ValueError):
        m.TransitStats(rate, **args)


@pytest.mark.parametrize("seed", range(6))
def test_compiled_and_twin_agree_packet_by_packet(seed: int) -> None:
    # compiled against twin (with the extensions switched off, the twin against itself: the run still must not fail)
    c, p = (_compat.module_for("_stats", i).TransitStats(RATE, **KW) for i in (IMPLS[0], "python"))
    rng = random.Random(seed)
    pkts = stream(3000, seed, jitter=rng.choice([0.0, 0.005, 0.05, 0.3]), drift=rng.choice([0.999, 1.0, 1.001]))
    for k, (ets, arrival) in enumerate(pkts):
        if rng.random() < 0.01:
            ets += rng.choice([-1, 1]) * rng.randrange(1, 1 << 40)  # a step now and then
        if rng.random() < 0.005:
            c.clear_window()
            p.clear_window()
        assert c.observe(ets, arrival) == p.observe(ets, arrival)
        assert (c.jitter, c.peak, c.entries, c.oldest) == (p.jitter, p.peak, p.entries, p.oldest)
        if k % 3 == 0:
            assert c.spread_quantile() == p.spread_quantile()


def _outcome(obj: Any, call: str, *args: Any) -> Tuple[str, Any]:
    try:
        return "ok", getattr(obj, call)(*args)
    except Exception as exc:  # the exception's type is the result to compare
        return "raised", type(exc)


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=300, deadline=None)
@given(
    params=st.fixed_dictionaries({
        "max_delay": st.floats(-1.0, 2.0), "window": st.floats(0.0, 20.0), "release_time": st.floats(0.01, 10.0),
        "peak": st.floats(0.0, 1.0), "bins": st.integers(0, 1200), "forget": st.floats(0.0, 0.99),
        "quantile": st.floats(0.0, 1.0), "quantile_every": st.integers(1, 10)}),
    coalesce_share=st.floats(0.0, 1.0),
    calls=st.lists(st.tuples(st.sampled_from(["observe", "observe", "observe", "quantile", "clear"]),
                             st.integers(-(1 << 64), 1 << 64) | st.integers(0, 1 << 33),
                             finite_or_not | st.floats(0.0, 1000.0)), max_size=60),
)
def test_compiled_and_twin_agree_on_arbitrary_input(params: dict, coalesce_share: float, calls: list) -> None:
    made: List[Optional[Any]] = []
    for i in (IMPLS[0], "python"):
        try:
            made.append(_compat.module_for("_stats", i).TransitStats(
                RATE, coalesce=params["window"] * coalesce_share, **params))
        except ValueError:
            made.append(None)
    c, p = made
    assert (c is None) == (p is None)
    if c is None:
        return
    for what, ets, arrival in calls:
        if what == "clear":
            c.clear_window()
            p.clear_window()
            continue
        call, args = ("spread_quantile", ()) if what == "quantile" else ("observe", (ets, arrival))
        (kc, vc), (kp, vp) = _outcome(c, call, *args), _outcome(p, call, *args)
        assert kc == kp and _same(vc, vp), (call, args, vc, vp)
        assert _same(c.jitter, p.jitter) and _same(c.peak, p.peak) and c.entries == p.entries
        assert c.min_transit == p.min_transit or _same(c.min_transit, p.min_transit)
