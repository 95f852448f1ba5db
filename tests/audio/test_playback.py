"""Playback through the real PyAudio/PortAudio/ALSA stack on a machine without a sound card.

An ALSA configuration (``ALSA_CONFIG_PATH``) makes the default PCM a ``type file`` plugin over ``type null``:
PortAudio opens "default" as usual and everything it plays lands as raw S16_LE in a file we can inspect. Both
plugins are built into libasound2 (no extra package). The ``null`` device has no clock, so this also proves
that :class:`~pyvoip_fast.audio.devices.PyAudioSink` is paced by its caller (the media clock), not by the device.
PortAudio reads the ALSA configuration when it initialises, so each case runs in a subprocess.

Needs PyAudio: skipped on a laptop without it, a failure under ``CI=true`` (like ``helpers.require_tool``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

from helpers import NO_DEVICE_ALSA_CONF, alsa_subprocess_env, require_pyaudio


def alsa_env(tmp_path: Path, *, with_default: bool = True) -> Dict[str, str]:
    out = tmp_path / "played.raw"
    conf = tmp_path / "asound.conf"
    if with_default:
        conf.write_text(textwrap.dedent(f"""\
            # default output = raw S16_LE appended to a file, over a clockless null device
            pcm.!default {{
                type file
                slave {{ pcm "null" }}
                file "{out}"
                format "raw"
            }}
            pcm.null {{ type null }}
            """))
    else:
        conf.write_text(NO_DEVICE_ALSA_CONF)
    return alsa_subprocess_env(conf)


def run(script: str, env: Dict[str, str]) -> Dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


PLAY = """
import json, time
import numpy as np
from pyvoip_fast.audio import PyAudioSink, ToneSource
sink = PyAudioSink(rate=8000)
tone = ToneSource(1000.0, amplitude=0.5, duration=0.4)
start = time.monotonic()
n = 0
worst = 0.0
for frame in tone.frames(160):            # paced like the media clock: one frame per 20 ms deadline
    t = time.monotonic()
    sink.write(frame)
    worst = max(worst, time.monotonic() - t)
    n += 1
    time.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
marker = np.arange(1, 161, dtype=np.int16) * 100   # a recognisable last frame
sink.write(marker)
sink.close()
print(json.dumps({"played": sink.played, "dropped": sink.dropped, "worst_write_s": worst}))
"""


def test_pyaudio_playback_writes_exactly_what_was_played(tmp_path: Path) -> None:
    require_pyaudio()
    res = run(PLAY, alsa_env(tmp_path))
    assert res["played"] == 21 and res["dropped"] == 0
    assert float(res["worst_write_s"]) < 0.005  # write() never waits for the device
    raw = np.fromfile(tmp_path / "played.raw", dtype="<i2")
    nz = np.flatnonzero(raw)
    assert len(nz), "nothing was played"
    # tone starts with sample 0 == 0; anything before it is PortAudio/ALSA priming silence
    start = nz[0] - 1
    assert not raw[:start].any()
    body = raw[start:]
    expected = np.rint(0.5 * np.sin(2 * np.pi * 1000 * np.arange(3200) / 8000) * 32768).astype(np.int16)
    assert np.array_equal(body[:3200], expected)
    assert np.array_equal(body[3200:3360], np.arange(1, 161, dtype=np.int16) * 100)
    assert not body[3360:].any()  # at most trailing silence


PLAY_16K = """
import json, time
import numpy as np
import pyaudio
from pyvoip_fast.audio import PyAudioSink, ToneSource, resampled

opened = []
real_open = pyaudio.PyAudio.open
def spy(self, *args, **kwargs):             # the real PortAudio open, with its arguments noted
    opened.append({k: kwargs[k] for k in ("rate", "frames_per_buffer")})
    return real_open(self, *args, **kwargs)
pyaudio.PyAudio.open = spy

sink = PyAudioSink(rate=16000)              # a 16 kHz call (L16, G.722) ...
tone = resampled(ToneSource(1000.0, amplitude=0.5, duration=0.4), sink.rate)   # ... playing an 8 kHz source
frames = []
start = time.monotonic()
for frame in tone.frames():                 # 20 ms at 16 kHz: 320 samples, one per media-clock tick
    sink.write(frame)
    frames.append(frame)
    time.sleep(max(0.0, start + len(frames) * 0.02 - time.monotonic()))
sink.close()
np.concatenate(frames).astype("<i2").tofile("{sent}")
print(json.dumps({"opened": opened, "rate": sink.rate, "played": sink.played, "dropped": sink.dropped,
                  "sizes": sorted({len(f) for f in frames})}))
"""


def test_16k_playback_of_an_8k_source_plays_the_resampled_stream(tmp_path: Path) -> None:
    require_pyaudio()
    sent = tmp_path / "sent.raw"
    res = run(PLAY_16K.replace("{sent}", str(sent)), alsa_env(tmp_path))
    assert res["opened"] == [{"rate": 16000, "frames_per_buffer": 320}]  # 20 ms at the sink's rate
    assert res["rate"] == 16000 and res["sizes"] == [320]
    expected = np.fromfile(sent, dtype="<i2")
    assert res["played"] == len(expected) // 320 and res["dropped"] == 0
    raw = np.fromfile(tmp_path / "played.raw", dtype="<i2")
    nz = np.flatnonzero(raw)
    assert len(nz), "nothing was played"
    first = np.flatnonzero(expected)[0]  # the resampled tone starts within its first samples
    start = nz[0] - first
    assert start >= 0 and not raw[:start].any()
    body = raw[start:]
    assert np.array_equal(body[: len(expected)], expected)  # exactly the 16 kHz stream, in order
    assert not body[len(expected) :].any()
    tone = expected[200:6200].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(tone * np.hanning(len(tone))))
    assert np.argmax(spectrum) * 16000 / len(tone) == pytest.approx(1000.0, abs=3.0)


BURST = """
import json, time
import numpy as np
from pyvoip_fast.audio import PyAudioSink
sink = PyAudioSink(max_queue_frames=5)
t = time.monotonic()
for i in range(200):
    sink.write(np.full(160, i + 1, dtype=np.int16))
spent = time.monotonic() - t
sink.close()
print(json.dumps({"spent": spent, "played": sink.played, "dropped": sink.dropped}))
"""


def test_pyaudio_sink_never_blocks_and_accounts_for_every_frame(tmp_path: Path) -> None:
    require_pyaudio()
    res = run(BURST, alsa_env(tmp_path))
    assert float(res["spent"]) < 0.5  # 200 writes without waiting for the device
    assert int(res["played"]) + int(res["dropped"]) == 200
    raw = np.fromfile(tmp_path / "played.raw", dtype="<i2")
    values = raw[raw != 0].reshape(-1, 160)[:, 0]
    # what was played is in order, and ends with the newest frame (the queue drops the oldest)
    assert list(values) == sorted(values) and values[-1] == 200
    assert len(values) == res["played"]


NO_DEVICE = """
import json
from pyvoip_fast.audio import PyAudioSink
from pyvoip_fast.errors import AudioDeviceError
try:
    PyAudioSink()
except AudioDeviceError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({"error": None}))
"""


def test_no_output_device_is_a_clear_error(tmp_path: Path) -> None:
    require_pyaudio()
    res = run(NO_DEVICE, alsa_env(tmp_path, with_default=False))
    assert res["error"] and "audio output device" in str(res["error"])
