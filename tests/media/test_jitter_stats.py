"""A jitter buffer's counters: the compiled buffer keeps them in C fields (``media._jitter.JitterStats``), the twin
on the dataclass ``media.jitter_stats.JitterStats``. Whatever a user does with ``jb.stats`` (read and write the
counters, build one, compare, print, pickle, turn it into a dict for JSON) must give the same result with either.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from helpers import require_compiled
from pyvoip_fast import _compat
from pyvoip_fast.media import jitter, jitter_stats

compiled = _compat.module_for("_jitter", "cython") if "_jitter" not in _compat.MISSING_EXTENSIONS else None
twin = _compat.module_for("_jitter", "python")
NAMES = ["received", "played", "lost", "late", "duplicates", "resets", "max_depth", "concealed", "stretched",
         "shrunk", "overflow", "invalid"]


def test_the_buffer_s_counters_are_the_class_the_jitter_module_names() -> None:
    mod = compiled if compiled is not None and not _compat.NO_EXTENSIONS else twin
    assert jitter.JitterStats is mod.JitterStats
    assert type(jitter.JitterBuffer().stats) is jitter.JitterStats
    assert type(jitter.TimeStretchJitterBuffer().stats) is jitter.JitterStats
    assert twin.JitterStats is jitter_stats.JitterStats


def test_the_compiled_counters_behave_as_the_dataclass() -> None:
    cls, ref = require_compiled("_jitter").JitterStats, jitter_stats.JitterStats
    for make in (lambda c: c(), lambda c: c(3, 4, 5), lambda c: c(late=7, invalid=2**40)):
        a, b = make(cls), make(ref)
        assert a.as_dict() == b.as_dict() and list(a.as_dict()) == NAMES == list(b.as_dict())
        assert repr(a) == repr(b)
        assert a == make(cls) and not a != make(cls)
        assert pickle.loads(pickle.dumps(a)) == a and copy.copy(a) == a and copy.deepcopy(a) == a
    a, b = cls(), ref()
    assert a != b and b != a  # a dataclass equals only its own class
    for name in NAMES:
        setattr(a, name, getattr(a, name) + 5)
        setattr(b, name, getattr(b, name) + 5)
    assert a.as_dict() == b.as_dict() == dict.fromkeys(NAMES, 5)
    assert a != cls()
    with pytest.raises(TypeError):
        hash(a)
    with pytest.raises(TypeError):
        hash(b)
    with pytest.raises(TypeError):
        cls(received="many")  # a counter is a number
    with pytest.raises(TypeError):
        cls(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
    with pytest.raises(TypeError):
        ref(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)


def test_both_buffers_count_the_same_stream_alike() -> None:
    mod = require_compiled("_jitter")
    out = []
    for m in (mod, twin):
        jb = m.JitterBuffer(initial_delay=0.02, capacity=8)
        order = [0, 1, 3, 2, 2, 5, 4, 9, 30, 8, 7, 6] + list(range(10, 20)) + [1]  # 2 and 1: seen twice
        for n, i in enumerate(order):
            jb.put(i, 160 * i, bytes([i]), 0.02 * i + 0.001 * n)
        for k in range(30):
            jb.get(0.05 + 0.02 * k)
        jb.put(40000, 0, b"x", 1.0)  # far away: held back until a second one confirms it
        out.append(jb.stats.as_dict())
    assert out[0] == out[1]
    assert out[0]["duplicates"] == 2 and out[0]["played"] > 0 and out[0]["invalid"] == 1


def test_the_compiled_buffer_s_counters_cannot_be_swapped_for_another_object() -> None:
    jb = require_compiled("_jitter").JitterBuffer()
    with pytest.raises(AttributeError):
        jb.stats = jitter_stats.JitterStats()  # the buffer counts into its own C fields
    jb.stats.received = 41  # the counters themselves are the user's to reset
    assert jb.stats.received == 41
