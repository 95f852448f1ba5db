"""Which implementation is in use: the compiled Cython modules or their pure-Python twins.

``PYVOIP_FAST_NO_EXTENSIONS=1`` (at build or import time) or a non-CPython interpreter selects the twins.
Otherwise every module listed in ``EXTENSION_MODULES`` must import; if one does not, the package still works
on the twins, ``IMPLEMENTATION`` says ``"python"`` and ``MISSING_EXTENSIONS`` names what failed (the test
suite fails on that unless extensions were switched off on purpose).
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Dict, List

NO_EXTENSIONS: bool = bool(os.environ.get("PYVOIP_FAST_NO_EXTENSIONS")) or sys.implementation.name != "cpython"

#: compiled module -> the layer (subpackage) it lives in; its twin is ``<module>_py`` beside it. ``setup.py``
#: builds ``ext/<name>.pyx`` into ``pyvoip_fast.<layer>._<name>`` from the same table (``tests`` check they agree).
EXTENSION_MODULES: Dict[str, str] = {
    "_g711": "codecs",
    "_g722": "codecs",
    "_jitter": "media",
    "_playout": "media",
    "_plc": "codecs",
    "_receiver": "media",
    "_sender": "media",
    "_rtp": "rtp",
    "_stats": "rtp",
    "_ticks": "media",
    "_timescale": "codecs",
    "_udp": "net",
}


def _dotted(compiled: str, twin: bool = False) -> str:
    return f"pyvoip_fast.{EXTENSION_MODULES[compiled]}.{compiled}{'_py' if twin else ''}"

MISSING_EXTENSIONS: List[str] = []
#: compiled modules a platform does not build (Windows has no BSD sockets API for ``ext/udp.pyx``, the socket reads
#: of ``ext/receiver.pyx`` and the sends of ``ext/sender.pyx``): their twins are the implementation there, and their
#: absence does not make the package "python"
NOT_BUILT_HERE = ("_udp", "_receiver", "_sender") if sys.platform == "win32" else ()


def load(compiled: str) -> ModuleType:
    """Import ``pyvoip_fast.<layer>.<compiled>`` or, when extensions are off or missing, its twin."""
    if not NO_EXTENSIONS:
        try:
            return importlib.import_module(_dotted(compiled))
        except ImportError:
            if compiled not in MISSING_EXTENSIONS:
                MISSING_EXTENSIONS.append(compiled)
    return importlib.import_module(_dotted(compiled, twin=True))


def implementation() -> str:
    """``"cython"`` when every compiled module is importable, else ``"python"``."""
    if NO_EXTENSIONS:
        return "python"
    for name in EXTENSION_MODULES:
        if name in NOT_BUILT_HERE:
            continue
        try:
            importlib.import_module(_dotted(name))
        except ImportError:
            if name not in MISSING_EXTENSIONS:
                MISSING_EXTENSIONS.append(name)
    return "python" if MISSING_EXTENSIONS else "cython"


def module_for(compiled: str, impl: str) -> ModuleType:
    """The compiled module (``impl="cython"``) or its pure-Python twin (``impl="python"``); for parity tests."""
    return importlib.import_module(_dotted(compiled, twin=impl != "cython"))
