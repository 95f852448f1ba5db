"""A real Kamailio registrar/proxy for the tests, run from the configuration in ``tests/data/kamailio/``.

``Kamailio(workdir, users={"alice": "alicepw"}, algorithm="MD5")`` is a context manager
(``kamailio_fixture`` makes a pytest fixture of it). On entry it

- picks free loopback ports on 127.0.0.1: one number for UDP and TCP (``udp_port == tcp_port``), another
  for TLS;
- makes a throwaway CA and a server certificate for 127.0.0.1, ``localhost`` and the domain with
  ``trustme`` (``ca_file`` is the PEM a client trusts; ``ca`` the ``trustme.CA`` itself);
- writes the db_text tables (``version`` and ``subscriber`` with the users' plain passwords, domain
  ``example.test``) into ``workdir/db``;
- starts ``kamailio`` in the foreground (``-DD``: no daemon) on ``tests/data/kamailio/registrar_proxy.cfg``,
  with the ports, paths and digest algorithm as ``-A NAME=value`` pre-processor defines; the pid file
  (``-P``), runtime directory (``-Y``) and working directory (``-w``) are in ``workdir``, memory is small
  (``-m 64 -M 8``), stdout and stderr go to ``workdir/kamailio.log`` (``log_text()``);
- waits until an OPTIONS over UDP is answered with 200 and the TCP and TLS ports accept connections
  (bounded; a failure raises ``KamailioError`` with the command and the log's tail; a port taken by someone
  else in between is retried with new ports).

On exit it sends SIGTERM, then SIGKILL to the whole process group after ``stop_timeout``, and waits, so no
Kamailio process outlives the test (an ``atexit`` hook stops any instance a test forgot).

What the configuration does (an RFC 3261 registrar and record-routing proxy; RFC 2617/7616 digest with
qop=auth and ``algorithm`` MD5 or SHA-256; RFC 5923-style connection reuse over TCP/TLS) is described at the
top of the .cfg.

A missing ``kamailio`` (it lives in /usr/sbin, often not on a user's PATH, so that is searched too) or a
missing TLS module skips the test on a laptop and fails it under ``CI=true``, like ``helpers.require_tool``.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, Iterator, List, Literal, Mapping, Optional, Set, Type

import pytest

from helpers import DATA, skip_or_fail

#: the routing configuration, used as is (its parameters are pre-processor defines)
CONFIG = DATA / "kamailio" / "registrar_proxy.cfg"
HOST = "127.0.0.1"
DOMAIN = "example.test"
#: digest algorithms Kamailio 5.6's auth module can challenge with (modparam "algorithm")
ALGORITHMS = ("MD5", "SHA-256")

_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_MODULE_GLOBS = (
    "/usr/lib/*/kamailio/modules",
    "/usr/lib/kamailio/modules",
    "/usr/lib64/kamailio/modules",
    "/usr/local/lib/*/kamailio/modules",
    "/usr/local/lib/kamailio/modules",
    "/usr/local/lib64/kamailio/modules",
)
_BIND_FAILURE = re.compile(r"Address already in use|bind\(.*\) failed|could not bind", re.IGNORECASE)

Scope = Literal["session", "package", "module", "class", "function"]

#: instances still running, stopped at interpreter exit should a test forget to
_RUNNING: Set["Kamailio"] = set()


class KamailioError(RuntimeError):
    """Kamailio did not start (or answer) in time; the message has the command line and the log's tail."""


def find_kamailio() -> Optional[str]:
    """Path of the kamailio binary: on PATH, else in the sbin directories; None when absent."""
    found = shutil.which("kamailio")
    if found:
        return found
    return shutil.which("kamailio", path=os.pathsep.join(_SBIN_DIRS))


def require_kamailio() -> str:
    """``helpers.require_tool("kamailio")`` that also looks in /usr/sbin: skip on a laptop, fail under CI."""
    path = find_kamailio()
    if path is None:
        skip_or_fail("kamailio not installed")
    assert path is not None
    return path


