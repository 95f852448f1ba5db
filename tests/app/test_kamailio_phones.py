"""pyvoip_fast against a real Kamailio registrar/proxy (started by the tests, ``tests/kamailio.py``).

Two phones register with digest auth and call each other by address of record through Kamailio over UDP, TCP and
TLS (a test CA made by the test, certificate verification on), with the audio checked at both ends and the BYE
seen passing through Kamailio (Record-Route). Also: SHA-256 challenges, a wrong password that ends with exit
status 8 after one retry (no storm), a short registration refreshed on time after a 423, unregistration on exit,
and the command line's ``listen`` / ``call`` with ``--account``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Tuple

import numpy as np
import pytest

from kamailio_harness import Kamailio
from mediakit import ArraySource, ListSink, run
from pyvoip_fast.app.account import Account
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.errors import AuthenticationError, RegistrationError
from pyvoip_fast.sip.registration import RegistrationState

pytestmark = pytest.mark.interop

FAST = TimerConfig(t1=0.1, t2=0.8, t4=1.0)
USERS = {"alice": "alice-secret", "bob": "bob-secret"}


@pytest.fixture(scope="module")
def kam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    with Kamailio(tmp_path_factory.mktemp("kamailio"), users=USERS) as server:
        yield server


@pytest.fixture(scope="module")
def kam_sha256(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    with Kamailio(tmp_path_factory.mktemp("kamailio256"), users=USERS, algorithm="SHA-256") as server:
        yield server


def _proxy(kam: Kamailio, transport: str) -> str:
    port = {"udp": kam.udp_port, "tcp": kam.tcp_port, "tls": kam.tls_port}[transport]
    suffix = "" if transport == "udp" else f";transport={transport}"
    return f"sip:{kam.host}:{port}{suffix}"


def _account(kam: Kamailio, user: str, transport: str = "udp", **kw: Any) -> Account:
    kw.setdefault("password", USERS[user])
    kw.setdefault("ca_file", str(kam.ca_file))
    return Account(f"sip:{user}@{kam.domain}", proxy=_proxy(kam, transport), transport=transport, **kw)


def _tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return np.round(np.sin(2 * np.pi * freq * t) * 12000).astype(np.int16)


def _peak_hz(pcm: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm)))) ** 2
    return float(np.fft.rfftfreq(len(pcm), 1 / 8000)[int(np.argmax(power))])


def _call_through(kam: Kamailio, transport: str) -> Tuple[Any, Any, np.ndarray, np.ndarray, list]:
    async def main() -> Tuple[Any, Any, np.ndarray, np.ndarray, list]:
        async with Phone("127.0.0.1", 0, timers=FAST, account=_account(kam, "alice", transport)) as alice, \
                Phone("127.0.0.1", 0, timers=FAST, account=_account(kam, "bob", transport)) as bob:
            assert alice.registration is not None and alice.registration.state is RegistrationState.REGISTERED
            assert bob.registration is not None and bob.registration.expires > 0
            heard_by_bob, heard_by_alice = ListSink(), ListSink()
            answering = asyncio.create_task(bob.answer(sink=heard_by_bob, source=ArraySource(_tone(1.5, 700.0))))
            call = await alice.call(f"sip:bob@{kam.domain}", source=ArraySource(_tone(1.0, 1100.0)),
                                    sink=heard_by_alice, hangup_when_done=False)
            bob_call = await answering
            incoming_request = bob_call.sip.remote_sdp
            assert incoming_request is not None
            await asyncio.sleep(1.2)
            await call.hangup()
            await bob_call.wait_done()
            routes = list(alice.ua.endpoint._calls[call.sip.handle].dialog.route_set) if alice.ua else []
            return call.stats, bob_call.stats, heard_by_bob.pcm, heard_by_alice.pcm, routes

    return run(main())  # type: ignore[no-any-return]


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_two_phones_register_and_call_by_aor_through_kamailio(kam: Kamailio, transport: str) -> None:
    before = kam.log_text().count("BYE")
    a, b, bob_heard, alice_heard, routes = _call_through(kam, transport)
    # audio both ways, each side hears the other's tone
    assert b.packets_received >= 45 and a.packets_received >= 45, (a, b)
    assert abs(_peak_hz(bob_heard[800:6400]) - 1100.0) < 20
    assert abs(_peak_hz(alice_heard[800:6400]) - 700.0) < 20
    # the dialog's route set is Kamailio's Record-Route, and the BYE went through it
    assert routes and all(f"{kam.host}" in r and ";lr" in r for r in routes), routes
    assert kam.log_text().count("BYE") > before


def test_sha256_digest_with_kamailio(kam_sha256: Kamailio, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pyvoip_fast.app.useragent")

    async def main() -> None:
        async with Phone("127.0.0.1", 0, timers=FAST, account=_account(kam_sha256, "alice")) as alice:
            assert alice.registration is not None and alice.registration.registered
    run(main())
    assert "Authenticating as 'alice': realm 'example.test' (SHA-256)" in caplog.text


def test_wrong_password_raises_and_sends_two_registers_only(kam: Kamailio) -> None:
    async def main() -> None:
        phone = Phone("127.0.0.1", 0, timers=FAST, account=_account(kam, "alice", password="wrong"))
        with pytest.raises(RegistrationError) as info:
            await phone.start()
        assert info.value.auth and info.value.status_code in (401, 403)
        assert phone.ua is None  # the sockets were closed
    run(main())


def test_call_with_wrong_password_is_an_authentication_error(kam: Kamailio) -> None:
    async def main() -> None:
        async with Phone("127.0.0.1", 0, timers=FAST,
                         account=_account(kam, "alice", password="wrong", register=False)) as alice:
            with pytest.raises(AuthenticationError) as info:
                await alice.call(f"sip:bob@{kam.domain}", source=ArraySource(_tone(0.2, 500.0)))
            assert info.value.status_code == 407
    run(main())


def test_short_registration_is_raised_to_min_expires_and_refreshed_on_time(kam: Kamailio) -> None:
    async def main() -> Tuple[int, int, float]:
        account = _account(kam, "bob", expires=5)  # below Kamailio's min_expires: 423, then 10 s
        async with Phone("127.0.0.1", 0, timers=FAST, account=account) as bob:
            reg = bob.registration
            assert reg is not None and reg.expires == 10
            started = time.monotonic()
            while reg.refreshes == 0 and time.monotonic() - started < 8:
                await asyncio.sleep(0.1)
            elapsed = time.monotonic() - started
            return reg.expires, reg.refreshes, elapsed
    expires, refreshes, elapsed = run(main())
    # refreshed min(10 / 2, 30) = 5 s before expiry, i.e. about 5 s after the first 200 OK
    assert refreshes >= 1 and 4.0 < elapsed < 7.0, (refreshes, elapsed)


def _cli(*args: str, env: dict, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyvoip_fast", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def test_cli_wrong_password_exits_8_without_a_retry_storm(kam: Kamailio) -> None:
    env = dict(os.environ, ALICE_PW="not-the-password")
    before = len(re.findall(r"REGISTER.*alice", kam.log_text()))
    result = _cli("listen", "--bind", "127.0.0.1:0", "--account", f"sip:alice@{kam.domain}", "--password-env",
                  "ALICE_PW", "--proxy", _proxy(kam, "udp"), "--no-play", env=env)
    assert result.returncode == 8, result
    assert result.stderr.count("\n") == 1 and "registration of sip:alice@example.test failed" in result.stderr
    assert "not-the-password" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    time.sleep(0.3)
    registers = len(re.findall(r"REGISTER.*alice", kam.log_text())) - before
    assert 1 <= registers <= 2, registers  # the first REGISTER and one answer to the challenge


def test_cli_listen_and_call_through_kamailio(kam: Kamailio, tmp_path: Path) -> None:
    env = dict(os.environ, BOB_PW=USERS["bob"], ALICE_PW=USERS["alice"])
    recording = tmp_path / "heard.wav"
    listener = subprocess.Popen(
        [sys.executable, "-m", "pyvoip_fast", "listen", "--bind", "127.0.0.1:0", "--account",
         f"sip:bob@{kam.domain}", "--password-env", "BOB_PW", "--proxy", _proxy(kam, "tcp"), "--no-play",
         "--record", str(recording)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
    try:
        assert listener.stdout is not None
        deadline = time.monotonic() + 15
        seen = ""
        while "[SIP] Registered" not in seen and time.monotonic() < deadline:
            seen += listener.stdout.readline()
        assert "[SIP] Registered sip:bob@example.test" in seen, seen
        result = _cli("call", f"sip:bob@{kam.domain}", "--account", f"sip:alice@{kam.domain}", "--password-env",
                      "ALICE_PW", "--proxy", _proxy(kam, "tcp"), "--no-play", "--duration", "2", env=env)
        assert result.returncode == 0, result.stderr
        assert "Received 407 Proxy Authentication Required" in result.stdout
        assert "[SIP] Received 200 OK" in result.stdout and "Packets Received" in result.stdout
        out, err = listener.communicate(timeout=15)
        assert listener.returncode == 0, err
        assert "Unregistered sip:bob@example.test" in out
        assert recording.exists() and recording.stat().st_size > 8000
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.communicate()


def test_positional_form_takes_an_account_too(kam: Kamailio) -> None:
    """The original program's command line with account options: a receiver that cannot register exits 8, and
    one option without --account is a usage error (2)."""
    env = dict(os.environ, BOB_PW="wrong")
    result = _cli("127.0.0.1", "0", "127.0.0.1", "5060", "nothing.wav", "receiver", "--no-play", "--account",
                  f"sip:bob@{kam.domain}", "--password-env", "BOB_PW", "--proxy", _proxy(kam, "udp"), env=env)
    assert result.returncode == 8 and "Traceback" not in result.stderr, result
    result = _cli("127.0.0.1", "0", "127.0.0.1", "5060", "nothing.wav", "receiver", "--no-play", "--registrar",
                  "sip:127.0.0.1", env=env)
    assert result.returncode == 2 and "--registrar needs --account" in result.stderr, result
    result = _cli("listen", "--account", f"sip:bob@{kam.domain}", "--password-env", "NO_SUCH_VARIABLE_X", env=env)
    assert result.returncode == 2 and "NO_SUCH_VARIABLE_X" in result.stderr, result


def test_tls_certificate_is_verified_by_default(kam: Kamailio) -> None:
    """Without the test CA, Kamailio's certificate is not trusted: the registration fails at once with that reason
    (no silent fallback to an unverified connection), and the command line says so with exit status 8."""
    async def main() -> None:
        phone = Phone("127.0.0.1", 0, timers=FAST, account=_account(kam, "alice", "tls", ca_file=None))
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RegistrationError) as info:
            await phone.start()
        assert info.value.status_code == 503 and "certificate not trusted" in str(info.value), info.value
        assert loop.time() - started < 5
    run(main())
    env = dict(os.environ, ALICE_PW=USERS["alice"], SSL_CERT_FILE="/nonexistent", SSL_CERT_DIR="/nonexistent")
    result = _cli("listen", "--bind", "127.0.0.1:0", "--account", f"sip:alice@{kam.domain}", "--password-env",
                  "ALICE_PW", "--proxy", _proxy(kam, "tls"), "--no-play", env=env)
    assert result.returncode == 8 and "certificate not trusted" in result.stderr, result


def test_srtp_over_tls_signalling_through_kamailio(kam: Kamailio) -> None:
    """SDES keys travel only over TLS: two phones registered over TLS with ``srtp="required"`` (no insecure
    allowance) agree on a key through Kamailio and the callee hears the caller's tone."""
    async def main() -> Tuple[Any, np.ndarray]:
        async with Phone("127.0.0.1", 0, timers=FAST, account=_account(kam, "alice", "tls"), srtp="required") as a, \
                Phone("127.0.0.1", 0, timers=FAST, account=_account(kam, "bob", "tls"), srtp="required") as b:
            heard = ListSink()
            answering = asyncio.create_task(b.answer(sink=heard))
            call = await a.call(f"sip:bob@{kam.domain}", source=ArraySource(_tone(1.0, 1100.0)))
            bob_call = await answering
            assert call.params.srtp is not None and call.params.srtp[0] == "AES_CM_128_HMAC_SHA1_80"
            await call.wait_done()
            await bob_call.wait_done()
            return bob_call.stats, heard.pcm

    stats, heard = run(main())
    assert stats.packets_received >= 45
    assert abs(_peak_hz(heard[800:6400]) - 1100.0) < 20
