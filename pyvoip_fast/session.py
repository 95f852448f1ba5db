"""``pyvoip_fast.session``: kept for existing imports; the module lives in :mod:`pyvoip_fast.app.phone`."""

from .app.phone import *  # noqa: F401,F403
from .app.phone import __all__  # noqa: F401
