"""Packet-loss concealment of a whole recorded stream, with the live concealer's algorithm and optional lookahead.

``conceal(frames, rate=..., lookahead_frames=...)`` takes one decoded frame per packet (``None`` for a lost one)
and returns the concealed signal as one int16 array, time-aligned with the input: the
:class:`~pyvoip_fast.codecs.plc.Concealer` delays its output by ``latency_samples``; that delay is removed here.

What happens to a gap (a run of lost frames)
--------------------------------------------
With a lookahead of ``L`` frames, a live receiver playing frame ``i`` already holds frames up to ``i + L``. This
function does exactly what such a receiver could do, no more: it never uses a frame beyond the lookahead.

* **Before the first good frame** there is nothing to conceal from: the samples are silence (the live receiver
  plays nothing before the first frame arrives).
* **Extrapolation** (``lookahead_frames=0``; a gap at the end of the stream; the first ``g - L`` frames of a gap
  of ``g > L`` frames, played before the next good frame comes within the lookahead): the very
  :class:`~pyvoip_fast.codecs.plc.Concealer` the live receiver (``media.receiver``) runs is driven frame by frame
  exactly as the receiver drives it (``good()`` for a frame, ``lost()`` for a loss). With ``lookahead_frames=0``
  the output therefore equals the receiver's, sample for sample, only without its delay.
* **Interpolation** (``lookahead_frames = L >= 1``: a whole gap of at most ``L`` frames, or the last ``L`` frames
  of a longer one, when a good frame follows):

  - *forward estimate*: if the gap starts here, the pitch period ``P`` (5-15 ms) of the output so far is found by
    normalised cross-correlation, the gap is filled by repeating the last period, and the last ``P/4`` samples
    before the gap are cross-faded (triangular) with the signal one period earlier so the join is continuous;
    from 10 ms into the gap the repetition is attenuated by 20 % per 10 ms, as the live concealer does. If the
    gap began earlier (frames already extrapolated), the forward estimate is the live concealer's own
    continuation (a copy of it is run on);
  - *backward estimate*: the same, in reversed time, from the known future: the pitch period of the next good
    frame(s) (those within the lookahead) is found at their start, the gap is filled backwards by repeating
    their first period (attenuated likewise from 10 ms before the future on), and their first ``P/4`` samples
    are cross-faded with the signal one period later, so the gap joins the future without a step;
  - the two are mixed across the interpolated frames with a raised-cosine window
    ``w(i) = (1 - cos(pi (i + 1/2) / n)) / 2`` (all forward at the start, all backward at the end), so both
    joins stay continuous. The two estimates are not phase-aligned: where the pitch drifts across the gap they
    partly cancel in the middle (later work).

  The concealer is then restarted on the output, so later losses extrapolate from what was really played.

Costs (``benchmarks/bench_quality.py``): about 15 µs per frame at 10 % loss without lookahead, 30 µs with
lookahead 1; a concealed frame costs about 0.1 ms (extrapolated) to 0.25 ms (interpolated).

May import: numpy, ``pyvoip_fast.errors`` and ``pyvoip_fast._compat`` only (the codecs layer).
"""

from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .plc import Concealer

__all__ = ["conceal", "RATES"]

#: sample rates ``conceal`` accepts (G.711 / G.722 decoded PCM)
RATES = (8000, 16000)


def _validate(frames: Sequence[Optional[np.ndarray]], rate: int, lookahead_frames: int) -> Tuple[
        List[Optional[np.ndarray]], int]:
    """Check the arguments; return the frames as a list and the frame length."""
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)):
        raise TypeError(f"rate must be an int, got {type(rate).__name__}")
    if int(rate) not in RATES:
        raise ValueError(f"rate must be one of {RATES}, got {rate}")
    if isinstance(lookahead_frames, bool) or not isinstance(lookahead_frames, (int, np.integer)):
        raise TypeError(f"lookahead_frames must be an int, got {type(lookahead_frames).__name__}")
    if lookahead_frames < 0:
        raise ValueError(f"lookahead_frames must be >= 0, got {lookahead_frames}")
    if isinstance(frames, (str, bytes, bytearray)) or not hasattr(frames, "__len__"):
        raise TypeError("frames must be a sequence of int16 numpy arrays (None for a lost frame)")
    items = list(frames)
    if not items:
        raise ValueError("frames is empty")
    size = -1
    for i, f in enumerate(items):
        if f is None:
            continue
        if not isinstance(f, np.ndarray):
            raise TypeError(f"frame {i} is a {type(f).__name__}, not a numpy array (or None)")
        if f.dtype != np.int16:
            raise TypeError(f"frame {i} has dtype {f.dtype}, expected int16")
        if f.ndim != 1:
            raise ValueError(f"frame {i} has shape {f.shape}, expected a 1-D array")
        if size < 0:
            size = len(f)
        elif len(f) != size:
            raise ValueError(f"frame {i} has {len(f)} samples, the first frame has {size}: all must be equal")
    if size < 0:
        raise ValueError("every frame is lost (None): nothing to conceal from")
    if size == 0:
        raise ValueError("frames are empty arrays")
    return items, size


