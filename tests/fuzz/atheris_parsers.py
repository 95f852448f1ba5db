"""Coverage-guided fuzzing of every parser that meets untrusted bytes (atheris, libFuzzer's engine).

Run: ``PYVOIP_FAST_NO_EXTENSIONS=1 python tests/fuzz/atheris_parsers.py -atheris_runs=200000``. The pure-Python
twins of the compiled parsers are instrumented (their coverage guides the mutations) together with the SIP, SDP,
digest, stream-framing, sipfrag and SIP INFO digit parsers; the compiled modules are held to the twins by the parity tests. Each input is
routed by its first byte to one parser. A parser may refuse its input only with a ``ParseError`` (or, for the
framer, ``SipFramingError``); anything else is a crash that atheris reports with the input that caused it.
``tests/test_coverage_fuzz.py`` (``-m slow``) runs it.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("PYVOIP_FAST_NO_EXTENSIONS", "1")

import atheris  # noqa: E402

with atheris.instrument_imports():
    from pyvoip_fast.errors import ParseError
    from pyvoip_fast.rtp import RtpPacket, rtcp
    from pyvoip_fast.sip.digest import parse_challenges
    from pyvoip_fast.sip.digest_server import DigestServer
    from pyvoip_fast.sip.framing import StreamFramer
    from pyvoip_fast.sip.message import parse_message
    from pyvoip_fast.sip.session_description import SessionDescription
    from pyvoip_fast.sip.sipfrag import parse_sipfrag
    from pyvoip_fast.app.call_events import parse_dtmf_info

_SERVER = DigestServer("fuzz", {"alice": "pw"})
_INVITE = parse_message(b"INVITE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:b@h>;tag=1"
                        b"\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")


def _credentials(data: bytes) -> None:
    request = parse_message(_INVITE.serialize().replace(b"Content-Length", b"Authorization: Digest "
                                                        + data.replace(b"\r", b"").replace(b"\n", b"")
                                                        + b"\r\nContent-Length", 1))
    _SERVER.verify(request, 0.0)


def one_input(data: bytes) -> None:
    if not data:
        return
    which, body = data[0] % 9, data[1:]
    try:
        if which == 0:
            RtpPacket.parse(body)
        elif which == 1:
            rtcp.parse(body)
        elif which == 2:
            parse_message(body)
        elif which == 3:
            SessionDescription.parse(body)
        elif which == 4:
            parse_challenges(body.decode("utf-8", "replace"))
        elif which == 5:
            StreamFramer(max_header=512, max_body=512).feed(body)
        elif which == 6:
            _credentials(body)
        elif which == 7:
            parse_sipfrag(body)  # a transfer's NOTIFY body
        else:
            parse_dtmf_info("application/dtmf-relay" if body[:1] != b"d" else "application/dtmf", body[1:])
    except ParseError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
