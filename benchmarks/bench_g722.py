"""G.722 encode/decode throughput: ours (compiled and twin) beside the ``G722`` package (libg722, in C).

Run:  python -m pytest benchmarks/bench_g722.py --benchmark-only -q --benchmark-columns=min,median,ops
Smoke (CI):  python -m pytest benchmarks/bench_g722.py --benchmark-disable -q

Groups are ``g722 <encode|decode> <size>``; inside a group the competitors are:

- ``cython``: ``pyvoip_fast.codecs._g722`` (the compiled module),
- ``python``: ``pyvoip_fast.codecs._g722_py`` (the pure-Python twin; 20 ms frames only, it is slow),
- ``package``: ``G722.G722(16000, 64000)`` from the ``G722`` package on PyPI (``pip install g722``).

Each competitor keeps one encoder or decoder object for the whole run, as a stream does. Inputs are real
speech: the 16 kHz input of the ITU-T G.722 conformance set (``tests/data/g722/inpsp.bin.gz``). A ``frame``
round codes 50 consecutive 20 ms frames (320 samples, 160 codes) in turn and its median is divided by 50; a
``1s`` round codes one 16,000-sample buffer. Encoders get numpy int16 arrays and decoders ``bytes``, which
both sides take without conversion. Every competitor's first pass (from a fresh object: the start of the ITU
stream) is checked against the ITU codes or decoded samples, so a figure can only come from a bit-exact
codec. ``extra_info`` carries Msamples_per_s (PCM samples per second, both directions) and, for frames,
realtime_factor (20 ms / time per frame).
"""

from __future__ import annotations

import gzip
import time
from typing import Any, Callable, List, Optional

import numpy as np
import pytest

from helpers import DATA, skip_or_fail
from pyvoip_fast import _compat

SIZES = {"frame": 320, "1s": 16000}
N_FRAMES = 50
COMPETITORS = ["cython", "python", "package"]
#: the twin runs the 20 ms frames only, with few rounds (a round of 50 frames takes ~0.1 s)
CASES = [(size, who) for size in SIZES for who in COMPETITORS if not (who == "python" and size != "frame")]
SLOW_ROUNDS = 5


def _vector(name: str, dtype: str) -> np.ndarray:
    return np.frombuffer(gzip.decompress((DATA / "g722" / f"{name}.gz").read_bytes()), dtype=dtype)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return _vector("inpsp.bin", "<i2").astype(np.int16)


@pytest.fixture(scope="module")
def itu_codes() -> np.ndarray:
    return _vector("codspw.cod", "<u2").astype(np.uint8)


@pytest.fixture(scope="module")
def itu_pcm() -> np.ndarray:
    return _vector("outsp1.bin", "<i2").astype(np.int16)


def _package() -> Optional[Any]:
    try:
        import G722
    except ImportError:
        return None
    return G722


def _runner(who: str, op: str, inputs: List[Any]) -> Optional[Callable[[], Any]]:
    """A zero-argument callable coding every buffer of ``inputs`` once with one long-lived codec object (the
    call is made directly, so the per-frame figure includes the codec's own call overhead and little else)."""
    if who in ("cython", "python"):
        if who == "cython" and _compat.NO_EXTENSIONS:
            return None
        m = _compat.module_for("_g722", who)
        f = m.Encoder().encode if op == "encode" else m.Decoder().decode
    else:
        package = _package()
        if package is None:
            return None
        codec = package.G722(16000, 64000)
        f = codec.encode if op == "encode" else codec.decode

    def run() -> List[Any]:
        return [f(buf) for buf in inputs]

    return run


ROUND_SECONDS = 50e-6
DEFAULT_ROUNDS = 100


def _measure(benchmark: Any, request: Any, fn: Callable[[], Any], slow: bool) -> Any:
    """Benchmark ``fn()`` with enough calls per round (about 50 us of work) that the timer's own cost does not
    count; at least --benchmark-min-rounds rounds (default 100), SLOW_ROUNDS for the twin."""
    if getattr(benchmark, "disabled", False):
        return fn()
    if slow:
        return benchmark.pedantic(fn, rounds=SLOW_ROUNDS, iterations=1, warmup_rounds=0)
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2e-3:
        fn()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    iterations = max(1, int(ROUND_SECONDS / per_call))
    rounds = max(int(request.config.getoption("benchmark_min_rounds") or 0), DEFAULT_ROUNDS)
    benchmark.extra_info["iterations_per_round"] = iterations
    return benchmark.pedantic(fn, rounds=rounds, iterations=iterations, warmup_rounds=2)


@pytest.mark.parametrize("size,who", CASES, ids=[f"{s}-{w}" for s, w in CASES])
@pytest.mark.parametrize("op", ["encode", "decode"])
def test_g722(benchmark: Any, request: Any, speech: np.ndarray, itu_codes: np.ndarray, itu_pcm: np.ndarray,
              op: str, size: str, who: str) -> None:
    n = SIZES[size]
    count = N_FRAMES if size == "frame" else 1
    if op == "encode":
        inputs: List[Any] = [speech[k * n : (k + 1) * n].copy() for k in range(count)]
    else:
        inputs = [itu_codes[k * n // 2 : (k + 1) * n // 2].tobytes() for k in range(count)]
    run = _runner(who, op, inputs)
    if run is None:
        skip_or_fail("the G722 package is not installed (it is in the bench extra)" if who == "package"
                     else f"{who} not available")
    assert run is not None
    benchmark.group = f"g722 {op} {size} ({n} samples)"
    benchmark.extra_info["samples"] = n
    benchmark.extra_info["buffers_per_round"] = count

    # the first pass from a fresh object is the start of the ITU stream: it must be bit-exact
    first = run()
    expected = itu_codes[: count * n // 2].tobytes() if op == "encode" else itu_pcm[: count * n].tobytes()
    assert b"".join(np.asarray(r).tobytes() for r in first) == expected, f"{who} is not bit-exact"
    _measure(benchmark, request, run, slow=who == "python")

    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        median = stats.stats.median / count  # per buffer
        benchmark.extra_info["Msamples_per_s"] = round(n / median / 1e6, 2)
        if size == "frame":
            benchmark.extra_info["realtime_factor"] = round(0.020 / median)
