"""Audio: PCM in and out of the process.

Owns audio files in any format libsndfile reads, resampled to the rate the negotiated codec needs; tone and
silence sources; the WAV recorder and other sinks; PyAudio/PortAudio microphone and speaker. Sources give
native-endian int16 numpy frames at the ``rate`` they were opened with; sinks take the same.

May import: ``pyvoip_fast.codecs`` and the bottom layer (``errors``, ``_native``).
"""
