"""The documentation: it builds with warnings as errors, and the getting-started page's code runs as printed.

The two snippets of ``docs/getting-started.md`` (a call in ten lines, a listener) are taken from the page and run
as two processes against each other: only their ports and file names are changed, each replacement checked.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import free_udp_port, skip_or_fail, stop_process

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason="the documentation sources are not in this copy")


def test_docs_build_with_warnings_as_errors(tmp_path: Path) -> None:
    for module in ("sphinx", "myst_parser"):
        if importlib.util.find_spec(module) is None:
            skip_or_fail(f"{module} is not installed (pip install -e '.[docs]')")
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS),
                           str(tmp_path / "html")], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cli = (tmp_path / "html" / "cli.html").read_text()
    # the command-line reference really is the parser's help: every command and a few options of each
    for text in ("usage: pyvoip-fast call", "usage: pyvoip-fast listen", "--keep-serving", "--late-offer",
                 "usage: pyvoip-fast demo", "caller,receiver"):
        assert text in cli, text
    api = (tmp_path / "html" / "api" / "app.html").read_text()
    assert "pyvoip_fast.app.phone.Phone" in api and "wait_done" in api


def _snippets() -> list:
    page = (DOCS / "getting-started.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert len(blocks) == 2, "the page has a call and a listener"
    return blocks


def _replace(code: str, old: str, new: str) -> str:
    assert code.count(old) == 1, f"{old!r} is no longer in the snippet: update this test with the page"
    return code.replace(old, new)


def _tone(path: Path, seconds: float, freq: float) -> None:
    t = np.arange(int(8000 * seconds)) / 8000.0
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16), 8000, subtype="PCM_16")


@pytest.mark.timeout(90)
def test_getting_started_snippets_call_each_other(tmp_path: Path) -> None:
    call_code, listen_code = _snippets()
    port = free_udp_port()
    listen_code = _replace(listen_code, 'Phone("127.0.0.1", 5060)', f'Phone("127.0.0.1", {port})')
    call_code = _replace(call_code, '"127.0.0.1:5060"', f'"127.0.0.1:{port}"')
    call_code = _replace(call_code, 'Phone("127.0.0.1", 5062)', f'Phone("127.0.0.1", {free_udp_port()})')
    _tone(tmp_path / "greeting.wav", 2.0, 440.0)
    _tone(tmp_path / "welcome.wav", 3.0, 1000.0)
    (tmp_path / "listener.py").write_text(listen_code)
    (tmp_path / "caller.py").write_text(call_code)
    listener = subprocess.Popen([sys.executable, "listener.py"], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().startswith(f"listening on 127.0.0.1:{port}")
        caller = subprocess.run([sys.executable, "caller.py"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=60, stdin=subprocess.DEVNULL)
        assert caller.returncode == 0, caller.stdout + caller.stderr
        said = re.search(r"^(.+) MOS (\d+\.\d+) (\d+) packets lost$", caller.stdout, flags=re.M)
        assert said is not None, caller.stdout
        assert said.group(1) == "audio finished" and float(said.group(2)) > 4.0 and said.group(3) == "0", said[0]
        deadline = time.monotonic() + 10
        lines = []
        while time.monotonic() < deadline and not any(line.startswith("ended:") for line in lines):
            lines.append(listener.stdout.readline())
        assert any(line.startswith("call from sip:") for line in lines), lines
        assert any(line.startswith("ended:") for line in lines), lines
    finally:
        stop_process(listener)
        if listener.stdout is not None:
            listener.stdout.close()
    heard, rate = sf.read(tmp_path / "heard.wav", dtype="int16")  # the caller heard the listener's prompt
    recorded, _ = sf.read(tmp_path / "caller-1.wav", dtype="int16")  # and the listener recorded the greeting
    for pcm, freq in ((heard, 1000.0), (recorded, 440.0)):
        assert len(pcm) > rate
        spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
        assert abs(np.argmax(spectrum) * rate / len(pcm) - freq) < 10.0
