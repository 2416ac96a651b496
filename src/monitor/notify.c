/* The notifier (see notify.h for the contract, docs/alerts.md for the rules
 * as operators read them): the queue from the control thread, the grouping
 * and de-duplication state per receiver, the transfers on a libcurl multi
 * handle, the delivery ring and the metrics.
 *
 * Per receiver the thread remembers each alert it has seen (bounded by
 * conf.alerts): the last posted copy, whether its firing was notified and
 * when, and `dirty` (it must go out in the next notification). The first
 * alert to become dirty opens the group: due = now + group_wait. When due
 * passes and no notification of the receiver is in flight, every dirty
 * alert goes into one notification; firing ones are marked notified then
 * (at build time, so that posts during the delivery do not count as new),
 * resolved ones are forgotten. A notification is one transfer, whose
 * attempts share its id and payload; between attempts it waits retry_at.
 *
 * The thread sleeps in curl_multi_poll() for at most a second, less when a
 * group or a retry is due sooner; notify_post, notify_tick and notify_sync
 * wake it with curl_multi_wakeup(), which libcurl documents as callable
 * from any thread. The queue is a ring under a mutex held only for a copy
 * of one alert (post) or of the whole ring into the thread's batch (drain),
 * so the control thread never waits for more than a memcpy. */
#include "core/str.h"
#include "monitor/notify.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "monitor/notify_int.h"

#define QUEUE_DEFAULT 256
#define ALERTS_DEFAULT 256
#define ALERTS_MAX 4096
#define RING_DEFAULT 100
#define RING_MAX 10000
#define TO_MAX 100
#define REPEAT_DEFAULT_S (4 * 3600)
#define GROUP_WAIT_DEFAULT_S 30
#define ATTEMPTS_DEFAULT 8
#define ATTEMPTS_MAX 100
#define BACKOFF_DEFAULT_S 1
#define BACKOFF_MAX_DEFAULT_S 300
#define TIMEOUT_DEFAULT_MS 10000
/* The longest sleep: a clock that jumps is noticed within it. */
#define TICK_MS 1000

static const double dur_bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBOUNDS (sizeof(dur_bounds) / sizeof(dur_bounds[0]))

typedef struct {
    notify_alert_t a; /* the last posted copy */
    bool notified;    /* its firing was notified (at notified_at) */
    bool dirty;       /* goes into the next notification */
    int64_t notified_at;
} entry_t;

typedef struct rcv rcv_t;

/* A post in the queue, with the time it was made: a group's wait starts
 * when the control thread saw the change, not when this thread got to it. */
typedef struct {
    notify_alert_t a;
    int64_t at;
} qitem_t;

/* One notification being delivered: its attempts share id and payload. */
typedef struct {
    rcv_t *r;
    CURL *easy;              /* the attempt in flight; NULL between attempts */
    struct curl_slist *list; /* its headers (webhook) or recipients (email) */
    notify_payload_t payload;
    char id[33];
    unsigned attempt, nalerts;
    uint8_t state;
    int64_t retry_at; /* when easy is NULL: the next attempt's time */
    double started;   /* CLOCK_MONOTONIC seconds */
    char errbuf[CURL_ERROR_SIZE];
} xfer_t;

struct rcv {
    notify_rcv_conf_t c;
    unsigned idx;
    entry_t *entries; /* grows by doubling up to the notifier's alerts_max */
    size_t n, cap;
    int64_t due;                     /* the open group's time; 0: no group */
    xfer_t *xfer;                    /* the notification in flight, NULL: none */
    atomic_uint_fast64_t results[3]; /* attempts by notify_result_t */
};

struct notify {
    rcv_t *rcv;
    size_t nrcv, alerts_max;
    unsigned max_attempts;
    uint64_t backoff_s, backoff_max_s, timeout_ms;
    int64_t (*now)(void);
    notify_delivery_cb on_delivery;
    void *ud;

    CURLM *multi;
    pthread_t thread;
    bool started;
    atomic_bool stop;

    /* The queue: qn alerts from qhead, in a ring of qcap. */
    pthread_mutex_t q_mu;
    qitem_t *q, *batch;
    size_t qcap, qhead, qn;

    /* The deliveries: record k is at k % ring_cap while k >= ring_total - ring_n. */
    pthread_mutex_t ring_mu;
    notify_delivery_t *ring;
    size_t ring_cap, ring_n;
    uint64_t ring_total;

    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    uint64_t sync_req, sync_done;