def _pitch(h: np.ndarray, pmin: int, pmax: int, corr_len: int) -> int:
    """Pitch period of ``h`` (newest sample last): the lag maximising the normalised cross-correlation between the
    newest ``min(corr_len, len(h) - lag)`` samples and those ``lag`` samples earlier (``pmax`` on silence).
    Lags leaving fewer than ``pmin`` samples to compare are not considered."""
    n = len(h)
    lags = np.arange(pmin, pmax + 1)
    pos = np.arange(max(0, n - corr_len), n)  # the newest samples
    earlier = pos[None, :] - lags[:, None]
    valid = earlier >= 0  # with a short h, long lags compare fewer samples
    a = np.where(valid, h[pos][None, :], 0.0)
    b = np.where(valid, h[np.maximum(earlier, 0)], 0.0)
    den = np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b)
    num = np.einsum("ij,ij->i", a, b)
    ok = (den > 0.0) & (valid.sum(axis=1) >= pmin)
    if not ok.any():
        return pmax
    score = np.where(ok, num / np.sqrt(np.where(ok, den, 1.0)), -np.inf)
    return int(lags[int(np.argmax(score))])


class _Shape:
    """The rate-dependent constants, the live concealer's (defined at 8 kHz, scaled)."""

    def __init__(self, rate: int) -> None:
        scale = rate / 8000.0
        self.pmin = max(2, int(round(40 * scale)))  # 5 ms
        self.pmax = max(self.pmin + 1, int(round(120 * scale)))  # 15 ms
        self.corr_len = int(round(160 * scale))  # 20 ms
        self.ms10 = int(round(80 * scale))
        self.history = self.corr_len + 2 * self.pmax  # samples of past the forward extrapolation looks at


