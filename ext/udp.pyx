# cython: language_level=3, embedsignature=True
"""Batched UDP I/O for the media clock: one call sends a whole tick's RTP packets, one call drains a socket.

Strategy: the per-packet cost of a Python send loop (method lookup, argument parsing, exception machinery) is
about as large as the system call itself. ``send_rtp_batch`` takes the streams due in this tick as indexes into
preallocated tables (one socket and one packet buffer per stream), stamps each packet's RTP sequence number and
timestamp (RFC 3550 §5.1 fixed-header fields at offsets 2 and 4, network byte order), sends it with
``send(2)`` on the stream's connected socket and records the CLOCK_MONOTONIC send time (the clock behind
``loop.time()``), all without the GIL. Streams of a tick use different sockets, so ``sendmmsg(2)`` (one socket,
many datagrams) does not apply; the batch is a tight C loop of ``send`` instead. ``recv_drain`` empties a
non-blocking socket with ``recvmmsg(2)`` in batches of 64 and returns how many datagrams it read (a receiver that
only counts, for the capacity benchmark). ``recv_stamped`` reads what is waiting the same way and returns each
datagram with its source address and the kernel's receive timestamp (``SO_TIMESTAMPNS``), so a call's socket can
be read on its media tick without losing the true arrival times the jitter statistics need.

``timer_open`` / ``timer_arm`` / ``timer_ack`` wrap a Linux ``timerfd`` on CLOCK_MONOTONIC armed at an absolute
deadline, for ``media.MediaClock``: epoll's timeout has millisecond resolution (asyncio's ``call_at`` wakes up to
1 ms late, and an event loop rounds its sleep up), while a timerfd becomes readable within the kernel's timer
slack (50 us by default) of its deadline. The clock watches the descriptor with ``loop.add_reader``.

Pure-Python twin: ``pyvoip_fast.net._udp_py`` (same API, same exceptions).
"""

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from libc.errno cimport errno, EAGAIN, EINTR
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

# recvmmsg/sendmmsg and timerfd on Linux, a portable loop and ENOSYS timers elsewhere (see udp_compat.h)
cdef extern from "udp_compat.h" nogil:
    ctypedef struct itimerspec "pvf_itimerspec":
        timespec it_interval
        timespec it_value
    int timerfd_create "pvf_timerfd_create"(int clockid, int flags)
    int timerfd_settime "pvf_timerfd_settime"(int fd, int flags, const itimerspec *new_value,
                                               itimerspec *old_value)
    int TFD_NONBLOCK "PVF_TFD_NONBLOCK"
    int TFD_CLOEXEC "PVF_TFD_CLOEXEC"
    int TFD_TIMER_ABSTIME "PVF_TFD_TIMER_ABSTIME"

cdef extern from "<unistd.h>" nogil:
    ssize_t read(int fd, void *buf, size_t count)

from _sock cimport (AF_INET, AF_INET6, CONTROL_SIZE, MSG_DONTWAIT, PVF_PORTABLE, iovec_t, mmsghdr, recvmmsg,
                    sa_family_t, send, sendmmsg, sockaddr_storage, addr_tuple, ask_sources, point_at, recv_waiting,
                    stamp_of)

#: True when this build uses the portable loop of recvmsg/sendmsg instead of recvmmsg/sendmmsg (not Linux, or
#: built with PYVOIP_FAST_PORTABLE) and has no timerfd
PORTABLE = bool(PVF_PORTABLE)


cdef enum:
    BATCH = 64
    SLOT = 2048
    MMSG = 32           # datagrams per sendmmsg call (their send time is taken when the call returns)
    ADDR_SIZE = 28      # a row of the destination table: room for a sockaddr_in6

cdef uint8_t _rxbuf[BATCH * SLOT]


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef inline void _stamp(uint8_t *row, uint16_t seq, uint32_t ts) noexcept nogil:
    """Write an RTP sequence number and timestamp into a packet (RFC 3550 §5.1: offsets 2 and 4, big-endian)."""
    row[2] = <uint8_t>(seq >> 8)
    row[3] = <uint8_t>(seq & 0xFF)
    row[4] = <uint8_t>(ts >> 24)
    row[5] = <uint8_t>((ts >> 16) & 0xFF)
    row[6] = <uint8_t>((ts >> 8) & 0xFF)
    row[7] = <uint8_t>(ts & 0xFF)


def monotonic():
    """CLOCK_MONOTONIC in seconds (the clock of ``time.monotonic()`` and asyncio's ``loop.time()``)."""
    return _now()


