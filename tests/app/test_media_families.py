"""Address families and failures while answering, on real sockets: an IPv6 media offer to a phone signalling
over IPv4 gets IPv6 media (and audio flows over it); whatever fails on our side while answering still gives
the INVITE a final response, never a caller left retransmitting.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Tuple

import pytest

from helpers import require_ipv6
from mediakit import wait_for
from pyvoip_fast.app.phone import Phone, _media_host
from pyvoip_fast.app.useragent import TimerConfig, UserAgent
from pyvoip_fast.errors import CallError
from pyvoip_fast.rtp import build_packet
from pyvoip_fast.sip.media_address import MediaAddressRefused
from pyvoip_fast.sip.sdp import SessionDescription, make_offer

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def test_an_ipv6_offer_to_a_phone_on_ipv4_gets_ipv6_media() -> None:
    require_ipv6()

    async def main() -> Tuple[str, int]:
        rtp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        rtp.bind(("::1", 0))
        try:
            async with Phone("127.0.0.1", 0, timers=FAST) as bob, \
                    await UserAgent.create("127.0.0.1", 0, timers=FAST) as ua:
                answering = asyncio.create_task(bob.answer())
                sip = await ua.call(bob.local_address, make_offer("::1", rtp.getsockname()[1]))
                call = await answering
                answer: SessionDescription = sip.remote_sdp
                media = answer.first_audio()
                assert media is not None
                conn = answer.media_connection(media)
                assert conn is not None
                for seq in range(10):  # our RTP over IPv6 reaches the phone that signals over IPv4
                    rtp.sendto(build_packet(0, seq, seq * 160, 0x1234, b"\xff" * 160), ("::1", media.port))
                    await asyncio.sleep(0.02)
                assert await wait_for(lambda: call.stats.packets_received >= 10, 3.0)
                await sip.hangup()
                await call.wait_done(timeout=5)
                return conn.host, call.stats.packets_received
        finally:
            rtp.close()

    host, received = asyncio.run(asyncio.wait_for(main(), 20))
    assert host == "::1" and received >= 10


def test_media_host_follows_the_offers_family() -> None:
    v4 = make_offer("127.0.0.1", 4000)
    v6 = make_offer("::1", 4000)
    assert _media_host("127.0.0.1", v4) == "127.0.0.1"
    assert _media_host("127.0.0.1", v6) == "::1"
    assert _media_host("::1", v4) == "127.0.0.1"
    assert _media_host("::1", v6) == "::1"
    try:
        routed = _media_host("127.0.0.1", make_offer("2001:db8::7", 4000))
    except MediaAddressRefused as exc:  # no IPv6 route on this machine: refused, with the reason
        assert "IPv6" in str(exc)
    else:
        assert ":" in routed  # the source address of the route to it


def test_a_failure_on_our_side_still_answers_the_invite() -> None:
    """A bug-like failure while answering (an unknown media option) answers 500 at once; the caller does not
    wait for Timer B."""

    async def main() -> Tuple[Any, float]:
        async with Phone("127.0.0.1", 0, timers=FAST, media_options={"no_such_option": 1}) as bob, \
                Phone("127.0.0.1", 0, timers=FAST) as alice:
            answering = asyncio.create_task(bob.answer())
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(CallError) as err:
                await alice.call(bob.local_address)
            with pytest.raises(TypeError):
                await answering
            return err.value.status_code, loop.time() - t0

    code, took = asyncio.run(asyncio.wait_for(main(), 20))
    assert code == 500 and took < 2.0
