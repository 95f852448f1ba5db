"""The voice-application audio API on real calls over UDP on 127.0.0.1: ``play``, ``stop_playback``,
``say_silence``, ``audio_in``, ``dtmf()``, ``states()``, and what bad input does.

Two Phones in one event loop call each other; what one side plays is found, sample for sample (to G.711's
round-trip SNR), in what the other side's ``audio_in`` yields.
"""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path
from typing import Any, AsyncIterator, List, Tuple

import numpy as np
import pytest
import soundfile as sf

from helpers import skip_or_fail
from mediakit import chunk_match, playout_events, speech_like, wait_for
from pyvoip_fast.app.call_events import CallState
from pyvoip_fast.app.phone import CallEnd, Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.audio import ClipCache, FileSource, ToneSource
from pyvoip_fast.errors import AudioFileError

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def run(coro: Any, timeout: float = 25.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def phone(**kw: Any) -> Phone:
    kw.setdefault("timers", FAST)
    return Phone("127.0.0.1", 0, **kw)


async def connected(alice: Phone, bob: Phone, **answer_kw: Any) -> Tuple[Any, Any]:
    """Alice calls Bob; both calls, with no file source (the application plays)."""
    answering = asyncio.create_task(bob.answer(**answer_kw))
    a = await alice.call(bob.local_address, hangup_when_done=False)
    b = await answering
    return a, b


async def collect(frames: AsyncIterator[np.ndarray], n: int) -> List[np.ndarray]:
    out: List[np.ndarray] = []
    async for f in frames:
        out.append(f)
        if len(out) >= n:
            break
    return out


def test_play_an_array_and_hear_it_in_audio_in() -> None:
    """What Alice plays reaches Bob's audio_in in order, in 20 ms frames, after the jitter buffer."""
    pcm = speech_like(1.6, seed=11)

    async def main() -> Tuple[np.ndarray, bool, int]:
        async with phone() as alice, phone(user="bob") as bob:
            a, b = await connected(alice, bob)
            frames = b.audio_in(max_queue=200)  # read after the whole playback: room for all of it
            played = await a.play(pcm)
            await asyncio.sleep(0.25)  # the jitter buffer's delay: the tail is still on its way
            frames.close()
            got = [f async for f in frames]
            assert all(len(f) == 160 and f.dtype == np.int16 for f in got)
            await a.hangup()
            return np.concatenate(got), played, b.stats

    heard, played, stats = run(main())
    assert played is True and stats.audio_in_dropped == 0
    ok, total = chunk_match(pcm, heard)
    assert total >= 6 and ok >= total - 1 - playout_events(stats), (ok, total)


def test_audio_in_resamples_to_the_rate_asked_for() -> None:
    """A 1 kHz tone at 8 kHz arrives as 16 kHz and 48 kHz frames of 10 and 30 ms holding a 1 kHz tone."""

    async def main() -> Tuple[List[np.ndarray], List[np.ndarray]]:
        async with phone() as alice, phone(user="bob") as bob:
            a, b = await connected(alice, bob)
            wide, full = b.audio_in(rate=16000, frame_ms=10), b.audio_in(rate=48000, frame_ms=30)
            a.play(ToneSource(1000.0, 0.3, duration=2.0))
            w, f = await asyncio.gather(collect(wide, 60), collect(full, 20))
            await a.hangup()
            return w, f

    wide, full = run(main())
    assert {len(x) for x in wide} == {160} and {len(x) for x in full} == {1440}
    for frames, rate in ((wide[-20:], 16000), (full[-8:], 48000)):
        x = np.concatenate(frames).astype(np.float64)
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        peak_hz = np.argmax(spectrum) * rate / len(x)
        assert abs(peak_hz - 1000.0) < 30, peak_hz
        assert np.sqrt(np.mean(x ** 2)) > 3000


def test_playbacks_queue_in_order_and_barge_in_cuts_within_one_frame() -> None:
    async def main() -> None:
        async with phone() as alice, phone(user="bob") as bob:
            a, b = await connected(alice, bob)
            first = a.play(np.full(1600, 3000, dtype=np.int16))     # 200 ms
            pause = a.say_silence(0.1)
            long = a.play(ToneSource(440.0, 0.3, duration=30.0))     # 30 s unless cut
            queued = a.play(np.zeros(800, dtype=np.int16))
            assert a.playing
            assert await first is True and await pause is True
            await asyncio.sleep(0.3)
            sent_before = a.stats.packets_sent
            assert a.stop_playback() == 2
            assert await long is False and await queued is False
            assert not a.playing
            await asyncio.sleep(0.2)
            # at most the packet of the slot already under way left after the barge-in
            assert a.stats.packets_sent - sent_before <= 1
            # the call goes on: a new playback is heard
            frames = b.audio_in()
            assert await a.play(np.full(2400, 5000, dtype=np.int16)) is True
            got = await collect(frames, 10)
            assert max(int(np.abs(f).max()) for f in got) > 3000
            await a.hangup()

    run(main())


def test_streamed_frames_from_an_async_generator_at_another_rate() -> None:
    """Speech produced while it plays (16 kHz chunks from an async generator) is heard at 8 kHz."""

    async def tts() -> AsyncIterator[np.ndarray]:
        t = np.arange(16000 * 1.0) / 16000
        tone = (8000 * np.sin(2 * np.pi * 600 * t)).astype(np.int16)
        for i in range(0, len(tone), 1600):  # 100 ms chunks, produced faster than real time
            await asyncio.sleep(0.01)
            yield tone[i:i + 1600]

    async def main() -> Tuple[bool, List[np.ndarray], int]:
        async with phone() as alice, phone(user="bob") as bob:
            a, b = await connected(alice, bob)
            frames = b.audio_in()
            done = await a.play(tts(), rate=16000)
            got = await collect(frames, 30)
            player = a._player
            assert player is not None
            await a.hangup()
            return done, got, player.underruns

    done, got, underruns = run(main())
    assert done is True and underruns <= 2
    x = np.concatenate(got[5:30]).astype(np.float64)
    peak_hz = np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x))))) * 8000 / len(x)
    assert abs(peak_hz - 600) < 20, peak_hz


