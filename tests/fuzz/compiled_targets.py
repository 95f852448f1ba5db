"""The entry points of the compiled modules, fed structured arguments and checked against their twins.

Shared by the coverage-guided harness (``atheris_compiled.py``, libFuzzer's inputs) and the hypothesis test
``tests/test_compiled_parity_fuzz.py`` (CI, every run): ``dispatch(provider)`` decodes one input into one call
of one entry point on the compiled module and on its pure-Python twin, which must return the same thing (and
leave their output tables the same) or raise the same exception type; ``Mismatch`` otherwise. The inputs reach
the edges: buffers of any size, offset and stride, integers at and past every C type's limits, NaN and
infinities, tables of any shape, stream indexes, audio cursors and address families, and tables that alias one
another. Datagrams from the batch senders go only to sockets of this process on loopback.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import time
from typing import Any, Callable, List, Tuple

import numpy as np

from pyvoip_fast import _compat

COMPILED_AVAILABLE = not _compat.NO_EXTENSIONS and _compat.implementation() == "cython"
COMPILED = {name: _compat.module_for(name, "cython" if COMPILED_AVAILABLE else "python")
            for name in _compat.EXTENSION_MODULES}
TWIN = {name: _compat.module_for(name, "python") for name in _compat.EXTENSION_MODULES}
REFUSALS = (ValueError, TypeError, OverflowError, BufferError, IndexError, KeyError)

# datagrams from the batch senders go to these sockets of our own (never to a port the input chooses)
_RX4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
_RX4.bind(("127.0.0.1", 0))
_RX4.setblocking(False)
_TX4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
_TX4.connect(_RX4.getsockname())
_TX4.setblocking(False)
_TXU = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # one unconnected sender: one source address
_TXU.bind(("127.0.0.1", 0))
_FAN = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
_FAN.bind(("127.0.0.1", 0))
_FAN.setblocking(False)
_FAN6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
try:
    _FAN6.bind(("::1", 0))
    _RX6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    _RX6.bind(("::1", 0))
    _RX6.setblocking(False)
except OSError:  # no IPv6 loopback: the v6 rows then name an unused port on ::1 (refused by the kernel)
    _RX6 = None
_FAN6.setblocking(False)


def _sockaddr4() -> bytes:
    port = _RX4.getsockname()[1]
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton("127.0.0.1")


def _sockaddr6() -> bytes:
    port = _RX6.getsockname()[1] if _RX6 is not None else 9
    return (struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0)
            + socket.inet_pton(socket.AF_INET6, "::1") + struct.pack("=I", 0))


def _drain() -> None:
    for sock in (_RX4, _RX6):
        while sock is not None:
            try:
                sock.recv(2048)
            except OSError:
                break


class Mismatch(AssertionError):
    """The compiled module and its twin disagreed."""


def _outcome(fn: Callable[[], Any]) -> Tuple[str, Any]:
    try:
        return "ok", fn()
    except REFUSALS as exc:
        return "raised", type(exc).__name__


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    return bool(a == b)


def _both(name: str, call: Callable[[Any], Any]) -> Tuple[str, Any]:
    """Run ``call`` with the compiled module ``name`` and with its twin; they must agree."""
    got = _outcome(lambda: call(COMPILED[name]))
    want = _outcome(lambda: call(TWIN[name]))
    if got[0] != want[0] or not _same(got[1], want[1]):
        raise Mismatch(f"{name}: compiled {got!r} != twin {want!r}")
    return got


# -- decoding structured arguments --------------------------------------------------------------------------------

def _int(fdp: Any) -> int:
    """An integer from the edges that matter: small, at a field's limit, just past it, or anything in 64 bits."""
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        return int(fdp.ConsumeIntInRange(-2, 300))
    if kind == 1:
        edge = (0xFF, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, 1 << 31, 1 << 32, 1 << 63, 1 << 64, 1 << 16)[
            fdp.ConsumeIntInRange(0, 8)]
        return edge + fdp.ConsumeIntInRange(-1, 1)
    if kind == 2:
        return -int(fdp.ConsumeIntInRange(0, 1 << 40))
    return int(fdp.ConsumeInt(8))


def _float(fdp: Any) -> float:
    kind = fdp.ConsumeIntInRange(0, 2)
    if kind == 0:
        return float(fdp.ConsumeFloat())  # any double: NaN, infinities, subnormals
    if kind == 1:
        return (math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 2.0 ** 63)[fdp.ConsumeIntInRange(0, 7)]
    return float(fdp.ConsumeIntInRange(0, 10 ** 6)) / 1000.0


def _bytes(fdp: Any, most: int = 256) -> bytes:
    return bytes(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, most)))


def _buffer(fdp: Any, most: int = 256) -> Any:
    """A writable buffer: a bytearray, or a view into one at an offset (odd addresses for 16-bit samples)."""
    size = fdp.ConsumeIntInRange(0, most)
    kind = fdp.ConsumeIntInRange(0, 2)
    if kind == 0:
        return bytearray(size)
    if kind == 1:
        return memoryview(bytearray(size + 1))[1:]
    return memoryview(bytearray(2 * size + 2))[::2]  # not contiguous: must be refused, never written


def _copy(buffer: Any) -> Any:
    if isinstance(buffer, memoryview):
        base = bytearray(buffer.obj)
        return memoryview(base)[1:] if buffer.contiguous else memoryview(base)[::2]
    return bytearray(buffer)


