"""SRTP against a real third-party peer: baresip (Debian ``baresip-core``) with ``mediaenc=srtp-mand``.

baresip answers our call with RTP/SAVP and its own SDES key; it plays a 440 Hz sine to us and reports on our
stream in SRTCP. We must hear the sine (decrypting its SRTP) and get its receiver reports (it decrypted ours and
our SRTCP). Keys travel over clear UDP here, so the test allows it explicitly (``srtp_insecure_signalling``).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Tuple

import numpy as np
import pytest

from helpers import require_tool, stop_process
from mediakit import ArraySource, ListSink, run
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig

pytestmark = pytest.mark.interop

DATA = Path(__file__).resolve().parent.parent / "data" / "baresip"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_srtp_call_with_baresip(tmp_path: Path) -> None:
    exe = require_tool("baresip")
    port = _free_port()
    rtp_base = _free_port() & ~1
    conf = tmp_path / "baresip"
    conf.mkdir()
    (conf / "config").write_text((DATA / "config").read_text().replace("@SIP_PORT@", str(port))
                                 .replace("@RTP_PORTS@", f"{rtp_base}-{rtp_base + 20}"))
    shutil.copy(DATA / "accounts", conf / "accounts")
    log = open(tmp_path / "baresip.log", "w")
    proc = subprocess.Popen([exe, "-f", str(conf)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 10
        while "baresip is ready" not in (tmp_path / "baresip.log").read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "baresip.log").read_text()
            time.sleep(0.05)

        async def main() -> Tuple[Any, np.ndarray]:
            async with Phone("127.0.0.1", 0, timers=TimerConfig(t1=0.1), srtp="required",
                             srtp_insecure_signalling=True, media_options={"rtcp_interval": 1.0}) as phone:
                heard = ListSink()
                tone = np.round(np.sin(2 * np.pi * 1000 * np.arange(8000 * 10) / 8000) * 8000).astype(np.int16)
                call = await phone.call(f"sip:bob@127.0.0.1:{port}", source=ArraySource(tone), sink=heard,
                                        hangup_when_done=False)
                assert call.params.srtp is not None
                await asyncio.sleep(7.0)  # baresip reports every ~5 s
                stats = call.stats
                await call.hangup()
                return stats, heard.pcm

        stats, pcm = run(main())
    finally:
        stop_process(proc)
    text = (tmp_path / "baresip.log").read_text()
    assert "SRTP is Enabled" in text, text[-2000:]
    assert stats.packets_received > 250, stats
    segment = pcm[8000:16000].astype(np.float64)
    peak = np.fft.rfftfreq(len(segment), 1 / 8000)[int(np.argmax(np.abs(np.fft.rfft(segment * np.hanning(8000)))))]
    assert abs(peak - 440.0) < 5, peak  # baresip's sine, decrypted
    # baresip's SRTCP receiver reports about our SRTP stream: it decrypted what we sent
    assert stats.rtcp_received >= 1 and stats.remote_packets_lost is not None, stats
