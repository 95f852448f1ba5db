"""SDES: SRTP keys in SDP (RFC 4568 ``a=crypto``), offered and answered with the audio stream.

- ``crypto_lines(key)`` gives the ``a=crypto`` values we offer: every suite of ``rtp.srtp.SUITES``, in preference
  order, with tags 1, 2 ... and our key.
- ``parse_crypto(value)`` reads one ``a=crypto`` value: tag, suite and the inline key; anything else (session
  parameters, another key method, lifetimes, MKIs) makes the line unusable and it is skipped.
- ``answer_crypto(offered, key)`` picks the first offered line we support and answers it with the same tag and
  suite and our own key (RFC 4568 §6.1: one line in the answer).
- ``srtp_of(local, remote)``: the negotiated suite and the two keys, (suite, our key, their key), or None.

The policy (``off``, ``optional``, ``required``) and the rule that keys only travel over encrypted signalling live
with the caller (``offer_answer.py`` and the application); this module only reads and writes the lines.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from ..rtp.srtp import SUITES, SrtpError, inline, parse_inline
from .abnf import is_digits

__all__ = ["SRTP_POLICIES", "crypto_lines", "parse_crypto", "answer_crypto", "srtp_of", "Crypto"]

#: ``--srtp`` values
SRTP_POLICIES = ("off", "optional", "required")

#: (tag, suite, key)
Crypto = Tuple[int, str, bytes]


def crypto_lines(key: bytes) -> List[str]:
    """The ``a=crypto`` values of an offer: each supported suite, tags from 1, with ``key``."""
    return [f"{tag} {suite} {inline(key)}" for tag, suite in enumerate(SUITES, start=1)]


def parse_crypto(value: str) -> Optional[Crypto]:
    """One ``a=crypto`` value as (tag, suite, key), or None when we cannot use it."""
    parts = value.split()
    if len(parts) != 3 or not is_digits(parts[0]) or len(parts[0]) > 9:
        return None
    suite = parts[1].upper()
    if suite not in SUITES:
        return None
    try:
        key = parse_inline(parts[2])
    except SrtpError:
        return None
    return int(parts[0]), suite, key


def usable(values: Sequence[str]) -> List[Crypto]:
    """The usable ``a=crypto`` lines among ``values``, in order."""
    out = [parse_crypto(v) for v in values]
    return [c for c in out if c is not None]


def answer_crypto(offered: Sequence[str], key: bytes) -> Optional[str]:
    """The ``a=crypto`` value answering the first usable offered line, or None when none is usable."""
    found = usable(offered)
    if not found:
        return None
    tag, suite, _ = found[0]
    return f"{tag} {suite} {inline(key)}"


def srtp_of(local: Sequence[str], remote: Sequence[str]) -> Optional[Tuple[str, bytes, bytes]]:
    """(suite, our key, their key) when both descriptions carry a usable line with the same tag and suite."""
    theirs = usable(remote)
    ours = {(tag, suite): key for tag, suite, key in usable(local)}
    for tag, suite, key in theirs:
        if (tag, suite) in ours:
            return suite, ours[(tag, suite)], key
    return None
