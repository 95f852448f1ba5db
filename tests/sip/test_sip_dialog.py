"""Dialogs (RFC 3261 §12): identity, CSeq, remote target, state table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyvoip_fast.errors import LocalProtocolError
from pyvoip_fast.sip.dialog import DIALOG_TABLE, Dialog, DialogInput, DialogState
from pyvoip_fast.sip.message import SipRequest, Via, make_response, parse_message

INVITE = (
    b"INVITE sip:bob@127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
    b"From: Alice <sip:alice@127.0.0.1:5060>;tag=at\r\nTo: Bob <sip:bob@127.0.0.1:5061>\r\nCall-ID: cid\r\n"
    b"CSeq: 10 INVITE\r\nContact: <sip:alice@192.0.2.7:5090>\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def invite() -> SipRequest:
    msg = parse_message(INVITE)
    assert isinstance(msg, SipRequest)
    return msg


def test_uas_dialog_from_invite() -> None:
    d = Dialog.for_uas(invite(), "bt")
    assert d.key == ("cid", "bt", "at") and not d.is_uac
    assert str(d.remote_target) == "sip:alice@192.0.2.7:5090" and d.remote_cseq == 10
    assert d.route_set == ["<sip:p1;lr>", "<sip:p2;lr>"]
    bye = d.create_request("BYE", Via("127.0.0.1", 5061, params=(("branch", "z9hG4bK9"),)))
    assert bye.cseq == (1, "BYE") and bye.to.tag == "at" and bye.from_.tag == "bt"
    assert str(bye.uri) == "sip:alice@192.0.2.7:5090" and bye.headers.get_lines("Route") == d.route_set
    assert d.target_address(("10.0.0.1", 1)) == ("192.0.2.7", 5090)
    assert parse_message(bye.serialize()).cseq == (1, "BYE")


def test_uac_dialog_learns_from_responses() -> None:
    d = Dialog.for_uac(invite())
    assert d.remote_tag is None and d.local_cseq == 10
    ringing = make_response(invite(), 180, to_tag="bt", headers=[("Contact", "<sip:bob@127.0.0.1:5099>")])
    d.update_from_response(ringing)
    assert d.state is DialogState.EARLY and d.remote_tag == "bt"
    ok = make_response(invite(), 200, to_tag="bt", headers=[("Contact", "<sip:bob@bob.example:5070>")])
    d.update_from_response(ok)
    assert d.state is DialogState.CONFIRMED and str(d.remote_target) == "sip:bob@bob.example:5070"
    assert d.target_address(("127.0.0.1", 5061)) == ("127.0.0.1", 5061)  # a name: no DNS here, use fallback
    ack = d.create_request("ACK", Via("h", 1, params=(("branch", "z9hG4bK2"),)), cseq=10)
    assert ack.cseq == (10, "ACK") and d.local_cseq == 10
    assert d.create_request("BYE", Via("h", 1)).cseq == (11, "BYE")


def test_remote_cseq_order_and_matching() -> None:
    d = Dialog.for_uas(invite(), "bt")
    assert not d.accept_remote_cseq(10, "BYE") and d.accept_remote_cseq(11, "BYE")
    assert d.accept_remote_cseq(11, "ACK")
    bye = parse_message(INVITE.replace(b"INVITE", b"BYE").replace(b"To: Bob <sip:bob@127.0.0.1:5061>",
                                                                  b"To: <sip:bob@127.0.0.1:5061>;tag=bt"))
    assert isinstance(bye, SipRequest) and d.matches(bye)
    other = parse_message(bye.serialize().replace(b"tag=bt", b"tag=zz"))
    assert isinstance(other, SipRequest) and not d.matches(other)


def test_terminated_dialog_refuses_requests() -> None:
    d = Dialog.for_uas(invite(), "bt")
    d.fire(DialogInput.SUCCESS)
    d.fire(DialogInput.BYE)
    with pytest.raises(LocalProtocolError):
        d.create_request("BYE", Via("h", 1))
    with pytest.raises(LocalProtocolError):
        d.fire(DialogInput.SUCCESS)


@given(st.sampled_from(list(DialogState)), st.sampled_from(list(DialogInput)))
def test_dialog_table_sweep(state: DialogState, inp: DialogInput) -> None:
    d = Dialog.for_uas(invite(), "bt")
    d.state = state
    if (state, inp) in DIALOG_TABLE:
        assert d.fire(inp) is DIALOG_TABLE[(state, inp)]
    else:
        with pytest.raises(LocalProtocolError):
            d.fire(inp)
        assert d.state is state
