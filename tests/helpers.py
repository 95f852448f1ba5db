"""Helpers for the tests (import as ``from helpers import ...``; pytest puts tests/ on sys.path).

- ``require_tool(name)``: a skip when an external tool is missing on a laptop, a failure under ``CI=true``.
- ``load(name)``: bytes of ``tests/data/<name>``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """Path of an external program; skip on a laptop without it, fail in CI."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is required in CI but is not installed")
        pytest.skip(f"{name} not installed")
    return path


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()
