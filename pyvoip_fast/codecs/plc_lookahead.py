"""Packet-loss concealment that also uses the frames after a gap: what a receiver holding ``L`` frames ahead can do.

:class:`LookaheadConcealer` is the one implementation, driven frame by frame: each call gives the frame to play
now (``None`` when its packet is lost) and what the receiver already holds of the next ``L`` frames (the jitter
buffer's content); it returns one frame of output, delayed by ``latency_samples`` like the plain
:class:`~pyvoip_fast.codecs.plc.Concealer` (3.75 ms at 8 kHz), never by more. The live receiver
(``media.playout``) drives it at each playout tick with the packets its jitter buffer already holds;
:func:`pyvoip_fast.plc.conceal` drives it over a recorded stream with exactly the next ``L`` frames. So the offline
function and the live receiver run the same code, and with ``L = 0`` both are the plain ``Concealer``.

What happens to a gap (a run of lost frames)
--------------------------------------------
* **Before the first good frame** there is nothing to conceal from: the samples are silence.
* **Extrapolation** (``L = 0``; a lost frame with none of the next ``L`` frames at hand, e.g. the first
  ``g - L`` frames of a gap of ``g > L`` frames; a gap at the end of the stream): the plain
  :class:`~pyvoip_fast.codecs.plc.Concealer` runs (``good()`` for a frame, ``lost()`` for a loss), so the output
  equals the receiver's without lookahead, sample for sample.
* **Interpolation** (a lost frame when a good one is at hand within the lookahead: the whole rest of the gap,
  at most ``L`` frames, is filled at once):

  - *forward estimate*: if the gap starts here, the pitch period ``P`` (5-15 ms) of the output so far is found by
    normalised cross-correlation, the gap is filled by repeating the last period, and the last ``P/4`` samples
    before the gap are cross-faded (triangular) with the signal one period earlier so the join is continuous;
    from 10 ms into the gap the repetition is attenuated by 20 % per 10 ms, as the live concealer does. If the
    gap began earlier (frames already extrapolated), the forward estimate is the plain concealer's own
    continuation (a copy of it is run on);
  - *backward estimate*: the same, in reversed time, from the known future: the pitch period of the good
    frame(s) at hand is found at their start, the gap is filled backwards by repeating their first period
    (attenuated likewise from 10 ms before the future on), and their first ``P/4`` samples are cross-faded with
    the signal one period later, so the gap joins the future without a step;
  - the two are mixed across the interpolated frames with a raised-cosine window
    ``w(i) = (1 - cos(pi (i + 1/2) / n)) / 2`` (all forward at the start, all backward at the end), so both
    joins stay continuous. The two estimates are not phase-aligned: where the pitch drifts across the gap they
    partly cancel in the middle (later work).

  The plain concealer is then restarted on the output (``Concealer.restart``: its history becomes what was
  played, its background-noise estimate stays), so later losses extrapolate from what was really played; the
  next good frame is played with its start cross-faded as planned, even if the receiver no longer holds it at
  its own tick (it was seen, so it is known).

Costs (``benchmarks/bench_quality.py``): about 15 µs per frame at 10 % loss without lookahead, 30 µs with
lookahead 1; a concealed frame costs about 0.1 ms (extrapolated) to 0.25 ms (interpolated).

May import: numpy, ``pyvoip_fast.errors`` and ``pyvoip_fast._compat`` only (the codecs layer).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import numpy as np

from .. import _compat
from .plc import Concealer

if TYPE_CHECKING:
    from ._plc_py import LookaheadCore as _Core
else:  # the common frame and the state, compiled (or the twin)
    _Core = _compat.load("_plc").LookaheadCore

__all__ = ["LookaheadConcealer", "RATES", "check_rate_and_lookahead"]

#: sample rates the lookahead concealer accepts (G.711 / G.722 decoded PCM)
RATES = (8000, 16000)


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


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return int(value)


def check_rate_and_lookahead(rate: object, lookahead_frames: object) -> Tuple[int, int]:
    """``(rate, lookahead_frames)`` as ints, checked as :class:`LookaheadConcealer` and ``conceal`` need them.

    Raises:
        TypeError: either is not an int.
        ValueError: a rate other than 8000/16000, or a negative lookahead.
    """
    rate_i = _check_int("rate", rate)
    if rate_i not in RATES:
        raise ValueError(f"rate must be one of {RATES}, got {rate_i}")
    look = _check_int("lookahead_frames", lookahead_frames)
    if look < 0:
        raise ValueError(f"lookahead_frames must be >= 0, got {look}")
    return rate_i, look


class LookaheadConcealer(_Core):
    """Conceals lost frames of one stream, interpolating towards the frames at hand after a gap.

    Args:
        frame_samples: samples per frame (each call returns this many).
        rate: sample rate in Hz, 8000 or 16000.
        lookahead_frames: how many frames after the current one a call may be given (0: the plain concealer).

    Raises:
        TypeError: a non-integer argument.
        ValueError: a non-positive frame size, a negative lookahead or a rate other than 8000/16000.

    The state lives in the compiled base (``_plc.LookaheadCore``, or its twin), which plays the common frame (received,
    in a call already going, no loss to finish: every frame of a loss-free call) without leaving C; the rest is here.
    """

    def __init__(self, frame_samples: int = 160, rate: int = 8000, lookahead_frames: int = 1) -> None:
        size = _check_int("frame_samples", frame_samples)
        if size <= 0:
            raise ValueError(f"frame_samples must be positive, got {size}")
        rate, look = check_rate_and_lookahead(rate, lookahead_frames)
        self.frame_samples = size
        self.rate = rate
        self.lookahead_frames = look
        self._shape = _Shape(rate)
        self._c = Concealer(size, rate)
        #: output delay in samples (the plain concealer's: the lookahead costs no delay here, the frames at hand
        #: are the ones the receiver's jitter buffer holds anyway)
        self.latency_samples = self._c.latency_samples
        self._prime_len = self._c.history_samples  # what a restart of the concealer can use
        # the output timeline: self._z[k - self._base] holds output sample k - latency (k counted from the stream's
        # first sample); kept from far enough back for priming and pitch search, far enough ahead for a gap
        self._keep = max(self._prime_len, self._shape.history) + self.latency_samples + size
        self._cap = self._keep + (look + 3) * size + self.latency_samples
        self._z = np.zeros(self._cap, dtype=np.int16)  # as played (rounded): 2 bytes a sample
        self._base = 0
        self._index = 0  # frame index of the next call
        self._started = False  # a good frame was seen
        self._planned_until = 0  # frames before this index were already written by an interpolation
        self._pending_head = None  # the next good frame, its start cross-faded
        self._no_interp_until = 0  # a gap that could not be interpolated is extrapolated to its end
        #: frames returned for a loss (extrapolated or interpolated)
        self.concealed_frames = 0
        #: of those, frames interpolated towards a later frame
        self.interpolated_frames = 0

    @property
    def in_loss(self) -> bool:
        """True while the plain concealer is extrapolating a loss."""
        return bool(self._c.in_loss)

    # ``conceal(frame, ahead=())`` -- one frame of output -- is ``_plc.LookaheadCore``'s: the common frame (received,
    # in a call already going, no loss to finish) goes straight into the plain concealer's timeline there, compiled;
    # every other frame comes here.
    def _conceal_rest(self, frame: Optional[np.ndarray], ahead: Sequence[Optional[np.ndarray]]) -> np.ndarray:
        """One frame of output, ``conceal``'s for every frame but the common one (see the class notes).

        Args:
            frame: the decoded frame to play now (int16, ``frame_samples`` long), ``None`` when it is lost.
            ahead: what is at hand of the frames after it, in order (``ahead[j]`` is the frame ``j + 1`` later,
                ``None`` where it has not arrived); at most ``lookahead_frames`` are looked at.

        Returns:
            ``frame_samples`` int16 samples, delayed by ``latency_samples``.

        Raises:
            ValueError: a frame of the wrong length or shape.
        """
        size = self.frame_samples
        i = self._index
        if frame is not None:
            frame = self._frame(frame)
        self._index += 1
        if (i + self.lookahead_frames + 1) * size + self.latency_samples > self._base + self._cap:
            self._ensure_room(i)
        t = i * size - self._base  # where this frame's output lands in the timeline
        if not self._started:
            if frame is None and self._pending_head is None:
                return np.zeros(size, dtype=np.int16)  # nothing to conceal from yet: silence
            self._started = True
        if i < self._planned_until:
            self.concealed_frames += 1  # written by the interpolation of this gap
        elif frame is not None or self._pending_head is not None:
            x = self._pending_head if self._pending_head is not None else frame
            self._pending_head = None
            assert x is not None
            played: np.ndarray = self._c.good(x)  # already int16: the common, loss-free path ends here
            self._z[t : t + size] = played
            return played
        else:
            self.concealed_frames += 1
            if not self._interpolate(i, ahead):
                self._z[t : t + size] = self._c.lost()
        result: np.ndarray = self._z[t : t + size].copy()
        return result

    def good(self, frame: np.ndarray) -> np.ndarray:
        """A received frame, with nothing known ahead (the plain concealer's interface)."""
        out: np.ndarray = self.conceal(frame)
        return out

    def lost(self) -> np.ndarray:
        """A lost frame, with nothing known ahead (the plain concealer's interface)."""
        out: np.ndarray = self.conceal(None)
        return out

    def flush(self) -> np.ndarray:
        """The ``latency_samples`` still held back at the end of a stream (the concealer is done after it)."""
        d = self.latency_samples
        if not self._started:
            return np.zeros(d, dtype=np.int16)
        held: np.ndarray = self._c.good(np.zeros(d, dtype=np.int16))
        return held

    def _frame(self, frame: np.ndarray) -> np.ndarray:
        x = np.asarray(frame)
        if x.ndim != 1 or len(x) != self.frame_samples:
            raise ValueError(f"a frame must be 1-D with {self.frame_samples} samples, got shape {x.shape}")
        return x

    def _interpolate(self, i: int, ahead: Sequence[Optional[np.ndarray]]) -> bool:
        """Fill the gap from frame ``i`` to the first good frame at hand; False when there is none or it cannot."""
        if not self.lookahead_frames or i < self._no_interp_until:
            return False
        known: List[np.ndarray] = []
        e = -1
        for j, f in enumerate(list(ahead)[: self.lookahead_frames]):
            if f is None:
                if known:
                    break
                continue
            if not known:
                e = i + 1 + j
            known.append(self._frame(f))
        if not known:
            return False
        head = _conceal_gap(i, e, known, self.frame_samples, self._shape, self._c, self._z, self._base,
                            self.latency_samples)
        if head is None:
            self._no_interp_until = e
            return False
        size, d = self.frame_samples, self.latency_samples
        self.interpolated_frames += e - i
        self._planned_until = e
        self._pending_head = head
        # restarted on what was really played (its background-noise estimate kept)
        lo = max(0, e * size - self._prime_len)
        self._c.restart(self._z[lo + d - self._base : e * size + d - self._base])
        return True


def _played(x: np.ndarray) -> np.ndarray:
    """Samples as they are played: rounded and clipped to int16."""
    out: np.ndarray = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    return out


def _conceal_gap(s: int, e: int, known: List[np.ndarray], size: int, shape: _Shape, c: Concealer,
                 z: np.ndarray, base: int, d: int) -> Optional[np.ndarray]:
    """Interpolate the lost frames ``s .. e-1`` towards the good frames ``known`` (frame ``e`` and the consecutive
    ones after it at hand) into the timeline ``z`` (``z[k - base]`` is output sample ``k - d``); ``c`` is the
    concealer that produced the output up to frame ``s``, in a loss or not.

    Returns the next good frame with its start cross-faded (to feed the concealer in its place), or None when the
    gap cannot be interpolated (then nothing was written).
    """
    a, n = s * size, (e - s) * size
    future = np.concatenate(known).astype(np.float64)
    ahead = copy.deepcopy(c)  # the concealer's own continuation, without disturbing it
    tail: Optional[np.ndarray] = None
    if ahead.in_loss:
        # the loss began earlier and those frames were played: continue the concealer's extrapolation
        parts = [ahead.lost() for _ in range(s, e)] + [ahead.good(np.zeros(d, dtype=np.int16))]
        cont = np.concatenate(parts).astype(np.float64)  # output samples a - d .. e * size
        held, fwd = cont[:d], cont[d:]
    else:
        # the samples the concealer still holds back (its delay): flushing the copy shows them
        held = ahead.good(np.zeros(d, dtype=np.int16)).astype(np.float64)
        hist = np.zeros(shape.history, dtype=np.float64)
        lo = max(0, a - shape.history)
        hist[lo - (a - shape.history) :] = z[lo + d - base : a + d - base]
        hist[len(hist) - d :] = held
        fw = _extrapolate(hist, n, shape)
        if fw is None:
            return None
        tail, fwd, _ = fw
    mixed = _mix(fwd, future, shape)
    if mixed is None:
        return None
    gap, head = mixed
    z[a - base : a + d - base] = _played(held)
    if tail is not None:
        z[a + d - len(tail) - base : a + d - base] = _played(tail)
    z[a + d - base : e * size + d - base] = _played(gap)
    nxt = future[:size].copy()
    nxt[: len(head)] = head
    return nxt
