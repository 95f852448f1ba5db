"""The parts under the voice-application API, without a call: SIP INFO digit bodies (and garbage in them), the
event fan-out, the streaming resampler (against scipy's ``resample_poly``), the play queue and the echo loop.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction
from typing import Any, List

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from pyvoip_fast.app.call_audio import EchoLoop, PlayQueue, _Resampler
from pyvoip_fast.app.call_events import DtmfInfoError, EventStream, Fanout, parse_dtmf_info


@pytest.mark.parametrize("ctype, body, digit", [
    ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
    ("Application/DTMF-Relay; charset=x", b"Signal= #\nDuration=100", "#"),
    ("application/dtmf-relay", b"Duration=250\r\nSignal=*\r\n", "*"),
    ("application/dtmf-relay", b"Signal=10\r\n", "*"),
    ("application/dtmf-relay", b"Signal=11\r\n", "#"),
    ("application/dtmf-relay", b"signal=a\r\n", "A"),
    ("application/dtmf", b"7", "7"),
    ("application/dtmf", b" 0\r\n", "0"),
])
def test_info_digit_bodies(ctype: str, body: bytes, digit: str) -> None:
    assert parse_dtmf_info(ctype, body) == digit


@pytest.mark.parametrize("ctype", [None, "", "text/plain", "application/sdp", "application/media_control+xml"])
def test_info_that_is_not_dtmf_is_none(ctype: Any) -> None:
    assert parse_dtmf_info(ctype, b"Signal=5") is None


@pytest.mark.parametrize("body, why", [
    (b"Duration=160\r\n", "no Signal"),
    (b"Signal=\r\n", "no Signal"),
    (b"Signal=55\r\n", "not a DTMF digit"),
    (b"Signal=X\r\n", "not a DTMF digit"),
    (b"Signal=\xff\r\n", "not ASCII"),
    (b"Signal=1" + b" " * 2000, "too long"),
])
def test_bad_info_digit_bodies_are_specific_errors(body: bytes, why: str) -> None:
    with pytest.raises(DtmfInfoError, match=why):
        parse_dtmf_info("application/dtmf-relay", body)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["application/dtmf-relay", "application/dtmf", "text/plain"]), st.binary(max_size=300))
def test_info_bodies_never_raise_anything_else(ctype: str, body: bytes) -> None:
    try:
        digit = parse_dtmf_info(ctype, body)
    except DtmfInfoError:
        return
    assert digit is None or digit in "0123456789*#ABCD"


def test_fanout_backlog_goes_to_the_first_stream_and_every_stream_sees_what_follows() -> None:
    async def main() -> List[List[str]]:
        hub: Fanout[str] = Fanout(backlog=2)
        for d in "123":
            hub.publish(d)  # nobody listens: the last two are kept
        first, second = hub.open(), hub.open()
        hub.publish("4")
        hub.close()
        return [[x async for x in first], [x async for x in second], [x async for x in hub.open()]]

    assert asyncio.run(main()) == [["2", "3", "4"], ["4"], []]


def test_fanout_keeps_no_backlog_storage_until_an_item_needs_it() -> None:
    kept: Fanout[str] = Fanout(backlog=2)
    none_kept: Fanout[str] = Fanout()
    assert kept._backlog is None and none_kept._backlog is None  # a call's hubs cost nothing until used
    for hub in (kept, none_kept):
        hub.publish("1")
    assert kept._backlog is not None and list(kept._backlog) == ["1"]
    assert none_kept._backlog is None  # without a backlog nothing is kept for later
    assert list(none_kept.open()._items) == [] and list(kept.open()._items) == ["1"]


def test_fanout_keeps_no_stream_set_until_a_stream_opens_and_a_closed_stream_leaves() -> None:
    async def main() -> List[List[str]]:
        hub: Fanout[str] = Fanout()
        other: Fanout[str] = Fanout()
        assert hub._streams is None and other._streams is None
        hub.publish("lost")  # nobody listens, nothing kept
        a, b = hub.open(), hub.open()
        assert hub._streams == {a, b} and other._streams is None
        assert isinstance(a, EventStream)
        b.close()  # a consumer that stops reading leaves the hub
        hub.publish("x")
        other.close()
        hub.close()
        return [[i async for i in a], [i async for i in b], [i async for i in other.open()]]

    assert asyncio.run(main()) == [["x"], [], []]


def test_fanout_bounds_a_stream_nobody_reads() -> None:
    hub: Fanout[int] = Fanout(limit=10)
    stream = hub.open()
    for i in range(100):
        hub.publish(i)
    assert len(stream._items) == 10


@pytest.mark.parametrize("rates", [(8000, 16000), (8000, 48000), (16000, 8000), (48000, 8000), (16000, 24000),
                                   (24000, 16000), (8000, 32000), (8000, 44100), (22050, 8000)])
def test_streaming_resampler_matches_resample_poly(rates: Any) -> None:
    """Frame by frame (20 ms), the output is resample_poly's one-shot result, delayed by the filter."""
    a, b = rates
    rng = np.random.default_rng(a + b)
    t = np.arange(a) / a
    x = (8000 * np.sin(2 * np.pi * 440 * t) + 1000 * rng.standard_normal(a)).astype(np.int16)
    rs = _Resampler(a, b)
    step = a // 50
    y = np.concatenate([rs.feed(x[i:i + step]) for i in range(0, len(x), step)] + [rs.finish()])
    f = Fraction(b, a)
    ref = resample_poly(x.astype(np.float64), f.numerator, f.denominator)
    if max(f.numerator, f.denominator) > 12:
        # scipy's own streaming resampler: already aligned with the one-shot output
        assert len(y) == len(ref)
        assert np.max(np.abs(y - ref)) <= 1.0
        return
    delay = 10 * max(f.numerator, f.denominator) // f.denominator  # half the filter, in output samples
    assert len(y) >= len(ref) + delay - 1
    err = y[delay:delay + len(ref)].astype(np.float64) - ref
    assert np.max(np.abs(err[50:-50])) <= 1.0  # int16 rounding only


