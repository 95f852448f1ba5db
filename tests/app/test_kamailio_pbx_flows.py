"""PBX and trunk flows between two registered phones through a real Kamailio (``tests/kamailio_harness.py``), where
the proxy matters: Kamailio record-routes the INVITE, so every later request of the dialog (PRACK, UPDATE, session
refreshes, ACK, BYE) must be sent to the proxy along the route set, not straight to the peer's Contact.

- early media with 100rel: the callee's reliable 183 carries a prompt; the caller's PRACK goes to Kamailio (our log
  and Kamailio's own), and the prompt is found intact in the caller's recording before the 200 OK;
- UPDATE after the answer, both ways: with an SDP offer (a hold and a resume, answered by the peer) and without
  (a plain refresh, 2xx, no body);
- a 4-second session timer on both phones: the caller refreshes with UPDATE through the proxy every 2 s, the call
  stays up past the interval, and ends with our hang-up, not with "session expired";
- a delayed offer: the 200 OK carries the callee's offer, the ACK (through the proxy) the answer; audio both ways.

Media goes straight between the phones (this Kamailio relays no RTP).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional

import numpy as np
import pytest
import soundfile as sf

from kamailio_harness import Kamailio
from mediakit import RATE, ArraySource, ListSink, g711_roundtrip, run, snr_db, speech_like
from pyvoip_fast.app.account import Account
from pyvoip_fast.app.phone import CallEnd, Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.audio import ToneSource
from pyvoip_fast.sip.sdp import make_offer

pytestmark = pytest.mark.interop

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
USERS = {"carol": "carol-secret", "dave": "dave-secret"}


@pytest.fixture(scope="module")
def kam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    with Kamailio(tmp_path_factory.mktemp("kamailio-pbx-flows"), users=USERS) as server:
        yield server


def _account(kam: Kamailio, user: str) -> Account:
    return Account(f"sip:{user}@{kam.domain}", password=USERS[user], proxy=f"sip:{kam.host}:{kam.udp_port}",
                   transport="udp")


def _proxy_addr(kam: Kamailio) -> str:
    return f"{kam.host}:{kam.udp_port}"


def _tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return np.round(np.sin(2 * np.pi * freq * t) * 9000).astype(np.int16)


def _peak_hz(pcm: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm)))) ** 2
    return float(np.fft.rfftfreq(len(pcm), 1 / RATE)[int(np.argmax(power))])


def _route_set(phone: Phone, call: Any) -> List[str]:
    assert phone.ua is not None
    return [str(r) for r in phone.ua.endpoint._calls[call.sip.handle].dialog.route_set]


@dataclass
class Outcome:
    caller: Any  # the caller's Call
    callee: Any  # the callee's Call
    up: bool  # both sides still up right before our hang-up
    extra: Any  # what ``during`` returned
    caller_routes: List[str]
    callee_routes: List[str]
    kamailio: Dict[str, int]  # requests Kamailio logged during the call, by method


def _through(kam: Kamailio, *, caller_kw: Optional[Dict[str, Any]] = None,
             callee_kw: Optional[Dict[str, Any]] = None, hold: float = 0.3, session: int = 0,
             during: Optional[Callable[[Any, Any], Awaitable[Any]]] = None) -> Outcome:
    """carol calls dave by AOR through Kamailio, ``during(caller_call, callee_call)`` runs once both are up, the call
    is held ``hold`` seconds more and carol hangs up."""
    methods = ("INVITE", "PRACK", "ACK", "UPDATE", "BYE")
    before = {m: len(kam.requests(m)) for m in methods}

    async def main() -> Outcome:
        async with Phone("127.0.0.1", 0, timers=FAST, account=_account(kam, "carol")) as carol, \
                Phone("127.0.0.1", 0, timers=FAST, account=_account(kam, "dave")) as dave:
            if session:
                for phone in (carol, dave):
                    assert phone.ua is not None
                    phone.ua.endpoint.session_expires = session
                    phone.ua.endpoint.min_se = session  # below RFC 4028's 90 s: allowed, for tests
            answering = asyncio.ensure_future(dave.answer(**(callee_kw or {})))
            try:
                call = await asyncio.wait_for(
                    carol.call(f"sip:dave@{kam.domain}", hangup_when_done=False, **(caller_kw or {})), 15)
                answered = await asyncio.wait_for(answering, 15)
            finally:
                if not answering.done():
                    answering.cancel()
            routes = _route_set(carol, call), _route_set(dave, answered)
            extra = await during(call, answered) if during is not None else None
            await asyncio.sleep(hold)
            up = not call.ended and not answered.ended
            await call.hangup()
            await answered.wait_done(timeout=5)
        await asyncio.sleep(0.1)  # Kamailio writes its log line of the last request
        counts = {m: len(kam.requests(m)) - before[m] for m in methods}
        return Outcome(call, answered, up, extra, routes[0], routes[1], counts)

    return run(asyncio.wait_for(main(), 30))  # type: ignore[no-any-return]


def _assert_record_routed(kam: Kamailio, out: Outcome) -> None:
    """Both dialogs hold Kamailio's Record-Route (loose routing) as their route set."""
    for routes in (out.caller_routes, out.callee_routes):
        assert len(routes) == 1 and f"{kam.host}:{kam.udp_port}" in routes[0] and ";lr" in routes[0], routes


