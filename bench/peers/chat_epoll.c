/*
 * chat_epoll: the same-run floor for taojie's chat benchmark, "what one C thread with epoll
 * does". One room, no commands: each complete line a client sends goes to every other client
 * as "<userN> line".
 *
 * One thread, level-triggered epoll, nonblocking sockets, TCP_NODELAY, a backlog of 4096. The
 * complete lines of one read are formatted once into one buffer and that buffer is written to
 * each other client with one write(). What a client's socket does not take at once waits in
 * its pending buffer (then EPOLLOUT is watched); past PENDING_MAX bytes the client is dropped,
 * so a reader that stops reading cannot grow the broker without bound.
 *
 * Usage: chat_epoll [HOST:PORT]      (default 127.0.0.1:0; port 0 lets the system choose)
 * Once listening it prints "chat tcp HOST:PORT" on stdout and flushes.
 * Build:  cc -O2 -o chat_epoll chat_epoll.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_LEN (64 * 1024)
#define LINE_MAX_LEN 4096         /* a longer line is cut there */
#define PENDING_MAX (1024 * 1024) /* output a client may owe before it is dropped */
#define MAX_EVENTS 256

struct conn {
    int live;
    unsigned id;    /* the N of userN */
    size_t member;  /* index in members[] */
    char *line;     /* the incomplete line so far (LINE_MAX_LEN bytes once allocated) */
    size_t line_len;
    char *pending;  /* output not yet taken by the socket */
    size_t len, off, cap;
    int dead;       /* over its bound: dropped after the current fan-out */
};

static struct conn *conns;
static size_t nconns;
static int *members; /* fds of the connected clients, in no order */
static size_t nmembers, members_cap;
static int *doomed;
static size_t ndoomed;
static unsigned next_id = 1;
static char rbuf[READ_LEN];
static char *obuf; /* the formatted lines of one read */
static size_t obuf_cap;

static void die(const char *what) {
    fprintf(stderr, "chat_epoll: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    p = realloc(p, n * elem);
    if (!p)
        die("realloc");
    *cap = n;
    return p;
}

/* Grows the fd-indexed table so conns[fd] exists. */
static struct conn *slot(int fd) {
    if ((size_t)fd >= nconns) {
        size_t old = nconns;
        conns = grow(conns, &nconns, (size_t)fd + 1, sizeof *conns);
        memset(conns + old, 0, (nconns - old) * sizeof *conns);
    }
    return &conns[fd];
}

static void watch(int ep, int fd, unsigned events, int op) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (epoll_ctl(ep, op, fd, &ev) < 0 && op != EPOLL_CTL_DEL)
        die("epoll_ctl");
}

