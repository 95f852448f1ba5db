"""Live audio between a call and Python: a play queue the call sends from, and taps on what it hears.

Strategy
--------
The media engine pulls one frame per send slot from a *source* and pushes one frame per playout tick into a
*sink* (``media.MediaSession``), both on the event loop's thread, at the codec's sample rate. This module gives
a call one of each, built for programs rather than files:

- :class:`PlayQueue` is a ``live`` source: playbacks (a file, an array, bytes, an async iterator of frames) are
  converted to the call's rate when queued and read out in order; ``stop()`` (barge-in) empties it, so the
  next slot — at most one frame later — is silent. When nothing is queued it returns no samples and the sender
  sends no packet for that slot (the next one starts a talk spurt with the marker bit), like a phone with voice
  activity detection. A streamed playback that runs dry (the producer is slower than real time) sends silence
  until the producer catches up, counted in ``underruns``.
- :class:`TapSink` wraps the call's own sink (recording, sound device) and copies every frame it plays — after the
  jitter buffer and packet-loss concealment — to each :class:`AudioIn` iterator, resampled to the rate that
  iterator asked for and cut into its frame length. Each iterator has a bounded queue: a consumer that falls
  behind loses the *oldest* frames (counted in ``dropped`` and the call's ``audio_in_dropped``), never the
  newest, so it always resumes with what the peer says now.

Nothing here blocks: the media tick only appends to deques and wakes waiting futures.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Any, AsyncIterator, Deque, List, Optional, Union

import numpy as np

from .. import audio
from ..audio.base import SampleQueue, as_int16, float_to_int16
from ..audio.resample import StreamResampler
from ..media.lazy_event import LazyEvent
from .call_events import QueueIterator

logger = logging.getLogger(__name__)

__all__ = ["PlayQueue", "TapSink", "AudioIn", "EchoLoop", "SUPPORTED_RATES", "to_pcm"]

#: sample rates ``audio_in`` delivers and ``play`` accepts for arrays, bytes and streamed frames
SUPPORTED_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)

#: a streamed playback is not read further ahead than this many seconds (back-pressure on a fast producer)
STREAM_AHEAD_SECONDS = 2.0


def _check_rate(rate: Any) -> int:
    if not isinstance(rate, (int, np.integer)) or int(rate) not in SUPPORTED_RATES:
        raise ValueError(f"unsupported sample rate {rate!r}: use one of {', '.join(map(str, SUPPORTED_RATES))} Hz")
    return int(rate)


def to_pcm(data: Any) -> np.ndarray:
    """One chunk of audio as mono int16: an int16 array, a float array in [-1, 1], or bytes of int16 samples.

    Raises:
        TypeError: not an array or bytes-like object.
        ValueError: another dtype, more than one dimension, an odd number of bytes, or float samples that are
            not finite.
    """
    if isinstance(data, np.ndarray):
        if data.ndim != 1:
            raise ValueError(f"audio must be one channel (a 1-D array), not shape {data.shape}")
        if data.dtype == np.int16:
            return data
        if data.dtype in (np.float32, np.float64):
            if not np.all(np.isfinite(data)):
                raise ValueError("float audio contains NaN or infinity")
            return float_to_int16(data.astype(np.float64))
        raise ValueError(f"audio must be int16 or float samples, not {data.dtype}")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return as_int16(data).copy()
    raise TypeError(f"audio must be a numpy array or bytes of int16 samples, not {type(data).__name__}")


class _Resampler:
    """Streaming polyphase resampling of int16 frames in numpy alone (nothing to import mid-call).

    The filter is ``resample_poly``'s default design (a Kaiser-windowed sinc, beta 5, ``10 * max(up, down)`` taps
    on each side in the up-sampled domain, cutoff at the lower Nyquist), run as a zero-stuffed convolution that
    keeps its state between frames: frame by frame the output is one continuous signal, delayed by the filter's
    half length (10 input samples: 1.25 ms at 8 kHz). Equal rates pass through untouched.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        frac = Fraction(int(out_rate), int(in_rate))
        self.up, self.down = frac.numerator, frac.denominator
        self.identity = self.up == self.down == 1
        #: ratios such as 8000 <-> 44100 (441/80) need a true polyphase filter: scipy's (imported on first use)
        self._scipy = StreamResampler(in_rate, out_rate) if max(self.up, self.down) > 12 else None
        half = 10 * max(self.up, self.down)
        taps = np.arange(2 * half + 1) - half
        cutoff = 1.0 / max(self.up, self.down)
        h = cutoff * np.sinc(cutoff * taps) * np.kaiser(2 * half + 1, 5.0)
        self._h = h * (self.up / h.sum())  # unity gain at DC after zero-stuffing by ``up``
        self._state = np.zeros(2 * half, dtype=np.float64)
        self._phase = 0  # index, in this block's up-sampled samples, of the next output

    def feed(self, pcm: np.ndarray) -> np.ndarray:
        if self.identity:
            return pcm
        if self._scipy is not None:
            return float_to_int16(self._scipy.feed(pcm.astype(np.float64) / 32768.0))
        xu = np.zeros(len(pcm) * self.up, dtype=np.float64)
        xu[:: self.up] = pcm
        padded = np.concatenate((self._state, xu))
        y = np.convolve(padded, self._h, mode="valid")  # one output per up-sampled input
        self._state = padded[len(padded) - len(self._state):]
        out = y[self._phase :: self.down]
        self._phase = (self._phase - len(y)) % self.down
        np.rint(out, out=out)
        np.clip(out, -32768.0, 32767.0, out=out)
        return out.astype(np.int16)

    def finish(self) -> np.ndarray:
        """The tail still in the filter (half its length of silence pushed through)."""
        if self.identity:
            return np.zeros(0, dtype=np.int16)
        if self._scipy is not None:
            return float_to_int16(self._scipy.finish())
        return self.feed(np.zeros(len(self._state) // (2 * self.up) + 1, dtype=np.int16))


# ------------------------------------------------------------------------------------------------------ out
class _Playback:
    """One queued playback: samples at the call's rate, and a future saying how it ended."""

    def __init__(self, loop: asyncio.AbstractEventLoop, label: str) -> None:
        self.label = label
        self.done: "asyncio.Future[bool]" = loop.create_future()  # True: played to the end; False: stopped
        self.samples = SampleQueue()
        self.finished_input = True  # all its samples are in ``samples``
        self.task: Optional["asyncio.Task[None]"] = None
        self.room: asyncio.Event = LazyEvent()  # set when the reader consumed some of a streamed playback

    def read_into(self, out: np.ndarray) -> int:
        n = self.samples.take_into(out)
        if n:
            self.room.set()
        return n

    def end(self, played: bool) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if not self.done.done():
            self.done.set_result(played)


class PlayQueue:
    """The call's live source: queued playbacks read out in order (see the module docstring).

    Attributes:
        rate: the call's sample rate. underruns: slots a streamed playback could not fill in time.
    """

    live = True
    eof = False

    def __init__(self, rate: int, loop: asyncio.AbstractEventLoop) -> None:
        self.rate = rate
        self._loop = loop
        self._queue: Deque[_Playback] = deque()
        self.underruns = 0
        self._closed = False

    @property
    def busy(self) -> bool:
        """True while something plays or waits to."""
        return bool(self._queue)

    # -- queueing (the application's side) ------------------------------------------------------------------
    def add_samples(self, pcm: np.ndarray, label: str) -> _Playback:
        """Queue int16 samples already at the call's rate."""
        item = self._new(label)
        item.samples.push(pcm)
        return item

    def add_file(self, path: Union[str, "os.PathLike[str]"]) -> _Playback:
        """Queue a sound file (decoded and converted now: an unreadable file raises before anything is queued).

        Raises:
            AudioFileError: missing, unreadable or not audio.
        """
        pcm = audio.load_audio(Path(path), rate=self.rate)
        return self.add_samples(pcm, f"file {Path(path).name}")

    def add_stream(self, frames: AsyncIterator[Any], rate: int) -> _Playback:
        """Queue an async iterator of chunks (int16/float arrays or int16 bytes) at ``rate``, read as it plays."""
        item = self._new("stream")
        item.finished_input = False
        item.task = self._loop.create_task(self._pump(item, frames, _Resampler(rate, self.rate)))
        return item

    def _new(self, label: str) -> _Playback:
        if self._closed:
            raise RuntimeError("the call has ended: nothing more can be played")
        item = _Playback(self._loop, label)
        self._queue.append(item)
        return item

    async def _pump(self, item: _Playback, frames: AsyncIterator[Any], rs: _Resampler) -> None:
        ahead = int(STREAM_AHEAD_SECONDS * self.rate)
        try:
            async for chunk in frames:
                item.samples.push(rs.feed(to_pcm(chunk)))
                while len(item.samples) > ahead:
                    item.room.clear()
                    await item.room.wait()
            item.samples.push(rs.finish())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a producer that fails ends its playback, never the call
            logger.error("[RTP] Streamed playback failed: %s", audio.base.one_line(exc))
        finally:
            item.finished_input = True

    def stop(self) -> int:
        """Barge-in: end the current playback and drop the queued ones; returns how many were cut."""
        items = list(self._queue)
        self._queue.clear()
        for item in items:
            item.end(False)
        return len(items)

    def close(self) -> None:
        """The call ended: stop everything; later ``add_*`` calls raise."""
        self._closed = True
        self.stop()

    # -- reading (the media tick's side) ------------------------------------------------------------------------
    def read(self, n_samples: int) -> np.ndarray:
        """The next ``n_samples`` of the current playbacks; empty when nothing is queued (no packet this slot)."""
        if not self._queue:
            return np.zeros(0, dtype=np.int16)
        out = np.zeros(n_samples, dtype=np.int16)
        filled = 0
        while filled < n_samples and self._queue:
            head = self._queue[0]
            filled += head.read_into(out[filled:])
            if len(head.samples) == 0:
                if head.finished_input:
                    self._queue.popleft()
                    head.end(True)
                else:
                    if filled < n_samples:
                        self.underruns += 1  # the producer is late: the rest of this frame is silence
                    break
        return out


# ------------------------------------------------------------------------------------------------------- in
class AudioIn(QueueIterator[np.ndarray]):
    """An async iterator of what the peer says: int16 frames of ``frame_ms`` at ``rate`` (``Call.audio_in``).

    Use it in ``async for`` or ``async with``; it stops when the call ends or ``close()`` is called. At most
    ``max_queue`` frames wait; beyond that the oldest is dropped and counted in ``dropped``.
    """

    def __init__(self, tap: "TapSink", rate: int, frame_ms: int, max_queue: int) -> None:
        self.rate = _check_rate(rate)
        if not isinstance(frame_ms, int) or not 5 <= frame_ms <= 200 or (self.rate * frame_ms) % 1000:
            raise ValueError(f"frame_ms must be a whole number of samples between 5 and 200 ms, not {frame_ms!r}")
        if not isinstance(max_queue, int) or max_queue < 1:
            raise ValueError(f"max_queue must be a positive number of frames, not {max_queue!r}")
        super().__init__()
        self.frame_ms = frame_ms
        self.frame_samples = self.rate * frame_ms // 1000
        self.max_queue = max_queue
        self.dropped = 0
        self._tap = tap
        self._rs = _Resampler(tap.rate, self.rate)
        self._pending = SampleQueue()

    def _push(self, pcm: np.ndarray) -> None:
        """Called by the tap with one played frame at the call's rate."""
        self._pending.push(self._rs.feed(pcm))
        k = self.frame_samples
        while len(self._pending) >= k:
            frame = np.empty(k, dtype=np.int16)
            self._pending.take_into(frame)
            if len(self._items) >= self.max_queue:
                self._items.popleft()
                self.dropped += 1
                self._tap.dropped += 1
            self._items.append(frame)
        self._wake()

    def _detach(self) -> None:
        self._tap.remove(self)


class TapSink:
    """The call's sink: the user's own sink (or none) plus every open :class:`AudioIn`.

    Attributes:
        rate: the call's sample rate. dropped: frames dropped across all taps (the call's ``audio_in_dropped``).
    """

    def __init__(self, inner: Any, rate: int) -> None:
        self.inner = inner
        self.rate = rate
        self.dropped = 0
        self._taps: List[AudioIn] = []

    def open(self, rate: int, frame_ms: int, max_queue: int) -> AudioIn:
        tap = AudioIn(self, rate, frame_ms, max_queue)
        self._taps.append(tap)
        return tap

    def remove(self, tap: AudioIn) -> None:
        if tap in self._taps:
            self._taps.remove(tap)

    def write(self, pcm: Any) -> None:
        if self.inner is not None:
            try:
                self.inner.write(pcm)
            except Exception as exc:  # a recorder that fails must not silence the program listening too
                logger.error("[RTP] Audio sink failed, playback stopped: %s", audio.base.one_line(exc))
                self.inner = None
        for tap in self._taps:
            tap._push(pcm)

    def close(self) -> None:
        """The call ended: every iterator finishes after what it holds (the inner sink is closed by its owner)."""
        for tap in list(self._taps):
            tap.close()


class EchoLoop:
    """The echo service (``listen --echo``): a sink whose frames come back out as a live source.

    A frame played out at one media tick is sent at the next one, so the echo adds one frame to the path; at
    most ``max_frames`` frames wait (the oldest go first), so a jitter buffer that drains a burst cannot build
    up delay in the loop.
    """

    live = True
    eof = False

    #: no rate of its own: it runs at whatever rate the call's codec has
    rate = None

    def __init__(self, max_frames: int = 3) -> None:
        self._queue = SampleQueue()
        self._frame = 0
        self._max_frames = max_frames

    def write(self, pcm: Any) -> None:
        pcm = np.array(as_int16(pcm), dtype=np.int16)  # a copy: the receiver may reuse its buffer
        self._frame = len(pcm) or self._frame
        self._queue.push(pcm)
        excess = len(self._queue) - self._max_frames * self._frame
        if excess > 0:
            self._queue.discard(excess)

    def read(self, n_samples: int) -> np.ndarray:
        if len(self._queue) < n_samples:
            return np.zeros(0, dtype=np.int16)  # nothing heard yet (or a gap): no packet this slot
        out = np.empty(n_samples, dtype=np.int16)
        self._queue.take_into(out)
        return out

    def close(self) -> None:
        self._queue.clear()
