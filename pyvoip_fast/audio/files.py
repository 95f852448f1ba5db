"""Sound files as sources: any format libsndfile reads, streamed and converted to ``rate`` Hz mono int16.

Strategy
--------
:func:`open_source` opens a file with libsndfile (through ``soundfile``), which recognises the format by its
content, not by its name: WAV, AIFF, FLAC, OGG/Vorbis, MP3 (libsndfile >= 1.1) and the rest of libsndfile's list.
Files are **streamed**: ``block_seconds`` of input at a time are read, downmixed (channel mean), resampled by
:class:`~pyvoip_fast.audio.resample.StreamResampler` (block boundaries invisible: the stream equals one-shot
``resample_poly`` of the whole file) and converted to int16 with rounding and clipping. A file that already is
``rate`` Hz mono 16-bit PCM is passed through bit for bit (read as int16, no float round trip).

Problems with a file (missing, a directory, unreadable, empty, not audio, corrupt, no samples) raise
:class:`~pyvoip_fast.errors.AudioFileError` with a one-line message ``"<file>: <cause>"``: the checks before
opening and the translation of libsndfile's errors live here.

Owns :class:`FileSource`, :func:`open_source` and :func:`load_audio`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .._native import quiet_native_stderr
from ..errors import AudioFileError
from .base import TARGET_RATE, PathLike, QueuedSource, float_to_int16, one_line
from .resample import StreamResampler

__all__ = ["FileSource", "open_source", "load_audio"]

logger = logging.getLogger(__name__)

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


class FileSource(QueuedSource):
    """A sound file streamed as ``rate`` Hz mono int16 (8 kHz by default). Use :func:`open_source` to make one.

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
            raise AudioFileError(f"{name}: cannot read audio ({one_line(exc)})") from None
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
            raise AudioFileError(f"{name}: corrupt audio file ({one_line(exc)})") from None
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
        self._resampler = None if in_rate == self.rate else StreamResampler(in_rate, self.rate)
        out_frames = frames if self._resampler is None else self._resampler.out_len(frames)
        self.duration = out_frames / self.rate
        QueuedSource.__init__(self)
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
        while len(self._pending) < need and not self._input_done:
            try:
                with quiet_native_stderr():
                    if self.passthrough:
                        block = self._sf.read(self._block, dtype="int16", always_2d=False)
                    else:
                        block = self._sf.read(self._block, dtype="float64", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
                raise AudioFileError(f"{name}: corrupt audio data ({one_line(exc)})") from None
            if len(block) == 0:
                self._input_done = True
                if self._resampler is not None:
                    self._pending.push(float_to_int16(self._resampler.finish()))
                break
            if self.passthrough:
                self._pending.push(np.ascontiguousarray(block, dtype=np.int16))
                continue
            mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1)
            if self._resampler is not None:
                mono = self._resampler.feed(mono)
            self._pending.push(float_to_int16(mono))

    def read(self, n_samples: int) -> np.ndarray:
        """The next ``n_samples`` samples.

        Returns:
            int16 array of exactly ``n_samples`` (the last one before the end zero-padded), or an empty array
            once the end was reached.

        Raises:
            AudioFileError: the file turned out corrupt while reading.
            ValueError: ``n_samples`` < 1 or the source is closed.
        """
        if self._closed:
            raise ValueError("read from a closed FileSource")
        return super().read(n_samples)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sf.close()

    def __enter__(self) -> "FileSource":
        return self


def _sndfile_cause(exc: BaseException) -> str:
    text = one_line(exc)
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
        raise AudioFileError(f"{name}: cannot access ({one_line(exc)})") from None
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
        rate: output sample rate: the codec's (default :data:`~pyvoip_fast.audio.base.TARGET_RATE`, G.711's).
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
        return read_whole(src)


def read_whole(src: FileSource) -> np.ndarray:
    """Everything ``src`` still has, exactly as long as the file (without the last read's zero padding)."""
    rate = src.rate
    parts = []
    while True:
        block = src.read(rate)
        if len(block) == 0:
            break
        parts.append(block)
    n = int(round(src.duration * rate))
    audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return audio[:n]


