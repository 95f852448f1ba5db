"""IVR menu: a greeting, "press 1 for ..., press 2 for ..., 0 for the operator, 9 to hang up".

    python examples/ivr.py --bind 127.0.0.1:5080 --operator sip:operator@127.0.0.1:5090

Prompts are sound files from ``--prompts DIR`` (``welcome.wav``, ``1.wav``, ``2.wav``, ``goodbye.wav``; any
format libsndfile reads) or, for each one missing, a generated tone pattern: the welcome is a rising chime,
option N is N short beeps. A digit pressed while a prompt plays cuts it (barge-in). ``0`` transfers the caller
to ``--operator`` (blind transfer, REFER); ``#`` repeats the menu; no key for ``--timeout`` seconds repeats it,
three times, then the IVR says goodbye and hangs up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any, List, Optional, Sequence

import numpy as np

import _common
from pyvoip_fast.errors import CallError

MENU = {"1": "sales", "2": "support"}


def _tones(rate: int, freqs: Sequence[float], ms: int = 150, gap_ms: int = 80) -> np.ndarray:
    """A pattern of short tones: what a prompt sounds like when there is no recording for it."""
    parts: List[np.ndarray] = []
    for f in freqs:
        t = np.arange(rate * ms // 1000) / rate
        parts.append((6000 * np.sin(2 * np.pi * f * t)).astype(np.int16))
        parts.append(np.zeros(rate * gap_ms // 1000, dtype=np.int16))
    return np.concatenate(parts)


def prompt(call: Any, args: argparse.Namespace, name: str) -> "asyncio.Future[bool]":
    """Queue the prompt ``name``: its file from ``--prompts``, or its generated tones."""
    if args.prompts and (Path(args.prompts) / f"{name}.wav").exists():
        return call.play(Path(args.prompts) / f"{name}.wav")
    if name == "welcome":
        pcm = _tones(call.rate, (523.0, 659.0, 784.0))
    elif name == "goodbye":
        pcm = _tones(call.rate, (784.0, 523.0), ms=250)
    else:
        pcm = _tones(call.rate, [880.0] * int(name))
    return call.play(pcm)


async def handle(call: Any, args: argparse.Namespace) -> None:
    digits = call.dtmf()
    prompt(call, args, "welcome")
    silences = 0
    while not call.ended:
        try:
            digit = await asyncio.wait_for(digits.__anext__(), args.timeout)
        except asyncio.TimeoutError:
            silences += 1
            if silences >= 3:
                break
            logging.info("[IVR] No key pressed: repeating the menu")
            prompt(call, args, "welcome")
            continue
        except StopAsyncIteration:
            return  # the caller hung up
        silences = 0
        call.stop_playback()  # barge-in: a key cuts the prompt
        logging.info("[IVR] Caller pressed %s", digit)
        if digit in MENU:
            logging.info("[IVR] Option %s: %s", digit, MENU[digit])
            prompt(call, args, digit)
        elif digit == "0" and args.operator:
            logging.info("[IVR] Transferring to the operator %s", args.operator)
            try:
                await call.transfer(args.operator)
                return
            except CallError as exc:
                logging.info("[IVR] Transfer failed (%s): back to the menu", exc)
                prompt(call, args, "welcome")
        elif digit == "9":
            break
        else:
            prompt(call, args, "welcome")
    if not call.ended:
        logging.info("[IVR] Goodbye")
        await prompt(call, args, "goodbye")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--prompts", help="folder with welcome.wav, 1.wav, 2.wav, goodbye.wav (default: tones)")
    p.add_argument("--operator", help="SIP URI that 0 transfers to (default: no operator)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a key (10)")
    return _common.serve(handle, p.parse_args(argv))


if __name__ == "__main__":
    _common.run(main)