    uint64_t id_seq; /* the thread's */
    atomic_uint_fast64_t posted, dropped, forgotten;
    atomic_uint_fast64_t dur_buckets[NBOUNDS + 1], dur_count, dur_sum_us;
};

static const char *const state_names[] = {"firing", "resolved"};
static const char *const result_names[] = {"sent", "retry", "failed"};

const char *notify_state_name(unsigned state)
{
    return state < 2 ? state_names[state] : "?";
}

const char *notify_result_name(unsigned result)
{
    return result < 3 ? result_names[result] : "?";
}

static int64_t time_now(void)
{
    return (int64_t)time(NULL);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void notify_time_rfc3339(int64_t t, char *out)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    /* Numeric conversions only: the locale does not matter. */
    if (!strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm))
        out[0] = '\0';
}

void notify_text_fix(char *s, size_t size)
{
    unsigned char *u = (unsigned char *)s;
    size_t n = strnlen(s, size);
    if (n == size) {
        /* Full array: drop the last character, or the bytes of it that fit. */
        n--;
        while (n && (u[n] & 0xc0) == 0x80)
            n--;
        s[n] = '\0';
    }
    for (size_t i = 0; i < n;) {
        size_t k = str_utf8_len(u + i, n - i);
        if (k == 1 && (u[i] < 0x20 || u[i] == 0x7f))
            k = 0;
        if (!k)
            u[i++] = '?';
        else
            i += k;
    }
}

/* ---- configuration ---- */

static char *dup_opt(const char *s, bool *oom)
{
    char *d = s ? strdup(s) : NULL;
    *oom |= s && !d;
    return d;
}

static bool has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n");
}

static void rcv_conf_free(notify_rcv_conf_t *c)
{
    free(c->name);
    free(c->url);
    free(c->smtp_url);
    free(c->from);
    free(c->username);
    free(c->password);
    free(c->ca_file);
    free(c->secret);
    for (size_t i = 0; c->to && i < c->nto; i++)
        free(c->to[i]);
    free(c->to);
}

/* Checks a receiver; NULL when it is fine, else what is wrong. */
static const char *rcv_check(const notify_receiver_t *r)
{
    char addr[320];
    if (r->kind == NOTIFY_WEBHOOK) {
        if (!r->url || (strncmp(r->url, "http://", 7) && strncmp(r->url, "https://", 8)))
            return "webhook URL must be http:// or https://";
        return has_crlf(r->url) ? "webhook URL contains a line break" : NULL;
    }
    if (r->kind != NOTIFY_EMAIL)
        return "unknown kind";
    if (!r->smtp_url || (strncmp(r->smtp_url, "smtp://", 7) && strncmp(r->smtp_url, "smtps://", 8)))
        return "smtp URL must be smtp:// or smtps://";
    if (!r->from || has_crlf(r->from) || notify_smtp_addr(r->from, addr, sizeof(addr)) < 0)
        return "from must be an address without line breaks";
    if (r->nto < 1 || r->nto > TO_MAX || !r->to)
        return "to must list 1 to 100 addresses";
    for (size_t i = 0; i < r->nto; i++)
        if (!r->to[i] || has_crlf(r->to[i]) || notify_smtp_addr(r->to[i], addr, sizeof(addr)) < 0)
            return "to must list addresses without line breaks";
    return NULL;
}

/* Copies r into c; -ENOMEM (c then holds what was copied: free it). */
static int rcv_conf_copy(notify_rcv_conf_t *c, const notify_receiver_t *r)
{
    bool oom = false;
    c->kind = r->kind;
    c->repeat_s = r->repeat_s ? r->repeat_s : REPEAT_DEFAULT_S;
    c->group_wait_s = r->group_wait_s ? r->group_wait_s : GROUP_WAIT_DEFAULT_S;
    c->name = dup_opt(r->name, &oom);
    c->url = dup_opt(r->url, &oom);
    c->smtp_url = dup_opt(r->smtp_url, &oom);
    c->from = dup_opt(r->from, &oom);
    c->username = dup_opt(r->username, &oom);
    c->password = dup_opt(r->password, &oom);
    c->ca_file = dup_opt(r->ca_file, &oom);
    if (r->secret_len) {
        c->secret = malloc(r->secret_len);
        oom |= !c->secret;
        if (c->secret)
            memcpy(c->secret, r->secret, r->secret_len);
        c->secret_len = c->secret ? r->secret_len : 0;
    }
    if (r->kind == NOTIFY_EMAIL) {
        c->to = calloc(r->nto, sizeof(char *));
        oom |= !c->to;
        for (size_t i = 0; c->to && i < r->nto; i++, c->nto++)
            c->to[i] = dup_opt(r->to[i], &oom);
    }
    return oom ? -ENOMEM : 0;
}