@cython.boundscheck(False)  # every index is validated before the nogil loop
@cython.wraparound(False)
cdef int _check_batch(Py_ssize_t width, Py_ssize_t length, const uint32_t[::1] streams, Py_ssize_t nstreams,
                      Py_ssize_t sent_at_size, Py_ssize_t out_pos) except -1:
    """The checks both batch senders share (the twin's _check_batch): packet length, room in sent_at, indices."""
    cdef Py_ssize_t i, count = streams.shape[0]
    if length < 12 or length > width:
        raise ValueError(f"length must be within 12..{width}, got {length}")
    if out_pos < 0 or count > sent_at_size - out_pos:
        raise ValueError("sent_at is too short for this batch")
    for i in range(count):
        if streams[i] >= <uint32_t>nstreams:
            raise ValueError(f"stream index {streams[i]} out of range (0..{nstreams - 1})")
    return 0


cdef struct _Span:
    size_t lo
    size_t hi
    bint written


cdef inline _Span _span(const void *p, Py_ssize_t nbytes, bint written) noexcept:
    cdef _Span sp
    sp.lo = <size_t>p if nbytes > 0 else 0
    sp.hi = sp.lo + <size_t>nbytes if nbytes > 0 else 0
    sp.written = written
    return sp


cdef int _no_overlap(_Span *spans, int n, tuple names) except -1:
    """ValueError when a buffer the batch writes shares memory with any other argument (the twin's
    _no_overlap): an alias would change a validated table (an audio cursor, an index) behind the checks."""
    cdef int i, j
    for i in range(n):
        if not spans[i].written or spans[i].hi == spans[i].lo:
            continue
        for j in range(n):
            if j == i or spans[j].hi == spans[j].lo:
                continue
            if spans[i].lo < spans[j].hi and spans[j].lo < spans[i].hi:
                raise ValueError(f"{names[min(i, j)]} and {names[max(i, j)]} share memory, and the batch writes "
                                 f"{names[i]}")
    return 0


def send_rtp_batch(const int32_t[::1] fds, uint8_t[:, ::1] packets, const uint32_t[::1] streams,
                   Py_ssize_t length, uint16_t[::1] seqs, uint32_t[::1] timestamps, uint32_t ts_step,
                   double[::1] sent_at, Py_ssize_t out_pos):
    """Stamp and send one RTP packet for each stream index in ``streams``.

    Args:
        fds: connected, non-blocking UDP socket descriptor per stream.
        packets: one row per stream holding the full packet (12-byte header + payload) to send.
        streams: indexes of the streams due now.
        length: bytes to send from each row (12 .. row size).
        seqs, timestamps: per-stream next sequence number / timestamp; written into the header, then advanced
            by 1 and ``ts_step``.
        sent_at: output array of send times (CLOCK_MONOTONIC seconds), written from ``out_pos`` on.
        out_pos: first index of ``sent_at`` to write.

    Returns:
        ``(sent, failed)``: datagrams the kernel took and datagrams refused (full buffer, ICMP error...).

    Raises:
        ValueError: tables of inconsistent sizes, a stream index out of range, a bad length, ``sent_at``
            too short for the batch, or a table the batch writes sharing memory with another argument.
    """
    cdef Py_ssize_t nstreams = fds.shape[0]
    cdef Py_ssize_t count = streams.shape[0]
    cdef Py_ssize_t i, k
    cdef uint32_t s
    cdef int sent = 0, failed = 0
    cdef uint8_t *row
    cdef uint16_t q
    cdef uint32_t t
    if packets.shape[0] != nstreams or seqs.shape[0] != nstreams or timestamps.shape[0] != nstreams:
        raise ValueError("fds, packets, seqs and timestamps must have one entry per stream")
    cdef _Span spans[6]
    spans[0] = _span(&fds[0] if nstreams else NULL, nstreams * 4, False)
    spans[1] = _span(&packets[0, 0] if nstreams and packets.shape[1] else NULL, nstreams * packets.shape[1], True)
    spans[2] = _span(&streams[0] if count else NULL, count * 4, False)
    spans[3] = _span(&seqs[0] if nstreams else NULL, nstreams * 2, True)
    spans[4] = _span(&timestamps[0] if nstreams else NULL, nstreams * 4, True)
    spans[5] = _span(&sent_at[0] if sent_at.shape[0] else NULL, sent_at.shape[0] * 8, True)
    _no_overlap(spans, 6, ("fds", "packets", "streams", "seqs", "timestamps", "sent_at"))
    _check_batch(packets.shape[1], length, streams, nstreams, sent_at.shape[0], out_pos)
    with nogil:
        for i in range(count):
            s = streams[i]
            row = &packets[s, 0]
            q = seqs[s]
            t = timestamps[s]
            _stamp(row, q, t)
            if send(fds[s], row, <size_t>length, MSG_DONTWAIT) >= 0:
                sent += 1
            else:
                failed += 1
            sent_at[out_pos + i] = _now()
            seqs[s] = <uint16_t>(q + 1)
            timestamps[s] = t + ts_step
    return sent, failed


