"""A real Kamailio registrar/proxy for the tests, started from ``tests/data/kamailio/kamailio.cfg``.

``Kamailio(workdir, users={"alice": "pw"}, algorithm="MD5")`` is a context manager: it picks free loopback ports for
UDP, TCP and TLS, makes a test CA and a server certificate for 127.0.0.1 with ``trustme`` (``ca_file`` is the CA
clients trust), writes the db_text tables with the users' plain passwords, fills in the configuration template,
starts ``kamailio`` in the foreground (its log goes to ``workdir/kamailio.log``), waits until it answers an
OPTIONS, and on exit stops it (SIGTERM, then SIGKILL) and waits for every process it forked.

A missing ``kamailio`` skips the test on a laptop and fails it under ``CI=true`` (``helpers.require_tool``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Dict, List, Optional, Type

from helpers import skip_or_fail

TEMPLATE = Path(__file__).resolve().parent / "data" / "kamailio" / "kamailio.cfg"
_MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/kamailio/modules",
                "/usr/lib/kamailio/modules", "/usr/lib64/kamailio/modules", "/usr/local/lib64/kamailio/modules")


def find_kamailio() -> Optional[str]:
    """The kamailio binary (it lives in /usr/sbin, often not on a user's PATH), or None."""
    found = shutil.which("kamailio")
    if found:
        return found
    for candidate in ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _module_dir() -> Optional[str]:
    for d in _MODULE_DIRS:
        if os.path.exists(os.path.join(d, "tm.so")):
            return d
    return None


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        port = _free_port(socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port for UDP and TCP")


class Kamailio:
    """A running Kamailio (see the module docstring).

    Attributes:
        host: ``127.0.0.1``; udp_port / tcp_port (the same number) / tls_port; domain: ``example.test``;
        ca_file: the test CA's PEM; log_file: Kamailio's log.
    """

    domain = "example.test"
    host = "127.0.0.1"

    def __init__(self, workdir: Path, users: Dict[str, str], algorithm: str = "MD5", *,
                 template: Path = TEMPLATE, values: Optional[Dict[str, str]] = None) -> None:
        """``template``: another configuration (the dispatcher recipe of ``deploy/kamailio/``) with the same
        placeholders, plus ``values`` for its own."""
        if algorithm not in ("MD5", "SHA-256"):
            raise ValueError(f"Kamailio challenges with MD5 or SHA-256, not {algorithm}")
        self.workdir = Path(workdir)
        self.users = dict(users)
        self.algorithm = algorithm
        self.udp_port = self.tcp_port = 0
        self.tls_port = 0
        self.ca_file = self.workdir / "ca.pem"
        self.log_file = self.workdir / "kamailio.log"
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self.template = Path(template)
        self.values = dict(values or {})

    # -- set-up -------------------------------------------------------------------------------------------------
    def _write_files(self, modules: str) -> Path:
        import trustme

        self.workdir.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert.private_key_pem.write_to_path(str(self.workdir / "server-key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.workdir / "server-cert.pem"))
        tls_cfg = self.workdir / "tls.cfg"
        tls_cfg.write_text(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
            f"private_key = {self.workdir / 'server-key.pem'}\ncertificate = {self.workdir / 'server-cert.pem'}\n\n"
            "[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n")
        db = self.workdir / "db"
        db.mkdir(exist_ok=True)
        (db / "version").write_text("id(int,auto) table_name(string) table_version(int) \n0:subscriber:7\n")
        rows = "".join(f"{i}:{user}:{self.domain}:{password}:unused:unused\n"
                       for i, (user, password) in enumerate(sorted(self.users.items()), start=1))
        (db / "subscriber").write_text(
            "id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string) \n" + rows)
        self.udp_port = self.tcp_port = _free_udp_tcp_port()
        self.tls_port = _free_port(socket.SOCK_STREAM)
        values = {"HOST": self.host, "UDP_PORT": str(self.udp_port), "TCP_PORT": str(self.tcp_port),
                  "TLS_PORT": str(self.tls_port), "MODULES": modules, "TLS_CFG": str(tls_cfg), "DBDIR": str(db),
                  "ALGORITHM": self.algorithm, **self.values}
        text = self.template.read_text()
        for name, value in values.items():
            text = text.replace(f"@{name}@", value)
        cfg = self.workdir / "kamailio.cfg"
        cfg.write_text(text)
        return cfg

    def start(self) -> "Kamailio":
        binary = find_kamailio()
        modules = _module_dir()
        if binary is None or modules is None:
            skip_or_fail("kamailio (Debian packages kamailio and kamailio-tls-modules) is not installed")
        assert binary is not None and modules is not None
        cfg = self._write_files(modules)
        run_dir = self.workdir / "run"
        run_dir.mkdir(exist_ok=True)
        log = open(self.log_file, "wb")
        try:
            self._proc = subprocess.Popen(
                [binary, "-DD", "-E", "-f", str(cfg), "-P", str(self.workdir / "kamailio.pid"), "-Y", str(run_dir),
                 "-m", "64", "-M", "8", "-w", str(self.workdir)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        try:
            self._wait_ready(10.0)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.2)
            port = s.getsockname()[1]
            while time.monotonic() < deadline:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise RuntimeError(f"kamailio exited with {self._proc.returncode}:\n{self.log_tail()}")
                call_id = secrets.token_hex(6)
                s.sendto((f"OPTIONS sip:{self.host}:{self.udp_port} SIP/2.0\r\n"
                          f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id}\r\n"
                          f"From: <sip:probe@127.0.0.1>;tag={call_id}\r\nTo: <sip:{self.host}>\r\n"
                          f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                          ).encode(), (self.host, self.udp_port))
                try:
                    if s.recv(4096).startswith(b"SIP/2.0 200") and self._tcp_ready(call_id):
                        return
                except OSError:
                    pass
        raise RuntimeError(f"kamailio did not answer OPTIONS within {timeout:.0f} s:\n{self.log_tail()}")

    def _tcp_ready(self, tag: str) -> bool:
        """An OPTIONS over TCP is answered too: Kamailio's TCP main process is up (stopped before that, it may
        ignore SIGTERM for seconds)."""
        try:
            with socket.create_connection((self.host, self.tcp_port), timeout=1.0) as c:
                local = c.getsockname()
                c.sendall((f"OPTIONS sip:{self.host}:{self.tcp_port};transport=tcp SIP/2.0\r\n"
                           f"Via: SIP/2.0/TCP 127.0.0.1:{local[1]};branch=z9hG4bKt{tag}\r\n"
                           f"From: <sip:probe@127.0.0.1>;tag=t{tag}\r\nTo: <sip:{self.host}>\r\n"
                           f"Call-ID: t{tag}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                           ).encode())
                return c.recv(4096).startswith(b"SIP/2.0 200")
        except OSError:
            return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        # the forked children are in the same session: make sure none is left
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # -- inspection -----------------------------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def requests(self, method: str) -> List[str]:
        """The log lines of the requests of ``method`` Kamailio received (``pyvoip-test: METHOD ...``)."""
        return [line for line in self.log_text().splitlines() if f"pyvoip-test: {method} " in line]

    def __enter__(self) -> "Kamailio":
        return self.start()

    def __exit__(self, et: Optional[Type[BaseException]], ev: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.stop()
