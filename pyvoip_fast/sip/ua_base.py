"""The base of the SIP user agent: its state, identity and addressing (who we are, where a request goes).

``_UaBase`` holds what the endpoint knows (calls by handle, transaction tables, registrations, the events and
datagrams waiting to go out) and answers the addressing questions every request asks: our Via (with the
transport of its hop and, over TCP/TLS, ``alias``, RFC 5923), our Contact (the public address a registrar
reported, RFC 3581), our From (the account's address of record), the hop of a request outside a dialog (the
outbound proxy with its pre-loaded Route, RFC 3261 §8.1.2, or the Request-URI), the hop of an in-dialog request
(the route set, §12.2.1.1), and the move to TCP of a request too large for UDP (§18.1.1).

Subclassed by the UA core (``ua_core.py``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import secrets
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple, Union

from ..errors import LocalProtocolError
from . import events as ev
from .calls import Addr, CallState, _Call, _NullLogger
from .admission import Admission
from .digest import Credentials, DigestAuth
from .digest_server import DigestServer
from .message import (
    MAGIC_COOKIE,
    MessageLimits,
    SipRequest,
    Via,
)
from .transaction import (
    TimerConfig,
    Transaction,
)
from .routing import TRANSPORTS, UDP_SIZE_LIMIT, Hop, HopError, hop_of, next_hop
from .uri import SipUri, parse_uri


class _UaBase:
    """State, identity and addressing of ``SipEndpoint`` (see its docstring for the arguments)."""

    def __init__(
        self,
        local_addr: Addr,
        *,
        user: str = "pyvoip",
        timers: Optional[TimerConfig] = None,
        limits: Optional[MessageLimits] = None,
        user_agent: str = "pyvoip_fast",
        logger: Optional[logging.Logger] = None,
        transport: str = "UDP",
        credentials: Optional[Credentials] = None,
        outbound_proxy: Optional[Union[str, SipUri]] = None,
        proxy_addr: Optional[Addr] = None,
        admission: Optional[Admission] = None,
        require_auth: Optional[DigestServer] = None,
    ) -> None:
        host, port = local_addr
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"bad local port {port!r}")
        if transport.upper() not in TRANSPORTS:
            raise ValueError(f"unsupported transport {transport!r}: use one of {', '.join(TRANSPORTS)}")
        self.local_addr: Addr = (host, port)
        #: the address in our Contact: the local one, or the public one a registrar saw (RFC 3581 received/rport)
        self.contact_addr: Addr = (host, port)
        #: the default transport of requests whose URI names none (``--transport``)
        self.transport = transport.upper()
        self.auth = DigestAuth(credentials)
        #: the address of record of a registered account (``From`` of our requests), None peer-to-peer
        self.aor: Optional[SipUri] = None
        #: allow-list, per-source rates and limits on calls and transactions (``admission.py``)
        self.admission = admission if admission is not None else Admission()
        self._tx_per_ip: Dict[str, int] = {}
        #: new INVITEs must carry digest credentials this server accepts (RFC 3261 §22.1), None: no check
        self.require_auth = require_auth
        self.outbound_proxy: Optional[SipUri] = None
        self.proxy_hop: Optional[Hop] = None
        if outbound_proxy is not None:
            self.set_outbound_proxy(outbound_proxy, proxy_addr)
        self.user = user
        self.timers = timers or TimerConfig()
        self.limits = limits or MessageLimits()
        self.user_agent = user_agent
        self.log: Union[logging.Logger, _NullLogger] = logger if logger is not None else _NullLogger()
        self._events: Deque[ev.Event] = deque()
        self._outbox: List[Tuple[bytes, Addr]] = []
        self._client_tx: Dict[Tuple[str, ...], Transaction] = {}
        self._server_tx: Dict[Tuple[str, ...], Transaction] = {}
        # only transactions that took an input since the last collection are looked at again, and timers wait in
        # one heap (deadline, sequence, transaction or call; an entry no longer due is skipped when it surfaces):
        # with thousands of answered transactions absorbing retransmissions, a message costs O(log n), not O(n)
        self._touched: Dict[int, Transaction] = {}
        self._timer_heap: List[Tuple[float, int, Any]] = []
        self._timer_seq = itertools.count()
        self._tx_call: Dict[Tuple[str, ...], int] = {}
        self._calls: Dict[int, _Call] = {}
        # the same calls by Call-ID, and how many are in each state: a message finds its call, and admission counts
        # calls and set-ups, without looking at every call (with a thousand calls up, a scan per message was the
        # largest cost of a call set-up); only ``_add_call`` and ``_forget_call`` change the three
        self._by_call_id: Dict[str, List[_Call]] = {}
        self._state_counts: Dict[CallState, int] = dict.fromkeys(CallState, 0)
        self._next_handle = 1
        # registrations (``registration.py``): by handle, their REGISTER transactions, keep-alives due
        self._regs: Dict[int, Any] = {}
        self._tx_reg: Dict[Tuple[str, ...], int] = {}
        self._keepalives: List[Tuple[Addr, str]] = []
        #: why sending to an address last failed (``transport_error``), for the failure's text
        self._transport_why: Dict[Addr, str] = {}

    @property
    def live_calls(self) -> int:
        """Calls being set up (either way) or up: what the call limits of admission count."""
        counts = self._state_counts
        return (counts[CallState.INCOMING] + counts[CallState.WAIT_ACK] + counts[CallState.CONFIRMED]
                + counts[CallState.CALLING])

    @property
    def kept_calls(self) -> int:
        """Every call the endpoint keeps: up, being set up, and ended ones absorbing late retransmissions (for
        timer B after their end)."""
        return len(self._calls)

    def _add_call(self, call: _Call) -> None:
        self._calls[call.handle] = call
        self._by_call_id.setdefault(call.dialog.call_id, []).append(call)
        call.tally_in(self._state_counts)

    def _forget_call(self, call: _Call) -> None:
        del self._calls[call.handle]
        same = self._by_call_id.get(call.dialog.call_id)
        if same is not None and call in same:
            same.remove(call)
            if not same:
                del self._by_call_id[call.dialog.call_id]
        call.tally_in(None)

    def _calls_with_id(self, call_id: str) -> List[_Call]:
        """The calls (dialogs, early ones of a forked INVITE included) with this Call-ID."""
        return self._by_call_id.get(call_id) or []

    def _new_handle(self) -> int:
        handle = self._next_handle
        self._next_handle += 1
        return handle

    @staticmethod
    def _new_tag() -> str:
        return secrets.token_hex(6)

    @staticmethod
    def _new_branch() -> str:
        return MAGIC_COOKIE + secrets.token_hex(10)

    def _watch(self, tx: Transaction) -> None:
        """Collect ``tx`` now and after every input it takes from now on."""
        tx.on_change = self._touch
        self._touched[id(tx)] = tx

    def _touch(self, tx: Transaction) -> None:
        self._touched[id(tx)] = tx

    def _schedule(self, when: float, obj: Any) -> None:
        """Wake up at ``when`` for ``obj`` (a transaction or a call); stale entries are skipped later."""
        heapq.heappush(self._timer_heap, (when, next(self._timer_seq), obj))

    def _still_due(self, obj: Any, when: float) -> bool:
        if isinstance(obj, Transaction):
            return not obj.terminated and obj.next_deadline() == when
        call: _Call = obj
        return self._calls.get(call.handle) is call and (
            (call.ok_bytes is not None and call.ok_next == when) or call.purge_at == when
            or when in call.requests_in.values()
            or (call.reliable_out is not None and call.reliable_out[2] == when)  # our reliable 1xx (RFC 3262)
            or (call.timer is not None and call.timer.next_deadline() == when))  # the session timer (RFC 4028)

    def _next_due(self) -> Optional[float]:
        """The earliest deadline still due in the heap (stale entries at its top are dropped)."""
        heap = self._timer_heap
        while heap:
            when, _, obj = heap[0]
            if self._still_due(obj, when):
                return when
            heapq.heappop(heap)
        return None

    def _add_server_tx(self, key: Tuple[str, ...], tx: Transaction) -> None:
        """Keep a new server transaction; it counts against its source's limit until it sends a final response
        (a load generator's thousands of answered transactions, absorbing retransmissions for timer J or L, do
        not)."""
        self._server_tx[key] = tx
        ip = tx.dest[0]
        self._tx_per_ip[ip] = self._tx_per_ip.get(ip, 0) + 1
        tx.on_final = self._tx_answered  # type: ignore[attr-defined]
        self._watch(tx)

    def _tx_answered(self, tx: Any) -> None:
        ip = tx.dest[0]
        left = self._tx_per_ip.get(ip, 1) - 1
        if left > 0:
            self._tx_per_ip[ip] = left
        else:
            self._tx_per_ip.pop(ip, None)

    def _drop_server_tx(self, key: Tuple[str, ...]) -> None:
        tx = self._server_tx.pop(key, None)
        if tx is not None and getattr(tx, "on_final", None) is not None:  # ended without a final response
            tx.on_final = None  # type: ignore[attr-defined]
            self._tx_answered(tx)

    def set_outbound_proxy(self, uri: Union[str, SipUri], addr: Optional[Addr] = None) -> None:
        """Send every request outside a dialog through ``uri`` (RFC 3261 §8.1.2: a pre-loaded ``Route``).

        Args:
            uri: the proxy (``sip:proxy.example.com;transport=tcp``); its ``;transport=`` picks the transport.
            addr: its resolved address, when ``uri`` names a host (this core does no DNS).

        Raises:
            ValueError: not a SIP URI, or a host name without ``addr``.
        """
        parsed = parse_uri(uri) if isinstance(uri, str) else uri
        if not isinstance(parsed, SipUri):
            raise ValueError(f"the outbound proxy must be a sip: or sips: URI, not {uri}")
        if parsed.param("lr") is None and not any(name == "lr" for name, _ in parsed.params):
            parsed = SipUri(parsed.host, parsed.port, user=parsed.user, scheme=parsed.scheme,
                            params=parsed.params + (("lr", None),))
        probe = parsed if addr is None else SipUri(addr[0], addr[1], scheme=parsed.scheme, params=parsed.params)
        self.proxy_hop = hop_of(probe, self.transport)
        self.outbound_proxy = parsed

    def _local_uri(self, transport: Optional[str] = None) -> SipUri:
        t = (transport or self.transport).upper()
        params = (("transport", t.lower()),) if t != "UDP" else ()
        return SipUri(self.contact_addr[0], self.contact_addr[1], user=self.user, params=params)

    def _aor_uri(self) -> SipUri:
        """Who we are in From (and To of a REGISTER): the account's address of record, else our local URI."""
        return self.aor if self.aor is not None else SipUri(self.local_addr[0], self.local_addr[1], user=self.user)

    def _contact(self, transport: Optional[str] = None) -> str:
        return f"<{self._local_uri(transport)}>"

    def _via(self, branch: Optional[str] = None, transport: Optional[str] = None) -> Via:
        t = (transport or self.transport).upper()
        params: Tuple[Tuple[str, Optional[str]], ...] = (("branch", branch or self._new_branch()), ("rport", None))
        if t != "UDP":
            params += (("alias", None),)  # RFC 5923: reuse this connection for requests to us
        return Via(self.local_addr[0], self.local_addr[1], transport=t, params=params)

    def _hop_for_new(self, uri: SipUri, dest: Optional[Addr]) -> Tuple[Hop, List[str]]:
        """The hop and pre-loaded routes of a request outside a dialog: the outbound proxy, else ``dest`` (the
        Request-URI's resolved address) with the URI's transport."""
        if self.proxy_hop is not None and self.outbound_proxy is not None:
            return self.proxy_hop, [f"<{self.outbound_proxy}>"]
        if dest is None:
            return hop_of(uri, self.transport), []
        probe = SipUri(dest[0], dest[1], scheme=uri.scheme, params=uri.params)
        return hop_of(probe, self.transport), []

    def _dialog_hop(self, call: _Call) -> Hop:
        """Where an in-dialog request goes: the route set's first hop, else the remote target (§12.2.1.1),
        else (a host name) the address the peer used."""
        try:
            return next_hop(call.dialog.remote_target, call.dialog.route_set, call.transport)
        except HopError:
            if not call.dialog.route_set and self.proxy_hop is not None:
                return self.proxy_hop
            return Hop(call.remote_addr[0], call.remote_addr[1], call.transport)

    def _fit_transport(self, request: SipRequest, hop: Hop) -> Hop:
        """RFC 3261 §18.1.1: a request over 1,300 bytes whose hop did not name UDP goes over TCP."""
        if hop.transport != "UDP" or hop.explicit or request.method == "ACK":
            return hop
        if len(request.serialize()) <= UDP_SIZE_LIMIT:
            return hop
        vias = request.headers.get_lines("Via")
        top = Via.parse(vias[0])
        request.headers.remove("Via")
        new_top = Via(top.host, top.port, transport="TCP", params=top.params + (("alias", None),))
        for value in [str(new_top)] + vias[1:]:
            request.headers.add("Via", value)
        self.log.info("[SIP] %s is %d bytes: sending it over TCP (RFC 3261 §18.1.1)", request.method,
                      len(request.serialize()))
        return Hop(hop.host, hop.port, "TCP", hop.explicit)

    def _call(self, handle: int) -> _Call:
        try:
            return self._calls[handle]
        except KeyError:
            raise LocalProtocolError(f"no call with handle {handle}") from None

    def _incoming(self, handle: int) -> _Call:
        call = self._call(handle)
        if call.is_caller or call.state is not CallState.INCOMING:
            raise LocalProtocolError(f"call {handle} is not an unanswered incoming call (state {call.state.value})")
        return call

