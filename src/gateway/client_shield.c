/* The shield's request and content layers on a client connection: the rate
 * limit, allowed methods and body limits after a request head is parsed,
 * and holding the request (head and a bounded body prefix) while the WAF
 * threads inspect it.
 *
 * The WAF never runs here: the request's bytes are copied into a job and
 * handed to the WAF pool (bounded: a full queue answers 503); this worker
 * goes on serving its other connections, and the verdict comes back through
 * the worker's WAF list (worker.c). On a pass, the head still waiting at the
 * front of the input buffer is parsed again and the request proceeds as if
 * it had just arrived, so the proxy path knows nothing of the WAF. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "gateway/worker.h"

static const conf_listener_t *lconf(const client_t *c)
{
    return &c->w->conf->listeners[c->l->index];
}

void client_shield_event(client_t *c, const shield_policy_t *p, shield_reason_t reason, int status,
                         const waf_job_t *job)
{
    secev_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.client = c->peer;
    ev.status = (uint16_t)status;
    snprintf(ev.request_id, sizeof(ev.request_id), "%.*s", (int)c->tx.request_id_len,
             c->tx.request_id);
    snprintf(ev.method, sizeof(ev.method), "%s", c->tx.method);
    snprintf(ev.path, sizeof(ev.path), "%.*s", (int)c->tx.path_len, c->tx.path);
    if (job) {
        for (unsigned i = 0; i < job->nrules && ev.nrules < SECEV_MAX_RULES; i++)
            ev.rules[ev.nrules++] = job->rules[i];
        snprintf(ev.detail, sizeof(ev.detail), "%s", job->msg);
    }
    shield_event(c->w->shield, p, reason, &ev);
}

/* Answers status for reason (with an event), consuming the head. */
static int refuse(client_t *c, size_t head_len, shield_reason_t reason, int status)
{
    client_shield_event(c, c->tx.policy, reason, status, NULL);
    buf_consume(&c->in, head_len);
    return client_fail(c, status);
}

static int waf_start(client_t *c, const http_request_t *req);

bool client_shield_request(client_t *c, const http_request_t *req, int *ret)
{
    const shield_policy_t *p = c->tx.policy;
    const conf_shield_t *sc = p->conf;
    uint64_t now = loop_now(c->w->loop);

    str_t key = client_request_key(c, req, sc->rate.key, sc->rate.key_name);
    uint64_t wait = shield_rate_take(p, (const struct sockaddr *)&c->peer.ss, key, now);
    if (wait) {
        snprintf(c->tx.extra, sizeof(c->tx.extra), "Retry-After: %llu\r\n",
                 (unsigned long long)((wait + 999) / 1000));
        *ret = refuse(c, req->head_len, SHIELD_RATE_LIMIT, 429);
        return true;
    }
    if (!shield_method_allowed(p, req->method)) {
        *ret = refuse(c, req->head_len, SHIELD_METHOD, 405);
        return true;
    }
    if (sc->limits.body && req->body == HTTP_BODY_LENGTH && req->content_length > sc->limits.body) {
        *ret = refuse(c, req->head_len, SHIELD_BODY_TOO_LARGE, 413);
        return true;
    }
    c->tx.body_start_ms = now;
    if (p->waf) {
        *ret = waf_start(c, req);
        return true;
    }
    c->tx.shield_passed = true;
    return false;
}

int client_shield_body(client_t *c, size_t n)
{
    const shield_policy_t *p = c->tx.policy;
    if (!p)
        return STEP_IDLE;
    const conf_shield_t *sc = p->conf;
    c->tx.body_seen += n;
    if (sc->limits.body && c->tx.body_seen > sc->limits.body) {
        client_shield_event(c, p, SHIELD_BODY_TOO_LARGE, 413, NULL);
        return client_fail(c, 413);
    }
    return STEP_IDLE;
}

/* limits.body_rate, checked when the client timer fires while a body is on
 * its way: after a grace of BODY_RATE_GRACE_MS, the average since the end of
 * the head must reach the rate. */
