"""RFC 3261 §17 transactions as table-driven state machines, with timers as deadlines (sans-IO).

Strategy
--------
Each of the four transaction kinds (INVITE client, non-INVITE client, INVITE server, non-INVITE server) has
an ``Enum`` of states and a transition table ``{(state, TxInput): (next_state, (Action, ...))}``, in the
manner of h11 ``_state.py``. ``Transaction.fire(input, now, message)`` looks the pair up, moves to the next
state and runs the actions; a pair that is not in the table is a programming error and raises
``LocalProtocolError``. The tables are the specification: read them next to the figures of §17.

Timers are data: ``deadlines`` maps a ``Timer`` to the absolute time it fires (the clock is whatever the
caller passes as ``now``); ``next_deadline()`` reports the earliest, ``handle_timer(now)`` fires every due one
in order. Nothing here reads a clock or touches a socket: datagrams go into ``outbox`` (``(bytes,
is_retransmission)``) and what the transaction user must learn goes into ``results``.

Transport is UDP (unreliable), so A, E and G retransmit; D = 32 s (at least; here max(32 s, 64·T1) when T1
is larger), K = I = T4, B = F = H = J = 64·T1. RFC 6026 is applied to INVITE transactions: a 2xx moves the
client to ``ACCEPTED`` (timer M = 64·T1) where 2xx retransmissions still reach the transaction user (which
re-sends the ACK) and the server to ``ACCEPTED`` (timer L = 64·T1) where INVITE retransmissions are absorbed
(the transaction user retransmits its 2xx itself, §13.3.1.4).

Transaction matching (§17.1.3, §17.2.3) is done by ``client_key`` / ``server_key``.
"""

from __future__ import annotations

import enum
import logging
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple

from ..errors import LocalProtocolError, SipParseError
from .message import MAGIC_COOKIE, Headers, SipRequest, SipResponse

logger = logging.getLogger(__name__)

__all__ = [
    "TimerConfig",
    "Timer",
    "TxInput",
    "Action",
    "Transaction",
    "InviteClientTransaction",
    "NonInviteClientTransaction",
    "InviteServerTransaction",
    "NonInviteServerTransaction",
    "ICTState",
    "NICTState",
    "ISTState",
    "NISTState",
    "client_key",
    "server_key",
    "make_ack_for_failure",
]


class TimerConfig:
    """RFC 3261 timer base values (table 4), in seconds.

    Args:
        t1: RTT estimate (500 ms); t2: cap on retransmission intervals (4 s); t4: maximum time a message stays
            in the network (5 s).

    Raises:
        ValueError: a value not positive, or t2 < t1.
    """

    __slots__ = ("t1", "t2", "t4")

    def __init__(self, t1: float = 0.5, t2: float = 4.0, t4: float = 5.0) -> None:
        for name, value in (("t1", t1), ("t2", t2), ("t4", t4)):
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if t2 < t1:
            raise ValueError(f"t2 ({t2}) must not be smaller than t1 ({t1})")
        self.t1 = float(t1)
        self.t2 = float(t2)
        self.t4 = float(t4)

    @property
    def b(self) -> float:
        """Timer B/F/H/J/L/M: 64·T1."""
        return 64 * self.t1

    @property
    def d(self) -> float:
        """Timer D: at least 32 s for UDP."""
        return max(32.0, self.b) if self.t1 >= 0.5 else self.b

    def __repr__(self) -> str:
        return f"TimerConfig(t1={self.t1}, t2={self.t2}, t4={self.t4})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimerConfig):
            return NotImplemented
        return (self.t1, self.t2, self.t4) == (other.t1, other.t2, other.t4)


class Timer(enum.Enum):
    """The §17 timers (plus L and M from RFC 6026)."""

    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    K = "K"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name
    J = "J"
    L = "L"
    M = "M"


