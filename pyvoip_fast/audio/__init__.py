"""Audio: PCM in and out of the process.

Owns audio files in any format libsndfile reads, resampled to the rate the negotiated codec needs; tone and
silence sources; resampling of any source to another rate; the WAV recorder and other sinks; PyAudio/PortAudio
microphone and speaker. Sources give native-endian int16 numpy frames at the ``rate`` they were opened with;
sinks take the same. Every source and sink has a ``rate``; they default to :data:`TARGET_RATE` (8 kHz, G.711's)
and take ``rate=`` for other codecs (L16, G.722 at 16 kHz).

Modules (everything public is re-exported here; import from ``pyvoip_fast.audio``):

- :mod:`~pyvoip_fast.audio.base`: the :class:`Source`/:class:`Sink` contract, :data:`TARGET_RATE`, base classes,
  :func:`as_int16`.
- :mod:`~pyvoip_fast.audio.resample`: the streaming polyphase resampler and :func:`resampled`.
- :mod:`~pyvoip_fast.audio.files`: :class:`FileSource`, :func:`open_source`, :func:`load_audio` and the one-line
  errors for bad files.
- :mod:`~pyvoip_fast.audio.clips`: :class:`ClipCache`, :class:`ClipSource` (a short file decoded once, played to
  many calls).
- :mod:`~pyvoip_fast.audio.generators`: :class:`ToneSource`, :class:`SilenceSource`.
- :mod:`~pyvoip_fast.audio.sinks`: :class:`WavRecorder`, :class:`NullSink`, :class:`TeeSink`.
- :mod:`~pyvoip_fast.audio.devices`: :class:`MicrophoneSource`, :class:`PyAudioSink` (PyAudio imported on use).

May import: ``pyvoip_fast.codecs`` and the bottom layer (``errors``, ``_native``).
"""

from .base import TARGET_RATE, Sink, Source, as_int16
from .devices import MicrophoneSource, PyAudioSink
from .clips import ClipCache, ClipSource
from .files import FileSource, load_audio, open_source
from .generators import SilenceSource, ToneSource
from .resample import RatedSource, ResampledSource, resampled
from .sinks import NullSink, TeeSink, WavRecorder

__all__ = [
    "TARGET_RATE",
    "ClipCache",
    "ClipSource",
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
    "RatedSource",
    "ResampledSource",
    "resampled",
]
