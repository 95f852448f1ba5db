"""Fuzzed at the live sockets: mutated SIP, SDP, RTP and RTCP thrown at a running listener during a call.

A real ``pyvoip-fast listen --keep-serving --file`` process answers a call from this test's phone; while the
call runs, a seeded fuzzer sends batches of mutated datagrams to the listener's SIP port and to the RTP and RTCP
ports of the call. After every batch the listener must be alive, the call's audio must still flow to us, its
descriptors must stay bounded; at the end a fresh call must complete and no traceback may have been printed.

The default run (CI) throws 6 batches of 250 datagrams; ``pytest -m slow`` throws 200 batches.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest
import soundfile as sf

from mediakit import ArraySource, ListSink, run
from pyvoip_fast import rtp
from pyvoip_fast.app.phone import Phone
from pyvoip_fast.app.useragent import TimerConfig
from pyvoip_fast.rtp import rtcp

FAST = TimerConfig(t1=0.1, t2=0.8, t4=1.0)

SIP_TEMPLATES = [
    ("INVITE sip:pyvoip@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{n}\r\n"
     "From: <sip:f@127.0.0.1>;tag={n}\r\nTo: <sip:pyvoip@127.0.0.1>\r\nCall-ID: fz{n}\r\nCSeq: 1 INVITE\r\n"
     "Contact: <sip:f@127.0.0.1:9>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n"
     "\r\n{sdp}"),
    ("OPTIONS sip:pyvoip@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKo{n}\r\n"
     "From: <sip:f@127.0.0.1>;tag={n}\r\nTo: <sip:pyvoip@127.0.0.1>\r\nCall-ID: fo{n}\r\nCSeq: 7 OPTIONS\r\n"
     "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"),
    ("BYE sip:pyvoip@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKb{n}\r\n"
     "From: <sip:f@127.0.0.1>;tag={n}\r\nTo: <sip:pyvoip@127.0.0.1>;tag=x{n}\r\nCall-ID: fb{n}\r\nCSeq: 2 BYE\r\n"
     "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"),
    ("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKr{n}\r\nFrom: <sip:a@b>;tag=1\r\n"
     "To: <sip:c@d>;tag=2\r\nCall-ID: fr{n}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"),
]
SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\nm=audio 9 RTP/AVP 0 8 101\r\n"
       "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=rtcp:11\r\n")
NASTY = [b"\x00", b"\xff" * 40, b"\r\n", b"\r\n\r\n", b";;;", b"<sip:", b"%", b"=" * 30, b"Content-Length: 999999\r\n",
         b"v: SIP/2.0/UDP", b"m=audio 0 RTP/AVP", b"a=rtpmap:96 L16/0", b"c=IN IP6 ::::", b" " * 100]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(5)
        if not buf:
            buf += rng.choice(NASTY)
        elif op == 0:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 1:  # truncate
            del buf[rng.randrange(len(buf)):]
        elif op == 2:  # insert something nasty
            i = rng.randrange(len(buf) + 1)
            buf[i:i] = rng.choice(NASTY)
        elif op == 3:  # duplicate a slice
            i = rng.randrange(len(buf))
            j = min(len(buf), i + rng.randint(1, 200))
            buf[i:i] = buf[i:j]
        else:  # delete a slice
            i = rng.randrange(len(buf))
            del buf[i:i + rng.randint(1, 50)]
    return bytes(buf[:65000])


def _sip(rng: random.Random, n: int, port: int) -> bytes:
    sdp = _mutate(rng, SDP.encode()).decode("latin-1") if rng.random() < 0.5 else SDP
    text = rng.choice(SIP_TEMPLATES).format(port=port, n=n, len=len(sdp), sdp=sdp)
    data = text.encode("latin-1")
    return data if rng.random() < 0.1 else _mutate(rng, data)


def _rtp(rng: random.Random, n: int) -> bytes:
    pkt = bytearray(rtp.build_packet(rng.choice([0, 8, 101, 13, 127]), n & 0xFFFF, n * 160, rng.getrandbits(32),
                                     bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 4, 160])))))
    if rng.random() < 0.3:  # a header extension or CSRCs that claim more than there is
        pkt[0] |= rng.choice([0x10, 0x0F, 0x20])
    return _mutate(rng, bytes(pkt)) if rng.random() < 0.8 else bytes(pkt)


def _rtcp(rng: random.Random, n: int) -> bytes:
    data = rtcp.build_report(rng.getrandbits(32), [(rng.getrandbits(32), 5, 10, 1000, 20, 0, 0)], b"fuzz@host",
                             ntp_timestamp=rng.getrandbits(64), rtp_timestamp=n, packet_count=n, octet_count=n)
    return _mutate(rng, data) if rng.random() < 0.9 else data


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _fuzz(tmp_path: Path, batches: int, per_batch: int, seed: int) -> None:
    wav = tmp_path / "speech.wav"
    t = np.arange(8000 * 600) / 8000
    sf.write(str(wav), np.round(np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), 8000, subtype="PCM_16")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    out_file, err_file = open(tmp_path / "listener.out", "w"), open(tmp_path / "listener.err", "w")
    listener = subprocess.Popen(
        [sys.executable, "-m", "pyvoip_fast", "listen", "--bind", f"127.0.0.1:{port}", "--keep-serving", "--file",
         str(wav), "--no-play", "--t1", "0.1", "-q"],
        stdout=out_file, stderr=err_file, text=True,
        stdin=subprocess.DEVNULL)  # files, not pipes: nobody reads a pipe while the test runs
    out_file.close()
    err_file.close()
    rng = random.Random(seed)
    fuzzer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fuzzer.bind(("127.0.0.1", 0))
    fuzzer.setblocking(False)

    async def main() -> None:
        await asyncio.sleep(1.0)
        async with Phone("127.0.0.1", 0, timers=FAST) as phone:
            heard = ListSink()
            call = await phone.call(("127.0.0.1", port), source=ArraySource(np.zeros(8000 * 600, np.int16)),
                                    sink=heard, hangup_when_done=False)
            rtp_addr, rtcp_addr = call.params.remote_rtp, call.params.remote_rtcp
            await asyncio.sleep(0.5)
            idle_fds = _fds(listener.pid)
            n = 0
            for batch in range(batches):
                before = call.stats.packets_received
                for _ in range(per_batch):
                    n += 1
                    kind = rng.randrange(3)
                    data, dest = ((_sip(rng, n, port), ("127.0.0.1", port)) if kind == 0 else
                                  (_rtp(rng, n), rtp_addr) if kind == 1 else (_rtcp(rng, n), rtcp_addr))
                    try:
                        fuzzer.sendto(data, dest)
                    except OSError:
                        pass
                    if n % 25 == 0:
                        await asyncio.sleep(0.005)
                        while True:  # read (and forget) the listener's answers
                            try:
                                fuzzer.recv(65536)
                            except OSError:
                                break
                # the audio keeps flowing: within 3 s of the batch at the latest (a burst of fuzzed INVITEs that
                # parse is a burst of calls to set up, which may delay a few packets on a busy machine)
                waited = 0.0
                while call.stats.packets_received <= before + 10 and waited < 3.0:
                    await asyncio.sleep(0.1)
                    waited += 0.1
                assert listener.poll() is None, f"the listener died in batch {batch}"
                assert call.stats.packets_received > before + 10, f"audio stopped in batch {batch}"
                assert not call.ended, f"the call ended in batch {batch}: {call.end_reason}"
                # fuzzed INVITEs are calls in set-up for up to 64*T1: bounded by --max-setup (100) x 3 descriptors
                assert _fds(listener.pid) <= idle_fds + 3 * 100 + 10
            await call.hangup()
            # a fresh call still completes, with audio
            fresh = await phone.call(("127.0.0.1", port), source=ArraySource(np.zeros(4000, np.int16)),
                                     sink=ListSink(), hangup_when_done=False)
            await asyncio.sleep(1.0)
            assert fresh.stats.packets_received > 20
            await fresh.hangup()

    try:
        run(main())
    finally:
        fuzzer.close()
        listener.send_signal(signal.SIGINT)
        try:
            listener.wait(timeout=20)
        except subprocess.TimeoutExpired:
            listener.kill()
            listener.wait()
    err = (tmp_path / "listener.err").read_text()
    out = (tmp_path / "listener.out").read_text()
    assert "Traceback" not in err + out, err[-3000:]
    assert out.count("failed:") <= 1 + batches // 10  # failed (fuzzed) calls are summarised, not one line each


def test_live_listener_survives_fuzzed_sip_sdp_rtp_and_rtcp(tmp_path: Path) -> None:
    _fuzz(tmp_path, batches=6, per_batch=250, seed=1303)


@pytest.mark.slow
def test_live_listener_survives_a_long_fuzz(tmp_path: Path) -> None:
    _fuzz(tmp_path, batches=200, per_batch=250, seed=2026)
