/* Test support for unit tests that drive real loopback sockets on the
 * project's event loop: a tiny HTTP server that shares the loop (and so the
 * test thread) with the code under test, and run_loop_until(), which runs
 * that loop until a condition holds.
 *
 * The server accepts any number of connections and, once a request's head
 * has come, waits delay_ms and then acts by its mode: answers status and body
 * and closes, or stays silent, or closes at once, or sends garbage, or sends
 * a body too large to hold. It counts connections so that a test can assert
 * that a client never had two open at once.
 *
 * Header-only: each unit test is a single file built into its own executable
 * (tests/unit/meson.build), so there is nothing to link. The functions are
 * static inline, as in src's headers, so that a test that uses only some of
 * them is not warned about the rest. */
#ifndef SURETY_TESTS_UNIT_LOOP_SERVER_H
#define SURETY_TESTS_UNIT_LOOP_SERVER_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/list.h"
#include "core/loop.h"
#include "core/sock.h"

/* ---- a port to listen on, or one nobody listens on ---- */

/* Listens on 127.0.0.1:port (0: any free one); returns the descriptor, and
 * in *ret_port the port it is bound to. */
static inline int loopback_listen(int port, int backlog, int *ret_port)
{
    char text[32];
    snprintf(text, sizeof(text), "127.0.0.1:%d", port);
    sock_addr_t a;
    assert_int_equal(sock_addr_parse(text, strlen(text), &a), 0);
    int fd = sock_listen(&a, false, backlog);
    assert_true(fd >= 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    sock_addr_t bound = {.ss = ss, .len = len};
    *ret_port = sock_addr_port(&bound);
    return fd;
}

/* A port nobody listens on: bound once to learn a free port, then closed. */
static inline int closed_port(void)
{
    int port;
    close(loopback_listen(0, 1, &port));
    return port;
}

/* ---- the in-test server ---- */

/* What the server does once a request's head has come (and delay_ms passed). */
typedef enum {
    TSRV_ANSWER,  /* status and body with a Content-Length, then close */
    TSRV_SILENT,  /* nothing: only the client's deadline ends it */
    TSRV_CLOSE,   /* close after reading the request, so that it is a FIN, not a reset */
    TSRV_GARBAGE, /* a first line that is no status line */
    TSRV_HUGE,    /* 200 with 70 KiB of body delimited only by the close */
} tsrv_mode_t;

typedef struct tsrv tsrv_t;

typedef struct tconn {
    loop_io_t io;
    loop_timer_t later; /* delay_ms before answering */
    tsrv_t *s;
    struct tconn *next, **pprev;
    char in[4096];
    size_t in_len;
    char *out;
    size_t out_len, out_sent;
    bool answered;
} tconn_t;

/* Set mode, status, body and delay_ms after tsrv_start(); they apply to
 * requests whose head comes after. */
struct tsrv {
    loop_t *loop;
    loop_io_t lio; /* lio.fd: -1 once stopped */
    int port;
    char addr[SOCK_ADDR_TEXT_MAX];
    tsrv_mode_t mode;  /* TSRV_ANSWER */
    int status;        /* TSRV_ANSWER's; 200 */
    const char *body;  /* TSRV_ANSWER's; NULL: "ok\n" */
    uint64_t delay_ms; /* before acting on a request; 0 */
    tconn_t *conns;
    int open, max_open, accepted;
    char last_request[1024]; /* the last request's head, cut to fit */
};

static inline void tconn_free(tconn_t *c)
{
    loop_io_del(c->s->loop, &c->io);
    loop_timer_stop(c->s->loop, &c->later);
    close(c->io.fd);
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
    c->s->open--;
    free(c->out);
    free(c);
}

/* Writes what is pending; frees c once all is sent (or the peer is gone). */
static inline void tconn_flush(tconn_t *c)
{
    while (c->out_sent < c->out_len) {
        ssize_t n = send(c->io.fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0)
            break;
        c->out_sent += (size_t)n;
    }
    tconn_free(c);
}

static inline void tconn_answer(tconn_t *c)
{
    tsrv_t *s = c->s;
    switch (s->mode) {
    case TSRV_ANSWER: {
        const char *body = s->body ? s->body : "ok\n";
        /* Connection: close says what the server does anyway, so that a
         * client that keeps connections (libcurl) does not try to reuse it */
        assert_true(asprintf(&c->out,
                             "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                             s->status, strlen(body), body) > 0);
        break;
    }
    case TSRV_GARBAGE:
        c->out = strdup("garbage\r\n\r\n");
        assert_non_null(c->out);
        break;
    case TSRV_HUGE: {
        size_t body = 70 * 1024;
        c->out = malloc(body + 100);
        assert_non_null(c->out);
        int h = snprintf(c->out, 100, "HTTP/1.1 200 OK\r\n\r\n"); /* body until close */
        memset(c->out + h, 'a', body);
        c->out_len = (size_t)h + body;
        tconn_flush(c);
        return;
    }
    case TSRV_CLOSE:
        tconn_free(c);
        return;
    case TSRV_SILENT:
        return;
    }
    c->out_len = strlen(c->out);
    tconn_flush(c);
}

static inline void tconn_later_cb(loop_t *loop, loop_timer_t *t)
{
    (void)loop;
    tconn_answer(container_of(t, tconn_t, later));
}

static inline void tconn_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    (void)events;
    tconn_t *c = container_of(io, tconn_t, io);
    if (c->out) {
        tconn_flush(c);
        return;
    }
    for (;;) {
        ssize_t n = recv(io->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len, 0);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            tconn_free(c); /* EOF or error: the client is done */
            return;
        }
        c->in_len += (size_t)n;
        c->in[c->in_len] = '\0';
        if (!c->answered && strstr(c->in, "\r\n\r\n")) {
            tsrv_t *s = c->s;
            c->answered = true;
            snprintf(s->last_request, sizeof(s->last_request), "%.*s",
                     (int)sizeof(s->last_request) - 1, c->in);
            if (s->delay_ms) {
                assert_int_equal(loop_timer_start(loop, &c->later, s->delay_ms), 0);
                return;
            }
            tconn_answer(c);
            return;
        }
    }
}

static inline void tsrv_accept_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    (void)events;
    tsrv_t *s = container_of(io, tsrv_t, lio);
    for (;;) {
        sock_addr_t peer;
        int fd = sock_accept(io->fd, &peer);
        if (fd < 0)
            return;
        tconn_t *c = calloc(1, sizeof(*c));
        assert_non_null(c);
        c->s = s;
        loop_timer_init(&c->later, tconn_later_cb);
        c->next = s->conns;
        if (c->next)
            c->next->pprev = &c->next;
        c->pprev = &s->conns;
        s->conns = c;
        s->accepted++;
        if (++s->open > s->max_open)
            s->max_open = s->open;
        assert_int_equal(loop_io_add(loop, &c->io, fd, tconn_cb), 0);
    }
}

