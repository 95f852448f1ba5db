"""Character classes of the SIP and SDP grammars (RFC 3261 §25.1, RFC 4566 §9) that ``str`` methods get wrong.

``str.isdigit()`` is true for any Unicode digit: ``"¹"`` and ``"²"`` are digits to it, and ``int()`` then fails on
them with a ``ValueError`` instead of the parser's own error. The grammars' DIGIT is ``%x30-39`` only.
"""

from __future__ import annotations

import re

__all__ = ["is_digits", "TOKEN_RE", "CONTROL_RE"]

#: ``token`` (§25.1): methods, header names, transport names, parameter names
TOKEN_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")

#: a control character other than HTAB: not allowed in a SIP header value (§25.1 TEXT-UTF8) nor in an SDP line
#: (RFC 4566 §9 ``text``); one search, not a test per character
CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def is_digits(text: str) -> bool:
    """True when ``text`` is one or more ASCII digits (``DIGIT``: ``0``-``9``), nothing else."""
    return text.isascii() and text.isdigit()
