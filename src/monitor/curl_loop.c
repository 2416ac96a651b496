/* libcurl multi <-> loop glue: see curl_loop.h.
 *
 * libcurl says, per socket, which directions it waits for (socket callback)
 * and when it next wants to be called without I/O (timer callback); we are
 * to call curl_multi_socket_action() when either happens. It reads and
 * writes at most a buffer per call and expects to be called again while a
 * socket stays ready, which is level-triggered readiness: hence
 * loop_io_add_level/loop_io_mod, not the edge-triggered loop_io_add the
 * proxy uses. Each watched socket has a curl_sock_t, attached to the socket
 * inside libcurl with curl_multi_assign() and freed when libcurl says
 * CURL_POLL_REMOVE (before it closes the socket). After every action, the
 * finished transfers are collected and handed to the done callback. */
#include "monitor/curl_loop.h"

#include <errno.h>
#include <stdlib.h>

#include "core/list.h"

typedef struct {
    loop_io_t io;
    curl_loop_t *cl;
    list_t link; /* in cl->socks */
} curl_sock_t;

struct curl_loop {
    loop_t *loop;
    CURLM *multi;
    loop_timer_t timer; /* libcurl's timeout */
    curl_loop_done_cb done;
    void *ud;
    list_t socks;
};

static uint32_t poll_events(int what)
{
    uint32_t ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= EPOLLOUT;
    return ev;
}

static void sock_free(curl_loop_t *cl, curl_sock_t *s)
{
    loop_io_del(cl->loop, &s->io);
    list_remove(&s->link);
    free(s);
}

/* Hands every finished transfer to the done callback, removed from the
 * multi handle first so that the callback owns it outright. */
/* Finished transfers, in batches: all the messages first, then the
 * removals. libcurl 7.88's curl_multi_remove_handle scans the queue of
 * unread messages, so removing each handle as its message is read costs
 * K^2 for a burst of K (61% of the thread's time in an overloaded run). */
#define DONE_BATCH 256

static void collect_done(curl_loop_t *cl)
{
    struct {
        CURL *easy;
        CURLcode result;
    } done[DONE_BATCH];
    for (;;) {
        size_t n = 0;
        CURLMsg *msg;
        int left;
        while (n < DONE_BATCH && (msg = curl_multi_info_read(cl->multi, &left)))
            if (msg->msg == CURLMSG_DONE)
                done[n].easy = msg->easy_handle, done[n++].result = msg->data.result;
        if (!n)
            return;
        for (size_t i = 0; i < n; i++) {
            curl_multi_remove_handle(cl->multi, done[i].easy);
            cl->done(cl, done[i].easy, done[i].result, cl->ud);
        }
    }
}

static void act(curl_loop_t *cl, curl_socket_t fd, int flags)
{
    int running;
    curl_multi_socket_action(cl->multi, fd, flags, &running);
    collect_done(cl);
}

static void sock_io_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    (void)loop;
    curl_sock_t *s = container_of(io, curl_sock_t, io);
    int flags = 0;
    if (events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
    act(s->cl, io->fd, flags);
}

static void timer_cb(loop_t *loop, loop_timer_t *t)
{
    (void)loop;
    act(container_of(t, curl_loop_t, timer), CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION. Runs inside libcurl calls on the loop's thread.
 * -1 makes libcurl fail the transfer (we could not watch its socket). */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    curl_loop_t *cl = userp;
    curl_sock_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_free(cl, s);
        return 0;
    }
    uint32_t ev = poll_events(what);
    if (s)
        return loop_io_mod(cl->loop, &s->io, ev) < 0 ? -1 : 0;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->cl = cl;
    if (loop_io_add_level(cl->loop, &s->io, fd, ev, sock_io_cb) < 0) {
        free(s);
        return -1;
    }
    list_insert_head(&cl->socks, &s->link);
    curl_multi_assign(cl->multi, fd, s);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 cancels; 0 means "as soon as possible", which
 * must not be a call from inside this callback, so a 0 ms timer. */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    curl_loop_t *cl = userp;
    if (timeout_ms < 0) {
        loop_timer_stop(cl->loop, &cl->timer);
        return 0;
    }
    return loop_timer_start(cl->loop, &cl->timer, (uint64_t)timeout_ms) < 0 ? -1 : 0;
}

curl_loop_t *curl_loop_new(loop_t *loop, curl_loop_done_cb done, void *ud, int *ret_err)
{
    curl_loop_t *cl = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto fail;
    cl = calloc(1, sizeof(*cl));
    if (!cl)
        goto fail_global;
    cl->loop = loop;
    cl->done = done;
    cl->ud = ud;
    list_init(&cl->socks);
    loop_timer_init(&cl->timer, timer_cb);
    cl->multi = curl_multi_init();
    if (!cl->multi)
        goto fail_global;
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
    return cl;
fail_global:
    free(cl);
    curl_global_cleanup();
fail:
    if (ret_err)
        *ret_err = -ENOMEM;
    return NULL;
}

void curl_loop_free(curl_loop_t *cl)
{
    if (!cl)
        return;
    /* Socket callbacks may still come (connections closed by the cleanup):
     * cl stays valid until it returns. */
    curl_multi_cleanup(cl->multi);
    list_t *pos, *tmp;
    list_foreach_safe(pos, tmp, &cl->socks)
    {
        sock_free(cl, container_of(pos, curl_sock_t, link));
    }
    loop_timer_stop(cl->loop, &cl->timer);
    free(cl);
    curl_global_cleanup();
}

int curl_loop_add(curl_loop_t *cl, CURL *easy)
{
    CURLMcode mc = curl_multi_add_handle(cl->multi, easy);
    if (mc == CURLM_OK)
        return 0;
    return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

void curl_loop_remove(curl_loop_t *cl, CURL *easy)
{
    curl_multi_remove_handle(cl->multi, easy);
}
