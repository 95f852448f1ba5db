"""The programs in ``examples/`` run end to end: each is started as its own process (``python examples/X.py
--bind 127.0.0.1:PORT --calls 1``) and called by a second pyvoip_fast peer in the test, which speaks to it,
presses keys and listens to what comes back.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, List, Tuple

import numpy as np
import soundfile as sf

from helpers import ROOT, free_udp_port, stop_process
from mediakit import chunk_match, speech_like
from pyvoip_fast.app.phone import CallEnd, Phone
from pyvoip_fast.app.useragent import TimerConfig

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
EXAMPLES = ROOT / "examples"


class Example:
    """One example program running in its own process, its output collected in a file."""

    def __init__(self, name: str, tmp: Path, *args: str) -> None:
        self.port = free_udp_port()
        self.log_path = tmp / f"{name}.log"
        self._log = open(self.log_path, "w")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, str(EXAMPLES / f"{name}.py"), "--bind",
                                      f"127.0.0.1:{self.port}", "--calls", "1", *args],
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                     cwd=str(tmp))

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    async def ready(self) -> None:
        await self.wait_for_line("[App] Answering on")

    async def dial(self, phone: Phone) -> Any:
        """Call the example from ``phone`` once it answers (the application plays, so no hang-up at a file's end)."""
        await self.ready()
        return await phone.call(("127.0.0.1", self.port), hangup_when_done=False)

    async def wait_for_line(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.proc.poll() is not None:
                raise AssertionError(f"the example exited ({self.proc.returncode}):\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in:\n{self.output}")
            await asyncio.sleep(0.05)

    def finish(self) -> int:
        try:
            return self.proc.wait(10)
        finally:
            stop_process(self.proc)
            self._log.close()


def run(coro: Any, timeout: float = 40.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def tone_energy(frames: List[np.ndarray], rate: int, hz: float) -> float:
    """The share of the signal's energy within 40 Hz of ``hz``."""
    x = np.concatenate(frames).astype(np.float64)
    if not len(x) or not np.any(x):
        return 0.0
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[np.abs(freqs - hz) < 40].sum() / spectrum.sum())


async def take(frames: AsyncIterator[np.ndarray], seconds: float, frame_ms: int = 20) -> List[np.ndarray]:
    out: List[np.ndarray] = []
    async for f in frames:
        out.append(f)
        if len(out) * frame_ms >= seconds * 1000:
            break
    return out


def test_echo_example_sends_back_what_it_hears(tmp_path: Path) -> None:
    pcm = speech_like(1.5, seed=21)
    app = Example("echo", tmp_path)

    async def main() -> np.ndarray:
        async with Phone("127.0.0.1", 0, timers=FAST) as me:
            call = await app.dial(me)
            heard = call.audio_in(max_queue=500)
            assert await call.play(pcm) is True
            await asyncio.sleep(0.5)  # two jitter buffers and the echo's frame
            heard.close()
            got = [f async for f in heard]
            await call.hangup()
            return np.concatenate(got)

    heard = run(main())
    assert app.finish() == 0
    lead = int(np.argmax(np.abs(heard) > 2000))  # the echo starts after the round trip
    assert 0 < lead < 8000 * 0.4, lead
    ok, total = chunk_match(pcm, heard, "PCMU")  # twice through G.711 and still the same speech
    assert total >= 5 and ok >= total - 2, (ok, total)
    assert "[Echo] Call from 127.0.0.1" in app.output and "[App] Call ended" in app.output


def test_ivr_example_menu_barge_in_and_goodbye(tmp_path: Path) -> None:
    app = Example("ivr", tmp_path, "--timeout", "5")

    async def main() -> Tuple[float, float, str]:
        async with Phone("127.0.0.1", 0, timers=FAST) as me:
            call = await app.dial(me)
            frames = call.audio_in(max_queue=500)
            await asyncio.sleep(0.15)  # the welcome chime has started ...
            call.send_dtmf("2")         # ... and a key cuts it (barge-in)
            await app.wait_for_line("[IVR] Option 2: support")
            menu = await take(frames, 1.0)
            call.send_dtmf("9")
            reason = await call.wait_done(timeout=10)
            return tone_energy(menu, 8000, 880.0), tone_energy(menu, 8000, 784.0), reason

    beeps, chime, reason = run(main())
    assert app.finish() == 0
    # what followed the key was option 2's beeps (880 Hz), not the rest of the chime (784 Hz)
    assert beeps > 0.5 and chime < 0.1, (beeps, chime)
    assert reason == CallEnd.REMOTE_HANGUP
    out = app.output
    assert "[IVR] Caller pressed 2" in out and "[IVR] Caller pressed 9" in out and "[IVR] Goodbye" in out


def test_ivr_example_transfers_to_the_operator(tmp_path: Path) -> None:
    """Key 0: the IVR sends REFER; our phone follows it and calls the operator; the IVR's call ends."""

    async def main(op_port: int) -> Tuple[str, Any, str]:
        async with Phone("127.0.0.1", op_port, timers=FAST, user="operator") as operator, \
                Phone("127.0.0.1", 0, timers=FAST) as me:
            app = Example("ivr", tmp_path, "--operator", f"sip:operator@127.0.0.1:{op_port}")
            call = await app.dial(me)
            targets: List[str] = []
            call.on_transfer = lambda target: targets.append(target) is None
            operator_answers = asyncio.create_task(operator.answer())
            await asyncio.sleep(0.2)
            call.send_dtmf("0")
            new_call = await asyncio.wait_for(call.transferred, 10)
            at_operator = await operator_answers
            reason = await call.wait_done(timeout=5)
            assert new_call.sip.remote_addr[1] == op_port and not new_call.ended
            await new_call.hangup()
            await at_operator.wait_done(timeout=5)
            assert app.finish() == 0
            return reason, targets, app.output

    reason, targets, out = run(main(free_udp_port()))
    assert reason == CallEnd.TRANSFERRED and len(targets) == 1 and "operator@127.0.0.1" in targets[0]
    assert "[IVR] Transferring to the operator" in out


def test_voicemail_example_records_until_hash(tmp_path: Path) -> None:
    pcm = speech_like(1.2, seed=22)
    app = Example("voicemail", tmp_path, "--dir", "box", "--silence", "1.0")

    async def main() -> None:
        async with Phone("127.0.0.1", 0, timers=FAST) as me:
            call = await app.dial(me)
            frames = call.audio_in()
            beep = await take(frames, 0.4)
            frames.close()
            assert tone_energy(beep, 8000, 1000.0) > 0.5  # the beep before recording
            await call.play(pcm)
            call.send_dtmf("#")
            await app.wait_for_line("[Voicemail] Saved")
            await call.hangup()

    run(main())
    assert app.finish() == 0
    assert "stopped by # pressed" in app.output
    data, rate = sf.read(tmp_path / "box" / "message-1.wav", dtype="int16")
    assert rate == 16000 and 1.1 <= len(data) / rate <= 2.5, len(data) / rate
    voiced = np.abs(data) > 1500
    assert voiced.mean() > 0.4  # the message holds the speech, not silence


def test_voicemail_example_stops_after_silence(tmp_path: Path) -> None:
    pcm = speech_like(0.8, seed=23)
    app = Example("voicemail", tmp_path, "--dir", "box", "--silence", "0.8")

    async def main() -> str:
        async with Phone("127.0.0.1", 0, timers=FAST) as me:
            call = await app.dial(me)
            await asyncio.sleep(0.4)
            await call.play(pcm)
            await call.play(np.zeros(8000 * 2, dtype=np.int16))  # then two seconds of silence
            await app.wait_for_line("[Voicemail] Saved")
            return await call.wait_done(timeout=5)  # the mailbox says goodbye with a tone and hangs up

    assert run(main()) == CallEnd.REMOTE_HANGUP
    assert app.finish() == 0
    assert "stopped by 0.8 s of silence" in app.output
    data, rate = sf.read(tmp_path / "box" / "message-1.wav", dtype="int16")
    assert 0.7 <= len(data) / rate <= 1.3, len(data) / rate  # the trailing silence is cut


def test_voicebot_example_replies_and_is_interrupted(tmp_path: Path) -> None:
    """The bot answers an utterance with a tone as long as it; talking over a 2 s answer cuts it short."""
    app = Example("voicebot", tmp_path)

    def runs(loud: List[bool]) -> List[int]:
        """Lengths (in frames) of the stretches of loud frames."""
        out, n = [], 0
        for x in loud + [False]:
            if x:
                n += 1
            elif n:
                out.append(n)
                n = 0
        return out

    async def main() -> List[int]:
        async with Phone("127.0.0.1", 0, timers=FAST) as me:
            call = await app.dial(me)
            heard: List[bool] = []

            async def listen() -> None:
                async for f in call.audio_in(max_queue=500):
                    heard.append(int(np.abs(f).max()) > 1000)

            listening = asyncio.create_task(listen())
            await call.play(speech_like(0.6, seed=24))
            await app.wait_for_line("[Bot] Heard 0.")
            await asyncio.sleep(1.2)  # the whole 0.6 s answer
            await call.play(speech_like(2.0, seed=25))
            await app.wait_for_line("[Bot] Heard 2.")
            await asyncio.sleep(0.5)  # half a second into the 2 s answer, the caller talks again
            call.play(speech_like(0.3, seed=26))
            await app.wait_for_line("[Bot] Barge-in")
            await asyncio.sleep(1.5)
            await call.hangup()
            await listening
            return runs(heard)

    answers = [n for n in run(main()) if n >= 3]  # not the odd frame of concealment after a stream stops
    assert app.finish() == 0
    assert len(answers) >= 2, answers
    first, second = answers[0], answers[1]
    assert 25 <= first <= 40, answers       # the whole 0.6 s answer (and the concealment of its end)
    assert 15 <= second <= 60, answers      # the 2 s (100-frame) answer, cut after about half a second
