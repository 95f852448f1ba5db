/*
 * The floor of a full-duplex G.711 call's 20 ms tick when every call's state is one C structure.
 *
 * benchmarks/bench_tick_floor.py builds and runs this program; see its docstring and benchmarks/README.md
 * ("bench_tick_floor.py"). It is not part of the library: it answers one question for the capacity work, what a
 * process costs per call-second when the tick touches no Python object, measured the way bench_calls.py measures
 * the listener (the process's own CPU, user and system, over a window; the lateness of the clock's wake-ups).
 *
 *     tick_floor engine CALLS SECONDS PORT PEER_PORT   the process measured: call i owns a UDP socket on
 *                                                      127.0.0.1:PORT+i and sends to PEER_PORT+i
 *     tick_floor peer CALLS SECONDS PORT PEER_PORT     the other side: socket i on PEER_PORT+i sends to PORT+i
 *                                                      and reads what arrives
 *
 * Both sides run the same clock as the listener: a 2 ms timerfd, the calls split into 10 phases, each phase served
 * every 20 ms. Per call and tick the engine reads its socket (recvmmsg, non-blocking, up to 8 datagrams), takes each
 * packet in (header checks, RFC 3550 A.1 sequence and A.8 jitter statistics, the payload copied into a slot ring),
 * plays one frame (G.711 decode of the slot, or a faded repeat of the history when it is empty; the history, 60 ms
 * of int16 samples, shifted by a frame, as a concealer keeps it), and sends one packet (the next frame of a looped
 * signal, G.711-encoded into a 12-byte-header packet, one sendto). The peer does the same but plays nothing.
 *
 * The engine prints one line of JSON: calls, seconds, cpu and user seconds, packets sent, received, played and
 * concealed, and the wake-ups' lateness percentiles in milliseconds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum {
    FRAME = 160,       /* samples (and bytes of PCMU) in a 20 ms frame at 8 kHz */
    SLOTS = 16,        /* the slot ring: 320 ms of frames */
    HISTORY = 480,     /* the concealer's history: 60 ms */
    BATCH = 8,         /* datagrams per recvmmsg */
    DATAGRAM = 2048,
    PHASES = 10,       /* phases of the 2 ms grid in a 20 ms frame */
    CLIP = 80000,      /* samples of the looped signal sent (10 s) */
    MAX_WAKEUPS = 1 << 20,
};
static const long GRID_NS = 2000000L;

typedef struct {
    int fd;
    struct sockaddr_in peer;
    /* sending */
    uint16_t seq;
    uint32_t ts, ssrc;
    long pos;
    /* receiving: RFC 3550 A.1 and A.8 */
    int have_seq;
    uint16_t max_seq;
    uint32_t cycles, received;
    double jitter, last_transit;
    /* playout */
    uint8_t slot[SLOTS][FRAME];
    uint8_t full[SLOTS];
    uint32_t next_ts;
    int16_t history[HISTORY];
    int16_t out[FRAME];
    uint64_t sent, played, concealed;
} call_t;

static int16_t clip[CLIP];
static int16_t ulaw_to_linear[256];

static uint8_t linear_to_ulaw(int16_t sample) {
    int sign = (sample >> 8) & 0x80, x = sample, exponent = 7;
    if (sign)
        x = -x;
    if (x > 32635)
        x = 32635;
    x += 0x84;
    for (int mask = 0x4000; (x & mask) == 0 && exponent > 0; mask >>= 1)
        exponent--;
    return (uint8_t)~(sign | (exponent << 4) | ((x >> (exponent + 3)) & 0x0F));
}

