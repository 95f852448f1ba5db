"""``pyvoip_fast.stats``: kept for existing imports; the module lives in :mod:`pyvoip_fast.rtp.stats`."""

from .rtp.stats import *  # noqa: F401,F403
from .rtp.stats import __all__  # noqa: F401
