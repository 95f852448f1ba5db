"""Packet-loss concealment for G.711 speech, in the manner of ITU-T G.711 Appendix I (pitch waveform repetition).

Strategy (our own implementation of the method Appendix I describes)
---------------------------------------------------------------------
* The concealer sits after the decoder and works on 8 kHz int16 PCM. It keeps a history of the last
  48.75 ms (390 samples = 3 maximal pitch periods + a quarter period) of the *output timeline* (real and
  synthetic samples) and delays its output by 3.75 ms (30 samples, a quarter of the longest pitch period), so the
  start of a loss can still be cross-faded into audio that has not been played yet. ``latency_samples`` tells
  how much; a loss-free stream comes out bit-exact, only 30 samples later.
* First lost frame: the pitch period ``P`` is the lag in 5-15 ms (40-120 samples) maximising the normalised
  cross-correlation between the last 20 ms of history and the history ``P`` samples earlier. The synthetic
  signal repeats the last period; its first quarter period is overlap-added (triangular cross-fade) with the
  last quarter period of real signal, so the join has no step.
* As the loss continues the repeated segment grows: one period for the first 10 ms, two periods after 10 ms,
  three after 20 ms (each switch cross-faded over ``P/4``), which avoids the buzzy sound of a single repeated
  period. From 10 ms on the synthetic signal is attenuated linearly, 20 % per 10 ms, reaching silence at 60 ms;
  longer losses stay silent (no noise, no old audio forever).
* First good frame after a loss: the synthetic continuation (still attenuated) is cross-faded into the real frame
  over ``P/4`` samples plus 4 ms per further 10 ms of loss, at most 10 ms.

Arrays are numpy; the loss-free path shifts the timeline in place (no new array per frame but the output).
"""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np

from .. import _compat

_plc = _compat.load("_plc")

__all__ = ["Concealer"]

logger = logging.getLogger(__name__)


