/*
 * echo_load: a C load generator for echo servers, so taojie's echo server is measured with a
 * client that is not taojie (issue 29; `taojie bench` shares the runtime and the machine's
 * cores with the server it measures, and its own costs move its figures).
 *
 * One thread, level-triggered epoll, nonblocking sockets with TCP_NODELAY. It opens N
 * connections, then keeps D requests of S bytes in flight on each (closed loop): a request is
 * done when its S bytes have come back, and then the next one is sent. Every byte that comes
 * back is checked against what was sent. It stops after T seconds or R requests in all,
 * whichever comes first, and gives up (exit 1) if the server stops answering for 10 s.
 *
 * Usage: echo_load HOST:PORT [-c CONNS] [-d DEPTH] [-s SIZE] [-t SECONDS] [-n REQUESTS]
 * Prints one line:
 *   requests=N seconds=F rps=F p50_us=F p99_us=F p999_us=F max_us=F errors=N
 * Latency is from when a request is queued for sending to when its last byte is back.
 * Build:  cc -O2 -o echo_load echo_load.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define READ_LEN (256 * 1024)
/* Latency histogram: 100 ns buckets below 1 ms, 10 us buckets from 1 ms to 1 s, then one. */
#define FINE 10000
#define COARSE 100000

struct conn {
    int fd;
    uint64_t sent, received; /* bytes, over the connection's life */
    uint64_t to_send;        /* bytes queued but not yet written */
    uint64_t *started;       /* ring of D start times (ns), oldest at head */
    unsigned head, count;
    int want_out;
};

static uint64_t fine[FINE], coarse[COARSE], beyond;
static char *pattern; /* byte k of every stream is pattern[k % size] */
static size_t plen, size;
static char rbuf[READ_LEN];

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "echo_load: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void record(uint64_t ns) {
    if (ns < 1000000)
        fine[ns / 100]++;
    else if (ns < 1000000000)
        coarse[ns / 10000]++;
    else
        beyond++;
}

/* The latency below which `q` of all samples lie, in microseconds. */
static double quantile(uint64_t total, double q) {
    uint64_t want = (uint64_t)(q * (double)total), seen = 0;
    if (want >= total)
        want = total - 1;
    for (int i = 0; i < FINE; i++)
        if ((seen += fine[i]) > want)
            return (i + 1) * 0.1;
    for (int i = FINE / 100; i < COARSE; i++)
        if ((seen += coarse[i]) > want)
            return (i + 1) * 10.0;
    return 1e6;
}

static void watch(int ep, struct conn *c, int out) {
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl");
    c->want_out = out;
}

/* Writes what is queued; arms EPOLLOUT only while the socket refuses some of it. */
static void pump_out(int ep, struct conn *c) {
    while (c->to_send > 0) {
        size_t off = (size_t)(c->sent % size);
        size_t n = plen - off;
        if (n > c->to_send)
            n = (size_t)c->to_send;
        ssize_t w = write(c->fd, pattern + off, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            die("write");
        }
        c->sent += (uint64_t)w;
        c->to_send -= (uint64_t)w;
    }
    int out = c->to_send > 0;
    if (out != c->want_out)
        watch(ep, c, out);
}

static void queue_request(struct conn *c, unsigned depth, uint64_t t) {
    c->started[(c->head + c->count) % depth] = t;
    c->count++;
    c->to_send += size;
}