class TxInput(enum.Enum):
    """What can happen to a transaction."""

    RECV_1XX = "recv 1xx"
    RECV_2XX = "recv 2xx"
    RECV_FAIL = "recv 300-699"
    RECV_REQUEST = "recv request retransmission"
    RECV_ACK = "recv ACK"
    SEND_1XX = "send 1xx"
    SEND_2XX = "send 2xx"
    SEND_FAIL = "send 300-699"
    TIMER_A = "timer A"
    TIMER_B = "timer B"
    TIMER_D = "timer D"
    TIMER_E = "timer E"
    TIMER_F = "timer F"
    TIMER_K = "timer K"
    TIMER_G = "timer G"
    TIMER_H = "timer H"
    TIMER_I = "timer I"
    TIMER_J = "timer J"
    TIMER_L = "timer L"
    TIMER_M = "timer M"
    TRANSPORT_ERROR = "transport error"


_TIMER_INPUT = {timer: TxInput["TIMER_" + timer.value] for timer in Timer}


class Action(enum.Enum):
    """What a transition does (run in order)."""

    PASS_UP = "pass the response/request to the TU"
    SEND_ACK = "send ACK for a non-2xx final response"
    RESEND_ACK = "re-send that ACK"
    RETRANSMIT = "re-send the last message sent"
    SEND = "send the response given"
    REPORT_TIMEOUT = "tell the TU of a timeout"
    REPORT_ERROR = "tell the TU of a transport error"
    START_A = "start timer A at T1"
    DOUBLE_A = "restart timer A at twice its interval"
    START_B = "start timer B"
    START_D = "start timer D"
    START_M = "start timer M"
    START_E = "start timer E at T1"
    BACKOFF_E = "restart timer E at min(2E, T2)"
    E_AT_T2 = "restart timer E at T2"
    START_F = "start timer F"
    START_K = "start timer K"
    START_G = "start timer G at T1"
    BACKOFF_G = "restart timer G at min(2G, T2)"
    START_H = "start timer H"
    START_I = "start timer I"
    START_J = "start timer J"
    START_L = "start timer L"
    STOP_RETRANSMIT = "cancel timers A/E/G"
    STOP_TIMEOUT = "cancel timers B/F/H"


class ICTState(enum.Enum):
    """INVITE client transaction (§17.1.1, figure 5; RFC 6026 figure 5)."""

    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class NICTState(enum.Enum):
    """Non-INVITE client transaction (§17.1.2, figure 6)."""

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class ISTState(enum.Enum):
    """INVITE server transaction (§17.2.1, figure 7; RFC 6026 figure 7)."""

    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class NISTState(enum.Enum):
    """Non-INVITE server transaction (§17.2.2, figure 8)."""

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


I = TxInput  # noqa: E741 - short alias for the tables
A = Action

Table = Dict[Tuple[Any, TxInput], Tuple[Any, Tuple[Action, ...]]]

ICT_TABLE: Table = {
    (ICTState.CALLING, I.TIMER_A): (ICTState.CALLING, (A.RETRANSMIT, A.DOUBLE_A)),
    (ICTState.CALLING, I.TIMER_B): (ICTState.TERMINATED, (A.REPORT_TIMEOUT,)),
    (ICTState.CALLING, I.RECV_1XX): (ICTState.PROCEEDING, (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.PASS_UP)),
    (ICTState.CALLING, I.RECV_2XX): (ICTState.ACCEPTED, (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.PASS_UP, A.START_M)),
    (ICTState.CALLING, I.RECV_FAIL): (
        ICTState.COMPLETED, (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.PASS_UP, A.SEND_ACK, A.START_D)),
    (ICTState.CALLING, I.TRANSPORT_ERROR): (ICTState.TERMINATED, (A.REPORT_ERROR,)),
    (ICTState.PROCEEDING, I.RECV_1XX): (ICTState.PROCEEDING, (A.PASS_UP,)),
    (ICTState.PROCEEDING, I.RECV_2XX): (ICTState.ACCEPTED, (A.PASS_UP, A.START_M)),
    (ICTState.PROCEEDING, I.RECV_FAIL): (ICTState.COMPLETED, (A.PASS_UP, A.SEND_ACK, A.START_D)),
    (ICTState.PROCEEDING, I.TRANSPORT_ERROR): (ICTState.TERMINATED, (A.REPORT_ERROR,)),
    (ICTState.COMPLETED, I.RECV_1XX): (ICTState.COMPLETED, ()),
    (ICTState.COMPLETED, I.RECV_2XX): (ICTState.COMPLETED, ()),
    (ICTState.COMPLETED, I.RECV_FAIL): (ICTState.COMPLETED, (A.RESEND_ACK,)),
    (ICTState.COMPLETED, I.TRANSPORT_ERROR): (ICTState.TERMINATED, (A.REPORT_ERROR,)),
    (ICTState.COMPLETED, I.TIMER_D): (ICTState.TERMINATED, ()),
    (ICTState.ACCEPTED, I.RECV_1XX): (ICTState.ACCEPTED, ()),
    (ICTState.ACCEPTED, I.RECV_2XX): (ICTState.ACCEPTED, (A.PASS_UP,)),
    (ICTState.ACCEPTED, I.RECV_FAIL): (ICTState.ACCEPTED, ()),
    (ICTState.ACCEPTED, I.TRANSPORT_ERROR): (ICTState.ACCEPTED, ()),
    (ICTState.ACCEPTED, I.TIMER_M): (ICTState.TERMINATED, ()),
}

