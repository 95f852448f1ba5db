"""What the command line prints and writes about a call: the statistics summary, the JSON file, the plot."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Optional

from ..errors import AudioFileError
from .timeline import CallTimeline, plot_call

logger = logging.getLogger("pyvoip_fast.app.cli")

__all__ = ["_summary", "_write_stats", "follow_for_plot", "write_plot"]


def _summary(stats: Any, title: str = "[Call] Statistics") -> str:
    s = stats
    lines = [title]
    audio_rate = " (16 kHz audio)" if s.codec == "G722" else ""  # RFC 3551: an 8 kHz RTP clock for 16 kHz audio
    lines.append(f"  Codec:             {s.codec or '-'}/{s.clock_rate}{audio_rate}, ptime {s.ptime_ms} ms")
    lines.append(f"  Duration:          {s.duration:.1f} s")
    # over the time spent sending (packets x ptime), as the original program reported it
    send_seconds = s.packets_sent * s.ptime_ms / 1000.0
    kbps = (s.bytes_sent * 8 / send_seconds / 1000) if send_seconds > 0 else 0.0
    lines.append(f"  Total Packets Sent: {s.packets_sent:,}   Total Data Sent: {s.bytes_sent:,} bytes   "
                 f"Average Bitrate: {kbps:.1f} kbps")
    lines.append(f"  Packets Received:  {s.packets_received:,}   Total Bytes: {s.bytes_received:,} bytes")
    lines.append(f"  Lost:              {s.packets_lost:,} ({s.loss_percent:.1f}%)   late {s.packets_late:,}   "
                 f"duplicated {s.packets_duplicated:,}   concealed frames {s.frames_concealed:,}")
    rtt = "n/a" if s.rtt_ms is None else f"{s.rtt_ms:.1f} ms"
    if s.packets_received:
        lines.append(f"  Jitter:            {s.jitter_ms:.1f} ms   RTT: {rtt}   "
                     f"jitter buffer {s.jitter_buffer_delay_ms:.0f} ms")
    else:  # a side that only sent has no jitter and no playout delay of its own to report
        lines.append(f"  Jitter:            n/a (nothing received)   RTT: {rtt}")
    if s.remote_packets_lost is not None:
        remote_jitter = "n/a" if s.remote_jitter_ms is None else f"{s.remote_jitter_ms:.1f} ms"
        lines.append(f"  Peer's reports:    lost {s.remote_packets_lost:,}, jitter {remote_jitter} "
                     "(our stream as the peer received it)")
    if s.packets_received:
        scale = " of 129 (wideband, G.107.1)" if s.r_scale == 129 else ""
        lines.append(f"  Quality (E-model): R = {s.r_factor:.1f}{scale}, MOS = {s.mos:.2f}   "
                     f"(without PLC: R = {s.r_factor_no_plc:.1f}, MOS = {s.mos_no_plc:.2f})")
    else:
        lines.append("  Quality (E-model): n/a (no audio received on this side)")
    if s.dtmf_received:
        lines.append(f"  DTMF received:     {s.dtmf_received}")
    return "\n".join(lines)


def _write_stats(path: Optional[str], stats: Any) -> None:
    if path:
        try:
            Path(path).write_text(stats.to_json() + "\n")
        except OSError as exc:
            raise AudioFileError(f"cannot write statistics to {path}: {exc.strerror or exc}") from None
        logger.info("[Call] Statistics written to %s", path)


def follow_for_plot(call: Any, path: Optional[str]) -> "Optional[asyncio.Task[CallTimeline]]":
    """With ``--plot PATH``: a task sampling the call's statistics until it ends (None without)."""
    if not path:
        return None
    return asyncio.ensure_future(CallTimeline().follow(call))


async def write_plot(follower: "Optional[asyncio.Task[CallTimeline]]", path: Optional[str], title: str) -> None:
    """Draw what ``follower`` sampled into ``path`` (the call has ended, or is being torn down)."""
    if follower is None or not path:
        return
    try:
        timeline = await asyncio.wait_for(follower, 2.0)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        return
    plot_call(timeline, path, title=title)