# -- targets ------------------------------------------------------------------------------------------------------

def _rtp_parse(fdp: Any) -> None:
    data = bytes(fdp.ConsumeBytes(fdp.remaining_bytes()))

    def parse(m: Any) -> Any:
        p = m.RtpPacket.parse(data)
        return (p.version, p.payload_type, p.sequence_number, p.timestamp, p.ssrc, p.marker, p.csrc,
                p.extension_profile, bytes(p.extension_data), p.padding_length, bytes(p.payload), len(p),
                p.header_extensions(), p.serialize())

    _both("_rtp", parse)


def _rtcp_parse(fdp: Any) -> None:
    reduced = fdp.ConsumeBool()
    data = bytes(fdp.ConsumeBytes(fdp.remaining_bytes()))

    def parse(m: Any) -> Any:
        records = m.parse_rtcp(data, reduced_size=reduced)
        return [(type(r).__name__, r.serialize()) for r in records]

    _both("_rtp", parse)


def _rtp_write(fdp: Any) -> None:
    which = fdp.ConsumeIntInRange(0, 3)
    buffer = _buffer(fdp, 64)
    offset = _int(fdp)
    fields = [_int(fdp) for _ in range(4)]
    marker = fdp.ConsumeBool()
    payload = _bytes(fdp, 48)
    alias = (fdp.ConsumeIntInRange(0, 64), fdp.ConsumeIntInRange(0, 64)) if fdp.ConsumeIntInRange(0, 3) == 0 \
        else None

    def write(m: Any) -> Any:
        out = _copy(buffer)
        pl: Any = payload
        if alias is not None:  # the payload a view into the very buffer it is written into
            pl = memoryview(out)[alias[0]: alias[0] + alias[1]]
        if which == 0:
            n = m.write_header(out, offset, *fields, marker)
        elif which == 1:
            n = m.write_packet(out, offset, *fields, pl, marker)
        elif which == 2:
            n = m.build_packet(*fields, payload, marker)
        else:
            packet = m.RtpPacket(payload_type=fields[0], sequence_number=fields[1], timestamp=fields[2],
                                 ssrc=fields[3], marker=marker, payload=pl)
            n = packet.pack_into(out, offset)
        return n, bytes(out)

    _both("_rtp", write)


def _rtp_build(fdp: Any) -> None:
    csrc = [_int(fdp) for _ in range(fdp.ConsumeIntInRange(0, 17))]
    profile = _int(fdp) if fdp.ConsumeBool() else None
    ext = _bytes(fdp, 40)
    padding = _int(fdp)
    elements = [(_int(fdp), _bytes(fdp, 20)) for _ in range(fdp.ConsumeIntInRange(0, 6))]
    two_byte = fdp.ConsumeBool()
    payload = _bytes(fdp, 40)

    def build(m: Any) -> Any:
        packet = m.RtpPacket(payload_type=0, payload=payload, csrc=csrc, extension_profile=profile,
                             extension_data=ext, padding_length=padding)
        wire = packet.serialize()
        again = m.RtpPacket.parse(wire)  # what we build, we parse back
        return wire, again.serialize()

    _both("_rtp", build)
    _both("_rtp", lambda m: m.encode_header_extensions(elements, two_byte))


def _rtcp_build(fdp: Any) -> None:
    ssrc = _int(fdp)
    blocks = [tuple(_int(fdp) for _ in range(7)) for _ in range(fdp.ConsumeIntInRange(0, 33))]
    cname = _bytes(fdp, 300)
    reason = _bytes(fdp, 300) if fdp.ConsumeBool() else None
    ntp = _int(fdp) if fdp.ConsumeBool() else 0x1234567890ABCDEF
    counts = [_int(fdp) for _ in range(3)]

    def build(m: Any) -> Any:
        wire = m.build_report(ssrc, blocks, cname, ntp_timestamp=ntp, rtp_timestamp=counts[0],
                              packet_count=counts[1], octet_count=counts[2], reason=reason)
        return wire, [r.serialize() for r in m.parse_rtcp(wire)]

    _both("_rtp", build)


def _g711_arrays(fdp: Any) -> None:
    name = ("ulaw_encode", "alaw_encode", "ulaw_decode", "alaw_decode", "ulaw_to_alaw", "alaw_to_ulaw",
            "ulaw_decode_array", "alaw_decode_array")[fdp.ConsumeIntInRange(0, 7)]
    data = _bytes(fdp, 320)
    use_out = fdp.ConsumeBool()
    out = _buffer(fdp, 700)
    compat = fdp.ConsumeBool()

    def run(m: Any) -> Any:
        fn = getattr(m, name)
        if name.endswith("_array"):  # no ``out``; the input as it came, or as the buffer drawn
            got = fn(data if use_out else _copy(out))
            return got.dtype.str, got.flags.writeable, got.tobytes()
        kwargs = {"audioop_compatible": compat} if name == "ulaw_encode" else {}
        if not use_out:
            return fn(data, **kwargs)
        target = _copy(out)
        return fn(data, target, **kwargs), bytes(target)

    _both("_g711", run)


