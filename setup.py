"""Build script: only declares the Cython extensions (metadata lives in pyproject.toml).

Every ``ext/<name>.pyx`` becomes the compiled module ``pyvoip_fast.<layer>._<name>``, in the layer (subpackage)
that ``LAYER`` names; ``pyvoip_fast/_compat.py`` loads it from there, or its twin ``_<name>_py`` beside it.

Environment switches:
  PYVOIP_FAST_NO_EXTENSIONS=1  pure-Python build (the package then uses its ``_*_py`` twins)
  PYVOIP_FAST_DEBUG_BUILD=1    -O0 -g, line tracing and annotated HTML next to each .pyx
  PYVOIP_FAST_ONLY=g711,rtp    build only these extensions (development convenience)
  PYVOIP_FAST_REQUIRE_EXTENSIONS=1
                               a compiled module that cannot be built is an error (CI and wheel builds set it);
                               without it a missing compiler or a failed build installs the pure-Python twins and
                               says so in one warning, as aiohttp, msgpack and yarl do
"""

import glob
import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE = bool(os.environ.get("PYVOIP_FAST_REQUIRE_EXTENSIONS"))
_HOW = ("the package works without them, on its pure-Python twins (pyvoip_fast.IMPLEMENTATION == 'python'), only "
        "slower. For the compiled build install a C compiler and the Python headers (Debian: apt-get install gcc "
        "python3-dev) and reinstall; PYVOIP_FAST_REQUIRE_EXTENSIONS=1 makes this an error.")


def _warn(what, exc):
    print(f"\n*** pyvoip_fast WARNING: {what} failed ({type(exc).__name__}: {str(exc).strip()[:300]});\n*** {_HOW}\n",
          file=sys.stderr)


#: optimisation flags per compiler family (setuptools' compiler_type): MSVC spells them its own way
_FLAGS = {"msvc": (["/O2"], ["/Od", "/Zi"])}
#: no floating-point contraction (an FMA where the source says a multiply and an add): the compiled modules give the
#: same bits as their pure-Python twins, on every CPU (aarch64 compilers contract by default)
_GCC_LIKE = (["-O3", "-ffp-contract=off"], ["-O0", "-g", "-ffp-contract=off"])


class OptionalBuildExt(build_ext):
    """Build the extensions with flags for the compiler in use; when the compiler is missing or fails, install
    without them (unless REQUIRE)."""

    def build_extensions(self):
        fast, debug = _FLAGS.get(getattr(self.compiler, "compiler_type", ""), _GCC_LIKE)
        for ext in self.extensions:
            ext.extra_compile_args = list(debug if DEBUG else fast) + list(ext.extra_compile_args or [])
        super().build_extensions()

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all (DistutilsPlatformError), or the toolchain broke
            if REQUIRE:
                raise
            _warn("building the compiled extensions", exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # CompileError, LinkError: this module falls back to its twin
            if REQUIRE:
                raise
            _warn(f"building {ext.name}", exc)

NO_EXTENSIONS = bool(os.environ.get("PYVOIP_FAST_NO_EXTENSIONS")) or platform.python_implementation() != "CPython"
DEBUG = bool(os.environ.get("PYVOIP_FAST_DEBUG_BUILD"))
ONLY = [n for n in os.environ.get("PYVOIP_FAST_ONLY", "").split(",") if n]

here = os.path.dirname(os.path.abspath(__file__))

#: ext/<name>.pyx -> the subpackage its compiled module belongs to (the same table as _compat.EXTENSION_MODULES)
LAYER = {"g711": "codecs", "g722": "codecs", "plc": "codecs", "rtp": "rtp", "stats": "rtp", "timescale": "codecs",
         "udp": "net", "jitter": "media", "playout": "media", "receiver": "media",
         "sender": "media", "ticks": "media"}


def extensions():
    from Cython.Build import cythonize
    import numpy

    mods = []
    for src in sorted(glob.glob(os.path.join("ext", "*.pyx"))):
        stem = os.path.splitext(os.path.basename(src))[0]
        if ONLY and stem not in ONLY:
            continue
        if stem in ("udp", "receiver", "sender") and sys.platform == "win32":  # no BSD sockets (_compat.NOT_BUILT_HERE)
            continue
        macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
        if DEBUG:
            macros.append(("CYTHON_TRACE", "1"))
        mods.append(
            Extension(
                f"pyvoip_fast.{LAYER[stem]}._{stem}",
                [src],
                include_dirs=[numpy.get_include(), "ext"],
                define_macros=macros,
            )
        )
    if not mods and not ONLY:
        raise RuntimeError("no Cython sources in ext/ (an sdist made without MANIFEST.in?)")
    directives = {"language_level": "3", "embedsignature": True}
    if DEBUG:
        directives["linetrace"] = True
    return cythonize(mods, include_path=["ext", here], compiler_directives=directives, annotate=DEBUG, quiet=True)


if NO_EXTENSIONS:
    print("*** pyvoip_fast: Pure Python build (PYVOIP_FAST_NO_EXTENSIONS or non-CPython) ***", file=sys.stderr)
    ext_modules = []
else:
    print("*** pyvoip_fast: Accelerated build (Cython extensions) ***", file=sys.stderr)
    try:
        ext_modules = extensions()
    except Exception as exc:  # Cython itself failed: the twins are the package
        if REQUIRE:
            raise
        _warn("generating C from the Cython sources", exc)
        ext_modules = []

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
