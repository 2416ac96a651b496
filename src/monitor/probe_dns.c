/* DNS probes: glibc's getaddrinfo_a (see probe.h).
 *
 * libcurl has no lookup-only transfer, and a blocking getaddrinfo would
 * stall the control thread, so each probe is one GAI_NOWAIT request that
 * glibc's own resolver threads run. Completion is signalled with
 * SIGEV_THREAD: glibc calls dns_notify() on a helper thread, which writes
 * an eventfd (the "hub") watched by the loop; the loop side then collects
 * every finished request with gai_error().
 *
 * Lifetimes. A request that times out, or is in flight when probe_free()
 * runs, may be running inside glibc: gai_cancel() cannot stop it, and its
 * gaicb must stay valid until glibc is done. So a request has two
 * references, the probe's and the notification's, and is freed by whichever
 * lets go last; the hub (eventfd) is referenced by p and by every request,
 * so that a late notification writes to an open descriptor that nobody
 * reads rather than to a closed or reused one. A request cancelled before
 * it ran gets no notification: the canceller drops both references. If
 * glibc cannot start the helper thread, that request's memory is lost (the
 * probe itself still ends by its timeout). */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/sock.h"
#include "monitor/probe_int.h"

struct probe_dns_hub {
    atomic_int refs;
    int efd;
};

struct probe_dns_req {
    struct gaicb cb;
    struct addrinfo hints;
    atomic_int refs;
    probe_dns_hub_t *hub;
    char name[];
};

/* Any thread. */
static void hub_unref(probe_dns_hub_t *h)
{
    if (atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    close(h->efd);
    free(h);
}

/* Any thread. */
static void req_unref(probe_dns_req_t *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->cb.ar_result)
        freeaddrinfo(r->cb.ar_result);
    hub_unref(r->hub);
    free(r);
}

/* glibc's helper thread: wake the loop, let go. */
static void dns_notify(union sigval v)
{
    probe_dns_req_t *r = v.sival_ptr;
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(r->hub->efd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
    req_unref(r);
}

/* Stops caring about r: cancelled before it ran (no notification will
 * come) or left to finish inside glibc. */
static void req_abandon(probe_dns_req_t *r)
{
    if (gai_cancel(&r->cb) == EAI_CANCELED)
        req_unref(r);
    req_unref(r);
}

static uint32_t elapsed_ms(const probe_mon_t *m)
{
    uint64_t ms = (probe_mono_us() - m->started_us) / 1000;
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

static void dns_judge(probe_mon_t *m, probe_dns_req_t *req, probe_result_t *r)
{
    int rc = gai_error(&req->cb);
    size_t n = 0;
    const struct addrinfo *first = rc == 0 ? req->cb.ar_result : NULL;
    for (const struct addrinfo *ai = first; ai; ai = ai->ai_next)
        n++;
    if (rc == EAI_NONAME || (rc == 0 && n == 0)) {
        snprintf(r->detail, sizeof(r->detail), "no address for %s", m->spec.target);
    } else if (rc != 0) {
        snprintf(r->detail, sizeof(r->detail), "cannot resolve %s: %s", m->spec.target,
                 gai_strerror(rc));
    } else if (m->spec.latency_ms && r->latency_ms > m->spec.latency_ms) {
        snprintf(r->detail, sizeof(r->detail), "latency %u ms over %u ms", r->latency_ms,
                 m->spec.latency_ms);
    } else {
        sock_addr_t a = {.len = first->ai_addrlen};
        memcpy(&a.ss, first->ai_addr, first->ai_addrlen);
        char ip[SOCK_ADDR_TEXT_MAX];
        sock_addr_format_ip(&a, ip, sizeof(ip));
        r->ok = true;
        snprintf(r->detail, sizeof(r->detail), "resolved to %s (%zu address%s)", ip, n,
                 n == 1 ? "" : "es");
    }
}

static void dns_done(probe_mon_t *m)
{
    probe_dns_req_t *req = m->dns;
    probe_result_t r = {.latency_ms = elapsed_ms(m)};
    m->dns = NULL;
    loop_timer_stop(m->p->loop, &m->deadline);
    dns_judge(m, req, &r);
    req_unref(req);
    probe_finish(m, &r);
}

/* The hub's eventfd is readable: some request finished. One read resets
 * the counter; every monitor's request is then looked at. */
static void hub_io_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    (void)loop;
    (void)events;
    probe_t *p = container_of(io, probe_t, hub_io);
    uint64_t v;
    ssize_t n;
    do
        n = read(io->fd, &v, sizeof(v));
    while (n < 0 && errno == EINTR);
    for (size_t i = 0; i < p->n; i++) {
        probe_mon_t *m = &p->mons[i];
        if (m->dns && gai_error(&m->dns->cb) != EAI_INPROGRESS)
            dns_done(m);
    }
}

static void deadline_cb(loop_t *loop, loop_timer_t *t)
{
    (void)loop;
    probe_mon_t *m = container_of(t, probe_mon_t, deadline);
    if (gai_error(&m->dns->cb) != EAI_INPROGRESS) {
        dns_done(m); /* finished, its notification not yet seen */
        return;
    }
    req_abandon(m->dns);
    m->dns = NULL;
    probe_fail(m, m->spec.timeout_ms, 0, "timeout after %u ms", m->spec.timeout_ms);
}

int probe_dns_hub_open(probe_t *p)
{
    probe_dns_hub_t *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->efd < 0) {
        int err = -errno;
        free(h);
        return err;
    }
    atomic_init(&h->refs, 1);
    int err = loop_io_add_level(p->loop, &p->hub_io, h->efd, EPOLLIN, hub_io_cb);
    if (err < 0) {
        close(h->efd);
        free(h);
        return err;
    }
    p->hub = h;
    return 0;
}