def test_reliable_early_media_is_pracked_through_the_proxy_and_recorded(
        kam: Kamailio, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    pcm = speech_like(1.2, seed=41)
    prompt = tmp_path / "prompt.wav"
    sf.write(prompt, pcm, RATE, subtype="PCM_16")
    record = tmp_path / "heard.wav"
    quiet = ToneSource(1000.0, amplitude=0.005, duration=0.5, rate=RATE)
    out = _through(kam, caller_kw={"record": record}, callee_kw={"early": prompt, "source": quiet})
    text = caplog.text
    assert "Sending 183 Session Progress with SDP (reliable" in text
    # the PRACK follows the route set the 183's Record-Route gave: to Kamailio, which relays it to the callee
    assert f"Sending PRACK to {_proxy_addr(kam)} (RSeq" in text, text
    assert "Received 200 OK (PRACK)" in text
    assert out.kamailio["PRACK"] == 1 and "in-dialog PRACK routed to" in kam.log_text(), out.kamailio
    _assert_record_routed(kam, out)
    # the prompt was heard before the answer, and is in the caller's recording intact
    assert "[RTP] Early media from 127.0.0.1:" in text
    assert out.caller.stats.early_media_packets >= 50, out.caller.stats  # 1.2 s = 60 packets
    heard, rate = sf.read(record, dtype="int16")
    assert rate == RATE
    ref = g711_roundtrip(pcm)
    corr = np.correlate(heard.astype(np.float64), ref.astype(np.float64), mode="valid")
    lag = int(np.argmax(corr))
    got = heard[lag: lag + len(ref)]
    assert len(got) == len(ref) and snr_db(ref[400:-400], got[400:-400]) > 20
    assert out.up and out.caller.end_reason == CallEnd.LOCAL_HANGUP


def test_update_with_and_without_sdp_through_the_proxy_both_ways(
        kam: Kamailio, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def updates(call: Any, answered: Any) -> Dict[str, Any]:
        sip, port = call.sip, call.media.local_rtp_port
        hold = make_offer("127.0.0.1", port, codecs=("PCMU",), direction="sendonly")
        on_hold = await asyncio.wait_for(sip.update(hold), 10)
        held_direction = answered.params.direction
        resume = make_offer("127.0.0.1", port, codecs=("PCMU",))
        resumed = await asyncio.wait_for(sip.update(resume), 10)
        refresh = await asyncio.wait_for(sip.update(), 10)
        callee_refresh = await asyncio.wait_for(answered.sip.update(), 10)  # the callee's way: the reversed route
        return {"on_hold": on_hold, "held_direction": held_direction, "resumed": resumed, "refresh": refresh,
                "callee_refresh": callee_refresh, "callee_port": answered.media.local_rtp_port,
                "remote_sdp": sip.remote_sdp}

    out = _through(kam, during=updates)
    got = out.extra
    # the offers were answered by the callee through the proxy: hold mirrored, then resumed, its own port
    assert got["on_hold"].first_audio().direction == "recvonly" and got["held_direction"] == "recvonly"
    assert got["resumed"].first_audio().direction in (None, "sendrecv")
    assert got["resumed"].first_audio().port == got["callee_port"]
    assert got["remote_sdp"] is got["resumed"]
    # UPDATEs without a body: a 2xx, no SDP
    assert got["refresh"] is None and got["callee_refresh"] is None
    text = caplog.text
    assert text.count(f"Sending UPDATE to {_proxy_addr(kam)}") == 4, text
    assert text.count("Received 200 OK (UPDATE)") == 4
    assert out.kamailio["UPDATE"] == 4 and "in-dialog UPDATE routed to" in kam.log_text(), out.kamailio
    _assert_record_routed(kam, out)
    assert out.up and out.caller.end_reason == CallEnd.LOCAL_HANGUP


def test_a_short_session_timer_is_refreshed_through_the_proxy(
        kam: Kamailio, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    out = _through(kam, hold=5.5, session=4)
    text = caplog.text
    # the callee grants 4 s and leaves the refreshes to the caller (it supports timers)
    assert "Session timer: 4 s, refreshed by the peer" in text and "Session timer: 4 s, refreshed by us" in text
    refreshes = text.count(f"Sending UPDATE to {_proxy_addr(kam)} (session refresh)")
    assert refreshes >= 2 and refreshes == text.count("(session refresh)"), text  # every one through the proxy
    assert text.count("Received 200 OK (UPDATE)") >= 2
    assert out.kamailio["UPDATE"] == refreshes, out.kamailio
    # past the 4-second interval (and the callee's expiry at 4 - 4/3 s), both sides still up
    assert out.up, text[-3000:]
    assert "Session expired" not in text
    assert out.caller.end_reason == CallEnd.LOCAL_HANGUP
    assert out.kamailio["BYE"] == 1


def test_a_delayed_offer_through_the_proxy(kam: Kamailio, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    heard_by_caller, heard_by_callee = ListSink(), ListSink()
    out = _through(kam, hold=0.3,
                   caller_kw={"late_offer": True, "source": ArraySource(_tone(1.0, 1100.0)),
                              "sink": heard_by_caller},
                   callee_kw={"source": ArraySource(_tone(1.0, 600.0)), "sink": heard_by_callee},
                   during=lambda call, answered: asyncio.sleep(1.0))
    assert out.up and out.caller.params.encoding == out.callee.params.encoding == "PCMU"
    assert "Delayed offer" not in caplog.text  # no failure path
    # the callee's RTP reached the address our answer in the ACK (relayed by Kamailio) gave, and ours reached it
    assert out.kamailio["ACK"] >= 1 and "in-dialog ACK routed to" in kam.log_text(), out.kamailio
    assert out.caller.stats.packets_received > 20 and out.callee.stats.packets_received > 20
    assert abs(_peak_hz(heard_by_caller.pcm[800:6400]) - 600.0) < 20
    assert abs(_peak_hz(heard_by_callee.pcm[800:6400]) - 1100.0) < 20
    _assert_record_routed(kam, out)