static void fill_tables(void) {
    for (int i = 0; i < 256; i++) {
        int u = ~i & 0xFF, t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);
        ulaw_to_linear[i] = (int16_t)((u & 0x80) ? (0x84 - t) : (t - 0x84));
    }
    for (int i = 0; i < CLIP; i++)
        clip[i] = (int16_t)(8000.0 * sin(i * 0.07) * sin(i * 0.0011));
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void take_packet(call_t *c, const uint8_t *p, size_t n, double now) {
    if (n < 12 || p[0] != 0x80 || (p[1] & 0x7F) != 0)
        return;
    uint16_t seq = (uint16_t)((p[2] << 8) | p[3]);
    uint32_t ts = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
    if (!c->have_seq) {
        c->have_seq = 1;
        c->max_seq = (uint16_t)(seq - 1);
        c->next_ts = ts;
    }
    if ((uint16_t)(seq - c->max_seq) < 3000) {
        if (seq < c->max_seq)
            c->cycles += 65536;
        c->max_seq = seq;
    }
    c->received++;
    double transit = now * 8000.0 - ts, d = fabs(transit - c->last_transit);
    c->last_transit = transit;
    c->jitter += (d - c->jitter) / 16.0;
    size_t len = n - 12 > FRAME ? FRAME : n - 12;
    int k = (int)((ts / FRAME) % SLOTS);
    memcpy(c->slot[k], p + 12, len);
    c->full[k] = 1;
}

