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
only counts, for the capacity benchmark).

Pure-Python twin: ``pyvoip_fast._udp_py`` (same API, same exceptions).
"""

cimport cython
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memset
from libc.errno cimport errno, EAGAIN, EINTR
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct iovec_t "iovec":
        void *iov_base
        size_t iov_len
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec_t *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    ssize_t send(int sockfd, const void *buf, size_t len, int flags)
    int recvmmsg(int sockfd, mmsghdr *msgvec, unsigned int vlen, int flags, timespec *timeout)
    int MSG_DONTWAIT

cdef enum:
    BATCH = 64
    SLOT = 2048

cdef uint8_t _rxbuf[BATCH * SLOT]


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


def monotonic():
    """CLOCK_MONOTONIC in seconds (the clock of ``time.monotonic()`` and asyncio's ``loop.time()``)."""
    return _now()


@cython.boundscheck(False)  # every index is validated before the nogil loop
@cython.wraparound(False)
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
        ValueError: tables of inconsistent sizes, a stream index out of range, a bad length, or ``sent_at``
            too short for the batch.
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
    if length < 12 or length > packets.shape[1]:
        raise ValueError(f"length must be within 12..{packets.shape[1]}, got {length}")
    if out_pos < 0 or count > sent_at.shape[0] - out_pos:
        raise ValueError("sent_at is too short for this batch")
    for i in range(count):
        if streams[i] >= <uint32_t>nstreams:
            raise ValueError(f"stream index {streams[i]} out of range (0..{nstreams - 1})")
    with nogil:
        for i in range(count):
            s = streams[i]
            row = &packets[s, 0]
            q = seqs[s]
            t = timestamps[s]
            row[2] = <uint8_t>(q >> 8)
            row[3] = <uint8_t>(q & 0xFF)
            row[4] = <uint8_t>(t >> 24)
            row[5] = <uint8_t>((t >> 16) & 0xFF)
            row[6] = <uint8_t>((t >> 8) & 0xFF)
            row[7] = <uint8_t>(t & 0xFF)
            if send(fds[s], row, <size_t>length, MSG_DONTWAIT) >= 0:
                sent += 1
            else:
                failed += 1
            sent_at[out_pos + i] = _now()
            seqs[s] = <uint16_t>(q + 1)
            timestamps[s] = t + ts_step
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
    cdef int i, n, err = 0
    cdef Py_ssize_t total = 0
    memset(msgs, 0, sizeof(msgs))
    for i in range(BATCH):
        iovs[i].iov_base = &_rxbuf[i * SLOT]
        iovs[i].iov_len = SLOT
        msgs[i].msg_hdr.msg_iov = &iovs[i]
        msgs[i].msg_hdr.msg_iovlen = 1
    with nogil:
        while total < limit:
            n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL)
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
