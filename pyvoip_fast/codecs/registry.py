"""The codec registry: one place that maps SDP names and payload types to ``Codec`` objects.

``get("PCMU")``, ``get("l16")`` or ``get("L16/16000")`` return a registered codec; ``find(encoding, clock_rate,
channels)`` matches an ``a=rtpmap`` entry (``None`` when we do not carry it); ``by_static_payload_type(0)``
resolves a static type offered without rtpmap (RFC 3551 §6). ``DEFAULT_CODECS`` is what an offer contains when
the caller names none: G.711 only. New codecs call ``register()`` once, at import of their module.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from .base import Codec
from .g711_codec import PCMA, PCMU
from .g722_codec import G722
from .l16 import L16_16K

__all__ = ["register", "get", "find", "by_static_payload_type", "available", "resolve", "DEFAULT_CODECS"]

_BY_KEY: Dict[str, Codec] = {}
_BY_NAME: Dict[str, Codec] = {}
_BY_STATIC_PT: Dict[int, Codec] = {}

#: what an offer carries when no codec list is given (G.722 and L16 ship but are only offered when asked for)
DEFAULT_CODECS: Tuple[str, ...] = ("PCMU", "PCMA")


def register(codec: Codec) -> Codec:
    """Add ``codec``; the first codec registered under a bare name is what ``get(name)`` returns.

    Raises:
        ValueError: another codec already holds its ``NAME/rate`` key or its static payload type.
    """
    if codec.key in _BY_KEY:
        raise ValueError(f"codec {codec.key} is already registered")
    if codec.payload_type is not None and codec.payload_type in _BY_STATIC_PT:
        raise ValueError(f"static payload type {codec.payload_type} already belongs to "
                         f"{_BY_STATIC_PT[codec.payload_type].key}")
    _BY_KEY[codec.key] = codec
    _BY_NAME.setdefault(codec.name, codec)
    if codec.payload_type is not None:
        _BY_STATIC_PT[codec.payload_type] = codec
    return codec


def get(name: str) -> Codec:
    """The codec called ``name`` (``"PCMU"``, case-insensitive) or ``"NAME/rate"`` (``"L16/16000"``).

    Raises:
        ValueError: no such codec; the message lists the available ones.
    """
    key = str(name).strip().upper()
    codec = _BY_KEY.get(key) or _BY_NAME.get(key)
    if codec is None:
        raise ValueError(f"unknown codec {name!r} (available: {', '.join(available())})")
    return codec


def resolve(codecs: Sequence[object]) -> List[Codec]:
    """Codec objects for a preference list of names or ``Codec`` objects, duplicates dropped, order kept.

    Raises:
        ValueError: an unknown name, or an empty list.
    """
    out: List[Codec] = []
    for c in codecs:
        codec = c if isinstance(c, Codec) else get(str(c))
        if codec not in out:
            out.append(codec)
    if not out:
        raise ValueError("at least one codec is required")
    return out


def find(encoding: str, clock_rate: int, channels: int = 1) -> Optional[Codec]:
    """The registered codec an ``a=rtpmap`` entry names, or ``None``."""
    codec = _BY_KEY.get(f"{encoding.upper()}/{clock_rate}" + ("" if channels == 1 else f"/{channels}"))
    return codec


def by_static_payload_type(pt: int) -> Optional[Codec]:
    """The codec of an RFC 3551 static payload type we carry, or ``None``."""
    return _BY_STATIC_PT.get(pt)


def available() -> List[str]:
    """Registered codec names (``NAME/rate`` keys), in registration order."""
    return list(_BY_KEY)


for _codec in (PCMU, PCMA, G722, L16_16K):
    register(_codec)
