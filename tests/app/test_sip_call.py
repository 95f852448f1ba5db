"""``SipCall`` / ``IncomingCall`` call control between two real ``UserAgent``s over UDP on 127.0.0.1: our own
re-INVITE (answered by the peer's default handler, refused with 488, crossed by the peer's in a 491 glare and
retried after the RFC 3261 §14.1 wait, unanswered), in-dialog INFO / REFER / NOTIFY and their ``on_request``
answers, and redirects (3xx with Contacts, seen by the caller as ``CallError.contacts``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, List, Tuple

import pytest

from pyvoip_fast.app import sip_call
from pyvoip_fast.app.useragent import IncomingCall, SipCall, TimerConfig, UserAgent
from pyvoip_fast.errors import CallError, NegotiationError
from pyvoip_fast.sip.message import SipRequest
from pyvoip_fast.sip.sdp import SessionDescription, make_answer, make_offer

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
HOST = "127.0.0.1"


def run(coro: Awaitable[Any], timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


Body = Callable[[UserAgent, UserAgent, SipCall, SipCall], Awaitable[None]]


def with_call(body: Body) -> None:
    """Run ``body(alice, bob, alice_call, bob_call)`` on an established call from alice (caller) to bob."""

    async def main() -> None:
        async with await UserAgent.create(HOST, 0, timers=FAST) as alice, \
                await UserAgent.create(HOST, 0, user="bob", timers=FAST) as bob:
            async def answer() -> SipCall:
                incoming = await bob.incoming()
                return await incoming.answer(make_answer(incoming.offer, HOST, 42000))

            answering = asyncio.create_task(answer())
            call = await alice.call(bob.local_address, make_offer(HOST, 40000, session_id=1000))
            await body(alice, bob, call, await answering)

    run(main())


def drop_incoming(ua: UserAgent, prefix: bytes) -> List[bytes]:
    """From now on ``ua`` never sees datagrams starting with ``prefix`` (as if the network lost them)."""
    endpoint = ua.endpoint
    real = endpoint.receive_datagram
    dropped: List[bytes] = []

    def receive(data: bytes, addr: Tuple[str, int], now: float) -> None:
        if bytes(data).startswith(prefix):
            dropped.append(bytes(data))
            return
        real(data, addr, now)

    endpoint.receive_datagram = receive  # type: ignore[method-assign]
    return dropped


# ---------------------------------------------------------------------------------------------------------------
# our re-INVITE


def test_reinvite_is_answered_by_the_peers_default_handler(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pyvoip_fast.app.useragent")

    async def body(alice: UserAgent, bob: UserAgent, call: SipCall, bob_call: SipCall) -> None:
        before = call.local_sdp.origin
        held = make_offer(HOST, 40000, direction="sendonly")
        answer = await call.reinvite(held)
        assert answer.direction_of_audio == "recvonly"
        assert call.local_sdp is held and call.remote_sdp is answer
        # RFC 3264 §8: the same session, the next version
        assert (held.origin.session_id, held.origin.session_version) == (before.session_id,
                                                                         before.session_version + 1)
        assert bob_call.remote_sdp.direction_of_audio == "sendonly"
        assert bob_call.local_sdp.direction_of_audio == "recvonly"
        resumed = await call.reinvite(make_offer(HOST, 40000))
        assert resumed.direction_of_audio == "sendrecv" and call.local_sdp.origin.session_version == \
            before.session_version + 2
        assert not call.ended and not bob_call.ended

    with_call(body)
    for line in ("[SIP] Sending re-INVITE to 127.0.0.1:", "[SIP] Received 200 OK (re-INVITE)",
                 "[SIP] Sending ACK"):
        assert line in caplog.text, line


def test_a_refused_reinvite_raises_and_leaves_the_call_as_it_was() -> None:
    async def body(alice: UserAgent, bob: UserAgent, call: SipCall, bob_call: SipCall) -> None:
        def refuse(offer: SessionDescription) -> SessionDescription:
            raise NegotiationError("no codec in common")

        bob_call.on_reinvite = refuse
        local, remote = call.local_sdp, call.remote_sdp
        with pytest.raises(CallError) as info:
            await call.reinvite(make_offer(HOST, 40000, codecs=("L16",)))
        assert (info.value.status_code, info.value.reason) == (488, "Not Acceptable Here")
        assert call.local_sdp is local and call.remote_sdp is remote
        status, _, _ = await call.request("INFO", body=b"still here", content_type="text/plain")
        assert status == 200 and not call.ended

    with_call(body)


def test_a_2xx_without_sdp_is_a_call_error_and_changes_nothing() -> None:
    async def body(alice: UserAgent, bob: UserAgent, call: SipCall, bob_call: SipCall) -> None:
        endpoint = bob.endpoint
        answer_reinvite = endpoint.answer_reinvite

        def answer_without_body(handle: int, now: float, **kw: Any) -> None:
            kw["body"] = b""
            answer_reinvite(handle, now, **kw)

        endpoint.answer_reinvite = answer_without_body  # type: ignore[method-assign]
        local = call.local_sdp
        with pytest.raises(CallError) as info:
            await call.reinvite(make_offer(HOST, 40000, direction="sendonly"))
        assert info.value.status_code == 0 and "not usable SDP" in str(info.value)
        assert call.local_sdp is local and not call.ended

    with_call(body)


def test_glare_each_side_gets_491_and_the_retry_succeeds(monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Both re-INVITE at once: each gets 491 (§14.2); the callee (not the Call-ID's owner) retries first, the
    caller after its longer wait (§14.1, shortened here through ``GLARE_WAIT``), and both changes go through."""
    monkeypatch.setattr(sip_call, "GLARE_WAIT", {True: (0.4, 0.5), False: (0.0, 0.1)})
    caplog.set_level(logging.INFO, logger="pyvoip_fast.app.useragent")

    async def body(alice: UserAgent, bob: UserAgent, call: SipCall, bob_call: SipCall) -> None:
        ours = make_offer(HOST, 40000, direction="sendonly")
        theirs = make_offer(HOST, 42000, direction="sendonly")
        a, b = await asyncio.gather(call.reinvite(ours), bob_call.reinvite(theirs))
        assert a.direction_of_audio == "recvonly" and b.direction_of_audio == "recvonly"
        # bob's change went first (his wait is shorter), then alice's, answered by bob: both descriptions agree
        assert call.local_sdp is ours and bob_call.remote_sdp.serialize() == ours.serialize()
        assert bob_call.local_sdp.serialize() == a.serialize() == call.remote_sdp.serialize()
        # alice answered bob's offer (version n+1) before her retry went out: her offer is n+2 (RFC 3264 §8)
        assert ours.origin.session_id == 1000 and ours.origin.session_version == 1002

    with_call(body)
    assert caplog.text.count("[SIP] Received 491 Request Pending (re-INVITE)") == 2
    assert caplog.text.count("re-INVITE crossed the peer's (491)") == 2
    assert caplog.text.count("[SIP] Sending re-INVITE to") == 4


