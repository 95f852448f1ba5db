"""The original program's five test cases, automated: real processes of the command-line peer, real UDP on
127.0.0.1, real audio files in every format, the received audio compared with what was sent.

Each peer runs as ``python -m pyvoip_fast ...`` in its own process, exactly as a user would start it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pytest
import soundfile as sf

from helpers import NO_DEVICE_ALSA_CONF, ROOT, SAMPLE

from pyvoip_fast.codecs import g711

pytestmark = pytest.mark.e2e

RATE = 8000


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    # the package as the tests import it (an editable install or the source tree), whatever the cwd
    root = str(ROOT)
    env["PYTHONPATH"] = root + os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else root
    return env


class Peer:
    """One ``pyvoip-fast`` process with its output captured to a file."""

    def __init__(self, args: Sequence[str], log: Path) -> None:
        self.log = log
        self._fh = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pyvoip_fast", *args],
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_env(),
        )

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._fh.flush()

    def output(self) -> str:
        self._fh.flush()
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen in time; output:\n{self.output()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._fh.close()


@pytest.fixture
def peers():
    started: List[Peer] = []

    def start(args: Sequence[str], log: Path) -> Peer:
        p = Peer(args, log)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def speechlike(seconds: float, rate: int = RATE, channels: int = 1, seed: int = 7) -> np.ndarray:
    """A voiced, wandering-pitch signal with syllable-like envelope: float32 in [-1, 1], shape (n, channels)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.8 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) * (0.6 / k) for k in range(1, 12) if k * 160 < min(rate / 2, 3400))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 3.1 * t) ** 2
    sig = voiced * envelope * 0.5 + rng.normal(0, 0.01, n)
    sig = (sig / np.max(np.abs(sig)) * 0.7).astype(np.float32)
    if channels == 1:
        return sig[:, None]
    return np.stack([sig * (0.8 + 0.2 * c) for c in range(channels)], axis=1)


def write_sample(path: Path, seconds: float = 3.0, rate: int = RATE, channels: int = 1,
                 fmt: Optional[str] = None, subtype: Optional[str] = None) -> np.ndarray:
    data = speechlike(seconds, rate, channels)
    sf.write(str(path), data, rate, format=fmt, subtype=subtype)
    return data


def g711_round_trip_snr(pcm: np.ndarray) -> float:
    codes = g711.ulaw_encode(pcm.astype(np.int16))
    back = np.frombuffer(g711.ulaw_decode(codes), dtype=np.int16).astype(np.float64)
    ref = pcm.astype(np.float64)
    return 10 * np.log10(np.sum(ref**2) / max(np.sum((ref - back) ** 2), 1e-9))


