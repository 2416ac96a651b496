/* The admin server's listener and connections: see admin.h.
 *
 * A connection is a small state machine driven by conn_run(), which every
 * event and every state change goes through: flush what is queued; then make
 * a request out of the buffered bytes (parse the head, collect the body, run
 * the route, queue the response); then read more. Only one response is queued
 * at a time, so a client that pipelines without reading stalls itself, not
 * the server's memory. Descriptors are edge-triggered (core/loop.h): the
 * readable/writable flags remember that the socket has not yet said EAGAIN.
 *
 * One timer per connection carries the deadline of its phase: the header
 * timeout runs from a request's first byte and is not extended by later
 * bytes (a slow sender cannot stretch it); the idle timeout bounds the wait
 * for the next request and is re-armed on each bit of progress reading a body
 * or writing a response. A connection that must close after its response
 * (an error, Connection: close) shuts down its sending side and drains what
 * the client still sends for a moment before closing (a lingering close), so
 * that unread bytes do not make the kernel answer with a reset that destroys
 * the response before the client has read it. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>

#include "admin/admin_int.h"
#include "core/list.h"

#define ADMIN_MAX_FIELDS 64
#define ADMIN_MAX_REQUEST_LINE 8192
#define ADMIN_OUT_HEAD 2048       /* status line and fields of one response */
#define ADMIN_LINGER_MS 2000      /* at most, for a lingering close */
#define ADMIN_ACCEPT_BATCH 32     /* accepts per wake-up: the loop has other work */
#define ADMIN_ACCEPT_PAUSE_MS 100 /* after EMFILE & co., before accepting again */

const admin_limits_t admin_limits_default = {
    .max_conns = 64,
    .max_head = 16 * 1024,
    .max_body = 1024 * 1024,
    .max_response = 1024 * 1024,
    .max_metrics = 16 * 1024 * 1024,
    .header_timeout_ms = 10 * 1000,
    .idle_timeout_ms = 30 * 1000,
};

typedef enum {
    PH_HEAD,   /* reading a request head: header timeout from its first byte */
    PH_IDLE,   /* keep-alive, nothing buffered: idle timeout */
    PH_BODY,   /* reading a request body: idle timeout, re-armed on progress */
    PH_WRITE,  /* writing a response: idle timeout, re-armed on progress */
    PH_LINGER, /* shut down for writing, draining input until EOF or the linger time */
} phase_t;

/* What conn_input() made of the buffered bytes. */
enum { STEP_NEED_INPUT, STEP_PROGRESS };

typedef struct {
    list_t link;
    admin_t *admin;
    loop_io_t io;
    loop_timer_t timer;
    phase_t phase;
    loop_ready_t ready;
    tls_conn_t tls;     /* admin.tls: the session; tls.ssl NULL in clear */
    bool eof;           /* the client shut down its sending side */
    bool close_after;   /* close once the queued response is out */
    bool responding;    /* out holds a final response (not a 100 Continue) */
    bool continue_sent; /* 100 Continue already sent for this request */
    bool head_seen;     /* in holds a possible end of head ("\n\r\n" or "\n\n") */
    size_t scanned;     /* bytes of in already searched for it */
    buf_t in;           /* request head, and a body that fits with it */
    buf_t body;         /* a larger body, capacity = its Content-Length */
    buf_t out;          /* the queued status line and fields */
    admin_response_t res;
    str_t out_body; /* body bytes being sent (from res) */
    size_t out_off;
} conn_t;

struct admin {
    loop_t *loop;
    loop_io_t lio;
    bool listening;
    loop_timer_t pause; /* re-registers the listener after EMFILE */
    const admin_route_t *routes;
    size_t nroutes;
    void *ud;
    admin_limits_t lim;
    list_t conns;
    size_t nconns;
    tls_server_t *tls; /* admin.tls: new connections speak TLS; NULL in clear */
};

static void conn_run(conn_t *c);

