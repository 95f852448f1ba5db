#!/usr/bin/env bash
# The compiled modules under AddressSanitizer and UndefinedBehaviorSanitizer (a CI step of .ci/run).
#
# Copies the working tree to a scratch directory, builds the Cython extensions there in place with
#   -fsanitize=address,undefined -fsanitize=float-cast-overflow -fno-sanitize-recover=all
# and runs the tests of the compiled modules (every test there runs on both implementations and compares them)
# and the seeded fuzz tests of the RTP/RTCP parsers against that build, with the sanitizer runtime preloaded
# (the interpreter itself is not instrumented). Any sanitizer report aborts the run: a non-zero exit.
# Usage: bash tests/sanitize/run_sanitized.sh   (CC=clang works too; gcc needs its libasan/libubsan, which
# Debian's gcc brings). Takes about a minute and a half on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
CC=${CC:-gcc}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/pyvoip-sanitized.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

# the tracked files as they are now (not the last commit): what is being tested is what is on disk
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$SCRATCH"
cd "$SCRATCH"
find . -name '*.so' -delete

# the build needs what pyproject.toml's build-system asks for (pip installs it in an isolated environment for
# a normal install, so a fresh virtualenv may not have Cython itself)
python -c "import Cython, numpy, setuptools" 2>/dev/null || python -m pip install -q "Cython>=3.0" "numpy>=1.24" "setuptools>=77"

FLAGS="-fsanitize=address,undefined -fsanitize=float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
echo "== building the extensions with $CC $FLAGS"
CC="$CC" LDSHARED="$CC -shared" CFLAGS="$FLAGS" LDFLAGS="-fsanitize=address,undefined" \
    python setup.py -q build_ext --inplace >build.log 2>&1 || { tail -40 build.log; exit 1; }

RUNTIME=$("$CC" -print-file-name=libasan.so)
case "$RUNTIME" in /*) ;; *) echo "no AddressSanitizer runtime for $CC"; exit 1 ;; esac
export LD_PRELOAD="$RUNTIME"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
python - <<'PY'
import pyvoip_fast, os, sys
from pyvoip_fast import _compat
mods = [_compat.module_for(name, "cython") for name in _compat.EXTENSION_MODULES]
where = os.getcwd()
bad = [m.__file__ for m in mods if not (m.__file__ or "").startswith(where)]
print("sanitized modules:", ", ".join(os.path.relpath(m.__file__, where) for m in mods))
sys.exit(f"not the sanitized build: {bad}" if bad or pyvoip_fast.IMPLEMENTATION != "cython" else 0)
PY
echo "== the compiled modules' tests and the seeded parser fuzz tests under the sanitizers"
python -m pytest -q -p no:cacheprovider tests/codecs tests/rtp tests/net tests/test_extensions.py \
    tests/test_compiled_parity_fuzz.py tests/media/test_jitter.py tests/media/test_jitter_parity.py \
    tests/media/test_jitter_held.py \
    tests/media/test_playout.py tests/media/test_playout_parity.py tests/media/test_playout_fuzz.py \
    tests/media/test_playout_retries.py tests/media/test_playout_lookahead.py tests/media/test_receiver_parity.py \
    tests/media/test_receiver_poll.py tests/media/test_sender_direct.py \
    tests/media/test_rtp_bleed.py tests/media/test_sender_parity.py tests/media/test_dtmf.py
