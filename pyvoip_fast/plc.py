"""``pyvoip_fast.plc``: kept for existing imports; the module lives in :mod:`pyvoip_fast.codecs.plc`.

Also the public home of :func:`conceal` (:mod:`pyvoip_fast.codecs.plc_offline`): a whole stream concealed offline
with the live receiver's algorithm, optionally with lookahead.
"""

from .codecs.plc import *  # noqa: F401,F403
from .codecs.plc import __all__ as _plc_all
from .codecs.plc_offline import conceal

__all__ = [*_plc_all, "conceal"]