@cython.boundscheck(False)  # every index, address and audio range is validated before the nogil loop
@cython.wraparound(False)
def send_rtp_batch_to(int fd, uint8_t[:, ::1] packets, const uint32_t[::1] streams, Py_ssize_t length,
                      uint16_t[::1] seqs, uint32_t[::1] timestamps, uint32_t ts_step,
                      const uint8_t[:, ::1] addrs, const uint8_t[::1] audio, int64_t[:, ::1] cursors,
                      double[::1] sent_at, Py_ssize_t out_pos):
    """Stamp and send one RTP packet for each stream index in ``streams``, all from one socket, with ``sendmmsg``.

    The fan-out variant of ``send_rtp_batch``: the streams share the unconnected UDP socket ``fd`` and each has
    its own destination. Before a packet leaves, its sequence number and timestamp are stamped, its payload is
    refilled with the stream's next frame of encoded audio (when it has any) and afterwards its marker bit is
    cleared (a stream's first packet carries it, RFC 3551 §4.1).

    Args:
        fd: non-blocking UDP socket (bound, not connected).
        packets: one row per stream: the packet to send (12-byte header + payload).
        streams: indexes of the streams due now.
        length: bytes to send from each row (12 .. row size); the payload is ``length - 12`` bytes.
        seqs, timestamps: per-stream next sequence number / timestamp, advanced by 1 and ``ts_step``.
        addrs: per-stream destination, a raw ``sockaddr_in`` or ``sockaddr_in6`` at the start of a row of at
            least 28 bytes (family in native byte order, port and address in network order).
        audio: encoded audio shared by all streams (may be empty).
        cursors: per stream ``(start, size, position)`` into ``audio``; ``size`` 0 keeps the row's payload as it
            is, otherwise the payload is the next ``length - 12`` bytes from ``position``, wrapping around
            within ``audio[start:start + size]`` (``size`` must be at least one payload).
        sent_at: output array of send times (CLOCK_MONOTONIC seconds, taken when the ``sendmmsg`` call that
            carried the packet returned), written from ``out_pos`` on.
        out_pos: first index of ``sent_at`` to write.

    Returns:
        ``(sent, failed)``: datagrams the kernel took and datagrams refused.

    Raises:
        ValueError: inconsistent tables, an index out of range, a bad length, an unsupported address family,
            an audio range outside ``audio`` or shorter than a payload, ``sent_at`` too short, or a table the
            batch writes sharing memory with another argument.
    """
    cdef Py_ssize_t nstreams = packets.shape[0]
    cdef Py_ssize_t count = streams.shape[0]
    cdef Py_ssize_t plen = length - 12
    cdef Py_ssize_t i, k, done, first, nmsg
    cdef uint32_t s
    cdef int sent = 0, failed = 0, r
    cdef uint8_t *row
    cdef uint16_t q
    cdef uint32_t t
    cdef int64_t a0, asz, apos, chunk
    cdef sa_family_t fam
    cdef double now
    cdef mmsghdr msgs[MMSG]
    cdef iovec_t iovs[MMSG]
    cdef uint32_t idx[MMSG]
    if (seqs.shape[0] != nstreams or timestamps.shape[0] != nstreams or addrs.shape[0] != nstreams
            or cursors.shape[0] != nstreams):
        raise ValueError("packets, seqs, timestamps, addrs and cursors must have one entry per stream")
    if addrs.shape[1] < ADDR_SIZE:
        raise ValueError(f"addrs rows must hold at least {ADDR_SIZE} bytes, got {addrs.shape[1]}")
    if cursors.shape[1] != 3:
        raise ValueError("cursors rows must be (start, size, position)")
    cdef _Span spans[8]
    spans[0] = _span(&packets[0, 0] if nstreams and packets.shape[1] else NULL, nstreams * packets.shape[1], True)
    spans[1] = _span(&streams[0] if count else NULL, count * 4, False)
    spans[2] = _span(&seqs[0] if nstreams else NULL, nstreams * 2, True)
    spans[3] = _span(&timestamps[0] if nstreams else NULL, nstreams * 4, True)
    spans[4] = _span(&addrs[0, 0] if nstreams else NULL, nstreams * addrs.shape[1], False)
    spans[5] = _span(&audio[0] if audio.shape[0] else NULL, audio.shape[0], False)
    spans[6] = _span(&cursors[0, 0] if nstreams else NULL, nstreams * 3 * 8, True)
    spans[7] = _span(&sent_at[0] if sent_at.shape[0] else NULL, sent_at.shape[0] * 8, True)
    _no_overlap(spans, 8, ("packets", "streams", "seqs", "timestamps", "addrs", "audio", "cursors", "sent_at"))
    _check_batch(packets.shape[1], length, streams, nstreams, sent_at.shape[0], out_pos)
    for i in range(count):
        s = streams[i]
        memcpy(&fam, &addrs[s, 0], sizeof(sa_family_t))
        if fam != AF_INET and fam != AF_INET6:
            raise ValueError(f"stream {s}: unsupported address family {fam}")
        a0 = cursors[s, 0]
        asz = cursors[s, 1]
        apos = cursors[s, 2]
        if asz != 0 and (a0 < 0 or asz < plen or a0 > audio.shape[0] - asz or apos < 0 or apos >= asz):
            raise ValueError(f"stream {s}: audio range ({a0}, {asz}, {apos}) outside the audio buffer "
                             f"of {audio.shape[0]} bytes or shorter than one payload of {plen}")
    memset(msgs, 0, sizeof(msgs))
    with nogil:
        first = 0
        while first < count:
            nmsg = count - first
            if nmsg > MMSG:
                nmsg = MMSG
            for k in range(nmsg):
                s = streams[first + k]
                idx[k] = s
                row = &packets[s, 0]
                q = seqs[s]
                t = timestamps[s]
                _stamp(row, q, t)
                seqs[s] = <uint16_t>(q + 1)
                timestamps[s] = t + ts_step
                asz = cursors[s, 1]
                if asz != 0 and plen > 0:
                    a0 = cursors[s, 0]
                    apos = cursors[s, 2]
                    chunk = asz - apos
                    if chunk >= plen:
                        memcpy(row + 12, &audio[a0 + apos], <size_t>plen)
                    else:
                        memcpy(row + 12, &audio[a0 + apos], <size_t>chunk)
                        memcpy(row + 12 + chunk, &audio[a0], <size_t>(plen - chunk))
                    apos += plen
                    if apos >= asz:
                        apos -= asz
                    cursors[s, 2] = apos
                iovs[k].iov_base = row
                iovs[k].iov_len = <size_t>length
                msgs[k].msg_hdr.msg_iov = &iovs[k]
                msgs[k].msg_hdr.msg_iovlen = 1
                msgs[k].msg_hdr.msg_name = <void*>&addrs[s, 0]
                memcpy(&fam, &addrs[s, 0], sizeof(sa_family_t))
                msgs[k].msg_hdr.msg_namelen = 16 if fam == AF_INET else 28
            done = 0
            while done < nmsg:
                r = sendmmsg(fd, &msgs[done], <unsigned int>(nmsg - done), MSG_DONTWAIT)
                if r < 0 and errno == EINTR:
                    continue
                now = _now()
                if r <= 0:  # the datagram at `done` was refused: count it and go on with the next
                    failed += 1
                    sent_at[out_pos + first + done] = now
                    done += 1
                    continue
                for k in range(done, done + r):
                    sent_at[out_pos + first + k] = now
                sent += r
                done += r
            for k in range(nmsg):
                packets[idx[k], 1] &= 0x7F
            first += nmsg
    return sent, failed


