"""``pyvoip_fast.audio_io``: kept for existing imports; the API lives in :mod:`pyvoip_fast.audio`."""

from .audio import *  # noqa: F401,F403
from .audio import __all__  # noqa: F401