NICT_TABLE: Table = {
    (NICTState.TRYING, I.TIMER_E): (NICTState.TRYING, (A.RETRANSMIT, A.BACKOFF_E)),
    (NICTState.TRYING, I.TIMER_F): (NICTState.TERMINATED, (A.REPORT_TIMEOUT,)),
    (NICTState.TRYING, I.RECV_1XX): (NICTState.PROCEEDING, (A.PASS_UP,)),
    (NICTState.TRYING, I.RECV_2XX): (NICTState.COMPLETED, (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.PASS_UP, A.START_K)),
    (NICTState.TRYING, I.RECV_FAIL): (NICTState.COMPLETED, (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.PASS_UP, A.START_K)),
    (NICTState.TRYING, I.TRANSPORT_ERROR): (NICTState.TERMINATED, (A.REPORT_ERROR,)),
    (NICTState.PROCEEDING, I.TIMER_E): (NICTState.PROCEEDING, (A.RETRANSMIT, A.E_AT_T2)),
    (NICTState.PROCEEDING, I.TIMER_F): (NICTState.TERMINATED, (A.REPORT_TIMEOUT,)),
    (NICTState.PROCEEDING, I.RECV_1XX): (NICTState.PROCEEDING, (A.PASS_UP,)),
    (NICTState.PROCEEDING, I.RECV_2XX): (
        NICTState.COMPLETED, (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.PASS_UP, A.START_K)),
    (NICTState.PROCEEDING, I.RECV_FAIL): (
        NICTState.COMPLETED, (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.PASS_UP, A.START_K)),
    (NICTState.PROCEEDING, I.TRANSPORT_ERROR): (NICTState.TERMINATED, (A.REPORT_ERROR,)),
    (NICTState.COMPLETED, I.RECV_1XX): (NICTState.COMPLETED, ()),
    (NICTState.COMPLETED, I.RECV_2XX): (NICTState.COMPLETED, ()),
    (NICTState.COMPLETED, I.RECV_FAIL): (NICTState.COMPLETED, ()),
    (NICTState.COMPLETED, I.TIMER_K): (NICTState.TERMINATED, ()),
}

