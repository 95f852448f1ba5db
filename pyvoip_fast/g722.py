"""``pyvoip_fast.g722``: the short path; the module lives in :mod:`pyvoip_fast.codecs.g722`."""

from .codecs.g722 import *  # noqa: F401,F403
from .codecs.g722 import __all__  # noqa: F401
