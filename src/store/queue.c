/* The store's bounded queue and its producers: the submit functions copy a
 * record into one allocation, outside any lock, then take `mu` only to give
 * it a sequence number and put it in the ring. Nothing here touches the
 * disk, so the control thread never waits on it.
 *
 * Sequence numbers are given under the same lock that orders the ring, and
 * the store thread writes the ring in order, one transaction per batch: when
 * a batch commits, every record up to its last sequence number is in the
 * file, so store_acked() is simply that number.
 *
 * Two bounds hold together: queue_max records and queue_bytes_max bytes
 * (queued plus the batch being written), so text from outside (probe
 * details, webhook responses) cannot grow memory past the options. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/str.h"
#include "store/store_int.h"

uint64_t store_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void store_rec_free(store_rec_t *r)
{
    free(r);
}

/* A valid UTF-8 character at s[0, n), NUL excluded (stored text is C text). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    return s[0] ? str_utf8_len(s, n) : 0;
}

/* Copies in to out (in.len bytes of room), every byte that is not part of a
 * UTF-8 sequence, or is NUL, as '?'. A sequence cut by the end of in (a
 * text truncated to STORE_TEXT_MAX) becomes '?' too. */
static void copy_utf8(char *out, str_t in)
{
    const unsigned char *p = (const unsigned char *)in.p;
    for (size_t i = 0; i < in.len;) {
        size_t k = utf8_len(p + i, in.len - i);
        if (k == 0) {
            out[i++] = '?';
        } else {
            memcpy(out + i, p + i, k);
            i += k;
        }
    }
}

/* What a text field may be. */
typedef enum {
    F_NAME,     /* required, at most STORE_NAME_MAX */
    F_OPT_NAME, /* may be empty, at most STORE_NAME_MAX */
    F_TEXT,     /* cut to STORE_TEXT_MAX */
    F_JSON,     /* at most STORE_JSON_MAX; empty becomes "{}" */
} field_t;

/* A record of kind with ntext text fields, copied and checked. NULL with
 * *rc set on failure. */
static store_rec_t *rec_new(store_rec_kind_t kind, int64_t ts, const str_t *text,
                            const field_t *field, size_t ntext, int *rc)
{
    str_t t[4];
    size_t total = 0;
    if (ts < 0) {
        *rc = -EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < ntext; i++) {
        t[i] = text[i].p ? text[i] : STR_NULL;
        if (field[i] == F_NAME && t[i].len == 0) {
            *rc = -EINVAL;
            return NULL;
        }
        if (((field[i] == F_NAME || field[i] == F_OPT_NAME) && t[i].len > STORE_NAME_MAX) ||
            (field[i] == F_JSON && t[i].len > STORE_JSON_MAX)) {
            *rc = -EMSGSIZE;
            return NULL;
        }
        if (field[i] == F_TEXT && t[i].len > STORE_TEXT_MAX)
            t[i].len = STORE_TEXT_MAX;
        if (field[i] == F_JSON && t[i].len == 0)
            t[i] = STR_LIT("{}");
        total += t[i].len;
    }
    store_rec_t *r = calloc(1, sizeof(*r) + total);
    if (!r) {
        *rc = -ENOMEM;
        return NULL;
    }
    r->kind = kind;
    r->ts = ts;
    r->size = sizeof(*r) + total;
    char *at = r->data;
    for (size_t i = 0; i < ntext; i++) {
        copy_utf8(at, t[i]);
        r->text[i] = str_from(at, t[i].len);
        at += t[i].len;
    }
    return r;
}

/* Queues r (taking it: freed on failure) and returns its sequence number in
 * *ret_seq. Any thread; holds mu for a few instructions. */
static int enqueue(store_t *s, store_rec_t *r, uint64_t *ret_seq)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->closing) {
        rc = -ESHUTDOWN;
    } else if (s->count == s->cap || s->bytes + r->size > s->o.queue_bytes_max) {
        atomic_fetch_add_explicit(&s->n.dropped, 1, memory_order_relaxed);
        rc = -ENOBUFS;
    } else {
        r->seq = ++s->last_seq;
        s->ring[(s->head + s->count) % s->cap] = r;
        s->count++;
        s->bytes += r->size;
        /* The thread sleeps until the queue is not empty, then gathers for
         * commit_ms unless a whole batch is there: wake it for those two. */
        if (s->count == 1 || s->count == s->o.batch_max)
            pthread_cond_signal(&s->cv);
        if (ret_seq)
            *ret_seq = r->seq;
        if (r->kind != REC_RETENTION)
            atomic_fetch_add_explicit(&s->n.submitted, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->mu);
    if (rc)
        store_rec_free(r);
    return rc;
}

