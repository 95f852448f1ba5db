"""pyvoip_fast: a Cython-accelerated SIP/SDP/RTP/RTCP G.711 voice-over-IP stack and command-line peer.

``IMPLEMENTATION`` is ``"cython"`` when the compiled modules are loaded and ``"python"`` when the pure-Python
twins are (``PYVOIP_FAST_NO_EXTENSIONS=1``, no compiler at install time, or a non-CPython interpreter).
"""

from __future__ import annotations

from . import _compat
from .errors import (
    AudioFileError,
    CallError,
    ParseError,
    PyVoipError,
    RtcpParseError,
    RtpParseError,
    SdpParseError,
    SipParseError,
    TransportError,
)

__version__ = "0.1.0"

IMPLEMENTATION: str = _compat.implementation()

if _compat.MISSING_EXTENSIONS and not _compat.NO_EXTENSIONS:  # built without a compiler, or one module failed
    import logging as _logging

    _logging.getLogger(__name__).warning(
        "pyvoip_fast: compiled modules not available (%s): running on the pure-Python twins, correct but slower. "
        "Reinstall with a C compiler and the Python headers for the compiled build, or set "
        "PYVOIP_FAST_NO_EXTENSIONS=1 to choose the twins without this warning.", ", ".join(_compat.MISSING_EXTENSIONS))

__all__ = [
    "__version__",
    "IMPLEMENTATION",
    "PyVoipError",
    "ParseError",
    "RtpParseError",
    "RtcpParseError",
    "SipParseError",
    "SdpParseError",
    "AudioFileError",
    "CallError",
    "TransportError",
]