static void conn_close(conn_t *c)
{
    admin_t *a = c->admin;
    if (c->tls.ssl) {
        tls_io_close_notify(&c->tls);
        tls_conn_free(&c->tls);
    }
    loop_timer_stop(a->loop, &c->timer);
    loop_io_del(a->loop, &c->io);
    close(c->io.fd);
    buf_deinit(&c->in);
    buf_deinit(&c->body);
    buf_deinit(&c->out);
    response_reset(&c->res);
    list_remove(&c->link);
    a->nconns--;
    free(c);
}

static void conn_timeout_cb(loop_t *loop, loop_timer_t *t)
{
    (void)loop;
    conn_close(container_of(t, conn_t, timer));
}

static void set_phase(conn_t *c, phase_t ph)
{
    const admin_limits_t *lim = &c->admin->lim;
    uint64_t ms = ph == PH_HEAD     ? lim->header_timeout_ms
                  : ph == PH_LINGER ? ADMIN_LINGER_MS
                                    : lim->idle_timeout_ms;
    c->phase = ph;
    /* -ENOMEM from the heap leaves the previous deadline armed: still bounded. */
    (void)loop_timer_start(c->admin->loop, &c->timer, ms);
}

/* Progress reading a body or writing a response pushes the idle deadline. */
static void progress(conn_t *c)
{
    if (c->phase == PH_BODY || c->phase == PH_WRITE)
        (void)loop_timer_start(c->admin->loop, &c->timer, c->admin->lim.idle_timeout_ms);
}

/* ---- output ---- */

static bool out_pending(const conn_t *c)
{
    return buf_len(&c->out) > 0 || c->out_off < c->out_body.len;
}

/* Sends the queued head and body. 0 when all is out, -EAGAIN, or -errno. */
static int flush(conn_t *c)
{
    while (out_pending(c)) {
        size_t hl = buf_len(&c->out), sent;
        const char *body = c->out_body.p ? (const char *)c->out_body.p + c->out_off : NULL;
        int r = tls_stream_send(c->io.fd, &c->tls, &c->ready, hl ? buf_rptr(&c->out) : NULL, hl,
                                body, c->out_body.len - c->out_off, &sent);
        if (r < 0)
            return r;
        size_t h = hl < sent ? hl : sent;
        buf_consume(&c->out, h);
        c->out_off += sent - h;
        progress(c);
    }
    return 0;
}

/* Queues c->res as the answer to the current request. */
static void queue_response(conn_t *c, bool head_only, bool keep_alive, bool http10)
{
    str_t body = response_body(&c->res);
    if (response_bodyless(c->res.status))
        body.len = 0;
    if (!keep_alive)
        c->close_after = true;
    if (response_head(&c->res, &c->out, loop_wall_ms(c->admin->loop), body.len, !c->close_after,
                      http10) < 0) {
        /* Cannot happen with ADMIN_OUT_HEAD and bounded fields; if it does,
         * the client gets nothing rather than a truncated head. */
        c->out.head = c->out.tail = 0;
        body.len = 0;
        c->close_after = true;
    }
    c->out_body = head_only ? STR_NULL : body;
    c->out_off = 0;
    c->responding = true;
    set_phase(c, PH_WRITE);
}

/* An answer the server makes up itself, after which the connection closes. */
static void reject(conn_t *c, int status, const char *msg)
{
    response_reset(&c->res);
    admin_response_error(&c->res, status, msg);
    buf_consume(&c->in, buf_len(&c->in));
    queue_response(c, false, false, false);
}

/* The connection closes: stop sending, drain what the client still sends.
 * 0, or -1 when c was freed (the client had already finished). */
static int start_linger(conn_t *c)
{
    if (c->eof) {
        conn_close(c);
        return -1;
    }
    tls_io_close_notify(&c->tls);
    shutdown(c->io.fd, SHUT_WR);
    buf_deinit(&c->in);
    buf_deinit(&c->body);
    set_phase(c, PH_LINGER);
    return 0;
}

/* Discards input until EAGAIN; closes c at EOF or on an error. */
static void linger_read(conn_t *c)
{
    char sink[4096];
    while (c->ready.readable) {
        ssize_t n = read(c->io.fd, sink, sizeof(sink));
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->ready.readable = false;
            return;
        }
        conn_close(c); /* EOF or error: done */
        return;
    }
}

