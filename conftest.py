"""Fixtures shared by tests/ and benchmarks/.

- ``impl``: parametrised over ``"cython"`` and ``"python"``; ``pyvoip_fast._compat.module_for(name, impl)``
  gives that implementation's module. The ``cython`` parameter is skipped only when extensions were switched
  off on purpose (``PYVOIP_FAST_NO_EXTENSIONS`` or ``--no-extensions``); a compiled module that silently failed
  to load makes ``tests/test_extensions.py`` fail instead.

``tests/`` is put on ``sys.path`` here so the benchmarks share ``tests/helpers.py`` (``skip_or_fail``: a competitor
missing on a laptop is a skip, under ``CI=true`` a failure).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pyvoip_fast import _compat

_TESTS = str(Path(__file__).resolve().parent / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--no-extensions", action="store_true", help="test only the pure-Python twins")


@pytest.fixture(params=["cython", "python"], scope="session")
def impl(request: pytest.FixtureRequest) -> str:
    if request.param == "cython" and (_compat.NO_EXTENSIONS or request.config.getoption("--no-extensions")):
        pytest.skip("extensions switched off")
    return str(request.param)
