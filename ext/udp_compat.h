/* Batched datagram I/O and one-shot kernel timers for ext/udp.pyx, on every POSIX system.
 *
 * Linux has recvmmsg(2)/sendmmsg(2) (many datagrams per system call) and timerfd; other systems (macOS, the BSDs)
 * have neither. Here both get the same API under pvf_* names: on Linux the real calls, elsewhere (or on Linux when
 * built with -DPYVOIP_FAST_PORTABLE, which the tests use to exercise this path) a loop of recvmsg(2)/sendmsg(2)
 * with the same return conventions, and timer functions that fail with ENOSYS, so the Python side keeps its
 * event-loop timer (pyvoip_fast.media.clock falls back when timer_open raises OSError).
 */
#ifndef PVF_UDP_COMPAT_H
#define PVF_UDP_COMPAT_H

#include <errno.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>
#include <sys/socket.h>

#if defined(__linux__) && !defined(PYVOIP_FAST_PORTABLE)
#include <sys/timerfd.h>
#define PVF_PORTABLE 0
typedef struct mmsghdr pvf_mmsghdr;
typedef struct itimerspec pvf_itimerspec;
static inline int pvf_recvmmsg(int fd, pvf_mmsghdr *v, unsigned int n, int flags) {
    return recvmmsg(fd, v, n, flags, NULL);
}
static inline int pvf_sendmmsg(int fd, pvf_mmsghdr *v, unsigned int n, int flags) {
    return sendmmsg(fd, v, n, flags);
}
static inline int pvf_timerfd_create(int clockid, int flags) { return timerfd_create(clockid, flags); }
static inline int pvf_timerfd_settime(int fd, int flags, const pvf_itimerspec *nv, pvf_itimerspec *ov) {
    return timerfd_settime(fd, flags, nv, ov);
}
#define PVF_TFD_NONBLOCK TFD_NONBLOCK
#define PVF_TFD_CLOEXEC TFD_CLOEXEC
#define PVF_TFD_TIMER_ABSTIME TFD_TIMER_ABSTIME
#else
#define PVF_PORTABLE 1
typedef struct { struct msghdr msg_hdr; unsigned int msg_len; } pvf_mmsghdr;
typedef struct { struct timespec it_interval; struct timespec it_value; } pvf_itimerspec;
/* as recvmmsg: the number of datagrams read, or -1 with errno set when the first read failed */
static inline int pvf_recvmmsg(int fd, pvf_mmsghdr *v, unsigned int n, int flags) {
    unsigned int i;
    for (i = 0; i < n; i++) {
        ssize_t r = recvmsg(fd, &v[i].msg_hdr, flags);
        if (r < 0) return i ? (int)i : -1;
        v[i].msg_len = (unsigned int)r;
    }
    return (int)n;
}
/* as sendmmsg: the number of datagrams sent, or -1 with errno set when the first send failed */
static inline int pvf_sendmmsg(int fd, pvf_mmsghdr *v, unsigned int n, int flags) {
    unsigned int i;
    for (i = 0; i < n; i++) {
        ssize_t r = sendmsg(fd, &v[i].msg_hdr, flags);
        if (r < 0) return i ? (int)i : -1;
        v[i].msg_len = (unsigned int)r;
    }
    return (int)n;
}
static inline int pvf_timerfd_create(int clockid, int flags) { (void)clockid; (void)flags; errno = ENOSYS; return -1; }
static inline int pvf_timerfd_settime(int fd, int flags, const pvf_itimerspec *nv, pvf_itimerspec *ov) {
    (void)fd; (void)flags; (void)nv; (void)ov; errno = ENOSYS; return -1;
}
#define PVF_TFD_NONBLOCK 0
#define PVF_TFD_CLOEXEC 0
#define PVF_TFD_TIMER_ABSTIME 1
#endif

#ifndef SCM_TIMESTAMPNS
#define SCM_TIMESTAMPNS (-1) /* no nanosecond receive stamps here: never matches a control message */
#endif
#ifndef MSG_DONTWAIT
#define MSG_DONTWAIT 0 /* the sockets are non-blocking anyway */
#endif

#endif