def _extrapolate(h: np.ndarray, n: int, shape: _Shape) -> Optional[Tuple[np.ndarray, np.ndarray, int]]:
    """Continue ``h`` (newest last) by ``n`` samples of pitch-period repetition.

    Returns ``(tail, synthetic, period)``: ``tail`` replaces the newest ``P/4`` samples of ``h`` (cross-faded with
    the signal one period earlier, so ``synthetic`` joins it without a step); ``synthetic`` repeats the last period,
    attenuated by 20 % per 10 ms after the first 10 ms. None when ``h`` is too short to hold a period and its
    quarter.
    """
    pmax = min(shape.pmax, (len(h) * 4) // 5, len(h) - shape.pmin)
    if pmax < shape.pmin:
        return None
    p = _pitch(h, shape.pmin, pmax, shape.corr_len)
    q = max(1, p // 4)
    w = np.arange(1, q + 1, dtype=np.float64) / (q + 1)
    tail = h[len(h) - q :] * (1.0 - w) + h[len(h) - q - p : len(h) - p] * w
    period = h[len(h) - p :]
    syn = period[np.arange(n) % p]
    t = np.arange(n, dtype=np.float64)
    syn = syn * np.clip(1.0 - 0.2 * (t - shape.ms10) / shape.ms10, 0.0, 1.0)
    return tail, syn, p


def _mix(fwd: np.ndarray, future: np.ndarray, shape: _Shape) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Mix the forward estimate ``fwd`` of a gap with a backward extrapolation from ``future`` (oldest first).

    Returns ``(gap, future_head)``: the gap, and the replacement for the oldest ``len(future_head)`` samples of
    ``future``. None when ``future`` is too short to hold a period and its quarter.
    """
    n = len(fwd)
    bw = _extrapolate(future[::-1], n, shape)
    if bw is None:
        return None
    head_rev, bwd_rev, _ = bw
    bwd = bwd_rev[::-1]  # bwd_rev[j] is the sample j + 1 before the future
    w = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n, dtype=np.float64) + 0.5) / n)
    return fwd * (1.0 - w) + bwd * w, head_rev[::-1]


def conceal(frames: Sequence[Optional[np.ndarray]], *, rate: int = 8000, lookahead_frames: int = 1) -> np.ndarray:
    """Conceal the lost frames of a whole stream; see the module docstring for the algorithm.

    Args:
        frames: one int16 1-D numpy array per packet, all of the same length, ``None`` for a lost packet.
        rate: the sample rate of the decoded audio, 8000 or 16000 Hz.
        lookahead_frames: how many frames after the one being played a live receiver would already hold. 0
            reproduces the live receiver's concealment exactly; with ``L >= 1`` the last ``L`` frames of a gap
            (all of a gap of at most ``L``) before a good frame are interpolated between past and future instead
            of only extrapolated from the past.

    Returns:
        int16 samples, ``len(frames) * frame length`` of them, time-aligned with the input (a loss-free input comes
        out unchanged).

    Raises:
        TypeError: ``frames`` is not a sequence of int16 numpy arrays and Nones; ``rate`` or ``lookahead_frames``
            is not an int.
        ValueError: empty ``frames``, every frame lost, frames of unequal length or not 1-D, a negative
            ``lookahead_frames``, or a rate other than 8000/16000.
    """
    items, size = _validate(frames, rate, lookahead_frames)
    rate, look = int(rate), int(lookahead_frames)
    shape = _Shape(rate)
    count = len(items)
    first = next(i for i, f in enumerate(items) if f is not None)
    c = Concealer(size, rate)
    d = c.latency_samples
    # z[k] holds output sample k - d; the concealer's output for the samples pushed from t on lands at z[t:]
    z = np.zeros(count * size + d, dtype=np.float64)
    prime_len = size + rate // 10  # longer than the concealer's history (49 ms + a frame), so priming resets it
    pending_head: Optional[np.ndarray] = None  # a cross-faded version of the next good frame (after interpolation)
    i = first
    while i < count:
        t = i * size
        f = items[i]
        if f is not None:
            x = f if pending_head is None else pending_head
            pending_head = None
            z[t : t + size] = c.good(x)
            i += 1
            continue
        e = i
        while e < count and items[e] is None:
            e += 1
        if look and e < count:
            while e - i > look:  # played before the next good frame comes within the lookahead: extrapolated
                z[i * size : (i + 1) * size] = c.lost()
                i += 1
            done = _conceal_gap(items, i, e, look, size, shape, c, z, d)
            if done is not None:
                pending_head = done
                c = Concealer(size, rate)
                start = e * size - prime_len
                prime = np.zeros(prime_len, dtype=np.float64)
                lo = max(0, start)
                prime[lo - start :] = z[lo + d : e * size + d]
                c.good(prime)
                i = e
                continue
        while i < e:
            z[i * size : (i + 1) * size] = c.lost()
            i += 1
    t = count * size
    z[t : t + d] = c.good(np.zeros(d, dtype=np.int16))
    out = np.clip(np.rint(z[d:]), -32768, 32767)
    result: np.ndarray = out.astype(np.int16)
    return result


def _conceal_gap(items: List[Optional[np.ndarray]], s: int, e: int, look: int, size: int, shape: _Shape,
                 c: Concealer, z: np.ndarray, d: int) -> Optional[np.ndarray]:
    """Interpolate the lost frames ``s .. e-1`` (``e`` is good, within the lookahead of ``s``) into ``z`` (output
    offset by ``d``); ``c`` is the concealer that produced the output up to frame ``s``, in a loss or not.

    Returns the next good frame with its start cross-faded (to feed the concealer in its place), or None when the
    gap cannot be interpolated (then nothing was written).
    """
    a, n = s * size, (e - s) * size
    known: List[np.ndarray] = []
    for j in range(e, min(s + look, len(items) - 1) + 1):
        f = items[j]
        if f is None:
            break
        known.append(f)
    future = np.concatenate(known).astype(np.float64)
    ahead = copy.deepcopy(c)  # the concealer's own continuation, without disturbing it
    tail: Optional[np.ndarray] = None
    if ahead.in_loss:
        # the loss began earlier and those frames were played: continue the live concealer's extrapolation
        parts = [ahead.lost() for _ in range(s, e)] + [ahead.good(np.zeros(d, dtype=np.int16))]
        cont = np.concatenate(parts).astype(np.float64)  # output samples a - d .. e * size
        held, fwd = cont[:d], cont[d:]
    else:
        # the samples the concealer still holds back (its delay): flushing the copy shows them
        held = ahead.good(np.zeros(d, dtype=np.int16)).astype(np.float64)
        hist = np.zeros(shape.history, dtype=np.float64)
        lo = max(0, a - shape.history)
        hist[lo - (a - shape.history) :] = z[lo + d : a + d]
        hist[len(hist) - d :] = held
        fw = _extrapolate(hist, n, shape)
        if fw is None:
            return None
        tail, fwd, _ = fw
    mixed = _mix(fwd, future, shape)
    if mixed is None:
        return None
    gap, head = mixed
    z[a : a + d] = held
    if tail is not None:
        z[a + d - len(tail) : a + d] = tail
    z[a + d : e * size + d] = gap
    nxt = future[:size].copy()
    nxt[: len(head)] = head
    return nxt
