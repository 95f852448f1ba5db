"""Safe on an open network: a forged INVITE cannot aim our media at a third party (return routability).

An INVITE whose SDP names somebody else's address (``c=IN IP4 127.0.0.9``), never ACKed, used to make a listener
stream its whole file there. Now nothing, RTP or RTCP, leaves for an address until the caller proved it: the ACK
of our 2xx (it carries our unguessable To tag) or RTP from that very address (RFC 4961 symmetric RTP).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from typing import Any, List, Optional, Tuple

import numpy as np
import pytest

from mediakit import ArraySource, ListSink, run
from pyvoip_fast import rtp
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.errors import CallError
from pyvoip_fast.sip.message import SipResponse, parse_message

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
VICTIM = "127.0.0.9"


def _udp(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, port))
    s.setblocking(False)
    return s


def _invite(sip_port: int, to_port: int, media_host: str, media_port: int, call_id: str) -> bytes:
    sdp = (f"v=0\r\no=x 1 1 IN IP4 {media_host}\r\ns=-\r\nc=IN IP4 {media_host}\r\nt=0 0\r\n"
           f"m=audio {media_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n").encode()
    return (f"INVITE sip:pyvoip@127.0.0.1:{to_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{sip_port};branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:attacker@127.0.0.1>;tag={call_id}\r\nTo: <sip:pyvoip@127.0.0.1>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 INVITE\r\nContact: <sip:attacker@127.0.0.1:{sip_port}>\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n").encode() + sdp


def _drain(sock: socket.socket) -> List[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


async def _ok_of(sig: socket.socket, timeout: float = 3.0) -> SipResponse:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        for data in _drain(sig):
            msg = parse_message(data)
            if isinstance(msg, SipResponse) and msg.status_code == 200:
                return msg
        await asyncio.sleep(0.02)
    raise AssertionError("no 200 OK")


def test_forged_invite_naming_a_third_party_gets_no_media() -> None:
    victim_rtp, victim_rtcp = _udp(VICTIM, 0), None
    port = victim_rtp.getsockname()[1]
    try:
        victim_rtcp = _udp(VICTIM, port + 1)
    except OSError:
        pytest.skip("the port after the victim's RTP port is taken")
    sig = _udp()

    async def main() -> None:
        async with Phone("127.0.0.1", 0, timers=FAST) as phone:
            tone = np.full(8000 * 5, 3000, np.int16)
            answering = asyncio.create_task(phone.answer(source=ArraySource(tone)))
            sig.sendto(_invite(sig.getsockname()[1], phone.local_address[1], VICTIM, port, secrets.token_hex(6)),
                       phone.local_address)
            await _ok_of(sig)
            # no ACK ever comes: the 200 OK is retransmitted for 64*T1 = 3.2 s, then the call is dropped
            with pytest.raises(CallError) as info:
                await asyncio.wait_for(answering, 6)
            assert info.value.status_code == 408

    try:
        run(main())
        assert _drain(victim_rtp) == [] and _drain(victim_rtcp) == []  # not one packet in 3 s
    finally:
        for s in (victim_rtp, victim_rtcp, sig):
            if s is not None:
                s.close()


def test_caller_rtp_before_the_ack_proves_its_address_and_the_ack_proves_the_sdp_one() -> None:
    """Symmetric RTP: the caller's own RTP from its SDP address proves it before the ACK; after the ACK media
    flows to the negotiated address even from a caller that sends nothing."""
    caller_rtp = _udp()
    sig = _udp()
    rport = caller_rtp.getsockname()[1]

    async def main() -> Tuple[int, int]:
        async with Phone("127.0.0.1", 0, timers=FAST) as phone:
            tone = np.full(8000 * 3, 3000, np.int16)
            answering = asyncio.create_task(phone.answer(source=ArraySource(tone), sink=ListSink()))
            call_id = secrets.token_hex(6)
            sig.sendto(_invite(sig.getsockname()[1], phone.local_address[1], "127.0.0.1", rport, call_id),
                       phone.local_address)
            ok = await _ok_of(sig)
            body = ok.body.decode()
            our_rtp = int(body.split("m=audio ")[1].split()[0])
            await asyncio.sleep(0.3)
            before = len(_drain(caller_rtp))  # nothing yet: not proven
            for i in range(10):
                caller_rtp.sendto(rtp.build_packet(0, i, 160 * i, 0x1234, b"\xff" * 160), ("127.0.0.1", our_rtp))
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            after = len(_drain(caller_rtp))  # proven by our own RTP from there: media flows before the ACK
            ack = (f"ACK sip:pyvoip@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{sig.getsockname()[1]};"
                   f"branch=z9hG4bKack{call_id}\r\nFrom: <sip:attacker@127.0.0.1>;tag={call_id}\r\n"
                   f"To: <sip:pyvoip@127.0.0.1>;tag={ok.to.tag}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n"
                   "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()
            sig.sendto(ack, phone.local_address)
            call = await asyncio.wait_for(answering, 5)
            await call.hangup()
            return before, after

    try:
        before, after = run(main())
    finally:
        caller_rtp.close()
        sig.close()
    assert before == 0, before
    assert after >= 10, after