/* Listens on port (0: any free one); again after tsrv_stop() to bring the
 * same port back. */
static inline void tsrv_listen(tsrv_t *s, int port)
{
    int fd = loopback_listen(port, 64, &s->port);
    snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", s->port);
    assert_int_equal(loop_io_add_listener(s->loop, &s->lio, fd, tsrv_accept_cb), 0);
}

static inline void tsrv_start(tsrv_t *s, loop_t *loop)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->mode = TSRV_ANSWER;
    s->status = 200;
    tsrv_listen(s, 0);
}

/* Closes the listener and every connection: the port refuses. Idempotent. */
static inline void tsrv_stop(tsrv_t *s)
{
    while (s->conns)
        tconn_free(s->conns);
    if (s->lio.fd >= 0) {
        loop_io_del(s->loop, &s->lio);
        close(s->lio.fd);
        s->lio.fd = -1;
    }
}

/* ---- running the loop until something holds ---- */

typedef struct {
    loop_timer_t t;
    bool (*pred)(void *ud);
    void *ud;
    uint64_t deadline;
    bool met;
} loop_waiter_t;

static inline void loop_waiter_cb(loop_t *loop, loop_timer_t *t)
{
    loop_waiter_t *w = container_of(t, loop_waiter_t, t);
    if (w->pred(w->ud)) {
        w->met = true;
        loop_stop(loop);
    } else if (loop_now(loop) >= w->deadline) {
        loop_stop(loop);
    } else {
        assert_int_equal(loop_timer_start(loop, t, 1), 0);
    }
}

/* Runs loop until pred(ud) holds or max_ms pass; whether it held. pred is
 * polled every millisecond, since what it looks at changes inside callbacks
 * that the test does not own. */
static inline bool run_loop_until(loop_t *loop, bool (*pred)(void *ud), void *ud, uint64_t max_ms)
{
    if (pred(ud))
        return true;
    loop_waiter_t w = {.pred = pred, .ud = ud, .deadline = loop_now(loop) + max_ms};
    loop_timer_init(&w.t, loop_waiter_cb);
    assert_int_equal(loop_timer_start(loop, &w.t, 1), 0);
    assert_int_equal(loop_run(loop), 0);
    loop_timer_stop(loop, &w.t);
    return w.met;
}

#endif
