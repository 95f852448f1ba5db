"""Packet-loss concealment for G.711 speech: pitch repetition (ITU-T G.711 Appendix I), LPC-shaped noise and a
fade to comfort noise.

Strategy (our own implementation; the ideas come from G.711 Appendix I, WebRTC NetEQ's expand and spandsp)
-----------------------------------------------------------------------------------------------------------
* The concealer sits after the decoder and works on int16 PCM (the constants are defined at 8 kHz and
  scaled to the rate). It keeps a history of the last 48.75 ms (at 8 kHz 390 samples: 3 maximal pitch periods
  and a quarter period) of the *output timeline* (real and synthetic samples) and delays its output by 3.75 ms
  (30 samples, a quarter of the longest pitch period), so the start of a loss can still be cross-faded into
  audio that has not been played yet. ``latency_samples`` tells how much; a loss-free stream comes out
  bit-exact, only 30 samples later.
* **Background noise**, tracked on every received frame of at least 5 ms: a floor follows the frame energy
  (mean square) down at once and up by at most 3 dB per second. A frame whose energy is at most 2.5 times (4 dB
  above) the floor counts as background: the background energy moves 20 % of the way towards it, and its last
  20 ms are kept for the background's spectral envelope (analysed only when a loss needs it). The background
  energy never exceeds 2.5 times the floor. The estimate is used once 500 ms of audio have been seen; until then
  there is none (a stream that starts with a loss, or a restarted concealer, fades to silence as before).
* **First lost frame**: the pitch period ``P`` is the lag in 5-15 ms (40-120 samples) maximising the normalised
  cross-correlation ``c`` between the last 20 ms of history and the history ``P`` samples earlier. From the same
  20 ms come the signal's RMS level and its spectral envelope: an order-10 linear predictor (order 20 at 16 kHz;
  Hann window, autocorrelation, 60 Hz Gaussian lag window, 40 dB white-noise correction, Levinson-Durbin,
  ``codecs.lpc``) whose synthesis filter, with its bandwidth widened by about 100 Hz, becomes a 12 ms FIR of unit
  energy. The voicing ``v = (c - 0.3) / 0.4``, clipped to 0..1 (white noise scores about 0.2, clearly voiced
  speech 0.7 and more), sets the mix. The periodic signal repeats the last period; its first quarter period is
  overlap-added (triangular cross-fade) with the last quarter period of real signal, so the join has no step.
* **The concealment** is the sum of three parts, with ``t`` the time into the loss:

  - the pitch repetition, weighted ``sqrt(v)`` (reached linearly over the first 20 ms from 1: the join stays
    continuous, and a short loss keeps most of the repetition, which matches the lost audio best). As the loss
    continues the repeated segment grows: one period for the first 10 ms, two periods after 10 ms, three after
    20 ms (each switch cross-faded over ``P/4``), which avoids the buzz of a single repeated period;
  - white noise (a seeded generator owned by the concealer: two concealers fed alike, or a deep copy, give the
    same output) through the signal's envelope FIR, at the signal's RMS weighted ``sqrt(1 - v)`` (reached
    linearly over the first 20 ms from 0): an unvoiced sound continues as noise of its own colour, not as a
    repeated snippet;
  - comfort noise: white noise (a second stream) through the background's envelope FIR, at the background level,
    but never above the signal's RMS nor -42 dBov (what a receiver treats as silence).

  The first two are attenuated together by ``g(t)``: 1 for the first 10 ms, then 20 % less per 10 ms, 0 from
  60 ms on; the comfort noise is weighted ``sqrt(1 - g(t)^2)``, so the level moves from the signal's to the
  background's and a long loss (60 ms and more) plays comfort noise only: neither silence nor old audio forever.
  Without a background estimate the comfort noise is silence.
* **First good frame after a loss**: the concealment's continuation (all three parts, as they would go on) is
  cross-faded into the real frame over ``P/4`` samples plus 4 ms per further 10 ms of loss, at most 10 ms.

Arrays are numpy. A received frame costs one compiled call (``_plc.Timeline``, with a pure-Python twin that gives
the same bits): the timeline shifted in place, the delayed output, the frame's energy and the background estimate;
no new array per frame but the output.
"""

from __future__ import annotations

import logging
import math
from typing import Optional, Tuple

import numpy as np
import numpy.random  # noqa: F401  loaded with the concealer, not at a call's first long loss: numpy imports its
# random module lazily, and that import (about 12 ms) inside the media tick would make every call of the process late

from .. import _compat
from .lpc import spectral_envelope

_plc = _compat.load("_plc")

__all__ = ["Concealer"]