/* ---- deliveries ---- */

/* Records one attempt: the ring, the counters, the hook. */
static void record(notify_t *n, const notify_delivery_t *d, double seconds)
{
    pthread_mutex_lock(&n->ring_mu);
    n->ring[n->ring_total % n->ring_cap] = *d;
    n->ring_total++;
    if (n->ring_n < n->ring_cap)
        n->ring_n++;
    pthread_mutex_unlock(&n->ring_mu);

    atomic_fetch_add_explicit(&n->rcv[d->receiver].results[d->result], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < NBOUNDS && seconds > dur_bounds[b])
        b++;
    atomic_fetch_add_explicit(&n->dur_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n->dur_sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
    atomic_fetch_add_explicit(&n->dur_count, 1, memory_order_relaxed);
    if (n->on_delivery)
        n->on_delivery(n->ud, d);
}

static void xfer_free(xfer_t *x)
{
    if (!x)
        return;
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->list);
    free(x->payload.data);
    free(x);
}

/* Starts x's next attempt. 0, or -errno when it could not start (the
 * caller records that as a failed attempt). */
static int attempt_start(notify_t *n, xfer_t *x, int64_t now)
{
    const notify_rcv_conf_t *c = &x->r->c;
    int ret = -ENOMEM;
    x->attempt++;
    x->retry_at = 0;
    x->errbuf[0] = '\0';
    x->started = mono_s();
    if (!(x->easy = curl_easy_init()))
        goto out;
    if (curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)n->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x) != CURLE_OK ||
        (c->ca_file && curl_easy_setopt(x->easy, CURLOPT_CAINFO, c->ca_file) != CURLE_OK))
        goto out;
    if (c->kind == NOTIFY_WEBHOOK)
        ret = notify_webhook_setup(x->easy, c, x->id, now, &x->payload, &x->list);
    else
        ret = notify_smtp_setup(x->easy, c, &x->payload, &x->list);
    if (ret < 0)
        goto out;
    ret = curl_multi_add_handle(n->multi, x->easy) == CURLM_OK ? 0 : -ENOMEM;
out:
    if (ret < 0) {
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
        curl_slist_free_all(x->list);
        x->list = NULL;
    }
    return ret;
}

/* Copies src into dst[size], cut to fit (size >= 1). */
static void copy_cut(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Judges an ended attempt: NOTIFY_SENT, or whether to retry. A 4xx answer
 * other than 408 and 429 is the receiver refusing this request, and an SMTP
 * 5xx reply a permanent refusal: the same request again would not fare
 * better. */
static notify_result_t judge(notify_t *n, xfer_t *x, CURLcode rc, long status, char *err,
                             size_t errlen)
{
    bool permanent;
    if (x->r->c.kind == NOTIFY_WEBHOOK) {
        if (rc == CURLE_OK && status >= 200 && status < 300)
            return NOTIFY_SENT;
        if (rc == CURLE_OK)
            snprintf(err, errlen, "HTTP %ld", status);
        permanent =
            rc == CURLE_OK && status >= 400 && status < 500 && status != 408 && status != 429;
    } else {
        if (rc == CURLE_OK)
            return NOTIFY_SENT;
        permanent = status >= 500 && status < 600;
    }
    if (rc != CURLE_OK)
        copy_cut(err, errlen, x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
    return permanent || x->attempt >= n->max_attempts ? NOTIFY_FAILED : NOTIFY_RETRY;
}

/* An attempt ended (rc CURLE_FAILED_INIT: it could not start). Records it,
 * then schedules the next attempt or ends the notification. */
static void attempt_done(notify_t *n, xfer_t *x, CURLcode rc, int64_t now)
{
    rcv_t *r = x->r;
    notify_delivery_t d = {.receiver = r->idx,
                           .kind = (uint8_t)r->c.kind,
                           .state = x->state,
                           .attempt = x->attempt,
                           .nalerts = x->nalerts,
                           .time = now};
    long status = 0;
    double seconds = mono_s() - x->started;
    if (x->easy) {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(n->multi, x->easy);
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    curl_slist_free_all(x->list);
    x->list = NULL;
    memcpy(d.id, x->id, sizeof(d.id));
    copy_cut(d.receiver_name, sizeof(d.receiver_name), r->c.name);
    d.status = status;
    d.seconds = seconds;
    d.result = (uint8_t)judge(n, x, rc, status, d.error, sizeof(d.error));
    if (d.result == NOTIFY_RETRY) {
        unsigned shift = x->attempt - 1 < 30 ? x->attempt - 1 : 30;
        uint64_t wait = n->backoff_s << shift;
        if (wait > n->backoff_max_s || wait >> shift != n->backoff_s)
            wait = n->backoff_max_s;
        x->retry_at = d.retry_at = now + (int64_t)wait;
    } else if (d.result == NOTIFY_FAILED) {
        log_warn("alerts.%s: notification %s not delivered after %u attempt%s: %s", r->c.name,
                 x->id, x->attempt, x->attempt == 1 ? "" : "s", d.error);
    }
    record(n, &d, seconds);
    if (d.result != NOTIFY_RETRY) {
        xfer_free(x);
        r->xfer = NULL;
    }
}

/* Starts an attempt and records at once an attempt that cannot start. */
static void attempt_run(notify_t *n, xfer_t *x, int64_t now)
{
    if (attempt_start(n, x, now) < 0) {
        snprintf(x->errbuf, sizeof(x->errbuf), "cannot start the transfer (out of memory)");
        attempt_done(n, x, CURLE_FAILED_INIT, now);
    }
}

/* ---- grouping ---- */

static entry_t *entry_find(rcv_t *r, const char *key)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->entries[i].a.key, key))
            return &r->entries[i];
    return NULL;
}

