"""Microphone capture through the real PyAudio/PortAudio/ALSA stack on a machine without a sound card.

An ALSA configuration (``ALSA_CONFIG_PATH``) makes the default PCM a ``plug`` (fixing mono S16_LE at 8 kHz, or
the rate a test asks for) over a ``type file`` plugin over ``type null``. For capture, the ``file`` plugin
overwrites what the slave captured with bytes read from its ``infile`` (alsa-lib >= 1.1.9 does this for mmap
access too, which PortAudio uses), so PortAudio's "default" input delivers exactly the samples we put in that
file. Both plugins are built into libasound2. PortAudio reads the ALSA configuration when it initialises, so
each case runs in a subprocess.

Two ways to feed ``infile``:

- a FIFO written by a thread in real time (160 samples per 20 ms): the pipe is the device clock, so this is a
  realistic microphone and the capture must equal the signal sample for sample, in order. The writer keeps
  writing until the source is closed: PortAudio stops a callback stream by joining its thread, which would
  otherwise wait forever in ``read()`` on an empty pipe (a test artefact; real devices keep delivering).
- a regular file: the ``null`` device has no clock, so capture runs as fast as PortAudio can pull (millions of
  samples per second) and, past the end of the file, ALSA hands back the stale contents of its ring buffer. This
  checks that :class:`~pyvoip_fast.audio.devices.MicrophoneSource` keeps memory bounded, counts what it drops and
  still hands over real audio.

Needs PyAudio: skipped on a laptop without it, a failure under ``CI=true`` (like ``helpers.require_tool``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

from helpers import NO_DEVICE_ALSA_CONF, alsa_subprocess_env, require_pyaudio
from pyvoip_fast.audio import MicrophoneSource

RATE = 8000
MARKER = np.arange(1, 161, dtype=np.int16) * 100


def tone(freq: float, n: int) -> np.ndarray:
    """``n`` samples of a half-scale sine starting at phase 0 (so sample 0 is 0)."""
    return np.rint(0.5 * np.sin(2 * math.pi * freq * np.arange(n) / RATE) * 32767).astype(np.int16)


def alsa_env(tmp_path: Path, infile: Path | None, rate: int = RATE) -> Dict[str, str]:
    conf = tmp_path / "asound.conf"
    if infile is not None:
        conf.write_text(textwrap.dedent(f"""\
            # default capture = raw S16_LE mono at `rate` (8 kHz unless told) read from a file, over a clockless null
            pcm.!default {{
                type plug
                slave {{ pcm "micfile" format S16_LE rate {rate} channels 1 }}
            }}
            pcm.micfile {{
                type file
                slave {{ pcm "null" }}
                file "/dev/null"
                infile "{infile}"
                format "raw"
            }}
            pcm.null {{ type null }}
            """))
    else:
        conf.write_text(NO_DEVICE_ALSA_CONF)
    return alsa_subprocess_env(conf)


def run(script: str, env: Dict[str, str], *args: str) -> Dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


PACED = """
import json, os, sys, threading, time
import numpy as np
from pyvoip_fast.audio import MicrophoneSource

fifo, signal_path, out_path = sys.argv[1:4]
signal = np.fromfile(signal_path, dtype="<i2")
# O_RDWR: never blocks on open and never sees EPIPE while PortAudio probes (opens and closes) the device
fd = os.open(fifo, os.O_RDWR)
stop = threading.Event()

def writer():  # a real-time microphone: 160 samples every 20 ms, then silence until told to stop
    t0, i = time.monotonic(), 0
    while not stop.is_set():
        chunk = signal[i * 160:(i + 1) * 160]
        os.write(fd, np.pad(chunk, (0, 160 - len(chunk))).astype("<i2").tobytes())
        i += 1
        time.sleep(max(0.0, t0 + i * 0.02 - time.monotonic()))