def test_a_slow_consumer_loses_the_oldest_frames_counted() -> None:
    async def main() -> Tuple[int, int, int, Any]:
        async with phone() as alice, phone(user="bob") as bob:
            a, b = await connected(alice, bob)
            slow = b.audio_in(max_queue=10)
            a.play(ToneSource(300.0, 0.3, duration=30.0))
            await asyncio.sleep(1.5)  # ~75 frames arrive, nobody takes them
            pending, dropped = slow.pending(), slow.dropped
            first = await slow.__anext__()
            await a.hangup()
            await b.wait_done()
            return pending, dropped, b.stats.audio_in_dropped, first

    pending, dropped, counted, _ = run(main())
    assert pending == 10 and dropped >= 40 and counted == dropped


def test_a_consumer_that_raises_does_not_break_the_call() -> None:
    async def main() -> Tuple[int, str]:
        async with phone() as alice, phone(user="bob") as bob:
            a, b = await connected(alice, bob)
            a.play(ToneSource(500.0, 0.3, duration=30.0))

            async def buggy() -> None:
                n = 0
                async for _ in b.audio_in():
                    n += 1
                    if n == 3:
                        raise RuntimeError("bug in the application")

            with pytest.raises(RuntimeError):
                await buggy()
            healthy = await collect(b.audio_in(), 20)  # the call still delivers audio
            assert b.state is CallState.ACTIVE and not b.ended
            await a.hangup()
            return len(healthy), await b.wait_done()

    n, reason = run(main())
    assert n == 20 and reason == CallEnd.REMOTE_HANGUP


def test_bad_sources_are_refused_before_anything_is_queued(tmp_path: Any) -> None:
    not_audio = tmp_path / "notes.wav"
    not_audio.write_bytes(b"this is not a sound file")

    async def main() -> None:
        async with phone() as alice, phone(user="bob") as bob:
            a, b = await connected(alice, bob)
            with pytest.raises(ValueError, match="one channel"):
                a.play(np.zeros((100, 2), dtype=np.int16))
            with pytest.raises(ValueError, match="int16 or float"):
                a.play(np.zeros(100, dtype=np.int32))
            with pytest.raises(ValueError, match="NaN"):
                a.play(np.array([0.0, np.nan]))
            with pytest.raises(ValueError, match="unsupported sample rate"):
                a.play(np.zeros(100, dtype=np.int16), rate=12345)
            with pytest.raises(ValueError, match="even"):
                a.play(b"\x00\x01\x02")
            with pytest.raises(TypeError, match="cannot play"):
                a.play(12345)
            with pytest.raises(AudioFileError):
                a.play(not_audio)
            with pytest.raises(ValueError, match="carries its own sample rate"):
                a.play(str(not_audio), rate=8000)
            with pytest.raises(ValueError):
                a.say_silence(-1)
            with pytest.raises(ValueError, match="unsupported sample rate"):
                b.audio_in(rate=12345)
            with pytest.raises(ValueError, match="frame_ms"):
                b.audio_in(frame_ms=3)
            assert not a.playing and a.state is CallState.ACTIVE
            # float audio in [-1, 1] is fine, and the call is untouched by all of the above
            assert await a.play(np.zeros(800, dtype=np.float32)) is True
            await a.hangup()
            with pytest.raises(RuntimeError, match="ended"):
                a.play(np.zeros(10, dtype=np.int16))

    run(main())


