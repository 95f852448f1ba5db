"""Helpers for the tests (import as ``from helpers import ...``; pytest puts tests/ on sys.path).

- ``skip_or_fail(reason)``: a skip on a laptop, a failure under ``CI=true`` (where a skipped test proves nothing).
- ``require_tool(name)``: that, when an external program is missing.
- ``require_pyaudio()``: that, when PyAudio cannot be imported.
- ``require_ipv6()``: that, when the IPv6 loopback ::1 cannot be bound; ``ipv6_available()`` tells without acting.
- ``require_timerfd()``: that, when the loaded ``_udp`` has no timerfd (not Linux, or the twin before Python 3.13).
- ``alsa_subprocess_env(conf)``, ``NO_DEVICE_ALSA_CONF``: for PortAudio/ALSA tests in a child process.
- ``load(name)``: bytes of ``tests/data/<name>``.
- ``stop_process(proc)``: terminate a process the test started, kill it if it lingers.
- ``free_udp_port(host)``: a UDP port nobody uses on ``host`` right now (for a server a test starts).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

#: the repository root, the test data folder and the bundled sample
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
#: the bundled sample, from the package as installed (the source tree, or a wheel under test)
SAMPLE = Path(importlib.util.find_spec("pyvoip_fast").origin or "").parent / "data" / "sample.wav"  # type: ignore[union-attr]
#: our CI (.ci/run on Linux): a missing tool fails the test. A wheel's test run on another platform
#: (PYVOIP_FAST_WHEEL_TEST, set by the cibuildwheel configuration) skips what that platform lacks instead
IN_CI = (os.environ.get("CI", "").lower() in ("1", "true", "yes")
         and not os.environ.get("PYVOIP_FAST_WHEEL_TEST"))


def skip_or_fail(reason: str) -> None:
    """Skip the test on a laptop; fail it under ``CI=true``."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def require_compiled(name: str) -> Any:
    """The compiled module ``name`` (as ``pyvoip_fast._compat`` names them, e.g. ``"_jitter"``): a skip when the
    extensions are switched off on purpose (PYVOIP_FAST_NO_EXTENSIONS), else, when it failed to build, a skip on a
    laptop and a failure under CI=true."""
    from pyvoip_fast import _compat

    if _compat.NO_EXTENSIONS:
        pytest.skip("the compiled modules are switched off (PYVOIP_FAST_NO_EXTENSIONS)")
    if name in _compat.MISSING_EXTENSIONS:
        skip_or_fail(f"the compiled module {name} is not built")
    return _compat.module_for(name, "cython")


def require_tool(name: str) -> str:
    """Path of an external program; skip on a laptop without it, fail in CI."""
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} not installed")
    assert path is not None
    return path


def require_pyaudio() -> None:
    """Skip on a laptop without PyAudio, fail in CI."""
    if importlib.util.find_spec("pyaudio") is None:
        skip_or_fail("PyAudio not installed")


def ipv6_available() -> bool:
    """True when a UDP socket can bind ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def require_ipv6() -> None:
    """Skip on a laptop without an IPv6 loopback, fail in CI."""
    if not ipv6_available():
        skip_or_fail("no IPv6 loopback (::1)")


def require_timerfd() -> None:
    """Skip on a laptop where the media clock cannot have a timerfd, fail in CI."""
    from pyvoip_fast.media import clock as media

    if not sys.platform.startswith("linux"):
        skip_or_fail("timerfd is Linux-only")
    try:
        os.close(media._udp.timer_open())
    except OSError:
        skip_or_fail("no timerfd in this build (the pure-Python twin needs Python 3.13)")


#: an ALSA configuration whose default PCM cannot be opened (no card 7). A configuration with no PCM at all trips
#: an assertion inside PortAudio's ALSA device enumeration (it aborts the process), which is not our bug to test.
NO_DEVICE_ALSA_CONF = "pcm.!default { type hw card 7 }\nctl.!default { type hw card 7 }\n"


def alsa_subprocess_env(conf: Path) -> Dict[str, str]:
    """The environment for a child Python that uses ALSA configuration ``conf`` and imports this checkout."""
    env = dict(os.environ)
    env["ALSA_CONFIG_PATH"] = str(conf)
    env["PYTHONPATH"] = str(DATA.parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
    env["JACK_NO_START_SERVER"] = "1"
    return env


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def stop_process(proc: "subprocess.Popen[Any]", grace: float = 10.0) -> None:
    """Terminate a process the test started; kill it when it is still there after ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port free on ``host`` now (the kernel's pick; a child process binds it a moment later)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
