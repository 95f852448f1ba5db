"""Voice-bot skeleton: your function hears what the caller said and yields what to say back; the caller can
interrupt it (barge-in).

    python examples/voicebot.py --bind 127.0.0.1:5080

``reply(utterance, rate)`` is the part you replace: it receives one utterance (int16 numpy samples at 16 kHz,
what the caller said between two pauses) and is an async generator of frames to say back, streamed while it
produces them (feed speech recognition with ``utterance`` and yield speech synthesis chunks). The skeleton
answers every utterance with a tone as long as the utterance, frame by frame.

Around it: an energy detector cuts ``audio_in()`` into utterances; a reply is queued with ``play()``; when the
caller speaks while the bot talks, ``stop_playback()`` cuts the reply at once and the new utterance is heard.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any, AsyncIterator, List, Optional, Sequence

import numpy as np

import _common

RATE = 16000
FRAME_MS = 20
SPEECH_RMS = 500.0
#: a pause this long ends an utterance
PAUSE_MS = 400


async def reply(utterance: np.ndarray, rate: int) -> AsyncIterator[np.ndarray]:
    """The bot's answer to one utterance: replace this with recognition + your logic + synthesis."""
    seconds = len(utterance) / rate
    frame = rate * FRAME_MS // 1000
    t = np.arange(frame) / rate
    for i in range(int(seconds * 1000 / FRAME_MS)):
        await asyncio.sleep(0)  # a real bot awaits its speech synthesis here
        yield (5000 * np.sin(2 * np.pi * 440 * (t + i * FRAME_MS / 1000))).astype(np.int16)


async def handle(call: Any, args: argparse.Namespace) -> None:
    speech: List[np.ndarray] = []
    quiet = 0
    answering: Optional["asyncio.Future[bool]"] = None
    async with call.audio_in(rate=RATE, frame_ms=FRAME_MS) as frames:
        async for frame in frames:
            loud = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) > SPEECH_RMS
            if loud:
                if answering is not None and not answering.done():
                    call.stop_playback()
                    logging.info("[Bot] Barge-in: the caller interrupted the reply")
                speech.append(frame)
                quiet = 0
            elif speech:
                quiet += 1
                if quiet * FRAME_MS >= PAUSE_MS:
                    utterance = np.concatenate(speech)
                    speech, quiet = [], 0
                    logging.info("[Bot] Heard %.2f s: replying", len(utterance) / RATE)
                    answering = call.play(reply(utterance, RATE), rate=RATE)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _common.parser(__doc__.splitlines()[0]).parse_args(argv)
    return _common.serve(handle, args)


if __name__ == "__main__":
    _common.run(main)
