"""PBX and trunk flows through a real Kamailio proxy (started by the tests, ``tests/kamailio_harness.py``), where the
proxy matters: PRACK, UPDATE and session refreshes must follow the route set the proxy's Record-Route made.

Two registered phones call each other by address of record: a prompt played as reliable early media (PRACK through
the proxy) is found in the caller's recording; UPDATE with and without SDP after the answer; a 4-second session
timer refreshed through the proxy while the call stays up; a delayed offer.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Iterator, Tuple

import numpy as np
import pytest
import soundfile as sf

from kamailio_harness import Kamailio
from mediakit import RATE, g711_roundtrip, run, snr_db, speech_like
from pyvoip_fast.app.account import Account
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.sip.sdp import make_offer

pytestmark = pytest.mark.interop

FAST = TimerConfig(t1=0.1, t2=0.8, t4=1.0)
USERS = {"alice": "alice-secret", "bob": "bob-secret"}


@pytest.fixture(scope="module")
def kam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    with Kamailio(tmp_path_factory.mktemp("kamailio-pbx"), users=USERS) as server:
        yield server


def _account(kam: Kamailio, user: str) -> Account:
    return Account(f"sip:{user}@{kam.domain}", password=USERS[user], proxy=f"sip:{kam.host}:{kam.udp_port}",
                   transport="udp", ca_file=str(kam.ca_file))


def _through(kam: Kamailio, caller_kw: dict, callee_kw: dict, hold: float = 0.4,  # type: ignore[type-arg]
             session: int = 0, during: Any = None) -> Tuple[Any, Any, Any]:
    async def main() -> Tuple[Any, Any, Any]:
        async with Phone("127.0.0.1", 0, timers=FAST, account=_account(kam, "alice")) as alice, \
                Phone("127.0.0.1", 0, timers=FAST, account=_account(kam, "bob")) as bob:
            if session:
                for phone in (alice, bob):
                    assert phone.ua is not None
                    phone.ua.endpoint.session_expires = session
                    phone.ua.endpoint.min_se = session  # below RFC 4028's 90 s: a test may
            answering = asyncio.create_task(bob.answer(**callee_kw))
            call = await alice.call(f"sip:bob@{kam.domain}", hangup_when_done=False, **caller_kw)
            answered = await asyncio.wait_for(answering, 15)
            extra = await during(call) if during is not None else None
            await asyncio.sleep(hold)
            up = not call.ended and not answered.ended
            await call.hangup()
            await answered.wait_done(timeout=5)
            return call, answered, (up, extra)

    return run(main())  # type: ignore[no-any-return]


def test_reliable_early_media_through_the_proxy(kam: Kamailio, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    pcm = speech_like(1.2, seed=31)
    prompt = tmp_path / "prompt.wav"
    sf.write(prompt, pcm, RATE, subtype="PCM_16")
    record = tmp_path / "heard.wav"
    call, _, _ = _through(kam, {"record": record}, {"early": prompt})
    text = caplog.text
    assert f"Sending PRACK to {kam.host}:{kam.udp_port}" in text  # the route set: through Kamailio
    assert "Sending 183 Session Progress with SDP (reliable" in text and "Received PRACK" in text
    assert call.stats.early_media_packets >= 50
    heard, _ = sf.read(record, dtype="int16")
    ref = g711_roundtrip(pcm)
    corr = np.correlate(heard.astype(float), ref[400:4400].astype(float), mode="valid")
    start = int(np.argmax(corr)) - 400
    got = heard[start + 400: start + 400 + 6400]
    assert len(got) == 6400 and snr_db(ref[400:6800], got) > 20


def test_update_with_and_without_sdp_through_the_proxy(kam: Kamailio, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def updates(call: Any) -> Tuple[Any, Any]:
        sip = call.sip
        offer = make_offer("127.0.0.1", sip.local_sdp.first_audio().port)
        answer = await asyncio.wait_for(sip.update(offer), 10)
        refresh = await asyncio.wait_for(sip.update(), 10)
        return answer, refresh

    _, _, (up, (answer, refresh)) = _through(kam, {}, {}, during=updates)
    assert answer is not None and answer.first_audio() is not None and refresh is None
    assert up and caplog.text.count(f"Sending UPDATE to {kam.host}:{kam.udp_port}") == 2


def test_a_short_session_timer_is_refreshed_through_the_proxy(kam: Kamailio,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    _, _, (up, _) = _through(kam, {}, {}, hold=5.0, session=4)
    assert up, caplog.text[-3000:]
    assert caplog.text.count("(session refresh)") >= 2 and "Session expired" not in caplog.text


def test_a_delayed_offer_through_the_proxy(kam: Kamailio) -> None:
    from mediakit import ArraySource

    tone = np.round(np.sin(2 * np.pi * 600 * np.arange(RATE) / RATE) * 9000).astype(np.int16)
    call, answered, (up, _) = _through(kam, {"late_offer": True}, {"source": ArraySource(tone)}, hold=0.8)
    assert up and call.params.encoding == answered.params.encoding
    assert call.stats.packets_received > 20
