"""RTCP for one call (RFC 3550 §6): when to report, what to report, and what the peer's reports tell us.

Strategy
--------
Every report is one compound datagram: an SR when we sent RTP since the last report, an RR otherwise, always
with an SDES CNAME, and a BYE at the end of the call (§6.1), built in one call by ``rtp.rtcp.build_report``.
The interval follows §6.3 / A.7 (``rtp.rtcp_timing.RtcpScheduler``): a two-member session at 5 % of the
session bandwidth (the codec's payload bit rate), the minimum halved before the first report,
randomised and compensated; a fixed ``rtcp_interval`` overrides it (tests). The report block about the peer's
stream comes from the receiver's RFC 3550 statistics, with LSR/DLSR from the peer's last SR (§6.4.1); the
peer's blocks about us give RTT = A − LSR − DLSR and the loss and jitter it saw. RTCP counts only from the
host the peer's RTP is latched to or from the RTCP address it negotiated (strangers are dropped and counted);
our reports go to the negotiated address until the peer's first report proves its real one, and follow a new
port of that host only when the report comes from the SSRC of the peer's RTP stream (a NAT rebinding). Log lines follow the original program at INFO
(``[RTCP Report Sent]``, ``Total Packets: 100``, ``[RTCP Report Received]`` ...).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, List, Optional

from ..rtp import rtcp
from ..rtp.rtcp_timing import RtcpScheduler
from ..errors import RtcpParseError
from ..net.sockets import Addr, fmt_addr, same_addr
from .callstats import CallStatistics
from .clock import ClockEntry, MediaClock
from .receiver import RtpReceiver
from .sender import RtpSender

logger = logging.getLogger(__name__)

__all__ = ["RtcpReporter"]


class RtcpReporter:
    """Sends our RTCP reports and reads the peer's, for one call.

    Args:
        sender: our RTP sender (packet and octet counts, the RTP timestamp of now, whether we sent).
        receiver: our RTP receiver (the statistics for the report block).
        cname: our SDES CNAME.
        overhead: bytes of IP and UDP header per packet (RFC 3550 counts them in the bandwidth).
        fixed_interval: seconds between reports instead of the §6.3 rule (None: the rule).
        rng: random numbers for the interval randomisation.
        send: ``send(datagram, addr) -> bool`` sends one RTCP datagram; True when it left.
        call_stats: the call's statistics, refreshed (the receiver-report log line gives the call's counts).
    """

    def __init__(
        self,
        sender: RtpSender,
        receiver: RtpReceiver,
        *,
        cname: str,
        overhead: int,
        fixed_interval: Optional[float],
        rng: random.Random,
        send: Callable[[bytes, Addr], bool],
        call_stats: Callable[[], CallStatistics],
    ) -> None:
        self._sender = sender
        self._receiver = receiver
        self.cname = cname
        self._send = send
        self._call_stats = call_stats
        self.scheduler = RtcpScheduler(fixed_interval=fixed_interval, rng=rng.random, overhead=overhead)
        #: where our RTCP goes: the negotiated address until the peer's first report, then its real source
        self.remote_rtcp: Optional[Addr] = None
        self._negotiated: Optional[Addr] = None
        self._latched = False
        #: RTCP datagrams dropped because they came from neither the peer's RTP host nor its RTCP address
        self.strangers = 0
        self._last_sr_mid = 0  # middle 32 bits of the peer's last SR NTP timestamp
        self._last_sr_arrival = 0.0
        self.rtt: Optional[float] = None
        #: the peer's last report block about our stream
        self.remote_report: Any = None
        self.sent = 0
        self.received = 0
        self.bye_received = False
        self._clock: Optional[MediaClock] = None
        self._entry: Optional[ClockEntry] = None
        self._silence: Callable[[float], float] = lambda now: 0.0

    # -- the schedule -----------------------------------------------------------------------------------------

    def start(self, clock: MediaClock, now: float, silence: Callable[[float], float]) -> None:
        """Report on the §6.3 schedule from ``now`` on; ``silence(now)`` is how long the peer has been quiet
        (a peer heard within two minimum intervals counts as a sender, §6.3.3)."""
        self._clock = clock
        self._silence = silence
        self._entry = clock.call_at(now + self.scheduler.next_interval(), self._on_timer)

    def stop(self) -> None:
        """No more scheduled reports (the final one with BYE is ``send_report(now, bye_reason=...)``)."""
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None

    def _on_timer(self, when: float) -> None:
        if self._entry is None or self._clock is None:
            return
        sched = self.scheduler
        now = self._clock.time()
        recently = self._silence(now) < 2 * max(sched.min_time, 1.0)
        sched.senders = 1 + (1 if self._receiver.rx is not None and recently else 0)
        sched.we_sent = self._sender.we_sent
        try:
            self.send_report(now)
        except Exception:
            logger.exception("[RTCP] Report failed")
        self._entry = self._clock.call_at(self._clock.time() + sched.next_interval(), self._on_timer)

    def set_remote(self, addr: Optional[Addr], *, initial: bool) -> None:
        """The RTCP address the peer negotiated (``a=rtcp`` or RTP + 1); a changed one replaces the latched one."""
        if initial or not same_addr(addr, self._negotiated):
            self.remote_rtcp = addr
            self._negotiated = addr
            self._latched = False

    def _from_peer(self, addr: Addr) -> bool:
        """RTCP is the peer's only from the host its RTP stream is latched to (the SDP host until then) or from
        the RTCP address it negotiated: anyone else's reports would steer our reports and statistics."""
        rtp = self._receiver.remote_rtp
        if rtp is not None and addr[0] == rtp[0]:
            return True
        return self._negotiated is not None and same_addr(addr, self._negotiated)

    def set_bandwidth(self, payload_bps: int) -> None:
        """The session bandwidth of §6.2 that the interval is a share of: the codec's payload bit rate."""
        self.scheduler.session_bandwidth_bps = float(payload_bps)

    def forget_sender_report(self) -> None:
        """The peer started a new SSRC: its earlier SR no longer gives LSR/DLSR."""
        self._last_sr_mid = 0

    # -- sending ----------------------------------------------------------------------------------------------

    def _report_blocks(self, now: float) -> List[Any]:
        rx = self._receiver.rx
        remote_ssrc = self._receiver.remote_ssrc
        if rx is None or remote_ssrc is None or rx.received == 0:
            return []
        lsr = self._last_sr_mid
        dlsr = rtcp.dlsr_units(now - self._last_sr_arrival) if lsr else 0
        b = rx.report_block(remote_ssrc, lsr, dlsr)
        if not isinstance(b, rtcp.ReportBlock):
            # the statistics module may be built against the other RTP implementation (compiled vs twin)
            b = rtcp.ReportBlock(
                ssrc=b.ssrc,
                fraction_lost=b.fraction_lost,
                cumulative_lost=b.cumulative_lost,
                highest_sequence=b.highest_sequence,
                jitter=b.jitter,
                lsr=b.lsr,
                dlsr=b.dlsr,
            )
        return [b]

    def send_report(self, now: float, bye_reason: Optional[str] = None) -> None:
        """Send SR (or RR) + SDES CNAME, and BYE with ``bye_reason`` when given."""
        sender = self._sender
        blocks = self._report_blocks(now)
        ss = sender.stats
        ntp: Optional[int] = None
        rtp_ts = 0
        if sender.we_sent or (bye_reason is not None and ss.packet_count > 0):
            ntp = rtcp.ntp_from_unix(time.time())
            rtp_ts = sender.rtp_timestamp(now)
        sent_sr = ntp is not None
        data = rtcp.build_report(
            sender.ssrc,
            blocks,
            self.cname.encode(),
            ntp_timestamp=ntp,
            rtp_timestamp=rtp_ts,
            packet_count=ss.packet_count & 0xFFFFFFFF,
            octet_count=ss.octet_count & 0xFFFFFFFF,
            reason=None if bye_reason is None else bye_reason.encode()[:255],
        )
        sender.we_sent = False
        if self.remote_rtcp is None or not self._send(data, self.remote_rtcp):
            return
        self.scheduler.on_sent(len(data))
        self.sent += 1
        if bye_reason is not None:
            logger.info("[RTCP] Sending BYE (%s)", bye_reason)
        self._log_sent(sent_sr, now)

    def _log_sent(self, sr: bool, now: float) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        sender = self._sender
        ss = sender.stats
        if sr:
            # average over the time we were sending (first packet to last packet plus its duration)
            first = sender.first_sent_at if sender.first_sent_at is not None else now
            elapsed = max(sender.last_sent_at - first + sender.ptime / 1000.0, 1e-3)
            kbps = ss.octet_count * 8 / elapsed / 1000.0
            logger.info(
                "[RTCP Report Sent]\nTotal Packets: %s\nTotal Data Sent: %s bytes\nAverage Bitrate: %.1f kbps",
                f"{ss.packet_count:,}",
                f"{ss.octet_count:,}",
                kbps,
            )
        else:
            # the call's own counts, as the end-of-call summary gives them: every packet accepted (RFC 3550 A.1
            # leaves the first packet of each source out of its `received`) and the loss over every source
            s = self._call_stats()
            logger.info(
                "[RTCP Report Sent] (receiver report)\nTotal Packets Received: %s\nPacket Loss: %s\nJitter: %.1f ms",
                f"{s.packets_received:,}",
                f"{s.packets_lost:,}",
                s.jitter_ms,
            )

    # -- receiving --------------------------------------------------------------------------------------------

    def on_datagram(self, data: bytes, addr: Addr, now: float) -> bool:
        """Take one RTCP datagram; True when it was a valid compound packet (it counts as hearing the peer)."""
        try:
            packets = rtcp.parse(data)
        except RtcpParseError as exc:
            logger.debug("[RTCP] Dropped invalid packet from %s: %s", fmt_addr(addr), exc)
            return False
        if not self._from_peer(addr):
            self.strangers += 1
            level = logging.INFO if self.strangers == 1 else logging.DEBUG
            logger.log(level, "[RTCP] Dropped a report from %s: not the peer's address (%d so far)",
                       fmt_addr(addr), self.strangers)
            return False
        self.scheduler.on_received(len(data))
        self.received += 1
        if not self._latched:  # the peer's own RTCP proves where its reports come from: ours go there
            self._latched = True
            self.remote_rtcp = addr
        elif not same_addr(addr, self.remote_rtcp) and self._moved(packets):
            logger.info("[RTCP] Peer's reports now come from %s (was %s); sending ours there", fmt_addr(addr),
                        fmt_addr(self.remote_rtcp))
            self.remote_rtcp = addr
        arrival_mid = rtcp.ntp_middle32(rtcp.ntp_from_unix(time.time()))
        remote_ssrc = self._receiver.remote_ssrc
        for p in packets:
            peer = remote_ssrc is None or getattr(p, "ssrc", None) == remote_ssrc
            if isinstance(p, rtcp.SenderReport):
                if peer:
                    self._last_sr_mid = rtcp.ntp_middle32(p.ntp_timestamp)
                    self._last_sr_arrival = now
                    self._on_report(p, arrival_mid, sender=True)
            elif isinstance(p, rtcp.ReceiverReport):
                if peer:
                    self._on_report(p, arrival_mid, sender=False)
            elif isinstance(p, rtcp.Bye):
                if remote_ssrc is not None and remote_ssrc not in p.sources:
                    continue  # a BYE counts only from the peer's own SSRC
                reason = p.reason.decode("utf-8", "replace") if isinstance(p.reason, bytes) else (p.reason or "")
                logger.info("[RTCP] BYE received from the peer%s", f" ({reason})" if reason else "")
                self.bye_received = True
        return True

    def _moved(self, packets: List[Any]) -> bool:
        """Whether reports from a new port of the peer's host prove the peer moved there (a NAT rebinding):
        only when they come from the SSRC of the peer's RTP stream, which only someone who sees it knows."""
        ssrc = self._receiver.remote_ssrc
        return ssrc is not None and bool(packets) and getattr(packets[0], "ssrc", None) == ssrc

    def _on_report(self, report: Any, arrival_mid: int, *, sender: bool) -> None:
        block = None
        for b in report.reports:
            if b.ssrc == self._sender.ssrc:
                block = b
                break
        if block is not None:
            self.remote_report = block
            if block.lsr:
                rtt = rtcp.rtt_seconds(arrival_mid, block.lsr, block.dlsr)
                if rtt is not None and rtt >= 0:
                    self.rtt = float(rtt)
        if not logger.isEnabledFor(logging.INFO):
            return
        lines = ["[RTCP Report Received]"]
        if sender:
            lines.append(f"Total Packets: {report.packet_count:,}")
            lines.append(f"Total Bytes: {report.octet_count:,} bytes")
        if block is not None:
            lines.append(
                f"Packet Loss: {block.fraction_lost * 100.0 / 256.0:.1f}% (cumulative {block.cumulative_lost:,})"
            )
            clock_rate = self._sender.codec.clock_rate if self._sender.codec is not None else 1
            lines.append(f"Jitter: {block.jitter * 1000.0 / clock_rate:.1f} ms")
        if self.rtt is not None:
            lines.append(f"Round-Trip Time: {self.rtt * 1000.0:.1f} ms")
        logger.info("\n".join(lines))
