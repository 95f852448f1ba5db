"""Pictures of a call (``--plot FILE.png``): the timeline samples a call's statistics, the plot draws them."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import skip_or_fail
from pyvoip_fast.app import cli
from pyvoip_fast.app.timeline import CallTimeline, plot_call, plotting_available


def _png_size(path: Path) -> tuple:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(autouse=True)
def _matplotlib() -> None:
    if not plotting_available():
        skip_or_fail("matplotlib is not installed (pip install -e '.[test]')")


def test_a_timeline_follows_the_statistics_and_draws_four_panels(tmp_path: Path) -> None:
    timeline = CallTimeline(every=0.1)
    for i in range(50):  # a call that loses 5 packets at 2 s and whose buffer stretches twice, then compresses once
        lost = 5 if i >= 20 else 0
        stats = SimpleNamespace(packets_lost=lost, frames_concealed=lost, jitter_ms=1.0 + i / 10,
                                jitter_buffer_delay_ms=40.0 + (20 if 22 <= i < 40 else 0), jitter_buffer_target_ms=45.0,
                                frames_stretched=0 if i < 21 else 2, frames_shrunk=0 if i < 40 else 1,
                                mos=4.4 if i < 20 else 4.1, packets_received=i * 5, codec="PCMU")
        timeline.sample(100.0 + i * 0.1, stats)
    assert len(timeline) == 50 and timeline.t[0] == 0.0 and timeline.t[-1] == pytest.approx(4.9)
    assert timeline.series["packets_lost"][19:21] == [0.0, 5.0] and timeline.codec == "PCMU"
    out = tmp_path / "call.png"
    plot_call(timeline, str(out), title="a test call")
    assert _png_size(out) == (720, 720)


def test_the_demo_draws_its_call(tmp_path: Path) -> None:
    out = tmp_path / "demo.png"
    proc = subprocess.run([sys.executable, "-m", "pyvoip_fast", "demo", "--no-play", "--record", str(tmp_path / "d.wav"),
                           "--plot", str(out), "--duration", "3"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"A picture of the call is in {out}" in proc.stdout
    assert _png_size(out) == (720, 720) and out.stat().st_size > 20_000


def test_plot_without_matplotlib_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(cli, "plotting_available", lambda: False)
    assert cli.main(["demo", "--no-play", "--plot", "x.png"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pyvoip-fast: error: --plot needs matplotlib: pip install 'pyvoip-fast[plot]'"]