_INT16 = np.dtype(np.int16)  # native int16 (an ``is`` test: another byte order takes the general path)
#: no samples: what the empty state arrays start as, shared by every concealer (they are replaced, never written)
_NONE = np.zeros(0, dtype=np.float64)
_NONE.flags.writeable = False

logger = logging.getLogger(__name__)

#: voicing ``v`` is 0 at or below this pitch correlation and 1 at or above ``VOICED_CORR``
UNVOICED_CORR = 0.3
VOICED_CORR = 0.7
#: the mix of repetition and noise moves from all repetition to its target over this time, ms
MIX_RAMP_MS = 20.0
#: a received frame is background noise when its energy is at most this many times the floor (4 dB)
BACKGROUND_MARGIN = 2.5
#: how fast the floor may rise, dB per second
FLOOR_RISE_DB_PER_S = 3.0
#: the comfort noise is never louder than this RMS (-42 dBov, 260): the level a receiver treats as silence. A
#: stream with no real pause (a tone, 0.6 s of speech) has its quietest frames as "background"; when such a
#: stream stops, the buffer's wait for more must still sound like a pause, not like speech going on
COMFORT_MAX_RMS = 32768.0 * 10.0 ** (-42.0 / 20.0)


#: ``Concealer``'s attributes, as slots: a call holds one, and past 30 attributes CPython gives each instance a
#: dict of its own (0.8 KB)
_CONCEALER_SLOTS = (
    "frame_samples", "rate", "pitch_min", "pitch_max", "corr_len", "latency_samples", "lpc_order", "_ms10",
    "_ms4", "_ramp", "_fir_len", "_hist_len", "_hist", "_timeline", "concealed_frames", "_seed", "_rng",
    "_bg_fir", "_erased", "_pitch",
    "_quarter", "_pitchbuf", "_periods", "_pos", "_pending", "_voicing", "_sig_rms", "_cn_rms", "_sig_fir",
    "_sig_tail", "_cn_tail",
)