IST_TABLE: Table = {
    (ISTState.PROCEEDING, I.RECV_REQUEST): (ISTState.PROCEEDING, (A.RETRANSMIT,)),
    (ISTState.PROCEEDING, I.SEND_1XX): (ISTState.PROCEEDING, (A.SEND,)),
    (ISTState.PROCEEDING, I.SEND_2XX): (ISTState.ACCEPTED, (A.SEND, A.START_L)),
    (ISTState.PROCEEDING, I.SEND_FAIL): (ISTState.COMPLETED, (A.SEND, A.START_G, A.START_H)),
    (ISTState.PROCEEDING, I.TRANSPORT_ERROR): (ISTState.TERMINATED, (A.REPORT_ERROR,)),
    (ISTState.COMPLETED, I.RECV_REQUEST): (ISTState.COMPLETED, (A.RETRANSMIT,)),
    (ISTState.COMPLETED, I.TIMER_G): (ISTState.COMPLETED, (A.RETRANSMIT, A.BACKOFF_G)),
    (ISTState.COMPLETED, I.TIMER_H): (ISTState.TERMINATED, (A.REPORT_TIMEOUT,)),
    (ISTState.COMPLETED, I.RECV_ACK): (ISTState.CONFIRMED, (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.START_I)),
    (ISTState.COMPLETED, I.TRANSPORT_ERROR): (ISTState.TERMINATED, (A.REPORT_ERROR,)),
    (ISTState.CONFIRMED, I.RECV_REQUEST): (ISTState.CONFIRMED, ()),
    (ISTState.CONFIRMED, I.RECV_ACK): (ISTState.CONFIRMED, ()),
    (ISTState.CONFIRMED, I.TIMER_I): (ISTState.TERMINATED, ()),
    (ISTState.ACCEPTED, I.RECV_REQUEST): (ISTState.ACCEPTED, ()),
    (ISTState.ACCEPTED, I.RECV_ACK): (ISTState.ACCEPTED, (A.PASS_UP,)),
    (ISTState.ACCEPTED, I.SEND_2XX): (ISTState.ACCEPTED, (A.SEND,)),
    (ISTState.ACCEPTED, I.TRANSPORT_ERROR): (ISTState.ACCEPTED, ()),
    (ISTState.ACCEPTED, I.TIMER_L): (ISTState.TERMINATED, ()),
}

NIST_TABLE: Table = {
    (NISTState.TRYING, I.RECV_REQUEST): (NISTState.TRYING, ()),
    (NISTState.TRYING, I.SEND_1XX): (NISTState.PROCEEDING, (A.SEND,)),
    (NISTState.TRYING, I.SEND_2XX): (NISTState.COMPLETED, (A.SEND, A.START_J)),
    (NISTState.TRYING, I.SEND_FAIL): (NISTState.COMPLETED, (A.SEND, A.START_J)),
    (NISTState.TRYING, I.TRANSPORT_ERROR): (NISTState.TERMINATED, (A.REPORT_ERROR,)),
    (NISTState.PROCEEDING, I.RECV_REQUEST): (NISTState.PROCEEDING, (A.RETRANSMIT,)),
    (NISTState.PROCEEDING, I.SEND_1XX): (NISTState.PROCEEDING, (A.SEND,)),
    (NISTState.PROCEEDING, I.SEND_2XX): (NISTState.COMPLETED, (A.SEND, A.START_J)),
    (NISTState.PROCEEDING, I.SEND_FAIL): (NISTState.COMPLETED, (A.SEND, A.START_J)),
    (NISTState.PROCEEDING, I.TRANSPORT_ERROR): (NISTState.TERMINATED, (A.REPORT_ERROR,)),
    (NISTState.COMPLETED, I.RECV_REQUEST): (NISTState.COMPLETED, (A.RETRANSMIT,)),
    (NISTState.COMPLETED, I.TRANSPORT_ERROR): (NISTState.TERMINATED, ()),
    (NISTState.COMPLETED, I.TIMER_J): (NISTState.TERMINATED, ()),
}

del I, A

Result = Tuple[str, Optional[Any]]

_RETRANSMIT_TIMERS = frozenset((Timer.A, Timer.E, Timer.G))
_ABSORB_TIMERS = frozenset((Timer.D, Timer.I, Timer.J, Timer.K))


def _is_reliable(request: SipRequest) -> bool:
    try:
        return request.top_via.transport.upper() in ("TCP", "TLS", "SCTP", "WS", "WSS")
    except SipParseError:
        return False


