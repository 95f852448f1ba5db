"""Is the peer still there? Silence, ICMP errors and what they mean for one call.

Strategy
--------
Anything valid from the peer (RTP or RTCP) counts as hearing it. An ICMP port-unreachable is only a hint, since
a peer may not listen for RTCP at all (sipp does not), so the verdict "lost" needs silence too:

- on RTP, after media flowed (we heard the peer or sent audio): an unreachable error for the peer's RTP
  address and nothing heard since, for ``peer_timeout`` seconds;
- on RTCP, for a listen-only side that sends no RTP: the peer used to talk to us, has gone silent and now
  refuses our reports, for ``peer_timeout`` seconds (a peer that never sent anything is not judged here);
- with ``media_timeout`` set: silence alone for that long.

The first RTCP refusal is logged once (many peers simply do not take RTCP); the media continues.

Is the peer really at the address it named? ``AddressProof`` keeps return routability: an answerer sends nothing,
RTP or RTCP, to an address until the caller proved it (the ACK of our 2xx, which carries our unguessable To tag,
or RTP/RTCP received from that very address, RFC 4961 symmetric RTP). A forged INVITE naming a third party's
address then gets no media aimed at it.
"""

from __future__ import annotations

import logging
from typing import AbstractSet, Any, Optional, Tuple

from ..net.sockets import Addr, fmt_addr, same_addr

logger = logging.getLogger(__name__)

__all__ = ["PeerWatch", "AddressProof"]


_NOTHING_HEARD: "frozenset[Tuple[Any, Any]]" = frozenset()


class AddressProof:
    """Which of the peer's addresses media may go to (see the module docstring).

    ``all_proven`` starts True (a caller's peer answered our INVITE) unless ``reset(False)`` (an answerer before
    the ACK); ``confirm()`` is the ACK; ``heard(addr)`` records RTP/RTCP from an address (a few at most).
    """

    _MAX = 8

    def __init__(self) -> None:
        self.all_proven = True
        # the addresses heard from; one shared empty set until the first (an empty set is 0.2 KB a call, and a
        # call whose ACK came first never needs one)
        self._heard: "AbstractSet[Tuple[Any, Any]]" = _NOTHING_HEARD

    def reset(self, proven: bool) -> None:
        self.all_proven = proven
        self._heard = _NOTHING_HEARD

    def confirm(self) -> bool:
        """The ACK arrived; True when this changed anything."""
        changed = not self.all_proven
        self.all_proven = True
        return changed

    def heard(self, addr: Addr) -> bool:
        """Valid RTP/RTCP came from ``addr``; True when that newly proved it."""
        key = (addr[0], addr[1])
        heard = self._heard
        if self.all_proven or key in heard or len(heard) >= self._MAX:
            return False
        self._heard = {*heard, key}
        return True

    def allows(self, addr: Optional[Addr]) -> bool:
        return addr is not None and (self.all_proven or (addr[0], addr[1]) in self._heard)


class PeerWatch:
    """Liveness of one call's peer, from what we hear and the ICMP errors our sends draw.

    Args:
        peer_timeout: silence after an ICMP error before the peer counts as lost (seconds).
        media_timeout: silence alone before the peer counts as lost (seconds; None: never).
    """

    def __init__(self, peer_timeout: float, media_timeout: Optional[float]) -> None:
        self.peer_timeout = peer_timeout
        self.media_timeout = media_timeout
        self.last_heard = 0.0
        self.heard_anything = False
        self._icmp_rtp_at: Optional[float] = None
        self._icmp_rtcp_at: Optional[float] = None
        self._icmp_rtcp_logged = False

    def start(self, now: float) -> None:
        """Silence is measured from ``now`` until the peer is first heard."""
        self.last_heard = now

    def heard(self, now: float) -> None:
        """A valid RTP or RTCP packet came from the peer."""
        self.last_heard = now
        self.heard_anything = True

    def on_icmp(self, is_rtp: bool, addr: Optional[Addr], now: float, remote_rtp: Optional[Addr],
                remote_rtcp: Optional[Addr]) -> None:
        """An ICMP unreachable error for a datagram we sent to ``addr`` (None: the kernel did not say)."""
        if is_rtp:
            if addr is None or same_addr(addr, remote_rtp):
                if self._icmp_rtp_at is None:
                    logger.debug("[RTP] ICMP port unreachable from %s", fmt_addr(addr))
                self._icmp_rtp_at = now
            return
        self._icmp_rtcp_at = now
        if not self._icmp_rtcp_logged:
            self._icmp_rtcp_logged = True
            logger.info(
                "[RTCP] Peer %s does not accept RTCP (ICMP port unreachable); continuing without its reports",
                fmt_addr(addr or remote_rtcp),
            )

    def verdict(self, now: float, sent_audio: bool) -> Optional[str]:
        """Why the peer counts as lost at ``now``, or None while it does not."""
        silent = now - self.last_heard
        quiet = silent >= self.peer_timeout
        if (
            self._icmp_rtp_at is not None
            and (self.heard_anything or sent_audio)
            and self._icmp_rtp_at >= self.last_heard
            and quiet
        ):
            return "ICMP port unreachable"
        if self._icmp_rtcp_at is not None and self.heard_anything and self._icmp_rtcp_at >= self.last_heard and quiet:
            return "ICMP port unreachable on RTCP"
        if self.media_timeout is not None and silent >= self.media_timeout:
            return "no media"
        return None

    @property
    def check_every(self) -> float:
        """How often to ask for the verdict (seconds)."""
        return max(min(0.5, self.peer_timeout / 4.0), 0.05)