def test_unanswered_reinvite_raises_408() -> None:
    async def body(alice: UserAgent, bob: UserAgent, call: SipCall, bob_call: SipCall) -> None:
        drop_incoming(bob, b"INVITE ")
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(CallError) as info:
            await call.reinvite(make_offer(HOST, 40000, direction="sendonly"))
        assert info.value.status_code == 408
        assert 64 * FAST.t1 - 0.1 <= loop.time() - start < 64 * FAST.t1 + 2.0  # timer B
        with pytest.raises(CallError) as quick:
            await call.reinvite(make_offer(HOST, 40000, direction="sendonly"), timeout=0.2)
        assert quick.value.status_code == 408
        assert not call.ended

    with_call(body)


# ---------------------------------------------------------------------------------------------------------------
# INFO, REFER, NOTIFY in the call


def test_info_reaches_the_peers_on_request_and_its_answer_comes_back() -> None:
    async def body(alice: UserAgent, bob: UserAgent, call: SipCall, bob_call: SipCall) -> None:
        seen: List[SipRequest] = []

        def on_request(request: SipRequest) -> Tuple[int, List[Tuple[str, str]]]:
            seen.append(request)
            return 200, [("X-Digit", "5")]

        bob_call.on_request = on_request
        status, reason, response = await call.request(
            "INFO", body=b"Signal=5\r\nDuration=160\r\n", content_type="application/dtmf-relay")
        assert (status, reason) == (200, "OK")
        assert response is not None and response.headers.get("X-Digit") == "5"
        assert len(seen) == 1 and seen[0].method == "INFO"
        assert seen[0].body == b"Signal=5\r\nDuration=160\r\n" and seen[0].content_type == "application/dtmf-relay"
        assert seen[0].call_id == bob_call.call_id

    with_call(body)


