"""The portable path of ``ext/udp.pyx`` (what macOS and the BSDs compile: no recvmmsg/sendmmsg, no timerfd), built
here on Linux with ``-DPYVOIP_FAST_PORTABLE`` into a scratch directory, must give the same results and errors as the
Linux build and the pure-Python twin: every test of ``test_udp.py`` runs again with it in the compiled one's place.
Its timers refuse with ENOSYS, which ``media.clock`` takes as "use the event loop's timer".
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest

import test_udp
from helpers import ROOT
from pyvoip_fast import _compat

pytestmark = pytest.mark.cython

_SETUP = """
import numpy, sys
from setuptools import Extension, setup
from Cython.Build import cythonize
src, inc = sys.argv.pop(1), sys.argv.pop(1)  # inc: ext/, for udp_compat.h and the shared _sock.pxd
ext = Extension("_udp", [src], include_dirs=[numpy.get_include(), inc],
                define_macros=[("PYVOIP_FAST_PORTABLE", "1"), ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=["-O1"])
setup(name="udp_portable", ext_modules=cythonize([ext], include_path=[inc], compiler_directives={"language_level": "3"},
                                                 quiet=True))
"""


@pytest.fixture(scope="module")
def portable(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    where = tmp_path_factory.mktemp("udp-portable")
    (where / "setup.py").write_text(_SETUP)
    src = where / "udp.pyx"
    src.write_text((ROOT / "ext" / "udp.pyx").read_text())
    out = subprocess.run([sys.executable, "setup.py", str(src), str(ROOT / "ext"), "-q", "build_ext", "--inplace"],
                         cwd=where, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    built = next(where.glob("_udp*.so"))
    spec = importlib.util.spec_from_file_location("_udp", built)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.PORTABLE is True
    return module


@pytest.fixture
def as_compiled(portable: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = _compat.module_for

    def module_for(name: str, impl: str) -> Any:
        return portable if (name, impl) == ("_udp", "cython") else real(name, impl)

    monkeypatch.setattr(_compat, "module_for", module_for)
    yield


def test_the_linux_build_uses_the_batched_calls() -> None:
    from pyvoip_fast.net import _udp

    assert _udp.PORTABLE is (not sys.platform.startswith("linux"))


@pytest.mark.parametrize("name", [n for n in dir(test_udp) if n.startswith("test_")])
def test_every_udp_test_passes_on_the_portable_build(name: str, as_compiled: None, request: pytest.FixtureRequest,
                                                     portable: ModuleType) -> None:
    func = getattr(test_udp, name)
    marks = getattr(func, "pytestmark", [])
    params = [m for m in marks if m.name == "parametrize"]
    cases: list = [{}]
    for mark in params:
        names = [n.strip() for n in mark.args[0].split(",")]
        cases = [dict(c, **dict(zip(names, v if len(names) > 1 else (v,)))) for c in cases for v in mark.args[1]]
    for case in cases:
        if case.get("family") is not None and case["family"] != 2 and not os.path.exists("/proc/net/if_inet6"):
            continue
        if name == "test_timerfd_expires_at_an_absolute_deadline":
            with pytest.raises(OSError):
                portable.timer_open()  # ENOSYS: the clock falls back to the loop's timer
            continue
        func(impl="cython", **case)
