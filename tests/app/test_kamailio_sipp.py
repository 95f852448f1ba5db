"""The test Kamailio (``tests/kamailio.py``, ``tests/data/kamailio/registrar_proxy.cfg``) with real peers.

- sipp "bob" registers over UDP with digest auth (401, qop=auth); sipp "alice" calls sip:bob@example.test
  through Kamailio as an outbound proxy with a pre-loaded Route (407, ACK on the INVITE's branch, INVITE with
  credentials); bob answers, and the ACK and BYE follow the Record-Route set back through Kamailio
  (RFC 3261 sections 10, 16.6, 12.2.1.1, 17.1.1.3, 22; RFC 2617).
- With ``algorithm="SHA-256"`` the challenge says ``algorithm=SHA-256`` and ``qop="auth"``, an RFC 7616
  SHA-256 response registers, and a wrong password is challenged again.
- Below min_expires a REGISTER gets 423 Interval Too Brief with Min-Expires (RFC 3261 section 10.3, step 7);
  credentials of one user cannot register another.
- The TLS listener accepts a client that checks the server certificate against ``kam.ca_file``.
- A TLS client that cannot accept connections (it names a port nobody listens on in Via and Contact) gets the
  INVITE for its registration, and later the ACK and BYE, over the connection it registered on: with the
  RFC 5923 Via ``;alias`` and without it (then the registration's received address and the Contact alias
  that Kamailio adds do it).

Every test starts its own Kamailio (about 0.3 s) and stops it, even when the test fails.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from typing import Callable, List, Optional

import pytest

from helpers import DATA, require_tool
from kamailio import Kamailio, kamailio_fixture

pytestmark = pytest.mark.interop

USERS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"}
SCENARIOS = DATA / "sipp"

kam = kamailio_fixture("kam", scope="function", users=USERS)
kam_sha256 = kamailio_fixture("kam_sha256", scope="function", users=USERS, algorithm="SHA-256")


# ------------------------------------------------------------------------------------------------ a raw UA


def _free_udp_port(span: int = 1) -> int:
    """A UDP port on 127.0.0.1 with the ``span - 1`` ports above it free too (sipp's RTP ports)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port + span > 65535:
                continue
            others = []
            try:
                for extra in range(1, span):
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    others.append(s)
                    s.bind(("127.0.0.1", port + extra))
            except OSError:
                continue
            finally:
                for s in others:
                    s.close()
            return port
    raise AssertionError("no free UDP ports")


def _digest(challenge: str, user: str, password: str, method: str, uri: str, header: str) -> str:
    """An ``Authorization``/``Proxy-Authorization`` header answering ``challenge`` (qop=auth, MD5/SHA-256)."""
    params = {
        key: quoted or bare for key, quoted, bare in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', challenge)
    }
    algorithm = params.get("algorithm", "MD5")
    hash_name = {"MD5": "md5", "SHA-256": "sha256"}[algorithm.upper()]

    def h(text: str) -> str:
        return hashlib.new(hash_name, text.encode()).hexdigest()

    assert "auth" in params.get("qop", "").split(","), challenge
    cnonce, nc = uuid.uuid4().hex[:16], "00000001"
    ha1 = h(f"{user}:{params['realm']}:{password}")
    ha2 = h(f"{method}:{uri}")
    response = h(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    return (
        f'{header}: Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
        f'uri="{uri}", '
        f'response="{response}", algorithm={algorithm}, qop=auth, nc={nc}, cnonce="{cnonce}"'
    )


class RawUA:
    """A minimal SIP user agent on one socket: UDP (``connect_udp``) or a TLS connection (``connect_tls``).

    ``via_port`` is what it claims in Via/Contact; over TLS it can be a port nobody listens on, which is the
    point: the proxy must use the connection (``;alias`` in the Via), not open a new one.
    """

    def __init__(self, user: str, kam: Kamailio) -> None:
        self.user = user
        self.kam = kam
        self.cseq = itertools.count(1)
        self.tag = uuid.uuid4().hex[:10]
        self.sock: Optional[socket.socket] = None
        self.transport = "UDP"
        self.via_port = 0
        self.buffer = b""
        self.last_via = ""
        self.via_alias = False

    def connect_udp(self) -> "RawUA":
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5.0)
        self.via_port = self.sock.getsockname()[1]
        return self

    def connect_tls(self, via_port: int, via_alias: bool = True) -> "RawUA":
        context = ssl.create_default_context(cafile=str(self.kam.ca_file))  # verifies chain and 127.0.0.1
        raw = socket.create_connection((self.kam.host, self.kam.tls_port), timeout=5.0)
        self.sock = context.wrap_socket(raw, server_hostname=self.kam.host)
        self.transport = "TLS"
        self.via_port = via_port
        self.via_alias = via_alias
        return self

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()

    @property
    def contact(self) -> str:
        suffix = ";transport=tls" if self.transport == "TLS" else ""
        return f"<sip:{self.user}@127.0.0.1:{self.via_port}{suffix}>"

    def via(self) -> str:
        """A Via with a new branch (kept as ``last_via``); ``;alias`` asks for connection reuse (RFC 5923)."""
        alias = ";alias" if self.via_alias else ""
        branch = uuid.uuid4().hex
        self.last_via = (
            f"SIP/2.0/{self.transport} 127.0.0.1:{self.via_port};branch=z9hG4bK{branch};rport{alias}"
        )
        return self.last_via

    def send(self, text: str) -> None:
        assert self.sock is not None
        data = text.replace("\n", "\r\n").encode()
        if self.transport == "UDP":
            self.sock.sendto(data, (self.kam.host, self.kam.udp_port))
        else:
            self.sock.sendall(data)

    def receive(self, timeout: float = 5.0) -> str:
        """The next whole SIP message (Content-Length framing on TLS)."""
        assert self.sock is not None
        self.sock.settimeout(timeout)
        if self.transport == "UDP":
            return self.sock.recv(65535).decode()
        while True:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if sep:
                match = re.search(rb"^(?:Content-Length|l)\s*:\s*(\d+)", head, re.I | re.M)
                length = int(match.group(1)) if match else 0
                if len(rest) >= length:
                    self.buffer = rest[length:]
                    return (head + sep + rest[:length]).decode()
            chunk = self.sock.recv(65535)
            if not chunk:
                raise ConnectionError("TLS connection closed by Kamailio")
            self.buffer += chunk

    def response(self, expect: str, timeout: float = 5.0) -> str:
        """The next final response (provisional ones skipped); its status line must start with ``expect``."""
        while True:
            message = self.receive(timeout)
            status = message.split("\r\n", 1)[0]
            if re.match(r"SIP/2.0 1\d\d", status):
                continue
            assert status.startswith(f"SIP/2.0 {expect}"), message
            return message

    def request(
        self,
        method: str,
        ruri: str,
        to: str,
        call_id: str,
        extra: str = "",
        body: str = "",
        cseq: Optional[int] = None,
    ) -> str:
        number = next(self.cseq) if cseq is None else cseq
        text = (
            f"{method} {ruri} SIP/2.0\nVia: {self.via()}\nMax-Forwards: 70\n"
            f"From: <sip:{self.user}@{self.kam.domain}>;tag={self.tag}\nTo: {to}\nCall-ID: {call_id}\n"
            f"CSeq: {number} {method}\nContact: {self.contact}\n{extra}"
            f"Content-Length: {len(body)}\n\n"
        )
        self.send(text)
        return text.replace("\n", "\r\n") + body

    def register(self, password: str, expires: int = 60, expect: str = "200") -> str:
        """REGISTER, answer the 401 with a digest response; the final response's status must be ``expect``."""
        call_id = uuid.uuid4().hex
        aor = f"<sip:{self.user}@{self.kam.domain}>"
        ruri = f"sip:{self.kam.domain}"
        self.request("REGISTER", ruri, aor, call_id, f"Expires: {expires}\n")
        challenge = self.response("401")
        auth = _digest(
            header_value(challenge, "WWW-Authenticate"),
            self.user,
            password,
            "REGISTER",
            ruri,
            "Authorization",
        )
        self.request("REGISTER", ruri, aor, call_id, f"Expires: {expires}\n{auth}\n")
        return self.response(expect)


def header_lines(message: str, *names: str) -> List[str]:
    """The header lines called one of ``names``, in order, without their line ends."""
    pattern = "|".join(re.escape(n) for n in names)
    return re.findall(rf"^(?:{pattern})\s*:[^\r\n]*", message, re.I | re.M)


def header_value(message: str, name: str) -> str:
    match = re.search(rf"^{name}\s*:\s*(.*?)\r?$", message, re.I | re.M)
    assert match, f"no {name} in:\n{message}"
    return match.group(1)


# ---------------------------------------------------------------------------------------------------- sipp


class SippRun:
    """One sipp process with its message trace and error log in ``workdir``."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.name = name
        self.messages = workdir / f"sipp_{name}_messages.log"
        self.errors = workdir / f"sipp_{name}_errors.log"
        self.port = _free_udp_port()
        self.proc: Optional["subprocess.Popen[bytes]"] = None
        self.output = ""

    def start(
        self, scenario: str, kam: Kamailio, call_id: str, user: str, password: str, *extra: str
    ) -> None:
        args: List[str] = [
            require_tool("sipp"),
            "-sf",
            str(SCENARIOS / scenario),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "15s",
            "-timeout_error",
            "-recv_timeout",
            "10000",
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-mp",
            str(_free_udp_port(span=4)),
            "-cid_str",
            call_id,
            "-au",
            user,
            "-ap",
            password,
            "-key",
            "user",
            user,
            *extra,
            "-trace_msg",
            "-message_file",
            str(self.messages),
            "-trace_err",
            "-error_file",
            str(self.errors),
            f"{kam.host}:{kam.udp_port}",
        ]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self.proc.communicate()
        self.output = (out + err).decode(errors="replace")
        return int(self.proc.returncode)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def trace(self) -> str:
        text = ""
        for path in (self.messages, self.errors):
            if path.exists():
                text += f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}\n"
        return text


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_sipp_registers_and_calls_through_kamailio(tmp_path: Path) -> None:
    require_tool("sipp")
    started = time.monotonic()
    with Kamailio(tmp_path, users=USERS, algorithm="MD5") as kam:
        # sipp ties every message to its single call by Call-ID: both processes use the same one
        call_id = f"kam-sipp-{uuid.uuid4().hex}@127.0.0.1"
        bob = SippRun(tmp_path, "bob")
        alice = SippRun(tmp_path, "alice")
        try:
            bob.start("kam_register_answer.xml", kam, call_id, "bob", USERS["bob"])
            # the call may only start once bob's binding is saved: his trace shows the 200 for CSeq 2 REGISTER
            _wait_for(lambda: _registered(bob), 10.0, "bob's registration")
            alice.start("kam_auth_call.xml", kam, call_id, "alice", USERS["alice"], "-key", "callee", "bob")
            alice_rc = alice.wait()
            bob_rc = bob.wait()
        finally:
            alice.kill()
            bob.kill()
        log = kam.log_text()
        details = (
            f"\nalice: {alice.output}\n{alice.trace()}\nbob: {bob.output}\n{bob.trace()}\nkamailio:\n"
            f"{kam.log_tail(60)}"
        )
        assert alice_rc == 0, details
        assert bob_rc == 0, details
        # both were challenged, and the calls' in-dialog requests went through Kamailio (Record-Route)
        assert re.search(r"401 for user bob", log), details
        assert re.search(r"407 for alice", log), details
        assert re.search(r"^.*relaying INVITE to sip:bob@127\.0\.0\.1:%d" % bob.port, log, re.M), details
        assert re.search(
            r"^.*BYE sip:bob@127\.0\.0\.1:%d from sip:alice@example\.test" % bob.port, log, re.M
        ), details
        assert re.search(r"^.*relaying BYE to sip:bob@127\.0\.0\.1:%d" % bob.port, log, re.M), details
        # what bob received carries Kamailio's Record-Route, and the BYE came from Kamailio's port
        assert f"Record-Route: <sip:127.0.0.1:{kam.udp_port};lr" in _read(bob.messages), details
    assert time.monotonic() - started < 15


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _registered(sipp: SippRun) -> bool:
    """sipp's trace holds a 200 for its authenticated REGISTER (CSeq 2), or sipp has already exited."""
    if sipp.proc is not None and sipp.proc.poll() is not None:
        return True
    blocks = re.split(r"^-{10,}.*$", _read(sipp.messages), flags=re.M)
    return any("SIP/2.0 200 OK" in block and "CSeq: 2 REGISTER" in block for block in blocks)


# ---------------------------------------------------------------------------------------------------- digest


def test_sha256_challenge_and_registration(kam_sha256: Kamailio) -> None:
    ua = RawUA("alice", kam_sha256).connect_udp()
    try:
        call_id = uuid.uuid4().hex
        aor = f"<sip:alice@{kam_sha256.domain}>"
        ua.request("REGISTER", f"sip:{kam_sha256.domain}", aor, call_id, "Expires: 60\n")
        challenge = ua.response("401")
        www = header_value(challenge, "WWW-Authenticate")
        assert www.startswith("Digest "), www
        assert re.search(r"algorithm=SHA-256\b", www), www
        assert 'qop="auth"' in www, www
        assert f'realm="{kam_sha256.domain}"' in www, www
        # a wrong password is challenged again, not accepted and not a crash
        bad = _digest(www, "alice", "wrong", "REGISTER", f"sip:{kam_sha256.domain}", "Authorization")
        ua.request("REGISTER", f"sip:{kam_sha256.domain}", aor, call_id, f"Expires: 60\n{bad}\n")
        ua.response("401")
        # the right one (RFC 7616, SHA-256 with qop=auth) registers
        ok = ua.register(USERS["alice"])
        assert re.search(r"^Contact:.*expires=60", ok, re.M), ok
    finally:
        ua.close()


def test_register_below_min_expires_gets_423_with_min_expires(kam: Kamailio) -> None:
    ua = RawUA("bob", kam).connect_udp()
    try:
        too_brief = ua.register(USERS["bob"], expires=5, expect="423")
        assert header_value(too_brief, "Min-Expires") == "10"
        ua.register(USERS["bob"], expires=10)
    finally:
        ua.close()


def test_auth_user_must_be_the_to_user(kam: Kamailio) -> None:
    ua = RawUA("alice", kam).connect_udp()
    try:
        call_id = uuid.uuid4().hex
        ruri, aor = f"sip:{kam.domain}", f"<sip:bob@{kam.domain}>"
        ua.request("REGISTER", ruri, aor, call_id, "Expires: 60\n")
        challenge = header_value(ua.response("401"), "WWW-Authenticate")
        auth = _digest(challenge, "alice", USERS["alice"], "REGISTER", ruri, "Authorization")
        ua.request("REGISTER", ruri, aor, call_id, f"Expires: 60\n{auth}\n")
        ua.response("403")
    finally:
        ua.close()


def test_ack_for_the_407_on_a_new_branch_is_dropped_not_looped(kam: Kamailio) -> None:
    """An ACK for Kamailio's own 407 that misses the stateless filter (wrong branch) ends at Kamailio.

    Its Request-URI names the served domain, so loose routing takes Kamailio's own Route as the next hop; the
    configuration must drop it rather than relay it to itself.
    """
    ua = RawUA("alice", kam).connect_udp()
    try:
        call_id = uuid.uuid4().hex
        route = f"Route: <sip:{kam.host}:{kam.udp_port};lr>\n"
        ua.request("INVITE", f"sip:bob@{kam.domain}", f"<sip:bob@{kam.domain}>", call_id, route)
        rejected = ua.response("407")
        ua.send(
            f"ACK sip:bob@{kam.domain} SIP/2.0\nVia: {ua.via()}\nMax-Forwards: 70\n"
            f"From: <sip:alice@{kam.domain}>;tag={ua.tag}\nTo: {header_value(rejected, 'To')}\n"
            f"Call-ID: {call_id}\nCSeq: 1 ACK\n{route}Content-Length: 0\n\n"
        )
        kam.wait_for_log(r"ACK sip:bob@example\.test from sip:alice@example\.test")
        time.sleep(0.3)
        assert "relaying ACK" not in kam.log_text(), kam.log_tail()
    finally:
        ua.close()


# ---------------------------------------------------------------------------------------------------- TLS


def test_tls_listener_answers_options(kam: Kamailio) -> None:
    context = ssl.create_default_context(cafile=str(kam.ca_file))
    with socket.create_connection((kam.host, kam.tls_port), timeout=5.0) as raw:
        with context.wrap_socket(raw, server_hostname=kam.host) as tls:
            local = tls.getsockname()[1]
            tls.sendall(
                (
                    f"OPTIONS sip:{kam.host}:{kam.tls_port};transport=tls SIP/2.0\r\n"
                    f"Via: SIP/2.0/TLS 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex};rport;alias\r\n"
                    f"Max-Forwards: 70\r\nFrom: <sip:probe@{kam.domain}>;tag=1\r\nTo: <sip:{kam.host}>\r\n"
                    f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                ).encode()
            )
            reply = tls.recv(65535).decode()
    assert reply.startswith("SIP/2.0 200"), reply
    assert kam.wait_for_log(r"OPTIONS sip:127\.0\.0\.1:%d;transport=tls from .* over tls" % kam.tls_port)


@pytest.mark.parametrize("via_alias", [True, False], ids=["via-alias", "no-via-alias"])
def test_tls_client_without_listener_gets_the_call_on_its_connection(kam: Kamailio, via_alias: bool) -> None:
    """carol registers over TLS naming a port nobody listens on; the INVITE, ACK and BYE still reach her."""
    nobody = _free_udp_port()  # a port number with no TCP listener either (checked below)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        assert probe.connect_ex(("127.0.0.1", nobody)) != 0
    carol = RawUA("carol", kam).connect_tls(via_port=nobody, via_alias=via_alias)
    alice = RawUA("alice", kam).connect_udp()
    try:
        registered = carol.register(USERS["carol"])
        assert f"sip:carol@127.0.0.1:{nobody};transport=tls" in registered
        call_id = uuid.uuid4().hex
        ruri, to = f"sip:carol@{kam.domain}", f"<sip:carol@{kam.domain}>"
        route = f"Route: <sip:{kam.host}:{kam.udp_port};lr>\n"
        alice.request("INVITE", ruri, to, call_id, route, cseq=1)
        rejected = alice.response("407")
        challenge = header_value(rejected, "Proxy-Authenticate")
        alice.send(  # the ACK for a non-2xx: the INVITE's Via (same branch) and Route, the 407's To tag
            f"ACK {ruri} SIP/2.0\nVia: {alice.last_via}\nMax-Forwards: 70\n"
            f"From: <sip:alice@{kam.domain}>;tag={alice.tag}\nTo: {header_value(rejected, 'To')}\n"
            f"Call-ID: {call_id}\nCSeq: 1 ACK\n{route}Content-Length: 0\n\n"
        )
        auth = _digest(challenge, "alice", USERS["alice"], "INVITE", ruri, "Proxy-Authorization")
        alice.request("INVITE", ruri, to, call_id, f"{route}{auth}\n", cseq=2)

        invite = carol.receive()
        assert invite.startswith(f"INVITE sip:carol@127.0.0.1:{nobody};transport=tls SIP/2.0"), invite
        # answer 200 over the same connection (Contact still names the port nobody listens on)
        carol.send(
            "SIP/2.0 200 OK\n"
            + "\n".join(header_lines(invite, "Record-Route", "Via", "From", "Call-ID", "CSeq"))
            + f"\nTo: {to};tag=carol1\nContact: {carol.contact}\nContent-Length: 0\n\n"
        )
        ok = alice.response("200")
        target = re.search(r"^Contact:\s*<([^>]+)>", ok, re.M).group(1)  # type: ignore[union-attr]
        # the UAC's route set is the 200's Record-Route list in the order received (RFC 3261 12.1.2)
        route_set = "".join(
            f"Route: {line.split(':', 1)[1].strip()}\n" for line in header_lines(ok, "Record-Route")
        )
        for method, number in (("ACK", 2), ("BYE", 3)):
            alice.send(
                f"{method} {target} SIP/2.0\nVia: {alice.via()}\nMax-Forwards: 70\n"
                f"From: <sip:alice@{kam.domain}>;tag={alice.tag}\nTo: {to};tag=carol1\nCall-ID: {call_id}\n"
                f"CSeq: {number} {method}\n{route_set}Content-Length: 0\n\n"
            )
        # two Kamailio workers relay them: either may come first
        received = {message.split(" ", 1)[0]: message for message in (carol.receive(), carol.receive())}
        assert sorted(received) == ["ACK", "BYE"], received
        for message in received.values():
            assert message.split("\r\n", 1)[0].endswith(f"sip:carol@127.0.0.1:{nobody};transport=tls SIP/2.0")
        bye = received["BYE"]
        carol.send(
            "SIP/2.0 200 OK\n"
            + "\n".join(header_lines(bye, "Via", "From", "To", "Call-ID", "CSeq"))
            + "\nContent-Length: 0\n\n"
        )
        alice.response("200")
        assert kam.wait_for_log(r"relaying BYE to sip:carol@127\.0\.0\.1:%d;transport=tls" % nobody)
    finally:
        carol.close()
        alice.close()