class Concealer:
    """Conceals lost frames of one 8 kHz int16 stream.

    Args:
        frame_samples: samples per frame (``lost()`` returns this many).
        rate: sample rate in Hz (the Appendix I constants are defined at 8000 Hz and scaled to other rates).

    Raises:
        ValueError: non-positive sizes.
    """

    def __init__(self, frame_samples: int = 160, rate: int = 8000) -> None:
        if frame_samples <= 0 or rate <= 0:
            raise ValueError("frame_samples and rate must be positive")
        self.frame_samples = frame_samples
        self.rate = rate
        scale = rate / 8000.0
        self.pitch_min = max(2, int(round(40 * scale)))  # 5 ms
        self.pitch_max = max(self.pitch_min + 1, int(round(120 * scale)))  # 15 ms
        self.corr_len = int(round(160 * scale))  # 20 ms correlation window
        self.latency_samples = self.pitch_max // 4  # 3.75 ms output delay
        self._ms10 = int(round(80 * scale))  # samples in 10 ms
        self._ms4 = int(round(32 * scale))
        hist = max(3 * self.pitch_max + self.latency_samples, self.corr_len + self.pitch_max) + 1
        self._hist_len = max(hist, frame_samples + self.latency_samples)
        self._hist = np.zeros(self._hist_len, dtype=np.float64)  # output timeline, newest last
        self.concealed_frames = 0
        # erasure state
        self._erased = 0  # samples concealed in the current loss (0 = not in a loss)
        self._pitch = 0
        self._quarter = 0
        self._pitchbuf: Optional[np.ndarray] = None
        self._periods = 1
        self._pos = 0
        self._pending = np.zeros(0, dtype=np.float64)  # cross-fade samples to emit before the segment

    # ------------------------------------------------------------------ helpers
    def _push(self, samples: np.ndarray) -> np.ndarray:
        """Append to the timeline; return the delayed output of the same length as int16."""
        n = len(samples)
        d = self.latency_samples
        if n + d > self._hist_len:  # a frame longer than the history holds: a new timeline array
            timeline = np.concatenate((self._hist, samples))
            out = np.rint(timeline[len(timeline) - n - d : len(timeline) - d])
            self._hist = timeline[-self._hist_len :].copy()
            np.clip(out, -32768, 32767, out=out)
            wide: np.ndarray = out.astype(np.int16)
            return wide
        result = np.empty(n, dtype=np.int16)
        # shift in place, one pass: compiled (``_plc``) or its numpy twin
        if samples.dtype == np.int16:
            _plc.push(self._hist, np.ascontiguousarray(samples), result, d)
        else:
            _plc.push_float(self._hist, np.ascontiguousarray(samples, dtype=np.float64), result, d)
        return result

    def _find_pitch(self) -> int:
        h = self._hist
        n = self.corr_len
        target = h[-n:]
        best, best_lag = -np.inf, self.pitch_max
        energy_t = float(np.dot(target, target))
        if energy_t <= 0.0:
            return self.pitch_max
        # candidate windows h[-n-lag : -lag] for all lags at once
        lags = np.arange(self.pitch_min, self.pitch_max + 1)
        L = len(h)
        idx = (L - n - lags)[:, None] + np.arange(n)[None, :]
        cand = h[idx]
        num = cand @ target
        den = np.sqrt(np.einsum("ij,ij->i", cand, cand) * energy_t) + 1e-9
        score = num / den
        i = int(np.argmax(score))
        best, best_lag = float(score[i]), int(lags[i])
        logger.debug("[PLC] pitch %d samples (corr %.2f)", best_lag, best)
        return best_lag

    def _gen(self, n: int) -> np.ndarray:
        """Next ``n`` samples of the periodic synthetic signal (no attenuation)."""
        assert self._pitchbuf is not None
        if len(self._pending):
            k = min(n, len(self._pending))
            head, self._pending = self._pending[:k], self._pending[k:]
            return head if k == n else np.concatenate((head, self._gen(n - k)))
        seg_len = self._periods * self._pitch
        seg = self._pitchbuf[len(self._pitchbuf) - seg_len :]
        idx = (self._pos + np.arange(n)) % seg_len
        self._pos = int((self._pos + n) % seg_len)
        return seg[idx]

    def _gain(self, start: int, n: int) -> np.ndarray:
        """Attenuation for erasure samples ``start .. start+n-1`` (1 for the first 10 ms, 0 after 60 ms)."""
        t = np.arange(start, start + n, dtype=np.float64)
        g = 1.0 - 0.2 * (t - self._ms10) / self._ms10
        return np.clip(g, 0.0, 1.0)

    # ------------------------------------------------------------------ API
    def good(self, frame: np.ndarray) -> np.ndarray:
        """Feed a received (decoded) frame; get what to play.

        Args:
            frame: int16 samples (any length; normally ``frame_samples``).

        Returns:
            int16 samples of the same length: the output timeline delayed by ``latency_samples``; after a loss
            the start of ``frame`` is cross-faded with the concealment's continuation.

        Raises:
            ValueError: not a 1-D array.
        """
        x = np.asarray(frame)
        if x.ndim != 1:
            raise ValueError(f"frame must be 1-D, got shape {x.shape}")
        if not self._erased:
            return self._push(x)  # the loss-free path: int16 straight into the timeline
        xf = x.astype(np.float64)
        blocks = -(-self._erased // self._ms10)
        ola = min(self._quarter + self._ms4 * (blocks - 1), self._ms10, len(xf))
        if ola > 0:
            syn = self._gen(ola) * self._gain(self._erased, ola)
            w = np.arange(1, ola + 1, dtype=np.float64) / (ola + 1)
            xf[:ola] = syn * (1.0 - w) + xf[:ola] * w
        self._erased = 0
        self._pitchbuf = None
        self._pending = np.zeros(0, dtype=np.float64)
        return self._push(xf)

    def lost(self) -> np.ndarray:
        """Produce a concealment frame for a missing packet.

        Returns:
            ``frame_samples`` int16 samples (delayed like :meth:`good`).
        """
        n = self.frame_samples
        self.concealed_frames += 1
        if self._erased == 0:
            self._start_erasure()
        out = np.empty(n, dtype=np.float64)
        done = 0
        while done < n:
            # switch to more periods at 10 ms and 20 ms into the loss
            boundary = None
            for b in (self._ms10, 2 * self._ms10):
                if self._erased < b:
                    boundary = b
                    break
            chunk = n - done if boundary is None else min(n - done, boundary - self._erased)
            seg = self._gen(chunk) * self._gain(self._erased, chunk)
            out[done : done + chunk] = seg
            done += chunk
            self._erased += chunk
            if boundary is not None and self._erased == boundary and self._periods < 3:
                self._add_period()
        return self._push(out)

    def _start_erasure(self) -> None:
        self._pitch = self._find_pitch()
        self._quarter = max(1, self._pitch // 4)
        keep = 3 * self.pitch_max + self._quarter
        self._pitchbuf = self._hist[len(self._hist) - keep :].copy()
        self._periods = 1
        q = self._quarter
        # overlap-add the last quarter period of real signal (not yet played) with the quarter period one pitch
        # period earlier, whose next sample is the first of the last period: the join into the repetition (which
        # starts there, read position 0) is then continuous
        end = len(self._pitchbuf) - self._pitch
        syn = self._pitchbuf[end - q : end]
        w = np.arange(1, q + 1, dtype=np.float64) / (q + 1)
        tail = self._hist[len(self._hist) - q :]
        self._hist[len(self._hist) - q :] = tail * (1.0 - w) + syn * w
        self._pos = 0

    def _add_period(self) -> None:
        """Grow the repeated segment by one period, cross-fading old and new continuations over P/4."""
        q = self._quarter
        old = self._gen(q)  # what one more quarter of the old continuation would be
        new_pos = (self._pos - q) % self._pitch  # the same phase, in the oldest period of the longer segment
        self._periods += 1
        self._pos = new_pos
        new = self._gen(q)
        w = np.arange(1, q + 1, dtype=np.float64) / (q + 1)
        # the next q samples come from the blend; _gen has already moved the read position past them
        self._pending = old * (1.0 - w) + new * w

    @property
    def in_loss(self) -> bool:
        """True while concealing (between a ``lost()`` and the next ``good()``)."""
        return self._erased > 0
