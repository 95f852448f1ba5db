"""The asyncio user agent over real UDP sockets on 127.0.0.1 and ::1."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Awaitable, Optional, Tuple

import pytest

from helpers import require_ipv6
from pyvoip_fast.errors import CallError, TransportError
from pyvoip_fast.sip.sdp import SessionDescription, make_answer, make_offer, negotiate
from pyvoip_fast.sip.message import SipResponse, parse_message
from pyvoip_fast.app.useragent import IncomingCall, SipCall, TimerConfig, UserAgent

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))  # type: ignore[arg-type]


async def answer_one(ua: UserAgent, *, ring: bool = True) -> Tuple[IncomingCall, SipCall]:
    incoming = await ua.incoming()
    if ring:
        await incoming.ring()
    host = ua.local_address[0]
    call = await incoming.answer(make_answer(incoming.offer, host, 42000))
    return incoming, call


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_call_and_remote_hangup(host: str, caplog: pytest.LogCaptureFixture) -> None:
    if host == "::1":
        require_ipv6()
    caplog.set_level(logging.INFO, logger="pyvoip_fast.app.useragent")

    async def main() -> None:
        async with await UserAgent.create(host, 0) as alice, await UserAgent.create(host, 0, user="bob") as bob:
            callee = asyncio.create_task(answer_one(bob))
            call = await alice.call(bob.local_address, make_offer(host, 40000))
            incoming, bob_call = await callee
            assert incoming.remote_addr == alice.local_address
            assert incoming.from_uri.startswith("sip:pyvoip@")
            assert call.is_caller and not bob_call.is_caller and call.call_id == bob_call.call_id
            params = negotiate(call.local_sdp, call.remote_sdp)
            assert params.remote_rtp == (host, 42000) and params.encoding == "PCMU"
            await bob_call.hangup()
            assert await call.wait_ended() == "remote hangup"
            assert await bob_call.wait_ended() == "local hangup" and call.ended
            await bob_call.hangup()  # idempotent

    run(main())
    text = caplog.text
    port_fmt = "[::1]:" if host == "::1" else "127.0.0.1:"
    for line in (f"[SIP] Sending INVITE to {port_fmt}", "[SIP] Received 100 Trying", "[SIP] Received 180 Ringing",
                 "[SIP] Received 200 OK", "[SIP] Sending ACK", f"[SIP] Received INVITE from {port_fmt}",
                 "[SIP] Sending 200 OK", "[SIP] Received ACK", "[SIP] Sending BYE", "[SIP] Received BYE"):
        assert line in text, line


def test_target_forms() -> None:
    async def main() -> None:
        async with await UserAgent.create("127.0.0.1", 0) as alice, await UserAgent.create("127.0.0.1", 0) as bob:
            port = bob.local_address[1]
            for target in (f"sip:bob@127.0.0.1:{port}", f"127.0.0.1:{port}", ("127.0.0.1", port)):
                callee = asyncio.create_task(answer_one(bob, ring=False))
                call = await alice.call(target, make_offer("127.0.0.1", 40000))
                _, bob_call = await callee
                await call.hangup()
                assert await bob_call.wait_ended() == "remote hangup"

    run(main())


def test_rejected_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pyvoip_fast.app.useragent")

    async def main() -> CallError:
        async with await UserAgent.create("127.0.0.1", 0) as alice, await UserAgent.create("127.0.0.1", 0) as bob:
            async def busy() -> None:
                incoming = await bob.incoming()
                await incoming.reject()
                with pytest.raises(CallError):
                    await incoming.answer(make_answer(incoming.offer, "127.0.0.1", 1))

            task = asyncio.create_task(busy())
            with pytest.raises(CallError) as info:
                await alice.call(bob.local_address, make_offer("127.0.0.1", 40000))
            await task
            return info.value

    error = run(main())
    assert (error.status_code, error.reason) == (486, "Busy Here")
    assert "[SIP] Call failed: 486 Busy Here" in caplog.text


def test_ring_timeout_cancels() -> None:
    async def main() -> None:
        async with await UserAgent.create("127.0.0.1", 0) as alice, await UserAgent.create("127.0.0.1", 0) as bob:
            async def ringing() -> IncomingCall:
                incoming = await bob.incoming()
                await incoming.ring()
                assert not incoming.cancelled
                await incoming.cancelled
                return incoming

            task = asyncio.create_task(ringing())
            with pytest.raises(CallError) as info:
                await alice.call(bob.local_address, make_offer("127.0.0.1", 40000), ring_timeout=0.3)
            assert info.value.status_code == 487
            incoming = await task
            assert incoming.cancelled
            with pytest.raises(CallError) as late:
                await incoming.answer(make_answer(incoming.offer, "127.0.0.1", 1))
            assert late.value.status_code == 487

    run(main())


def test_task_cancellation_sends_cancel() -> None:
    async def main() -> None:
        async with await UserAgent.create("127.0.0.1", 0) as alice, await UserAgent.create("127.0.0.1", 0) as bob:
            task = asyncio.create_task(alice.call(bob.local_address, make_offer("127.0.0.1", 40000)))
            incoming = await bob.incoming()
            await incoming.ring()
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(incoming.cancelled, 2)

    run(main())


def test_no_response_is_408() -> None:
    async def main() -> Tuple[CallError, float]:
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        try:
            async with await UserAgent.create("127.0.0.1", 0, timers=FAST) as alice:
                start = asyncio.get_running_loop().time()
                with pytest.raises(CallError) as info:
                    await alice.call(silent.getsockname(), make_offer("127.0.0.1", 40000))
                return info.value, asyncio.get_running_loop().time() - start
        finally:
            silent.close()

    error, elapsed = run(main())
    assert error.status_code == 408 and error.reason == "Request Timeout" and "no response" in str(error)
    assert 3.1 < elapsed < 5.0


def test_bind_errors() -> None:
    async def main() -> None:
        async with await UserAgent.create("127.0.0.1", 0) as ua:
            with pytest.raises(TransportError, match="address already in use") as info:
                await UserAgent.create("127.0.0.1", ua.local_address[1])
            assert "\n" not in str(info.value)
        with pytest.raises(TransportError, match="not available"):
            await UserAgent.create("192.0.2.55", 0)
        with pytest.raises(TransportError, match="bad local address"):
            await UserAgent.create("no-such-host.invalid", 0)
        with pytest.raises(TransportError):
            await UserAgent.create("127.0.0.1", 70000)

    run(main())


class RawPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: "asyncio.Queue[bytes]" = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


async def raw_peer() -> Tuple[asyncio.DatagramTransport, RawPeer]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(RawPeer, local_addr=("127.0.0.1", 0))
    return transport, proto  # type: ignore[return-value]


def request(method: str, port: int, branch: str, *, to_tag: str = "", cseq: int = 1, body: bytes = b"",
            call_id: str = "raw-1") -> bytes:
    return (
        f"{method} sip:pyvoip@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch}\r\n"
        f"From: <sip:raw@127.0.0.1:{port}>;tag=raw\r\nTo: <sip:pyvoip@127.0.0.1>{to_tag}\r\nCall-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\nContact: <sip:raw@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\n"
        + ("Content-Type: application/sdp\r\n" if body else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def next_response(peer: RawPeer, code: Optional[int] = None) -> SipResponse:
    while True:
        msg = parse_message(await asyncio.wait_for(peer.queue.get(), 5))
        if isinstance(msg, SipResponse) and (code is None or msg.status_code == code):
            return msg


def test_options_malformed_481_and_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pyvoip_fast.app.useragent")

    async def main() -> None:
        async with await UserAgent.create("127.0.0.1", 0) as ua:
            transport, peer = await raw_peer()
            port = transport.get_extra_info("sockname")[1]
            try:
                transport.sendto(request("OPTIONS", port, "o1"), ua.local_address)
                ok = await next_response(peer)
                assert ok.status_code == 200 and "BYE" in (ok.headers.get("Allow") or "")
                assert ok.headers.get("Accept") == "application/sdp"
                transport.sendto(request("INVITE", port, "bad").replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"),
                                 ua.local_address)
                assert (await next_response(peer)).status_code == 400
                transport.sendto(b"\xff\xfe total garbage", ua.local_address)
                transport.sendto(request("BYE", port, "b1", to_tag=";tag=unknown"), ua.local_address)
                assert (await next_response(peer)).status_code == 481
                # still serving: a real INVITE gets 100 Trying and surfaces as a call
                offer = make_offer("127.0.0.1", 40000).serialize()
                transport.sendto(request("INVITE", port, "i1", body=offer), ua.local_address)
                assert (await next_response(peer)).status_code == 100
                transport.sendto(request("INVITE", port, "i1", body=offer), ua.local_address)  # duplicate
                incoming = await asyncio.wait_for(ua.incoming(), 2)
                assert incoming.call_id == "raw-1"
                await incoming.reject(603)
                assert (await next_response(peer, 603)).reason == "Decline"
                await asyncio.sleep(0.05)
                assert ua._incoming.empty()  # the duplicate never made a second call
                # an INVITE without SDP is a delayed offer (RFC 3261 §13.2.1): a call whose offer we make
                transport.sendto(request("INVITE", port, "i2", call_id="raw-2"), ua.local_address)
                late = await asyncio.wait_for(ua.incoming(), 2)
                assert late.call_id == "raw-2" and late.offer is None
                await late.reject(486)
                assert (await next_response(peer, 486)).status_code == 486
            finally:
                transport.close()

    run(main())
    assert "Malformed" in caplog.text


def test_answer_without_ack_is_408() -> None:
    async def main() -> None:
        async with await UserAgent.create("127.0.0.1", 0, timers=FAST) as ua:
            transport, peer = await raw_peer()
            port = transport.get_extra_info("sockname")[1]
            try:
                transport.sendto(request("INVITE", port, "n1", body=make_offer("127.0.0.1", 4).serialize()),
                                 ua.local_address)
                incoming = await ua.incoming()
                with pytest.raises(CallError) as info:
                    await incoming.answer(make_answer(incoming.offer, "127.0.0.1", 42000))
                assert info.value.status_code == 408
                oks = 0
                bye = False
                while not peer.queue.empty():
                    data = peer.queue.get_nowait()
                    oks += data.startswith(b"SIP/2.0 200")
                    bye = bye or data.startswith(b"BYE ")
                assert oks >= 5 and bye  # 2xx retransmitted, then the dialog closed with BYE
            finally:
                transport.close()

    run(main())


def test_reinvite_hold_and_resume() -> None:
    async def main() -> None:
        async with await UserAgent.create("127.0.0.1", 0) as alice, await UserAgent.create("127.0.0.1", 0) as bob:
            callee = asyncio.create_task(answer_one(bob))
            call = await alice.call(bob.local_address, make_offer("127.0.0.1", 40000))
            _, bob_call = await callee
            seen = []

            def on_reinvite(offer: SessionDescription) -> SessionDescription:
                seen.append(offer.direction_of_audio)
                return make_answer(offer, "127.0.0.1", 42000)

            async def reinvite(direction: str) -> bytes:
                ep = alice.endpoint
                c = ep._calls[call.handle]
                body = make_offer("127.0.0.1", 40000, direction=direction).serialize()
                req = c.dialog.create_request("INVITE", ep._via(), contact=ep._contact(), body=body)
                transport, peer = await raw_peer()
                try:
                    transport.sendto(req.serialize(), bob.local_address)
                    ok = await next_response(peer, 200)
                    ack = c.dialog.create_request("ACK", ep._via(), cseq=req.cseq[0])
                    transport.sendto(ack.serialize(), bob.local_address)
                    await asyncio.sleep(0.05)
                    return ok.body
                finally:
                    transport.close()

            held = SessionDescription.parse(await reinvite("sendonly"))
            assert held.direction_of_audio == "recvonly" and bob_call.local_sdp.direction_of_audio == "recvonly"
            assert bob_call.remote_sdp.direction_of_audio == "sendonly"
            bob_call.on_reinvite = on_reinvite
            resumed = SessionDescription.parse(await reinvite("sendrecv"))
            assert resumed.direction_of_audio == "sendrecv" and seen == ["sendrecv"]
            assert not bob_call.ended
            await call.hangup()
            assert await bob_call.wait_ended() == "remote hangup"

    run(main())


def test_default_reinvite_answer_keeps_the_codecs_already_agreed() -> None:
    """A re-INVITE answered before the call has a handler (say, before the ACK) accepts only the codecs of the
    call's own description: an L16 call stays L16, and an offer of G.711 alone is refused with 488."""
    async def main() -> None:
        async with await UserAgent.create("127.0.0.1", 0) as alice, await UserAgent.create("127.0.0.1", 0) as bob:
            async def answer_l16() -> SipCall:
                incoming = await bob.incoming()
                return await incoming.answer(make_answer(incoming.offer, "127.0.0.1", 42000, codecs=("L16",)))

            callee = asyncio.create_task(answer_l16())
            call = await alice.call(bob.local_address, make_offer("127.0.0.1", 40000, codecs=("L16", "PCMU")))
            bob_call = await callee

            async def reinvite(codecs: Tuple[str, ...]) -> SipResponse:
                ep = alice.endpoint
                c = ep._calls[call.handle]
                body = make_offer("127.0.0.1", 40000, codecs=codecs).serialize()
                req = c.dialog.create_request("INVITE", ep._via(), contact=ep._contact(), body=body)
                transport, peer = await raw_peer()
                try:
                    transport.sendto(req.serialize(), bob.local_address)
                    response = await next_response(peer)
                    while response.status_code < 200:
                        response = await next_response(peer)
                    ack = c.dialog.create_request("ACK", ep._via(), cseq=req.cseq[0])
                    transport.sendto(ack.serialize(), bob.local_address)
                    return response
                finally:
                    transport.close()

            ok = await reinvite(("PCMU", "L16"))
            assert ok.status_code == 200
            media = SessionDescription.parse(ok.body).media[0]
            assert {enc for enc, _, _ in media.rtpmap().values()} == {"L16", "telephone-event"}
            refused = await reinvite(("PCMU",))
            assert refused.status_code == 488
            assert not bob_call.ended
            await call.hangup()

    run(main())


def test_close_hangs_up_active_calls() -> None:
    async def main() -> None:
        async with await UserAgent.create("127.0.0.1", 0) as bob:
            alice = await UserAgent.create("127.0.0.1", 0)
            callee = asyncio.create_task(answer_one(bob))
            call = await alice.call(bob.local_address, make_offer("127.0.0.1", 40000))
            _, bob_call = await callee
            await alice.close()
            await alice.close()  # idempotent
            assert call.ended and call.end_reason == "closed"
            assert await asyncio.wait_for(bob_call.wait_ended(), 2) == "remote hangup"
            with pytest.raises(CallError):
                await alice.call(bob.local_address, make_offer("127.0.0.1", 40000))

    run(main())