def chunk_snrs(sent: np.ndarray, received: np.ndarray, chunk: int = RATE // 4) -> List[float]:
    """SNR of every 250 ms chunk of ``sent`` at its best alignment in ``received``, searched in order.

    A jitter buffer that adapts its delay inserts or drops a frame now and then (it drops silent frames to come
    back to its target delay); one global alignment would call the rest of the call garbage. Chunk by chunk, every
    part of the file must be found, in order, intact. A chunk with such a step inside it is scored by its two
    halves, each at its own alignment (the worse of the two counts).
    """
    s = sent.astype(np.float64)
    r = received.astype(np.float64)

    def best(ref: np.ndarray, lo: int, hi: int) -> Tuple[int, float]:
        window = r[lo:hi]
        if len(window) < len(ref):
            return lo, -99.0
        corr = np.correlate(window, ref, mode="valid")
        energy = np.convolve(window**2, np.ones(len(ref)), mode="valid")
        lag = int(np.argmax(corr / np.sqrt(np.maximum(energy, 1e-9))))
        seg = window[lag : lag + len(ref)]
        return lo + lag, float(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - seg) ** 2), 1e-9)))

    out: List[float] = []
    pos = 0
    for start in range(0, len(s) - chunk + 1, chunk):
        ref = s[start : start + chunk]
        if np.sqrt(np.mean(ref**2)) < 300:  # a pause in the speech: nothing to recognise it by
            continue
        lo, hi = max(0, pos - RATE // 2), max(pos, start) + chunk + RATE  # around the expected place
        at, snr = best(ref, lo, hi)
        if snr < 20.0:
            half = chunk // 2
            _, first = best(ref[:half], lo, hi)
            second_at, second = best(ref[half:], lo, hi)
            if min(first, second) > snr:
                at, snr = second_at - half, min(first, second)
        out.append(snr)
        pos = at + chunk
    return out


def assert_audio_intact(sent: np.ndarray, received: np.ndarray, reference_snr: float) -> None:
    """Every chunk of ``sent`` is in ``received`` in order; nearly all at G.711 round-trip quality."""
    snrs = np.array(chunk_snrs(sent, received))
    assert len(snrs) > 0
    assert np.all(snrs > 6.0), snrs  # every part of the file arrived (a concealed frame still scores > 6 dB)
    assert np.median(snrs) > reference_snr - 1.0, (np.median(snrs), reference_snr, snrs)
    assert np.mean(snrs > reference_snr - 3.0) >= 0.8, snrs


def to_int16_8k_mono(data: np.ndarray, rate: int) -> np.ndarray:
    """What the caller's converter should produce, for reference: the same pipeline done independently."""
    from scipy.signal import resample_poly
    from math import gcd

    mono = data.mean(axis=1) if data.ndim == 2 else data
    if rate != RATE:
        g = gcd(rate, RATE)
        mono = resample_poly(mono.astype(np.float64), RATE // g, rate // g)
    return np.clip(np.round(mono * 32768.0), -32768, 32767).astype(np.int16)


def run_call(peers, tmp_path: Path, audio: Path, caller_port: int, receiver_port: int,
             extra: Sequence[str] = (), name: str = "call") -> Tuple[Peer, Peer, Path]:
    rec = tmp_path / f"{name}-received.wav"
    receiver = peers(["127.0.0.1", str(receiver_port), "127.0.0.1", str(caller_port), "dummy.wav", "receiver",
                      "--no-play", "--record", str(rec), "--stats-json", str(tmp_path / f"{name}-rx.json")],
                     tmp_path / f"{name}-receiver.log")
    receiver.wait_for("[SIP] Listening on")
    caller = peers(["127.0.0.1", str(caller_port), "127.0.0.1", str(receiver_port), str(audio), "caller",
                    "--no-play", "--stats-json", str(tmp_path / f"{name}-tx.json"), *extra],
                   tmp_path / f"{name}-caller.log")
    return caller, receiver, rec


def check_complete_call(caller: Peer, receiver: Peer, rec: Path, sent: np.ndarray, receiver_port: int,
                        timeout: float = 30.0) -> None:
    assert caller.wait(timeout) == 0, caller.output()
    assert receiver.wait(10) == 0, receiver.output()
    out_c, out_r = caller.output(), receiver.output()
    for text in (f"[SIP] Sending INVITE to 127.0.0.1:{receiver_port}", "[SIP] Received 200 OK",
                 "[SIP] Sending ACK", "[RTP] Starting audio stream to", "[SIP] Sending BYE",
                 "[RTCP Report Sent]", "Total Packets", "Average Bitrate: 64.0 kbps"):
        assert text in out_c, f"caller log lacks {text!r}:\n{out_c}"
    for text in ("[SIP] Received INVITE", "[SIP] Sending 200 OK", "[SIP] Received ACK",
                 "[Call] Session established - Ready to receive audio", "[RTCP Report Received]",
                 "Total Packets", "[Call] Remote party ended the session"):
        assert text in out_r, f"receiver log lacks {text!r}:\n{out_r}"
    assert "Traceback" not in out_c + out_r
    received, rate = sf.read(str(rec), dtype="int16")
    assert rate == RATE and received.ndim == 1
    # the whole file arrived: every part of it is in the recording, at G.711's own round-trip quality
    assert_audio_intact(sent, received, g711_round_trip_snr(sent))


@pytest.mark.parametrize("caller_port,receiver_port", [(5060, 5061), (5060, 5070)], ids=["case1-5061", "case2-5070"])
def test_localhost_call_whole_file_received(peers, tmp_path, caller_port, receiver_port):
    """Test cases 1 and 2: a localhost call; the receiver records the whole file, both logs show the SIP flow
    and RTCP statistics."""
    audio = tmp_path / "sample.wav"
    data = write_sample(audio, seconds=3.0, subtype="PCM_16")
    sent = sf.read(str(audio), dtype="int16")[0]
    caller, receiver, rec = run_call(peers, tmp_path, audio, caller_port, receiver_port)
    check_complete_call(caller, receiver, rec, sent, receiver_port)
    del data


FORMATS = [
    ("wav", "WAV", "FLOAT", 44100, 2),
    ("aiff", "AIFF", "PCM_16", 22050, 1),
    ("flac", "FLAC", "PCM_24", 48000, 2),
    ("mp3", "MP3", "MPEG_LAYER_III", 16000, 1),
    ("ogg", "OGG", "VORBIS", 32000, 2),
]


@pytest.mark.parametrize("ext,fmt,subtype,rate,channels", FORMATS, ids=[f[0] for f in FORMATS])
def test_multi_format_caller(peers, tmp_path, ext, fmt, subtype, rate, channels):
    """Test case 3: WAV, AIFF, FLAC, MP3 and OGG at other rates and channel counts are converted (and say so)
    and arrive intact."""
    audio = tmp_path / f"Test_{ext.upper()}.{ext}"
    data = write_sample(audio, seconds=2.0, rate=rate, channels=channels, fmt=fmt, subtype=subtype)
    port_c, port_r = _free_port(), _free_port()
    caller, receiver, rec = run_call(peers, tmp_path, audio, port_c, port_r, name=ext)
    assert caller.wait(30) == 0, caller.output()
    assert receiver.wait(10) == 0, receiver.output()
    out = caller.output()
    assert "[Audio] Converting" in out and "8000 Hz mono int16" in out, out
    received = sf.read(str(rec), dtype="int16")[0]
    expected = to_int16_8k_mono(data, rate)
    if ext in ("mp3", "ogg"):
        # lossy codecs change the waveform (and MP3 adds encoder delay): the audio must still be all there
        snrs = np.array(chunk_snrs(expected, received))
        assert np.median(snrs) > 8.0, snrs
    else:
        assert_audio_intact(expected, received, g711_round_trip_snr(expected) - 0.5)


def test_invalid_audio_file_fails_cleanly(tmp_path):
    """Test case 4a: text renamed .mp3 -> one clear line, non-zero exit, no traceback, no call placed."""
    bad = tmp_path / "invalid.mp3"
    bad.write_text("this is not audio at all\n" * 20)
    port = _free_port()
    proc = subprocess.run([sys.executable, "-m", "pyvoip_fast", "127.0.0.1", str(_free_port()), "127.0.0.1",
                           str(port), str(bad), "caller", "--no-play"],
                          capture_output=True, text=True, timeout=30, env=_env())
    assert proc.returncode == 6, proc
    assert "Traceback" not in proc.stdout + proc.stderr
    err_lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(err_lines) == 1 and "invalid.mp3" in err_lines[0] and "bad audio file" in err_lines[0], proc.stderr
    assert "Sending INVITE" not in proc.stdout


def test_missing_audio_file_fails_cleanly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pyvoip_fast", "127.0.0.1", str(_free_port()), "127.0.0.1",
                           str(_free_port()), str(tmp_path / "nope.wav"), "caller", "--no-play"],
                          capture_output=True, text=True, timeout=30, env=_env())
    assert proc.returncode == 6 and "nope.wav" in proc.stderr and "Traceback" not in proc.stderr