static void entry_remove(rcv_t *r, entry_t *e)
{
    *e = r->entries[--r->n];
}

/* A new entry, NULL when the receiver remembers alerts_max already (or
 * memory is short). */
static entry_t *entry_add(notify_t *n, rcv_t *r)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        if (cap > n->alerts_max)
            cap = n->alerts_max;
        entry_t *e = cap > r->cap ? realloc(r->entries, cap * sizeof(*e)) : NULL;
        if (!e)
            return NULL;
        r->entries = e;
        r->cap = cap;
    }
    entry_t *e = &r->entries[r->n++];
    memset(e, 0, sizeof(*e));
    return e;
}

/* Applies one post, made at `now`, to its receiver's memory (the rules in
 * notify.h). */
static void apply_post(notify_t *n, const notify_alert_t *a, int64_t now)
{
    rcv_t *r = &n->rcv[a->receiver];
    entry_t *e = entry_find(r, a->key);
    if (!e) {
        if (a->state == NOTIFY_RESOLVED)
            return; /* its firing was never notified, or it was resolved already */
        if (!(e = entry_add(n, r))) {
            atomic_fetch_add_explicit(&n->forgotten, 1, memory_order_relaxed);
            return;
        }
        e->dirty = true;
    } else if (!e->notified) {
        if (a->state == NOTIFY_RESOLVED) {
            entry_remove(r, e);
            return;
        }
    } else if (a->state == NOTIFY_RESOLVED) {
        e->dirty = true;
    } else {
        /* Firing again, as notified: a reminder once repeat has passed;
         * a resolve that has not gone out yet is taken back (a flap). */
        e->dirty = now - e->notified_at >= (int64_t)r->c.repeat_s;
    }
    e->a = *a;
    if (e->dirty && !r->due)
        r->due = now + (int64_t)r->c.group_wait_s;
}

/* 32 random hex digits: receivers de-duplicate retries by it. */
static void new_id(notify_t *n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        /* Unique within the process at least, should the CSPRNG fail. */
        uint64_t v = ++n->id_seq, t = (uint64_t)time(NULL);
        memcpy(b, &v, 8);
        memcpy(b + 8, &t, 8);
    }
    for (size_t i = 0; i < sizeof(b); i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[32] = '\0';
}

/* Builds the payload from r's dirty alerts, marks them notified (forgets
 * the resolved ones) and returns the payload; NULL with *ret_none when no
 * alert was dirty, NULL otherwise when out of memory (the alerts stay
 * dirty for the next group). */
