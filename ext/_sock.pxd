# cython: language_level=3
#
# The BSD socket declarations and datagram helpers shared by the modules that read UDP sockets themselves
# (ext/udp.pyx: batched I/O for the media clock; ext/receiver.pyx: a call's RTP read on its media tick).
#
# Strategy: declarations plus `cdef inline` helpers (no runtime module exists for this file). recvmmsg goes through
# udp_compat.h, which gives non-Linux systems a portable loop with the same conventions. The helpers turn what
# recvmmsg filled in into what Python sees (a datagram's kernel receive time, its source address as
# socket.recvfrom gives it) and back (a peer's address as a sockaddr to compare raw source addresses with).

from libc.errno cimport errno, EAGAIN, EINTR, ECONNREFUSED, EHOSTUNREACH, ENETUNREACH
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memcmp, memcpy, memset, strcmp
from posix.time cimport timespec

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
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
    ssize_t send(int sockfd, const void *buf, size_t len, int flags)
    struct sockaddr:
        sa_family_t sa_family
    ssize_t sendto(int sockfd, const void *buf, size_t len, int flags, const sockaddr *dest, socklen_t addrlen)
    int MSG_DONTWAIT
    int AF_INET
    int AF_INET6
    struct cmsghdr:
        size_t cmsg_len
        int cmsg_level
        int cmsg_type
    cmsghdr *CMSG_FIRSTHDR(msghdr *msgh)
    cmsghdr *CMSG_NXTHDR(msghdr *msgh, cmsghdr *cmsg)
    unsigned char *CMSG_DATA(cmsghdr *cmsg)
    int SOL_SOCKET
    int SCM_TIMESTAMPNS
    struct sockaddr_storage:
        sa_family_t ss_family

cdef extern from "udp_compat.h" nogil:
    int PVF_PORTABLE
    ctypedef struct mmsghdr "pvf_mmsghdr":
        msghdr msg_hdr
        unsigned int msg_len
    int recvmmsg "pvf_recvmmsg"(int sockfd, mmsghdr *msgvec, unsigned int vlen, int flags)
    int sendmmsg "pvf_sendmmsg"(int sockfd, mmsghdr *msgvec, unsigned int vlen, int flags)

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr
    struct sockaddr_in:
        sa_family_t sin_family
        uint16_t sin_port
        in_addr sin_addr
    struct in6_addr:
        pass
    struct sockaddr_in6:
        sa_family_t sin6_family
        uint16_t sin6_port
        uint32_t sin6_flowinfo
        in6_addr sin6_addr
        uint32_t sin6_scope_id
    uint16_t ntohs(uint16_t)
    uint16_t htons(uint16_t)
    uint32_t ntohl(uint32_t)
    uint32_t htonl(uint32_t)

cdef extern from "<arpa/inet.h>" nogil:
    const char *inet_ntop(int af, const void *src, char *dst, socklen_t size)
    int inet_pton(int af, const char *src, void *dst)


cdef enum:
    CONTROL_SIZE = 64  # room for one message's control data (SO_TIMESTAMPNS' struct timespec)
    ICMP_RETRIES = 8   # ICMP errors skipped in one read (each is reported once by the kernel; the data waits)


cdef inline void point_at(mmsghdr *msgs, iovec_t *iovs, uint8_t *buf, size_t slot, int n) noexcept nogil:
    """Clear the first ``n`` message headers and point each at its own ``slot`` bytes of ``buf``."""
    cdef int i
    memset(msgs, 0, n * sizeof(mmsghdr))
    for i in range(n):
        iovs[i].iov_base = buf + i * slot
        iovs[i].iov_len = slot
        msgs[i].msg_hdr.msg_iov = &iovs[i]
        msgs[i].msg_hdr.msg_iovlen = 1


cdef inline void ask_sources(mmsghdr *msgs, sockaddr_storage *names, uint8_t *control, int n) noexcept nogil:
    """Have the first ``n`` message headers (their buffers already set) ask for each datagram's source address and
    control data (``control``: ``n`` runs of ``CONTROL_SIZE`` bytes)."""
    cdef int i
    for i in range(n):
        msgs[i].msg_hdr.msg_name = &names[i]
        msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
        msgs[i].msg_hdr.msg_control = control + i * CONTROL_SIZE
        msgs[i].msg_hdr.msg_controllen = CONTROL_SIZE


cdef inline int recv_waiting(int fd, mmsghdr *msgs, int want, int *err, int *tries) noexcept nogil:
    """``recvmmsg`` without blocking: the number of datagrams read, or 0 or less when there was nothing more to read.
    An ICMP error the kernel reports for something sent from the socket (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH)
    is left in ``err`` and the read retried (at most ``ICMP_RETRIES`` times over the ``tries`` counter): the
    datagrams waiting are still there. Any other error than "would block" is left in ``err`` and ends the read."""
    cdef int n
    while True:
        n = recvmmsg(fd, msgs, want, MSG_DONTWAIT)
        if n < 0 and errno == EINTR:
            continue
        if n < 0 and (errno == ECONNREFUSED or errno == EHOSTUNREACH or errno == ENETUNREACH) and tries[0] < ICMP_RETRIES:
            err[0] = errno
            tries[0] += 1
            continue
        break
    if n < 0 and errno != EAGAIN:
        err[0] = errno
    return n


