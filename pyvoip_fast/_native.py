"""Keep native libraries' chatter off the user's terminal.

libsndfile's MP3 decoder (mpg123) prints "Note: Illegal Audio-MPEG-Header ..." on non-audio input, and
PortAudio's ALSA/JACK probing prints pages of "ALSA lib ..." lines on a machine without a sound card. Both
write straight to file descriptor 2, below Python's ``sys.stderr``. We report every such failure ourselves as
one clear line, so while those libraries run, descriptor 2 points at ``/dev/null``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_saved = -1


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for the duration (re-entrant; Python's own ``sys.stderr`` is unaffected
    only if it is not fd 2 — so nothing should be logged to stderr inside)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            try:
                sys.stderr.flush()
            except Exception:
                pass
            try:
                _saved = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
            except OSError:
                _saved = -1
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved >= 0:
                os.dup2(_saved, 2)
                os.close(_saved)
                _saved = -1