def test_default_answers_refer_603_notify_481_info_200() -> None:
    async def body(alice: UserAgent, bob: UserAgent, call: SipCall, bob_call: SipCall) -> None:
        status, reason, _ = await call.request("REFER", headers=[("Refer-To", "<sip:carol@127.0.0.1:5070>")])
        assert (status, reason) == (603, "Decline")
        status, _, _ = await call.request("NOTIFY", headers=[("Event", "refer"), ("Subscription-State",
                                                                                   "terminated")],
                                          body=b"SIP/2.0 200 OK\r\n", content_type="message/sipfrag")
        assert status == 481
        status, _, _ = await call.request("INFO")
        assert status == 200
        with pytest.raises(ValueError):
            await call.request("BYE")

    with_call(body)


@pytest.mark.parametrize("handler", ["raises", "bad status", "not a tuple"])
def test_a_broken_on_request_answers_500_and_the_call_goes_on(handler: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="pyvoip_fast.app.useragent")

    async def body(alice: UserAgent, bob: UserAgent, call: SipCall, bob_call: SipCall) -> None:
        def on_request(request: SipRequest) -> Any:
            if handler == "raises":
                raise RuntimeError("bug in the application")
            return (99, []) if handler == "bad status" else "OK"

        bob_call.on_request = on_request
        status, _, _ = await call.request("INFO")
        assert status == 500
        bob_call.on_request = None
        assert (await call.request("INFO"))[0] == 200
        assert not call.ended and not bob_call.ended

    with_call(body)
    assert "on_request failed for INFO: answering 500" in caplog.text


def test_request_returns_408_when_unanswered_and_raises_once_the_call_ended() -> None:
    async def body(alice: UserAgent, bob: UserAgent, call: SipCall, bob_call: SipCall) -> None:
        drop_incoming(bob, b"INFO ")
        assert await call.request("INFO", timeout=0.2) == (408, "Request Timeout", None)
        pending = asyncio.create_task(call.request("INFO"))
        await asyncio.sleep(0.1)
        await bob_call.hangup()
        with pytest.raises(CallError) as info:
            await pending
        assert info.value.status_code == 481
        with pytest.raises(CallError):
            await call.request("INFO")
        with pytest.raises(CallError):
            await call.reinvite(make_offer(HOST, 40000))

    with_call(body)


# ---------------------------------------------------------------------------------------------------------------
# the callee's early choices


def test_redirect_302_reaches_the_caller_as_call_error_with_contacts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pyvoip_fast.app.useragent")

    async def main() -> None:
        async with await UserAgent.create(HOST, 0, timers=FAST) as alice, \
                await UserAgent.create(HOST, 0, user="bob", timers=FAST) as bob:
            async def redirect() -> IncomingCall:
                incoming = await bob.incoming()
                with pytest.raises(ValueError):
                    await incoming.redirect([])
                with pytest.raises(ValueError):
                    await incoming.redirect(["sip:carol@127.0.0.1:5070"], code=486)
                with pytest.raises(ValueError):
                    await incoming.ring(200)
                await incoming.ring(183)
                await incoming.redirect(["sip:carol@127.0.0.1:5070", '"Dave" <sip:dave@127.0.0.1:5071>'])
                return incoming

            redirecting = asyncio.create_task(redirect())
            with pytest.raises(CallError) as info:
                await alice.call(bob.local_address, make_offer(HOST, 40000))
            assert (info.value.status_code, info.value.reason) == (302, "Moved Temporarily")
            assert info.value.contacts == ("<sip:carol@127.0.0.1:5070>", '"Dave" <sip:dave@127.0.0.1:5071>')
            incoming = await redirecting
            with pytest.raises(CallError):
                await incoming.redirect(["sip:carol@127.0.0.1:5070"])  # decided already

            async def refuse() -> None:
                await (await bob.incoming()).reject(486)

            refusing = asyncio.create_task(refuse())
            with pytest.raises(CallError) as busy:
                await alice.call(bob.local_address, make_offer(HOST, 40000))
            await refusing
            assert busy.value.status_code == 486 and busy.value.contacts == ()

    run(main())
    assert "[SIP] Received 183 Session Progress" in caplog.text
    assert "[SIP] Sending 302 Moved Temporarily" in caplog.text
