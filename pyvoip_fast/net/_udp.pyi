"""Stub of the compiled ``pyvoip_fast._udp`` (ext/udp.pyx): batched RTP sends for the shared media clock.

The pure-Python twin ``pyvoip_fast._udp_py`` has the same API.
"""

from typing import Any, Tuple

PORTABLE: bool

def monotonic() -> float: ...
def send_rtp_batch(
    fds: Any,
    packets: Any,
    streams: Any,
    length: int,
    seqs: Any,
    timestamps: Any,
    ts_step: int,
    sent_at: Any,
    out_pos: int,
) -> Tuple[int, int]: ...
def send_rtp_batch_to(
    fd: int,
    packets: Any,
    streams: Any,
    length: int,
    seqs: Any,
    timestamps: Any,
    ts_step: int,
    addrs: Any,
    audio: Any,
    cursors: Any,
    sent_at: Any,
    out_pos: int,
) -> Tuple[int, int]: ...
def recv_drain(fd: int, limit: int = ...) -> int: ...
def timer_open() -> int: ...
def timer_arm(fd: int, when: float) -> None: ...
def timer_disarm(fd: int) -> None: ...
def timer_ack(fd: int) -> int: ...
