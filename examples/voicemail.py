"""Voicemail: greet, beep, record until the caller presses # or stops talking, save a WAV file.

    python examples/voicemail.py --bind 127.0.0.1:5080 --dir messages/

Each message is ``messages/message-N.wav`` at 16 kHz (whatever the call's codec). Recording stops at ``#``,
after ``--silence`` seconds without speech (once the caller said something), at ``--max-seconds``, or when the
caller hangs up; the trailing silence is cut.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
from pathlib import Path
from typing import Any, List, Optional, Sequence

import numpy as np

import _common
from pyvoip_fast.audio import ToneSource, WavRecorder

RATE = 16000
FRAME_MS = 20
#: a frame louder than this (RMS) is speech
SPEECH_RMS = 400.0

_numbers = itertools.count(1)


async def handle(call: Any, args: argparse.Namespace) -> None:
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    if args.greeting:
        await call.play(args.greeting)
    await call.play(ToneSource(1000.0, 0.4, duration=0.25, rate=call.rate))  # the beep
    kept: List[np.ndarray] = []
    why = "the caller hung up"
    digits = call.dtmf()
    hash_pressed = asyncio.ensure_future(_until_hash(digits))
    silent_frames = 0
    heard_speech = False
    limit = int(args.max_seconds * 1000 / FRAME_MS)
    async with call.audio_in(rate=RATE, frame_ms=FRAME_MS, max_queue=500) as frames:
        async for frame in frames:
            kept.append(frame)
            loud = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) > SPEECH_RMS
            heard_speech = heard_speech or loud
            silent_frames = 0 if loud else silent_frames + 1
            if hash_pressed.done():
                why = "# pressed"
                break
            if heard_speech and silent_frames * FRAME_MS >= args.silence * 1000:
                why = f"{args.silence:g} s of silence"
                kept = kept[:len(kept) - silent_frames]
                break
            if len(kept) >= limit:
                why = "the time limit"
                break
    hash_pressed.cancel()
    digits.close()
    path = folder / f"message-{next(_numbers)}.wav"
    with WavRecorder(path, rate=RATE) as wav:
        for frame in kept:
            wav.write(frame)
    logging.info("[Voicemail] Saved %s: %.1f s, stopped by %s", path, len(kept) * FRAME_MS / 1000, why)
    if not call.ended:
        await call.play(ToneSource(600.0, 0.3, duration=0.15, rate=call.rate))


async def _until_hash(digits: Any) -> None:
    async for digit in digits:
        if digit == "#":
            return


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--dir", default="messages", help="where messages are saved (default messages/)")
    p.add_argument("--greeting", help="a sound file played before the beep")
    p.add_argument("--silence", type=float, default=2.0, help="seconds of silence that end a message (2)")
    p.add_argument("--max-seconds", type=float, default=60.0, help="longest message (60 s)")
    return _common.serve(handle, p.parse_args(argv))


if __name__ == "__main__":
    _common.run(main)