cdef inline double stamp_of(msghdr *hdr) noexcept nogil:
    """The CLOCK_REALTIME receive time (seconds) in a received message's SO_TIMESTAMPNS control data; -1.0: none."""
    cdef cmsghdr *cm = CMSG_FIRSTHDR(hdr)
    cdef timespec ts
    while cm != NULL:
        if cm.cmsg_level == SOL_SOCKET and cm.cmsg_type == SCM_TIMESTAMPNS and cm.cmsg_len >= sizeof(cmsghdr) + sizeof(timespec):
            memcpy(&ts, CMSG_DATA(cm), sizeof(timespec))
            return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9
        cm = CMSG_NXTHDR(hdr, cm)
    return -1.0


cdef inline object addr_tuple(sockaddr_storage *name, socklen_t length):
    """A source address as ``socket.recvfrom`` gives it: ``(host, port)``, ``(host, port, flowinfo, scope_id)`` for
    IPv6; None for another family or a truncated address."""
    cdef char host[64]
    cdef sockaddr_in *a4
    cdef sockaddr_in6 *a6
    if name.ss_family == AF_INET and length >= sizeof(sockaddr_in):
        a4 = <sockaddr_in *>name
        inet_ntop(AF_INET, &a4.sin_addr, host, sizeof(host))
        return (host.decode("ascii"), ntohs(a4.sin_port))
    if name.ss_family == AF_INET6 and length >= sizeof(sockaddr_in6):
        a6 = <sockaddr_in6 *>name
        inet_ntop(AF_INET6, &a6.sin6_addr, host, sizeof(host))
        return (host.decode("ascii"), ntohs(a6.sin6_port), ntohl(a6.sin6_flowinfo), a6.sin6_scope_id)
    return None


cdef inline int sockaddr_of(object addr, sockaddr_storage *out) except -1:
    """Fill ``out`` with the address ``addr`` names, when ``addr`` is a tuple whose host is the exact text
    ``addr_tuple`` would give for it (so that comparing raw addresses with ``out`` agrees with comparing the tuples'
    host and port); returns its family (AF_INET, AF_INET6), or 0 when it is anything else."""
    cdef char back[64]
    cdef bytes text
    cdef const char *host
    memset(out, 0, sizeof(sockaddr_storage))
    if type(addr) is not tuple or len(<tuple>addr) < 2 or type(addr[0]) is not str or type(addr[1]) is not int:
        return 0
    port = addr[1]
    if not 0 <= port <= 0xFFFF:
        return 0
    try:
        text = (<str>addr[0]).encode("ascii")
    except UnicodeEncodeError:
        return 0
    if len(text) >= 64 or b"\0" in text:
        return 0
    host = text
    if inet_pton(AF_INET, host, &(<sockaddr_in *>out).sin_addr) == 1:
        if inet_ntop(AF_INET, &(<sockaddr_in *>out).sin_addr, back, sizeof(back)) == NULL or strcmp(back, host) != 0:
            return 0
        (<sockaddr_in *>out).sin_family = AF_INET
        (<sockaddr_in *>out).sin_port = htons(<uint16_t>port)
        return AF_INET
    memset(out, 0, sizeof(sockaddr_storage))
    if inet_pton(AF_INET6, host, &(<sockaddr_in6 *>out).sin6_addr) == 1:
        if inet_ntop(AF_INET6, &(<sockaddr_in6 *>out).sin6_addr, back, sizeof(back)) == NULL or strcmp(back, host) != 0:
            return 0
        (<sockaddr_in6 *>out).sin6_family = AF_INET6
        (<sockaddr_in6 *>out).sin6_port = htons(<uint16_t>port)
        return AF_INET6
    return 0


cdef inline bint same_host_port(sockaddr_storage *name, socklen_t length, sockaddr_storage *known) noexcept nogil:
    """True when a received source address has the family, host and port of ``known`` (from ``sockaddr_of``);
    IPv6 flow information and scope are not compared, as the tuples' first two items do not hold them."""
    if name.ss_family != known.ss_family:
        return False
    if name.ss_family == AF_INET:
        return (length >= sizeof(sockaddr_in)
                and (<sockaddr_in *>name).sin_port == (<sockaddr_in *>known).sin_port
                and (<sockaddr_in *>name).sin_addr.s_addr == (<sockaddr_in *>known).sin_addr.s_addr)
    if name.ss_family == AF_INET6:
        return (length >= sizeof(sockaddr_in6)
                and (<sockaddr_in6 *>name).sin6_port == (<sockaddr_in6 *>known).sin6_port
                and memcmp(&(<sockaddr_in6 *>name).sin6_addr, &(<sockaddr_in6 *>known).sin6_addr, 16) == 0)
    return False


cdef inline socklen_t dest_of(object addr, int family, sockaddr_storage *out) except? 0:
    """Fill ``out`` with ``addr`` as a destination for a socket of ``family``, as ``socket.sendto`` would take it:
    ``(host, port)``, and for IPv6 also ``(host, port, flowinfo, scope_id)``; returns the address's length, or 0
    for anything else (then the Python send, which is the definition, decides what it means)."""
    cdef Py_ssize_t items
    if sockaddr_of(addr, out) != family:
        return 0
    items = len(<tuple>addr)
    if family == AF_INET:
        return sizeof(sockaddr_in) if items == 2 else 0
    if items == 4:
        flow, scope = addr[2], addr[3]
        if type(flow) is not int or type(scope) is not int or not 0 <= flow <= 0xFFFFF or not 0 <= scope <= 0xFFFFFFFF:
            return 0
        (<sockaddr_in6 *>out).sin6_flowinfo = htonl(<uint32_t>flow)
        (<sockaddr_in6 *>out).sin6_scope_id = <uint32_t>scope
    elif items != 2:
        return 0
    return sizeof(sockaddr_in6)