class Transaction:
    """Common machinery: table lookup, deadlines, outbox, results.

    Attributes:
        key: the matching key.
        request: the request that created it (a server transaction lets it go with its final response).
        method: its method (kept for the transaction's whole life).
        dest: where its messages go.
        state: the current state.
        deadlines: ``{Timer: absolute time}``.
        outbox: ``[(bytes, is_retransmission)]``.
        results: ``[(kind, payload)]`` for the TU: ``("response", SipResponse)``, ``("ack", SipRequest)``,
            ``("timeout", None)``, ``("transport_error", None)``.
    """

    TABLE: ClassVar[Table]
    TERMINATED: ClassVar[Any]
    kind: ClassVar[str]
    #: called with the transaction after every input it takes (the endpoint collects only what changed)
    on_change: Optional[Callable[["Transaction"], None]] = None

    def __init__(self, key: Tuple[str, ...], request: SipRequest, dest: Tuple[str, int], timers: TimerConfig) -> None:
        self.key = key
        self._request: Optional[SipRequest] = request
        self.method = request.method
        self.dest = dest
        self.timers = timers
        self.deadlines: Dict[Timer, float] = {}
        self._intervals: Dict[Timer, float] = {}
        self.outbox: List[Tuple[bytes, bool]] = []
        self.results: List[Result] = []
        self._last: Optional[bytes] = None
        self._ack: Optional[bytes] = None
        self.state: Any = None
        #: over TCP/TLS (the request's top Via says so) nothing is retransmitted and the wait timers D, I, J, K
        #: are zero (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2): the connection delivers or fails
        self.reliable = _is_reliable(request)

    @property
    def request(self) -> SipRequest:
        """The request that created the transaction.

        Raises:
            LocalProtocolError: a server transaction that has sent its final response (it no longer keeps it).
        """
        request = self._request
        if request is None:
            raise LocalProtocolError(f"{self.kind}: its request is no longer kept after the final response")
        return request

    # -- driving -----------------------------------------------------------------------------------------------
    def fire(self, inp: TxInput, now: float, message: Any = None) -> None:
        """Apply one input.

        Args:
            inp: the input; now: the current time; message: the response/request involved, if any.

        Raises:
            LocalProtocolError: ``(state, inp)`` is not in the table.
        """
        try:
            next_state, actions = self.TABLE[(self.state, inp)]
        except KeyError:
            raise LocalProtocolError(
                f"{self.kind}: input {inp.value!r} is not allowed in state {self.state.value}"
            ) from None
        self.state = next_state
        for action in actions:
            self._run(action, now, message)
        if next_state is self.TERMINATED:
            self.deadlines.clear()
        if self.on_change is not None:
            self.on_change(self)

    @property
    def terminated(self) -> bool:
        return self.state is self.TERMINATED

    def next_deadline(self) -> Optional[float]:
        """The earliest timer deadline, or None."""
        return min(self.deadlines.values()) if self.deadlines else None

    def handle_timer(self, now: float) -> None:
        """Fire every timer whose deadline is ``<= now``, earliest first."""
        while self.deadlines:
            timer, deadline = min(self.deadlines.items(), key=lambda item: item[1])
            if deadline > now:
                return
            del self.deadlines[timer]
            self.fire(_TIMER_INPUT[timer], now)

    def transport_error(self, now: float) -> None:
        """Report that sending failed (ICMP unreachable and the like)."""
        if (self.state, TxInput.TRANSPORT_ERROR) in self.TABLE:
            self.fire(TxInput.TRANSPORT_ERROR, now)

    def take_outbox(self) -> List[Tuple[bytes, bool]]:
        out, self.outbox = self.outbox, []
        return out

    def take_results(self) -> List[Result]:
        out, self.results = self.results, []
        return out

    # -- actions -----------------------------------------------------------------------------------------------
    def _start(self, timer: Timer, now: float, interval: float) -> None:
        if self.reliable:
            if timer in _RETRANSMIT_TIMERS:
                return
            if timer in _ABSORB_TIMERS:
                interval = 0.0
        self._intervals[timer] = interval
        self.deadlines[timer] = now + interval

    def _run(self, action: Action, now: float, message: Any) -> None:
        t = self.timers
        if action is Action.PASS_UP:
            self.results.append(("ack" if isinstance(message, SipRequest) else "response", message))
        elif action is Action.RETRANSMIT:
            if self._last is not None:
                self.outbox.append((self._last, True))
        elif action is Action.SEND:
            assert isinstance(message, SipResponse)
            self._last = message.serialize()
            self.outbox.append((self._last, False))
        elif action is Action.SEND_ACK:
            assert isinstance(message, SipResponse)
            self._ack = make_ack_for_failure(self.request, message).serialize()
            self.outbox.append((self._ack, False))
        elif action is Action.RESEND_ACK:
            if self._ack is not None:
                self.outbox.append((self._ack, True))
        elif action is Action.REPORT_TIMEOUT:
            self.results.append(("timeout", None))
        elif action is Action.REPORT_ERROR:
            self.results.append(("transport_error", None))
        elif action is Action.START_A:
            self._start(Timer.A, now, t.t1)
        elif action is Action.DOUBLE_A:
            self._start(Timer.A, now, 2 * self._intervals.get(Timer.A, t.t1))
        elif action is Action.START_B:
            self._start(Timer.B, now, t.b)
        elif action is Action.START_D:
            self._start(Timer.D, now, t.d)
        elif action is Action.START_M:
            self._start(Timer.M, now, t.b)
        elif action is Action.START_E:
            self._start(Timer.E, now, t.t1)
        elif action is Action.BACKOFF_E:
            self._start(Timer.E, now, min(2 * self._intervals.get(Timer.E, t.t1), t.t2))
        elif action is Action.E_AT_T2:
            self._start(Timer.E, now, t.t2)
        elif action is Action.START_F:
            self._start(Timer.F, now, t.b)
        elif action is Action.START_K:
            self._start(Timer.K, now, t.t4)
        elif action is Action.START_G:
            self._start(Timer.G, now, t.t1)
        elif action is Action.BACKOFF_G:
            self._start(Timer.G, now, min(2 * self._intervals.get(Timer.G, t.t1), t.t2))
        elif action is Action.START_H:
            self._start(Timer.H, now, t.b)
        elif action is Action.START_I:
            self._start(Timer.I, now, t.t4)
        elif action is Action.START_J:
            self._start(Timer.J, now, t.b)
        elif action is Action.START_L:
            self._start(Timer.L, now, t.b)
        elif action is Action.STOP_RETRANSMIT:
            for timer in (Timer.A, Timer.E, Timer.G):
                self.deadlines.pop(timer, None)
        elif action is Action.STOP_TIMEOUT:
            for timer in (Timer.B, Timer.F, Timer.H):
                self.deadlines.pop(timer, None)
        else:  # pragma: no cover - every Action is handled above
            raise AssertionError(action)


