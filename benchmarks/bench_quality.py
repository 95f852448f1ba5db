"""Listening quality under packet loss: PESQ-NB of our concealment beside zero-fill, repetition and spandsp.

Run:     python benchmarks/bench_quality.py [--seeds 8] [--seconds 8]    (the full table, under a minute)
         python benchmarks/bench_quality.py --wideband    (PESQ-WB, P.862.2, at 16 kHz through G.722)
         python benchmarks/bench_quality.py --sample pyvoip_fast/data/sample.wav   (a speech file instead)
Pytest:  python -m pytest benchmarks/bench_quality.py --benchmark-only -q    (small: 2 seeds per voice)
Smoke (CI):  python -m pytest benchmarks/bench_quality.py --benchmark-disable -q

What is measured
----------------
* **Signals** are synthetic, generated deterministically from a seed (no recorded speech is shipped): a
  harmonic series (spectral tilt about -6 dB/octave, up to 3.8 kHz) whose pitch glides inside 100-140 Hz
  ("male") or 190-250 Hz ("female"), through three formant resonators that move from vowel to vowel at
  each syllable, under a syllabic envelope (150-320 ms syllables, 40-200 ms pauses), with a little noise.
  Each seed gives a new signal and a new loss pattern.
* **Channel**: 20 ms frames of 8 kHz audio through G.711 μ-law (``pyvoip_fast.g711``), then lost at random
  (5, 10, 20 %) or in bursts (Gilbert model, 10 % loss, mean burst 3 frames: P(good→lost) = 1/27,
  P(lost→good) = 1/3).
* **Methods**, all on the same decoded frames and loss pattern:

  - ``zero``: a lost frame is silence;
  - ``repeat``: a lost frame repeats the last good one, fading linearly to silence over three frames (60 ms);
  - ``spandsp``: spandsp's PLC (``libspandsp.so.2`` through ctypes: ``plc_rx`` on good frames, ``plc_fillin``
    for lost ones);
  - ``ours la0`` / ``ours la1``: :func:`pyvoip_fast.plc.conceal` with ``lookahead_frames=0`` (what the live
    receiver does today) and ``1``.

* **Score**: PESQ-NB (ITU-T P.862, the ``pesq`` package), original clean signal as reference, concealed G.711
  signal as degraded; the table gives the mean over both voices and every seed. The ``no loss`` row is G.711
  alone: the ceiling.
* **Cost**: the time ``conceal`` spends per frame of a 10 s stream at 10 % loss, and per concealed frame.

The issue's targets: lookahead 1 at least +0.3 PESQ over spandsp at every condition; lookahead 0 at least
equal to spandsp.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
from scipy.signal import lfilter

try:
    from helpers import skip_or_fail
except ImportError:  # run as a script: the tests' helpers are not on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from helpers import skip_or_fail
from pyvoip_fast import g711
from pyvoip_fast.plc import conceal

RATE = 8000
FRAME = 160  # 20 ms
VOICES = {"male": (100.0, 140.0), "female": (190.0, 250.0)}
CONDITIONS = ["random 5%", "random 10%", "random 20%", "bursty 10%"]
METHODS = ["zero", "repeat", "spandsp", "ours la0", "ours la1"]
Frames = List[Optional[np.ndarray]]

# (F1, F2, F3) Hz of a few vowels; bandwidths 80/100/140 Hz
_VOWELS = [(730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (300, 870, 2240), (640, 1190, 2390),
           (490, 1350, 1690), (660, 1720, 2410)]
_BANDWIDTHS = (80.0, 100.0, 140.0)


# -- signals and channel -------------------------------------------------------------------------------------


def voice(kind: str, seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    """A synthetic speech-like int16 signal (see the module docstring), deterministic in ``seed``; at 16 kHz its
    harmonics reach 7 kHz (wideband) instead of 3.8 kHz."""
    RATE = rate  # noqa: N806 - the same formulas at either rate
    top = 3800.0 if rate <= 8000 else 7000.0
    lo, hi = VOICES[kind]
    rng = np.random.default_rng([seed, 0 if kind == "male" else 1])
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    # pitch glide: two slow sinusoids, mapped into [lo, hi]
    glide = 0.6 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 6.3))
    glide += 0.4 * np.sin(2 * np.pi * rng.uniform(0.9, 1.6) * t + rng.uniform(0, 6.3))
    f0 = lo + (hi - lo) * (0.5 + 0.5 * glide)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = np.zeros(n)
    for k in range(1, int(top / lo) + 1):
        amp = np.where(k * f0 < top, 1.0 / k, 0.0)
        x += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    # syllables: a vowel each, a raised-cosine envelope, pauses between them
    env = np.zeros(n)
    y = np.zeros(n)
    pos = int(rng.uniform(0.05, 0.15) * RATE)
    zi: List[np.ndarray] = [np.zeros(2) for _ in range(3)]
    while pos < n:
        length = int(rng.uniform(0.15, 0.32) * RATE)
        end = min(n, pos + length)
        seg = x[pos:end]
        for j, (fc, bw) in enumerate(zip(_VOWELS[int(rng.integers(len(_VOWELS)))], _BANDWIDTHS)):
            r = np.exp(-np.pi * bw / RATE)
            a = [1.0, -2 * r * np.cos(2 * np.pi * fc / RATE), r * r]
            seg, zi[j] = lfilter([1.0 - r], a, seg, zi=zi[j])
        y[pos:end] = seg
        env[pos:end] = np.sin(np.pi * np.arange(end - pos) / length) ** 0.7 * rng.uniform(0.5, 1.0)
        pos = end + int(rng.uniform(0.04, 0.2) * RATE)
    s = y * env
    s = s / (np.std(s[env > 0]) + 1e-12) * 3000.0 + 20.0 * rng.standard_normal(n)
    return np.clip(np.rint(s), -32768, 32767).astype(np.int16)


def loss_pattern(condition: str, count: int, seed: int) -> np.ndarray:
    """True for a lost frame. ``random p%``: independent losses; ``bursty 10%``: Gilbert, mean burst 3."""
    rng = np.random.default_rng([seed, 7])
    if condition.startswith("random"):
        return rng.random(count) < float(condition.split()[1].rstrip("%")) / 100
    p_bad_good = 1 / 3  # mean burst 3 frames
    p_good_bad = 0.1 * p_bad_good / 0.9  # stationary loss 10 %
    lost = np.zeros(count, dtype=bool)
    bad = rng.random() < 0.1
    for i, u in enumerate(rng.random(count)):
        lost[i] = bad
        bad = (u >= p_bad_good) if bad else (u < p_good_bad)
    return lost


def g711_frames(x: np.ndarray) -> List[np.ndarray]:
    """Through G.711 μ-law, cut into 20 ms frames."""
    usable = len(x) // FRAME * FRAME
    pcm = np.frombuffer(g711.ulaw_decode(g711.ulaw_encode(x[:usable])), dtype=np.int16)
    return [pcm[i : i + FRAME].copy() for i in range(0, usable, FRAME)]


def g722_frames(x: np.ndarray) -> List[np.ndarray]:
    """16 kHz audio through G.722 at 64 kbit/s (``pyvoip_fast.g722``), cut into 20 ms frames (320 samples)."""
    from pyvoip_fast.g722 import Decoder, Encoder

    frame = 2 * FRAME
    usable = len(x) // frame * frame
    pcm = np.frombuffer(Decoder().decode(Encoder().encode(x[:usable])), dtype=np.int16)
    return [pcm[i : i + frame].copy() for i in range(0, usable, frame)]


# -- the methods ---------------------------------------------------------------------------------------------


def _frame_size(frames: Frames) -> int:
    return next((len(f) for f in frames if f is not None), FRAME)


def zero_fill(frames: Frames) -> np.ndarray:
    n = _frame_size(frames)
    return np.concatenate([np.zeros(n, np.int16) if f is None else f for f in frames])


def repeat_fade(frames: Frames) -> np.ndarray:
    """Repeat the last good frame, fading linearly to silence over three lost frames."""
    n = _frame_size(frames)
    out, last, run = [], np.zeros(n, np.float64), 0
    ramp = np.arange(n, dtype=np.float64) / n
    for f in frames:
        if f is None:
            g = np.clip(1.0 - (run + ramp) / 3.0, 0.0, 1.0)
            out.append(np.rint(last * g).astype(np.int16))
            run += 1
        else:
            out.append(f)
            last, run = f.astype(np.float64), 0
    return np.concatenate(out)


def load_spandsp() -> Optional[ctypes.CDLL]:
    """spandsp's shared library with the PLC signatures declared, or None."""
    for name in ("libspandsp.so.2", ctypes.util.find_library("spandsp"), "libspandsp.so"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        pcm = ctypes.POINTER(ctypes.c_int16)
        lib.plc_init.restype = ctypes.c_void_p
        lib.plc_init.argtypes = [ctypes.c_void_p]
        for fn in (lib.plc_rx, lib.plc_fillin):
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_void_p, pcm, ctypes.c_int]
        lib.plc_free.restype = ctypes.c_int
        lib.plc_free.argtypes = [ctypes.c_void_p]
        return lib
    return None


