"""``pyvoip_fast.useragent``: kept for existing imports; the module lives in :mod:`pyvoip_fast.app.useragent`."""

from .app.useragent import *  # noqa: F401,F403
from .app.useragent import __all__  # noqa: F401