class _ClientTransaction(Transaction):
    #: initial state, and the retransmit and give-up timers started with the request (§17.1.1.2 / §17.1.2.2)
    START_STATE: Any
    START_TIMERS: Tuple[Action, Action]

    def __init__(self, key: Tuple[str, ...], request: SipRequest, dest: Tuple[str, int], timers: TimerConfig,
                 now: float) -> None:
        super().__init__(key, request, dest, timers)
        self.state = self.START_STATE
        self._last = request.serialize()
        self.outbox.append((self._last, False))  # the request leaves at once
        for action in self.START_TIMERS:
            self._run(action, now, None)

    def receive_response(self, response: SipResponse, now: float) -> None:
        """Feed a response matched to this transaction."""
        code = response.status_code
        inp = TxInput.RECV_1XX if code < 200 else TxInput.RECV_2XX if code < 300 else TxInput.RECV_FAIL
        self.fire(inp, now, response)


class InviteClientTransaction(_ClientTransaction):
    """§17.1.1 INVITE client transaction: sends the INVITE at once, timers A (retransmit), B (give up), D."""

    TABLE = ICT_TABLE
    TERMINATED = ICTState.TERMINATED
    kind = "INVITE client transaction"
    START_STATE = ICTState.CALLING
    START_TIMERS = (Action.START_A, Action.START_B)


class NonInviteClientTransaction(_ClientTransaction):
    """§17.1.2 non-INVITE client transaction: timers E (retransmit), F (give up), K."""

    TABLE = NICT_TABLE
    TERMINATED = NICTState.TERMINATED
    kind = "non-INVITE client transaction"
    START_STATE = NICTState.TRYING
    START_TIMERS = (Action.START_E, Action.START_F)


