"""``pyvoip-fast listen --realtime [PRIORITY]``: the listener runs under SCHED_RR, or exits with a one-line error.

The granted case runs the real listener as root and asks the kernel what it runs under (``sched_getscheduler``,
``sched_getparam`` of the process), then has it answer an OPTIONS over a real socket. The refused case runs the
same command without the capability that allows it (``CAP_SYS_NICE`` dropped from the bounding set before the
exec, ``RLIMIT_RTPRIO`` 0): what a user without the rights sees.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyvoip_fast.app import cli
from pyvoip_fast.app.realtime import RealtimeRefused, enter_realtime
from test_cli_adversarial import RawPeer
from test_cli_sipp import Cli, _env, free_udp_port, procs  # noqa: F401 - the fixture is used by name
from tests.helpers import skip_or_fail

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_RR and CAP_SYS_NICE are Linux's")

_PR_CAPBSET_DROP = 24
_CAP_SYS_NICE = 23


@pytest.mark.parametrize("value, message", [("0", "must be 1-99, not 0"), ("100", "must be 1-99, not 100"),
                                            ("ten", "not a whole number: 'ten'")])
def test_the_priority_is_checked_on_the_command_line(value: str, message: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["listen", "--realtime", value]) == cli.EXIT_USAGE
    assert f"argument --realtime: {message}" in capsys.readouterr().err


def test_enter_realtime_refuses_a_priority_out_of_range() -> None:
    with pytest.raises(ValueError, match="1-99, not 0"):
        enter_realtime(0)
    with pytest.raises(ValueError, match="1-99, not 100"):
        enter_realtime(100)


def test_listen_runs_under_sched_rr_and_keeps_serving(procs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        skip_or_fail("granting real-time scheduling needs root here")
    port = free_udp_port()
    listener = procs(Cli(tmp_path, "rt", ["listen", "--bind", f"127.0.0.1:{port}", "--no-play", "--keep-serving",
                                          "--realtime", "7"]))
    listener.wait_for("[SIP] Listening on")
    assert "[Sched] Real-time scheduling: SCHED_RR, priority 7" in listener.stdout
    pid = listener.proc.pid
    assert os.sched_getscheduler(pid) == os.SCHED_RR
    assert os.sched_getparam(pid).sched_priority == 7
    # (the main thread is the event loop's: the media clock and every call run there; a thread numpy's BLAS started
    # at import keeps its ordinary policy, idle)
    peer = RawPeer(port)
    try:
        peer.send(peer.request("OPTIONS", "rt-options"))
        assert peer.final("OPTIONS").startswith("SIP/2.0 200 ")
    finally:
        peer.close()
    listener.proc.send_signal(signal.SIGINT)
    assert listener.wait(15) in (cli.EXIT_OK, cli.EXIT_INTERRUPTED)


def _without_rt_rights() -> None:
    """In the child before the exec: no CAP_SYS_NICE after it (dropped from the bounding set), no RLIMIT_RTPRIO."""
    resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
    if os.geteuid() == 0:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.prctl(_PR_CAPBSET_DROP, _CAP_SYS_NICE, 0, 0, 0) != 0:
            os._exit(99)


def test_a_refused_priority_is_a_one_line_error(tmp_path: Path) -> None:
    port = free_udp_port()
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pyvoip_fast", "listen", "--bind", f"127.0.0.1:{port}", "--no-play",
                           "--keep-serving", "--realtime"], env=_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30, preexec_fn=_without_rt_rights)
    assert done.returncode == cli.EXIT_FAILURE, (done.returncode, done.stderr)
    assert done.stderr.splitlines() == [
        "pyvoip-fast: error: real-time priority 10 refused: run as root, give the process CAP_SYS_NICE, or raise its "
        "RLIMIT_RTPRIO to at least 10 (ulimit -r; now 0)"
    ]
    assert "Listening" not in done.stdout  # it stopped before opening a socket
    assert time.monotonic() - started < 20


def test_enter_realtime_says_what_was_refused() -> None:
    """In a child process (the test process's own policy is left alone), without the rights."""
    code = ("import sys\nfrom pyvoip_fast.app.realtime import RealtimeRefused, enter_realtime\n"
            "try:\n    enter_realtime(3)\nexcept RealtimeRefused as exc:\n    print(exc); sys.exit(0)\nsys.exit(1)\n")
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=30,
                          preexec_fn=_without_rt_rights)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("real-time priority 3 refused: run as root") and "now 0)" in done.stdout
    assert issubclass(RealtimeRefused, Exception)