th = threading.Thread(target=writer, daemon=True)
th.start()
mic = MicrophoneSource(max_buffer_seconds=5.0)
shapes = set()
frames = []
start = time.monotonic() + 0.25          # a cushion: the reader never gets ahead of the writer
for k in range(60):                      # 1.2 s, paced like the media clock
    time.sleep(max(0.0, start + k * 0.02 - time.monotonic()))
    f = mic.read(160)
    shapes.add((len(f), str(f.dtype)))
    frames.append(f)
paced_underruns, paced_dropped = mic.underruns, mic.dropped
buffered = mic.buffered
big = mic.read(buffered + 4000)          # more than was captured: padded, one underrun
t = time.monotonic()
mic.close()
close_s = time.monotonic() - t
mic.close()                              # idempotent
try:
    mic.read(160)
    after_close = None
except ValueError as exc:
    after_close = str(exc)
stop.set()
th.join()
os.close(fd)
np.concatenate(frames).astype("<i2").tofile(out_path)
print(json.dumps({"shapes": sorted(shapes), "paced_underruns": paced_underruns, "paced_dropped": paced_dropped,
                  "big_len": len(big), "big_tail_silent": not big[buffered + 1000:].any(),
                  "underruns": mic.underruns, "close_s": close_s, "after_close": after_close}))
"""


def test_microphone_captures_a_real_time_signal_exactly_and_in_order(tmp_path: Path) -> None:
    require_pyaudio()
    fifo = tmp_path / "mic.fifo"
    os.mkfifo(fifo)
    signal = np.concatenate([tone(440.0, RATE), MARKER])  # 1 s of 440 Hz, then a recognisable frame
    signal.astype("<i2").tofile(tmp_path / "signal.raw")
    res = run(PACED, alsa_env(tmp_path, fifo), str(fifo), str(tmp_path / "signal.raw"), str(tmp_path / "got.raw"))

    assert res["shapes"] == [[160, "int16"]]  # every read: exactly 160 int16 samples
    assert res["paced_underruns"] == 0 and res["paced_dropped"] == 0
    got = np.fromfile(tmp_path / "got.raw", dtype="<i2")
    nz = np.flatnonzero(got)
    assert len(nz), "nothing was captured"
    start = nz[0] - 1  # the tone starts with sample 0 == 0; anything before it would be device priming silence
    assert start >= 0 and not got[:start].any()
    body = got[start:]
    assert len(body) >= len(signal) + 160, "the capture did not keep up with the real-time source"
    assert np.array_equal(body[:RATE], signal[:RATE])           # the tone, sample for sample
    assert np.array_equal(body[RATE:RATE + 160], MARKER)        # then the marker, in order
    assert not body[RATE + 160:].any()                          # then the silence the writer sent
    spectrum = np.abs(np.fft.rfft(body[:RATE].astype(np.float64)))
    assert int(np.argmax(spectrum)) == 440                      # 1 Hz bins over 1 s

    # reading more than was captured: exactly n samples, silence-padded, counted
    assert res["big_tail_silent"] and res["underruns"] == 1
    assert float(res["close_s"]) < 1.0
    assert res["after_close"] and "closed" in str(res["after_close"])


FLOOD = """
import json, sys, time
import numpy as np
from pyvoip_fast.audio import MicrophoneSource

mic = MicrophoneSource(max_buffer_seconds=0.01)    # 80 samples: smaller than one 160-sample PortAudio buffer
most = 0
t_end = time.monotonic() + 0.3
while time.monotonic() < t_end:
    most = max(most, mic.buffered)
    time.sleep(0.005)
got = [mic.read(80) for _ in range(5)]
for _ in range(100):                               # let the device refill between reads
    time.sleep(0.002)
    if mic.buffered >= 80:
        break
got.append(mic.read(80))
dropped = mic.dropped
t = time.monotonic()
mic.close()
close_s = time.monotonic() - t
print(json.dumps({"most": most, "dropped": dropped, "close_s": close_s,
                  "frames": [g.tolist() for g in got], "underruns": mic.underruns}))
