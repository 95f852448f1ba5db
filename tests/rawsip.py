"""Hand-made SIP over a real UDP socket, for tests that play a caller the user agent has no reason to trust.

``udp_socket()`` binds a non-blocking socket on loopback, ``drain()`` reads what is waiting, ``invite()`` builds an
INVITE with a one-stream PCMU offer naming any media address (from loopback unless told another host), ``ack()``
acknowledges a 2xx to it.
"""

from __future__ import annotations

import secrets
import socket
from typing import List

from pyvoip_fast.sip.message import SipResponse


def udp_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, port))
    s.setblocking(False)
    return s


def drain(sock: socket.socket) -> List[bytes]:
    """Every datagram waiting on ``sock`` (none left after)."""
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


def invite(sig_port: int, to_port: int, media_host: str, media_port: int, call_id: str, user: str = "caller",
           host: str = "127.0.0.1", to_host: str = "127.0.0.1") -> bytes:
    """An INVITE from ``host:sig_port`` to the user agent at ``to_host:to_port`` offering PCMU at ``media_host``.

    Its Via asks for ``rport`` (RFC 3581), so the answer finds a caller behind a NAT too.
    """
    sdp = (f"v=0\r\no=x 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {media_host}\r\nt=0 0\r\n"
           f"m=audio {media_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n").encode()
    return (f"INVITE sip:pyvoip@{to_host}:{to_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{sig_port};rport;branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:{user}@{host}>;tag={call_id}\r\nTo: <sip:pyvoip@{to_host}>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 INVITE\r\nContact: <sip:{user}@{host}:{sig_port}>\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n").encode() + sdp


def ack(ok: SipResponse, sig_port: int, to_port: int, call_id: str, user: str = "caller") -> bytes:
    """The ACK of the 2xx ``ok`` to ``invite(...)`` with the same ports, Call-ID and user."""
    return (f"ACK sip:pyvoip@127.0.0.1:{to_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{sig_port};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
            f"From: <sip:{user}@127.0.0.1>;tag={call_id}\r\nTo: {ok.headers.get('To')}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()
