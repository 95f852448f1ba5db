"""The compiled modules must really be loaded: a silent fallback to the twins would hide a broken build."""

import os

import pyvoip_fast
from pyvoip_fast import _compat


def test_extensions_loaded() -> None:
    if os.environ.get("PYVOIP_FAST_NO_EXTENSIONS"):
        assert pyvoip_fast.IMPLEMENTATION == "python"
        return
    assert _compat.MISSING_EXTENSIONS == []
    assert pyvoip_fast.IMPLEMENTATION == "cython"