#define BODY_RATE_GRACE_MS 5000
bool client_shield_body_too_slow(client_t *c)
{
    const shield_policy_t *p = c->tx.policy;
    if (!p || !p->conf->limits.body_rate || c->tx.req_body.done)
        return false;
    uint64_t elapsed = loop_now(c->w->loop) - c->tx.body_start_ms;
    if (elapsed < BODY_RATE_GRACE_MS)
        return false;
    return c->tx.body_seen * 1000 < p->conf->limits.body_rate * elapsed;
}

/* ---- the content layer: the WAF ------------------------------------------ */

/* Decodes the chunked body at p[0, avail) into out (NULL: only counts) up
 * to limit decoded bytes: how many, and *complete when the body ended. */
static size_t dechunk_prefix(const client_t *c, const char *p, size_t avail, size_t limit,
                             char *out, bool *complete)
{
    http_chunked_t ch;
    http_chunked_init(&ch, 4096, lconf(c)->max_header_bytes);
    size_t i = 0, len = 0;
    while (i < avail && len < limit) {
        size_t used, off, n;
        http_reject_t why;
        int r = client_dechunk_next(&ch, p + i, avail - i, &used, &off, &n, &why);
        if (r == -EBADMSG)
            break;
        if (n > limit - len)
            n = limit - len;
        if (out)
            memcpy(out + len, p + i + off, n);
        len += n;
        i += used;
        if (r == 0) {
            *complete = true;
            break;
        }
    }
    return len;
}

/* The body bytes of the buffered request that the WAF will see: for a
 * length-delimited body, the first bytes as they are; a chunked body is
 * decoded (the WAF must see what the server will). Returns a malloc'd copy
 * (NULL with *len 0 for no body), *complete when the whole body is there. */
static char *body_prefix(client_t *c, size_t head_len, size_t limit, size_t *len, bool *complete)
{
    const char *p = buf_rptr(&c->in) + head_len;
    size_t avail = buf_len(&c->in) - head_len;
    body_t *b = &c->tx.req_body;
    *len = 0;
    *complete = b->done;
    if (b->kind == HTTP_BODY_NONE || b->done)
        return NULL;
    if (b->kind == HTTP_BODY_LENGTH) {
        size_t n = avail < b->remaining ? avail : (size_t)b->remaining;
        *complete = n == b->remaining;
        n = n < limit ? n : limit;
        char *out = malloc(n ? n : 1);
        if (out && n)
            memcpy(out, p, n);
        *len = n;
        return out;
    }
    char *out = malloc(limit ? limit : 1);
    if (out)
        *len = dechunk_prefix(c, p, avail, limit, out, complete);
    return out;
}

static bool waf_have_enough(client_t *c)
{
    size_t have = buf_len(&c->in);
    if (have >= c->tx.waf_need || c->eof || buf_free_space(&c->in) == 0)
        return true;
    if (c->tx.req_body.kind == HTTP_BODY_CHUNKED) {
        size_t limit = c->tx.policy->conf->waf.body, head = c->tx.head_up_len;
        bool complete = false;
        size_t len =
            dechunk_prefix(c, buf_rptr(&c->in) + head, have - head, limit, NULL, &complete);
        return complete || len >= limit;
    }
    return false;
}

