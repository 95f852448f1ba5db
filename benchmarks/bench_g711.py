"""G.711 encode/decode throughput: ours (compiled and twin) beside stdlib audioop, a numpy table and a copy.

Run:  python -m pytest benchmarks/bench_g711.py --benchmark-only -q --benchmark-min-rounds=50 \
      --benchmark-columns=min,median,ops
Smoke (CI):  python -m pytest benchmarks/bench_g711.py --benchmark-disable -q

Groups are ``<law> <encode|decode> <size>``; inside a group the competitors are:

- ``cython``: ``pyvoip_fast.codecs._g711`` (the compiled module),
- ``python``: ``pyvoip_fast.codecs._g711_py`` (the numpy twin; frame and 1 s sizes only),
- ``audioop``: the stdlib module (Python <= 3.12) -- Sun's segment-search encoder, table decoder,
- ``numpy-lut``: a plain numpy lookup-table codec written here (``table[pcm.view(uint16)]``),
- ``numpy-copy``: ``pcm.copy()`` of the same int16 input, the memory-bandwidth reference.

Inputs are speech-like (a voiced glottal-pulse train through two formant resonators with a slow pitch and
loudness contour, plus noise), cut into 50 distinct 160-sample frames; one round of a frame benchmark
codes all 50 in turn (so a
branch predictor cannot memorise one frame), and its median is divided by 50. Throughput = samples / time
per buffer; for the 160-sample frame the real-time factor is 20 ms / time per frame. ``extra_info`` of each
result carries Msamples_per_s and realtime_factor (see --benchmark-json).
Each round runs the competitor's closure enough times for about 50 us of work (see ``_measure``), so the
timer's own cost does not inflate the microsecond-scale rows.
"""

from __future__ import annotations

import time
import warnings
from types import ModuleType
from typing import Any, Callable, Optional

import numpy as np
import pytest
from scipy.signal import lfilter

from helpers import skip_or_fail
from pyvoip_fast import _compat

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop as _audioop
    except ImportError:  # Python >= 3.13
        _audioop = None

audioop: Optional[ModuleType] = _audioop

RATE = 8000
SIZES = {"frame": 160, "1s": 8000, "long": 1_000_000}
N_FRAMES = 50