/* The final response is out: ready the connection for the next request, or
 * close it. 0, or -1 when c was freed. */
static int response_done(conn_t *c)
{
    response_reset(&c->res);
    c->out_body = STR_NULL;
    c->out_off = 0;
    c->responding = false;
    c->continue_sent = false;
    buf_deinit(&c->out);
    if (c->close_after)
        return start_linger(c);
    if (buf_len(&c->in)) {
        set_phase(c, PH_HEAD); /* a pipelined request is already here */
    } else {
        buf_deinit(&c->in); /* an idle connection holds no buffer */
        set_phase(c, PH_IDLE);
    }
    return 0;
}

/* ---- input ---- */

/* Whether the buffered bytes may hold a complete head: parsing is only
 * tried then (or when the buffer is full), so a client sending its head byte
 * by byte does not make the server parse it again for each byte. */
static bool head_may_be_complete(conn_t *c)
{
    if (c->head_seen)
        return true;
    const char *p = buf_rptr(&c->in);
    size_t len = buf_len(&c->in);
    size_t i = c->scanned > 2 ? c->scanned - 2 : 0;
    for (; i + 1 < len; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < len && p[i + 2] == '\n')) {
            c->head_seen = true;
            return true;
        }
    }
    c->scanned = len;
    return len == c->in.cap;
}

static void maybe_continue(conn_t *c, const http_request_t *req)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (req->expect_continue && req->minor == 1 && !c->continue_sent) {
        if (buf_append(&c->out, cont, sizeof(cont) - 1) == 0)
            c->continue_sent = true;
    }
}

/* Moves a body that will not fit in `in` to its own buffer, sized to it. */
static int body_to_own_buffer(conn_t *c, const http_request_t *req)
{
    buf_init(&c->body, (size_t)req->content_length);
    if (buf_alloc(&c->body) < 0)
        return -ENOMEM;
    size_t have = buf_len(&c->in) - req->head_len;
    /* Everything after the head is body: it is longer than what is here. */
    int err = buf_append(&c->body, buf_rptr(&c->in) + req->head_len, have);
    assert(err == 0);
    (void)err;
    c->in.tail -= have;
    return 0;
}

/* Tries to complete the request at the front of `in`: parse the head, make
 * sure the body is all there, run the route and queue the response. */
static int conn_input(conn_t *c)
{
    admin_t *a = c->admin;
    if (buf_len(&c->in) == 0 || !head_may_be_complete(c))
        return STEP_NEED_INPUT;

    http_limits_t lim = {
        .max_request_line =
            a->lim.max_head < ADMIN_MAX_REQUEST_LINE ? a->lim.max_head : ADMIN_MAX_REQUEST_LINE,
        .max_header_bytes = a->lim.max_head,
        .max_headers = ADMIN_MAX_FIELDS,
    };
    http_field_t fields[ADMIN_MAX_FIELDS];
    http_request_t req;
    http_reject_t why = HTTP_REJECT_NONE;
    int r = http_parse_request(&req, buf_rptr(&c->in), buf_len(&c->in), &lim, fields,
                               ADMIN_MAX_FIELDS, &why);
    if (r == -EAGAIN) {
        if (buf_len(&c->in) < c->in.cap)
            return STEP_NEED_INPUT;
        why = HTTP_REJECT_HEADERS_TOO_LARGE; /* full, yet not complete */
    }
    if (r < 0) {
        int status = http_reject_status(why);
        reject(c, status >= 400 ? status : 400, http_reject_name(why));
        return STEP_PROGRESS;
    }
    if (req.body == HTTP_BODY_CHUNKED) {
        reject(c, 411, "length required");
        return STEP_PROGRESS;
    }
    if (req.content_length > a->lim.max_body) {
        reject(c, 413, "body too large");
        return STEP_PROGRESS;
    }

    size_t total = req.head_len + (size_t)req.content_length;
    str_t body;
    if (total <= c->in.cap) {
        if (buf_len(&c->in) < total)
            goto need_body;
        body = str_from(buf_rptr(&c->in) + req.head_len, (size_t)req.content_length);
    } else {
        if (!c->body.data && body_to_own_buffer(c, &req) < 0) {
            conn_close(c);
            return -ENOMEM;
        }
        if (buf_len(&c->body) < req.content_length)
            goto need_body;
        body = buf_str(&c->body);
    }

    admin_request_t view = {
        .method = req.method, .path = req.path, .query = req.query, .body = body, .http = &req};
    response_route(a->routes, a->nroutes, a->ud, &view, &c->res);
    queue_response(c, str_eq(req.method, STR_LIT("HEAD")), req.keep_alive && !c->eof,
                   req.minor == 0);
    /* The response owns its bytes: the request's can go now. */
    buf_consume(&c->in, total <= c->in.cap ? total : req.head_len);
    buf_deinit(&c->body);
    c->head_seen = false;
    c->scanned = 0;
    return STEP_PROGRESS;

need_body:
    if (c->phase != PH_BODY)
        set_phase(c, PH_BODY);
    maybe_continue(c, &req);
    return STEP_NEED_INPUT;
}

