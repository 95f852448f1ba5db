"""Safe on an open network: a forged INVITE cannot aim our media at a third party (return routability).

An INVITE whose SDP names somebody else's address (``c=IN IP4 127.0.0.9``), never ACKed, used to make a listener
stream its whole file there. Now nothing, RTP or RTCP, leaves for an address until the caller proved it: the ACK
of our 2xx (it carries our unguessable To tag) or RTP from that very address (RFC 4961 symmetric RTP).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from typing import Any, List, Tuple

import numpy as np
import pytest

from mediakit import ArraySource, ListSink, run
from rawsip import drain as _drain, invite as _invite, udp_socket as _udp
from pyvoip_fast import rtp
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.errors import CallError
from pyvoip_fast.sip.message import SipResponse, parse_message

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
VICTIM = "127.0.0.9"


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
    from pyvoip_fast.net.sockets import bind_pair

    victim_rtp, victim_rtcp = bind_pair(VICTIM, 0)  # the third party's RTP/RTCP pair (even port, port + 1)
    victim_rtp.setblocking(False)
    victim_rtcp.setblocking(False)
    port = victim_rtp.getsockname()[1]
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


def _fds(pid: int) -> int:
    import os
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_invite_flood_against_a_live_listener_is_bounded_and_answered(tmp_path: Any) -> None:
    """The issue's attack: 2,000 INVITEs from four source ports in about a second, none ACKed, each naming a third
    party as its media address, against ``listen --keep-serving --file``. Calls in set-up stay within
    ``--max-setup``, the excess gets 503 + Retry-After until the source is silenced for ignoring it, no packet
    reaches the third party, descriptors and memory come back to the idle level after Timer H, a real call still
    completes, and the listener's JSON counts the refusals."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    import soundfile as sf

    wav = tmp_path / "speech.wav"
    sf.write(str(wav), np.full(8000 * 10, 2000, np.int16), 8000, subtype="PCM_16")
    probe = _udp()
    port = probe.getsockname()[1]
    probe.close()
    stats = tmp_path / "stats.json"
    out_file, err_file = open(tmp_path / "listener.out", "w"), open(tmp_path / "listener.err", "w")
    listener = subprocess.Popen(
        [sys.executable, "-m", "pyvoip_fast", "listen", "--bind", f"127.0.0.1:{port}", "--keep-serving", "--file",
         str(wav), "--no-play", "--t1", "0.05", "--max-setup", "50", "--stats-json", str(stats), "-q"],
        stdout=out_file, stderr=err_file, text=True,
        stdin=subprocess.DEVNULL)  # files, not pipes: nobody reads a pipe while the test runs
    out_file.close()
    err_file.close()
    victim = _udp(VICTIM, 0)
    senders = [_udp() for _ in range(4)]
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # listening once OPTIONS is answered
            senders[0].sendto(_invite(senders[0].getsockname()[1], port, VICTIM, 9, "probe").replace(
                b"INVITE sip:", b"OPTIONS sip:").replace(b"CSeq: 1 INVITE", b"CSeq: 1 OPTIONS"), ("127.0.0.1", port))
            time.sleep(0.1)
            if _drain(senders[0]):
                break
        idle_fds, idle_rss = _fds(listener.pid), _rss_kb(listener.pid)
        vport = victim.getsockname()[1]
        answers: List[bytes] = []
        peak_fds = idle_fds
        started = time.monotonic()
        for n in range(2000):
            s = senders[n % 4]
            s.sendto(_invite(s.getsockname()[1], port, VICTIM, vport, f"flood{n}"), ("127.0.0.1", port))
            if n % 100 == 99:
                for sock in senders:
                    answers += _drain(sock)
                peak_fds = max(peak_fds, _fds(listener.pid))
                time.sleep(max(0.0, (n + 1) / 2000 - (time.monotonic() - started)))
        time.sleep(0.3)
        for sock in senders:
            answers += _drain(sock)
        peak_fds = max(peak_fds, _fds(listener.pid))
        peak_rss = _rss_kb(listener.pid)
        time.sleep(4.5)  # Timer H (64 x T1 = 3.2 s) releases the unACKed calls and their sockets
        after_fds = _fds(listener.pid)
        statuses = [int(a.split(b" ", 2)[1]) for a in answers if a.startswith(b"SIP/2.0 ")]
        busy = [a for a in answers if a.startswith(b"SIP/2.0 503") and b"Retry-After: 5" in a]
        assert statuses.count(503) == len(busy) >= 50, (statuses.count(503), len(busy))
        ringing_calls = {a.split(b"Call-ID: ")[1].split(b"\r\n")[0] for a in answers if a.startswith(b"SIP/2.0 200")}
        assert len(ringing_calls) <= 50
        # each call in set-up holds its RTP/RTCP pair and its open audio file: bounded by --max-setup, then idle
        assert peak_fds <= idle_fds + 3 * 50 + 10, (idle_fds, peak_fds)
        assert after_fds <= idle_fds + 2, (idle_fds, after_fds)
        assert peak_rss - idle_rss < 40_000, (idle_rss, peak_rss)
        assert _drain(victim) == []  # not one packet aimed at the third party
        # a real call still completes
        result = subprocess.run([sys.executable, "-m", "pyvoip_fast", "call", f"127.0.0.1:{port}", str(wav),
                                 "--no-play", "--duration", "1", "-q"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
    finally:
        listener.send_signal(signal.SIGINT)
        try:
            listener.wait(timeout=15)
        except subprocess.TimeoutExpired:
            listener.kill()
            listener.wait()
        for s in senders + [victim]:
            s.close()
    err = (tmp_path / "listener.err").read_text()
    assert listener.returncode == 130, err
    counters = json.loads((tmp_path / "stats-listener.json").read_text())
    assert counters["rejected"]["busy"] >= 50 and counters["limits"]["max_setup"] == 50, counters
    # the serving collector froze the survivors every second and swept once the flood's calls were gone
    assert counters["collector"]["freezes"] >= 5 and counters["collector"]["sweeps_by_reason"]["idle"] >= 1, counters
    assert "Traceback" not in err


@pytest.mark.interop  # sipp
def test_listener_requiring_auth_takes_callers_with_the_password_only(tmp_path: Any) -> None:
    """``Phone(require_auth=...)``: a caller with the right credentials gets through (401 answered once), one with
    a wrong password or none gets the 401 as its final answer (exit 8 on the command line), and sipp with
    ``-au/-ap`` authenticates against it too."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from helpers import require_tool
    from pyvoip_fast.errors import AuthenticationError
    from pyvoip_fast.sip.digest import Credentials
    from pyvoip_fast.sip.digest_server import DigestServer

    async def main() -> None:
        server = DigestServer("pyvoip-fast", {"alice": "pw"})
        async with Phone("127.0.0.1", 0, timers=FAST, require_auth=server) as bob, \
                Phone("127.0.0.1", 0, timers=FAST, credentials=Credentials("alice", "pw")) as alice, \
                Phone("127.0.0.1", 0, timers=FAST, credentials=Credentials("alice", "nope")) as mallory:
            answering = asyncio.create_task(bob.answer(sink=ListSink()))
            call = await alice.call(bob.local_address, source=ArraySource(np.zeros(1600, np.int16)))
            await call.wait_done()
            (await answering).media  # answered
            with pytest.raises(AuthenticationError) as info:
                await mallory.call(bob.local_address, source=ArraySource(np.zeros(1600, np.int16)))
            assert info.value.status_code == 401
            async with Phone("127.0.0.1", 0, timers=FAST) as anonymous:
                with pytest.raises(AuthenticationError):
                    await anonymous.call(bob.local_address)
            assert bob.ua is not None and bob.ua.endpoint.admission.counters["unauthenticated"] == 1

            # sipp answers our 401 with -au/-ap
            scenario = tmp_path / "uac_401.xml"
            data = Path(__file__).resolve().parent.parent / "data" / "sipp" / "kam_uac_auth.xml"
            scenario.write_text(data.read_text().replace('response="407"', 'response="401"'))
            answering = asyncio.create_task(bob.answer(sink=ListSink()))
            sipp = await asyncio.create_subprocess_exec(
                require_tool("sipp"), f"127.0.0.1:{bob.local_address[1]}", "-sf", str(scenario), "-s", "pyvoip",
                "-au", "alice", "-ap", "pw", "-m", "1", "-timeout", "20s", "-nostdin", "-i", "127.0.0.1",
                "-p", str(_free_port()), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _, err = await asyncio.wait_for(sipp.communicate(), 30)
            assert sipp.returncode == 0, err.decode(errors="replace")[-1500:]
            await asyncio.wait_for(answering, 5)

    run(main())

    # the command line: listen --require-auth; call with and without the password
    env = dict(os.environ, PW="pw", BAD="bad")
    port = _free_port()
    listener = subprocess.Popen(
        [sys.executable, "-m", "pyvoip_fast", "listen", "--bind", f"127.0.0.1:{port}", "--keep-serving",
         "--require-auth", "--auth-user", "alice", "--password-env", "PW", "--no-play", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
    try:
        import time

        time.sleep(1.0)
        base = [sys.executable, "-m", "pyvoip_fast", "call", f"127.0.0.1:{port}", "--no-play", "--duration", "0.5",
                "-q", "--auth-user", "alice"]
        bad = subprocess.run(base + ["--password-env", "BAD"], capture_output=True, text=True, env=env, timeout=30)
        assert bad.returncode == 8 and "authentication failed" in bad.stderr and "bad" not in bad.stderr, bad
        good = subprocess.run(base + ["--password-env", "PW"], capture_output=True, text=True, env=env, timeout=30)
        assert good.returncode == 0, good.stderr
    finally:
        listener.terminate()
        listener.communicate(timeout=15)


def _free_port() -> int:
    s = _udp()
    port = s.getsockname()[1]
    s.close()
    return int(port)


def test_srtp_call_carries_encrypted_audio_and_refuses_keys_in_clear() -> None:
    """Two phones with ``srtp="required"``: over clear UDP signalling the call is refused before anything is
    sent unless explicitly allowed; allowed, the audio arrives intact while every packet on the wire is SRTP
    (a plain RTP packet injected from the peer's address is dropped by authentication)."""
    tone = np.round(np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000) * 12000).astype(np.int16)

    async def main() -> Tuple[Any, np.ndarray, int]:
        async with Phone("127.0.0.1", 0, timers=FAST, srtp="required") as strict:
            with pytest.raises(ValueError, match="unencrypted signalling"):
                await strict.call(("127.0.0.1", 9), source=ArraySource(tone))
        async with Phone("127.0.0.1", 0, timers=FAST, srtp="required", srtp_insecure_signalling=True) as alice, \
                Phone("127.0.0.1", 0, timers=FAST, srtp="optional", srtp_insecure_signalling=True) as bob:
            heard = ListSink()
            answering = asyncio.create_task(bob.answer(sink=heard))
            call = await alice.call(bob.local_address, source=ArraySource(tone))
            bob_call = await answering
            assert call.params.srtp is not None and bob_call.params.srtp is not None
            assert call.params.srtp[1] == bob_call.params.srtp[2]  # alice's sending key is bob's receiving key
            # plain RTP from alice's own RTP address is not authenticated: dropped before any parser sees it
            bob_sockets = bob_call.media._sockets
            plain = rtp.build_packet(0, 60000, 1, 0x42, b"\x00" * 160)
            alice_rtp = call.media._sockets.rtp
            alice_rtp.sendto(plain, ("127.0.0.1", bob_call.media.local_rtp_port))
            await call.wait_done()
            await bob_call.wait_done()
            assert bob_sockets.srtp is not None
            return bob_call.stats, heard.pcm, bob_sockets.srtp.rejected

    stats, heard, rejected = run(main())
    assert stats.packets_received == 50 and rejected >= 1
    start = int(np.argmax(np.abs(heard) > 3000)) + 400
    segment = heard[start:start + 4000].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment))))
    assert abs(np.fft.rfftfreq(len(segment), 1 / 8000)[int(np.argmax(spectrum))] - 1000) < 10


def test_cli_refuses_srtp_keys_over_clear_signalling() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "pyvoip_fast", "call", "127.0.0.1:9", "--srtp", "required",
                             "--no-play"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "unencrypted signalling" in result.stderr and "Traceback" not in result.stderr
