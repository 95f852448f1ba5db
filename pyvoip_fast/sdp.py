"""``pyvoip_fast.sdp``: kept for existing imports; the module lives in :mod:`pyvoip_fast.sip.sdp`."""

from .sip.sdp import *  # noqa: F401,F403
from .sip.sdp import __all__  # noqa: F401