static int waf_submit(client_t *c)
{
    worker_t *w = c->w;
    size_t head_len = c->tx.head_up_len; /* the client's head, kept at the front of in */
    size_t len;
    bool complete;
    const shield_policy_t *p = c->tx.policy;
    char *body = body_prefix(c, head_len, p->conf->waf.body, &len, &complete);
    waf_job_t *job = waf_job_new(p->waf, buf_rptr(&c->in), head_len, body, len, !complete);
    free(body);
    if (!job) {
        buf_consume(&c->in, head_len);
        return client_fail(c, 503);
    }
    job->client = c->peer;
    job->done = worker_waf_job_done;
    job->owner = w;
    job->tag = c;
    __atomic_add_fetch(&w->waf_inflight, 1, __ATOMIC_ACQ_REL);
    if (waf_pool_submit(shield_waf_pool(w->shield), job) < 0) {
        __atomic_sub_fetch(&w->waf_inflight, 1, __ATOMIC_ACQ_REL);
        waf_job_free(job);
        return refuse(c, head_len, SHIELD_WAF_OVERLOAD, 503);
    }
    c->tx.waf_job = job;
    c->tx.waf_submitted = true;
    /* waiting on the WAF, not on the client: the timer only keeps watch */
    loop_timer_start(w->loop, &c->timer, lconf(c)->client_timeout_ms);
    return STEP_IDLE;
}

static int waf_start(client_t *c, const http_request_t *req)
{
    const conf_shield_t *sc = c->tx.policy->conf;
    c->state = CL_WAF;
    c->tx.head_up_len = req->head_len; /* reused: where the body starts in `in` */
    c->tx.waf_need = req->head_len;
    if (req->body == HTTP_BODY_LENGTH)
        c->tx.waf_need +=
            req->content_length < sc->waf.body ? (size_t)req->content_length : sc->waf.body;
    else if (req->body == HTTP_BODY_CHUNKED)
        c->tx.waf_need += sc->waf.body;
    if (req->expect_continue && c->tx.waf_need > req->head_len && buf_len(&c->in) < c->tx.waf_need)
        /* the client waits for this before it sends the body we need */
        buf_append_str(&c->out, STR_LIT("HTTP/1.1 100 Continue\r\n\r\n"));
    loop_timer_start(c->w->loop, &c->timer, lconf(c)->client_timeout_ms);
    return STEP_PROGRESS;
}

/* CL_WAF: send a 100 Continue if one waits, read the body prefix, submit;
 * then nothing until the verdict. */
int client_waf_step(client_t *c)
{
    int progress = STEP_IDLE;
    if (c->tx.waf_job)
        return STEP_IDLE;
    if (buf_len(&c->out)) {
        int r = client_flush_out(c);
        if (r == STEP_CLOSED)
            return r;
        progress |= r;
    }
    while (!waf_have_enough(c)) {
        int r = client_read(c);
        if (r == STEP_CLOSED)
            return r;
        if (r != STEP_PROGRESS)
            return progress;
        progress = STEP_PROGRESS;
        loop_timer_start(c->w->loop, &c->timer, lconf(c)->client_timeout_ms);
    }
    if (c->eof && c->tx.req_body.kind != HTTP_BODY_NONE && buf_len(&c->in) < c->tx.waf_need) {
        client_close(c); /* gave up mid-body: nothing to inspect or forward */
        return STEP_CLOSED;
    }
    int r = waf_submit(c);
    return r == STEP_CLOSED ? r : STEP_PROGRESS;
}

void client_waf_done(client_t *c, waf_job_t *job)
{
    const shield_policy_t *p = c->tx.policy;
    c->tx.waf_job = NULL;
    shield_waf_observe(p, job->verdict, job->elapsed_us);
    if (job->verdict == WAF_MATCH) {
        bool block = p->conf->waf.mode == CONF_WAF_BLOCK;
        client_shield_event(c, p, block ? SHIELD_WAF : SHIELD_WAF_DETECT, block ? 403 : 0, job);
        if (block) {
            buf_consume(&c->in, c->tx.head_up_len);
            waf_job_free(job);
            if (client_fail(c, 403) != STEP_CLOSED)
                client_run(c);
            return;
        }
    } else if (job->verdict == WAF_ERROR) {
        log_warn("listener %s: WAF inspection failed; the request passes uninspected",
                 lconf(c)->name);
    }
    waf_job_free(job);
    /* pass: the head is still at the front of `in`; parse it again */
    c->tx.shield_passed = true;
    c->tx.head_up_len = 0;
    c->state = CL_HEAD;
    c->parsed_len = 0;
    client_run(c);
}
