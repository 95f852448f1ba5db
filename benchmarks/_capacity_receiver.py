"""Receiver process for bench_capacity.py: counts the RTP datagrams arriving on one UDP port.

Protocol on stdin/stdout (one line each): it prints ``PORT <n>`` once bound; then answers ``count`` with the
number of datagrams received so far and exits on ``quit`` (or EOF). Every 2 ms the socket is drained with
``pyvoip_fast.net._udp.recv_drain`` (recvmmsg, 64 per call) or its pure-Python twin; the receiver sleeps on a
timer rather than on the socket, so the sender never pays for waking it (see ``main``).
"""

from __future__ import annotations

import os
import select
import socket
import sys

from pyvoip_fast import _compat

_udp = _compat.load("_udp")
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
POLL = 0.002  # seconds between drains


def main() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, 64 * 1024 * 1024)
            break
        except OSError:
            continue
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    if len(sys.argv) > 1 and sys.argv[1].isdigit() and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(sys.argv[1])})
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    count = 0
    fd = sock.fileno()
    stdin = sys.stdin.fileno()
    while True:
        # Poll every POLL seconds; never wait on the data socket itself. A receiver blocked on the socket has
        # to be woken by the sender's send() (on loopback the whole receive path, wake-up included, runs on
        # the sending core), which put 4-14 ms stalls into the sender's batches and made the receiver, not
        # the design under test, the source of the tail. The 128 MB receive buffer holds seconds of traffic.
        ready, _, _ = select.select([stdin], [], [], POLL)
        count += _udp.recv_drain(fd)
        if stdin in ready:
            line = sys.stdin.readline()
            if not line or line.strip() == "quit":
                return 0
            if line.strip() == "count":
                count += _udp.recv_drain(fd)
                print(count, flush=True)


if __name__ == "__main__":
    sys.exit(main())
