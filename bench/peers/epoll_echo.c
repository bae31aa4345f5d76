/*
 * epoll_echo: the near-limit reference for taojie's echo benchmarks.
 *
 * One thread, level-triggered epoll, nonblocking sockets, TCP_NODELAY on every accepted
 * socket, SO_REUSEADDR and a backlog of 4096. It echoes each read straight back (ASCII
 * upper-cased with --upper). Bytes the peer is too slow to take wait in a per-connection
 * buffer, and while any wait the connection is not read, so memory stays bounded.
 *
 * Usage: epoll_echo [--upper] HOST:PORT      (port 0 lets the system choose)
 * Once bound it prints the address, e.g. "127.0.0.1:41234", on stdout and flushes.
 * Build:  cc -O2 -o epoll_echo epoll_echo.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define BUF_LEN (64 * 1024)
#define MAX_EVENTS 256

struct conn {
    char *pending; /* bytes read but not yet written back; NULL when none */
    size_t len, off;
};

static struct conn *conns;
static size_t nconns;
static int upper;
static char buf[BUF_LEN];

/* ASCII upper case, sixteen bytes at a time with SSE2 (part of every x86-64), else eight with
 * plain 64-bit arithmetic: a byte-at-a-time loop is what gcc -O2 leaves alone, and a slow
 * reference would flatter every server compared with it (rustc vectorises taojie's loop).
 * SSE2: b + 0x1f lands in 0x80..0x99, the lowest signed bytes, exactly for b in 'a'..'z'.
 * 64-bit: for each byte with its top bit clear, bit 7 of h + 0x1f says ">= 'a'" and bit 7 of
 * h + 0x05 says "> 'z'"; no sum carries into the next byte. Letters get 0x20 cleared. */
static void upcase(char *p, size_t n) {
    size_t i = 0;
#ifdef __SSE2__
    const __m128i shift = _mm_set1_epi8(0x1f), limit = _mm_set1_epi8(-128 + 26),
                  bit = _mm_set1_epi8(0x20);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
        __m128i lower = _mm_cmplt_epi8(_mm_add_epi8(v, shift), limit);
        _mm_storeu_si128((__m128i *)(p + i), _mm_sub_epi8(v, _mm_and_si128(lower, bit)));
    }
#endif
    const uint64_t ones = 0x0101010101010101ULL, top = 0x80 * ones;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t h = w & ~top;
        uint64_t lower = (h + 0x1f * ones) & ~(h + 0x05 * ones) & ~w & top;
        w ^= lower >> 2;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        if (p[i] >= 'a' && p[i] <= 'z')
            p[i] -= 'a' - 'A';
}

static void die(const char *what) {
    fprintf(stderr, "epoll_echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Grows the fd-indexed table so conns[fd] exists. */
static struct conn *slot(int fd) {
    if ((size_t)fd >= nconns) {
        size_t n = nconns ? nconns : 1024;
        while (n <= (size_t)fd)
            n *= 2;
        struct conn *t = realloc(conns, n * sizeof *t);
        if (!t)
            die("realloc");
        memset(t + nconns, 0, (n - nconns) * sizeof *t);
        conns = t;
        nconns = n;
    }
    return &conns[fd];
}

static void drop(int ep, int fd) {
    struct conn *c = slot(fd);
    free(c->pending);
    memset(c, 0, sizeof *c);
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

static void watch(int ep, int fd, unsigned events, int op) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (epoll_ctl(ep, op, fd, &ev) < 0)
        die("epoll_ctl");
}

/* Writes what is pending; returns 1 when all of it is gone, 0 if some is left, -1 on error. */
static int flush(struct conn *c, int fd) {
    while (c->off < c->len) {
        ssize_t n = write(fd, c->pending + c->off, c->len - c->off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->off += (size_t)n;
    }
    free(c->pending);
    c->pending = NULL;
    c->len = c->off = 0;
    return 1;
}

static void on_readable(int ep, int fd) {
    struct conn *c = slot(fd);
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) { /* peer half-closed: nothing is pending here, so close */
        drop(ep, fd);
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            drop(ep, fd);
        return;
    }
    if (upper)
        upcase(buf, (size_t)n);
    ssize_t w = 0;
    while (w < n) {
        ssize_t m = write(fd, buf + w, (size_t)(n - w));
        if (m < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                drop(ep, fd);
                return;
            }
            break;
        }
        w += m;
    }
    if (w < n) { /* the peer is slow: keep the rest, stop reading until it is written */
        c->pending = malloc((size_t)(n - w));
        if (!c->pending)
            die("malloc");
        memcpy(c->pending, buf + w, (size_t)(n - w));
        c->len = (size_t)(n - w);
        c->off = 0;
        watch(ep, fd, EPOLLOUT, EPOLL_CTL_MOD);
    }
}

static void on_writable(int ep, int fd) {
    int r = flush(slot(fd), fd);
    if (r < 0)
        drop(ep, fd);
    else if (r > 0)
        watch(ep, fd, EPOLLIN, EPOLL_CTL_MOD);
}

static void accept_all(int ep, int lfd) {
    for (int i = 0; i < 1024; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                fprintf(stderr, "epoll_echo: accept: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        slot(fd);
        watch(ep, fd, EPOLLIN, EPOLL_CTL_ADD);
    }
}

int main(int argc, char **argv) {
    const char *spec = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--upper") == 0)
            upper = 1;
        else
            spec = argv[i];
    }
    if (!spec) {
        fprintf(stderr, "usage: epoll_echo [--upper] HOST:PORT\n");
        return 2;
    }
    char host[64];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host) {
        fprintf(stderr, "epoll_echo: address must be HOST:PORT, got %s\n", spec);
        return 2;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "epoll_echo: not an IPv4 address: %s\n", host);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("bind");
    if (listen(lfd, 4096) < 0)
        die("listen");
    socklen_t slen = sizeof sa;
    if (getsockname(lfd, (struct sockaddr *)&sa, &slen) < 0)
        die("getsockname");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    watch(ep, lfd, EPOLLIN, EPOLL_CTL_ADD);
    /* Announce only once everything is set up, so the process looks as it will while serving. */
    printf("%s:%u\n", host, ntohs(sa.sin_port));
    fflush(stdout);
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            unsigned e = evs[i].events;
            if (fd == lfd)
                accept_all(ep, lfd);
            else if (e & EPOLLOUT)
                on_writable(ep, fd);
            else if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(ep, fd);
        }
    }
}
