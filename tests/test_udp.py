"""pyvoip_fast._udp (batched RTP send, socket drain) and its pure-Python twin: same results, same errors."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from pyvoip_fast import _compat


def _setup(n: int) -> tuple:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.connect(rx.getsockname())
        socks.append(s)
    return rx, socks


def test_send_batch_and_drain(impl: str) -> None:
    udp = _compat.module_for("_udp", impl)
    rx, socks = _setup(3)
    try:
        fds = np.array([s.fileno() for s in socks], dtype=np.int32)
        packets = np.zeros((3, 20), dtype=np.uint8)
        packets[:, 0] = 0x80
        packets[:, 12:] = np.arange(8, dtype=np.uint8)
        seqs = np.array([0xFFFF, 7, 100], dtype=np.uint16)
        tss = np.array([0xFFFFFF00, 1, 2], dtype=np.uint32)
        sent_at = np.zeros(4)
        t0 = udp.monotonic()
        ok, failed = udp.send_rtp_batch(fds, packets, np.array([0, 2], dtype=np.uint32), 20, seqs, tss, 160,
                                        sent_at, 1)
        assert (ok, failed) == (2, 0)
        assert sent_at[0] == 0 and t0 <= sent_at[1] <= sent_at[2] <= udp.monotonic()
        assert abs(udp.monotonic() - time.monotonic()) < 0.01
        # counters advanced with wrap-around, stream 1 untouched
        assert list(seqs) == [0, 7, 101] and list(tss) == [(0xFFFFFF00 + 160) % 2**32, 1, 162]
        time.sleep(0.01)
        got = sorted(rx.recv(100) for _ in range(2))
        assert got[0][2:8] == b"\x00\x64\x00\x00\x00\x02" and len(got[0]) == 20
        assert got[1][2:8] == b"\xff\xff\xff\xff\xff\x00" and got[1][12:] == bytes(range(8))
        packets[:, 0] = 0x80
        udp.send_rtp_batch(fds, packets, np.array([1, 1, 1], dtype=np.uint32), 12, seqs, tss, 160, np.zeros(3), 0)
        time.sleep(0.01)
        assert udp.recv_drain(rx.fileno()) == 3
        assert udp.recv_drain(rx.fileno()) == 0
    finally:
        rx.close()
        for s in socks:
            s.close()


def test_send_batch_rejects_bad_tables(impl: str) -> None:
    udp = _compat.module_for("_udp", impl)
    fds = np.zeros(2, dtype=np.int32)
    packets = np.zeros((2, 20), dtype=np.uint8)
    seqs = np.zeros(2, dtype=np.uint16)
    tss = np.zeros(2, dtype=np.uint32)
    idx = np.array([0, 1], dtype=np.uint32)
    with pytest.raises(ValueError, match="out of range"):
        udp.send_rtp_batch(fds, packets, np.array([2], dtype=np.uint32), 20, seqs, tss, 160, np.zeros(1), 0)
    with pytest.raises(ValueError, match="length"):
        udp.send_rtp_batch(fds, packets, idx, 21, seqs, tss, 160, np.zeros(2), 0)
    with pytest.raises(ValueError, match="length"):
        udp.send_rtp_batch(fds, packets, idx, 11, seqs, tss, 160, np.zeros(2), 0)
    with pytest.raises(ValueError, match="too short"):
        udp.send_rtp_batch(fds, packets, idx, 20, seqs, tss, 160, np.zeros(2), 1)
    with pytest.raises(ValueError, match="one entry per stream"):
        udp.send_rtp_batch(fds, packets, idx, 20, np.zeros(3, dtype=np.uint16), tss, 160, np.zeros(2), 0)
