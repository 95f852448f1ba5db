"""Sound-card audio through PyAudio/PortAudio: microphone capture and speaker playback, at any ``rate``.

Strategy
--------
Neither side ever blocks the media engine. :class:`MicrophoneSource` is fed by PortAudio's callback thread into
a bounded buffer that keeps the newest audio; ``read(n)`` returns what is there, padded with silence.
:class:`PyAudioSink` puts frames in a bounded queue (oldest dropped and counted when the device falls behind) and
a writer thread feeds PortAudio's blocking ``write``. Pacing is therefore the caller's: one frame per ptime from
the media clock. That is what makes playback into clockless devices (ALSA ``null``/``file`` plugins used by the
tests and headless machines) produce exactly the stream that was played, and what keeps a slow sound card from
stalling the event loop. PortAudio buffers default to 20 ms at the stream's ``rate``.

PyAudio is imported only when a device is opened, so the rest of the layer works without it; PortAudio's noisy
probing of ALSA/JACK is kept off stderr.

Owns :class:`MicrophoneSource`, :class:`PyAudioSink` and the PyAudio import.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Deque, Optional

import numpy as np

from .._native import quiet_native_stderr
from ..errors import AudioDeviceError
from .base import (TARGET_RATE, BaseSink, BaseSource, SampleQueue, as_int16, check_read_size, frame_samples,
                   one_line)

__all__ = ["MicrophoneSource", "PyAudioSink"]

logger = logging.getLogger(__name__)


def _pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError:
        raise AudioDeviceError(
            "PyAudio is not installed (pip install 'pyvoip-fast[audio]'; on Debian/Ubuntu it needs portaudio19-dev)"
        ) from None
    return pyaudio


def _buffer_size(rate: int, frames_per_buffer: Optional[int]) -> int:
    """The PortAudio buffer size: as given, or 20 ms at ``rate``; ``ValueError`` for a bad rate or size."""
    if int(rate) <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    size = frame_samples(rate) if frames_per_buffer is None else int(frames_per_buffer)
    if size < 1:
        raise ValueError(f"frames_per_buffer must be >= 1, got {frames_per_buffer}")
    return size


def _open_portaudio(pyaudio: Any) -> Any:
    try:
        with quiet_native_stderr():  # PortAudio's ALSA/JACK probing is noisy on machines without sound
            return pyaudio.PyAudio()
    except Exception as exc:
        raise AudioDeviceError(f"cannot initialise PortAudio: {one_line(exc)}") from None


class MicrophoneSource(BaseSource):
    """Capture from a PortAudio input device (``rate`` Hz mono int16, 8 kHz by default).

    PortAudio's callback thread appends what the device captured to a bounded buffer; ``read(n)`` never blocks:
    it returns the oldest buffered samples, padded with silence when the device has delivered fewer than ``n``
    (each such read counts one in ``underruns``). When the reader falls behind, the buffer keeps only the newest
    ``max_buffer_seconds`` of audio (a microphone must not build up latency); the samples discarded are counted
    in ``dropped``. A device without a clock (e.g. ALSA's ``null``/``file`` plugins) may deliver audio far
    faster than real time: memory stays bounded and the reader still gets the newest audio.

    Args:
        device: PortAudio input device index, ``None`` for the default.
        rate: sample rate in Hz.
        frames_per_buffer: PortAudio buffer size in samples (default: 20 ms at ``rate``).
        max_buffer_seconds: most audio kept waiting for ``read`` (> 0; at least one sample).

    Attributes:
        underruns: reads that had to be padded with silence.
        dropped: captured samples discarded because the reader fell behind.

    Raises:
        ValueError: a non-positive ``rate``, ``frames_per_buffer`` or ``max_buffer_seconds``.
        AudioDeviceError: PyAudio missing, or no usable input device.
    """

    def __init__(self, device: Optional[int] = None, *, rate: int = TARGET_RATE,
                 frames_per_buffer: Optional[int] = None, max_buffer_seconds: float = 0.5) -> None:
        buffer_size = _buffer_size(rate, frames_per_buffer)
        if not max_buffer_seconds > 0:
            raise ValueError(f"max_buffer_seconds must be positive, got {max_buffer_seconds}")
        pyaudio = _pyaudio()
        self.rate = int(rate)
        self.underruns = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._queue = SampleQueue()
        self._max = max(1, int(max_buffer_seconds * self.rate))
        self._closed = False
        self._stream: Any = None
        self.eof = False
        self._continue = pyaudio.paContinue
        self._pa = _open_portaudio(pyaudio)
        try:
            with quiet_native_stderr():
                if device is None:
                    self._pa.get_default_input_device_info()
                self._stream = self._pa.open(
                    format=pyaudio.paInt16, channels=1, rate=self.rate, input=True, input_device_index=device,
                    frames_per_buffer=buffer_size, stream_callback=self._callback,
                )
        except Exception as exc:
            self._pa.terminate()
            self._closed = True
            raise AudioDeviceError(f"no usable audio input device ({one_line(exc)})") from None

    def _callback(self, data: Optional[bytes], frame_count: int, time_info: Any, status: int) -> Any:
        """PortAudio's capture callback (its own thread): buffer the samples, keep only the newest ``_max``."""
        if data:
            x = np.frombuffer(data, dtype=np.int16)
            lost = 0
            if len(x) > self._max:  # a chunk larger than the whole buffer: keep its newest samples
                lost = len(x) - self._max
                x = x[lost:]
            x = x.copy()
            with self._lock:
                # make room first, so the buffer never holds more than _max (``buffered`` reads it unlocked)
                excess = len(self._queue) + len(x) - self._max
                if excess > 0:
                    lost += self._queue.discard(excess)
                self._queue.push(x)
                self.dropped += lost
        return (None, self._continue)

    @property
    def buffered(self) -> int:
        """Captured samples waiting for ``read`` (at most ``max_buffer_seconds`` worth)."""
        return len(self._queue)

    def read(self, n_samples: int) -> np.ndarray:
        """Return exactly ``n_samples`` captured samples (int16), silence-padded if fewer were captured.

        Raises:
            ValueError: ``n_samples`` < 1 or the source is closed.
        """
        check_read_size(n_samples)
        if self._closed:
            raise ValueError("read from a closed MicrophoneSource")
        out = np.zeros(n_samples, dtype=np.int16)
        with self._lock:
            if self._queue.take_into(out) < n_samples:
                self.underruns += 1
        return out

    def close(self) -> None:
        """Stop capturing and release the device (idempotent); buffered audio is discarded."""
        if self._closed:
            return
        self._closed = True
        stream, self._stream = self._stream, None
        try:
            if stream is not None:
                stream.stop_stream()
                stream.close()
        except Exception as exc:
            logger.debug("[Audio] closing capture stream: %s", one_line(exc))
        finally:
            self._pa.terminate()
            with self._lock:
                self._queue.clear()


class PyAudioSink(BaseSink):
    """Plays through PortAudio without ever blocking the writer.

    ``write`` enqueues the frame (at most ``max_queue_frames`` waiting; beyond that the oldest is dropped and
    counted in ``dropped``); a daemon thread hands frames to PortAudio's blocking ``write``. The caller paces
    playback (one frame per ptime from the media clock).

    Args:
        rate: sample rate (default :data:`~pyvoip_fast.audio.base.TARGET_RATE`, G.711's).
        device: PortAudio output device index, ``None`` for the default.
        frames_per_buffer: PortAudio buffer size in samples (default: 20 ms at ``rate``).
        max_queue_frames: frames allowed to wait for the device.

    Raises:
        ValueError: a non-positive ``rate`` or ``frames_per_buffer``.
        AudioDeviceError: PyAudio missing, no output device, or the device refuses the format.
    """

    def __init__(self, *, rate: int = TARGET_RATE, device: Optional[int] = None,
                 frames_per_buffer: Optional[int] = None, max_queue_frames: int = 10) -> None:
        buffer_size = _buffer_size(rate, frames_per_buffer)
        pyaudio = _pyaudio()
        self.rate = int(rate)
        self.dropped = 0
        self.played = 0
        self.errors = 0
        self._queue: Deque[bytes] = deque()
        self._max = max(1, max_queue_frames)
        self._cond = threading.Condition()
        self._closing = False
        self._pa = _open_portaudio(pyaudio)
        try:
            with quiet_native_stderr():
                if device is None:
                    self._pa.get_default_output_device_info()
                self._stream = self._pa.open(format=pyaudio.paInt16, channels=1, rate=self.rate, output=True,
                                             output_device_index=device, frames_per_buffer=buffer_size)
        except Exception as exc:
            self._pa.terminate()
            raise AudioDeviceError(f"no usable audio output device ({one_line(exc)})") from None
        self._thread = threading.Thread(target=self._run, name="pyvoip-playback", daemon=True)
        self._thread.start()

    def write(self, pcm: Any) -> None:
        """Queue one frame for playback (never blocks).

        Raises:
            ValueError: bad PCM or the sink is closed.
        """
        if self._closing:
            raise ValueError("write to a closed PyAudioSink")
        data = as_int16(pcm).tobytes()
        with self._cond:
            if len(self._queue) >= self._max:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(data)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait(0.5)
                if not self._queue and self._closing:
                    return
                data = self._queue.popleft()
            try:
                self._stream.write(data, exception_on_underflow=False)
                self.played += 1
            except Exception as exc:  # device vanished: count, keep draining so writers never block
                self.errors += 1
                if self.errors == 1:
                    logger.warning("[Audio] playback error: %s", one_line(exc))

    @property
    def queued(self) -> int:
        """Frames waiting for the device."""
        return len(self._queue)

    def close(self, timeout: float = 2.0) -> None:
        """Play what is queued (up to ``timeout`` seconds), then close the device."""
        if self._closing:
            return
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        try:
            self._stream.stop_stream()
            self._stream.close()
        except Exception as exc:
            logger.debug("[Audio] closing playback stream: %s", one_line(exc))
        finally:
            self._pa.terminate()

    def __enter__(self) -> "PyAudioSink":
        return self