/* Reads into the buffer the current phase fills. >0, 0 at EOF, -EAGAIN, -errno. */
static ssize_t conn_read(conn_t *c)
{
    buf_t *b = c->body.data ? &c->body : &c->in;
    size_t before = buf_len(b);
    bool eof = false;
    int err = 0;
    if (!tls_stream_read(c->io.fd, &c->tls, b, &c->ready, &eof, &err))
        return -EAGAIN;
    if (err)
        return err;
    ssize_t n = (ssize_t)(buf_len(b) - before);
    if (n == 0 && eof)
        return 0;
    if (n > 0) {
        if (c->phase == PH_IDLE)
            set_phase(c, PH_HEAD); /* the header timeout starts at the first byte */
        else
            progress(c);
    }
    return n;
}

/* Drives c as far as it can go without blocking; c may be freed on return. */
static void conn_run(conn_t *c)
{
    for (;;) {
        if (out_pending(c)) {
            int err = flush(c);
            if (err == -EAGAIN)
                return;
            if (err < 0) {
                conn_close(c);
                return;
            }
        }
        if (c->responding) {
            if (response_done(c) < 0)
                return; /* closed */
            continue;
        }
        if (c->phase == PH_LINGER) {
            linger_read(c);
            return;
        }
        int step = conn_input(c);
        if (step < 0)
            return; /* closed */
        if (step == STEP_PROGRESS || out_pending(c))
            continue; /* a response, or a 100 Continue, to send first */
        if (c->eof) {
            conn_close(c); /* an incomplete request will not be completed */
            return;
        }
        if (!c->ready.readable)
            return;
        ssize_t n = conn_read(c);
        if (n == -EAGAIN)
            return;
        if (n == 0) {
            c->eof = true;
            c->ready.readable = false;
        } else if (n < 0) {
            conn_close(c); /* -ENOSPC cannot happen: conn_input rejects a full head */
            return;
        }
    }
}

static void conn_io_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    (void)loop;
    conn_t *c = container_of(io, conn_t, io);
    loop_ready_update(&c->ready, events);
    if (c->tls.handshaking) {
        int r = tls_io_handshake(&c->tls, &c->ready);
        if (r == -EAGAIN)
            return;
        if (r < 0) {
            ERR_clear_error(); /* a client without an acceptable certificate, or not TLS */
            conn_close(c);
            return;
        }
    }
    conn_run(c);
}