def test_play_queue_reads_in_order_then_nothing() -> None:
    async def main() -> None:
        q = PlayQueue(8000, asyncio.get_running_loop())
        assert len(q.read(160)) == 0 and q.live and not q.eof
        a = q.add_samples(np.full(200, 1, dtype=np.int16), "a")
        b = q.add_samples(np.full(100, 2, dtype=np.int16), "b")
        out = q.read(160)
        assert (out == 1).all() and not a.done.done()
        out = q.read(160)
        assert (out[:40] == 1).all() and (out[40:140] == 2).all() and (out[140:] == 0).all()
        assert a.done.result() is True and b.done.result() is True
        assert len(q.read(160)) == 0
        c = q.add_samples(np.ones(1000, dtype=np.int16), "c")
        assert q.stop() == 1 and c.done.result() is False and len(q.read(160)) == 0
        q.close()
        with pytest.raises(RuntimeError, match="ended"):
            q.add_samples(np.ones(10, dtype=np.int16), "d")

    asyncio.run(main())


def test_play_queue_stream_underrun_is_silence_and_counted() -> None:
    async def main() -> None:
        q = PlayQueue(8000, asyncio.get_running_loop())
        gate = asyncio.Event()

        async def slow() -> Any:
            yield np.full(160, 7, dtype=np.int16)
            await gate.wait()
            yield np.full(160, 8, dtype=np.int16)

        item = q.add_stream(slow(), 8000)
        await asyncio.sleep(0.01)
        assert (q.read(160) == 7).all()
        out = q.read(160)
        assert (out == 0).all() and len(out) == 160 and q.underruns == 1
        gate.set()
        await asyncio.sleep(0.01)
        assert (q.read(160) == 8).all()
        await asyncio.sleep(0.01)
        assert len(q.read(160)) == 0 and item.done.result() is True

    asyncio.run(main())


def test_a_failing_stream_ends_its_playback_not_the_queue() -> None:
    async def main() -> None:
        q = PlayQueue(8000, asyncio.get_running_loop())

        async def broken() -> Any:
            yield np.full(160, 3, dtype=np.int16)
            yield "not audio"

        item = q.add_stream(broken(), 8000)
        after = q.add_samples(np.full(160, 4, dtype=np.int16), "after")
        await asyncio.sleep(0.01)
        assert (q.read(160) == 3).all()
        assert (q.read(160) == 4).all()
        assert item.done.result() is True and after.done.result() is True

    asyncio.run(main())


def test_echo_loop_returns_frames_and_bounds_its_delay() -> None:
    echo = EchoLoop(max_frames=3)
    assert len(echo.read(160)) == 0  # nothing heard: no packet
    for i in range(10):
        echo.write(np.full(160, i, dtype=np.int16))
    got = [int(echo.read(160)[0]) for _ in range(3)]
    assert got == [7, 8, 9] and len(echo.read(160)) == 0
