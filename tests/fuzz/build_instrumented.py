"""Build the compiled modules with clang's AddressSanitizer and libFuzzer coverage, beside (not over) the real ones.

``python tests/fuzz/build_instrumented.py DEST`` compiles ``ext/*.pyx`` with
``clang -fsanitize=fuzzer-no-link,address`` (atheris' documented way for native extensions) into ``DEST/build``
and assembles ``DEST/pkg``: a copy of the ``pyvoip_fast`` package with the instrumented modules in place of the
usual ones. Put ``DEST/pkg`` first on ``PYTHONPATH`` and preload atheris' ``asan_with_fuzzer.so``, which supplies
the sanitizer runtime and libFuzzer (the modules are linked without them, so no compiler-rt package is needed).
Prints ``DEST/pkg``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLAGS = "-fsanitize=fuzzer-no-link,address -fno-omit-frame-pointer -g"


def build(dest: Path) -> Path:
    """Build into ``dest`` and return the package directory to put on ``PYTHONPATH``.

    Raises:
        RuntimeError: clang is missing or the build failed (with the compiler's last lines).
    """
    clang = shutil.which("clang")
    if clang is None:
        raise RuntimeError("clang is not installed")
    dest.mkdir(parents=True, exist_ok=True)
    lib, temp, pkg = dest / "build" / "lib", dest / "build" / "temp", dest / "pkg"
    env = dict(os.environ, CC=f"{clang} {FLAGS}", LDSHARED=f"{clang} -shared")
    env.pop("PYVOIP_FAST_NO_EXTENSIONS", None)
    env.pop("CFLAGS", None)
    env.pop("LDFLAGS", None)
    done = subprocess.run([sys.executable, "setup.py", "build_ext", "--build-lib", str(lib), "--build-temp",
                           str(temp)], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("the instrumented build failed:\n" + (done.stdout + done.stderr)[-3000:])
    if pkg.exists():
        shutil.rmtree(pkg)
    shutil.copytree(ROOT / "pyvoip_fast", pkg / "pyvoip_fast",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    built = sorted(lib.rglob("*.so"))
    if not built:
        raise RuntimeError("the instrumented build produced no modules")
    for so in built:
        target = pkg / so.relative_to(lib)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(so, target)
    return pkg


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build_instrumented.py DEST")
    try:
        print(build(Path(sys.argv[1]).resolve()))
    except RuntimeError as exc:
        sys.exit(str(exc))
