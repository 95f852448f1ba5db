"""RFC 3261 §17 transaction state machines: table sweeps (hypothesis) and timer paths driven by ``now``."""

from __future__ import annotations

from typing import Any, Dict, Tuple, Type

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvoip_fast.errors import LocalProtocolError
from pyvoip_fast.sip.message import SipRequest, SipResponse, make_response, parse_message
from pyvoip_fast.sip.transaction import (
    ICT_TABLE,
    IST_TABLE,
    NICT_TABLE,
    NIST_TABLE,
    ICTState,
    InviteClientTransaction,
    InviteServerTransaction,
    ISTState,
    NICTState,
    NISTState,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    Timer,
    TimerConfig,
    Transaction,
    TxInput,
    client_key,
    make_ack_for_failure,
    server_key,
)

T = TimerConfig()
DEST = ("127.0.0.1", 5061)


def request(method: str = "INVITE") -> SipRequest:
    data = (
        f"{method} sip:bob@127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc\r\n"
        f"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1:5061>\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert isinstance(msg, SipRequest)
    return msg


def response(code: int, method: str = "INVITE") -> SipResponse:
    return make_response(request(method), code, to_tag="t")


def ict(now: float = 0.0) -> InviteClientTransaction:
    return InviteClientTransaction(("k",), request(), DEST, T, now)


def nict(now: float = 0.0) -> NonInviteClientTransaction:
    return NonInviteClientTransaction(("k",), request("OPTIONS"), DEST, T, now)


def sent(tx: Transaction) -> list:
    return tx.take_outbox()


# -- INVITE client --------------------------------------------------------------------------------------------


def test_ict_timer_a_doubles_and_timer_b_gives_up() -> None:
    tx = ict()
    assert sent(tx) == [(request().serialize(), False)]
    times = []
    now = 0.0
    while not tx.terminated:
        now = tx.next_deadline()  # type: ignore[assignment]
        tx.handle_timer(now)
        if tx.take_outbox():
            times.append(now)
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # A: T1 doubling (no T2 cap for INVITE)
    assert now == pytest.approx(32.0)  # B = 64*T1
    assert tx.take_results() == [("timeout", None)]


def test_ict_failure_sends_ack_absorbs_retransmissions_then_d() -> None:
    tx = ict()
    sent(tx)
    tx.receive_response(response(180), 0.1)
    assert tx.state is ICTState.PROCEEDING and Timer.A not in tx.deadlines and Timer.B not in tx.deadlines
    tx.receive_response(response(486), 0.2)
    assert tx.state is ICTState.COMPLETED
    out = sent(tx)
    assert len(out) == 1 and out[0][0].startswith(b"ACK sip:bob@127.0.0.1:5061 SIP/2.0")
    assert [r[1].status_code for r in tx.take_results()] == [180, 486]
    tx.receive_response(response(486), 0.3)  # retransmitted final: ACK again, not passed up
    assert sent(tx) == [(out[0][0], True)] and tx.take_results() == []
    assert tx.deadlines[Timer.D] == pytest.approx(32.2)
    tx.handle_timer(32.2)
    assert tx.terminated


def test_ict_2xx_accepted_passes_retransmissions_up_until_m() -> None:
    tx = ict()
    tx.receive_response(response(200), 0.1)
    tx.receive_response(response(200), 0.6)
    assert tx.state is ICTState.ACCEPTED and len(tx.take_results()) == 2
    tx.handle_timer(0.1 + 64 * T.t1)
    assert tx.terminated


def test_ack_for_failure_shape() -> None:
    ack = make_ack_for_failure(request(), response(503))
    assert ack.cseq == (1, "ACK") and ack.top_via.branch == "z9hG4bKabc" and ack.to.tag == "t"


# -- non-INVITE client ----------------------------------------------------------------------------------------


def test_nict_timer_e_caps_at_t2_and_f_fires() -> None:
    tx = nict()
    sent(tx)
    times = []
    while not tx.terminated:
        now = tx.next_deadline()
        assert now is not None
        tx.handle_timer(now)
        if tx.take_outbox():
            times.append(round(now, 3))
    intervals = [b - a for a, b in zip([0.0] + times, times)]
    assert intervals[:4] == [0.5, 1.0, 2.0, 4.0] and max(intervals) == 4.0
    assert tx.take_results() == [("timeout", None)]


def test_nict_provisional_sets_e_to_t2_and_k_absorbs() -> None:
    tx = nict()
    tx.receive_response(response(100, "OPTIONS"), 0.1)
    tx.handle_timer(0.5)
    assert tx.state is NICTState.PROCEEDING and tx.deadlines[Timer.E] == pytest.approx(4.5)
    tx.receive_response(response(200, "OPTIONS"), 1.0)
    tx.receive_response(response(200, "OPTIONS"), 1.1)
    assert tx.state is NICTState.COMPLETED and len(tx.take_results()) == 2  # 100 and the first 200 only
    assert tx.deadlines == {Timer.K: pytest.approx(1.0 + T.t4)}


# -- servers --------------------------------------------------------------------------------------------------


def test_ist_non_2xx_retransmits_with_g_until_ack_then_i() -> None:
    tx = InviteServerTransaction(("k",), request(), DEST, T)
    tx.send_response(response(100), 0.0)
    tx.receive_request(0.1)  # retransmitted INVITE: last response again
    assert [r for _, r in sent(tx)] == [False, True]
    tx.send_response(response(486), 0.2)
    sent(tx)
    tx.handle_timer(0.7)
    tx.handle_timer(1.7)
    tx.handle_timer(3.7)
    tx.handle_timer(7.7)
    tx.handle_timer(11.7)  # G capped at T2 = 4
    assert len(sent(tx)) == 5
    tx.receive_ack(request("ACK"), 12.0)
    assert tx.state is ISTState.CONFIRMED and set(tx.deadlines) == {Timer.I}
    tx.handle_timer(12.0 + T.t4)
    assert tx.terminated


def test_ist_timer_h_reports_missing_ack() -> None:
    tx = InviteServerTransaction(("k",), request(), DEST, T)
    tx.send_response(response(603), 0.0)
    tx.handle_timer(64 * T.t1)
    assert tx.terminated and ("timeout", None) in tx.take_results()


def test_ist_2xx_goes_to_accepted_and_absorbs_invites() -> None:
    tx = InviteServerTransaction(("k",), request(), DEST, T)
    tx.send_response(response(200), 0.0)
    sent(tx)
    tx.receive_request(0.1)
    assert tx.state is ISTState.ACCEPTED and sent(tx) == []
    tx.handle_timer(64 * T.t1)
    assert tx.terminated


def test_nist_absorbs_in_trying_and_repeats_final_until_j() -> None:
    tx = NonInviteServerTransaction(("k",), request("BYE"), DEST, T)
    tx.receive_request(0.0)
    assert sent(tx) == []
    tx.send_response(response(200, "BYE"), 0.1)
    tx.receive_request(0.2)
    assert [r for _, r in sent(tx)] == [False, True]
    tx.handle_timer(0.1 + 64 * T.t1)
    assert tx.state is NISTState.TERMINATED


def test_keys() -> None:
    req = request()
    assert server_key(req) == ("server", "z9hG4bKabc", "127.0.0.1", "5060", "INVITE")
    assert server_key(request("ACK"))[-1] == "INVITE"
    assert client_key("z9hG4bKabc", "INVITE") != client_key("z9hG4bKabc", "CANCEL")
    old = parse_message(request().serialize().replace(b"branch=z9hG4bKabc", b"branch=1"))
    assert isinstance(old, SipRequest) and server_key(old)[0] == "server-2543"


def test_timer_config_validation() -> None:
    with pytest.raises(ValueError):
        TimerConfig(t1=0)
    with pytest.raises(ValueError):
        TimerConfig(t1=5, t2=4)
    assert TimerConfig(t1=0.05).b == pytest.approx(3.2)


# -- (state, input) sweeps ------------------------------------------------------------------------------------

MACHINES: Dict[str, Tuple[Type[Any], Dict[Tuple[Any, TxInput], Any], Type[Any]]] = {
    "ICT": (InviteClientTransaction, ICT_TABLE, ICTState),
    "NICT": (NonInviteClientTransaction, NICT_TABLE, NICTState),
    "IST": (InviteServerTransaction, IST_TABLE, ISTState),
    "NIST": (NonInviteServerTransaction, NIST_TABLE, NISTState),
}

_MESSAGES = {
    TxInput.RECV_1XX: lambda m: response(180, m),
    TxInput.RECV_2XX: lambda m: response(200, m),
    TxInput.RECV_FAIL: lambda m: response(500, m),
    TxInput.SEND_1XX: lambda m: response(180, m),
    TxInput.SEND_2XX: lambda m: response(200, m),
    TxInput.SEND_FAIL: lambda m: response(500, m),
    TxInput.RECV_ACK: lambda m: request("ACK"),
}


def make(name: str) -> Transaction:
    cls = MACHINES[name][0]
    method = "INVITE" if name in ("ICT", "IST") else "OPTIONS"
    if name in ("ICT", "NICT"):
        return cls(("k",), request(method), DEST, T, 0.0)  # type: ignore[no-any-return]
    return cls(("k",), request(method), DEST, T)  # type: ignore[no-any-return]


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(MACHINES)), data=st.data())
def test_every_state_input_pair(name: str, data: st.DataObject) -> None:
    """Any (state, input): a table hit moves to the table's state; a miss raises LocalProtocolError."""
    cls, table, states = MACHINES[name]
    tx = make(name)
    tx.state = data.draw(st.sampled_from(list(states)))
    inp = data.draw(st.sampled_from(list(TxInput)))
    method = tx.request.method
    message = _MESSAGES.get(inp, lambda m: None)(method)
    before = tx.state
    if (before, inp) in table:
        tx.fire(inp, 1.0, message)
        assert tx.state is table[(before, inp)][0]
        if tx.terminated:
            assert tx.deadlines == {}
    else:
        with pytest.raises(LocalProtocolError) as info:
            tx.fire(inp, 1.0, message)
        assert before.value in str(info.value)
        assert tx.state is before


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(MACHINES)), steps=st.lists(st.integers(0, 50), min_size=1, max_size=30))
def test_random_legal_runs_terminate_and_never_leave_terminated(name: str, steps: list) -> None:
    """Random walks through legal inputs and timer expiries: deadlines never lie in the past after a step, and
    once terminated a transaction stays terminated with no timers; any run ends by timers alone."""
    cls, table, states = MACHINES[name]
    tx = make(name)
    now = 0.0
    for step in steps:
        if tx.terminated:
            break
        legal = [inp for (state, inp) in table if state is tx.state and not inp.name.startswith("TIMER")]
        if step % 3 == 0 or not legal:
            deadline = tx.next_deadline()
            if deadline is None:
                break
            now = max(now, deadline)
            tx.handle_timer(now)
        else:
            inp = legal[step % len(legal)]
            tx.fire(inp, now, _MESSAGES.get(inp, lambda m: None)(tx.request.method))
        d = tx.next_deadline()
        assert d is None or d >= now
    # drive the remaining timers: every transaction must end without further input
    for _ in range(100):
        d = tx.next_deadline()
        if d is None:
            break
        tx.handle_timer(d)
    if tx.state.name in ("PROCEEDING",) and name in ("IST", "NIST", "ICT"):
        return  # waiting for the TU (server) or a final response (ICT after 1xx): no timer by design
    if name == "NIST" and tx.state is NISTState.TRYING:
        return
    assert tx.terminated and tx.deadlines == {}