def test_renamed_but_valid_file_is_handled_by_content(peers, tmp_path):
    """Test case 4b: a FLAC file named .mp3 is recognised by its content and streamed."""
    audio = tmp_path / "really_flac.mp3"
    data = write_sample(audio, seconds=3.0, rate=16000, fmt="FLAC", subtype="PCM_16")
    caller, receiver, rec = run_call(peers, tmp_path, audio, _free_port(), _free_port(), name="renamed")
    assert caller.wait(30) == 0, caller.output()
    assert receiver.wait(10) == 0, receiver.output()
    received = sf.read(str(rec), dtype="int16")[0]
    expected = to_int16_8k_mono(data, 16000)
    assert_audio_intact(expected, received, g711_round_trip_snr(expected) - 0.5)


def test_receiver_killed_mid_call(peers, tmp_path):
    """Test case 5: the receiver dies mid-call; the caller notices, says so, and ends without a traceback in
    bounded time."""
    audio = tmp_path / "long.wav"
    write_sample(audio, seconds=30.0, subtype="PCM_16")
    port_c, port_r = _free_port(), _free_port()
    caller, receiver, _ = run_call(peers, tmp_path, audio, port_c, port_r, name="killed")
    caller.wait_for("[RTP] Starting audio stream", timeout=15)
    time.sleep(1.0)
    receiver.proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    status = caller.wait(25)
    elapsed = time.monotonic() - killed_at
    out = caller.output()
    assert status == 5, out
    assert elapsed < 15, elapsed
    assert "network error" in out.lower() and "Traceback" not in out


