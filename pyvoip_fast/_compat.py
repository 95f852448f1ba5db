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

#: compiled module -> pure-Python twin (both inside the package)
EXTENSION_MODULES: Dict[str, str] = {
    "_g711": "_g711_py",
    "_rtp": "_rtp_py",
    "_stats": "_stats_py",
    "_udp": "_udp_py",
}

MISSING_EXTENSIONS: List[str] = []


def load(compiled: str) -> ModuleType:
    """Import ``pyvoip_fast.<compiled>`` or, when extensions are off or missing, its twin."""
    twin = EXTENSION_MODULES[compiled]
    if not NO_EXTENSIONS:
        try:
            return importlib.import_module(f"pyvoip_fast.{compiled}")
        except ImportError:
            if compiled not in MISSING_EXTENSIONS:
                MISSING_EXTENSIONS.append(compiled)
    return importlib.import_module(f"pyvoip_fast.{twin}")


def implementation() -> str:
    """``"cython"`` when every compiled module is importable, else ``"python"``."""
    if NO_EXTENSIONS:
        return "python"
    for name in EXTENSION_MODULES:
        try:
            importlib.import_module(f"pyvoip_fast.{name}")
        except ImportError:
            if name not in MISSING_EXTENSIONS:
                MISSING_EXTENSIONS.append(name)
    return "python" if MISSING_EXTENSIONS else "cython"


def module_for(compiled: str, impl: str) -> ModuleType:
    """The compiled module (``impl="cython"``) or its pure-Python twin (``impl="python"``); for parity tests."""
    name = compiled if impl == "cython" else EXTENSION_MODULES[compiled]
    return importlib.import_module(f"pyvoip_fast.{name}")