static int conn_new(admin_t *a, int fd)
{
    conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->admin = a;
    buf_init(&c->in, a->lim.max_head);
    buf_init(&c->body, 0);
    buf_init(&c->out, ADMIN_OUT_HEAD);
    response_init(&c->res, a->lim.max_response, a->lim.max_metrics);
    loop_timer_init(&c->timer, conn_timeout_cb);
    c->ready.writable = true;
    if (a->tls) {
        SSL *ssl = tls_server_ssl_new(a->tls);
        if (!ssl || SSL_set_fd(ssl, fd) != 1) {
            SSL_free(ssl);
            ERR_clear_error();
            free(c);
            return -ENOMEM;
        }
        tls_conn_start(&c->tls, ssl);
    }
    int err = loop_io_add(a->loop, &c->io, fd, conn_io_cb);
    if (err < 0) {
        tls_conn_free(&c->tls);
        free(c);
        return err;
    }
    list_insert_head(&a->conns, &c->link);
    a->nconns++;
    /* A new connection gets the header timeout at once: one that sends
     * nothing is as slow as one that sends its head slowly. */
    set_phase(c, PH_HEAD);
    return 0;
}

/* ---- listener ---- */

static void listener_cb(loop_t *loop, loop_io_t *io, uint32_t events);

static void pause_cb(loop_t *loop, loop_timer_t *t)
{
    admin_t *a = container_of(t, admin_t, pause);
    if (loop_io_add_listener(loop, &a->lio, a->lio.fd, listener_cb) == 0)
        a->listening = true;
    else
        (void)loop_timer_start(loop, t, ADMIN_ACCEPT_PAUSE_MS);
}

static void listener_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    admin_t *a = container_of(io, admin_t, lio);
    (void)events;
    for (int i = 0; i < ADMIN_ACCEPT_BATCH; i++) {
        sock_addr_t peer;
        int fd = sock_accept(io->fd, &peer);
        if (fd == -EAGAIN)
            return;
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            /* Level-triggered: the pending connection would wake us again at
             * once, forever. Stop listening for a moment instead. */
            loop_io_del(loop, io);
            a->listening = false;
            (void)loop_timer_start(loop, &a->pause, ADMIN_ACCEPT_PAUSE_MS);
            return;
        }
        if (fd < 0)
            continue; /* ECONNABORTED, EINTR, EPROTO...: that one is gone */
        if (a->nconns >= a->lim.max_conns || conn_new(a, fd) < 0)
            close(fd);
    }
}

admin_t *admin_new(loop_t *loop, const sock_addr_t *addr, const admin_route_t *routes,
                   size_t nroutes, const admin_limits_t *lim, void *ud, int *ret_err)
{
    int err;
    admin_t *a = calloc(1, sizeof(*a));
    if (!a) {
        err = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nroutes; i++)
        assert(routes[i].method && routes[i].path && routes[i].handler);
    a->loop = loop;
    a->routes = routes;
    a->nroutes = nroutes;
    a->ud = ud;
    a->lim = lim ? *lim : admin_limits_default;
    assert(a->lim.max_head > 0 && a->lim.max_conns > 0);
    list_init(&a->conns);
    loop_timer_init(&a->pause, pause_cb);
    a->lio.fd = -1;

    int fd = sock_listen(addr, false, 128);
    if (fd < 0) {
        err = fd;
        goto out;
    }
    err = loop_io_add_listener(loop, &a->lio, fd, listener_cb);
    if (err < 0) {
        close(fd);
        goto out;
    }
    a->listening = true;
    return a;
out:
    free(a);
    *ret_err = err;
    return NULL;
}

void admin_free(admin_t *a)
{
    if (!a)
        return;
    while (!list_empty(&a->conns))
        conn_close(container_of(a->conns.next, conn_t, link));
    loop_timer_stop(a->loop, &a->pause);
    if (a->listening)
        loop_io_del(a->loop, &a->lio);
    close(a->lio.fd);
    free(a);
}

int admin_local_addr(const admin_t *a, sock_addr_t *ret)
{
    sock_addr_t sa;
    sa.len = sizeof(sa.ss);
    if (getsockname(a->lio.fd, (struct sockaddr *)&sa.ss, &sa.len) < 0)
        return -errno;
    *ret = sa;
    return 0;
}

size_t admin_connections(const admin_t *a)
{
    return a->nconns;
}

void admin_set_tls(admin_t *a, tls_server_t *tls)
{
    a->tls = tls;
}
