"""The command-line peer: the original program's positional form, plus ``call``/``listen``/``demo``/``bench``.

Original form (unchanged from the program this project grew from)::

    pyvoip-fast <local_ip> <local_port> <remote_ip> <remote_port> <audio_file> caller|receiver [options]

Strategy: parse arguments (argparse; the first word decides between the positional form and a subcommand),
set up logging in the original program's style (plain ``[SIP] ...`` lines on stdout), run one asyncio
coroutine, and turn every expected failure into one line on stderr and a distinct non-zero exit status — never
a traceback. Ctrl-C hangs the call up (BYE) before exiting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import ipaddress
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Coroutine, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from .. import IMPLEMENTATION, __version__
from .._native import quiet_native_stderr
from ..errors import (AudioDeviceError, AudioFileError, AuthenticationError, CallError, PyVoipError,
                      RegistrationError, TransportError)
from .cli_report import _summary, _write_stats, follow_for_plot, write_plot
from .gc_policy import ServingCollector
from .realtime import RealtimeRefused, enter_realtime
from .timeline import plotting_available
from .cli_network import (CallTotals, _add_account_options, _add_listener_options, _admission, _require_auth,
                          _write_listener_stats, numbered)

logger = logging.getLogger("pyvoip_fast.cli")

#: exit statuses (documented in README and in ``--help``)
EXIT_OK = 0
EXIT_FAILURE = 1  # anything else that went wrong
EXIT_USAGE = 2  # bad command line (argparse)
EXIT_REJECTED = 3  # the peer answered 4xx/5xx/6xx (busy, rejected, unavailable, ...)
EXIT_NO_ANSWER = 4  # no answer (ring timeout) or no response at all (Timer B, 408)
EXIT_NETWORK = 5  # the peer vanished mid-call, or the network is unreachable
EXIT_AUDIO = 6  # bad audio file or audio device
EXIT_ADDRESS = 7  # bad address, port in use
EXIT_AUTH = 8  # registration failed, or the server refused our credentials (401/407/403)
EXIT_INTERRUPTED = 130  # Ctrl-C (the call was hung up first)
#: after Ctrl-C / SIGTERM, how long the BYEs of the calls being hung up may wait for their answers
SHUTDOWN_GRACE = 3.0

EXIT_HELP = """exit status:
  0 call completed    2 bad command line    3 call rejected (4xx/5xx/6xx, e.g. 486 Busy Here)
  4 no answer / no response (timeout)       5 network error (peer vanished)   6 bad audio file or device
  7 bad address or port in use              8 registration or authentication failed (wrong password, 403,
  1 other failure                             no answer from the registrar)   130 interrupted (call hung up)"""

SUBCOMMANDS = ("call", "listen", "demo", "bench")

BUNDLED_SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample.wav"
#: --codec value -> the codecs offered (and accepted), in preference order
_CODEC_CHOICES = {
    "pcmu": ("PCMU", "PCMA"),
    "pcma": ("PCMA", "PCMU"),
    "g722": ("G722", "PCMU", "PCMA"),
    "l16": ("L16", "PCMU", "PCMA"),
}


class UsageError(Exception):
    """A command-line value that parsed but makes no sense (reported like argparse errors, exit 2)."""


# -- argument parsing ------------------------------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 0-65535: {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def _lookahead(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= 5:
        raise argparse.ArgumentTypeError(f"must be 0-5 frames: {text!r}")
    return value


def _ptime(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of milliseconds: {text!r}") from None
    if value not in (10, 20, 30, 40, 50, 60):
        raise argparse.ArgumentTypeError(f"ptime must be 10, 20, 30, 40, 50 or 60 ms, not {value}")
    return value


def _host(text: str) -> str:
    """An IP literal or a resolvable name, returned as an IP literal."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(text, None, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        raise argparse.ArgumentTypeError(f"not an IP address or a known host name: {text!r}") from None
    return str(infos[0][4][0])