static char *group_build(rcv_t *r, const char *id, int64_t now, size_t *ret_len,
                         unsigned *ret_nalerts, uint8_t *ret_state, bool *ret_none)
{
    const notify_alert_t **alerts = malloc((r->n ? r->n : 1) * sizeof(*alerts));
    notify_msg_t m = {.rc = &r->c, .id = id, .now = now, .alerts = alerts};
    char *payload = NULL;
    *ret_state = NOTIFY_RESOLVED;
    for (size_t i = 0; alerts && i < r->n; i++) {
        if (!r->entries[i].dirty)
            continue;
        alerts[m.nalerts++] = &r->entries[i].a;
        if (r->entries[i].a.state == NOTIFY_FIRING)
            *ret_state = NOTIFY_FIRING;
    }
    *ret_none = alerts && !m.nalerts;
    if (!alerts || !m.nalerts)
        goto out;
    payload = r->c.kind == NOTIFY_WEBHOOK ? notify_webhook_body(&m, ret_len)
                                          : notify_smtp_message(&m, ret_len);
    if (!payload)
        goto out;
    *ret_nalerts = (unsigned)m.nalerts;
    for (size_t i = r->n; i-- > 0;) {
        entry_t *e = &r->entries[i];
        if (!e->dirty)
            continue;
        e->dirty = false;
        if (e->a.state == NOTIFY_RESOLVED) {
            entry_remove(r, e);
        } else {
            e->notified = true;
            e->notified_at = now;
        }
    }
out:
    free(alerts);
    return payload;
}

/* The group's time has come: builds its notification and starts it. */
static void group_send(notify_t *n, rcv_t *r, int64_t now)
{
    xfer_t *x = calloc(1, sizeof(*x));
    bool none = false;
    if (!x)
        goto retry_later;
    x->r = r;
    new_id(n, x->id);
    x->payload.data = group_build(r, x->id, now, &x->payload.len, &x->nalerts, &x->state, &none);
    if (!x->payload.data) {
        free(x);
        if (none) {
            r->due = 0;
            return;
        }
        goto retry_later;
    }
    r->due = 0;
    r->xfer = x;
    attempt_run(n, x, now);
    return;
retry_later:
    log_warn("alerts.%s: out of memory building a notification; trying again", r->c.name);
    r->due = now + 1;
}

/* Starts what is due: open groups without a notification in flight, and
 * retries. */
static void start_due(notify_t *n, int64_t now)
{
    for (size_t i = 0; i < n->nrcv; i++) {
        rcv_t *r = &n->rcv[i];
        if (!r->xfer && r->due && r->due <= now)
            group_send(n, r, now);
        else if (r->xfer && !r->xfer->easy && r->xfer->retry_at <= now)
            attempt_run(n, r->xfer, now);
    }
}

/* How long the thread may sleep: 0 when something is due now. *idle says
 * whether no attempt is in flight. */
static int next_wait_ms(notify_t *n, int64_t now, bool *idle)
{
    int64_t next = INT64_MAX;
    *idle = true;
    for (size_t i = 0; i < n->nrcv; i++) {
        rcv_t *r = &n->rcv[i];
        if (r->xfer && r->xfer->easy)
            *idle = false;
        else if (r->xfer && r->xfer->retry_at < next)
            next = r->xfer->retry_at;
        else if (!r->xfer && r->due && r->due < next)
            next = r->due;
    }
    /* The clock counts whole seconds: anything not due now is at least a
     * tick away, and sleeping a whole tick overshoots by less than one. */
    return next <= now ? 0 : TICK_MS;
}

/* ---- the thread ---- */

static void drain(notify_t *n)
{
    size_t k;
    pthread_mutex_lock(&n->q_mu);
    for (k = 0; k < n->qn; k++)
        n->batch[k] = n->q[(n->qhead + k) % n->qcap];
    n->qhead = (n->qhead + k) % n->qcap;
    n->qn = 0;
    pthread_mutex_unlock(&n->q_mu);
    for (size_t i = 0; i < k; i++)
        apply_post(n, &n->batch[i].a, n->batch[i].at);
}

static void reap(notify_t *n, int64_t now)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(n->multi, &left))) {
        xfer_t *x = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        attempt_done(n, x, msg->data.result, now);
    }
}