int main(int argc, char **argv) {
    const char *spec = NULL;
    unsigned nconns = 1, depth = 1;
    double seconds = 5;
    uint64_t limit = UINT64_MAX;
    size = 64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && i + 1 < argc) {
            const char *v = argv[++i];
            switch (a[1]) {
            case 'c': nconns = (unsigned)atoi(v); break;
            case 'd': depth = (unsigned)atoi(v); break;
            case 's': size = (size_t)atol(v); break;
            case 't': seconds = atof(v); break;
            case 'n': limit = (uint64_t)atoll(v); break;
            default: fprintf(stderr, "echo_load: unknown option %s\n", a); return 2;
            }
        } else {
            spec = a;
        }
    }
    if (!spec || nconns < 1 || nconns > 10000 || depth < 1 || depth > 1024 || size < 1 ||
        size > (1u << 24) || seconds <= 0 || seconds > 600) {
        fprintf(stderr, "usage: echo_load HOST:PORT [-c 1..10000] [-d 1..1024] "
                        "[-s 1..16M] [-t 0..600 s] [-n REQUESTS]\n");
        return 2;
    }
    char host[64];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host) {
        fprintf(stderr, "echo_load: address must be HOST:PORT, got %s\n", spec);
        return 2;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "echo_load: not an IPv4 address: %s\n", host);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* A hard bound on the whole run, whatever the server does. */
    alarm((unsigned)seconds + 30);

    /* Lowercase letters and digits, so an upper-casing server would be caught as wrong. */
    size_t reps = (READ_LEN + size - 1) / size + 1;
    plen = reps * size;
    pattern = malloc(plen);
    if (!pattern)
        die("malloc");
    for (size_t k = 0; k < plen; k++)
        pattern[k] = "abcdefghijklmnopqrstuvwxyz0123456789"[(k % size) % 36];

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct conn *conns = calloc(nconns, sizeof *conns);
    if (!conns)
        die("calloc");
    for (unsigned i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
            die("socket");
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
            die("connect");
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int fl = O_NONBLOCK;
        if (fcntl(c->fd, F_SETFL, fl) < 0)
            die("fcntl");
        c->started = calloc(depth, sizeof *c->started);
        if (!c->started)
            die("calloc");
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl");
    }

    uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9), done = 0, errors = 0;
    uint64_t issued = 0, last_progress = start;
    for (unsigned i = 0; i < nconns; i++)
        for (unsigned j = 0; j < depth && issued < limit; j++, issued++)
            queue_request(&conns[i], depth, start);
    for (unsigned i = 0; i < nconns; i++)
        pump_out(ep, &conns[i]);

    struct epoll_event evs[MAX_EVENTS];
    uint64_t t = start;
    int stop = 0;
    while (!stop && done < issued) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, 1000);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        t = now_ns();
        if (n == 0 && t - last_progress > 10000000000u) {
            fprintf(stderr, "echo_load: no answer for 10 s; giving up\n");
            return 1;
        }
        for (int e = 0; e < n; e++) {
            struct conn *c = evs[e].data.ptr;
            if (evs[e].events & EPOLLOUT)
                pump_out(ep, c);
            if (!(evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            ssize_t r = read(c->fd, rbuf, sizeof rbuf);
            if (r < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    continue;
                die("read");
            }
            if (r == 0) {
                fprintf(stderr, "echo_load: the server closed a connection\n");
                return 1;
            }
            last_progress = t;
            /* Check the bytes against the stream sent, then count the requests they finish. */
            size_t off = (size_t)(c->received % size);
            for (ssize_t k = 0; k < r;) {
                size_t chunk = plen - off;
                if (chunk > (size_t)(r - k))
                    chunk = (size_t)(r - k);
                if (memcmp(rbuf + k, pattern + off, chunk) != 0)
                    errors++;
                k += (ssize_t)chunk;
                off = 0;
            }
            uint64_t before = c->received / size;
            c->received += (uint64_t)r;
            uint64_t finished = c->received / size - before;
            for (uint64_t f = 0; f < finished; f++) {
                record(t - c->started[c->head]);
                c->head = (c->head + 1) % depth;
                c->count--;
                done++;
                if (t < end && issued < limit) {
                    queue_request(c, depth, t);
                    issued++;
                }
            }
            if (finished)
                pump_out(ep, c);
        }
        if (t >= end)
            stop = 1;
    }
    double secs = (double)(t - start) / 1e9;
    if (done == 0) {
        fprintf(stderr, "echo_load: no request finished\n");
        return 1;
    }
    printf("requests=%llu seconds=%.3f rps=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
           "max_us=%.1f errors=%llu\n",
           (unsigned long long)done, secs, (double)done / secs, quantile(done, 0.5),
           quantile(done, 0.99), quantile(done, 0.999), quantile(done, 1.0),
           (unsigned long long)errors);
    return errors ? 1 : 0;
}
