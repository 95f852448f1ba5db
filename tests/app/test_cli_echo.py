"""``pyvoip-fast listen --echo``: the classic SIP echo test, run as the real command and called by a real peer.

What a phone sends comes back to it: the phone (a pyvoip_fast ``Phone`` here) plays speech and finds the same
speech in its own ``audio_in()``, a round trip later. With ``--file`` as well the command line is refused.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Tuple

import numpy as np

from helpers import free_udp_port, stop_process
from mediakit import chunk_match, speech_like
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def test_listen_echo_sends_every_caller_back_what_it_says(tmp_path: Path) -> None:
    port = free_udp_port()
    log_path = tmp_path / "echo.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pyvoip_fast", "listen", "--bind", f"127.0.0.1:{port}",
                                 "--echo", "--no-play", "--keep-serving"], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            deadline = time.monotonic() + 10
            while "Listening on" not in log_path.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)

            async def one_call(seed: int) -> Tuple[np.ndarray, np.ndarray]:
                pcm = speech_like(1.2, seed=seed)
                async with Phone("127.0.0.1", 0, timers=FAST) as me:
                    call = await me.call(("127.0.0.1", port), hangup_when_done=False)
                    heard = call.audio_in(max_queue=500)
                    assert await call.play(pcm) is True
                    await asyncio.sleep(0.5)
                    heard.close()
                    got = np.concatenate([f async for f in heard])
                    await call.hangup()
                return pcm, got

            for seed in (31, 32):  # two callers, one after the other: the service keeps serving
                pcm, got = asyncio.run(asyncio.wait_for(one_call(seed), 20))
                lead = int(np.argmax(np.abs(got) > 2000))
                assert 0 < lead < 0.4 * 8000, lead  # the round trip: two jitter buffers and one frame
                ok, total = chunk_match(pcm, got, "PCMU")
                assert total >= 4 and ok >= total - 2, (ok, total)
        finally:
            stop_process(proc)
    out = log_path.read_text()
    assert out.count("[SIP] Sending 200 OK") >= 2 and "Traceback" not in out


def test_echo_with_a_file_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "pyvoip_fast", "listen", "--echo", "--file", "x.wav"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--echo" in result.stderr and "Traceback" not in result.stderr
