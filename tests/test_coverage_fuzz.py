"""The coverage-guided fuzzer of the parsers (``tests/fuzz/atheris_parsers.py``), 1,000,000 inputs (``-m slow``).

It needs ``atheris`` (``pip install atheris``): skipped without it on a laptop, a failure under ``CI=true``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import skip_or_fail

pytestmark = pytest.mark.slow

HARNESS = Path(__file__).resolve().parent / "fuzz" / "atheris_parsers.py"


def test_coverage_guided_fuzzing_of_every_parser(tmp_path: Path) -> None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        skip_or_fail("atheris is not installed (pip install atheris)")
    env = dict(os.environ, PYVOIP_FAST_NO_EXTENSIONS="1")
    result = subprocess.run([sys.executable, str(HARNESS), "-atheris_runs=1000000", "-max_len=4096", "-seed=4242",
                             f"-artifact_prefix={tmp_path}/"], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done 1000000" in result.stderr