def recv_drain(int fd, Py_ssize_t limit=1 << 30):
    """Read and discard datagrams from a non-blocking socket until it is empty (or ``limit`` were read).

    Returns:
        the number of datagrams read.

    Raises:
        OSError: a receive error other than "would block" / "interrupted".
    """
    cdef mmsghdr msgs[BATCH]
    cdef iovec_t iovs[BATCH]
    cdef int n, err = 0
    cdef Py_ssize_t total = 0
    point_at(msgs, iovs, _rxbuf, SLOT, BATCH)
    with nogil:
        while total < limit:
            n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT)
            if n < 0:
                if errno == EINTR:
                    continue
                if errno != EAGAIN:  # EWOULDBLOCK == EAGAIN on Linux
                    err = errno
                break
            total += n
            if n < BATCH:
                break
    if err:
        raise OSError(err, "recvmmsg failed")
    return total


def recv_stamped(int fd, Py_ssize_t limit=64):
    """Read the datagrams waiting on a non-blocking UDP socket, each with its kernel receive time.

    The socket must have ``SO_TIMESTAMPNS`` set (``net.sockets.MediaSockets.tick_receive`` does). Reads with
    ``recvmmsg(2)`` until the socket is empty, ``limit`` datagrams were read, or a receive error.

    Returns:
        ``(datagrams, err)``: ``datagrams`` a list of ``(data, address, stamp)`` with the address as
        ``socket.recvfrom`` gives it (``(host, port)``, or ``(host, port, flowinfo, scope_id)`` for IPv6) and
        ``stamp`` the CLOCK_REALTIME arrival in seconds (-1.0 when the kernel gave none); ``err`` an ICMP error
        (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH) reported for something sent from the socket, for the caller to
        report (the reading goes on past it: the datagrams waiting are still delivered), or another errno that
        stopped the reading; 0 when there was none.

    Raises:
        ValueError: ``limit`` is negative.
    """
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    cdef mmsghdr msgs[BATCH]
    cdef iovec_t iovs[BATCH]
    cdef sockaddr_storage names[BATCH]
    cdef uint8_t control[BATCH][CONTROL_SIZE]
    cdef int i, n, want, err = 0, tries = 0
    cdef Py_ssize_t total = 0
    out = []
    while total < limit:
        want = <int>(limit - total if limit - total < BATCH else BATCH)
        point_at(msgs, iovs, _rxbuf, SLOT, want)
        ask_sources(msgs, names, &control[0][0], want)
        # the GIL stays held: the read is non-blocking, and the buffer is the module's (another thread's loop must
        # not read into it before these datagrams are copied out)
        n = recv_waiting(fd, msgs, want, &err, &tries)
        if n <= 0:
            break
        for i in range(n):
            data = (<char *>&_rxbuf[i * SLOT])[:min(<Py_ssize_t>msgs[i].msg_len, <Py_ssize_t>SLOT)]
            addr = addr_tuple(&names[i], msgs[i].msg_hdr.msg_namelen)
            stamp = stamp_of(&msgs[i].msg_hdr)
            out.append((data, addr, stamp))
        total += n
        if n < want:
            break
    return out, err


