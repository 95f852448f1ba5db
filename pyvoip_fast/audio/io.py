"""Audio in and out: any sound file as 8 kHz mono int16 frames, tone/silence/microphone sources, WAV and PyAudio sinks.

Strategy
--------
Sources all have the same pull interface, ``read(n) -> int16 ndarray`` (exactly ``n`` samples, zero-padded only
by the last read before the end, an empty array after it) plus ``frames(n)``, so the media engine never cares
where audio comes from.

:func:`open_source` opens a file with libsndfile (through ``soundfile``), which recognises the format by its
content, not by its name: WAV, AIFF, FLAC, OGG/Vorbis, MP3 (libsndfile >= 1.1) and the rest of libsndfile's list.
Files are **streamed**: ``block_seconds`` of input at a time are read, downmixed (channel mean), resampled with
``scipy.signal.resample_poly`` (polyphase FIR, Kaiser-windowed anti-aliasing low-pass at the lower Nyquist
frequency) and converted to int16 with rounding and clipping. Block boundaries are invisible: every block is
resampled together with a margin of input on both sides that covers the filter's half length (a multiple of the
decimation factor, so output phases line up), and only the outputs whose whole filter support lies inside the
block plus margin are kept. The stream therefore equals one-shot ``resample_poly`` of the whole signal to
floating-point rounding (the tests check it). A file that already is 8 kHz mono 16-bit PCM is passed through
bit for bit (read as int16, no float round trip).

Problems with a file (missing, a directory, unreadable, empty, not audio, corrupt, no samples) raise
:class:`~pyvoip_fast.errors.AudioFileError` with a one-line message ``"<file>: <cause>"``.

Sinks have ``write(pcm)`` and ``close()``. :class:`PyAudioSink` never blocks its caller: frames go into a
bounded queue (oldest dropped and counted when the device falls behind) and a writer thread feeds PortAudio's
blocking ``write``. Pacing is therefore the caller's: one frame per ptime from the media clock. That is what
makes playback into clockless devices (ALSA ``null``/``file`` plugins used by the tests and headless machines)
produce exactly the stream that was played, and what keeps a slow sound card from stalling the event loop.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Any, Deque, Iterator, Optional, Protocol, Union

import numpy as np

from ..errors import AudioDeviceError, AudioFileError
from .._native import quiet_native_stderr

__all__ = [
    "TARGET_RATE",
    "Source",
    "Sink",
    "FileSource",
    "ToneSource",
    "SilenceSource",
    "MicrophoneSource",
    "open_source",
    "load_audio",
    "WavRecorder",
    "PyAudioSink",
    "TeeSink",
    "NullSink",
    "as_int16",
]

logger = logging.getLogger(__name__)

TARGET_RATE = 8000
PathLike = Union[str, "os.PathLike[str]"]

_SUBTYPE_NAMES = {
    "PCM_16": "int16",
    "PCM_24": "int24",
    "PCM_32": "int32",
    "PCM_S8": "int8",
    "PCM_U8": "uint8",
    "FLOAT": "float",
    "DOUBLE": "double",
    "VORBIS": "Vorbis",
    "OPUS": "Opus",
    "MPEG_LAYER_I": "MPEG-1 Layer I",
    "MPEG_LAYER_II": "MPEG-1 Layer II",
    "MPEG_LAYER_III": "MP3",
    "ULAW": "u-law",
    "ALAW": "A-law",
}


def _channels_name(n: int) -> str:
    return {1: "mono", 2: "stereo"}.get(n, f"{n}-channel")


def as_int16(pcm: Any) -> np.ndarray:
    """View ``pcm`` (int16 ndarray, or bytes-like of native-endian int16) as a 1-D int16 array.

    Raises:
        ValueError: odd byte count, wrong dtype or shape.
    """
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise ValueError(f"PCM must be int16, got {pcm.dtype}")
        if pcm.ndim != 1:
            raise ValueError(f"PCM must be 1-D, got shape {pcm.shape}")
        return pcm
    mv = memoryview(pcm).cast("B")
    if len(mv) % 2:
        raise ValueError(f"PCM byte length must be even, got {len(mv)}")
    return np.frombuffer(mv, dtype=np.int16)


def _float_to_int16(x: np.ndarray) -> np.ndarray:
    """Scale [-1, 1) floats to int16 with rounding and clipping (never wraps)."""
    y = np.rint(x * 32768.0)
    np.clip(y, -32768.0, 32767.0, out=y)
    return y.astype(np.int16)


# ---------------------------------------------------------------------------------------------------- sources
class Source(Protocol):
    """What the media engine reads audio from."""

    def read(self, n_samples: int) -> np.ndarray: ...

    def close(self) -> None: ...


class _BaseSource:
    """``frames()``, context manager and ``eof`` shared by the sources."""

    rate: int = TARGET_RATE
    eof: bool = False

    def read(self, n_samples: int) -> np.ndarray:  # pragma: no cover - every source class defines it
        """Up to ``n_samples`` samples of 8 kHz mono int16 (fewer at the end); each source class defines it."""
        raise NotImplementedError(f"{type(self).__name__} does not define read()")

    def close(self) -> None:
        """Release resources (idempotent)."""

    def frames(self, n_samples: int = 160) -> Iterator[np.ndarray]:
        """Yield ``n_samples``-sample frames until the end (the last one zero-padded)."""
        while True:
            f = self.read(n_samples)
            if len(f) == 0:
                return
            yield f

    def __enter__(self) -> "_BaseSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _StreamResampler:
    """Block-wise ``resample_poly`` whose output equals the one-shot result (see module docstring)."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        frac = Fraction(out_rate, in_rate)
        self.up, self.down = frac.numerator, frac.denominator
        # resample_poly's default filter: half_len = 10 * max(up, down) taps in the up-sampled domain
        half_len = 10 * max(self.up, self.down)
        # the very filter resample_poly would design on every call (Kaiser, beta 5, cutoff at the lower
        # Nyquist), designed once: passing it as `window` gives identical output without the per-block firwin
        from scipy.signal import firwin

        self.fir = firwin(2 * half_len + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0))
        need = half_len // self.up + 2  # input samples each output depends on, on either side
        self.margin = -(-need // self.down) * self.down  # multiple of down: outputs stay phase-aligned
        self.buf = np.zeros(0, dtype=np.float64)
        self.buf_start = 0  # global input index of buf[0], multiple of down
        self.produced = 0  # global output samples emitted
        self.total_in = 0

    def _run(self, final: bool) -> np.ndarray:
        from scipy.signal import resample_poly

        end_in = self.buf_start + len(self.buf)
        if final:
            k_end = -(-end_in * self.up // self.down)
        else:
            k_end = max(0, (end_in - self.margin) * self.up // self.down)
        if k_end <= self.produced or len(self.buf) == 0:
            return np.zeros(0, dtype=np.float64)
        y = resample_poly(self.buf, self.up, self.down, window=self.fir)
        k0 = self.buf_start * self.up // self.down
        out = y[self.produced - k0 : k_end - k0]
        self.produced = k_end
        # keep what the next outputs need: from (first input of output k_end) - margin, aligned down
        keep_from = max(0, (k_end * self.down // self.up) - self.margin)
        keep_from -= keep_from % self.down
        if keep_from > self.buf_start:
            self.buf = self.buf[keep_from - self.buf_start :]
            self.buf_start = keep_from
        result: np.ndarray = out
        return result

    def feed(self, x: np.ndarray) -> np.ndarray:
        self.total_in += len(x)
        self.buf = np.concatenate((self.buf, x)) if len(self.buf) else x.astype(np.float64, copy=True)
        return self._run(final=False)

    def finish(self) -> np.ndarray:
        return self._run(final=True)


class FileSource(_BaseSource):
    """A sound file streamed as 8 kHz (or ``rate``) mono int16. Use :func:`open_source` to make one.

    Attributes:
        path: the file.
        rate: output sample rate.
        duration: output duration in seconds.
        description: e.g. ``"song.flac: 44100 Hz stereo FLAC int16"``.
        passthrough: True when the file is already ``rate`` Hz mono 16-bit PCM (samples passed bit for bit).
        eof: True once every sample has been returned.
    """

    def __init__(self, path: PathLike, *, rate: int = TARGET_RATE, block_seconds: float = 1.0) -> None:
        import soundfile as sf

        self.path = Path(path)
        self.rate = int(rate)
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if not block_seconds > 0:
            raise ValueError(f"block_seconds must be positive, got {block_seconds}")
        name = self.path.name or str(self.path)
        _check_file(self.path)
        try:
            with quiet_native_stderr():  # mpg123 prints "Note: Illegal Audio-MPEG-Header" on non-audio input
                self._sf = sf.SoundFile(str(self.path), "r")
        except sf.LibsndfileError as exc:
            raise AudioFileError(f"{name}: {_sndfile_cause(exc)}") from None
        except (RuntimeError, OSError, ValueError, TypeError) as exc:
            raise AudioFileError(f"{name}: cannot read audio ({_one_line(exc)})") from None
        f = self._sf
        # soundfile's read() asks tell() (an sf_seek(0, SEEK_CUR)) before every block when the file is seekable;
        # libsndfile 1.2.2's MP3 decoder moves on such a seek, so block-wise MP3 reads came back scrambled. We never
        # seek, so we read as from a stream.
        setattr(f, "seekable", lambda: False)
        try:
            in_rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
            subtype, fmt = str(f.subtype), str(f.format)
        except Exception as exc:  # a half-opened handle: treat as corrupt
            f.close()
            raise AudioFileError(f"{name}: corrupt audio file ({_one_line(exc)})") from None
        if in_rate <= 0 or channels <= 0:
            f.close()
            raise AudioFileError(f"{name}: corrupt audio file (sample rate {in_rate}, {channels} channels)")
        if frames <= 0:
            f.close()
            raise AudioFileError(f"{name}: contains no audio samples")
        self.in_rate, self.channels, self.in_frames = in_rate, channels, frames
        self.subtype, self.format = subtype, fmt
        sample = _SUBTYPE_NAMES.get(subtype, subtype.lower())
        self.description = f"{name}: {in_rate} Hz {_channels_name(channels)} {fmt} {sample}"
        self.passthrough = in_rate == self.rate and channels == 1 and subtype == "PCM_16"
        self._block = max(1, int(round(block_seconds * in_rate)))
        self._resampler = None if in_rate == self.rate else _StreamResampler(in_rate, self.rate)
        if self._resampler is None:
            out_frames = frames
        else:
            out_frames = -(-frames * self._resampler.up // self._resampler.down)
        self.duration = out_frames / self.rate
        self._pending: Deque[np.ndarray] = deque()
        self._pending_len = 0
        self._input_done = False
        self.eof = False
        self._closed = False
        if self.passthrough:
            logger.info("[Audio] %s is already %d Hz mono int16", name, self.rate)
        else:
            logger.info(
                "[Audio] Converting %s: %d Hz %s %s → %d Hz mono int16",
                name,
                in_rate,
                _channels_name(channels),
                sample,
                self.rate,
            )

    def _fill(self, need: int) -> None:
        import soundfile as sf

        name = self.path.name
        while self._pending_len < need and not self._input_done:
            try:
                with quiet_native_stderr():
                    if self.passthrough:
                        block = self._sf.read(self._block, dtype="int16", always_2d=False)
                    else:
                        block = self._sf.read(self._block, dtype="float64", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
                raise AudioFileError(f"{name}: corrupt audio data ({_one_line(exc)})") from None
            if len(block) == 0:
                self._input_done = True
                if self._resampler is not None:
                    self._push(_float_to_int16(self._resampler.finish()))
                break
            if self.passthrough:
                self._push(np.ascontiguousarray(block, dtype=np.int16))
                continue
            mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1)
            if self._resampler is not None:
                mono = self._resampler.feed(mono)
            self._push(_float_to_int16(mono))

    def _push(self, x: np.ndarray) -> None:
        if len(x):
            self._pending.append(x)
            self._pending_len += len(x)

    def read(self, n_samples: int) -> np.ndarray:
        """The next ``n_samples`` samples.

        Returns:
            int16 array of exactly ``n_samples`` (the last one before the end zero-padded), or an empty array
            once the end was reached.

        Raises:
            AudioFileError: the file turned out corrupt while reading.
            ValueError: ``n_samples`` < 1 or the source is closed.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if self._closed:
            raise ValueError("read from a closed FileSource")
        if self.eof:
            return np.zeros(0, dtype=np.int16)
        self._fill(n_samples)
        out = np.zeros(n_samples, dtype=np.int16)
        filled = 0
        while filled < n_samples and self._pending:
            head = self._pending[0]
            k = min(len(head), n_samples - filled)
            out[filled : filled + k] = head[:k]
            filled += k
            if k == len(head):
                self._pending.popleft()
            else:
                self._pending[0] = head[k:]
            self._pending_len -= k
        if filled == 0:
            self.eof = True
            return np.zeros(0, dtype=np.int16)
        if self._input_done and self._pending_len == 0:
            self.eof = True
        return out

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sf.close()

    def __enter__(self) -> "FileSource":
        return self


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _sndfile_cause(exc: BaseException) -> str:
    text = _one_line(exc)
    low = text.lower()
    if (
        "format not recognised" in low
        or "unknown format" in low
        or "not recognised" in low
        # libsndfile's answer for a non-audio file named *.mp3 (we checked it is a regular file before)
        or "not a regular file" in low
    ):
        return "not an audio file in any format libsndfile can read (format not recognised)"
    if "permission" in low:
        return "permission denied"
    return f"corrupt or unsupported audio file ({text.split(': ', 1)[-1] if ': ' in text else text})"


def _check_file(path: Path) -> None:
    name = path.name or str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioFileError(f"{name}: no such file ({path})") from None
    except PermissionError:
        raise AudioFileError(f"{name}: permission denied") from None
    except OSError as exc:
        raise AudioFileError(f"{name}: cannot access ({_one_line(exc)})") from None
    if path.is_dir():
        raise AudioFileError(f"{name}: is a directory, not an audio file")
    if st.st_size == 0:
        raise AudioFileError(f"{name}: empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise AudioFileError(f"{name}: permission denied")


def open_source(path: PathLike, *, rate: int = TARGET_RATE, block_seconds: float = 1.0) -> FileSource:
    """Open any sound file libsndfile reads as a streamed ``rate`` Hz mono int16 source.

    Args:
        path: the file (its format is found from its content; the extension does not matter).
        rate: output sample rate (8000 for G.711).
        block_seconds: how much input is read and converted at a time.

    Returns:
        A :class:`FileSource`.

    Raises:
        AudioFileError: missing, a directory, unreadable, empty, not audio, corrupt or without samples.
    """
    return FileSource(path, rate=rate, block_seconds=block_seconds)


def load_audio(path: PathLike, *, rate: int = TARGET_RATE) -> np.ndarray:
    """Read a whole file as ``rate`` Hz mono int16 (convenience for tests and small files).

    Raises:
        AudioFileError: as :func:`open_source`.
    """
    with open_source(path, rate=rate) as src:
        parts = []
        while True:
            block = src.read(rate)
            if len(block) == 0:
                break
            parts.append(block)
        n = int(round(src.duration * rate))
    audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return audio[:n]


class ToneSource(_BaseSource):
    """A phase-continuous sine.

    Args:
        freq_hz: frequency (0 < f < rate/2).
        amplitude: peak relative to full scale (0-1).
        duration: seconds, or ``None`` for endless.
        rate: sample rate.
    """

    def __init__(self, freq_hz: float, amplitude: float = 0.5, duration: Optional[float] = None, *, rate: int = TARGET_RATE) -> None:
        if not 0 < freq_hz < rate / 2:
            raise ValueError(f"frequency must be in (0, {rate / 2}) Hz, got {freq_hz}")
        if not 0 <= amplitude <= 1:
            raise ValueError(f"amplitude must be in [0, 1], got {amplitude}")
        self.freq_hz, self.amplitude, self.rate = float(freq_hz), float(amplitude), int(rate)
        self._total = None if duration is None else int(round(duration * rate))
        self.duration = duration
        self._pos = 0
        self.eof = False

    def read(self, n_samples: int) -> np.ndarray:
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if self.eof:
            return np.zeros(0, dtype=np.int16)
        idx = np.arange(self._pos, self._pos + n_samples, dtype=np.float64)
        x = _float_to_int16(self.amplitude * np.sin(2 * math.pi * self.freq_hz * idx / self.rate))
        self._pos += n_samples
        if self._total is not None and self._pos >= self._total:
            keep = n_samples - (self._pos - self._total)
            x[keep:] = 0
            self.eof = True
            if keep <= 0:
                return np.zeros(0, dtype=np.int16)
        return x


class SilenceSource(_BaseSource):
    """Digital silence (``duration`` seconds, or endless)."""

    def __init__(self, duration: Optional[float] = None, *, rate: int = TARGET_RATE) -> None:
        self.rate = int(rate)
        self.duration = duration
        self._left = None if duration is None else int(round(duration * rate))
        self.eof = False

    def read(self, n_samples: int) -> np.ndarray:
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if self.eof:
            return np.zeros(0, dtype=np.int16)
        if self._left is not None:
            if self._left <= 0:
                self.eof = True
                return np.zeros(0, dtype=np.int16)
            self._left -= n_samples
            if self._left <= 0:
                self.eof = True
        return np.zeros(n_samples, dtype=np.int16)


def _pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError:
        raise AudioDeviceError(
            "PyAudio is not installed (pip install 'pyvoip-fast[audio]'; on Debian/Ubuntu it needs portaudio19-dev)"
        ) from None
    return pyaudio


class MicrophoneSource(_BaseSource):
    """Capture from a PortAudio input device (8 kHz mono int16).

    PortAudio's callback thread appends what the device captured to a bounded buffer; ``read(n)`` never blocks:
    it returns the oldest buffered samples, padded with silence when the device has delivered fewer than ``n``
    (each such read counts one in ``underruns``). When the reader falls behind, the buffer keeps only the newest
    ``max_buffer_seconds`` of audio (a microphone must not build up latency); the samples discarded are counted
    in ``dropped``. A device without a clock (e.g. ALSA's ``null``/``file`` plugins) may deliver audio far
    faster than real time: memory stays bounded and the reader still gets the newest audio.

    Args:
        device: PortAudio input device index, ``None`` for the default.
        rate: sample rate in Hz.
        frames_per_buffer: PortAudio buffer size in samples.
        max_buffer_seconds: most audio kept waiting for ``read`` (> 0; at least one sample).

    Attributes:
        underruns: reads that had to be padded with silence.
        dropped: captured samples discarded because the reader fell behind.

    Raises:
        ValueError: a non-positive ``rate``, ``frames_per_buffer`` or ``max_buffer_seconds``.
        AudioDeviceError: PyAudio missing, or no usable input device.
    """

    def __init__(self, device: Optional[int] = None, *, rate: int = TARGET_RATE, frames_per_buffer: int = 160,
                 max_buffer_seconds: float = 0.5) -> None:
        if int(rate) <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if int(frames_per_buffer) < 1:
            raise ValueError(f"frames_per_buffer must be >= 1, got {frames_per_buffer}")
        if not max_buffer_seconds > 0:
            raise ValueError(f"max_buffer_seconds must be positive, got {max_buffer_seconds}")
        pyaudio = _pyaudio()
        self.rate = int(rate)
        self.underruns = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._chunks: Deque[np.ndarray] = deque()
        self._len = 0
        self._max = max(1, int(max_buffer_seconds * self.rate))
        self._closed = False
        self._stream: Any = None
        self.eof = False
        self._continue = pyaudio.paContinue
        try:
            with quiet_native_stderr():  # PortAudio's ALSA/JACK probing is noisy on machines without sound
                self._pa = pyaudio.PyAudio()
        except Exception as exc:
            raise AudioDeviceError(f"cannot initialise PortAudio: {_one_line(exc)}") from None
        try:
            with quiet_native_stderr():
                if device is None:
                    self._pa.get_default_input_device_info()
                self._stream = self._pa.open(
                    format=pyaudio.paInt16, channels=1, rate=self.rate, input=True, input_device_index=device,
                    frames_per_buffer=int(frames_per_buffer), stream_callback=self._callback,
                )
        except Exception as exc:
            self._pa.terminate()
            self._closed = True
            raise AudioDeviceError(f"no usable audio input device ({_one_line(exc)})") from None

    def _callback(self, data: Optional[bytes], frame_count: int, time_info: Any, status: int) -> Any:
        """PortAudio's capture callback (its own thread): buffer the samples, keep only the newest ``_max``."""
        if data:
            x = np.frombuffer(data, dtype=np.int16)
            if len(x) > self._max:  # a chunk larger than the whole buffer: keep its newest samples
                with self._lock:
                    self.dropped += len(x) - self._max
                x = x[len(x) - self._max :]
            x = x.copy()
            with self._lock:
                self._chunks.append(x)
                self._len += len(x)
                while self._len > self._max:
                    excess = self._len - self._max
                    old = self._chunks[0]
                    if len(old) <= excess:
                        self._chunks.popleft()
                        self._len -= len(old)
                        self.dropped += len(old)
                    else:
                        self._chunks[0] = old[excess:]
                        self._len -= excess
                        self.dropped += excess
        return (None, self._continue)

    @property
    def buffered(self) -> int:
        """Captured samples waiting for ``read`` (at most ``max_buffer_seconds`` worth)."""
        return self._len

    def read(self, n_samples: int) -> np.ndarray:
        """Return exactly ``n_samples`` captured samples (int16), silence-padded if fewer were captured.

        Raises:
            ValueError: ``n_samples`` < 1 or the source is closed.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if self._closed:
            raise ValueError("read from a closed MicrophoneSource")
        out = np.zeros(n_samples, dtype=np.int16)
        filled = 0
        with self._lock:
            while filled < n_samples and self._chunks:
                head = self._chunks[0]
                k = min(len(head), n_samples - filled)
                out[filled : filled + k] = head[:k]
                filled += k
                self._len -= k
                if k == len(head):
                    self._chunks.popleft()
                else:
                    self._chunks[0] = head[k:]
            if filled < n_samples:
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
            logger.debug("[Audio] closing capture stream: %s", _one_line(exc))
        finally:
            self._pa.terminate()
            with self._lock:
                self._chunks.clear()
                self._len = 0


# ---------------------------------------------------------------------------------------------------- sinks
class Sink(Protocol):
    """Where received audio goes."""

    def write(self, pcm: Any) -> None: ...

    def close(self) -> None: ...


class _BaseSink:
    def close(self) -> None:
        """Flush and release (idempotent)."""

    def __enter__(self) -> "_BaseSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WavRecorder(_BaseSink):
    """Records 8 kHz (``rate``) mono 16-bit PCM WAV.

    Args:
        path: output file (overwritten).
        rate: sample rate written in the header.

    Raises:
        AudioFileError: the file cannot be created.
    """

    def __init__(self, path: PathLike, *, rate: int = TARGET_RATE) -> None:
        import soundfile as sf

        self.path = Path(path)
        self.rate = rate
        self.samples = 0
        try:
            self._sf: Any = sf.SoundFile(str(self.path), "w", samplerate=rate, channels=1, subtype="PCM_16",
                                         format="WAV")
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(f"{self.path.name}: cannot create WAV file ({_one_line(exc)})") from None

    def write(self, pcm: Any) -> None:
        """Append samples (int16 ndarray or native-endian int16 bytes).

        Raises:
            ValueError: bad PCM, or the recorder is closed.
        """
        if self._sf is None:
            raise ValueError("write to a closed WavRecorder")
        x = as_int16(pcm)
        self._sf.write(x)
        self.samples += len(x)

    def close(self) -> None:
        if self._sf is not None:
            self._sf.close()
            self._sf = None

    def __enter__(self) -> "WavRecorder":
        return self


class NullSink(_BaseSink):
    """Discards audio, counting it (``samples``, ``frames``)."""

    def __init__(self) -> None:
        self.samples = 0
        self.frames = 0

    def write(self, pcm: Any) -> None:
        x = as_int16(pcm)
        self.samples += len(x)
        self.frames += 1


class TeeSink(_BaseSink):
    """Writes every frame to each of ``sinks`` (e.g. a speaker and a recorder)."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = list(sinks)

    def write(self, pcm: Any) -> None:
        x = as_int16(pcm)
        for s in self.sinks:
            s.write(x)

    def close(self) -> None:
        errors = []
        for s in self.sinks:
            try:
                s.close()
            except Exception as exc:  # close all, then report the first failure
                errors.append(exc)
        if errors:
            raise errors[0]


class PyAudioSink(_BaseSink):
    """Plays through PortAudio without ever blocking the writer.

    ``write`` enqueues the frame (at most ``max_queue_frames`` waiting; beyond that the oldest is dropped and
    counted in ``dropped``); a daemon thread hands frames to PortAudio's blocking ``write``. The caller paces
    playback (one frame per ptime from the media clock).

    Args:
        rate: sample rate (8000).
        device: PortAudio output device index, ``None`` for the default.
        frames_per_buffer: PortAudio buffer size in samples.
        max_queue_frames: frames allowed to wait for the device.

    Raises:
        AudioDeviceError: PyAudio missing, no output device, or the device refuses the format.
    """

    def __init__(self, *, rate: int = TARGET_RATE, device: Optional[int] = None, frames_per_buffer: int = 160,
                 max_queue_frames: int = 10) -> None:
        pyaudio = _pyaudio()
        self.rate = rate
        self.dropped = 0
        self.played = 0
        self.errors = 0
        self._queue: Deque[bytes] = deque()
        self._max = max(1, max_queue_frames)
        self._cond = threading.Condition()
        self._closing = False
        try:
            with quiet_native_stderr():  # PortAudio's ALSA/JACK probing is noisy on machines without sound
                self._pa = pyaudio.PyAudio()
        except Exception as exc:
            raise AudioDeviceError(f"cannot initialise PortAudio: {_one_line(exc)}") from None
        try:
            with quiet_native_stderr():
                if device is None:
                    self._pa.get_default_output_device_info()
                self._stream = self._pa.open(format=pyaudio.paInt16, channels=1, rate=rate, output=True,
                                             output_device_index=device, frames_per_buffer=frames_per_buffer)
        except Exception as exc:
            self._pa.terminate()
            raise AudioDeviceError(f"no usable audio output device ({_one_line(exc)})") from None
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
                    logger.warning("[Audio] playback error: %s", _one_line(exc))

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
            logger.debug("[Audio] closing playback stream: %s", _one_line(exc))
        finally:
            self._pa.terminate()

    def __enter__(self) -> "PyAudioSink":
        return self
