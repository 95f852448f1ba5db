"""Who may reach the user agent, and how much: allow-lists, per-source rates and process limits (sans-IO).

A listener on an open network meets forged and flooding traffic. ``Admission`` decides for every new request
(not retransmissions, not ACKs, not requests inside a call) before any state is created for it:

- **Allow-list** (``allow``: networks in CIDR form, matched against the packet's source address, i.e. the
  adjacent hop): anything else gets ``403 Forbidden``, sent statelessly.
- **Per-source rate**: a token bucket per source IP (like Kamailio's ``pike``) with a default far above any
  legitimate single source (1,000 new requests/s, burst 2,000): beyond it requests are dropped silently. A source
  that keeps sending far beyond being refused (more than ``refused_limit`` refusals within ``refused_window``
  seconds: 5,000 in 10 s, an average of 500 refused requests a second) is dropped silently too, for
  ``refused_window`` seconds. A load generator or a proxy that overruns the process at twice its capacity stays
  far below that and keeps getting answers. Nothing else is ever dropped without an answer.
- **Process limits**: calls being set up (ringing or waiting for their ACK), calls in total, and server
  transactions per source still waiting for our final response. A new INVITE beyond them gets
  ``503 Service Unavailable`` with ``Retry-After`` (RFC 3261 §21.5.4), sent statelessly; OPTIONS are always
  answered. Requests within a call that is up (a BYE, a re-INVITE) are not subject to any of this: the user
  agent lets them through before asking.

Every refusal is counted by reason (``counters``) and logged at most once per source and reason per
``log_interval`` seconds, so a flood cannot flood the log. The per-source tables are bounded (LRU).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

__all__ = ["Admission", "Verdict", "ACCEPT", "DROP", "parse_networks"]

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_networks(specs: Sequence[str]) -> List[Network]:
    """``10.0.0.0/8``, ``192.0.2.7``, ``::1`` ... as networks (a bare address is a /32 or /128).

    Raises:
        ValueError: not an address or network (host names are resolved by the caller first).
    """
    out: List[Network] = []
    for spec in specs:
        try:
            out.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {spec!r}") from None
    return out


@dataclass(frozen=True)
class Verdict:
    """What to do with a request: accept it, drop it silently, or answer ``status`` (with ``retry_after``)."""

    status: int = 0
    reason: str = ""
    retry_after: Optional[int] = None
    drop: bool = False
    #: the counter it was counted under (``forbidden``, ``busy``, ``rate``, ``silenced``), "" when accepted
    key: str = ""


ACCEPT = Verdict()
DROP = Verdict(drop=True)


@dataclass
class _Source:
    tokens: float
    stamp: float
    refusals: List[float] = field(default_factory=list)
    silenced_until: float = 0.0
    logged: Dict[str, float] = field(default_factory=dict)


class Admission:
    """The admission policy of one endpoint (see the module docstring for the rules).

    Args:
        allow: networks allowed to send requests; None: everyone.
        max_setup: calls being set up at once (INVITE received, not yet ACKed).
        max_calls: calls in total (set up and established).
        max_transactions_per_source: open server transactions of one source IP.
        rate / burst: the per-source token bucket of new requests (per second / at most).
        retry_after: seconds put in ``Retry-After`` of a 503.
        refused_limit / refused_window: a source refused more than this often within the window is silenced.
        log_interval: seconds between two log lines about the same source and reason.
        max_sources: how many sources the tables remember (least recently seen forgotten first).
    """

    def __init__(
        self,
        *,
        allow: Optional[Sequence[Union[str, Network]]] = None,
        max_setup: int = 100,
        max_calls: int = 500,
        max_transactions_per_source: int = 200,
        rate: float = 1000.0,
        burst: float = 2000.0,
        retry_after: int = 5,
        refused_limit: int = 5000,
        refused_window: float = 10.0,
        log_interval: float = 10.0,
        max_sources: int = 4096,
    ) -> None:
        for name, value in (("max_setup", max_setup), ("max_calls", max_calls),
                            ("max_transactions_per_source", max_transactions_per_source)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if rate <= 0 or burst < 1:
            raise ValueError("the per-source rate must be positive and the burst at least 1")
        self.allow: Optional[List[Network]] = None
        if allow is not None:
            self.allow = [a if not isinstance(a, str) else parse_networks([a])[0] for a in allow]
        self.max_setup = max_setup
        self.max_calls = max_calls
        self.max_transactions_per_source = max_transactions_per_source
        self.rate = float(rate)
        self.burst = float(burst)
        self.retry_after = retry_after
        self.refused_limit = refused_limit
        self.refused_window = refused_window
        self.log_interval = log_interval
        self.max_sources = max_sources
        self._sources: "OrderedDict[str, _Source]" = OrderedDict()
        #: refusals by reason: ``forbidden`` (403), ``busy`` (503: limits), ``rate`` and ``silenced`` (dropped),
        #: ``unauthenticated`` (401: no or wrong credentials where they are required), ``media_address`` (488:
        #: a media address the rule of ``media_address`` refuses), ``overload`` (503: the process is behind)
        self.counters: Dict[str, int] = {"forbidden": 0, "busy": 0, "rate": 0, "silenced": 0, "unauthenticated": 0,
                                         "media_address": 0, "overload": 0}
        #: set by the application's load measurement (``app.load.LoadMonitor``): new INVITEs get 503 meanwhile
        self.overloaded = False
        #: also set by it: the calls the process can carry at their measured CPU cost; a new INVITE when this many
        #: are up or being set up gets 503 (None: no such limit)
        self.call_budget: Optional[int] = None

    def allowed(self, ip: str) -> bool:
        """Whether the allow-list lets ``ip`` in (always, without a list)."""
        if self.allow is None:
            return True
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.allow)

    def _source(self, ip: str, now: float) -> _Source:
        src = self._sources.get(ip)
        if src is None:
            src = _Source(tokens=self.burst, stamp=now)
            self._sources[ip] = src
            if len(self._sources) > self.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(ip)
        return src

    def check(self, ip: str, now: float, *, method: str, setup: int = 0, calls: int = 0,
              transactions: int = 0) -> Verdict:
        """The verdict for a new request of ``method`` from ``ip``.

        Args:
            setup / calls: calls being set up and in total now; transactions: open server transactions of ``ip``.
        """
        src = self._source(ip, now)
        if now < src.silenced_until:
            return self._refuse(src, "silenced", DROP, now)
        src.tokens = min(self.burst, src.tokens + (now - src.stamp) * self.rate)
        src.stamp = now
        if src.tokens < 1.0:
            return self._refuse(src, "rate", DROP, now)
        src.tokens -= 1.0
        if not self.allowed(ip):
            return self._refuse(src, "forbidden", Verdict(403, "Forbidden"), now)
        if method == "OPTIONS":
            return ACCEPT
        if transactions >= self.max_transactions_per_source:
            return self._refuse(src, "busy", Verdict(503, "Service Unavailable", self.retry_after), now)
        if method == "INVITE" and (setup >= self.max_setup or calls >= self.max_calls):
            return self._refuse(src, "busy", Verdict(503, "Service Unavailable", self.retry_after), now)
        if method == "INVITE" and (self.overloaded or (self.call_budget is not None and calls >= self.call_budget)):
            return self._refuse(src, "overload", Verdict(503, "Service Unavailable", self.retry_after), now)
        return ACCEPT

    def _refuse(self, src: _Source, reason: str, verdict: Verdict, now: float) -> Verdict:
        self.counters[reason] += 1
        verdict = Verdict(verdict.status, verdict.reason, verdict.retry_after, verdict.drop, reason)
        if reason in ("forbidden", "busy"):
            src.refusals = [t for t in src.refusals if now - t < self.refused_window]
            src.refusals.append(now)
            if len(src.refusals) > self.refused_limit:
                src.silenced_until = now + self.refused_window
                src.refusals.clear()
        return verdict

    def should_log(self, ip: str, reason: str, now: float) -> bool:
        """True at most once per ``log_interval`` per source and reason."""
        src = self._source(ip, now)
        last = src.logged.get(reason)
        if last is not None and now - last < self.log_interval:
            return False
        src.logged[reason] = now
        return True

    def count(self, reason: str) -> None:
        """Count a refusal decided elsewhere (``media_address``: by the application, once it saw the SDP)."""
        self.counters[reason] = self.counters.get(reason, 0) + 1

    def snapshot(self) -> Dict[str, int]:
        """The refusal counters (a copy)."""
        return dict(self.counters)