static void drop(int ep, int fd) {
    struct conn *c = slot(fd);
    if (!c->live)
        return;
    size_t i = c->member;
    members[i] = members[--nmembers];
    conns[members[i]].member = i;
    free(c->line);
    free(c->pending);
    memset(c, 0, sizeof *c);
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

/* Queues bytes a socket did not take; marks the client dead past the bound. */
static void owe(int ep, int fd, struct conn *c, const char *p, size_t n) {
    if (c->len - c->off + n > PENDING_MAX) {
        if (!c->dead) {
            c->dead = 1;
            doomed = realloc(doomed, (ndoomed + 1) * sizeof *doomed);
            if (!doomed)
                die("realloc");
            doomed[ndoomed++] = fd;
        }
        return;
    }
    if (c->len == 0)
        watch(ep, fd, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
    else if (c->off > 0 && c->len + n > c->cap) { /* reuse the consumed front first */
        memmove(c->pending, c->pending + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    c->pending = grow(c->pending, &c->cap, c->len + n, 1);
    memcpy(c->pending + c->len, p, n);
    c->len += n;
}

static void send_to(int ep, int fd, const char *p, size_t n) {
    struct conn *c = &conns[fd];
    if (c->dead)
        return;
    if (c->len > c->off) { /* keep order: behind what it already owes */
        owe(ep, fd, c, p, n);
        return;
    }
    ssize_t w;
    do
        w = write(fd, p, n);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            c->dead = 1;
            doomed = realloc(doomed, (ndoomed + 1) * sizeof *doomed);
            if (!doomed)
                die("realloc");
            doomed[ndoomed++] = fd;
            return;
        }
        w = 0;
    }
    if ((size_t)w < n)
        owe(ep, fd, c, p + w, n - (size_t)w);
}

static void fan_out(int ep, int from, const char *p, size_t n) {
    for (size_t i = 0; i < nmembers; i++)
        if (members[i] != from)
            send_to(ep, members[i], p, n);
    for (size_t i = 0; i < ndoomed; i++)
        drop(ep, doomed[i]);
    ndoomed = 0;
}

/* Appends "<userN> " + line + "\n" to obuf at *at. */
static void format(size_t *at, unsigned id, const char *line, size_t n) {
    obuf = grow(obuf, &obuf_cap, *at + n + 32, 1);
    *at += (size_t)sprintf(obuf + *at, "<user%u> ", id);
    memcpy(obuf + *at, line, n);
    *at += n;
    obuf[(*at)++] = '\n';
}

static void on_readable(int ep, int fd) {
    struct conn *c = slot(fd);
    ssize_t n = read(fd, rbuf, sizeof rbuf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        drop(ep, fd);
        return;
    }
    if (n < 0)
        return;
    size_t out = 0, start = 0;
    for (size_t i = 0; i < (size_t)n; i++) {
        if (rbuf[i] != '\n')
            continue;
        size_t part = i - start;
        if (c->line_len > 0) { /* the line began in an earlier read */
            size_t room = LINE_MAX_LEN - c->line_len;
            memcpy(c->line + c->line_len, rbuf + start, part < room ? part : room);
            c->line_len += part < room ? part : room;
            format(&out, c->id, c->line, c->line_len);
            c->line_len = 0;
        } else {
            format(&out, c->id, rbuf + start, part < LINE_MAX_LEN ? part : LINE_MAX_LEN);
        }
        start = i + 1;
    }
    if (start < (size_t)n) { /* keep the incomplete tail */
        if (!c->line && !(c->line = malloc(LINE_MAX_LEN)))
            die("malloc");
        size_t part = (size_t)n - start, room = LINE_MAX_LEN - c->line_len;
        memcpy(c->line + c->line_len, rbuf + start, part < room ? part : room);
        c->line_len += part < room ? part : room;
    }
    if (out > 0)
        fan_out(ep, fd, obuf, out);
}

static void on_writable(int ep, int fd) {
    struct conn *c = slot(fd);
    while (c->off < c->len) {
        ssize_t w = write(fd, c->pending + c->off, c->len - c->off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            drop(ep, fd);
            return;
        }
        c->off += (size_t)w;
    }
    c->len = c->off = 0;
    watch(ep, fd, EPOLLIN, EPOLL_CTL_MOD);
}

static void accept_all(int ep, int lfd) {
    for (int i = 0; i < 1024; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                fprintf(stderr, "chat_epoll: accept: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = slot(fd);
        c->live = 1;
        c->id = next_id++;
        members = grow(members, &members_cap, nmembers + 1, sizeof *members);
        c->member = nmembers;
        members[nmembers++] = fd;
        watch(ep, fd, EPOLLIN, EPOLL_CTL_ADD);
    }
}

int main(int argc, char **argv) {
    const char *spec = argc > 1 ? argv[1] : "127.0.0.1:0";
    char host[64];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host) {
        fprintf(stderr, "chat_epoll: address must be HOST:PORT, got %s\n", spec);
        return 2;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "chat_epoll: not an IPv4 address: %s\n", host);
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
    printf("chat tcp %s:%u\n", host, ntohs(sa.sin_port));
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
            if (fd == lfd) {
                accept_all(ep, lfd);
                continue;
            }
            /* An earlier event of this batch may have dropped it (or a new one took its fd,
             * which then just gets a spurious read that finds nothing). */
            if (!slot(fd)->live)
                continue;
            if (e & EPOLLOUT)
                on_writable(ep, fd);
            if (slot(fd)->live && (e & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                on_readable(ep, fd);
        }
    }
}
