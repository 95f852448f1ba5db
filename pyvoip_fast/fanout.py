"""``pyvoip_fast.fanout``: kept for existing imports; the module lives in :mod:`pyvoip_fast.media.fanout`."""

from .media.fanout import *  # noqa: F401,F403
from .media.fanout import __all__  # noqa: F401
