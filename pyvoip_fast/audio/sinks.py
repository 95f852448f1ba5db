"""Sinks that need no device: a WAV recorder, a counting null sink, and a tee to several sinks.

Strategy
--------
A sink takes whatever PCM the media engine hands it (an int16 ndarray or native-endian int16 bytes, checked by
:func:`~pyvoip_fast.audio.base.as_int16`) and does its one thing synchronously: these sinks are fast enough to
run on the event loop. Each has the ``rate`` its audio is at; a tee refuses sinks at different rates, since
writing one frame to both would play it at the wrong speed on one of them.

Owns :class:`WavRecorder`, :class:`NullSink` and :class:`TeeSink`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

from ..errors import AudioFileError
from .base import TARGET_RATE, BaseSink, PathLike, as_int16, one_line

__all__ = ["WavRecorder", "NullSink", "TeeSink"]


class WavRecorder(BaseSink):
    """Records ``rate`` Hz mono 16-bit PCM WAV.

    Args:
        path: output file (overwritten).
        rate: sample rate written in the header.

    Raises:
        AudioFileError: the file cannot be created.
        ValueError: a non-positive ``rate``.
    """

    def __init__(self, path: PathLike, *, rate: int = TARGET_RATE) -> None:
        import soundfile as sf

        self.path = Path(path)
        self.rate = int(rate)
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.samples = 0
        try:
            self._sf: Any = sf.SoundFile(str(self.path), "w", samplerate=self.rate, channels=1, subtype="PCM_16",
                                         format="WAV")
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(f"{self.path.name}: cannot create WAV file ({one_line(exc)})") from None

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


class NullSink(BaseSink):
    """Discards audio, counting it (``samples``, ``frames``)."""

    def __init__(self, *, rate: int = TARGET_RATE) -> None:
        self.rate = int(rate)
        self.samples = 0
        self.frames = 0

    def write(self, pcm: Any) -> None:
        x = as_int16(pcm)
        self.samples += len(x)
        self.frames += 1


class TeeSink(BaseSink):
    """Writes every frame to each of ``sinks`` (e.g. a speaker and a recorder).

    Args:
        sinks: the sinks; those with a ``rate`` attribute must agree on it.
        rate: the tee's rate; by default the rate its sinks share (:data:`~pyvoip_fast.audio.base.TARGET_RATE`
            when none says).

    Raises:
        ValueError: sinks at different rates, or a ``rate`` that differs from theirs.
    """

    def __init__(self, *sinks: Any, rate: Optional[int] = None) -> None:
        self.sinks = list(sinks)
        rates = sorted({int(s.rate) for s in self.sinks if getattr(s, "rate", None) is not None})
        if rate is not None:
            rates = sorted(set(rates) | {int(rate)})
        if len(rates) > 1:
            raise ValueError(f"TeeSink sinks must share one rate, got {', '.join(f'{r} Hz' for r in rates)}")
        self.rate = rates[0] if rates else TARGET_RATE

    def write(self, pcm: Any) -> None:
        x = as_int16(pcm)
        for s in self.sinks:
            s.write(x)

    def close(self) -> None:
        errors: List[BaseException] = []
        for s in self.sinks:
            try:
                s.close()
            except Exception as exc:  # close all, then report the first failure
                errors.append(exc)
        if errors:
            raise errors[0]