class _ServerTransaction(Transaction):
    #: called once with the transaction when its first final response is sent (the user agent counts
    #: transactions still waiting for one per source: absorbing retransmissions afterwards costs nothing)
    on_final: Optional[Callable[["_ServerTransaction"], None]] = None

    def send_response(self, response: SipResponse, now: float) -> None:
        """Send a response through the transaction."""
        code = response.status_code
        inp = TxInput.SEND_1XX if code < 200 else TxInput.SEND_2XX if code < 300 else TxInput.SEND_FAIL
        self.fire(inp, now, response)
        if code >= 200:
            # what is left (absorbing retransmissions for timer J or L, re-sending a non-2xx until the ACK) needs
            # only the response's bytes: the request goes, so ~4,800 ended calls' worth of transactions (150
            # set-ups/s for 32 s) keep neither its memory nor its objects for the garbage collector to scan
            self._request = None
            if self.on_final is not None:
                done, self.on_final = self.on_final, None
                done(self)

    def receive_request(self, now: float) -> None:
        """A retransmission of the request arrived."""
        self.fire(TxInput.RECV_REQUEST, now)

    @property
    def final_sent(self) -> bool:
        return self.state.name not in ("TRYING", "PROCEEDING")


class InviteServerTransaction(_ServerTransaction):
    """§17.2.1 INVITE server transaction: G (retransmit non-2xx), H (wait for ACK), I, L (RFC 6026)."""

    TABLE = IST_TABLE
    TERMINATED = ISTState.TERMINATED
    kind = "INVITE server transaction"

    def __init__(self, key: Tuple[str, ...], request: SipRequest, dest: Tuple[str, int], timers: TimerConfig) -> None:
        super().__init__(key, request, dest, timers)
        self.state = ISTState.PROCEEDING

    def receive_ack(self, ack: SipRequest, now: float) -> None:
        """An ACK matched this transaction (ACK for a non-2xx final, or a 2xx ACK reusing the branch)."""
        self.fire(TxInput.RECV_ACK, now, ack)


class NonInviteServerTransaction(_ServerTransaction):
    """§17.2.2 non-INVITE server transaction: J absorbs request retransmissions after the final response."""

    TABLE = NIST_TABLE
    TERMINATED = NISTState.TERMINATED
    kind = "non-INVITE server transaction"

    def __init__(self, key: Tuple[str, ...], request: SipRequest, dest: Tuple[str, int], timers: TimerConfig) -> None:
        super().__init__(key, request, dest, timers)
        self.state = NISTState.TRYING


# ---------------------------------------------------------------------------------------------------------------
# matching and helpers


def client_key(branch: str, method: str) -> Tuple[str, ...]:
    """§17.1.3: a response matches the client transaction with its top Via branch and its CSeq method."""
    return ("client", branch, method)


def server_key(request: SipRequest) -> Tuple[str, ...]:
    """§17.2.3: branch + sent-by + method (ACK matches INVITE); RFC 2543 fallback without the magic cookie.

    Raises:
        SipParseError: bad Via/CSeq/From (cannot happen on a message from ``parse_message``).
    """
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    host, port = via.sent_by
    if branch.startswith(MAGIC_COOKIE):
        return ("server", branch, host.lower(), str(port), method)
    number, _ = request.cseq
    return ("server-2543", request.call_id, request.from_.tag or "", str(number), method, str(via))


def make_ack_for_failure(invite: SipRequest, response: SipResponse) -> SipRequest:
    """§17.1.1.3: the ACK for a non-2xx final response (same branch, Request-URI, From, Call-ID; To from the
    response; CSeq number with method ACK; the INVITE's Route headers)."""
    h = Headers()
    h.add("Via", invite.headers.get_all("Via")[0])
    h.add("Max-Forwards", "70")
    h.add("From", invite.headers.get("From") or "")
    h.add("To", response.headers.get("To") or "")
    h.add("Call-ID", invite.headers.get("Call-ID") or "")
    number, _ = invite.cseq
    h.add("CSeq", f"{number} ACK")
    for route in invite.headers.get_lines("Route"):
        h.add("Route", route)
    return SipRequest("ACK", invite.uri, h)