static void *notify_thread(void *arg)
{
    notify_t *n = arg;
    while (!atomic_load(&n->stop)) {
        pthread_mutex_lock(&n->sync_mu);
        uint64_t seen = n->sync_req;
        pthread_mutex_unlock(&n->sync_mu);
        int64_t now = n->now();
        drain(n);
        start_due(n, now);
        int running;
        curl_multi_perform(n->multi, &running);
        reap(n, now);
        bool idle;
        int wait = next_wait_ms(n, now, &idle);
        if (!wait)
            continue;
        if (idle) {
            pthread_mutex_lock(&n->sync_mu);
            if (seen > n->sync_done) {
                n->sync_done = seen;
                pthread_cond_broadcast(&n->sync_cv);
            }
            pthread_mutex_unlock(&n->sync_mu);
        }
        curl_multi_poll(n->multi, NULL, 0, wait, NULL);
    }
    return NULL;
}

/* ---- public ---- */

static const char *conf_check(const notify_conf_t *c, size_t *bad_rcv)
{
    if (c->nreceivers < 1 || c->nreceivers > NOTIFY_RECEIVERS_MAX || !c->receivers)
        return "1 to 256 receivers";
    if (c->queue > NOTIFY_QUEUE_MAX || c->alerts > ALERTS_MAX || c->ring > RING_MAX ||
        c->max_attempts > ATTEMPTS_MAX)
        return "queue, alerts, ring or max_attempts above its maximum";
    for (size_t i = 0; i < c->nreceivers; i++) {
        const notify_receiver_t *r = &c->receivers[i];
        *bad_rcv = i;
        if (!r->name || !r->name[0] || strlen(r->name) > 63 || has_crlf(r->name))
            return "a receiver needs a name of 1 to 63 bytes";
        const char *why = rcv_check(r);
        if (why)
            return why;
    }
    *bad_rcv = SIZE_MAX;
    return NULL;
}

static void set_defaults(notify_t *n, const notify_conf_t *c)
{
    n->qcap = c->queue ? c->queue : QUEUE_DEFAULT;
    n->alerts_max = c->alerts ? c->alerts : ALERTS_DEFAULT;
    n->ring_cap = c->ring ? c->ring : RING_DEFAULT;
    n->max_attempts = c->max_attempts ? c->max_attempts : ATTEMPTS_DEFAULT;
    n->backoff_s = c->backoff_s ? c->backoff_s : BACKOFF_DEFAULT_S;
    n->backoff_max_s = c->backoff_max_s ? c->backoff_max_s : BACKOFF_MAX_DEFAULT_S;
    n->timeout_ms = c->timeout_ms ? c->timeout_ms : TIMEOUT_DEFAULT_MS;
    n->now = c->now_unix ? c->now_unix : time_now;
    n->on_delivery = c->on_delivery;
    n->ud = c->ud;
}

notify_t *notify_new(const notify_conf_t *c, char *err, size_t errlen)
{
    size_t bad = SIZE_MAX;
    const char *why = conf_check(c, &bad);
    notify_t *n = NULL;
    if (why) {
        if (bad != SIZE_MAX && c->receivers[bad].name && c->receivers[bad].name[0])
            snprintf(err, errlen, "alerts.%s: %s", c->receivers[bad].name, why);
        else
            snprintf(err, errlen, "alerts: %s", why);
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "alerts: libcurl initialisation failed");
        return NULL;
    }
    if (!(n = calloc(1, sizeof(*n))))
        goto oom;
    set_defaults(n, c);
    pthread_mutex_init(&n->q_mu, NULL);
    pthread_mutex_init(&n->ring_mu, NULL);
    pthread_mutex_init(&n->sync_mu, NULL);
    pthread_cond_init(&n->sync_cv, NULL);
    n->q = calloc(n->qcap, sizeof(*n->q));
    n->batch = calloc(n->qcap, sizeof(*n->batch));
    n->ring = calloc(n->ring_cap, sizeof(*n->ring));
    n->rcv = calloc(c->nreceivers, sizeof(*n->rcv));
    n->multi = curl_multi_init();
    if (!n->q || !n->batch || !n->ring || !n->rcv || !n->multi)
        goto oom;
    for (; n->nrcv < c->nreceivers; n->nrcv++) {
        n->rcv[n->nrcv].idx = (unsigned)n->nrcv;
        if (rcv_conf_copy(&n->rcv[n->nrcv].c, &c->receivers[n->nrcv]) < 0) {
            n->nrcv++; /* so that notify_free frees what was copied */
            goto oom;
        }
    }
    if (pthread_create(&n->thread, NULL, notify_thread, n) != 0) {
        snprintf(err, errlen, "alerts: cannot start the notifier thread");
        notify_free(n);
        return NULL;
    }
    n->started = true;
    return n;
