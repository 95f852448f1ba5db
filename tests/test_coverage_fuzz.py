"""The coverage-guided fuzzers (``-m slow``): the parsers' Python code, and the compiled modules built with ASan.

- ``tests/fuzz/atheris_parsers.py``: 1,000,000 inputs to every parser that meets untrusted bytes.
- ``tests/fuzz/atheris_compiled.py``: the Cython extensions rebuilt by ``tests/fuzz/build_instrumented.py`` with
  clang's ``-fsanitize=fuzzer-no-link,address``, run with atheris' ``asan_with_fuzzer.so`` preloaded; 1,000,000
  structured inputs, each checked against the pure-Python twin. The edges covered inside the C code are printed.

They need ``atheris`` (``pip install ".[fuzz]"``) and, for the second, ``clang``: skipped without them on a laptop,
a failure under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import skip_or_fail

pytestmark = pytest.mark.slow

HARNESS = Path(__file__).resolve().parent / "fuzz" / "atheris_parsers.py"
COMPILED_HARNESS = Path(__file__).resolve().parent / "fuzz" / "atheris_compiled.py"
BUILD = Path(__file__).resolve().parent / "fuzz" / "build_instrumented.py"


@pytest.mark.timeout(1000)  # the fuzzer's own limit is 900 s, beyond the suite's 300 s per test
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


@pytest.mark.timeout(2700)  # an instrumented build (up to 600 s) and the fuzzer (up to 1,800 s)
def test_coverage_guided_fuzzing_of_the_compiled_modules_under_asan(tmp_path: Path) -> None:
    try:
        import atheris
    except ImportError:
        skip_or_fail("atheris is not installed (pip install atheris)")
    if shutil.which("clang") is None:
        skip_or_fail("clang is not installed")
    runtime = Path(atheris.path()) / "asan_with_fuzzer.so"
    assert runtime.exists(), f"this atheris has no {runtime.name}"
    built = subprocess.run([sys.executable, str(BUILD), str(tmp_path / "build")], capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "PYVOIP_FAST_NO_EXTENSIONS"}
    env.update(PYTHONPATH=built.stdout.strip(), LD_PRELOAD=str(runtime),
               ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=0")
    runs = int(os.environ.get("PYVOIP_FUZZ_RUNS", "1000000"))
    result = subprocess.run([sys.executable, str(COMPILED_HARNESS), f"-atheris_runs={runs}", "-max_len=2048",
                             "-seed=4242", f"-artifact_prefix={tmp_path}/"], capture_output=True, text=True,
                            env=env, timeout=1800, cwd=tmp_path)
    log = result.stderr
    assert result.returncode == 0, log[-4000:]
    assert f"Done {runs}" in log and "AddressSanitizer" not in log
    assert str(tmp_path / "build" / "pkg") in log  # the instrumented modules were the ones fuzzed
    edges = [int(n) for n in re.findall(r" cov: (\d+)", log)]
    assert edges and edges[-1] > 1000, log[-2000:]  # the C code's edges: instrumentation is live
    print(f"compiled modules: {runs} inputs, {edges[-1]} edges covered")
