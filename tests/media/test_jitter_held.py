"""The packets a jitter buffer holds: the compiled buffer keeps them in a ring of C structs in timestamp order (see
"The held packets" in ext/jitter.pyx), the twin in a dict. These tests push that ring where random streams rarely
go (deep reordering, growth well past its first slots, its head wrapping round many times, a reset with packets
held) and check the payloads it hands out: what came in, as exact bytes, the very object ``peek`` showed, and no
reference kept after it is gone.
"""

from __future__ import annotations

import gc
import random
import sys
from typing import Any, List

import pytest

from helpers import require_compiled
from pyvoip_fast import _compat

compiled = _compat.module_for("_jitter", "cython") if "_jitter" not in _compat.MISSING_EXTENSIONS else None
twin = _compat.module_for("_jitter", "python")
MODULES = [m for m in (compiled, twin) if m is not None]


def _trace(mod: Any, stretch: bool, order: List[int], frame: int, capacity: int) -> List[Any]:
    """Feed packets ``order`` (indices into one stream of ``len(order)`` frames) all before the first tick, then
    tick until the buffer is empty."""
    cls = mod.TimeStretchJitterBuffer if stretch else mod.JitterBuffer
    jb = cls(frame_samples=frame, capacity=capacity, max_delay=0.5, initial_delay=0.0)
    out: List[Any] = []
    for n, i in enumerate(order):
        out.append(jb.put((65530 + i) & 0xFFFF, (2**32 - 400 + i * frame) & 0xFFFFFFFF, bytes([i % 256, 7]),
                          0.0001 * n))
        out.append(jb.depth)
    for k in range(len(order) + 40):
        out.append(jb.peek(3))
        out.append(jb.get(1.0 + 0.02 * k))
        out.append((jb.depth, jb.stats.as_dict()))
    return out


@pytest.mark.parametrize("stretch", [False, True])
@pytest.mark.parametrize("capacity", [4, 9, 300])
@pytest.mark.parametrize("shuffle", [0, 5, 40, 300])
def test_deep_reordering_and_a_wrapping_ring_answer_as_the_twin(stretch: bool, capacity: int, shuffle: int) -> None:
    """Windows of ``shuffle`` packets arrive in random order (300: the whole stream backwards and forwards), across
    a wrap of both the sequence number and the timestamp."""
    mod = require_compiled("_jitter")
    rng = random.Random(capacity * 1000 + shuffle)
    order = list(range(300))
    if shuffle:
        for start in range(0, len(order), shuffle):
            window = order[start:start + shuffle]
            rng.shuffle(window)
            order[start:start + shuffle] = window
    for frame in (160, 80):
        a = _trace(mod, stretch, order, frame, capacity)
        b = _trace(twin, stretch, order, frame, capacity)
        assert a == b
    if capacity == 300:
        assert max(x for x in a[1:600:2]) > 8  # the ring grew past its first slots


@pytest.mark.parametrize("mod", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_a_long_stream_in_order_keeps_every_payload_and_its_order(mod: Any) -> None:
    """Thousands of frames through a buffer a few deep: the ring's head goes round it hundreds of times."""
    jb = mod.JitterBuffer(initial_delay=0.06)
    played = []
    for i in range(5000):
        jb.put(i & 0xFFFF, (i * 160) & 0xFFFFFFFF, i.to_bytes(4, "big"), 0.02 * i)
        kind, payload = jb.get(0.02 * i + 0.01)
        if kind == "frame":
            played.append(int.from_bytes(payload, "big"))
    assert played == list(range(played[0], played[0] + len(played)))
    assert len(played) > 4990
    assert jb.stats.lost == 0 and jb.stats.late == 0


class _Raw(bytes):
    """A bytes subclass, as a caller might pass."""


class _Converts:
    def __bytes__(self) -> bytes:
        return _Raw(b"\x01\x02")


@pytest.mark.parametrize("mod", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_payloads_of_any_buffer_type_come_out_equal_and_what_peek_showed_is_what_get_gives(mod: Any) -> None:
    jb = mod.JitterBuffer(initial_delay=0.0)
    given = [b"\x01\x02", bytearray(b"\x01\x02"), memoryview(b"\x01\x02"), _Raw(b"\x01\x02"), _Converts()]
    for i, p in enumerate(given):
        assert jb.put(i, 160 * i, p, 0.0) == "ok"
    ahead: List[Any] = [None]
    for k in range(len(given)):
        kind, payload = jb.get(0.1 + 0.02 * k)
        assert kind == "frame" and payload == b"\x01\x02"
        if k:
            assert ahead[0] is payload  # the playout matches a looked-ahead payload by identity
        if mod is compiled:
            assert type(payload) is bytes
        ahead = jb.peek(2)
        assert len(ahead) == 2 and (ahead[1] is None) == (k >= len(given) - 2)
    assert ahead == [None, None]


def test_held_payloads_are_released_when_played_dropped_reset_or_the_buffer_goes() -> None:
    mod = require_compiled("_jitter")  # (CPython only, as the package: sys.getrefcount is there)
    payloads = [bytes([i]) * 100 + b"unique" for i in range(50)]  # exact bytes: the buffer holds these objects
    base = [sys.getrefcount(p) for p in payloads]

    def counts() -> List[int]:
        gc.collect()
        return [sys.getrefcount(p) for p in payloads]

    jb = mod.JitterBuffer(initial_delay=0.0, capacity=64)
    for i in range(len(payloads)):
        jb.put(i, 160 * i, payloads[i], 0.0)
    assert counts() == [b + 1 for b in base]  # one reference each, in the ring
    for k in range(10):  # played
        assert jb.get(0.1 + 0.02 * k)[0] == "frame"
    assert counts() == [b + (1 if i >= 10 else 0) for i, b in enumerate(base)]
    jb.put(5, 160 * 5, b"too late", 0.5)  # late: not held
    jb.put(40, 160 * 40, b"dup ts", 0.5)  # a duplicate: not held
    jb.reset()  # dropped with the stream
    assert counts() == base and jb.depth == 0
    for i in range(len(payloads)):  # off the frame grid: every other packet falls behind a realigned slot
        jb.put(i, 160 * i + (80 if i % 2 else 0), payloads[i], 1.0)
    for k in range(6):
        jb.get(2.0 + 0.02 * k)
    assert jb.stats.late > 0  # those were dropped from the ring
    assert sum(c - b for c, b in zip(counts(), base)) == jb.depth
    del jb  # the rest go with the buffer
    assert counts() == base
