"""``pyvoip_fast.rtcp``: kept for existing imports; the module lives in :mod:`pyvoip_fast.rtp.rtcp`."""

from .rtp.rtcp import *  # noqa: F401,F403
from .rtp.rtcp import __all__  # noqa: F401