static void receive(call_t *c, double now, int take) {
    static uint8_t buffers[BATCH][DATAGRAM];
    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    for (;;) {
        memset(msgs, 0, sizeof msgs);
        for (int i = 0; i < BATCH; i++) {
            iovs[i].iov_base = buffers[i];
            iovs[i].iov_len = DATAGRAM;
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(c->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        for (int i = 0; take && i < n; i++)
            take_packet(c, buffers[i], msgs[i].msg_len, now);
        if (n < BATCH)
            return;
    }
}

static void play(call_t *c) {
    if (!c->have_seq)
        return;
    int k = (int)((c->next_ts / FRAME) % SLOTS);
    memmove(c->history, c->history + FRAME, (HISTORY - FRAME) * sizeof(int16_t));
    if (c->full[k]) {
        for (int i = 0; i < FRAME; i++)
            c->out[i] = ulaw_to_linear[c->slot[k][i]];
        c->full[k] = 0;
        c->played++;
    } else {
        for (int i = 0; i < FRAME; i++)
            c->out[i] = (int16_t)(c->history[HISTORY - 2 * FRAME + i] / 2);
        c->concealed++;
    }
    memcpy(c->history + HISTORY - FRAME, c->out, FRAME * sizeof(int16_t));
    c->next_ts += FRAME;
}

static void send_frame(call_t *c) {
    uint8_t packet[12 + FRAME];
    packet[0] = 0x80;
    packet[1] = 0;
    packet[2] = (uint8_t)(c->seq >> 8);
    packet[3] = (uint8_t)c->seq;
    for (int i = 0; i < 4; i++) {
        packet[4 + i] = (uint8_t)(c->ts >> (24 - 8 * i));
        packet[8 + i] = (uint8_t)(c->ssrc >> (24 - 8 * i));
    }
    if (c->pos + FRAME > CLIP)
        c->pos = 0;
    for (int i = 0; i < FRAME; i++)
        packet[12 + i] = linear_to_ulaw(clip[c->pos + i]);
    c->pos += FRAME;
    c->seq++;
    c->ts += FRAME;
    if (sendto(c->fd, packet, sizeof packet, MSG_DONTWAIT, (struct sockaddr *)&c->peer, sizeof c->peer) > 0)
        c->sent++;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double cpu_seconds(const struct rusage *a, const struct rusage *b, int user_only) {
    double user = (double)(b->ru_utime.tv_sec - a->ru_utime.tv_sec) + (b->ru_utime.tv_usec - a->ru_utime.tv_usec) * 1e-6;
    double sys = (double)(b->ru_stime.tv_sec - a->ru_stime.tv_sec) + (b->ru_stime.tv_usec - a->ru_stime.tv_usec) * 1e-6;
    return user_only ? user : user + sys;
}

int main(int argc, char **argv) {
    if (argc != 6 || (strcmp(argv[1], "engine") != 0 && strcmp(argv[1], "peer") != 0)) {
        fprintf(stderr, "usage: tick_floor engine|peer CALLS SECONDS PORT PEER_PORT\n");
        return 2;
    }
    int engine = strcmp(argv[1], "engine") == 0;
    int calls_n = atoi(argv[2]), port = atoi(argv[4]), peer_port = atoi(argv[5]);
    double seconds = atof(argv[3]);
    if (calls_n < 1 || calls_n > 20000 || !(seconds > 0) || port < 1 || peer_port < 1
        || port + calls_n > 65536 || peer_port + calls_n > 65536) {
        fprintf(stderr, "tick_floor: bad arguments\n");
        return 2;
    }
    fill_tables();
    call_t *calls = calloc((size_t)calls_n, sizeof(call_t));
    double *lateness = malloc(sizeof(double) * MAX_WAKEUPS);
    if (calls == NULL || lateness == NULL) {
        fprintf(stderr, "tick_floor: out of memory\n");
        return 1;
    }
    for (int i = 0; i < calls_n; i++) {
        call_t *c = &calls[i];
        struct sockaddr_in own = {0};
        own.sin_family = AF_INET;
        own.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        own.sin_port = htons((uint16_t)((engine ? port : peer_port) + i));
        c->fd = socket(AF_INET, SOCK_DGRAM, 0);
        if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&own, sizeof own) < 0) {
            fprintf(stderr, "tick_floor: socket %d: %s\n", i, strerror(errno));
            return 1;
        }
        c->peer = own;
        c->peer.sin_port = htons((uint16_t)((engine ? peer_port : port) + i));
        c->ssrc = 0x10000u * (uint32_t)i + (engine ? 1u : 2u);
        c->pos = (i * 977L) % (CLIP - FRAME);
    }
    int timer = timerfd_create(CLOCK_MONOTONIC, 0), poll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = timer};
    struct itimerspec grid = {{0, GRID_NS}, {0, GRID_NS}};
    double start = now_seconds();
    if (timer < 0 || poll < 0 || epoll_ctl(poll, EPOLL_CTL_ADD, timer, &event) < 0
        || timerfd_settime(timer, 0, &grid, NULL) < 0) {
        fprintf(stderr, "tick_floor: timer: %s\n", strerror(errno));
        return 1;
    }
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    uint64_t ticks = 0;
    long wakeups = 0;
    int per_phase = (calls_n + PHASES - 1) / PHASES;
    while (now_seconds() - start < seconds) {
        uint64_t expirations;
        if (epoll_wait(poll, &event, 1, 100) <= 0 || read(timer, &expirations, sizeof expirations) != 8)
            continue;
        double now = now_seconds();
        int phase = (int)(ticks % PHASES);
        ticks += expirations;  /* a late wake-up skips the phases it missed, as the listener's clock counts skips */
        if (wakeups < MAX_WAKEUPS)
            lateness[wakeups++] = now - (start + (double)ticks * GRID_NS * 1e-9);
        for (int i = phase * per_phase; i < (phase + 1) * per_phase && i < calls_n; i++) {
            receive(&calls[i], now, engine);
            if (engine)
                play(&calls[i]);
            send_frame(&calls[i]);
        }
    }
    getrusage(RUSAGE_SELF, &after);
    double elapsed = now_seconds() - start;
    uint64_t sent = 0, received = 0, played = 0, concealed = 0;
    for (int i = 0; i < calls_n; i++) {
        sent += calls[i].sent;
        received += calls[i].received;
        played += calls[i].played;
        concealed += calls[i].concealed;
    }
    qsort(lateness, (size_t)wakeups, sizeof(double), compare_doubles);
    double p50 = wakeups ? lateness[wakeups / 2] : 0.0, p99 = wakeups ? lateness[wakeups * 99 / 100] : 0.0;
    printf("{\"side\": \"%s\", \"calls\": %d, \"seconds\": %.3f, \"cpu\": %.4f, \"user\": %.4f, \"sent\": %llu, "
           "\"received\": %llu, \"played\": %llu, \"concealed\": %llu, \"lateness_p50_ms\": %.3f, "
           "\"lateness_p99_ms\": %.3f}\n",
           engine ? "engine" : "peer", calls_n, elapsed, cpu_seconds(&before, &after, 0),
           cpu_seconds(&before, &after, 1), (unsigned long long)sent, (unsigned long long)received,
           (unsigned long long)played, (unsigned long long)concealed, p50 * 1e3, p99 * 1e3);
    return 0;
}