def timer_open():
    """Create a non-blocking, close-on-exec timerfd on CLOCK_MONOTONIC, disarmed; returns its descriptor.

    Raises:
        OSError: the kernel refused (no timerfd support, descriptor limit).
    """
    cdef int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
    if fd < 0:
        raise OSError(errno, "timerfd_create failed")
    return fd


def timer_arm(int fd, double when):
    """Arm timerfd ``fd`` to expire once at the absolute CLOCK_MONOTONIC time ``when`` (seconds).

    A deadline already past expires at once. ``when`` must be positive and finite (a zero setting would disarm).

    Raises:
        ValueError: ``when`` not positive and finite.
        OSError: ``fd`` is not a timerfd.
    """
    cdef itimerspec spec
    cdef double whole
    if not (when > 0.0 and when < 1e15):
        raise ValueError(f"when must be a positive, finite monotonic time, got {when!r}")
    memset(&spec, 0, sizeof(spec))
    whole = <double><long long>when
    spec.it_value.tv_sec = <long long>when
    spec.it_value.tv_nsec = <long>((when - whole) * 1e9)
    if spec.it_value.tv_nsec >= 1000000000:
        spec.it_value.tv_nsec = 999999999
    if spec.it_value.tv_sec == 0 and spec.it_value.tv_nsec == 0:
        spec.it_value.tv_nsec = 1
    if timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL) != 0:
        raise OSError(errno, "timerfd_settime failed")


def timer_disarm(int fd):
    """Stop timerfd ``fd`` (a pending expiry is dropped)."""
    cdef itimerspec spec
    memset(&spec, 0, sizeof(spec))
    if timerfd_settime(fd, 0, &spec, NULL) != 0:
        raise OSError(errno, "timerfd_settime failed")


def timer_ack(int fd):
    """Consume timerfd ``fd``'s expirations; returns how many there were (0 when it has not expired)."""
    cdef uint64_t n = 0
    cdef ssize_t r = read(fd, &n, 8)
    if r == 8:
        return n
    if r < 0 and (errno == EAGAIN or errno == EINTR):
        return 0
    raise OSError(errno if r < 0 else 0, "timerfd read failed")