def _hostport(default_port: int) -> Callable[[str], Tuple[str, int]]:
    def parse(text: str) -> Tuple[str, int]:
        text = text.strip()
        if text.lower().startswith("sip:"):
            text = text[4:].split(";")[0]
            if "@" in text:
                text = text.split("@", 1)[1]
        host, port = text, str(default_port)
        if text.startswith("["):
            end = text.find("]")
            if end < 0:
                raise argparse.ArgumentTypeError(f"unclosed IPv6 bracket in {text!r}")
            host, rest = text[1:end], text[end + 1 :]
            if rest.startswith(":"):
                port = rest[1:]
            elif rest:
                raise argparse.ArgumentTypeError(f"bad address {text!r}")
        elif text.count(":") == 1:
            host, port = text.split(":")
        return _host(host), _port(port)

    return parse


class _Target(NamedTuple):
    """A ``call`` target: where to send (host, port) and, for a SIP URI, the URI itself, dialled as given."""

    host: str
    port: int
    uri: Optional[str]


def _call_target(text: str) -> _Target:
    """``host:port``, ``[v6]:port`` or a ``sip:``/``sips:`` URI, whose user part and parameters are kept (the
    Request-URI and To of the INVITE carry it as written)."""
    text = text.strip()
    if not text.lower().startswith(("sip:", "sips:")):
        host, port = _hostport(5060)(text)
        return _Target(host, port, None)
    from ..sip.uri import SipUri, parse_uri

    try:
        uri = parse_uri(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad SIP URI {text!r}: {exc}") from None
    if not isinstance(uri, SipUri):
        raise argparse.ArgumentTypeError(f"not a SIP URI: {text!r}")
    # the host is resolved when the call is placed (not at all when an outbound proxy routes it)
    return _Target(uri.host, uri.port or 5060, text)


def _add_call_options(p: argparse.ArgumentParser) -> None:
    _add_account_options(p)
    g = p.add_argument_group("call options")
    g.add_argument("--record", metavar="FILE", help="write what the listener hears to FILE (WAV, mono 16-bit at the codec's rate: 8 kHz for "
                        "G.711, 16 kHz for L16)")
    g.add_argument("--no-play", action="store_true", help="do not open a sound device (statistics and --record only)")
    g.add_argument("--stats-json", metavar="FILE", help="write the call's statistics as JSON to FILE")
    g.add_argument("--plot", metavar="FILE.png", help="draw the call into FILE.png: loss and concealment, jitter, "
                   "the jitter buffer's delay, target and adaptations, the running MOS (needs matplotlib: "
                   "pip install 'pyvoip-fast[plot]'; the demo draws pyvoip-fast-demo.png when it is installed)")
    g.add_argument("--codec", choices=tuple(_CODEC_CHOICES), default="pcmu",
                   help="preferred codec: pcmu (G.711 mu-law, default), pcma (A-law), g722 (HD voice: 16 kHz "
                        "G.722, payload type 9) or l16 (16 kHz linear PCM on a dynamic payload type); g722 and l16 "
                        "are offered only when asked for, first, with G.711 as the fallback")
    g.add_argument("--ptime", type=_ptime, default=20, metavar="MS", help="packet time in ms, 10-60 (default 20)")
    g.add_argument("--srtp", choices=("off", "optional", "required"), default="off",
                   help="encrypted media (SRTP, keys in SDP a=crypto): off (default), optional or required; keys "
                        "only travel over TLS signalling unless --srtp-insecure-signalling")
    g.add_argument("--srtp-insecure-signalling", action="store_true",
                   help="allow SRTP keys in SDP over unencrypted signalling (anyone who sees the SIP sees the keys)")
    g.add_argument("--duration", type=_positive_float, metavar="S", help="hang up after S seconds")
    g.add_argument("--ring-timeout", type=_positive_float, metavar="S",
                   help="caller: CANCEL the call when not answered within S seconds")
    g.add_argument("--t1", type=_positive_float, metavar="S", default=0.5,
                   help="SIP timer T1 in seconds (default 0.5; no response gives up after 64*T1 = 32 s)")
    g.add_argument("--media-timeout", type=_positive_float, metavar="S", default=60.0,
                   help="end the call as a network error after S seconds without any RTP or RTCP from the peer "
                   "(default 60; a vanished peer that answers with ICMP errors is noticed after 5 s)")
    g.add_argument("--rtcp-interval", type=_positive_float, metavar="S",
                   help="fixed RTCP report interval (default: RFC 3550 section 6.3 for a two-party call)")
    g.add_argument("--plc-lookahead", type=_lookahead, metavar="N", default=1,
                   help="conceal a lost packet towards the next N frames when the jitter buffer already holds "
                   "them (no extra delay; default 1, 0 = extrapolate from the past only)")
    g.add_argument("-v", "--verbose", action="count", default=0, help="per-packet lines (-v), protocol debug (-vv)")
    g.add_argument("-q", "--quiet", action="store_true", help="only warnings, errors and the final summary")


def _legacy_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyvoip-fast",
        description="Peer-to-peer VoIP call (SIP + RTP/RTCP, G.711) in the original program's form. "
        "The caller streams AUDIO_FILE (any common format) to the receiver and hangs up when it ends; "
        "the receiver answers one call, plays what it hears and sends AUDIO_FILE back if it exists.",
        epilog="Subcommands: call, listen, demo, bench ('pyvoip-fast demo --help').\n\n" + EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("local_ip", type=_host, help="local IP address for SIP and RTP")
    p.add_argument("local_port", type=_port, help="local SIP port")
    p.add_argument("remote_ip", type=_host, help="the other peer's IP address")
    p.add_argument("remote_port", type=_port, help="the other peer's SIP port")
    p.add_argument("audio_file", help="audio to send (WAV, AIFF, FLAC, OGG, MP3, ...); the receiver may name a "
                   "file that does not exist and then only listens")
    p.add_argument("role", choices=("caller", "receiver"), help="caller places the call, receiver answers it")
    p.add_argument("--version", action="version", version=f"pyvoip-fast {__version__} ({IMPLEMENTATION})")
    _add_call_options(p)
    _add_listener_options(p)
    return p


def _sub_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyvoip-fast",
        description="Cython-accelerated SIP/RTP G.711 voice-over-IP peer. Also accepts the original form: "
        "pyvoip-fast LOCAL_IP LOCAL_PORT REMOTE_IP REMOTE_PORT AUDIO_FILE caller|receiver [options]",
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"pyvoip-fast {__version__} ({IMPLEMENTATION})")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("call", help="call a peer and stream an audio file to it",
                       description="Call TARGET (host:port or sip:user@host:port), stream FILE, hang up at its end.",
                       epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("target", type=_call_target, help="host:port, [v6]:port or sip:user@host:port")
    c.add_argument("file", nargs="?", help="audio file to send (default: the bundled speech sample)")
    c.add_argument("--bind", type=_hostport(0), default=None, metavar="HOST:PORT",
                   help="local SIP address (default: 127.0.0.1 or :: matching the target, any free port)")
    c.add_argument("--late-offer", action="store_true",
                   help="send the INVITE without SDP: the 200 OK carries the peer's offer, our ACK the answer")
    c.add_argument("--no-early-media", action="store_true",
                   help="ignore SDP in 183 Session Progress (default: play and record early media)")
    _add_call_options(c)

    lst = sub.add_parser("listen", help="answer incoming calls and play them",
                         description="Answer incoming calls on HOST:PORT, play (and/or record) what is heard.",
                         epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    lst.add_argument("--bind", type=_hostport(5060), default=("127.0.0.1", 5060), metavar="HOST:PORT",
                     help="local SIP address (default 127.0.0.1:5060)")
    lst.add_argument("--file", help="audio file to send back to callers (default: listen only)")
    lst.add_argument("--echo", action="store_true",
                     help="echo test: send every caller back what it says (one frame later)")
    lst.add_argument("--early", metavar="FILE",
                     help="play FILE as early media (183 Session Progress, reliable when the caller supports "
                     "100rel) before answering each call")
    _add_listener_options(lst)
    lst.add_argument("--keep-serving", action="store_true",
                     help="keep answering calls (one after another, or several at once) until Ctrl-C")
    _add_call_options(lst)

    d = sub.add_parser("demo", help="a full call on loopback with the bundled speech sample",
                       description="Start an answering and a calling peer on 127.0.0.1 in one process, stream "
                       "the bundled speech sample, play it if a sound device exists, record it, and print "
                       "the SIP flow, RTCP reports and the call statistics with a MOS estimate.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--file", help="audio file to stream instead of the bundled sample")
    _add_call_options(d)
    d.set_defaults(record="pyvoip-fast-demo.wav", plot="pyvoip-fast-demo.png" if plotting_available() else None)

    b = sub.add_parser("bench", help="print this machine's real-time headroom",
                       description="Time the per-packet media path (G.711 encode + RTP build on send; RTP parse "
                       "+ statistics + decode on receive) and print how many real-time streams one core could carry.")
    b.add_argument("--seconds", type=_positive_float, default=2.0, help="how long to measure (default 2 s)")
    b.add_argument("-q", "--quiet", action="store_true", help=argparse.SUPPRESS)
    b.add_argument("-v", "--verbose", action="count", default=0, help=argparse.SUPPRESS)
    return p


def command_parsers() -> Dict[str, argparse.ArgumentParser]:
    """Every command's argument parser by name: ``pyvoip-fast`` (the commands), each command, and ``original``
    (the original program's positional form). The documentation's command-line reference is made from these."""
    main = _sub_parser()
    parsers: Dict[str, argparse.ArgumentParser] = {"pyvoip-fast": main}
    for action in main._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers.update(action.choices)
    parsers["original"] = _legacy_parser()
    return parsers


# -- logging and output ----------------------------------------------------------------------------------------


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING and not msg.startswith("["):
            msg = f"{record.levelname.lower()}: {msg}"
        return msg


def _setup_logging(verbose: int, quiet: bool) -> Callable[[], None]:
    """Log plain lines to stdout; returns a function that restores the previous logging set-up."""
    root = logging.getLogger()
    saved_level = root.level
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Formatter())
    root.addHandler(handler)
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    root.setLevel(level)
    quiet_names = ("pyvoip_fast.sip", "pyvoip_fast.app.useragent")
    # protocol internals (transactions, retransmissions) only at -vv; per-packet lines already at -v
    if verbose == 1:
        for name in quiet_names:
            logging.getLogger(name).setLevel(logging.INFO)

    def restore() -> None:
        root.removeHandler(handler)
        root.setLevel(saved_level)
        for name in quiet_names:
            logging.getLogger(name).setLevel(logging.NOTSET)

    return restore


def _fail(code: int, message: str) -> int:
    sys.stdout.flush()
    print(f"pyvoip-fast: error: {message}", file=sys.stderr)
    return code


# -- the commands ----------------------------------------------------------------------------------------------



def _phone(host: str, port: int, args: argparse.Namespace) -> Any:
    from .account import Account, password_from_env
    from .phone import Phone
    from .useragent import TimerConfig

    codecs = _CODEC_CHOICES[args.codec]
    media_options = {}
    if getattr(args, "rtcp_interval", None):
        media_options["rtcp_interval"] = args.rtcp_interval
    if getattr(args, "media_timeout", None):
        media_options["media_timeout"] = args.media_timeout
    media_options["plc_lookahead"] = getattr(args, "plc_lookahead", 1)
    account = None
    aor = getattr(args, "account", None)
    require_auth = None
    password = None
    if getattr(args, "password_env", None):
        try:
            password = password_from_env(args.password_env)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        require_auth = _require_auth(args, password)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    credentials = None
    if aor is None:
        if getattr(args, "registrar", None):
            raise UsageError("--registrar needs --account")
        if getattr(args, "auth_user", None) and password is None:
            raise UsageError("--auth-user needs --password-env")
        if password is not None and not getattr(args, "require_auth", False):
            from ..sip.digest import Credentials  # a peer that challenges us, without an account

            credentials = Credentials(args.auth_user or "pyvoip", password)
    else:
        if not 1 <= args.expires < 2 ** 31:
            raise UsageError(f"--expires must be 1 to 2147483647 seconds, not {args.expires}")
        account = Account(aor, password=password, auth_user=args.auth_user, registrar=args.registrar,
                          proxy=args.proxy, transport=args.transport, expires=args.expires, ca_file=args.ca_file,
                          register=getattr(args, "register_account", True))
    return Phone(host, port, codecs=codecs, ptime=args.ptime, timers=TimerConfig(t1=args.t1),
                 media_options=media_options, account=account, transport=getattr(args, "transport", "udp"),
                 outbound_proxy=getattr(args, "proxy", None), ca_file=getattr(args, "ca_file", None),
                 admission=_admission(args), credentials=credentials, require_auth=require_auth,
                 srtp=getattr(args, "srtp", "off"), srtp_insecure_signalling=getattr(args, "srtp_insecure_signalling",
                                                                                     False),
                 max_loop_lag=getattr(args, "max_lag", None), max_cpu=getattr(args, "max_cpu", None))


def _sound_device_problem() -> Optional[str]:
    """None when PyAudio can open the default output device, else why not."""
    try:
        import pyaudio
    except ImportError:
        return "PyAudio is not installed (pip install 'pyvoip-fast[audio]')"
    try:
        with quiet_native_stderr():
            pa = pyaudio.PyAudio()
            try:
                pa.get_default_output_device_info()
            finally:
                pa.terminate()
    except (OSError, IOError) as exc:
        return f"no default output device ({exc})"
    return None


def _want_play(args: argparse.Namespace) -> bool:
    """Play through the sound device unless --no-play; without a usable device, say so once and go on."""
    if args.no_play:
        return False
    problem = _sound_device_problem()
    if problem is not None:
        if getattr(args, "record", None):
            logger.warning("[Audio] Not playing: %s; the audio is recorded to %s", problem, args.record)
        else:
            logger.warning("[Audio] Not playing: %s; use --record FILE to keep the audio", problem)
        return False
    return True


async def _run_call(args: argparse.Namespace, local: Tuple[str, int], target: Union[str, Tuple[str, int]],
                    audio: Optional[str]) -> int:
    from .phone import CallEnd

    if audio is not None and not Path(audio).exists():
        raise AudioFileError(f"{audio}: no such file")
    play = _want_play(args)
    phone = _phone(local[0], local[1], args)
    async with phone:
        call = await phone.call(target, source=audio, record=args.record, play=play,
                                ring_timeout=args.ring_timeout, late_offer=getattr(args, "late_offer", False),
                                early_media=not getattr(args, "no_early_media", False))
        follower = follow_for_plot(call, args.plot)
        try:
            reason = await call.wait_done(timeout=args.duration)
        except asyncio.CancelledError:
            await call.hangup(timeout=SHUTDOWN_GRACE)
            raise
        finally:
            if call.ended:
                print(_summary(call.stats), flush=True)
                _write_stats(args.stats_json, call.stats)
                await write_plot(follower, args.plot, "pyvoip-fast call")
        if reason == CallEnd.PEER_LOST:
            return _fail(EXIT_NETWORK, "network error: the remote party stopped responding during the call")
    return EXIT_OK


async def _run_listen(args: argparse.Namespace, local: Tuple[str, int], audio: Optional[str],
                      expected: Optional[Tuple[str, int]], keep_serving: bool) -> int:
    from ..sip.sdp import NegotiationError
    from .phone import CallEnd

    source: Any = None
    early = getattr(args, "early", None)
    if early is not None:
        from ..audio import open_source as _check

        if not Path(early).exists():
            raise AudioFileError(f"{early}: no such file")
        _check(Path(early)).close()  # a bad prompt fails now, before any call
    if audio is not None:
        if Path(audio).exists():
            from ..audio import ClipCache, ClipSource, open_source

            open_source(Path(audio)).close()  # a bad file fails now, before any call
            # every caller hears the same file: a short one is decoded once, not opened and buffered per call
            source = audio
            if keep_serving:
                cache = ClipCache()
                # decoded now at the G.711 rate, not on the event loop while the first call sets up
                first = cache.source(audio)
                first.close()
                if isinstance(first, ClipSource):
                    logger.info("[Audio] %s decoded once for every caller (%.1f s)", audio,
                                len(first.samples) / first.rate)
                source = cache.opener(audio)
        else:
            logger.info("[Audio] %s does not exist: only listening (nothing is sent back)", audio)
    play = _want_play(args)
    phone = _phone(local[0], local[1], args)
    status = EXIT_OK
    collector: Optional[ServingCollector] = None
    async with phone:
        host, port = phone.local_address
        if keep_serving:  # collections scan only the last second's objects (app/gc_policy.py)
            endpoint = phone.ua.endpoint
            collector = ServingCollector(busy=lambda: endpoint.live_calls, kept=lambda: endpoint.kept_calls)
            collector.start(asyncio.get_running_loop())
        logger.info("[SIP] Listening on %s:%d", host, port)
        n = 0
        tasks: List["asyncio.Task[int]"] = []
        totals = CallTotals()

        async def serve(incoming: Any, index: int) -> int:
            record = numbered(args.record, index, ".wav")
            if getattr(args, "echo", False):
                from .call_audio import EchoLoop

                echo = EchoLoop()
                call = await phone.answer(incoming, source=echo, sink=echo, record=record, play=play)
            else:
                call = await phone.answer(incoming, source=source, record=record, play=play,
                                          early=getattr(args, "early", None))
            plot = numbered(args.plot, index, ".png")
            follower = follow_for_plot(call, plot)
            try:
                reason = await call.wait_done(timeout=args.duration)
            except asyncio.CancelledError:
                await call.hangup(timeout=SHUTDOWN_GRACE)
                raise
            finally:
                if call.ended:
                    print(_summary(call.stats), flush=True)
                    totals.add(call.stats)
                    if not getattr(args, "summary_only", False):
                        _write_stats(numbered(args.stats_json, index, ""), call.stats)
                    await write_plot(follower, plot, f"pyvoip-fast listen, call {index}")
            if reason == CallEnd.PEER_LOST:
                return _fail(EXIT_NETWORK, "network error: the remote party stopped responding during the call")
            return EXIT_OK

        failures = {"last": -1e9, "quiet": 0}

        def report(index: int, task: "asyncio.Task[int]") -> None:
            """Keep serving: a call that failed is logged (and forgotten), the listener goes on. Under a flood of
            calls that fail (never ACKed, say) one line per 10 s says how many failed meanwhile."""
            if task in tasks:
                tasks.remove(task)
            if task.cancelled():
                return
            exc = task.exception()
            if exc is None:
                return
            now = time.monotonic()
            if now - failures["last"] < 10.0:
                failures["quiet"] += 1
                return
            more = f" ({failures['quiet']} more failed calls in the last 10 s not logged)" if failures["quiet"] else ""
            failures["last"], failures["quiet"] = now, 0
            logger.error("[Call] Call %d failed: %s%s", index, exc or type(exc).__name__, more)

        try:
            while True:
                incoming = await phone.incoming()
                n += 1
                remote = tuple(incoming.remote_addr[:2])
                if expected is not None and (remote[0], remote[1]) != expected:
                    logger.info("[SIP] Call from %s:%d (expected %s:%d): answering anyway",
                                remote[0], remote[1], expected[0], expected[1])
                if not keep_serving:
                    try:
                        return await serve(incoming, n)
                    except (NegotiationError, CallError) as exc:
                        # answered 488 (RFC 3264 §6), or a delayed offer whose ACK brought no usable answer (ended
                        # with BYE): that call never started, so it is not "the" call this one-shot listener waits
                        # for; a stray INVITE with an odd offer must not end the listener
                        if isinstance(exc, CallError) and exc.status_code != 488:
                            raise
                        logger.warning("[Call] Call %d not accepted (%s): still waiting for a call", n, exc)
                        continue
                task = asyncio.ensure_future(serve(incoming, n))
                tasks.append(task)
                task.add_done_callback(functools.partial(report, n))
        finally:
            running = list(tasks)
            for t in running:
                t.cancel()  # each hangs up (BYE) and prints its statistics; report() logs any failure
            await asyncio.gather(*running, return_exceptions=True)
            if collector is not None:
                collector.stop()
            _write_listener_stats(args.stats_json, phone, n, totals,
                                  collector=collector.stats if collector is not None else None)
    return status


async def _run_demo(args: argparse.Namespace) -> int:

    audio = args.file or str(BUNDLED_SAMPLE)
    if not Path(audio).exists():
        raise AudioFileError(f"{audio}: no such file")
    play = _want_play(args)
    logger.info("[Demo] pyvoip-fast %s (%s): a call on 127.0.0.1 streaming %s", __version__, IMPLEMENTATION,
                Path(audio).name)
    answerer = _phone("127.0.0.1", 0, args)
    caller = _phone("127.0.0.1", 0, args)
    async with answerer, caller:
        target = answerer.local_address

        async def answer() -> Any:
            call = await answerer.answer(record=args.record, play=play)
            follower = follow_for_plot(call, args.plot)
            await call.wait_done()
            await write_plot(follower, args.plot, "pyvoip-fast demo: what the receiver heard")
            return call

        answering = asyncio.ensure_future(answer())
        try:
            call = await caller.call(target, source=audio, ring_timeout=args.ring_timeout)
            await call.wait_done(timeout=args.duration)
            received = await asyncio.wait_for(answering, 10.0)
        finally:
            if not answering.done():
                answering.cancel()
                with contextlib.suppress(BaseException):
                    await answering
    print(_summary(call.stats, "[Demo] Caller statistics"), flush=True)
    print(_summary(received.stats, "[Demo] Receiver statistics"), flush=True)
    _write_stats(args.stats_json, received.stats)
    if args.record:
        logger.info("[Demo] What the receiver heard is in %s", args.record)
    if args.plot:
        logger.info("[Demo] A picture of the call is in %s", args.plot)
    return EXIT_OK


def _run_bench(args: argparse.Namespace) -> int:
    from .bench import realtime_headroom

    print(realtime_headroom(seconds=args.seconds), flush=True)
    return EXIT_OK


# -- error mapping and the entry point -------------------------------------------------------------------------


def _status_for_call_error(exc: CallError) -> Tuple[int, str]:
    """Exit status and one-line message for a failed call, as ``EXIT_HELP`` documents them.

    408 (Timer B: no response at all), 480 (temporarily unavailable: nobody picked up) and 487 (our CANCEL after
    the ring timeout) are "no answer" (4); every other final 4xx/5xx/6xx is a rejection (3); anything else (status
    0: the call was torn down locally, e.g. the user agent closed) is a plain failure (1).
    """
    code = exc.status_code
    if code == 408:
        if exc.reason == "Request Timeout":  # Timer B: our INVITE was never answered at all
            return EXIT_NO_ANSWER, f"no response from the peer: {exc} (is anything listening there?)"
        return EXIT_NO_ANSWER, f"no response from the peer: {exc}"  # e.g. our 200 OK never got its ACK
    if code in (480, 487):
        return EXIT_NO_ANSWER, f"no answer: {exc}"
    if code == 503 and "(transport error" in exc.reason:  # nothing answered: we could not send (RFC 3261 §8.1.3.1)
        return EXIT_NETWORK, f"network error: {exc.reason.split('(transport error: ', 1)[-1].rstrip(')')}"
    if 400 <= code < 700:
        return EXIT_REJECTED, f"call rejected: {exc}"
    return EXIT_FAILURE, f"call failed: {exc}"


def _run(coro_factory: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run the command's coroutine; Ctrl-C cancels it (its cleanup hangs up) and exits 130."""

    async def runner() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(coro_factory())
        interrupted = False

        def on_signal() -> None:
            nonlocal interrupted
            if interrupted:  # a second Ctrl-C / SIGTERM: no more waiting for anyone
                logger.warning("[Call] Interrupted again: exiting without waiting for the BYEs")
                logging.shutdown()
                sys.stdout.flush()
                os._exit(EXIT_INTERRUPTED)
            interrupted = True
            logger.info("[Call] Interrupted: hanging up (at most %.0f s for the BYEs to be answered)",
                        SHUTDOWN_GRACE)
            task.cancel()
            # a backstop should some cleanup wait beyond the BYEs' grace: the process ends regardless
            loop.call_later(SHUTDOWN_GRACE + 2.0, on_signal)

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, on_signal)
            loop.add_signal_handler(signal.SIGTERM, on_signal)
        try:
            return await task
        except asyncio.CancelledError:
            if interrupted:
                return EXIT_INTERRUPTED
            raise

    try:
        return asyncio.run(runner())
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except UsageError as exc:
        return _fail(EXIT_USAGE, str(exc))
    except ValueError as exc:  # a combination of options the call cannot honour (SRTP required in clear, ...)
        return _fail(EXIT_USAGE, str(exc))
    except RegistrationError as exc:
        return _fail(EXIT_AUTH, str(exc))
    except AuthenticationError as exc:
        return _fail(EXIT_AUTH, f"authentication failed: {exc}")
    except CallError as exc:
        code, message = _status_for_call_error(exc)
        return _fail(code, message)
    except AudioFileError as exc:
        return _fail(EXIT_AUDIO, f"bad audio file: {exc}")
    except AudioDeviceError as exc:
        return _fail(EXIT_AUDIO, f"audio device: {exc}")
    except TransportError as exc:
        return _fail(EXIT_ADDRESS, str(exc))
    except PyVoipError as exc:
        return _fail(EXIT_FAILURE, str(exc))
    except OSError as exc:
        return _fail(EXIT_NETWORK, f"network error: {exc.strerror or exc}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``pyvoip-fast`` and ``python -m pyvoip_fast``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args_list if not a.startswith("-")), None)
    legacy = first is not None and first not in SUBCOMMANDS
    parser = _legacy_parser() if legacy else _sub_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return int(exc.code or 0)
    if not legacy and args.command is None:
        parser.print_help()
        return EXIT_OK
    if getattr(args, "plot", None) and not plotting_available():
        return _fail(EXIT_USAGE, "--plot needs matplotlib: pip install 'pyvoip-fast[plot]'")
    restore_logging = _setup_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    started = time.monotonic()
    try:
        if legacy:
            local = (args.local_ip, args.local_port)
            remote = (args.remote_ip, args.remote_port)
            if args.role == "caller":
                status = _run(lambda: _run_call(args, local, remote, args.audio_file))
            else:
                status = _run(lambda: _run_listen(args, local, args.audio_file, remote, keep_serving=False))
        elif args.command == "call":
            target = args.target
            bind = args.bind or (("::1" if ":" in target.host else "127.0.0.1"), 0)
            dial = target.uri if target.uri is not None else (target.host, target.port)
            status = _run(lambda: _run_call(args, bind, dial, args.file or str(BUNDLED_SAMPLE)))
        elif args.command == "listen":
            if args.echo and args.file:
                return _fail(EXIT_USAGE, "--echo sends back what it hears: it cannot also send --file")
            if args.realtime is not None:  # before the loop and its threads start (they inherit it)
                try:
                    enter_realtime(args.realtime)
                except RealtimeRefused as exc:
                    return _fail(EXIT_FAILURE, str(exc))
            status = _run(lambda: _run_listen(args, args.bind, args.file, None, keep_serving=args.keep_serving))
        elif args.command == "demo":
            status = _run(lambda: _run_demo(args))
        else:
            status = _run_bench(args)
    finally:
        logger.debug("finished in %.2f s", time.monotonic() - started)
        restore_logging()
    return status


if __name__ == "__main__":
    sys.exit(main())
