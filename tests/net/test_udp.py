"""pyvoip_fast.net._udp (batched RTP send, socket drain) and its pure-Python twin: same results, same errors."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from helpers import require_ipv6
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


# -- send_rtp_batch_to: the fan-out's sendmmsg path ------------------------------------------------------------


def _sockaddr_row(family: int, host: str, port: int) -> np.ndarray:
    from pyvoip_fast.media.fanout import _sockaddr

    return np.frombuffer(_sockaddr(family, (host, port)), dtype=np.uint8)


def _drain(rx: socket.socket, want: int) -> list:
    got: list = []
    deadline = time.monotonic() + 1.0
    while len(got) < want and time.monotonic() < deadline:
        try:
            got.append(rx.recv(2048))
        except BlockingIOError:
            time.sleep(0.002)
    return got


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_send_batch_to_stamps_refills_and_clears_the_marker(impl: str, family: int, host: str) -> None:
    udp = _compat.module_for("_udp", impl)
    if family == socket.AF_INET6:
        require_ipv6()
    rx = socket.socket(family, socket.SOCK_DGRAM)
    rx.bind((host, 0))
    tx = socket.socket(family, socket.SOCK_DGRAM)
    rx.setblocking(False)
    tx.setblocking(False)
    tx.bind((host, 0))
    try:
        port = rx.getsockname()[1]
        n, plen = 3, 4
        packets = np.zeros((n, 12 + plen), dtype=np.uint8)
        packets[:, 0] = 0x80
        packets[:, 1] = 0x80  # marker on each stream's first packet
        packets[:, 12:] = 0xFF
        addrs = np.stack([_sockaddr_row(family, host, port)] * n)
        audio = np.arange(100, 110, dtype=np.uint8)  # stream 0 plays 100..105 (6 bytes, wraps), stream 2 106..109
        cursors = np.array([[0, 6, 0], [0, 0, 0], [6, 4, 2]], dtype=np.int64)
        seqs = np.array([0xFFFF, 10, 20], dtype=np.uint16)
        tss = np.array([5, 0xFFFFFFFF, 7], dtype=np.uint32)
        sent_at = np.zeros(6)
        idx = np.array([0, 1, 2], dtype=np.uint32)
        t0 = udp.monotonic()
        assert udp.send_rtp_batch_to(tx.fileno(), packets, idx, 12 + plen, seqs, tss, 160, addrs, audio, cursors,
                                     sent_at, 0) == (3, 0)
        assert udp.send_rtp_batch_to(tx.fileno(), packets, idx, 12 + plen, seqs, tss, 160, addrs, audio, cursors,
                                     sent_at, 3) == (3, 0)
        assert t0 <= sent_at.min() and sent_at.max() <= udp.monotonic()
        got = _drain(rx, 6)
        assert len(got) == 6
        by_seq = {int.from_bytes(g[2:4], "big"): g for g in got}
        # stream 0: seq wraps, payload walks and wraps around its 6-byte prompt, marker only on the first
        assert by_seq[0xFFFF][1] == 0x80 and by_seq[0][1] == 0x00
        assert by_seq[0xFFFF][12:] == bytes([100, 101, 102, 103]) and by_seq[0][12:] == bytes([104, 105, 100, 101])
        assert by_seq[0][4:8] == (165).to_bytes(4, "big")
        # stream 1: static payload; timestamp wraps
        assert by_seq[10][12:] == b"\xff" * 4 and by_seq[11][4:8] == (159).to_bytes(4, "big")
        # stream 2 starts at position 2 of its 4-byte range 106..109
        assert by_seq[20][12:] == bytes([108, 109, 106, 107]) and by_seq[21][12:] == bytes([108, 109, 106, 107])
        assert list(cursors[:, 2]) == [2, 0, 2] and list(seqs) == [1, 12, 22]
        assert not (packets[:, 1] & 0x80).any()
    finally:
        rx.close()
        tx.close()


def test_send_batch_to_counts_refused_datagrams(impl: str) -> None:
    udp = _compat.module_for("_udp", impl)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # an IPv4 socket cannot send to an IPv6 address
    tx.setblocking(False)
    try:
        packets = np.zeros((2, 20), dtype=np.uint8)
        addrs = np.stack([_sockaddr_row(socket.AF_INET6, "::1", 9), _sockaddr_row(socket.AF_INET6, "::1", 9)])
        cursors = np.zeros((2, 3), dtype=np.int64)
        seqs = np.zeros(2, dtype=np.uint16)
        ok, bad = udp.send_rtp_batch_to(tx.fileno(), packets, np.array([0, 1], dtype=np.uint32), 20, seqs,
                                        np.zeros(2, dtype=np.uint32), 160, addrs, np.zeros(0, dtype=np.uint8),
                                        cursors, np.zeros(2), 0)
        assert (ok, bad) == (0, 2) and list(seqs) == [1, 1]  # the timeline moves on regardless
    finally:
        tx.close()


def test_send_batch_to_rejects_bad_tables(impl: str) -> None:
    udp = _compat.module_for("_udp", impl)
    n = 2
    packets = np.zeros((n, 20), dtype=np.uint8)
    seqs = np.zeros(n, dtype=np.uint16)
    tss = np.zeros(n, dtype=np.uint32)
    addrs = np.stack([_sockaddr_row(socket.AF_INET, "127.0.0.1", 9)] * n)
    audio = np.zeros(16, dtype=np.uint8)
    cur = np.zeros((n, 3), dtype=np.int64)
    idx = np.array([0, 1], dtype=np.uint32)

    def call(**kw: object) -> object:
        args = dict(fd=-1, packets=packets, streams=idx, length=20, seqs=seqs, timestamps=tss, ts_step=160,
                    addrs=addrs, audio=audio, cursors=cur, sent_at=np.zeros(n), out_pos=0)
        args.update(kw)
        return udp.send_rtp_batch_to(*args.values())

    with pytest.raises(ValueError, match="out of range"):
        call(streams=np.array([2], dtype=np.uint32))
    with pytest.raises(ValueError, match="length"):
        call(length=21)
    with pytest.raises(ValueError, match="too short"):
        call(out_pos=1)
    with pytest.raises(ValueError, match="one entry per stream"):
        call(seqs=np.zeros(3, dtype=np.uint16))
    with pytest.raises(ValueError, match="at least 28 bytes"):
        call(addrs=np.zeros((n, 16), dtype=np.uint8))
    with pytest.raises(ValueError, match="address family"):
        call(addrs=np.zeros((n, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match="start, size, position"):
        call(cursors=np.zeros((n, 2), dtype=np.int64))
    for bad in ([10, 8, 0], [0, 8, 8], [0, 4, 0], [-1, 8, 0], [0, 17, 0]):  # past the end, shorter than a payload
        with pytest.raises(ValueError, match="audio range"):
            call(cursors=np.array([bad, [0, 0, 0]], dtype=np.int64))


# -- timerfd ---------------------------------------------------------------------------------------------------


def test_timerfd_expires_at_an_absolute_deadline(impl: str) -> None:
    import os
    import select

    udp = _compat.module_for("_udp", impl)
    try:
        fd = udp.timer_open()
    except OSError as exc:  # the twin on Python < 3.13: no os.timerfd_*
        assert impl == "python" and not hasattr(os, "timerfd_create"), exc
        return
    try:
        assert udp.timer_ack(fd) == 0  # disarmed: nothing to read, no blocking
        when = udp.monotonic() + 0.02
        udp.timer_arm(fd, when)
        assert select.select([fd], [], [], 1.0)[0] == [fd]
        assert udp.monotonic() >= when - 1e-6
        assert udp.timer_ack(fd) == 1 and udp.timer_ack(fd) == 0
        udp.timer_arm(fd, udp.monotonic() - 5)  # a past deadline fires at once
        assert select.select([fd], [], [], 1.0)[0] == [fd]
        udp.timer_arm(fd, udp.monotonic() + 0.01)
        udp.timer_disarm(fd)
        assert select.select([fd], [], [], 0.05)[0] == []
        for bad in (0.0, -1.0, float("inf"), float("nan")):
            with pytest.raises(ValueError, match="positive, finite"):
                udp.timer_arm(fd, bad)
    finally:
        os.close(fd)


def test_batch_arguments_outside_their_c_types_raise_overflow_error_in_both(impl: str) -> None:
    """Found by the coverage-guided run of the compiled modules: a length, out_pos, ts_step or fd beyond its C
    type is an OverflowError from the compiled module's argument conversion; the twin now says the same."""
    udp = _compat.module_for("_udp", impl)
    packets = np.zeros((1, 20), dtype=np.uint8)
    seqs, tss = np.zeros(1, dtype=np.uint16), np.zeros(1, dtype=np.uint32)
    idx = np.array([0], dtype=np.uint32)
    fds = np.array([-1], dtype=np.int32)
    for length, ts_step, out_pos in [(1 << 64, 160, 0), (20, -1, 0), (20, 1 << 32, 0), (20, 160, -(1 << 64))]:
        with pytest.raises(OverflowError):
            udp.send_rtp_batch(fds, packets, idx, length, seqs, tss, ts_step, np.zeros(1), out_pos)
    addrs = np.zeros((1, 28), dtype=np.uint8)
    cursors = np.zeros((1, 3), dtype=np.int64)
    with pytest.raises(OverflowError):
        udp.send_rtp_batch_to(1 << 40, packets, idx, 20, seqs, tss, 160, addrs, np.zeros(0, dtype=np.uint8),
                              cursors, np.zeros(1), 0)