def _g711_samples(fdp: Any) -> None:
    value = _int(fdp)
    compat = fdp.ConsumeBool()
    _both("_g711", lambda m: (_outcome(lambda: m.ulaw_encode_sample(value, audioop_compatible=compat)),
                              _outcome(lambda: m.alaw_encode_sample(value)),
                              _outcome(lambda: m.ulaw_decode_sample(value)),
                              _outcome(lambda: m.alaw_decode_sample(value))))


def _g722_stream(fdp: Any) -> None:
    """One G.722 encoder and decoder fed a run of calls: buffers of any size (odd sample counts held over), into
    ``out`` buffers of any size, offset or stride, with flush and reset between; every outcome and the state they
    leave (the held sample, and what the next call codes) must be the same in both implementations."""
    bitrate = (64000, 56000, 48000, 64000, _int(fdp))[fdp.ConsumeIntInRange(0, 4)]
    steps = []
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        kind = fdp.ConsumeIntInRange(0, 5)  # encode, decode, encode into out, decode into out, flush, reset
        data = _bytes(fdp, 240)
        out = _buffer(fdp, 600) if kind in (2, 3) else None
        steps.append((kind, data, out))

    def run(m: Any) -> Any:
        enc, dec = m.Encoder(bitrate), m.Decoder(bitrate)
        results = []
        for kind, data, out in steps:
            if kind in (2, 3):
                target = _copy(out)
                fn = enc.encode if kind == 2 else dec.decode
                results.append((_outcome(lambda fn=fn, d=data, t=target: fn(d, t)), bytes(target)))
            elif kind in (0, 1):
                fn = enc.encode if kind == 0 else dec.decode
                results.append(_outcome(lambda fn=fn, d=data: fn(d)))
            elif kind == 4:
                results.append(enc.flush())
            else:
                enc.reset()
                dec.reset()
        return results, enc.pending, enc.encode(bytes(range(64))), dec.decode(bytes(range(0, 256, 7)))

    _both("_g722", run)


def _stats(fdp: Any) -> None:
    clock = _int(fdp) if fdp.ConsumeBool() else 8000
    updates = [(_int(fdp), _int(fdp), _float(fdp), _int(fdp)) for _ in range(fdp.ConsumeIntInRange(0, 40))]
    block = (_int(fdp), _int(fdp), _int(fdp))

    def run(m: Any) -> Any:
        stats = m.ReceiverStats(clock)
        verdicts = [_outcome(lambda u=u: stats.update(*u)) for u in updates]
        rb = _outcome(lambda: stats.report_block(*block))
        if rb[0] == "ok":
            b = rb[1]
            rb = ("ok", (b.ssrc, b.fraction_lost, b.cumulative_lost, b.highest_sequence, b.jitter, b.lsr, b.dlsr))
        return (verdicts, rb, stats.valid, stats.received, stats.expected, stats.cumulative_lost,
                stats.extended_max_seq, stats.cycles, stats.jitter, stats.duplicates, stats.reordered,
                stats.octets_received)

    _both("_stats", run)


def _transit(fdp: Any) -> None:
    """The jitter buffer's transit statistics: any parameters (NaN, negative, a window the coalescing could empty,
    histograms of any size) and a run of packets with any timestamps and arrival times, with the window cleared
    and the quantile read in between."""
    clock = _int(fdp) if fdp.ConsumeBool() else 8000
    floats = {k: _float(fdp) for k in ("max_delay", "window", "coalesce", "release_time", "peak", "forget",
                                        "quantile")}
    counts = {"bins": fdp.ConsumeIntInRange(-1, 1200), "quantile_every": fdp.ConsumeIntInRange(0, 7)}
    steps = [(fdp.ConsumeIntInRange(0, 5), _int(fdp), _float(fdp)) for _ in range(fdp.ConsumeIntInRange(0, 40))]

    def run(m: Any) -> Any:
        made = _outcome(lambda: m.TransitStats(clock, **floats, **counts))
        if made[0] != "ok":
            return made
        ts = made[1]
        out = []
        for what, ets, arrival in steps:
            if what == 0:
                out.append(("clear", ts.clear_window()))
            elif what == 1:
                out.append(_outcome(ts.spread_quantile))
            else:
                out.append(_outcome(lambda e=ets, a=arrival: ts.observe(e, a)))
            out.append((ts.jitter, ts.peak, ts.entries, ts.oldest))
        return out

    _both("_stats", run)


def _tables(fdp: Any) -> Tuple[int, int, Any, Any, Any, Any, int, Any, int]:
    nstreams = fdp.ConsumeIntInRange(0, 6)
    width = fdp.ConsumeIntInRange(0, 200)
    packets = np.frombuffer(bytes(fdp.ConsumeBytes(nstreams * width)).ljust(nstreams * width, b"\0"),
                            dtype=np.uint8).reshape(nstreams, width).copy()
    count = fdp.ConsumeIntInRange(0, 12)
    streams = np.array([fdp.ConsumeIntInRange(0, nstreams + 1) if fdp.ConsumeIntInRange(0, 9) else
                        fdp.ConsumeIntInRange(0, 0xFFFFFFFF) for _ in range(count)], dtype=np.uint32)
    seqs = np.array([fdp.ConsumeIntInRange(0, 0xFFFF) for _ in range(nstreams + fdp.ConsumeIntInRange(-1, 1)
                                                                     if nstreams else nstreams)], dtype=np.uint16)
    timestamps = np.array([fdp.ConsumeIntInRange(0, 0xFFFFFFFF) for _ in range(nstreams)], dtype=np.uint32)
    length = fdp.ConsumeIntInRange(-2, width + 2) if fdp.ConsumeIntInRange(0, 9) else _int(fdp)
    sent_at = np.zeros(fdp.ConsumeIntInRange(0, 16), dtype=np.float64)
    out_pos = fdp.ConsumeIntInRange(-2, 16) if fdp.ConsumeIntInRange(0, 9) else _int(fdp)
    return nstreams, width, packets, streams, seqs, timestamps, length, sent_at, out_pos


