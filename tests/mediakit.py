"""Shared helpers for the media tests: in-memory audio sources/sinks, test signals, alignment and SNR."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, List, Optional, Tuple

import numpy as np
from scipy import signal

from pyvoip_fast.codecs import g711
from pyvoip_fast.media import MediaSession
from pyvoip_fast.sip.sdp import MediaParams

RATE = 8000


def speech_like(seconds: float, seed: int = 3, amplitude: float = 9000.0) -> np.ndarray:
    """A voiced, speech-like test signal: harmonics of a gliding 110-190 Hz pitch, syllabic 4 Hz envelope."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = 150 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = np.zeros(n)
    for k in range(1, 12):
        x += np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t) ** 2
    x = x * env + 0.02 * rng.standard_normal(n)
    x = x / np.max(np.abs(x)) * amplitude
    return x.astype(np.int16)


def g711_roundtrip(pcm: np.ndarray, law: str = "PCMU") -> np.ndarray:
    """Encode and decode locally: the best a lossless G.711 path can deliver."""
    if law == "PCMU":
        out = g711.ulaw_decode(g711.ulaw_encode(pcm))
    else:
        out = g711.alaw_decode(g711.alaw_encode(pcm))
    return np.frombuffer(out, dtype=np.int16) if not isinstance(out, np.ndarray) else out


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    err = test.astype(np.float64) - ref
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum(err**2), 1e-12)))


def align(sent: np.ndarray, received: np.ndarray) -> int:
    """Lag (samples) at which ``sent`` starts inside ``received``, by cross-correlation."""
    corr = signal.correlate(received.astype(np.float64), sent.astype(np.float64), mode="full", method="fft")
    return int(np.argmax(corr)) - (len(sent) - 1)


def aligned(sent: np.ndarray, received: np.ndarray) -> Tuple[int, np.ndarray, np.ndarray]:
    """Align by cross-correlation; return (lag, sent part, received part) over the overlap.

    A negative lag means the received audio starts inside the sent signal (its first frame(s) never played).
    """
    lag = align(sent, received)
    if lag >= 0:
        got = received[lag : lag + len(sent)]
        return lag, sent[: len(got)], got
    # the receiver's first output samples are the concealer's pre-roll (silence): leave them out
    skip = 64
    got = received[skip : len(sent) + lag]
    return lag, sent[skip - lag : skip - lag + len(got)], got


def chunk_match(sent: np.ndarray, received: np.ndarray, law: str = "PCMU", chunk: int = 1600,
                search: int = 480) -> Tuple[int, int]:
    """Cut the received audio into chunks, place each on the sent signal, and count the chunks whose SNR equals
    the local G.711 round trip of the same samples (within 0.5 dB).

    The whole signal is aligned by cross-correlation first; each chunk is then placed within ``search`` samples
    of that alignment (where it matches the round trip best), so the jitter buffer adapting its delay mid-stream
    (a frame skipped or inserted) shifts one chunk, not everything after it. Chunks reaching past either end of
    the sent signal are not counted. Returns (matching chunks, chunks counted).
    """
    g = align(sent, received)
    rt = g711_roundtrip(sent, law).astype(np.float64)
    ok = total = 0
    start = max(64, g)  # skip the concealer's pre-roll
    while start + chunk <= len(received):
        part = received[start : start + chunk].astype(np.float64)
        p0 = start - g
        start += chunk
        if p0 < 0 or p0 + chunk > len(sent):
            continue
        total += 1
        best, best_err = p0, np.inf
        for p in range(max(0, p0 - search), min(len(sent) - chunk, p0 + search) + 1):
            err = float(np.sum((part - rt[p : p + chunk]) ** 2))
            if err < best_err:
                best, best_err = p, err
        ref = sent[best : best + chunk]
        if abs(snr_db(ref, part) - snr_db(ref, rt[best : best + chunk])) < 0.5:
            ok += 1
    return ok, total


def playout_events(stats: Any, most: int = 3) -> int:
    """How many times a listener's playout adapted (frames concealed, stretched or skipped, packets too late),
    from its call statistics; at most ``most`` of them.

    On a loaded machine (CI, two cores) a stall of the test process makes the jitter buffer stretch its delay even
    on loopback. Each such event may cost one 200 ms chunk of ``chunk_match``; a test allows that many more
    mismatched chunks, so a mismatch the statistics do not account for still fails.
    """
    events = int(stats.frames_concealed + stats.frames_stretched + stats.frames_shrunk + stats.packets_late)
    assert events <= most, (stats.frames_concealed, stats.frames_stretched, stats.frames_shrunk, stats.packets_late)
    return events


class ArraySource:
    """An audio source over an int16 array with the audio_io contract: read(n) gives exactly n samples,
    zero-padded at the end, then empty arrays; ``eof`` is True once the data is exhausted."""

    def __init__(self, pcm: np.ndarray) -> None:
        self.pcm = np.asarray(pcm, dtype=np.int16)
        self.pos = 0
        self.eof = False

    def read(self, n: int) -> np.ndarray:
        if self.pos >= len(self.pcm):
            self.eof = True
            return np.zeros(0, dtype=np.int16)
        chunk = self.pcm[self.pos : self.pos + n]
        self.pos += n
        if len(chunk) < n:
            chunk = np.concatenate([chunk, np.zeros(n - len(chunk), dtype=np.int16)])
        if self.pos >= len(self.pcm):
            self.eof = True
        return chunk


class ListSink:
    """Collects what the listener would hear."""

    def __init__(self) -> None:
        self.frames: List[np.ndarray] = []
        self.closed = False

    def write(self, pcm: np.ndarray) -> None:
        self.frames.append(np.array(pcm, dtype=np.int16, copy=True))

    def close(self) -> None:
        self.closed = True

    @property
    def pcm(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, dtype=np.int16)


def params(
    remote_port: int,
    *,
    host: str = "127.0.0.1",
    encoding: str = "PCMU",
    ptime: int = 20,
    dtmf: Optional[int] = 101,
    direction: str = "sendrecv",
    rtcp_port: Optional[int] = None,
) -> MediaParams:
    return MediaParams(
        payload_type=0 if encoding == "PCMU" else 8,
        encoding=encoding,
        clock_rate=8000,
        ptime=ptime,
        dtmf_payload_type=dtmf,
        remote_rtp=(host, remote_port),
        remote_rtcp=(host, rtcp_port if rtcp_port is not None else remote_port + 1),
        direction=direction,
    )


async def wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if cond():
            return True
        await asyncio.sleep(step)
    return cond()


async def session_pair(**kw: Any) -> Tuple[MediaSession, MediaSession]:
    a = await MediaSession.create("127.0.0.1", **kw)
    b = await MediaSession.create("127.0.0.1", **kw)
    return a, b


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]