SPANDSP = load_spandsp()


def spandsp_plc(frames: Frames) -> np.ndarray:
    """spandsp's PLC: ``plc_rx`` on each good frame (it cross-fades the first one after a loss in place),
    ``plc_fillin`` for each lost one. It adds no delay."""
    lib = SPANDSP
    assert lib is not None
    state = lib.plc_init(None)
    if not state:
        raise RuntimeError("plc_init failed")
    pcm = ctypes.POINTER(ctypes.c_int16)
    out = []
    try:
        for f in frames:
            buf = np.zeros(FRAME, np.int16) if f is None else f.copy()
            ptr = buf.ctypes.data_as(pcm)
            done = lib.plc_fillin(state, ptr, FRAME) if f is None else lib.plc_rx(state, ptr, FRAME)
            if done != FRAME:
                raise RuntimeError(f"spandsp returned {done} samples for {FRAME}")
            out.append(buf)
    finally:
        lib.plc_free(state)
    return np.concatenate(out)


RUNNERS: Dict[str, Callable[[Frames], np.ndarray]] = {
    "zero": zero_fill,
    "repeat": repeat_fade,
    "spandsp": spandsp_plc,
    "ours la0": lambda frames: conceal(frames, rate=RATE, lookahead_frames=0),
    "ours la1": lambda frames: conceal(frames, rate=RATE, lookahead_frames=1),
}


