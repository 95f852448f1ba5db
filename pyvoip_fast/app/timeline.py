"""A call's receive side over time, and its picture: what ``--plot FILE.png`` draws.

``CallTimeline.follow(call)`` samples ``call.stats`` every ``every`` seconds while the call lasts (a task that
reads statistics the call keeps anyway: nothing is added to the per-packet path, and a call without a plot pays
nothing). ``plot_call`` draws the samples with matplotlib (the optional ``plot`` extra) into one PNG of four panels
over the call's time: packets lost and frames concealed; the interarrival jitter; the jitter buffer's delay, the
target it adapts towards, and its stretch and compress events; the running E-model MOS.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from typing import Any, Dict, List, Optional

from ..errors import AudioFileError

logger = logging.getLogger(__name__)

__all__ = ["CallTimeline", "plot_call", "plotting_available"]

#: the statistics a timeline keeps, one list each
FIELDS = ("packets_lost", "frames_concealed", "jitter_ms", "jitter_buffer_delay_ms", "jitter_buffer_target_ms",
          "frames_stretched", "frames_shrunk", "mos", "packets_received")


def plotting_available() -> bool:
    """Whether matplotlib is installed (``pip install 'pyvoip-fast[plot]'``)."""
    return importlib.util.find_spec("matplotlib") is not None


class CallTimeline:
    """Samples of one call's statistics over time (seconds from the first sample).

    Args:
        every: seconds between samples (default 0.2).
    """

    def __init__(self, every: float = 0.2) -> None:
        if not every > 0:
            raise ValueError(f"every must be positive, got {every!r}")
        self.every = float(every)
        self.t: List[float] = []
        self.series: Dict[str, List[float]] = {name: [] for name in FIELDS}
        self.codec = ""
        self._t0: Optional[float] = None

    def __len__(self) -> int:
        return len(self.t)

    def sample(self, now: float, stats: Any) -> None:
        """Record ``stats`` (a ``CallStatistics``) at time ``now`` (any monotonic clock)."""
        if self._t0 is None:
            self._t0 = now
        self.t.append(now - self._t0)
        for name in FIELDS:
            value = getattr(stats, name, None)
            self.series[name].append(float("nan") if value is None else float(value))
        self.codec = getattr(stats, "codec", "") or self.codec

    async def follow(self, call: Any) -> "CallTimeline":
        """Sample ``call.stats`` until the call ends (then once more, the final figures); returns ``self``."""
        loop = asyncio.get_running_loop()
        while not call.ended:
            self.sample(loop.time(), call.stats)
            await asyncio.sleep(self.every)
        self.sample(loop.time(), call.stats)
        return self


def plot_call(timeline: CallTimeline, path: str, *, title: str = "pyvoip-fast call") -> None:
    """Draw ``timeline`` into the PNG file ``path`` (four panels over the call's time).

    Raises:
        AudioFileError: matplotlib is not installed, or the file cannot be written.
    """
    if not plotting_available():
        raise AudioFileError("--plot needs matplotlib: pip install 'pyvoip-fast[plot]'")
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window, never a display
    import matplotlib.pyplot as plt

    t, s = timeline.t, timeline.series
    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    try:
        ax = axes[0]
        ax.step(t, s["packets_lost"], where="post", label="packets lost", color="tab:red")
        ax.step(t, s["frames_concealed"], where="post", label="frames concealed", color="tab:orange")
        ax.set_ylim(0, max([1.0] + s["packets_lost"] + s["frames_concealed"]) * 1.15)
        ax.set_ylabel("count")
        ax.legend(loc="upper left")
        ax.set_title(f"{title} ({timeline.codec or 'no audio'})")
        ax = axes[1]
        ax.plot(t, s["jitter_ms"], color="tab:blue", label="interarrival jitter (RFC 3550)")
        ax.set_ylabel("ms")
        ax.legend(loc="upper left")
        ax = axes[2]
        ax.plot(t, s["jitter_buffer_delay_ms"], color="tab:green", label="jitter-buffer delay")
        ax.plot(t, s["jitter_buffer_target_ms"], color="tab:gray", linestyle="--", label="target")
        for name, marker, label in (("frames_stretched", "^", "stretched"), ("frames_shrunk", "v", "compressed")):
            values = s[name]
            events = [t[i] for i in range(1, len(values)) if values[i] > values[i - 1]]
            if events:
                level = [s["jitter_buffer_delay_ms"][t.index(x)] for x in events]
                ax.scatter(events, level, marker=marker, s=18, label=label)
        ax.set_ylabel("ms")
        ax.legend(loc="upper left")
        ax = axes[3]
        ax.plot(t, s["mos"], color="tab:purple", label="MOS (E-model, running)")
        ax.set_ylim(1.0, 4.6)
        ax.set_ylabel("MOS")
        ax.set_xlabel("seconds into the call")
        ax.legend(loc="lower left")
        fig.tight_layout()
        try:
            fig.savefig(path, dpi=80)
        except OSError as exc:
            raise AudioFileError(f"cannot write the plot to {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    logger.info("[Call] Plot written to %s", path)