def test_dtmf_iterator_gets_digits_sent_before_and_after_it_opened() -> None:
    async def main() -> Tuple[str, str]:
        async with phone() as alice, phone(user="bob") as bob:
            a, b = await connected(alice, bob)
            a.send_dtmf("12")
            assert await wait_for(lambda: b.stats.dtmf_received == "12", 3.0)
            digits = b.dtmf()
            a.send_dtmf("#")
            got = ""
            async for d in digits:
                got += d
                if len(got) == 3:
                    break
            second = b.dtmf()  # a second consumer sees what comes next
            a.send_dtmf("9")
            got2 = await second.__anext__()
            await a.hangup()
            return got, got2

    assert run(main()) == ("12#", "9")


def test_states_and_the_end_side_by_side_in_a_task_group() -> None:
    """dtmf(), states(), audio_in() and wait_done() in one TaskGroup: all finish when the caller hangs up."""

    async def main() -> Tuple[List[str], str, int, str]:
        async with phone() as alice, phone(user="bob") as bob:
            a, b = await connected(alice, bob)
            seen: List[str] = []
            digits = ""
            frames = 0

            async def watch_states() -> None:
                async for s in b.states():
                    seen.append(s.value)

            async def watch_digits() -> None:
                nonlocal digits
                async for d in b.dtmf():
                    digits += d

            async def listen() -> None:
                nonlocal frames
                async for _ in b.audio_in():
                    frames += 1

            async def caller() -> None:
                a.play(ToneSource(700.0, 0.3, duration=1.0))
                await asyncio.sleep(0.5)
                a.send_dtmf("4")
                await asyncio.sleep(0.6)
                await a.hangup()

            async with asyncio.TaskGroup() as tg:
                tg.create_task(watch_states())
                tg.create_task(watch_digits())
                tg.create_task(listen())
                tg.create_task(caller())
                end = tg.create_task(b.wait_done())
            return seen, digits, frames, end.result()

    seen, digits, frames, reason = run(main())
    assert seen == ["active", "ended"] and digits == "4" and frames >= 20 and reason == CallEnd.REMOTE_HANGUP


def _open_descriptors_of(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:  # closed meanwhile (the listing's own descriptor)
            pass
    return count


def test_a_source_made_for_a_call_by_a_factory_is_closed_when_the_call_ends(tmp_path: Path) -> None:
    """``listen --keep-serving`` answers every call from a factory (``ClipCache.opener``); a file too long to
    cache is opened for each call. Its descriptor is closed with the call, not left to the garbage collector
    (a listener's descriptors once piled up while calls came and went), and only the call's own source."""
    if not os.path.isdir("/proc/self/fd"):
        skip_or_fail("no /proc/self/fd to count descriptors on this system")
    path = tmp_path / "long.wav"
    t = np.arange(8000 * 3) / 8000
    sf.write(str(path), np.round(np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), 8000, subtype="PCM_16")
    cache = ClipCache(max_seconds=1.0)  # 3 s: streamed from the file, one descriptor per call
    made: List[Any] = []
    shared = ToneSource(440.0)

    def factory(rate: int) -> Any:
        made.append(cache.source(path, rate))
        return made[-1]

    async def main() -> List[int]:
        open_during: List[int] = []
        gc.disable()  # nothing may be closed by a collection: only by the call
        try:
            async with phone() as alice, phone(user="bob") as bob:
                for _ in range(3):
                    a, b = await connected(alice, bob, source=factory)
                    open_during.append(_open_descriptors_of(path))
                    await a.hangup()
                    await b.wait_done(timeout=5.0)
                    open_during.append(_open_descriptors_of(path))
                a, b = await connected(alice, bob, source=shared)  # a source object: the caller's to close
                await a.hangup()
                await b.wait_done(timeout=5.0)
        finally:
            gc.enable()
        return open_during

    open_during = run(main())
    assert len(made) == 3 and all(isinstance(s, FileSource) for s in made)
    assert open_during == [1, 0, 1, 0, 1, 0]
    assert shared.read(160).shape == (160,)  # not closed by the call that played it
