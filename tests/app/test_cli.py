"""Command-line parsing: every bad argument gets a one-line reason and exit status 2, never a traceback;
help and version work through both entry points."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast import __version__
from pyvoip_fast.app import cli


def run_main(capsys, *argv: str):
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_version(capsys):
    status, out, _ = run_main(capsys, "--version")
    assert status == 0 and __version__ in out


def test_top_level_help_mentions_both_forms(capsys):
    status, out, _ = run_main(capsys, "--help")
    assert status == 0
    for word in ("call", "listen", "demo", "bench", "caller|receiver", "exit status"):
        assert word in out


@pytest.mark.parametrize("sub", ["call", "listen", "demo", "bench"])
def test_subcommand_help(capsys, sub):
    status, out, _ = run_main(capsys, sub, "--help")
    assert status == 0 and "usage: pyvoip-fast" in out


def test_no_arguments_prints_help(capsys):
    status, out, _ = run_main(capsys)
    assert status == 0 and "COMMAND" in out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["127.0.0.1", "70000", "127.0.0.1", "5061", "a.wav", "caller"], "port out of range"),
        (["127.0.0.1", "five", "127.0.0.1", "5061", "a.wav", "caller"], "not a port number"),
        (["999.1.1.1", "5060", "127.0.0.1", "5061", "a.wav", "caller"], "not an IP address"),
        (["127.0.0.1", "5060", "127.0.0.1", "5061", "a.wav", "dialer"], "invalid choice"),
        (["127.0.0.1", "5060", "127.0.0.1", "5061", "a.wav"], "required"),
        (["127.0.0.1", "5060", "127.0.0.1", "5061", "a.wav", "caller", "--ptime", "25"], "ptime must be"),
        (["127.0.0.1", "5060", "127.0.0.1", "5061", "a.wav", "caller", "--codec", "opus"], "invalid choice"),
        (["127.0.0.1", "5060", "127.0.0.1", "5061", "a.wav", "caller", "--duration", "-3"], "positive"),
        (["127.0.0.1", "5060", "127.0.0.1", "5061", "a.wav", "caller", "--duration", "nan"], "positive"),
        (["call", "[::1:5060"], "unclosed IPv6 bracket"),
        (["call", "sip:lab@"], "bad SIP URI"),
        (["call", "sip:lab@999.1.1.1:5060"], "bad IPv4 address"),
        (["bench", "--seconds", "x"], "not a number"),
        (["127.0.0.1", "5060", "127.0.0.1", "5061", "a.wav", "caller", "--plc-lookahead", "6"], "must be 0-5"),
        (["127.0.0.1", "5060", "127.0.0.1", "5061", "a.wav", "caller", "--plc-lookahead", "one"],
         "not a whole number"),
    ],
)
def test_bad_arguments(capsys, argv, needle):
    status, out, err = run_main(capsys, *argv)
    assert status == 2
    assert needle in err
    assert "Traceback" not in out + err


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=8))
def test_garbage_command_lines_never_crash(argv):
    """Any argument list either parses or ends with a usage error: no exception escapes main()."""
    # only parse: replace the runners so nothing networked starts
    import contextlib
    import io

    calls = []
    saved = cli._run, cli._run_bench
    cli._run = lambda factory: calls.append(factory) or 0  # type: ignore[assignment]
    cli._run_bench = lambda args: 0  # type: ignore[assignment]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            status = cli.main(argv)
    finally:
        cli._run, cli._run_bench = saved
    assert status in (0, 2)


def test_port_in_use_is_a_clear_error(tmp_path):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 0))
    port = blocker.getsockname()[1]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pyvoip_fast", "127.0.0.1", str(port), "127.0.0.1", "5999", "dummy.wav",
             "receiver", "--no-play"],
            capture_output=True, text=True, timeout=30,
        )
    finally:
        blocker.close()
    assert proc.returncode == 7, proc
    assert str(port) in proc.stderr and "in use" in proc.stderr.lower()
    assert "Traceback" not in proc.stdout + proc.stderr


def test_unbindable_address_is_a_clear_error():
    # 192.0.2.1 (TEST-NET-1) is not an address of this machine: bind fails, no packet is ever sent
    proc = subprocess.run(
        [sys.executable, "-m", "pyvoip_fast", "192.0.2.1", "5060", "127.0.0.1", "5999", "dummy.wav", "receiver",
         "--no-play"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 7, proc
    assert "192.0.2.1" in proc.stderr and "Traceback" not in proc.stdout + proc.stderr


def test_bench_prints_headroom(capsys):
    status = cli.main(["bench", "--seconds", "0.2"])
    out = capsys.readouterr().out
    assert status == 0
    assert "Real-time factor" in out and "ns" in out


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "pyvoip_fast", "--version"], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_summary_of_a_sender_and_of_a_listener():
    """The end-of-call summary: a side that only sent shows no jitter or playout delay of its own, but what the
    peer reported about its stream; a listener shows its jitter, jitter buffer and E-model figures."""
    from pyvoip_fast.media.callstats import CallStatistics

    sender = CallStatistics(codec="PCMU", packets_sent=327, bytes_sent=52_320, rtt_ms=1.04,
                            remote_packets_lost=2, remote_jitter_ms=0.25)
    text = cli._summary(sender, "[Demo] Caller statistics").splitlines()
    assert text[0] == "[Demo] Caller statistics"
    assert "  Total Packets Sent: 327   Total Data Sent: 52,320 bytes   Average Bitrate: 64.0 kbps" in text
    assert "  Jitter:            n/a (nothing received)   RTT: 1.0 ms" in text
    assert "  Peer's reports:    lost 2, jitter 0.2 ms (our stream as the peer received it)" in text
    assert "  Quality (E-model): n/a (no audio received on this side)" in text

    listener = CallStatistics(codec="PCMU", packets_received=327, bytes_received=52_320, jitter_ms=0.14,
                              jitter_buffer_delay_ms=28.0)
    listener.update_quality()
    text = cli._summary(listener).splitlines()
    assert text[0] == "[Call] Statistics"
    assert "  Jitter:            0.1 ms   RTT: n/a   jitter buffer 28 ms" in text
    assert not any(line.startswith("  Peer's reports:") for line in text)
    assert any(line.startswith("  Quality (E-model): R = ") and "MOS = 4." in line for line in text)


@pytest.mark.parametrize(
    "target, request_uri",
    [
        ("sip:lab@127.0.0.1:{port};transport=udp", "sip:lab@127.0.0.1:{port};transport=udp"),
        ("sip:127.0.0.1:{port}", "sip:127.0.0.1:{port}"),
        ("127.0.0.1:{port}", "sip:127.0.0.1:{port}"),
    ],
)
def test_call_dials_the_target_uri_as_written(target, request_uri):
    """A phone that serves users by name needs the user part: the INVITE's Request-URI and To carry the URI."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "pyvoip_fast", "call", target.format(port=port), "--ring-timeout",
                             "1", "--no-play"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        data, _ = sock.recvfrom(65535)
    finally:
        proc.kill()
        proc.wait()
        sock.close()
    lines = data.decode().split("\r\n")
    expected = request_uri.format(port=port)
    assert lines[0] == f"INVITE {expected} SIP/2.0"
    assert f"To: <{expected}>" in lines