def test_target_not_listening(tmp_path):
    """Test case 5b: nobody at the target: the INVITE times out (Timer B = 64*T1) with a clear message."""
    port = _free_port()  # nothing listens there
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pyvoip_fast", "127.0.0.1", str(_free_port()), "127.0.0.1",
                           str(port), str(SAMPLE),
                           "caller", "--no-play", "--t1", "0.05"],
                          capture_output=True, text=True, timeout=60, env=_env())
    assert proc.returncode == 4, proc
    assert time.monotonic() - started < 20
    assert "no response" in proc.stderr.lower() and "Traceback" not in proc.stdout + proc.stderr
    assert f"[SIP] Sending INVITE to 127.0.0.1:{port}" in proc.stdout


def test_ctrl_c_hangs_up(peers, tmp_path):
    """Ctrl-C on the caller sends BYE: the receiver sees the remote party end the session."""
    audio = tmp_path / "long.wav"
    write_sample(audio, seconds=30.0, subtype="PCM_16")
    caller, receiver, _ = run_call(peers, tmp_path, audio, _free_port(), _free_port(), name="sigint")
    caller.wait_for("[RTP] Starting audio stream", timeout=15)
    time.sleep(0.5)
    caller.proc.send_signal(signal.SIGINT)
    assert caller.wait(15) == 130, caller.output()
    assert receiver.wait(15) == 0, receiver.output()
    assert "[SIP] Sending BYE" in caller.output()
    assert "[Call] Remote party ended the session" in receiver.output()
    assert "Traceback" not in caller.output() + receiver.output()


@pytest.mark.parametrize("impl", ["cython", "python"])
def test_demo_runs(tmp_path, impl):
    """`pyvoip-fast demo`: a full call on loopback with the bundled sample, recorded and summarised. It runs on an
    ALSA configuration with no sound card, as on a server: the demo says it cannot play and records instead. The
    same call on the pure-Python twins (``PYVOIP_FAST_NO_EXTENSIONS=1``) plays the same audio: every twin of the
    media path, the bases of the session, sender, receiver and concealer included, carries a whole call."""
    rec = tmp_path / "demo.wav"
    stats = tmp_path / "demo.json"
    conf = tmp_path / "asound.conf"
    conf.write_text(NO_DEVICE_ALSA_CONF)
    env = dict(_env(), ALSA_CONFIG_PATH=str(conf), JACK_NO_START_SERVER="1")
    env.pop("PYVOIP_FAST_NO_EXTENSIONS", None)
    if impl == "python":
        env["PYVOIP_FAST_NO_EXTENSIONS"] = "1"
    version = subprocess.run([sys.executable, "-m", "pyvoip_fast", "--version"], capture_output=True, text=True,
                             timeout=60, env=env, cwd=tmp_path)
    assert impl in version.stdout, version.stdout + version.stderr
    proc = subprocess.run([sys.executable, "-m", "pyvoip_fast", "demo", "--record", str(rec),
                           "--stats-json", str(stats)], capture_output=True, text=True, timeout=60, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    warning = [line for line in (out + proc.stderr).splitlines() if line.startswith("[Audio] Not playing: ")]
    assert len(warning) == 1 and warning[0].endswith(f"; the audio is recorded to {rec}"), out + proc.stderr
    for text in ("[SIP] Sending INVITE", "[SIP] Received 200 OK", "[SIP] Sending BYE", "[RTCP Report",
                 "MOS", "[Demo] Receiver statistics"):
        assert text in out, (text, out)
    import json

    d = json.loads(stats.read_text())
    assert d["packets_received"] > 250 and d["packets_lost"] == 0 and d["mos"] > 4.0
    from pyvoip_fast.app.timeline import plotting_available

    if plotting_available():  # with matplotlib the demo draws its call next to the recording, unasked
        assert (tmp_path / "pyvoip-fast-demo.png").read_bytes()[:4] == b"\x89PNG"
    sample = sf.read(str(SAMPLE), dtype="int16")[0]
    assert_audio_intact(sample, sf.read(str(rec), dtype="int16")[0], g711_round_trip_snr(sample))


def test_caller_killed_mid_call_listen_only_receiver(peers, tmp_path):
    """The mirror of test case 5: the caller dies while a listen-only receiver (it sends no RTP, only RTCP)
    is playing; the receiver notices from the silence and the ICMP errors its reports draw, and ends cleanly."""
    audio = tmp_path / "long.wav"
    write_sample(audio, seconds=30.0, subtype="PCM_16")
    caller, receiver, _ = run_call(peers, tmp_path, audio, _free_port(), _free_port(), name="callerkilled")
    receiver.wait_for("[Call] Session established", timeout=15)
    time.sleep(1.0)
    caller.proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    status = receiver.wait(30)
    out = receiver.output()
    assert status == 5, out
    assert time.monotonic() - killed_at < 20
    assert "network error" in out.lower() and "Traceback" not in out