void probe_dns_hub_close(probe_t *p)
{
    if (!p->hub)
        return;
    loop_io_del(p->loop, &p->hub_io);
    hub_unref(p->hub);
    p->hub = NULL;
}

void probe_dns_start(probe_mon_t *m)
{
    probe_t *p = m->p;
    size_t len = strlen(m->spec.target);
    probe_dns_req_t *req = calloc(1, sizeof(*req) + len + 1);
    if (!req) {
        probe_fail(m, 0, 0, "internal: %s", strerror(ENOMEM));
        return;
    }
    memcpy(req->name, m->spec.target, len + 1);
    req->hints.ai_family = AF_UNSPEC;
    req->hints.ai_socktype = SOCK_STREAM; /* one entry per address, not per socket type */
    req->cb.ar_name = req->name;
    req->cb.ar_request = &req->hints;
    atomic_init(&req->refs, 2);
    req->hub = p->hub;
    atomic_fetch_add(&p->hub->refs, 1);
    struct sigevent sev = {.sigev_notify = SIGEV_THREAD};
    sev.sigev_notify_function = dns_notify;
    sev.sigev_value.sival_ptr = req;
    struct gaicb *list[1] = {&req->cb};
    m->started_us = probe_mono_us();
    int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
    if (rc != 0) {
        req_unref(req);
        req_unref(req);
        probe_fail(m, 0, 0, "resolver: %s", gai_strerror(rc));
        return;
    }
    m->dns = req;
    m->deadline.cb = deadline_cb;
    if (loop_timer_start(p->loop, &m->deadline, m->spec.timeout_ms) < 0) {
        req_abandon(req);
        m->dns = NULL;
        probe_fail(m, 0, 0, "internal: %s", strerror(ENOMEM));
    }
}

void probe_dns_cancel(probe_mon_t *m)
{
    loop_timer_stop(m->p->loop, &m->deadline);
    if (m->dns)
        req_abandon(m->dns);
    m->dns = NULL;
    m->running = false;
}