def _batch(fdp: Any) -> None:
    nstreams, _, packets, streams, seqs, timestamps, length, sent_at, out_pos = _tables(fdp)
    ts_step = fdp.ConsumeIntInRange(0, 0xFFFFFFFF)
    fds = np.array([(_TX4.fileno(), -1)[fdp.ConsumeIntInRange(0, 1)] for _ in range(nstreams)], dtype=np.int32)
    alias = fdp.ConsumeIntInRange(0, 7) == 0

    def run(m: Any) -> Any:
        p, q, t, s = packets.copy(), seqs.copy(), timestamps.copy(), sent_at.copy()
        if alias and p.size >= 2 * len(q):  # the sequence numbers inside the packets they stamp
            q = p.reshape(-1).view(np.uint8)[: 2 * len(q)].view(np.uint16)
        result = m.send_rtp_batch(fds, p, streams, length, q, t, ts_step, s, out_pos)
        return sum(result), p, q, t

    try:
        _both("_udp", run)
    finally:
        _drain()


def _batch_to(fdp: Any) -> None:
    nstreams, _, packets, streams, seqs, timestamps, length, sent_at, out_pos = _tables(fdp)
    ts_step = fdp.ConsumeIntInRange(0, 0xFFFFFFFF)
    addr_width = 28 if fdp.ConsumeIntInRange(0, 7) else fdp.ConsumeIntInRange(0, 40)
    rows = []
    for _ in range(nstreams):
        kind = fdp.ConsumeIntInRange(0, 5)
        row = _sockaddr6() if kind == 1 else struct.pack("=H", fdp.ConsumeIntInRange(0, 0xFFFF)) if kind == 2 \
            else _sockaddr4()
        rows.append(row.ljust(max(addr_width, 28), b"\0")[:addr_width])
    addrs = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(nstreams, addr_width).copy()
    audio = np.frombuffer(_bytes(fdp, 400), dtype=np.uint8).copy()
    cursor_width = 3 if fdp.ConsumeIntInRange(0, 7) else fdp.ConsumeIntInRange(0, 4)
    cursors = np.array([[fdp.ConsumeIntInRange(-2, len(audio) + 2) if fdp.ConsumeIntInRange(0, 5) else _int(fdp)
                         for _ in range(cursor_width)] for _ in range(nstreams)], dtype=object)
    try:
        cursors = cursors.astype(np.int64).reshape(nstreams, cursor_width)
    except OverflowError:
        return  # a cursor beyond int64 never reaches the module: numpy refuses it first
    fan = _FAN6 if fdp.ConsumeBool() else _FAN
    alias = fdp.ConsumeIntInRange(0, 7)

    def run(m: Any) -> Any:
        p, q, t, c, s = packets.copy(), seqs.copy(), timestamps.copy(), cursors.copy(), sent_at.copy()
        if alias == 0 and c.size * 2 >= len(t):  # the reported crash: timestamps inside the audio cursors
            t = c.reshape(-1).view(np.uint32)[: len(t)]
        elif alias == 1 and s.size * 4 >= len(q):  # sequence numbers inside the send times
            q = s.view(np.uint16)[: len(q)]
        result = m.send_rtp_batch_to(fan.fileno(), p, streams, length, q, t, ts_step, addrs, audio, c, s, out_pos)
        return sum(result), p, q, t, c

    try:
        _both("_udp", run)
    finally:
        _drain()


def _drain_and_timers(fdp: Any) -> None:
    limit = _int(fdp)
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        _TX4.send(_bytes(fdp, 64))
    _outcome(lambda: COMPILED["_udp"].recv_drain(_RX4.fileno(), limit))
    _drain()
    when = _float(fdp)
    fd = COMPILED["_udp"].timer_open()
    try:
        _outcome(lambda: COMPILED["_udp"].timer_arm(fd, when))
        COMPILED["_udp"].timer_disarm(fd)
    finally:
        os.close(fd)


