"""Command-line options for SIP servers and for a listener on an open network (``pyvoip-fast``).

- Accounts (``--account``, ``--password-env``, ``--auth-user``, ``--proxy``, ``--registrar``, ``--transport``,
  ``--ca-file``, ``--expires``): registering with a SIP server and calling through it.
- Listener protection (``--allow``, ``--max-calls``, ``--max-setup``): who may send requests and how many calls
  are taken, turned into a ``sip.admission.Admission``; the listener's refusal counters go to
  ``<stem>-listener.json`` beside ``--stats-json``.

``cli.py`` adds these groups to its parsers and runs the commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from ..errors import AudioFileError
from ..media.clock import MediaClock
from .gc_policy import CollectorStats
from .realtime import DEFAULT_PRIORITY, PRIORITY_RANGE

logger = logging.getLogger("pyvoip_fast.cli")


def _add_account_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("account options (registering with a SIP server, digest auth, proxies, TCP/TLS)")
    g.add_argument("--account", metavar="AOR", type=_aor,
                   help="address of record, e.g. sip:alice@example.com: registered while the command runs; calls "
                        "are made and answered as it")
    g.add_argument("--password-env", metavar="VAR",
                   help="name of the environment variable that holds the password (never the password itself)")
    g.add_argument("--auth-user", metavar="NAME", help="digest username (default: the AOR's user part)")
    g.add_argument("--proxy", metavar="URI", type=_sip_uri("--proxy"),
                   help="outbound proxy, e.g. sip:proxy.example.com;transport=tcp (every request outside a call "
                        "goes through it; its ;transport= wins over --transport)")
    g.add_argument("--registrar", metavar="URI", type=_sip_uri("--registrar"),
                   help="REGISTER Request-URI (default: sip: and the AOR's domain)")
    g.add_argument("--transport", choices=("udp", "tcp", "tls"), default="udp",
                   help="default transport of requests whose URI names none (default udp)")
    g.add_argument("--ca-file", metavar="PEM", help="CA certificate(s) that sign the TLS server (default: the system "
                   "store); server certificates are always verified")
    g.add_argument("--expires", type=int, default=600, metavar="S",
                   help="registration lifetime to ask for, seconds (default 600; refreshed before it runs out)")


def _aor(text: str) -> str:
    from ..sip.uri import SipUri, parse_uri

    try:
        uri = parse_uri(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad address of record {text!r}: {exc}") from None
    if not isinstance(uri, SipUri) or not uri.user:
        raise argparse.ArgumentTypeError(f"an address of record is sip:user@domain, not {text!r}")
    return text.strip()


def _sip_uri(option: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        from ..sip.uri import SipUri, parse_uri

        try:
            uri = parse_uri(text.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"bad {option} URI {text!r}: {exc}") from None
        if not isinstance(uri, SipUri):
            raise argparse.ArgumentTypeError(f"{option} must be a sip: or sips: URI, not {text!r}")
        transport = uri.param("transport")
        if transport is not None and transport.lower() not in ("udp", "tcp", "tls"):
            raise argparse.ArgumentTypeError(f"{option}: unsupported transport {transport!r} (udp, tcp or tls)")
        return text.strip()

    return parse


def _add_listener_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("listener protection (who may call, how many calls)")
    g.add_argument("--allow", action="append", metavar="FROM", type=_allow_spec,
                   help="accept requests only from this address, network (CIDR) or host name; repeatable. Matched "
                        "against the packet's source (behind a proxy, allow the proxy). Others get 403 Forbidden")
    g.add_argument("--max-calls", type=_positive_int, default=500, metavar="N",
                   help="calls at once (default 500); beyond it new INVITEs get 503 with Retry-After")
    g.add_argument("--max-setup", type=_positive_int, default=100, metavar="N",
                   help="calls being set up at once (ringing or waiting for their ACK; default 100)")
    g.add_argument("--max-lag", type=_lag_ms, default=None, metavar="MS",
                   help="overload control: while 1 %% of the last second's packets go out more than MS "
                        "milliseconds late (with no call up: while the event loop runs MS late), new INVITEs get 503 "
                        "with Retry-After at once; calls already up and OPTIONS are untouched (default: off)")
    g.add_argument("--max-cpu", type=_cpu_percent, default=None, metavar="PCT",
                   help="overload control: new INVITEs get 503 with Retry-After at once when the calls up would "
                        "need more than PCT %% of one core at what a call costs now (measured over the last second, "
                        "set-ups included); calls already up and OPTIONS are untouched (default: off)")
    g.add_argument("--summary-only", action="store_true",
                   help="with --stats-json: write only <stem>-listener.json, with the totals over every call, not a "
                        "file per call (a load test's thousands of calls)")
    g.add_argument("--require-auth", action="store_true",
                   help="callers must prove the password of --password-env (digest, RFC 3261 section 22: 401 "
                        "challenge, nonces valid 5 minutes, replays refused) as --auth-user (default: pyvoip)")
    s = p.add_argument_group("scheduling")
    s.add_argument("--realtime", nargs="?", const=DEFAULT_PRIORITY, type=_rt_priority, default=None,
                   metavar="PRIORITY",
                   help="run under real-time scheduling (SCHED_RR at PRIORITY, 1-99, default %d): the media goes "
                        "out on time even when other processes want the same cores. Needs root, CAP_SYS_NICE or an "
                        "RLIMIT_RTPRIO (ulimit -r) of at least PRIORITY; when refused, the listener exits with an "
                        "error" % DEFAULT_PRIORITY)


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _rt_priority(text: str) -> int:
    lo, hi = PRIORITY_RANGE
    value = _whole(text)
    if not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"must be {lo}-{hi}, not {value}")
    return value


def _positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _scaled(lo: float, hi: float, *, noun: str, bounds: str, per: float) -> Callable[[str], float]:
    """A parser of a number from ``lo`` to ``hi`` (``noun`` and ``bounds`` name it in errors), divided by ``per``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {bounds}, not {text}")
        return value / per

    return parse


