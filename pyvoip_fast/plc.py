"""``pyvoip_fast.plc``: kept for existing imports; the module lives in :mod:`pyvoip_fast.codecs.plc`."""

from .codecs.plc import *  # noqa: F401,F403
from .codecs.plc import __all__  # noqa: F401