def _recv_stamped(fdp: Any) -> None:
    """The same datagrams waiting on one socket per implementation, read with the same (arbitrary) limit: the
    same data, sources and error, and stamps that are real arrival times."""
    limit = _int(fdp)
    datagrams = [_bytes(fdp, 96) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    sockets = {}
    for which in ("compiled", "twin"):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        rx.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_TIMESTAMPNS", 35), 1)
        sockets[which] = rx
        for d in datagrams:
            _TXU.sendto(d, rx.getsockname())
    time.sleep(0.002)
    try:
        got = _outcome(lambda: COMPILED["_udp"].recv_stamped(sockets["compiled"].fileno(), limit))
        want = _outcome(lambda: TWIN["_udp"].recv_stamped(sockets["twin"].fileno(), limit))
    finally:
        for rx in sockets.values():
            rx.close()
    if got[0] == "ok" and want[0] == "ok":
        now = time.time()
        for _, _, stamp in got[1][0] + want[1][0]:
            if not (stamp == -1.0 or now - 60 < stamp <= now):
                raise Mismatch(f"recv_stamped: stamp {stamp!r} is not an arrival time")
        got = ("ok", ([(d, a) for d, a, _ in got[1][0]], got[1][1]))
        want = ("ok", ([(d, a) for d, a, _ in want[1][0]], want[1][1]))
    if got[0] != want[0] or not _same(got[1], want[1]):
        raise Mismatch(f"_udp.recv_stamped: compiled {got!r} != twin {want!r}")

def _plc_push(fdp: Any) -> None:
    """The concealer's timeline shift: a history of any doubles (NaN, infinities, past int16), int16 or float64
    frames of any length (or another type), an ``out`` of any length, layout or type, any delay; the history left
    behind and ``out`` must match too."""
    size = fdp.ConsumeIntInRange(0, 64)
    hist = np.array([_float(fdp) for _ in range(size)], dtype=np.float64)
    n = fdp.ConsumeIntInRange(0, 48)
    kind = fdp.ConsumeIntInRange(0, 3)  # int16, float64, int32 (refused), not contiguous (refused)
    if kind == 1:
        samples: Any = np.array([_float(fdp) for _ in range(n)], dtype=np.float64)
    else:
        samples = np.frombuffer(_bytes(fdp, 2 * n).ljust(2 * n, b"\0"), dtype=np.int16).copy()
        samples = samples.astype(np.int32) if kind == 2 else samples[::2] if kind == 3 else samples
    out_n = n if fdp.ConsumeBool() else fdp.ConsumeIntInRange(0, 48)
    delay = _int(fdp) if fdp.ConsumeIntInRange(0, 3) == 0 else fdp.ConsumeIntInRange(0, 40)
    fdp_float = fdp.ConsumeBool()  # push_float (a float64 frame is refused by push, and int16 by push_float)

    def run(m: Any) -> Any:
        h, out = hist.copy(), np.full(out_n, 7, dtype=np.int16)
        fn = m.push_float if fdp_float else m.push
        return _outcome(lambda: fn(h, samples, out, delay)), h, out

    _both("_plc", run)


def _plc_timeline(fdp: Any) -> None:
    """The concealer's received-frame path: any parameters (negative, NaN, a delay past the history, history and
    background buffers of any size, type or layout), then a run of int16 frames of any length and content (with
    ``out`` of any length), float pushes and bare ``track`` calls of any length; the timeline, the output and the
    estimate must match after each."""
    size = fdp.ConsumeIntInRange(0, 48)
    flen = fdp.ConsumeIntInRange(0, 24)
    kinds = (fdp.ConsumeIntInRange(0, 5), fdp.ConsumeIntInRange(0, 5))  # 0-3 float64; 4 float32, 5 strided
    params = (fdp.ConsumeIntInRange(-1, 40) if fdp.ConsumeIntInRange(0, 5) else _int(fdp),
              fdp.ConsumeIntInRange(-1, 40) if fdp.ConsumeIntInRange(0, 5) else _int(fdp),
              fdp.ConsumeIntInRange(-1, 12),
              _float(fdp) if fdp.ConsumeBool() else 1.0 + fdp.ConsumeIntInRange(0, 1000) / 1e5,
              _float(fdp) if fdp.ConsumeBool() else 2.5)
    steps = []
    for _ in range(fdp.ConsumeIntInRange(0, 12)):
        what, n = fdp.ConsumeIntInRange(0, 2), fdp.ConsumeIntInRange(0, 40)
        scale = (0, 3, 300, 32767)[fdp.ConsumeIntInRange(0, 3)]
        raw = np.frombuffer(_bytes(fdp, 2 * n).ljust(2 * n, b"\0"), dtype=np.int16).astype(np.int64)
        samples = raw % (2 * scale + 1) - scale
        out_n = n if fdp.ConsumeIntInRange(0, 5) else fdp.ConsumeIntInRange(0, 40)
        steps.append((what, samples.astype(np.int16), out_n, _int(fdp) if what == 2 and fdp.ConsumeBool() else n))

    def array(n: int, kind: int) -> Any:
        if kind == 4:
            return np.zeros(n, dtype=np.float32)
        if kind == 5:
            return np.zeros(2 * n, dtype=np.float64)[::2]
        return np.zeros(n, dtype=np.float64)

    def run(m: Any) -> Any:
        hist, frames = array(size, kinds[0]), array(flen, kinds[1])
        made = _outcome(lambda: m.Timeline(hist, frames, *params))
        if made[0] != "ok":
            return made
        t = made[1]
        got = []
        for what, samples, out_n, n in steps:
            out = np.full(out_n, 7, dtype=np.int16)
            if what == 0:
                got.append(_outcome(lambda: t.push(samples, out)))
            elif what == 1:
                got.append(_outcome(lambda: m.push_float(hist, samples.astype(np.float64), out, params[0])))
                got.append(_outcome(lambda: t.track(len(samples))))
            else:
                got.append(_outcome(lambda: t.track(n)))
            frame = t.background_frame
            got.append((out.copy(), hist.copy(), t.floor, t.energy, t.seen, None if frame is None else frame.copy()))
        return got

    _both("_plc", run)


def _plc_lookahead_core(fdp: Any) -> None:
    """The lookahead concealer's compiled common frame with any state a caller could leave in its fields: an
    output timeline of any length, type, layout or writability, a base and capacity anywhere (negative, past the
    timeline, past every limit), frames of any length and layout, a plain concealer in a loss or not; every output,
    error and field must match the twin's."""
    from pyvoip_fast.codecs import plc

    def ssize(v: int) -> int:  # any C Py_ssize_t (the compiled fields hold no more)
        return (v + (1 << 63)) % (1 << 64) - (1 << 63)

    size = fdp.ConsumeIntInRange(-2, 24)
    z_len = fdp.ConsumeIntInRange(0, 96)
    # mostly a state the concealer itself could be in (so the common frame is taken), sometimes anything
    fields = {
        "frame_samples": size,
        "lookahead_frames": fdp.ConsumeIntInRange(0, 3) if fdp.ConsumeIntInRange(0, 5) else ssize(_int(fdp)),
        "latency_samples": fdp.ConsumeIntInRange(0, 8),
        "_keep": fdp.ConsumeIntInRange(-4, 64) if fdp.ConsumeIntInRange(0, 5) else ssize(_int(fdp)),
        "_cap": z_len if fdp.ConsumeIntInRange(0, 3) else fdp.ConsumeIntInRange(-4, 96) if fdp.ConsumeBool()
        else ssize(_int(fdp)),
        "_base": fdp.ConsumeIntInRange(0, 8) if fdp.ConsumeIntInRange(0, 3) else ssize(_int(fdp)),
        "_index": fdp.ConsumeIntInRange(0, 12),
        "_planned_until": fdp.ConsumeIntInRange(0, 4) if fdp.ConsumeBool() else 0,
        "_started": fdp.ConsumeIntInRange(0, 5) != 0,
    }
    z_kind = fdp.ConsumeIntInRange(0, 8)  # 0-4 plain, 5 int32, 6 strided, 7 read-only, 8 plain
    erased = fdp.ConsumeIntInRange(0, 6) == 0
    frames = []
    for _ in range(fdp.ConsumeIntInRange(0, 10)):
        n = size if size >= 0 and fdp.ConsumeIntInRange(0, 3) else fdp.ConsumeIntInRange(0, 26)
        kind = fdp.ConsumeIntInRange(0, 7)  # 0-4 plain, 5 int32, 6 strided, 7 None
        raw = np.frombuffer(_bytes(fdp, 2 * n).ljust(2 * n, b"\0"), dtype=np.int16).copy()
        frames.append(None if kind == 7 else raw.astype(np.int32) if kind == 5 else np.repeat(raw, 2)[::2]
                      if kind == 6 else raw)

    def timeline(n: int) -> Any:
        z = np.zeros(2 * n if z_kind == 6 else n, dtype=np.int32 if z_kind == 5 else np.int16)
        if z_kind == 6:
            z = z[::2]
        if z_kind == 7:
            z.flags.writeable = False
        return z

    def run(m: Any) -> Any:
        class Core(m.LookaheadCore):  # type: ignore[misc,name-defined]
            def _conceal_rest(self, frame: Any, ahead: Any) -> Any:
                return "rest"

        saved = plc._plc
        plc._plc = m
        try:
            core = Core()
            core._c = plc.Concealer(24, 8000)
        finally:
            plc._plc = saved
        core._c._erased = int(erased)
        for name, value in fields.items():
            setattr(core, name, value)
        core._z = timeline(z_len)
        got: List[Any] = []
        for frame in frames:
            out = _outcome(lambda f=frame: core.conceal(f, ()))
            got.append(out if out[0] != "ok" or isinstance(out[1], str) else ("ok", out[1].tobytes()))
            got.append(tuple(getattr(core, name) for name in fields) + (bytes(np.ascontiguousarray(core._z)),))
            got.append(core._c._timeline.hist.tobytes())
        return got

    _both("_plc", run)


def _timescale_lag(fdp: Any) -> None:
    """The time-stretch lag search: int16 samples of any length and level (or another type or layout), windows and
    lag ranges anywhere (inside, at the edges, past them, at C's limits), either sign."""
    n = fdp.ConsumeIntInRange(0, 400)
    scale = (0, 1, 300, 32767)[fdp.ConsumeIntInRange(0, 3)]
    raw = np.frombuffer(_bytes(fdp, 2 * n).ljust(2 * n, b"\0"), dtype=np.int16).astype(np.int64)
    x: Any = (raw % (2 * scale + 1) - scale).astype(np.int16)
    kind = fdp.ConsumeIntInRange(0, 7)
    if kind == 6:
        x = x.astype(np.float64)  # refused
    elif kind == 7:
        x = np.repeat(x, 2)[::2]  # not contiguous: refused

    def arg(most: int) -> int:
        return fdp.ConsumeIntInRange(-2, most + 2) if fdp.ConsumeIntInRange(0, 7) else _int(fdp)

    if fdp.ConsumeIntInRange(0, 3) and n >= 2:  # mostly windows that fit, up to the very edges
        half = fdp.ConsumeIntInRange(1, n // 2)
        lo = fdp.ConsumeIntInRange(0, n - 2 * half)
        hi = fdp.ConsumeIntInRange(lo, n - 2 * half)
        sign = 1 if fdp.ConsumeBool() else -1
        low, high = (half, n - half - hi) if sign > 0 else (half + hi, n - half)
        args: Tuple[int, ...] = (fdp.ConsumeIntInRange(low, high), half, lo, hi, sign)
    else:
        args = (arg(n), arg(60), arg(40), arg(160), fdp.ConsumeIntInRange(-2, 2) if fdp.ConsumeBool() else _int(fdp))
    _both("_timescale", lambda m: m.best_lag(x, *args))


def _timescale_splice(fdp: Any) -> None:
    """The time-stretch level and cross-fade: int16 samples of any length and level, stretches anywhere (inside, at
    the edges, past them, negative, at C's limits), an output of any length, type or layout; the output written must
    match too."""
    n = fdp.ConsumeIntInRange(0, 300)
    scale = (0, 1, 300, 32767)[fdp.ConsumeIntInRange(0, 3)]
    raw = np.frombuffer(_bytes(fdp, 2 * n).ljust(2 * n, b"\0"), dtype=np.int16).astype(np.int64)
    x = (raw % (2 * scale + 1) - scale).astype(np.int16)
    out_n = fdp.ConsumeIntInRange(0, 300)
    out_kind = fdp.ConsumeIntInRange(0, 5)  # 0-3 int16; 4 float64 (refused); 5 strided (refused)

    def index(most: int) -> int:
        return fdp.ConsumeIntInRange(-1, most + 1) if fdp.ConsumeIntInRange(0, 7) else _int(fdp)

    span = (index(n), index(n))
    fade = (index(out_n), index(n), index(n), index(min(n, out_n)), fdp.ConsumeBool())

    def run(m: Any) -> Any:
        out: Any = np.full(out_n, 7, dtype=np.int16)
        if out_kind == 4:
            out = out.astype(np.float64)
        elif out_kind == 5:
            out = np.full(2 * out_n, 7, dtype=np.int16)[::2]
        return (_outcome(lambda: m.level(x, *span)), _outcome(lambda: m.crossfade(x, out, *fade)),
                np.array(out, copy=True))

    _both("_timescale", run)


def _timescale_stretch(fdp: Any) -> None:
    """A whole time-stretch attempt: int16 samples of any length and level (periodic or not), any history, lag
    range and window (inside, past the samples, zero, negative, at C's limits), any thresholds (NaN and infinite
    ones too), either direction."""
    n = fdp.ConsumeIntInRange(0, 600)
    scale = (0, 1, 300, 32767)[fdp.ConsumeIntInRange(0, 3)]
    if fdp.ConsumeBool():
        x = (scale * np.sin(np.arange(n) * (0.03 + fdp.ConsumeIntInRange(0, 100) / 200.0))).astype(np.int16)
    else:
        raw = np.frombuffer(_bytes(fdp, 2 * n).ljust(2 * n, b"\0"), dtype=np.int16).astype(np.int64)
        x = (raw % (2 * scale + 1) - scale).astype(np.int16)

    def arg(most: int) -> int:
        return fdp.ConsumeIntInRange(-1, most + 1) if fdp.ConsumeIntInRange(0, 7) else _int(fdp)

    def real(usual: float) -> float:
        return usual if fdp.ConsumeIntInRange(0, 3) else _float(fdp)

    args = (fdp.ConsumeBool(), arg(n), arg(40), arg(240), arg(80), real(0.9), real(200.0), fdp.ConsumeBool(),
            real(0.5), real(0.3))
    _both("_timescale", lambda m: m.stretch(x, *args))


def _jitter(fdp: Any) -> None:
    """The jitter buffer (either mode): any settings (integers past every limit, NaN and infinite delays) and a
    run of packets with any numbers, payloads and arrival times, playout ticks at any time, advice for any amount
    held, stretches reported, peeks and resets; every answer and the state after it must agree."""
    stretch = fdp.ConsumeBool()
    kwargs: dict = {}
    for key in ("clock_rate", "frame_samples", "capacity"):
        if fdp.ConsumeBool():
            kwargs[key] = _int(fdp)
    for key in ("min_delay", "max_delay", "initial_delay", "release_time", "window", "jitter_factor", "margin"):
        if fdp.ConsumeIntInRange(0, 3) == 0:
            kwargs[key] = _float(fdp)
    if stretch and fdp.ConsumeBool():
        kwargs["quantile"] = _float(fdp)
    steps = []
    for _ in range(fdp.ConsumeIntInRange(0, 60)):
        what = fdp.ConsumeIntInRange(0, 7)
        if what <= 2:
            steps.append(("put", _int(fdp), _int(fdp), _bytes(fdp, 8), _float(fdp),
                          _int(fdp) if fdp.ConsumeBool() else None, fdp.ConsumeBool()))
        elif what == 3:
            steps.append(("get", _float(fdp)))
        elif what == 4:
            steps.append(("advise", _float(fdp), _float(fdp)))
        elif what == 5:
            steps.append(("note_stretch", _float(fdp)))
        elif what == 6:
            steps.append(("peek", fdp.ConsumeIntInRange(-1, 5)))
        else:
            steps.append(("reset",))

    def run(m: Any) -> Any:
        cls = m.TimeStretchJitterBuffer if stretch else m.JitterBuffer
        made = _outcome(lambda: cls(**kwargs))
        if made[0] != "ok":
            return made
        jb = made[1]
        out: List[Any] = []
        for step in steps:
            name = step[0]
            if name in ("advise", "note_stretch") and not stretch:
                continue
            out.append(_outcome(lambda s=step: getattr(jb, s[0])(*s[1:])))
            out.append((jb.stats.as_dict(), _outcome(lambda: jb.delay), _outcome(lambda: jb.current_delay),
                        jb.depth, jb.playing, jb.ssrc))
        return out

    _both("_jitter", run)


def _playout(fdp: Any) -> None:
    """The playout on its buffer (either mode, either concealer): packets with any numbers, arrival times and
    payloads (any length: the decoder pads or cuts, as the receiver's does), ticks at any time; every frame (or
    None), the FIFO, the state and the buffer's counters must agree."""
    from pyvoip_fast.codecs.plc import Concealer
    from pyvoip_fast.codecs.plc_lookahead import LookaheadConcealer

    stretch = fdp.ConsumeBool()
    look = fdp.ConsumeIntInRange(-1, 2)
    steps = []
    clock = 0.0
    for i in range(fdp.ConsumeIntInRange(0, 80)):
        # mostly a stream as a network delivers it (numbers near sequential, times moving on), sometimes anything
        odd = fdp.ConsumeIntInRange(0, 3) == 0
        if fdp.ConsumeIntInRange(0, 2):
            seq = fdp.ConsumeIntInRange(0, 0xFFFF) if odd else (i + fdp.ConsumeIntInRange(0, 3)) & 0xFFFF
            ts = fdp.ConsumeIntInRange(0, 0xFFFFFFFF) if odd else 160 * seq
            at = _float(fdp) if odd else clock + fdp.ConsumeIntInRange(0, 80) / 1000.0
            steps.append(("put", seq, ts, _bytes(fdp, 400), at, fdp.ConsumeIntInRange(0, 2) if odd else 1))
        else:
            clock += 0.02
            steps.append(("tick", _float(fdp) if odd else clock))

    def decode(payload: bytes) -> Any:
        pcm = np.frombuffer(payload[: len(payload) // 2 * 2], dtype=np.int16)
        out = np.zeros(160, dtype=np.int16)
        out[: min(160, len(pcm))] = pcm[:160]
        return out

    def run(m: Any, jm: Any) -> Any:
        jb = (jm.TimeStretchJitterBuffer if stretch else jm.JitterBuffer)()
        concealer = LookaheadConcealer(160, 8000, look) if look >= 0 else Concealer(160, 8000)
        po = m.Playout(jb, decode, concealer, 160, 8000)
        out: List[Any] = []
        for step in steps:
            if step[0] == "put":
                out.append(_outcome(lambda s=step: jb.put(*s[1:5], ssrc=s[5])))
            else:
                got = _outcome(lambda s=step: po.tick(s[1]))
                out.append(got if got[0] != "ok" or got[1] is None else ("ok", got[1].tobytes()))
            out.append((po.held, po.playing, po.tail_concealed, jb.stats.as_dict()))
        return out

    _both("_playout", lambda m: run(m, COMPILED["_jitter"] if m is COMPILED["_playout"] else TWIN["_jitter"]))


TARGETS: List[Callable[[Any], None]] = [
    _rtp_parse, _rtcp_parse, _rtp_write, _rtp_build, _rtcp_build, _g711_arrays, _g711_samples, _g722_stream,
    _plc_push, _plc_timeline, _plc_lookahead_core, _timescale_lag, _timescale_splice, _timescale_stretch,
    _stats, _transit, _jitter, _playout, _batch, _batch_to, _drain_and_timers, _recv_stamped,
]


def dispatch(fdp: Any) -> None:
    """Decode one input (a ``FuzzedDataProvider`` or a ``ByteProvider``) into one call of both implementations."""
    TARGETS[fdp.ConsumeIntInRange(0, len(TARGETS) - 1)](fdp)


def close_sockets() -> None:
    for sock in (_RX4, _TX4, _FAN, _FAN6, _RX6):
        if sock is not None:
            sock.close()


class ByteProvider:
    """The part of atheris' ``FuzzedDataProvider`` the targets use, over a byte string (for hypothesis, which
    has no libFuzzer): integers and floats from the front, running out into the range's low end."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, n: int) -> bytes:
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk

    def remaining_bytes(self) -> int:
        return len(self._data) - self._pos

    def ConsumeBytes(self, n: int) -> bytes:  # noqa: N802 - atheris' names
        return self._take(max(0, n))

    def ConsumeIntInRange(self, lo: int, hi: int) -> int:  # noqa: N802
        span = hi - lo
        if span <= 0:
            return lo
        raw = int.from_bytes(self._take((span.bit_length() + 7) // 8), "little")
        return lo + raw % (span + 1)

    def ConsumeInt(self, nbytes: int) -> int:  # noqa: N802
        return int.from_bytes(self._take(nbytes).ljust(nbytes, b"\0"), "little", signed=True)

    def ConsumeBool(self) -> bool:  # noqa: N802
        return bool(self.ConsumeIntInRange(0, 1))

    def ConsumeFloat(self) -> float:  # noqa: N802
        return float(struct.unpack("<d", self._take(8).ljust(8, b"\0"))[0])