#: at 16 kHz: spandsp's PLC works on 8 kHz audio only
WB_RUNNERS: Dict[str, Callable[[Frames], np.ndarray]] = {
    "zero": zero_fill,
    "repeat": repeat_fade,
    "ours la0": lambda frames: conceal(frames, rate=16000, lookahead_frames=0),
    "ours la1": lambda frames: conceal(frames, rate=16000, lookahead_frames=1),
}
WB_METHODS = list(WB_RUNNERS)


def available_methods() -> List[str]:
    return [m for m in METHODS if m != "spandsp" or SPANDSP is not None]


# -- scoring -------------------------------------------------------------------------------------------------


def pesq_nb(ref: np.ndarray, deg: np.ndarray) -> float:
    from pesq import pesq

    n = min(len(ref), len(deg))
    return float(pesq(RATE, ref[:n].astype(np.float32), deg[:n].astype(np.float32), "nb"))


def pesq_wb(ref: np.ndarray, deg: np.ndarray) -> float:
    from pesq import pesq

    n = min(len(ref), len(deg))
    return float(pesq(16000, ref[:n].astype(np.float32), deg[:n].astype(np.float32), "wb"))


Scores = Dict[Tuple[str, str], List[float]]  # (condition, method) -> PESQ per signal and seed


def measure_wb(seeds: Sequence[int], seconds: float) -> Scores:
    """PESQ-WB (P.862.2) of the 16 kHz methods over G.722 at every condition (and ``no loss``: "G.722")."""
    scores: Scores = {}
    for kind in VOICES:
        for seed in seeds:
            x = voice(kind, seconds, seed, rate=16000)
            frames = g722_frames(x)
            ref = x[: len(frames) * 2 * FRAME]
            scores.setdefault(("no loss", "G.722"), []).append(pesq_wb(ref, np.concatenate(frames)))
            for condition in CONDITIONS:
                lost = loss_pattern(condition, len(frames), seed)
                damaged: Frames = [None if gone else f for f, gone in zip(frames, lost)]
                for method, run in WB_RUNNERS.items():
                    y = run(damaged)
                    assert len(y) == len(ref), method
                    scores.setdefault((condition, method), []).append(pesq_wb(ref, y))
    return scores