class Concealer:
    """Conceals lost frames of one int16 stream.

    Args:
        frame_samples: samples per frame (``lost()`` returns this many).
        rate: sample rate in Hz (the Appendix I constants are defined at 8000 Hz and scaled to other rates).
        seed: seed of the concealer's own noise generator (the output is a function of the input and the
            seed).

    Raises:
        ValueError: non-positive sizes.
    """

    __slots__ = _CONCEALER_SLOTS

    def __init__(self, frame_samples: int = 160, rate: int = 8000, seed: int = 0x504C43) -> None:
        if frame_samples <= 0 or rate <= 0:
            raise ValueError("frame_samples and rate must be positive")
        self.frame_samples = frame_samples
        self.rate = rate
        scale = rate / 8000.0
        self.pitch_min = max(2, int(round(40 * scale)))  # 5 ms
        self.pitch_max = max(self.pitch_min + 1, int(round(120 * scale)))  # 15 ms
        self.corr_len = int(round(160 * scale))  # 20 ms correlation and LPC window
        self.latency_samples = self.pitch_max // 4  # 3.75 ms output delay
        self.lpc_order = max(2, int(round(10 * scale)))
        self._ms10 = int(round(80 * scale))  # samples in 10 ms
        self._ms4 = int(round(32 * scale))
        self._ramp = max(1, int(round(MIX_RAMP_MS * rate / 1000.0)))
        self._fir_len = max(8, int(round(96 * scale)))  # 12 ms envelope FIR
        hist = max(3 * self.pitch_max + self.latency_samples, self.corr_len + self.pitch_max) + 1
        self._hist_len = max(hist, frame_samples + self.latency_samples)
        self._hist = np.zeros(self._hist_len, dtype=np.float64)  # output timeline, newest last (shifted in place)
        self.concealed_frames = 0
        self._seed = seed
        self._rng: Optional[np.random.Generator] = None  # made at the first loss: 4 KB a call saved until then
        # the timeline's shift and the background noise estimate (floor, energy, the last background frame of up to
        # 20 ms), one compiled call per received frame (``_plc.Timeline``, or its twin); the floor grows by at most
        # FLOOR_RISE_DB_PER_S
        self._timeline = _plc.Timeline(
            self._hist, np.zeros(self.corr_len, dtype=np.float64), self.latency_samples, frame_samples,
            self._ms10 // 2, 10.0 ** (FLOOR_RISE_DB_PER_S / 10.0 / rate), BACKGROUND_MARGIN)
        self._bg_fir: Optional[np.ndarray] = None  # the background frame's envelope FIR, computed when a loss needs it
        # erasure state
        self._erased = 0  # samples concealed in the current loss (0 = not in a loss)
        self._pitch = 0
        self._quarter = 0
        self._pitchbuf: Optional[np.ndarray] = None
        self._periods = 1
        self._pos = 0
        self._pending = _NONE  # cross-fade samples to emit before the segment
        self._voicing = 1.0
        self._sig_rms = 0.0
        self._cn_rms = 0.0
        self._sig_fir: Optional[np.ndarray] = None
        self._sig_tail = _NONE  # the last (FIR length - 1) excitation samples of
        # each noise
        self._cn_tail = _NONE

    # ------------------------------------------------------------------ helpers
    def _push(self, samples: np.ndarray) -> np.ndarray:
        """Append to the timeline (not tracked as background); return the delayed output of the same length as
        int16."""
        n = len(samples)
        d = self.latency_samples
        if n + d > self._hist_len:  # a frame longer than the history holds
            timeline = np.concatenate((self._hist, samples))
            out = np.rint(timeline[len(timeline) - n - d : len(timeline) - d])
            self._hist[:] = timeline[-self._hist_len :]  # in place: the compiled timeline holds this array
            np.clip(out, -32768, 32767, out=out)
            wide: np.ndarray = out.astype(np.int16)
            return wide
        result = np.empty(n, dtype=np.int16)
        # shift in place, one pass: compiled (``_plc``) or its numpy twin
        _plc.push_float(self._hist, np.ascontiguousarray(samples, dtype=np.float64), result, d)
        return result

    def _received(self, samples: np.ndarray) -> np.ndarray:
        """A received frame into the timeline, tracked as background; the delayed output as int16."""
        n = len(samples)
        if samples.dtype is _INT16 and n + self.latency_samples <= self._hist_len:
            # the loss-free path: shift, output and background estimate in one compiled call
            out = np.empty(n, _INT16)  # (positional: numpy parses a keyword slowly)
            if self._timeline.push(np.ascontiguousarray(samples), out):
                self._bg_fir = None  # a new background frame: its envelope is computed again when a loss needs it
            return out
        out = self._push(samples)
        if self._timeline.track(n):
            self._bg_fir = None
        return out

    @property
    def background_rms(self) -> Optional[float]:
        """The background noise level (RMS) the comfort noise would have, None while there is no estimate."""
        t = self._timeline
        if t.background_frame is None or t.seen < self.rate // 2:
            return None
        return math.sqrt(t.energy)

    def _find_pitch(self) -> Tuple[int, float]:
        """The pitch period and its normalised correlation (``pitch_max`` and 0 on silence)."""
        h = self._hist
        n = self.corr_len
        target = h[-n:]
        energy_t = float(np.dot(target, target))
        if energy_t <= 0.0:
            return self.pitch_max, 0.0
        # the windows h[-n-lag : -lag] of every lag lie in ``seg``; the one at offset j has lag pitch_max - j
        L = len(h)
        seg = h[L - n - self.pitch_max : L - self.pitch_min]
        num = np.correlate(seg, target, "valid")[::-1]  # lags pitch_min .. pitch_max
        sums = np.concatenate(([0.0], np.cumsum(seg * seg)))
        energy = np.maximum(sums[n:] - sums[:-n], 0.0)[::-1]
        score = num / (np.sqrt(energy * energy_t) + 1e-9)
        lags = np.arange(self.pitch_min, self.pitch_max + 1)
        i = int(np.argmax(score))
        best, best_lag = float(score[i]), int(lags[i])
        logger.debug("[PLC] pitch %d samples (corr %.2f)", best_lag, best)
        return best_lag, best

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

    def _noise(self, fir: np.ndarray, tail: np.ndarray, n: int) -> Tuple[np.ndarray, np.ndarray]:
        """``n`` samples of unit-RMS noise shaped by ``fir``; ``tail`` is the excitation so far.

        Returns the noise and the new tail."""
        exc = np.concatenate((tail, self._random().standard_normal(n)))
        return np.convolve(exc, fir, "valid"), exc[n:]

    def _synth(self, n: int) -> np.ndarray:
        """The next ``n`` samples of the concealment from ``_erased`` on (``_erased`` is not advanced)."""
        if 1.0 - 0.2 * (self._erased - self._ms10) / self._ms10 <= 0.0:
            # past the fade (60 ms; a peer that stopped sending, a long outage): only the comfort noise or silence
            # that ``_faded`` gives there, without its per-sample gains. The gain's formula is the one ``_faded``
            # evaluates, so both switch at the same sample and draw the same noise
            if self._cn_rms > 0.0:
                assert self._bg_fir is not None
                noise, self._cn_tail = self._noise(self._bg_fir, self._cn_tail, n)
                faded: np.ndarray = noise * self._cn_rms
                return faded
            return np.zeros(n)
        return self._faded(n)

    def _faded(self, n: int) -> np.ndarray:
        """``_synth`` through the fade's per-sample gains (any position of the loss)."""
        t = np.arange(self._erased, self._erased + n, dtype=np.float64)
        g = np.clip(1.0 - 0.2 * (t - self._ms10) / self._ms10, 0.0, 1.0)  # 1 until 10 ms, 0 from 60 ms
        out = np.zeros(n, dtype=np.float64)
        if g[0] > 0.0:
            ramp = np.minimum(1.0, (t + 1.0) / self._ramp)
            out += self._gen(n) * (g * (1.0 - ramp * (1.0 - math.sqrt(self._voicing))))
            if self._sig_fir is not None:
                noise, self._sig_tail = self._noise(self._sig_fir, self._sig_tail, n)
                out += noise * (g * ramp * (self._sig_rms * math.sqrt(1.0 - self._voicing)))
        if self._cn_rms > 0.0 and g[-1] < 1.0:
            assert self._bg_fir is not None
            noise, self._cn_tail = self._noise(self._bg_fir, self._cn_tail, n)
            out += noise * (self._cn_rms * np.sqrt(1.0 - g * g))
        return out

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
            return self._received(x)  # the loss-free path: int16 straight into the timeline
        xf = x.astype(np.float64)
        blocks = -(-self._erased // self._ms10)
        ola = min(self._quarter + self._ms4 * (blocks - 1), self._ms10, len(xf))
        if ola > 0:
            syn = self._synth(ola)
            w = np.arange(1, ola + 1, dtype=np.float64) / (ola + 1)
            xf[:ola] = syn * (1.0 - w) + xf[:ola] * w
        self._erased = 0
        self._pitchbuf = None
        self._pending = _NONE
        self._sig_fir = None
        self._cn_rms = 0.0
        return self._received(xf)

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
            out[done : done + chunk] = self._synth(chunk)
            done += chunk
            self._erased += chunk
            if boundary is not None and self._erased == boundary and self._periods < 3:
                self._add_period()
        return self._push(out)

    def _start_erasure(self) -> None:
        self._pitch, corr = self._find_pitch()
        recent = self._hist[len(self._hist) - self.corr_len :]
        self._sig_rms = math.sqrt(float(np.dot(recent, recent)) / len(recent))
        self._voicing = min(1.0, max(0.0, (corr - UNVOICED_CORR) / (VOICED_CORR - UNVOICED_CORR)))
        self._sig_fir = None
        if self._sig_rms > 0.0 and self._voicing < 1.0:
            _, self._sig_fir = spectral_envelope(recent, self.lpc_order, self.rate, self._fir_len)
            self._sig_tail = self._random().standard_normal(self._fir_len - 1)
        bg = self.background_rms
        self._cn_rms = 0.0 if bg is None else min(bg, self._sig_rms, COMFORT_MAX_RMS)
        if self._cn_rms > 0.0:
            if self._bg_fir is None:
                frame = self._timeline.background_frame
                assert frame is not None
                _, self._bg_fir = spectral_envelope(frame, self.lpc_order, self.rate, self._fir_len)
            self._cn_tail = self._random().standard_normal(self._fir_len - 1)
        logger.debug("[PLC] loss: level %.0f, voicing %.2f, comfort noise %.0f", self._sig_rms, self._voicing,
                     self._cn_rms)
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

    def _random(self) -> np.random.Generator:
        """The noise generator, seeded per concealer (so a copy continues identically)."""
        if self._rng is None:
            self._rng = np.random.default_rng(self._seed)
        return self._rng

    @property
    def history_samples(self) -> int:
        """How many samples of the output timeline the concealer keeps (what :meth:`restart` can use)."""
        return self._hist_len

    def restart(self, played: np.ndarray) -> None:
        """End any loss and take ``played`` as the output timeline so far, keeping the background-noise estimate.

        Used after a gap was filled from outside (interpolation towards a later frame): later losses then
        extrapolate from what was really played. The newest ``latency_samples`` of ``played`` are the ones the
        next call still outputs first; only the newest :attr:`history_samples` matter (a shorter ``played`` is
        preceded by silence).

        Args:
            played: the output timeline, newest sample last (int16 or float).

        Raises:
            ValueError: not a 1-D array.
        """
        x = np.asarray(played, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"played must be 1-D, got shape {x.shape}")
        m = min(len(x), self._hist_len)
        self._hist[: self._hist_len - m] = 0.0
        if m:
            self._hist[self._hist_len - m :] = x[len(x) - m :]
        self._erased = 0
        self._pitchbuf = None
        self._pending = _NONE
        self._sig_fir = None
        self._cn_rms = 0.0

    @property
    def in_loss(self) -> bool:
        """True while concealing (between a ``lost()`` and the next ``good()``)."""
        return self._erased > 0