#: --max-lag in milliseconds, as seconds
_lag_ms = _scaled(1, 60000, noun="a number of milliseconds", bounds="1 to 60000 ms", per=1000.0)
#: --max-cpu in percent of one core, as a share
_cpu_percent = _scaled(1, 100, noun="a percentage", bounds="1 to 100 (percent of one core)", per=100.0)


def _allow_spec(text: str) -> str:
    """An address, a CIDR network, or a host name (resolved now to its addresses)."""
    import ipaddress
    import socket

    text = text.strip()
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        pass
    if "/" in text or not text:
        raise argparse.ArgumentTypeError(f"not an address, network or host name: {text!r}")
    try:
        infos = socket.getaddrinfo(text, None)
    except (socket.gaierror, UnicodeError):
        raise argparse.ArgumentTypeError(f"cannot resolve --allow host {text!r}") from None
    return ",".join(sorted({str(info[4][0]) for info in infos}))


def _require_auth(args: argparse.Namespace, password: Optional[str]) -> Any:
    """The ``DigestServer`` of ``--require-auth`` (None without it).

    Raises:
        ValueError: --require-auth without --password-env.
    """
    if not getattr(args, "require_auth", False):
        return None
    if password is None:
        raise ValueError("--require-auth needs --password-env (the password callers must prove)")
    from ..sip.digest_server import DigestServer

    user = args.auth_user or "pyvoip"
    realm = args.account.split("@", 1)[-1].split(";")[0] if getattr(args, "account", None) else "pyvoip-fast"
    return DigestServer(realm, {user: password})


def _admission(args: argparse.Namespace) -> Any:
    from ..sip.admission import Admission

    allow = None
    if getattr(args, "allow", None):
        allow = [net for spec in args.allow for net in spec.split(",")]
    return Admission(allow=allow, max_calls=getattr(args, "max_calls", 500), max_setup=getattr(args, "max_setup", 100))


class CallTotals:
    """What the calls of a listener added up to (``calls`` in ``<stem>-listener.json``)."""

    FIELDS = ("packets_sent", "packets_received", "packets_lost", "frames_concealed", "schedule_skips")

    def __init__(self) -> None:
        self.ended = 0
        self.sums = dict.fromkeys(self.FIELDS, 0)

    def add(self, stats: Any) -> None:
        """Count one call that ended (a call's ``packets_lost`` below zero, duplicates, counts as none)."""
        self.ended += 1
        for name in self.FIELDS:
            self.sums[name] += max(0, int(getattr(stats, name, 0) or 0))

    def as_dict(self) -> Dict[str, int]:
        return {"ended": self.ended, **self.sums}


def numbered(path: Optional[str], index: int, default_ext: str) -> Optional[str]:
    """The file of a listener's ``index``-th call: ``path`` itself for the first, ``<stem>-<index><ext>`` after."""
    if not path or index <= 1:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}-{index}{ext or default_ext}"


def _write_listener_stats(path: Optional[str], phone: Any, calls: int, totals: Optional[CallTotals] = None, *,
                          collector: Optional[CollectorStats] = None) -> None:
    """``<stem>-listener.json`` beside the per-call files: calls offered and requests refused, by reason, the
    totals over every call that ended and what the serving collector did (``gc_policy.CollectorStats``)."""
    if not path or phone.ua is None:
        return
    stem, ext = os.path.splitext(path)
    target = f"{stem}-listener{ext or '.json'}"
    admission = phone.ua.endpoint.admission
    data: Dict[str, Any] = {
        "calls_offered": calls, "rejected": admission.snapshot(),
        "limits": {"max_calls": admission.max_calls, "max_setup": admission.max_setup,
                   "allow": [str(n) for n in admission.allow] if admission.allow is not None else None}}
    if totals is not None:
        data["calls"] = totals.as_dict()
    try:
        clock = MediaClock.for_loop()
    except RuntimeError:  # pragma: no cover - always called inside the running loop
        clock = None
    if clock is not None:  # how late media went out over the whole run, every packet of every call
        p50, p99, p999, top = clock.lateness_percentiles(50, 99, 99.9, 100)
        data["media_clock"] = {"callbacks": sum(clock.lateness),
                               "lateness_ms": {"p50": p50, "p99": p99, "p99.9": p999, "max": top}}
    if collector is not None:
        data["collector"] = {**dataclasses.asdict(collector), "sweeps": collector.sweeps,
                             "longest_sweep_ms": round(collector.longest_sweep_ms, 2)}
    if phone.load is not None:
        data["loop_lag_worst_ms"] = round(phone.load.worst * 1000.0, 2)
    try:
        Path(target).write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise AudioFileError(f"cannot write statistics to {target}: {exc.strerror or exc}") from None
    logger.info("[SIP] Listener statistics written to %s (refused: %s)", target,
                ", ".join(f"{k} {v}" for k, v in data["rejected"].items()))
