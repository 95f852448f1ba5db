"""Net: the only layer that owns sockets.

Owns UDP socket set-up for media (binding an even RTP port and the RTCP port above it, address resolution,
ICMP error queues: ``sockets``) and batched datagram I/O with Linux timerfd wake-ups (the compiled ``_udp`` and
its twin ``_udp_py``). SIP transports (UDP, TCP, TLS) join here.

May import: ``pyvoip_fast.rtp``, ``pyvoip_fast.codecs`` and the bottom layer (``errors``, ``_compat``).
"""