def speech_like(n: int, seed: int = 1) -> np.ndarray:
    """n samples of a synthetic voiced signal: pulse train -> two formants, pitch/loudness contours, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)  # pitch contour
    phase = np.cumsum(f0 / RATE)
    excitation = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(float)
    signal = excitation
    for freq, bw in ((700.0, 130.0), (1220.0, 70.0)):  # formant resonators (2-pole IIR)
        r = np.exp(-np.pi * bw / RATE)
        a1, a2 = -2 * r * np.cos(2 * np.pi * freq / RATE), r * r
        signal = lfilter([1.0], [1.0, a1, a2], signal)
    envelope = 0.25 + 0.75 * np.abs(np.sin(2 * np.pi * 2.1 * t))  # syllable-rate loudness
    signal = signal / np.max(np.abs(signal)) * envelope * 20000 + rng.normal(0, 300, n)
    return np.clip(signal, -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_like(max(SIZES["long"], N_FRAMES * SIZES["frame"]))


def numpy_tables() -> dict[str, np.ndarray]:
    """A plain numpy table codec built from audioop-independent rules (the encode tables come from our
    compiled twin only to fill them; the lookup itself is what is measured)."""
    twin = _compat.module_for("_g711", "python")
    all_pcm = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16)
    codes = np.arange(256, dtype=np.uint8)
    return {
        "ulaw_enc": np.frombuffer(twin.ulaw_encode(all_pcm), dtype=np.uint8),
        "alaw_enc": np.frombuffer(twin.alaw_encode(all_pcm), dtype=np.uint8),
        "ulaw_dec": np.frombuffer(twin.ulaw_decode(codes), dtype=np.int16),
        "alaw_dec": np.frombuffer(twin.alaw_decode(codes), dtype=np.int16),
    }


TABLES = numpy_tables()

COMPETITORS = ["cython", "python", "audioop", "numpy-lut", "numpy-copy"]


def _runner(who: str, law: str, op: str, inputs: list[bytes]) -> Optional[Callable[[], Any]]:
    """A zero-argument callable coding every buffer of ``inputs`` once (the call is made directly, no
    wrapper, so the per-frame figure includes the codec's own call overhead and little else)."""
    if who in ("cython", "python"):
        if who == "cython" and _compat.NO_EXTENSIONS:
            return None
        f = getattr(_compat.module_for("_g711", who), f"{law}_{op}")

        def run_ours() -> Any:
            for buf in inputs:
                r = f(buf)
            return r

        return run_ours
    if who == "audioop":
        if audioop is None:
            return None
        g = getattr(audioop, f"lin2{law}" if op == "encode" else f"{law}2lin")

        def run_audioop() -> Any:
            for buf in inputs:
                r = g(buf, 2)
            return r

        return run_audioop
    if who == "numpy-lut":
        table = TABLES[f"{law}_{op[:3]}"]
        dtype = np.uint16 if op == "encode" else np.uint8

        def run_lut() -> Any:
            for buf in inputs:
                r = table[np.frombuffer(buf, dtype=dtype)].tobytes()
            return r

        return run_lut

    # numpy-copy: the same int16 input copied (memory-bandwidth reference; same for encode and decode)
    def run_copy() -> Any:
        for buf in inputs:
            r = np.frombuffer(buf, dtype=np.int16).copy()
        return r

    return run_copy


def _inputs(speech: np.ndarray, size: str, law: str, op: str, who: str) -> list[bytes]:
    n = SIZES[size]
    count = N_FRAMES if size == "frame" else 1
    pcm = [speech[k * n : (k + 1) * n].tobytes() for k in range(count)]
    if op == "encode" or who == "numpy-copy":
        return pcm
    twin = _compat.module_for("_g711", "python")
    enc = twin.ulaw_encode if law == "ulaw" else twin.alaw_encode
    return [enc(p) for p in pcm]


ROUND_SECONDS = 50e-6
DEFAULT_ROUNDS = 100


def _measure(benchmark: Any, request: Any, fn: Callable[[], Any]) -> Any:
    """Benchmark ``fn()`` with enough calls per round (about 50 us of work) that the timer's own cost
    (~0.1 us per round here) does not count; pytest-benchmark's calibration often settles on one call
    per round for microsecond-scale functions. At least --benchmark-min-rounds rounds (default 100)."""
    if getattr(benchmark, "disabled", False):
        return fn()
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


# the pure-Python twin is measured on the frame and 1 s sizes only (on a million samples it says nothing new)
CASES = [(size, who) for size in SIZES for who in COMPETITORS if not (who == "python" and size == "long")]


@pytest.mark.parametrize("size,who", CASES, ids=[f"{s}-{w}" for s, w in CASES])
@pytest.mark.parametrize("op", ["encode", "decode"])
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_g711(benchmark: Any, request: Any, speech: np.ndarray, law: str, op: str, size: str, who: str) -> None:
    inputs = _inputs(speech, size, law, op, who)
    run = _runner(who, law, op, inputs)
    if run is None:
        skip_or_fail(f"{who} not available")
    per_round = len(inputs)
    benchmark.group = f"{law} {op} {size} ({SIZES[size]} samples)"
    benchmark.extra_info["samples"] = SIZES[size]
    benchmark.extra_info["buffers_per_round"] = per_round

    result = _measure(benchmark, request, run)
    # every competitor must produce the full output (a smoke check that also runs with --benchmark-disable)
    expected_len = SIZES[size] * (2 if (op == "decode" or who == "numpy-copy") else 1)
    assert len(memoryview(result).cast("B")) == expected_len
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        median = stats.stats.median / per_round  # per buffer
        benchmark.extra_info["Msamples_per_s"] = round(SIZES[size] / median / 1e6, 1)
        if size == "frame":
            benchmark.extra_info["realtime_factor"] = round(0.020 / median)
