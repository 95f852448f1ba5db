"""``pyvoip_fast.audio_io``: kept for existing imports; the module lives in :mod:`pyvoip_fast.audio.io`."""

from .audio.io import *  # noqa: F401,F403
from .audio.io import __all__  # noqa: F401