def measure(seeds: Sequence[int], seconds: float, methods: Sequence[str]) -> Scores:
    """PESQ of every method at every condition (and ``no loss``), over both voices and ``seeds``."""
    scores: Scores = {}
    for kind in VOICES:
        for seed in seeds:
            x = voice(kind, seconds, seed)
            frames = g711_frames(x)
            ref = x[: len(frames) * FRAME]
            scores.setdefault(("no loss", "G.711"), []).append(pesq_nb(ref, np.concatenate(frames)))
            for condition in CONDITIONS:
                lost = loss_pattern(condition, len(frames), seed)
                damaged: Frames = [None if gone else f for f, gone in zip(frames, lost)]
                for method in methods:
                    y = RUNNERS[method](damaged)
                    assert len(y) == len(ref), method
                    scores.setdefault((condition, method), []).append(pesq_nb(ref, y))
    return scores


def cost_per_frame(lookahead: int, seconds: float = 10.0, repeat: int = 5) -> Tuple[float, float]:
    """(seconds per frame of a stream at 10 % random loss, extra seconds per concealed frame), best of ``repeat``."""
    frames = g711_frames(voice("male", seconds, 1))
    lost = loss_pattern("random 10%", len(frames), 1)
    damaged: Frames = [None if gone else f for f, gone in zip(frames, lost)]

    def best(fr: Frames) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            conceal(fr, rate=RATE, lookahead_frames=lookahead)
            times.append(time.perf_counter() - t0)
        return min(times)

    clean, lossy = best(list(frames)), best(damaged)
    return lossy / len(frames), max(0.0, lossy - clean) / max(1, int(lost.sum()))


def measure_file(path: Path, seeds: Sequence[int], methods: Sequence[str]) -> Scores:
    """Like :func:`measure` on one recorded 8 kHz mono WAV file, a new loss pattern per seed."""
    import soundfile as sf

    x, rate = sf.read(str(path), dtype="int16")
    if rate != RATE or x.ndim != 1:
        raise SystemExit(f"{path}: need 8000 Hz mono, got {rate} Hz, shape {x.shape}")
    frames = g711_frames(x)
    ref = x[: len(frames) * FRAME]
    scores: Scores = {("no loss", "G.711"): [pesq_nb(ref, np.concatenate(frames))]}
    for seed in seeds:
        for condition in CONDITIONS:
            lost = loss_pattern(condition, len(frames), seed)
            damaged: Frames = [None if gone else f for f, gone in zip(frames, lost)]
            for method in methods:
                scores.setdefault((condition, method), []).append(pesq_nb(ref, RUNNERS[method](damaged)))
    return scores