oom:
    snprintf(err, errlen, "alerts: out of memory");
    notify_free(n);
    if (!n)
        curl_global_cleanup();
    return NULL;
}

void notify_free(notify_t *n)
{
    if (!n)
        return;
    if (n->started) {
        atomic_store(&n->stop, true);
        curl_multi_wakeup(n->multi);
        pthread_join(n->thread, NULL);
    }
    for (size_t i = 0; i < n->nrcv; i++) {
        rcv_t *r = &n->rcv[i];
        if (r->xfer && r->xfer->easy)
            curl_multi_remove_handle(n->multi, r->xfer->easy);
        xfer_free(r->xfer);
        free(r->entries);
        rcv_conf_free(&r->c);
    }
    curl_multi_cleanup(n->multi);
    free(n->rcv);
    free(n->q);
    free(n->batch);
    free(n->ring);
    pthread_mutex_destroy(&n->q_mu);
    pthread_mutex_destroy(&n->ring_mu);
    pthread_mutex_destroy(&n->sync_mu);
    pthread_cond_destroy(&n->sync_cv);
    free(n);
    curl_global_cleanup();
}

int notify_post(notify_t *n, const notify_alert_t *a)
{
    if (a->receiver >= n->nrcv || !a->key[0] || a->state > NOTIFY_RESOLVED)
        return -EINVAL;
    int64_t at = n->now();
    pthread_mutex_lock(&n->q_mu);
    if (n->qn == n->qcap) {
        pthread_mutex_unlock(&n->q_mu);
        atomic_fetch_add_explicit(&n->dropped, 1, memory_order_relaxed);
        return -ENOBUFS;
    }
    qitem_t *item = &n->q[(n->qhead + n->qn++) % n->qcap];
    notify_alert_t *q = &item->a;
    item->at = at;
    *q = *a;
    /* Cleaned inside the queue so the control thread copies only once. */
    notify_text_fix(q->key, sizeof(q->key));
    notify_text_fix(q->objective, sizeof(q->objective));
    notify_text_fix(q->severity, sizeof(q->severity));
    notify_text_fix(q->summary, sizeof(q->summary));
    if (q->nlabels > NOTIFY_LABELS_MAX)
        q->nlabels = NOTIFY_LABELS_MAX;
    if (q->nvalues > NOTIFY_VALUES_MAX)
        q->nvalues = NOTIFY_VALUES_MAX;
    for (unsigned i = 0; i < q->nlabels; i++) {
        notify_text_fix(q->labels[i].name, sizeof(q->labels[i].name));
        notify_text_fix(q->labels[i].value, sizeof(q->labels[i].value));
    }
    for (unsigned i = 0; i < q->nvalues; i++)
        notify_text_fix(q->values[i].name, sizeof(q->values[i].name));
    pthread_mutex_unlock(&n->q_mu);
    atomic_fetch_add_explicit(&n->posted, 1, memory_order_relaxed);
    curl_multi_wakeup(n->multi);
    return 0;
}

void notify_tick(notify_t *n)
{
    curl_multi_wakeup(n->multi);
}

bool notify_sync(notify_t *n, uint64_t timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += (time_t)(timeout_ms / 1000);
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000)
        dl.tv_sec++, dl.tv_nsec -= 1000000000;
    bool ok = true;
    pthread_mutex_lock(&n->sync_mu);
    uint64_t want = ++n->sync_req;
    curl_multi_wakeup(n->multi);
    while (ok && n->sync_done < want) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > dl.tv_sec || (now.tv_sec == dl.tv_sec && now.tv_nsec >= dl.tv_nsec)) {
            ok = false;
            break;
        }
        /* The condition variable runs on CLOCK_REALTIME; a short wait and
         * a look at the monotonic deadline keep it honest. */
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        rt.tv_nsec += 10 * 1000000;
        if (rt.tv_nsec >= 1000000000)
            rt.tv_sec++, rt.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&n->sync_cv, &n->sync_mu, &rt);
    }
    pthread_mutex_unlock(&n->sync_mu);
    return ok;
}

size_t notify_deliveries(notify_t *n, notify_delivery_t *out, size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&n->ring_mu);
    for (; k < max && k < n->ring_n; k++)
        out[k] = n->ring[(n->ring_total - 1 - k) % n->ring_cap];
    pthread_mutex_unlock(&n->ring_mu);
    return k;
}

