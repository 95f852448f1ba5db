"""Where media may go (``sip/media_address.py``), against a live phone over real sockets.

``c=IN IP4 0.0.0.0`` gets a 200 OK and not one packet (Linux delivers 0.0.0.0 to this host: a local service on the
port named in the SDP used to receive the file); multicast and broadcast get 488 with a Warning, counted as
``media_address`` refusals; a host name in ``c=`` is resolved with the event loop's resolver: one that does not
resolve gets 488 with a Warning, one whose lookup hangs gets 480 after the timeout while the phone keeps
answering other calls.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from typing import Any, List, Optional

import numpy as np
import pytest

from mediakit import ArraySource, ListSink, run
from rawsip import ack as _ack, drain as _drain, invite as _invite, udp_socket as _udp
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.sip.media_address import MediaAddressRefused, MediaAddressUnresolved
from pyvoip_fast.sip.message import SipResponse, parse_message

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


async def _final(sig: socket.socket, timeout: float = 5.0) -> SipResponse:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        for data in _drain(sig):
            msg = parse_message(data)
            if isinstance(msg, SipResponse) and msg.status_code >= 200:
                return msg
        await asyncio.sleep(0.02)
    raise AssertionError("no final response")


def test_unspecified_address_means_no_media_and_not_one_packet_reaches_this_host() -> None:
    media = _udp("127.0.0.1")  # a local service on the port the SDP names (0.0.0.0 reaches it on Linux)
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sig = _udp()
    port = media.getsockname()[1]
    try:
        rtcp.bind(("127.0.0.1", port + 1))
        rtcp.setblocking(False)
    except OSError:
        rtcp.close()
        rtcp = None  # type: ignore[assignment]

    async def main() -> Any:
        async with Phone("127.0.0.1", 0, timers=FAST) as phone:
            answering = asyncio.create_task(phone.answer(source=ArraySource(np.full(8000 * 5, 3000, np.int16))))
            call_id = secrets.token_hex(6)
            sig.sendto(_invite(sig.getsockname()[1], phone.local_address[1], "0.0.0.0", port, call_id),
                       phone.local_address)
            ok = await _final(sig)
            assert ok.status_code == 200
            sig.sendto(_ack(ok, sig.getsockname()[1], phone.local_address[1], call_id), phone.local_address)
            call = await asyncio.wait_for(answering, 5)
            assert call.params.direction == "recvonly"  # the peer wants no media from us
            await asyncio.sleep(1.5)
            await call.hangup(timeout=1.0)
            return call.stats

    try:
        stats = run(main())
        assert _drain(media) == [] and (rtcp is None or _drain(rtcp) == [])
        assert stats.packets_sent == 0
    finally:
        for s in (media, rtcp, sig):
            if s is not None:
                s.close()


@pytest.mark.parametrize("address, why", [("224.0.0.1", "multicast"), ("255.255.255.255", "not one host"),
                                          ("240.0.0.7", "reserved")])
def test_multicast_and_broadcast_media_get_488_with_a_warning(address: str, why: str) -> None:
    sig = _udp()

    async def main() -> Any:
        async with Phone("127.0.0.1", 0, timers=FAST) as phone:
            answering = asyncio.create_task(phone.answer(source=ArraySource(np.zeros(800, np.int16))))
            sig.sendto(_invite(sig.getsockname()[1], phone.local_address[1], address, 40000, secrets.token_hex(6)),
                       phone.local_address)
            final = await _final(sig)
            with pytest.raises(MediaAddressRefused):
                await asyncio.wait_for(answering, 5)
            assert phone.ua is not None
            return final, phone.ua.endpoint.admission.snapshot()

    try:
        final, counters = run(main())
    finally:
        sig.close()
    assert final.status_code == 488
    warning = final.headers.get("Warning") or ""
    assert warning.startswith("399 ") and address in warning and why in warning
    assert counters["media_address"] == 1


def test_a_media_host_name_is_resolved_without_blocking_and_a_hung_lookup_gets_480() -> None:
    """The loop's resolver is replaced by one that never answers for ``slow.example``: that call gets 480 after
    ``media_dns_timeout`` while a second call, arriving meanwhile, is answered and carries audio; a name that
    does not resolve at all gets 488 with a Warning."""
    sig, sig2, sig3 = _udp(), _udp(), _udp()
    tone = np.round(np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000) * 12000).astype(np.int16)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        real = loop.getaddrinfo

        async def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host == "slow.example":
                await asyncio.sleep(3600)
            if host == "nowhere.invalid":
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return await real(host, *args, **kwargs)

        loop.getaddrinfo = resolver  # type: ignore[method-assign]
        async with Phone("127.0.0.1", 0, timers=FAST) as phone, Phone("127.0.0.1", 0, timers=FAST) as caller:
            phone.media_dns_timeout = 3.0
            first = asyncio.create_task(phone.answer(source=ArraySource(np.zeros(800, np.int16))))
            sig.sendto(_invite(sig.getsockname()[1], phone.local_address[1], "slow.example", 40000,
                               secrets.token_hex(6)), phone.local_address)
            await asyncio.sleep(0.2)
            # meanwhile: a real call is answered and its audio arrives
            heard = ListSink()
            second = asyncio.create_task(phone.answer(sink=heard))
            started = loop.time()
            call = await caller.call(phone.local_address, source=ArraySource(tone))
            answered = await asyncio.wait_for(second, 5)
            assert loop.time() - started < 2.0  # not held up by the hung lookup (3 s)
            final = await _final(sig)
            with pytest.raises(MediaAddressUnresolved):
                await first
            await call.wait_done()
            await answered.wait_done()
            third = asyncio.create_task(phone.answer(source=ArraySource(np.zeros(800, np.int16))))
            sig3.sendto(_invite(sig3.getsockname()[1], phone.local_address[1], "nowhere.invalid", 40000,
                                secrets.token_hex(6)), phone.local_address)
            unresolved = await _final(sig3)
            with pytest.raises(MediaAddressRefused):
                await third
            return final, unresolved, answered.stats, heard

    try:
        final, unresolved, stats, heard = run(main())
    finally:
        for s in (sig, sig2, sig3):
            s.close()
    assert final.status_code == 480 and "slow.example" in (final.headers.get("Warning") or "")
    assert unresolved.status_code == 488 and "nowhere.invalid" in (unresolved.headers.get("Warning") or "")
    assert stats.packets_received == 50 and np.abs(heard.pcm).max() > 5000


def test_a_media_host_name_that_resolves_is_used() -> None:
    """``c=IN IP4 localhost``: looked up with the loop's resolver and the media goes to what it names."""
    sig = _udp()
    media = _udp()

    async def main() -> Any:
        async with Phone("127.0.0.1", 0, timers=FAST) as phone:
            answering = asyncio.create_task(phone.answer(source=ArraySource(np.full(1600, 3000, np.int16))))
            call_id = secrets.token_hex(6)
            sig.sendto(_invite(sig.getsockname()[1], phone.local_address[1], "localhost", media.getsockname()[1],
                               call_id), phone.local_address)
            ok = await _final(sig)
            sig.sendto(_ack(ok, sig.getsockname()[1], phone.local_address[1], call_id), phone.local_address)
            call = await asyncio.wait_for(answering, 5)
            await asyncio.sleep(0.5)
            await call.hangup(timeout=0.5)
            return ok, call.params

    try:
        ok, params = run(main())
        got: Optional[List[bytes]] = _drain(media)
    finally:
        sig.close()
        media.close()
    assert ok.status_code == 200 and params.remote_rtp[0] == "127.0.0.1"
    assert got and len(got) >= 5


