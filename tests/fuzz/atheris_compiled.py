"""Coverage-guided fuzzing of the compiled modules, built with clang's ASan and libFuzzer coverage.

Atheris instruments Python bytecode only, so ``atheris_parsers.py`` is blind inside the Cython extensions. This
harness is for a build of them made by ``build_instrumented.py`` (``-fsanitize=fuzzer-no-link,address``): the
edges libFuzzer counts are the C code's own, and AddressSanitizer (preloaded with atheris' ``asan_with_fuzzer.so``)
stops the run at the first out-of-bounds read or write. Run it through ``tests/test_coverage_fuzz.py``
(``-m slow``), or by hand::

    python tests/fuzz/build_instrumented.py /tmp/fz
    ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD=$(python -c "import atheris; print(atheris.path())")/asan_with_fuzzer.so \\
        PYTHONPATH=/tmp/fz/pkg python tests/fuzz/atheris_compiled.py -atheris_runs=200000

Each input is decoded by ``compiled_targets.dispatch`` into structured arguments for one entry point (the RTP and
RTCP parsers and builders, ``pack_into``/``write_packet``, the G.711 functions, G.722 encoder/decoder streams,
the receiver statistics, both batch senders), called on the compiled module and on its pure-Python twin, which
must agree. A disagreement, an unexpected exception, or any sanitizer report is a crash.
"""

from __future__ import annotations

import sys

import atheris

from compiled_targets import COMPILED, COMPILED_AVAILABLE, dispatch  # this script's directory is on sys.path

if not COMPILED_AVAILABLE:
    sys.exit("atheris_compiled.py needs the compiled modules (unset PYVOIP_FAST_NO_EXTENSIONS, build them)")


def one_input(data: bytes) -> None:
    dispatch(atheris.FuzzedDataProvider(data))


if __name__ == "__main__":
    print("fuzzing", ", ".join(sorted(m.__file__ or "?" for m in COMPILED.values())), file=sys.stderr)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