size_t store_queue_take(store_t *s, store_rec_t **out, size_t max)
{
    size_t n = 0;
    while (n < max && s->count > 0) {
        out[n++] = s->ring[s->head];
        s->ring[s->head] = NULL;
        s->head = (s->head + 1) % s->cap;
        s->count--;
    }
    return n;
}

int store_sli_submit(store_t *s, const store_sli_t *x, uint64_t *ret_seq)
{
    static const field_t f[] = {F_NAME};
    int rc = 0;
    if (x->nbuckets != s->o.nbuckets || (x->nbuckets && !x->buckets))
        return -EINVAL;
    store_rec_t *r = rec_new(REC_SLI, x->ts, &x->source, f, 1, &rc);
    if (!r)
        return rc;
    r->u.sli.requests = x->requests;
    r->u.sli.errors = x->errors;
    memcpy(r->u.sli.buckets, x->buckets, x->nbuckets * sizeof(uint64_t));
    return enqueue(s, r, ret_seq);
}

int store_probe_submit(store_t *s, const store_probe_t *x, uint64_t *ret_seq)
{
    static const field_t f[] = {F_NAME, F_TEXT};
    const str_t t[] = {x->monitor, x->detail};
    int rc = 0;
    store_rec_t *r = rec_new(REC_PROBE, x->ts, t, f, 2, &rc);
    if (!r)
        return rc;
    r->u.probe.ok = x->ok;
    r->u.probe.latency_ms = x->latency_ms;
    return enqueue(s, r, ret_seq);
}

int store_state_submit(store_t *s, const store_state_t *x, uint64_t *ret_seq)
{
    static const field_t f[] = {F_NAME, F_OPT_NAME, F_NAME};
    const str_t t[] = {x->monitor, x->from, x->to};
    int rc = 0;
    store_rec_t *r = rec_new(REC_STATE, x->ts, t, f, 3, &rc);
    return r ? enqueue(s, r, ret_seq) : rc;
}

int store_event_submit(store_t *s, const store_event_t *x, uint64_t *ret_seq)
{
    static const field_t f[] = {F_NAME, F_OPT_NAME, F_JSON};
    const str_t t[] = {x->kind, x->subject, x->detail};
    int rc = 0;
    store_rec_t *r = rec_new(REC_EVENT, x->ts, t, f, 3, &rc);
    return r ? enqueue(s, r, ret_seq) : rc;
}

int store_delivery_submit(store_t *s, const store_delivery_t *x, uint64_t *ret_seq)
{
    static const field_t f[] = {F_NAME, F_NAME, F_NAME, F_TEXT};
    const str_t t[] = {x->alert, x->channel, x->status, x->response};
    int rc = 0;
    store_rec_t *r = rec_new(REC_DELIVERY, x->ts, t, f, 4, &rc);
    if (!r)
        return rc;
    r->u.attempt = x->attempt;
    return enqueue(s, r, ret_seq);
}

int store_retention_run(store_t *s, int64_t now)
{
    int rc = 0;
    store_rec_t *r = rec_new(REC_RETENTION, now, NULL, NULL, 0, &rc);
    /* It takes a sequence number like a row, so "acked" still means "all
     * before it is in the file"; its deletes run after, in batches. */
    return r ? enqueue(s, r, NULL) : rc;
}

uint64_t store_acked(const store_t *s)
{
    return atomic_load_explicit(&s->acked, memory_order_acquire);
}

int store_wait(store_t *s, uint64_t seq, uint32_t timeout_ms)
{
    struct timespec dl;
    int rc = 0;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (store_acked(s) < seq && rc == 0)
        rc = pthread_cond_timedwait(&s->ack_cv, &s->mu, &dl);
    pthread_mutex_unlock(&s->mu);
    return store_acked(s) >= seq ? 0 : -ETIMEDOUT;
}