json_t *notify_deliveries_json(notify_t *n, size_t limit)
{
    size_t max = limit && limit < n->ring_cap ? limit : n->ring_cap, k;
    notify_delivery_t *d = malloc(max * sizeof(*d));
    json_t *arr = d ? json_array() : NULL;
    char t[24];
    k = d && arr ? notify_deliveries(n, d, max) : 0;
    for (size_t i = 0; arr && i < k; i++) {
        json_t *o = json_object();
        int bad = !o;
        bad |= json_object_set_new(o, "id", json_string(d[i].id));
        bad |= json_object_set_new(o, "receiver", json_string(d[i].receiver_name));
        bad |= json_object_set_new(o, "kind",
                                   json_string(d[i].kind == NOTIFY_EMAIL ? "email" : "webhook"));
        bad |= json_object_set_new(o, "result", json_string(notify_result_name(d[i].result)));
        bad |= json_object_set_new(o, "state", json_string(notify_state_name(d[i].state)));
        bad |= json_object_set_new(o, "attempt", json_integer(d[i].attempt));
        bad |= json_object_set_new(o, "alerts", json_integer(d[i].nalerts));
        notify_time_rfc3339(d[i].time, t);
        bad |= json_object_set_new(o, "time", json_string(t));
        if (d[i].retry_at) {
            notify_time_rfc3339(d[i].retry_at, t);
            bad |= json_object_set_new(o, "retry_at", json_string(t));
        }
        bad |= json_object_set_new(o, "status", json_integer(d[i].status));
        bad |= json_object_set_new(o, "seconds", json_real(d[i].seconds));
        /* curl's messages are ASCII; cleaned anyway, jansson wants UTF-8. */
        notify_text_fix(d[i].error, sizeof(d[i].error));
        if (d[i].error[0])
            bad |= json_object_set_new(o, "error", json_string(d[i].error));
        if (bad)
            json_decref(o);
        if (bad || json_array_append_new(arr, o)) { /* append_new frees o on failure */
            json_decref(arr);
            arr = NULL;
        }
    }
    free(d);
    return arr;
}

void notify_counters(notify_t *n, notify_counters_t *out)
{
    memset(out, 0, sizeof(*out));
    out->posted = atomic_load_explicit(&n->posted, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&n->dropped, memory_order_relaxed);
    out->forgotten = atomic_load_explicit(&n->forgotten, memory_order_relaxed);
    for (size_t i = 0; i < n->nrcv; i++) {
        out->sent += atomic_load_explicit(&n->rcv[i].results[NOTIFY_SENT], memory_order_relaxed);
        out->retried +=
            atomic_load_explicit(&n->rcv[i].results[NOTIFY_RETRY], memory_order_relaxed);
        out->failed +=
            atomic_load_explicit(&n->rcv[i].results[NOTIFY_FAILED], memory_order_relaxed);
    }
}

void notify_metrics_write(notify_t *n, prom_t *p)
{
    static const char name[] = "surety_alert_notifications_total";
    uint64_t buckets[NBOUNDS + 1];
    prom_family(p, name, PROM_COUNTER,
                "Alert notification attempts by receiver and result: sent, retry (failed, "
                "another attempt scheduled), failed (given up).");
    for (size_t i = 0; i < n->nrcv; i++)
        for (unsigned k = 0; k < 3; k++)
            prom_counter(p, name,
                         PROM_LABELS({"receiver", n->rcv[i].c.name}, {"result", result_names[k]}),
                         atomic_load_explicit(&n->rcv[i].results[k], memory_order_relaxed));
    prom_family(p, "surety_alert_queue_dropped_total", PROM_COUNTER,
                "Alert states the control thread could not hand to the notifier: queue full.");
    prom_counter(p, "surety_alert_queue_dropped_total", NULL, 0,
                 atomic_load_explicit(&n->dropped, memory_order_relaxed));
    for (size_t b = 0; b <= NBOUNDS; b++)
        buckets[b] = atomic_load_explicit(&n->dur_buckets[b], memory_order_relaxed);
    prom_family(p, "surety_alert_delivery_seconds", PROM_HISTOGRAM,
                "Duration of alert notification attempts (webhook or email).");
    prom_histogram(p, "surety_alert_delivery_seconds", NULL, 0, dur_bounds, buckets, NBOUNDS,
                   (double)atomic_load_explicit(&n->dur_sum_us, memory_order_relaxed) / 1e6,
                   atomic_load_explicit(&n->dur_count, memory_order_relaxed));
}