def find_module_dir(binary: str) -> Optional[str]:
    """Kamailio's module directory: ``$KAMAILIO_MODULE_DIR``, what ``kamailio -I`` says, or a usual place."""
    candidates: List[str] = []
    env = os.environ.get("KAMAILIO_MODULE_DIR")
    if env:
        candidates.append(env)
    try:
        info = subprocess.run([binary, "-I"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        info = ""
    match = re.search(r"paths to modules:\s*(\S+)", info)
    if match:
        candidates.extend(match.group(1).split(":"))
    prefix = Path(binary).resolve().parent.parent
    candidates.extend(sorted(glob.glob(str(prefix / "lib*" / "*" / "kamailio" / "modules"))))
    candidates.extend(sorted(glob.glob(str(prefix / "lib*" / "kamailio" / "modules"))))
    for pattern in _MODULE_GLOBS:
        candidates.extend(sorted(glob.glob(pattern)))
    for directory in candidates:
        if os.path.isfile(os.path.join(directory, "tm.so")):
            return directory
    return None


def _udp_and_tcp_port() -> int:
    """A port number free on 127.0.0.1 for both TCP and UDP."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((HOST, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise KamailioError("no port free for both UDP and TCP on 127.0.0.1")


def _tcp_port(avoid: int) -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((HOST, 0))
            port = int(tcp.getsockname()[1])
        if port != avoid:
            return port
    raise KamailioError("no free TCP port on 127.0.0.1")


def _db_text_escape(value: str) -> str:
    """A string field of a db_text row (``\\``, ``:``, newline, CR, tab and NUL are escaped)."""
    for raw, escaped in (
        ("\\", "\\\\"),
        (":", "\\:"),
        ("\n", "\\n"),
        ("\r", "\\r"),
        ("\t", "\\t"),
        ("\0", "\\0"),
    ):
        value = value.replace(raw, escaped)
    return value


def _quoted(value: str) -> str:
    """A string value for a ``-A NAME="value"`` define (the cfg parser reads it as a quoted string)."""
    if '"' in value or "\n" in value:
        raise ValueError(f"cannot pass {value!r} to kamailio as a define")
    return f'"{value}"'


class Kamailio:
    """One Kamailio serving ``domain`` (``example.test``) and 127.0.0.1, with its files in ``workdir``.

    Constructor: ``workdir`` (created if missing), ``users`` (name -> plain password), ``algorithm`` ("MD5"
    or "SHA-256": what the 401/407 challenges ask for), and keyword-only ``config`` (another .cfg taking the
    same defines), ``start_timeout`` / ``stop_timeout`` (seconds), ``debug`` (Kamailio's log level, the
    LOG_LEVEL define; 2 = info; the per-request NOTICE lines show at any level >= 1).

    After ``start()`` (or ``with``): ``host``, ``udp_port``, ``tcp_port`` (the same number), ``tls_port``,
    ``domain``, ``ca_file``, ``ca``, ``cert_file``, ``key_file``, ``log_file``, ``workdir``, ``pid``,
    ``command``, ``running``; ``port(transport)``, ``uri(transport)`` (the proxy as a SIP URI, e.g.
    ``sip:127.0.0.1:5061;transport=tls``), ``aor(user)``, ``log_text()``, ``log_tail(lines)``,
    ``wait_for_log(regex, timeout)``; ``stop()``.
    """

    def __init__(
        self,
        workdir: Path,
        users: Optional[Mapping[str, str]] = None,
        algorithm: str = "MD5",
        *,
        config: Path = CONFIG,
        start_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        debug: int = 2,
    ) -> None:
        canonical = {a.upper(): a for a in ALGORITHMS}
        if algorithm.upper() not in canonical:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, not {algorithm!r}")
        self.algorithm = canonical[algorithm.upper()]
        self.users: Dict[str, str] = dict(users or {})
        for name in self.users:
            if not re.fullmatch(r"[A-Za-z0-9._~!$&'()*+,;=-]+", name):
                raise ValueError(f"user name {name!r} is not a plain SIP user part")
        self.workdir = Path(workdir)
        self.config = Path(config)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.debug = debug
        self.host = HOST
        self.domain = DOMAIN
        self.udp_port = 0
        self.tcp_port = 0
        self.tls_port = 0
        self.log_file = self.workdir / "kamailio.log"
        self.ca_file = self.workdir / "ca.pem"
        self.cert_file = self.workdir / "server-cert.pem"
        self.key_file = self.workdir / "server-key.pem"
        self.db_dir = self.workdir / "db"
        self.run_dir = self.workdir / "run"
        self.pid_file = self.workdir / "kamailio.pid"
        self.ca: Any = None
        self.command: List[str] = []
        self._proc: Optional["subprocess.Popen[bytes]"] = None
        self._log: Optional[Any] = None

    # ------------------------------------------------------------------ addresses

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def port(self, transport: str) -> int:
        """The listening port for ``udp``, ``tcp`` or ``tls``."""
        return {"udp": self.udp_port, "tcp": self.tcp_port, "tls": self.tls_port}[transport.lower()]

    def uri(self, transport: str = "udp") -> str:
        """This proxy as a SIP URI (an outbound proxy / registrar address) for ``transport``."""
        transport = transport.lower()
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"sip:{self.host}:{self.port(transport)}{suffix}"

    def aor(self, user: str) -> str:
        return f"sip:{user}@{self.domain}"

    # ------------------------------------------------------------------ log

    def log_text(self) -> str:
        """Everything Kamailio has logged so far (one NOTICE line per request received or relayed)."""
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> "re.Match[str]":
        """The first match of ``pattern`` (a multiline regex) in the log; AssertionError after ``timeout``."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log_text())
            if match:
                return match
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{pattern!r} not in Kamailio's log after {timeout} s; tail:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "Kamailio":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    def start(self) -> "Kamailio":
        """Write the files, start Kamailio and wait until it answers; stops it again on any failure."""
        if self._proc is not None:
            raise RuntimeError("this Kamailio is already started")
        binary = require_kamailio()
        module_dir = find_module_dir(binary)
        if module_dir is None:
            skip_or_fail("kamailio's module directory (with tm.so) not found; set KAMAILIO_MODULE_DIR")
        assert module_dir is not None
        if not os.path.isfile(os.path.join(module_dir, "tls.so")):
            skip_or_fail(f"kamailio's TLS module (kamailio-tls-modules) is not in {module_dir}")
        for path in (self.workdir, self.db_dir, self.run_dir):
            path.mkdir(parents=True, exist_ok=True)
        self._write_certificates()
        self._write_tables()
        attempts = 3
        for attempt in range(attempts):
            self.udp_port = self.tcp_port = _udp_and_tcp_port()
            self.tls_port = _tcp_port(avoid=self.udp_port)
            try:
                self._spawn(binary, module_dir)
                self._wait_ready()
            except KamailioError:
                retry = attempt + 1 < attempts and _BIND_FAILURE.search(self.log_text()) is not None
                self.stop()
                if not retry:
                    raise
                continue
            except BaseException:
                self.stop()
                raise
            _RUNNING.add(self)
            return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the process group after ``stop_timeout``; waits for all. Idempotent."""
        proc, self._proc = self._proc, None
        _RUNNING.discard(self)
        if proc is not None:
            group = proc.pid  # start_new_session: Kamailio leads its own process group
            began = time.monotonic()
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._note(f"main process still running {self.stop_timeout} s after SIGTERM: SIGKILL")
                _killpg(group, signal.SIGKILL)
                proc.wait()
            # the main process reaps its workers; wait for stragglers, then kill them
            deadline = time.monotonic() + self.stop_timeout
            while _group_alive(group) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _group_alive(group):
                self._note(f"workers still running {self.stop_timeout} s after the main process: SIGKILL")
                _killpg(group, signal.SIGKILL)
                deadline = time.monotonic() + 2.0
                while _group_alive(group) and time.monotonic() < deadline:
                    time.sleep(0.02)
            self._note(f"stopped in {time.monotonic() - began:.2f} s (exit status {proc.returncode})")
        if self._log is not None:
            self._log.close()
            self._log = None

    def _note(self, text: str) -> None:
        """A line of the harness's own in Kamailio's log."""
        if self._log is not None:
            self._log.write(f"--- harness: {text}\n".encode())
            self._log.flush()

    # ------------------------------------------------------------------ internals

    def _write_certificates(self) -> None:
        import trustme

        self.ca = trustme.CA()
        server = self.ca.issue_cert(HOST, "localhost", self.domain)
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server.private_key_pem.write_to_path(str(self.key_file))
        self.cert_file.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))

    def _write_tables(self) -> None:
        """db_text tables: ``version`` (auth_db checks subscriber's schema version, 7) and ``subscriber``."""
        (self.db_dir / "version").write_text(
            "id(int,auto) table_name(string) table_version(int)\n1:version:1\n2:subscriber:7\n",
            encoding="utf-8",
        )
        rows = [
            f"{n}:{_db_text_escape(user)}:{_db_text_escape(self.domain)}:{_db_text_escape(password)}"
            for n, (user, password) in enumerate(sorted(self.users.items()), start=1)
        ]
        (self.db_dir / "subscriber").write_text(
            "id(int,auto) username(string) domain(string) password(string)\n"
            + "".join(r + "\n" for r in rows),
            encoding="utf-8",
        )

    def _spawn(self, binary: str, module_dir: str) -> None:
        defines = {
            "UDP_PORT": str(self.udp_port),
            "TCP_PORT": str(self.tcp_port),
            "TLS_PORT": str(self.tls_port),
            "MODULE_DIR": _quoted(module_dir),
            "DB_URL": _quoted(f"text://{self.db_dir}"),
            "TLS_CERT": _quoted(str(self.cert_file)),
            "TLS_KEY": _quoted(str(self.key_file)),
            "SIP_DOMAIN": _quoted(self.domain),
            "AUTH_ALGORITHM": _quoted(self.algorithm),
            "LOG_LEVEL": str(int(self.debug)),
        }
        self.command = [
            binary,
            "-DD",
            "-E",
            "--atexit=no",
            "-f",
            str(self.config),
            "-P",
            str(self.pid_file),
            "-Y",
            str(self.run_dir),
            "-w",
            str(self.workdir),
            "-m",
            "64",
            "-M",
            "8",
        ]
        for name, value in defines.items():
            self.command += ["-A", f"{name}={value}"]
        (self.workdir / "kamailio.cmd").write_text(
            " ".join(repr(a) for a in self.command) + "\n", encoding="utf-8"
        )
        if self._log is not None:
            self._log.close()
        self._log = open(self.log_file, "ab")
        self._note(f"starting on udp/tcp {self.udp_port}, tls {self.tls_port}")
        self._proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=str(self.workdir),
            start_new_session=True,
        )

    def _wait_ready(self) -> None:
        """OPTIONS over UDP until a 200 comes back, then the TCP and TLS listeners must accept connections."""
        deadline = time.monotonic() + self.start_timeout
        call_id = uuid.uuid4().hex
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, 0))
            probe.settimeout(0.1)
            local = probe.getsockname()[1]
            cseq = 0
            while True:
                self._check_alive()
                if time.monotonic() > deadline:
                    self._fail(
                        f"no answer to OPTIONS on udp {HOST}:{self.udp_port} in {self.start_timeout} s"
                    )
                cseq += 1
                request = (
                    f"OPTIONS sip:{HOST}:{self.udp_port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
                    f"Max-Forwards: 70\r\nFrom: <sip:harness@{HOST}>;tag=h{call_id[:8]}\r\n"
                    f"To: <sip:{HOST}:{self.udp_port}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} OPTIONS\r\n"
                    "Content-Length: 0\r\n\r\n"
                ).encode()
                try:
                    probe.sendto(request, (HOST, self.udp_port))
                    reply = probe.recv(65535)
                except (TimeoutError, ConnectionRefusedError):
                    continue
                if reply.startswith(b"SIP/2.0 200"):
                    break
        for port in (self.tcp_port, self.tls_port):
            while True:
                self._check_alive()
                try:
                    socket.create_connection((HOST, port), timeout=1.0).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self._fail(f"tcp {HOST}:{port} does not accept connections")
                    time.sleep(0.05)

    def _check_alive(self) -> None:
        assert self._proc is not None
        code = self._proc.poll()
        if code is not None:
            self._fail(f"kamailio exited with status {code} while starting")

    def _fail(self, why: str) -> None:
        if self._log is not None:
            self._log.flush()
        raise KamailioError(
            f"{why}\ncommand: {' '.join(self.command)}\nlog tail ({self.log_file}):\n{self.log_tail()}"
        )


def _killpg(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@atexit.register
def _stop_leftovers() -> None:
    for kam in list(_RUNNING):
        kam.stop()


def kamailio_fixture(name: str = "kam", *, scope: Scope = "module", **kwargs: Any) -> Any:
    """A pytest fixture called ``name`` that yields a started ``Kamailio(fresh tmp dir, **kwargs)``.

    In a test module: ``kam = kamailio_fixture("kam", users={"alice": "pw"}, algorithm="SHA-256")``; the
    module-level name must be the fixture's ``name``. ``scope`` is pytest's (a fresh Kamailio per test costs
    about 0.3 s).
    """

    def _fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
        with Kamailio(tmp_path_factory.mktemp(name), **kwargs) as kam:
            yield kam

    return pytest.fixture(scope=scope, name=name)(_fixture)