def table(scores: Scores, methods: Sequence[str], codec: str = "G.711") -> str:
    """The results as a Markdown table: mean PESQ per condition and method, margins ours vs spandsp."""
    head = ["condition", *methods]
    margins = "spandsp" in methods
    if margins:
        head += ["la0 − spandsp", "la1 − spandsp"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    ceiling = scores[("no loss", codec)]
    lines.append(f"| no loss ({codec} only, n={len(ceiling)}) | " + " | ".join(
        [f"{np.mean(ceiling):.2f}"] * len(methods) + ([""] * 2 if margins else [])) + " |")
    for condition in CONDITIONS:
        means = {m: float(np.mean(scores[(condition, m)])) for m in methods}
        cells = [f"{means[m]:.2f}" for m in methods]
        if margins:
            cells += [f"{means['ours la0'] - means['spandsp']:+.2f}", f"{means['ours la1'] - means['spandsp']:+.2f}"]
        lines.append(f"| {condition} (n={len(scores[(condition, methods[0])])}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(scores: Scores) -> str:
    """Whether the issue's targets hold at every condition."""
    la1 = all(np.mean(scores[(c, "ours la1")]) - np.mean(scores[(c, "spandsp")]) >= 0.3 for c in CONDITIONS)
    la0 = all(np.mean(scores[(c, "ours la0")]) >= np.mean(scores[(c, "spandsp")]) for c in CONDITIONS)
    return (f"lookahead 1 >= spandsp + 0.3 at every condition: {'met' if la1 else 'NOT met'}; "
            f"lookahead 0 >= spandsp at every condition: {'met' if la0 else 'NOT met'}")


# -- pytest: a small version -----------------------------------------------------------------------------------

SMALL_SEEDS = (0, 1)
SMALL_SECONDS = 6.0


@pytest.fixture(scope="module")
def small_scores() -> Scores:
    try:
        import pesq  # noqa: F401
    except ImportError:
        skip_or_fail("the pesq package is not installed (it is in the bench extra)")
    return measure(SMALL_SEEDS, SMALL_SECONDS, available_methods())


def _require(method: str) -> None:
    if method == "spandsp" and SPANDSP is None:
        skip_or_fail("libspandsp.so.2 cannot be loaded (the spandsp runtime package is missing)")


@pytest.mark.parametrize("method", METHODS)
def test_quality(benchmark: Any, small_scores: Scores, method: str) -> None:
    """Times the method on one 6 s stream at 10 % loss; asserts its PESQ at every condition is sane."""
    _require(method)
    frames = g711_frames(voice("female", SMALL_SECONDS, 0))
    lost = loss_pattern("random 10%", len(frames), 0)
    damaged: Frames = [None if gone else f for f, gone in zip(frames, lost)]
    y = benchmark(RUNNERS[method], damaged)
    assert len(y) == len(frames) * FRAME
    for condition in CONDITIONS:
        got = small_scores.get((condition, method), [])
        assert len(got) == len(VOICES) * len(SMALL_SEEDS), f"{method} did not run at {condition}"
        assert all(1.0 <= s <= 4.6 for s in got), (condition, method, got)
        benchmark.extra_info[f"pesq {condition}"] = round(float(np.mean(got)), 3)


def test_every_method_ran(small_scores: Scores) -> None:
    """The spandsp row never silently disappears: missing in CI is a failure, on a laptop a skip."""
    ran = {m for (_, m) in small_scores}
    if "spandsp" not in ran:
        skip_or_fail("spandsp's PLC did not run: libspandsp.so.2 cannot be loaded")
    assert set(METHODS) <= ran, ran
    assert 1.0 <= float(np.mean(small_scores[("no loss", "G.711")])) <= 4.6


def test_wideband_quality_through_g722() -> None:
    """PESQ-WB (P.862.2) at 16 kHz through G.722: every method runs at every condition with sane scores, and our
    concealment with lookahead beats filling the gaps with silence."""
    try:
        import pesq  # noqa: F401
    except ImportError:
        skip_or_fail("the pesq package is not installed (it is in the bench extra)")
    scores = measure_wb((0,), 4.0)
    assert 3.0 <= float(np.mean(scores[("no loss", "G.722")])) <= 4.7
    for condition in CONDITIONS:
        for method in WB_METHODS:
            got = scores[(condition, method)]
            assert len(got) == len(VOICES) and all(1.0 <= v <= 4.7 for v in got), (condition, method, got)
        assert np.mean(scores[(condition, "ours la1")]) > np.mean(scores[(condition, "zero")]), condition


@pytest.mark.parametrize("lookahead", [0, 1])
def test_concealment_cost_per_frame(benchmark: Any, lookahead: int) -> None:
    """Our concealment of one second (50 frames, 5 lost) stays far below a frame's real time: < 1 ms per frame."""
    frames = g711_frames(voice("male", 1.0, 3))
    damaged: Frames = list(frames)
    for i in (5, 12, 13, 30, 44):
        damaged[i] = None
    benchmark(conceal, damaged, rate=RATE, lookahead_frames=lookahead)
    per_frame, per_lost = cost_per_frame(lookahead, seconds=2.0, repeat=3)
    benchmark.extra_info["us_per_frame"] = round(per_frame * 1e6, 1)
    benchmark.extra_info["us_per_concealed_frame"] = round(per_lost * 1e6, 1)
    assert per_frame < 1e-3 and per_lost < 1e-3, (per_frame, per_lost)


# -- script --------------------------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=8, help="signals (and loss patterns) per voice")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each signal")
    ap.add_argument("--wideband", action="store_true", help="PESQ-WB at 16 kHz through G.722 instead")
    ap.add_argument("--sample", type=Path, metavar="WAV",
                    help="a speech file (8 kHz mono) instead of the synthetic voices, e.g. the bundled "
                    "pyvoip_fast/data/sample.wav (espeak-ng: consonants and unvoiced sounds)")
    args = ap.parse_args(argv)
    if args.sample is not None:
        methods = available_methods()
        scores = measure_file(args.sample, range(args.seeds), methods)
        print(f"PESQ-NB (P.862) of {args.sample.name}, {args.seeds} loss patterns, G.711 μ-law, 20 ms frames\n")
        print(table(scores, methods))
        if "spandsp" in methods:
            print("\n" + targets(scores))
        return 0
    if args.wideband:
        t0 = time.perf_counter()
        wb = measure_wb(range(args.seeds), args.seconds)
        print(f"PESQ-WB (P.862.2), mean over {len(VOICES)} voices x {args.seeds} seeds, {args.seconds:g} s each, "
              f"G.722 64 kbit/s, 16 kHz, 20 ms frames ({time.perf_counter() - t0:.0f} s)\n")
        print(table(wb, WB_METHODS, "G.722"))
        return 0
    methods = available_methods()
    if "spandsp" not in methods:
        print("spandsp: libspandsp.so.2 cannot be loaded; its column is missing", file=sys.stderr)
    t0 = time.perf_counter()
    scores = measure(range(args.seeds), args.seconds, methods)
    print(f"PESQ-NB (P.862), mean over {len(VOICES)} voices x {args.seeds} seeds, {args.seconds:g} s each, "
          f"G.711 μ-law, 20 ms frames ({time.perf_counter() - t0:.0f} s)\n")
    print(table(scores, methods))
    if "spandsp" in methods:
        print("\n" + targets(scores))
    for voice_kind in VOICES:  # the same by voice, for the curious
        sub: Scores = {}
        for key, vals in scores.items():  # appended voice by voice: male first
            half = len(vals) // 2
            sub[key] = vals[:half] if voice_kind == "male" else vals[half:]
        print(f"\n{voice_kind} only:\n" + table(sub, methods))
    for look in (0, 1):
        per_frame, per_lost = cost_per_frame(look)
        print(f"\nconceal(lookahead_frames={look}): {per_frame * 1e6:.0f} µs per frame at 10 % loss, "
              f"{per_lost * 1e6:.0f} µs more per concealed frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
