"""Echo test: every caller hears back what it says, through the Python API.

    python examples/echo.py --bind 127.0.0.1:5080

then call it (``pyvoip-fast call 127.0.0.1:5080``, a softphone, sipp). Each frame ``audio_in()`` yields is
queued with ``play()`` at once, so the echo comes back one frame after the jitter buffer played it. (The
command line has the same service built in: ``pyvoip-fast listen --echo``.)
"""

from __future__ import annotations

import argparse
import logging
from typing import Any, Optional, Sequence

import _common


async def handle(call: Any, args: argparse.Namespace) -> None:
    logging.info("[Echo] Call from %s: echoing", call.sip.remote_addr[0])
    async with call.audio_in() as frames:
        async for frame in frames:
            call.play(frame)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _common.parser(__doc__.splitlines()[0]).parse_args(argv)
    return _common.serve(handle, args)


if __name__ == "__main__":
    _common.run(main)
