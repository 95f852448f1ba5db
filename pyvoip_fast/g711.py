"""``pyvoip_fast.g711``: kept for existing imports; the module lives in :mod:`pyvoip_fast.codecs.g711`."""

from .codecs.g711 import *  # noqa: F401,F403
from .codecs.g711 import __all__  # noqa: F401