"""


def test_clockless_device_floods_but_buffer_stays_bounded_and_audio_is_real(tmp_path: Path) -> None:
    require_pyaudio()
    # 500 Hz has a period of exactly 16 samples, so any window of the endless capture (including ALSA's stale
    # ring-buffer contents replayed after the end of the file: the ring holds a multiple of 16 frames) is a
    # piece of this one tone, with some phase.
    period = tone(500.0, 16)
    infile = tmp_path / "tone.raw"
    np.tile(period, RATE // 16).astype("<i2").tofile(infile)
    res = run(FLOOD, alsa_env(tmp_path, infile))

    assert int(res["most"]) <= 80                      # memory bounded, even with chunks larger than the bound
    assert int(res["dropped"]) > 10 * RATE             # the clockless device outran the reader, and it was counted
    assert float(res["close_s"]) < 1.0
    frames = [np.array(f, dtype=np.int16) for f in res["frames"]]
    assert all(len(f) == 80 for f in frames)
    full = frames[0]  # the buffer was full (80) when read: the newest 80 samples of the stream
    assert any(np.array_equal(full, np.tile(period, 6)[k:k + 80]) for k in range(16)), full[:32]
    assert any(len(np.flatnonzero(f)) > 40 for f in frames[1:])  # the device kept delivering after the first read


WIDE = """
import json, sys, time
import numpy as np
import pyaudio
from pyvoip_fast.audio import MicrophoneSource

opened = []
real_open = pyaudio.PyAudio.open
def spy(self, *args, **kwargs):                    # the real PortAudio open, with its arguments noted
    opened.append({k: kwargs[k] for k in ("rate", "frames_per_buffer")})
    return real_open(self, *args, **kwargs)
pyaudio.PyAudio.open = spy

mic = MicrophoneSource(rate=16000, max_buffer_seconds=0.02)   # 320 samples: 20 ms at 16 kHz
for _ in range(500):
    time.sleep(0.002)
    if mic.buffered >= 320:
        break
frame = mic.read(320)
mic.close()
print(json.dumps({"opened": opened, "rate": mic.rate, "frame": frame.tolist()}))
"""


def test_a_16k_microphone_asks_portaudio_for_20_ms_buffers_and_captures_at_16k(tmp_path: Path) -> None:
    require_pyaudio()
    # 1 kHz at 16 kHz has a period of 16 samples: any window of the endless capture is this tone with some phase
    period = np.rint(0.5 * np.sin(2 * math.pi * 1000 * np.arange(16) / 16000) * 32767).astype(np.int16)
    infile = tmp_path / "tone16k.raw"
    np.tile(period, 16000 // 16).astype("<i2").tofile(infile)
    res = run(WIDE, alsa_env(tmp_path, infile, rate=16000))
    assert res["opened"] == [{"rate": 16000, "frames_per_buffer": 320}]
    assert res["rate"] == 16000
    frame = np.array(res["frame"], dtype=np.int16)
    assert any(np.array_equal(frame, np.tile(period, 21)[k:k + 320]) for k in range(16)), frame[:32]


NO_DEVICE = """
import json, time
from pyvoip_fast.audio import MicrophoneSource
from pyvoip_fast.errors import AudioDeviceError
t = time.monotonic()
try:
    MicrophoneSource()
except AudioDeviceError as exc:
    print(json.dumps({"error": str(exc), "s": time.monotonic() - t}))
else:
    print(json.dumps({"error": None, "s": 0}))
"""


def test_no_input_device_is_a_clear_error(tmp_path: Path) -> None:
    require_pyaudio()
    res = run(NO_DEVICE, alsa_env(tmp_path, None))
    assert res["error"] and "no usable audio input device" in str(res["error"])
    assert float(res["s"]) < 10.0


@pytest.mark.parametrize("kwargs", [{"rate": 0}, {"frames_per_buffer": 0}, {"max_buffer_seconds": 0.0},
                                    {"max_buffer_seconds": float("nan")}])
def test_bad_arguments_are_rejected_before_touching_a_device(kwargs: Dict[str, float]) -> None:
    with pytest.raises(ValueError):
        MicrophoneSource(**kwargs)  # type: ignore[arg-type]