def test_a_phone_on_a_host_name_resolves_it_once_without_blocking_and_calls_by_address() -> None:
    """``Phone("localhost")``: the name is looked up by the loop when the SIP socket is bound; media sockets and
    the SDP then use the address (the media session never resolves a name, and never blocks the loop)."""
    tone = np.full(1600, 3000, np.int16)

    async def main() -> Any:
        async with Phone("localhost", 0, timers=FAST) as bob, Phone("localhost", 0, timers=FAST) as alice:
            assert bob.host == bob.local_address[0] and bob.host in ("127.0.0.1", "::1")
            heard = ListSink()
            answering = asyncio.create_task(bob.answer(sink=heard))
            call = await alice.call(bob.local_address, source=ArraySource(tone))
            bob_call = await answering
            await call.wait_done()
            await bob_call.wait_done()
            return bob_call.stats

    stats = run(main())
    assert stats.packets_received == 10


def test_a_sip_uri_host_that_never_resolves_fails_the_call_after_the_dns_timeout(monkeypatch: Any) -> None:
    """A host name in a SIP URI is resolved with the loop's resolver under ``DNS_TIMEOUT``: a lookup that never
    answers fails that call with a clear TransportError, and the same phone keeps placing other calls meanwhile."""
    from pyvoip_fast.app import sip_transport
    from pyvoip_fast.errors import TransportError

    monkeypatch.setattr(sip_transport, "DNS_TIMEOUT", 1.0)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        real = loop.getaddrinfo

        async def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host == "hung.example":
                await asyncio.sleep(3600)
            return await real(host, *args, **kwargs)

        loop.getaddrinfo = resolver  # type: ignore[method-assign]
        async with Phone("127.0.0.1", 0, timers=FAST) as callee, Phone("127.0.0.1", 0, timers=FAST) as caller:
            started = loop.time()
            hung = asyncio.create_task(caller.call("sip:bob@hung.example:5060", source=ArraySource(
                np.zeros(800, np.int16))))
            await asyncio.sleep(0.1)
            answering = asyncio.create_task(callee.answer(source=ArraySource(np.zeros(800, np.int16))))
            quiet = ArraySource(np.zeros(800, np.int16))
            ok = await asyncio.wait_for(caller.call(callee.local_address, source=quiet), 3)
            assert loop.time() - started < 1.0  # placed and answered while the other lookup hangs
            with pytest.raises(TransportError, match="hung.example.*no answer within 1 s"):
                await asyncio.wait_for(hung, 5)
            failed_after = loop.time() - started
            await ok.wait_done()
            await (await answering).wait_done()
            return failed_after

    failed_after = run(main())
    assert 0.9 <= failed_after < 3.0
