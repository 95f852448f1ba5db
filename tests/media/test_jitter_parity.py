"""The compiled jitter buffer and its pure-Python twin, driven with the same random streams (hypothesis).

Each example builds one stream as a network would deliver it (jitter, loss, duplicates, reordering, wrap-around of
the sequence number and the timestamp, sequence jumps, SSRC changes, irregular frame grids, silence detectors that
answer or fail), feeds it to both implementations in the same order with the same playout ticks (``advise``,
``get``, ``peek`` and ``note_stretch`` in time-stretch mode, as ``media.playout.Playout`` calls them) and
requires the same answer to every call and the same state after it: counters, target delay, measured delay,
depth, jitter.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast import _compat

compiled = _compat.module_for("_jitter", "cython") if "_jitter" not in _compat.MISSING_EXTENSIONS else None
twin = _compat.module_for("_jitter", "python")

pytestmark = pytest.mark.skipif(compiled is None or _compat.NO_EXTENSIONS, reason="the compiled modules are off")

Op = Tuple[Any, ...]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and bool(a == b)


def _state(jb: Any) -> Tuple[Any, ...]:
    return (jb.stats.as_dict(), jb.delay, jb.current_delay, jb.depth, jb.playing, jb.jitter, jb.ssrc)


def _detector(kind: int) -> Optional[Callable[[bytes], bool]]:
    if kind == 0:
        return None
    if kind == 1:
        return lambda p: len(p) > 0 and p[0] % 3 == 0

    def flaky(p: bytes) -> bool:
        if len(p) > 0 and p[0] % 5 == 0:
            raise RuntimeError("detector bug")
        return len(p) > 0 and p[0] % 2 == 0

    return flaky


def _stream(rng: random.Random, n: int, seq0: int, ts0: int, frame: int, jitter: float, loss: float, dup: float,
            jumps: bool, ssrcs: bool, grid: bool) -> List[Op]:
    """``(arrival, seq, ts, payload, ssrc, marker)`` in arrival order."""
    out: List[Op] = []
    seq, ts, ssrc = seq0, ts0, 0x1234
    for i in range(n):
        t = i * 0.02
        if jumps and rng.random() < 0.02:
            seq += rng.choice([3000, 5000, 40000, -200])
        if ssrcs and rng.random() < 0.01:
            ssrc = rng.randrange(1 << 32)
        if rng.random() < 0.03:
            ts += frame * rng.randrange(1, 30)  # a silence (DTX)
        step = frame + (rng.choice([-40, 40, 80]) if grid and rng.random() < 0.05 else 0)
        marker = rng.random() < 0.05
        payload = bytes([rng.randrange(256)]) * rng.randrange(0, 4)
        if rng.random() >= loss:
            arrival = t + abs(rng.gauss(0.0, jitter)) + (0.2 if rng.random() < 0.01 else 0.0)
            out.append((arrival, seq & 0xFFFF, ts & 0xFFFFFFFF, payload, ssrc, marker))
            if rng.random() < dup:
                out.append((arrival + rng.random() * 0.05, seq & 0xFFFF, ts & 0xFFFFFFFF, payload, ssrc, marker))
        seq += 1
        ts += step
    out.sort(key=lambda p: p[0])
    return out


def _run(mod: Any, stretch: bool, kwargs: dict, detector: int, packets: List[Op], ticks: int, rng: random.Random,
         tick0: float) -> List[Any]:
    cls = mod.TimeStretchJitterBuffer if stretch else mod.JitterBuffer
    jb = cls(silence_detector=_detector(detector), **kwargs)
    trace: List[Any] = [_state(jb)]
    j = 0
    held = 0.0
    for k in range(ticks):
        now = tick0 + k * 0.02
        while j < len(packets) and packets[j][0] <= now:
            a, seq, ts, payload, ssrc, marker = packets[j]
            trace.append(jb.put(seq, ts, payload, a, ssrc if rng.random() < 0.9 else None, marker))
            trace.append(_state(jb))
            j += 1
        if stretch:
            advice = jb.advise(now, held)
            trace.append(advice)
            if advice[0] and rng.random() < 0.5:
                change = rng.choice([0.0025, 0.005, -0.0025, -0.005])
                jb.note_stretch(change)
                held = max(0.0, held + change)
            held = rng.choice([0.0, 0.0, 0.005, 0.0125, 0.02, 0.031])
        trace.append(jb.get(now))
        trace.append(jb.peek(rng.randrange(0, 4)))
        trace.append(_state(jb))
        if rng.random() < 0.003:
            jb.reset()
            trace.append(_state(jb))
    return trace


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    stretch=st.booleans(),
    seq0=st.sampled_from([0, 1000, 65500, 65535]),
    ts0=st.sampled_from([0, 5000, 2**32 - 1000, 2**32 - 1]),
    frame=st.sampled_from([160, 320, 80]),
    jitter=st.sampled_from([0.0, 0.002, 0.01, 0.04]),
    loss=st.sampled_from([0.0, 0.05, 0.3]),
    dup=st.sampled_from([0.0, 0.05]),
    jumps=st.booleans(),
    ssrcs=st.booleans(),
    grid=st.booleans(),
    detector=st.integers(0, 2),
    capacity=st.sampled_from([4, 8, 1024]),
    initial=st.sampled_from([0.0, 0.02, 0.06, 0.2]),
    max_delay=st.sampled_from([0.1, 0.3, 0.5]),
)
def test_compiled_and_twin_answer_alike_on_any_stream(seed: int, stretch: bool, seq0: int, ts0: int, frame: int,
                                                      jitter: float, loss: float, dup: float, jumps: bool,
                                                      ssrcs: bool, grid: bool, detector: int, capacity: int,
                                                      initial: float, max_delay: float) -> None:
    packets = _stream(random.Random(seed), 150, seq0, ts0, frame, jitter, loss, dup, jumps, ssrcs, grid)
    kwargs = {"frame_samples": frame, "capacity": capacity, "initial_delay": initial, "max_delay": max_delay}
    tick0 = 0.0105 + (seed % 7) * 0.001
    a = _run(compiled, stretch, kwargs, detector, packets, 180, random.Random(seed + 1), tick0)
    b = _run(twin, stretch, kwargs, detector, packets, 180, random.Random(seed + 1), tick0)
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert _same(x, y), (i, x, y)


@pytest.mark.parametrize("bad", [
    {"clock_rate": 0}, {"frame_samples": -1}, {"min_delay": 0.5, "max_delay": 0.1}, {"capacity": 3},
    {"jitter_factor": -1.0}, {"margin": -0.01},
])
def test_both_refuse_the_same_settings(bad: dict) -> None:
    for mod in (compiled, twin):
        with pytest.raises(ValueError):
            mod.JitterBuffer(**bad)
    for opts in ({"quantile": 0.0}, {"quantile": 1.5}, {"memory": 0.0}):
        for mod in (compiled, twin):
            with pytest.raises(ValueError):
                mod.TimeStretchJitterBuffer(**opts)


def test_both_refuse_the_same_arguments() -> None:
    for mod in (compiled, twin):
        jb = mod.TimeStretchJitterBuffer()
        with pytest.raises(TypeError):
            jb.put(1.5, 160, b"x", 0.0)
        with pytest.raises(TypeError):
            jb.put(1, 160, None, 0.0)  # bytes(None)
        # the failed packet was seen (as in the twin): a second copy is a duplicate, the next one plays
        assert jb.put(1, 160, b"x", 0.0) == "duplicate"
        assert jb.put(2, 320, b"x", 0.0) == "ok"
        assert jb.get(0.1) == ("frame", b"x")
        with pytest.raises(OverflowError):
            jb.advise(0.12, math.inf)
        assert jb.advise(0.12, math.nan) == jb.advise(0.12, 0.0)


def test_a_memory_shorter_than_a_frame_still_makes_a_working_buffer() -> None:
    """The spread histogram then remembers two packets (its forgetting factor stays below 1: a factor of 1 once
    divided by zero at the first packet)."""
    for mod in (compiled, twin):
        jb = mod.TimeStretchJitterBuffer(memory=0.001)
        for i in range(10):
            assert jb.put(i, 160 * i, b"x", 0.02 * i) == "ok"
        assert jb.get(0.3) == ("frame", b"x")
        assert 0.0 <= jb.delay <= jb.max_delay