def test_a_timestamps_table_aliasing_the_cursors_is_refused_before_anything_is_sent(impl: str) -> None:
    """The reported crash: ``timestamps`` a view into ``cursors`` with ``ts_step=0x7FFFFF00``. The cursors were
    validated once and then rewritten through the alias while they indexed ``audio`` (SIGSEGV within a few
    calls). Every table the batch writes must now be disjoint from every other argument."""
    udp = _compat.module_for("_udp", impl)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        port = rx.getsockname()[1]
        addrs = np.zeros((1, 28), dtype=np.uint8)
        addrs[0, :2] = np.frombuffer(np.uint16(socket.AF_INET).tobytes(), dtype=np.uint8)
        addrs[0, 2:4] = [port >> 8, port & 0xFF]
        addrs[0, 4:8] = [127, 0, 0, 1]
        audio = np.zeros(320, dtype=np.uint8)
        cursors = np.array([[0, 320, 0]], dtype=np.int64)
        packets = np.zeros((1, 172), dtype=np.uint8)
        timestamps = cursors.view(np.uint32)[0, 2:3]  # the low half of the cursor's position
        args = (tx.fileno(), packets, np.array([0], dtype=np.uint32), 172, np.zeros(1, dtype=np.uint16))
        with pytest.raises(ValueError, match="timestamps and cursors share memory"):
            udp.send_rtp_batch_to(*args, timestamps, 0x7FFFFF00, addrs, audio, cursors, np.zeros(1), 0)
        assert list(cursors[0]) == [0, 320, 0]
        sent_at = np.zeros(4)
        with pytest.raises(ValueError, match="seqs and sent_at share memory"):  # two output tables in one
            udp.send_rtp_batch_to(tx.fileno(), packets, np.array([0], dtype=np.uint32), 172,
                                  sent_at.view(np.uint16)[:1], np.zeros(1, dtype=np.uint32), 160, addrs, audio,
                                  cursors, sent_at, 0)
        fds = np.array([tx.fileno()], dtype=np.int32)
        with pytest.raises(ValueError, match="packets and seqs share memory"):
            udp.send_rtp_batch(fds, packets, np.array([0], dtype=np.uint32), 172, packets.view(np.uint16)[0, :1],
                               np.zeros(1, dtype=np.uint32), 160, np.zeros(1), 0)
        # disjoint tables still send
        ok, failed = udp.send_rtp_batch_to(*args, np.zeros(1, dtype=np.uint32), 160, addrs, audio, cursors,
                                           np.zeros(1), 0)
        assert (ok, failed) == (1, 0)
    finally:
        rx.close()
        tx.close()


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_recv_stamped_gives_data_sources_and_kernel_arrival_times(impl: str, family: int) -> None:
    if family == socket.AF_INET6:
        require_ipv6()
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    udp = _compat.module_for("_udp", impl)
    rx = socket.socket(family, socket.SOCK_DGRAM)
    rx.bind((host, 0))
    rx.setblocking(False)
    rx.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_TIMESTAMPNS", 35), 1)
    tx = socket.socket(family, socket.SOCK_DGRAM)
    tx.bind((host, 0))
    time.sleep(0.05)  # the kernel turns receive timestamps on for the whole system a moment after the first ask
    try:
        before = time.time()
        for i in range(70):  # more than one recvmmsg batch of 64
            tx.sendto(b"pkt%02d" % i, rx.getsockname())
        time.sleep(0.02)
        after = time.time()
        got, err = udp.recv_stamped(rx.fileno(), 1000)
        assert err == 0 and [d for d, _, _ in got] == [b"pkt%02d" % i for i in range(70)]
        assert all(a[:2] == tx.getsockname()[:2] for _, a, _ in got)
        assert all(len(a) == (2 if family == socket.AF_INET else 4) for _, a, _ in got)  # as recvfrom gives it
        stamps = [s for _, _, s in got]
        assert stamps == sorted(stamps) and before - 0.001 <= stamps[0] and stamps[-1] <= after
        assert udp.recv_stamped(rx.fileno()) == ([], 0)
        tx.sendto(b"x", rx.getsockname())
        tx.sendto(b"y", rx.getsockname())
        time.sleep(0.01)
        assert [d for d, _, _ in udp.recv_stamped(rx.fileno(), 1)[0]] == [b"x"]  # the limit holds
        assert udp.recv_stamped(rx.fileno(), 0) == ([], 0)
        with pytest.raises(ValueError, match="limit"):
            udp.recv_stamped(rx.fileno(), -1)
    finally:
        rx.close()
        tx.close()


def test_recv_stamped_reports_an_icmp_refusal_as_its_errno(impl: str) -> None:
    udp = _compat.module_for("_udp", impl)
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()
    closed.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.connect(dead)
    try:
        s.send(b"to nobody")
        time.sleep(0.01)
        assert udp.recv_stamped(s.fileno()) == ([], 111)  # ECONNREFUSED from the ICMP port unreachable
        # an ICMP error pending before data does not hide the data: both are reported
        s.send(b"to nobody again")
        time.sleep(0.01)
        back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        back.bind(dead)  # the peer's port is alive again and answers
        try:
            back.sendto(b"answer", s.getsockname())
            time.sleep(0.01)
            assert udp.recv_stamped(s.fileno())[0][0][0] == b"answer"
        finally:
            back.close()
    finally:
        s.close()
