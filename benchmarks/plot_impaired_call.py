"""The README's picture of a call: the bundled speech sample (6.5 s) through a relay that drops 10 % of the packets at random and adds
up to 40 ms of jitter, drawn the way ``--plot`` draws a call (``pyvoip_fast.app.timeline``).

    python benchmarks/plot_impaired_call.py docs/images/call-10pct-loss.png

The relay is the seeded one the tests use (``tests/relay.py``), so the same run gives the same losses.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mediakit import params  # noqa: E402
from relay import UdpRelay  # noqa: E402
from pyvoip_fast.app.timeline import CallTimeline, plot_call  # noqa: E402
from pyvoip_fast.audio import ClipSource  # noqa: E402
from pyvoip_fast.media import MediaSession  # noqa: E402

SAMPLE = ROOT / "pyvoip_fast" / "data" / "sample.wav"


async def main(out: str) -> None:
    speech, rate = sf.read(str(SAMPLE), dtype="int16")
    seconds = len(speech) / rate + 0.3
    talker = await MediaSession.create("127.0.0.1")
    listener = await MediaSession.create("127.0.0.1")
    relay = await UdpRelay.create(("127.0.0.1", talker.local_rtp_port), ("127.0.0.1", listener.local_rtp_port),
                                  loss=0.10, jitter=0.04, seed=7)
    talker.start(params(relay.a_port), source=ClipSource(speech), proven=True)
    listener.start(params(relay.b_port), proven=True)
    timeline = CallTimeline(every=0.1)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        timeline.sample(loop.time(), listener.stats)
        await asyncio.sleep(timeline.every)
    timeline.sample(loop.time(), listener.stats)
    await talker.stop()
    await listener.stop()
    relay.close()
    plot_call(timeline, out, title="speech, 10 % random loss, up to 40 ms jitter")
    s = listener.stats
    print(f"{out}: lost {s.packets_lost}, concealed {s.frames_concealed}, MOS {s.mos}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "call.png"))
