/* The store thread: the only writer of the file.
 *
 * It sleeps until a record is queued, then gathers for at most commit_ms
 * (or until batch_max records wait) and writes everything it took in one
 * transaction: each SLI sample as its raw row plus three upserts that add
 * it into its minute, hour and day rows, so the rollups can never disagree
 * with the raw rows after a crash. One transaction per batch means one WAL
 * append (and with synchronous=full one fsync) for thousands of rows.
 *
 * A batch that fails (disk full, I/O error, a lock held by another process
 * past busy_timeout) is rolled back and retried whole after a second; it is
 * not acknowledged meanwhile and the queue fills, so producers see -ENOBUFS
 * rather than a silent loss. Input is validated at submit, so a failure is
 * the disk's, not a record's.
 *
 * Retention passes run between batches, one bounded DELETE at a time, so a
 * large expiry never holds the write lock for long; writes go first. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/store_int.h"

#define RETRY_MS 1000

static void deadline_after(struct timespec *dl, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, dl);
    dl->tv_sec += ms / 1000;
    dl->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl->tv_nsec >= 1000000000L) {
        dl->tv_sec++;
        dl->tv_nsec -= 1000000000L;
    }
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

static void bind_str(sqlite3_stmt *st, int i, str_t v)
{
    sqlite3_bind_text(st, i, v.len ? v.p : "", (int)v.len, SQLITE_STATIC);
}

static int write_sli(store_t *s, const store_rec_t *r)
{
    static const int64_t align[4] = {1, 60, 3600, 86400};
    for (int t = 0; t < 4; t++) {
        sqlite3_stmt *st = s->st[ST_SLI_RAW + t];
        bind_str(st, 1, r->text[0]);
        sqlite3_bind_int64(st, 2, r->ts - r->ts % align[t]);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)r->u.sli.requests);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)r->u.sli.errors);
        for (int b = 0; b < STORE_BUCKETS_MAX; b++)
            sqlite3_bind_int64(st, 5 + b, (sqlite3_int64)r->u.sli.buckets[b]);
        if (step_done(st) != 0)
            return -EIO;
    }
    return 0;
}

static int write_rec(store_t *s, const store_rec_t *r)
{
    sqlite3_stmt *st;
    switch (r->kind) {
    case REC_SLI:
        return write_sli(s, r);
    case REC_PROBE:
        st = s->st[ST_PROBE];
        bind_str(st, 1, r->text[0]);
        sqlite3_bind_int64(st, 2, r->ts);
        sqlite3_bind_int(st, 3, r->u.probe.ok);
        sqlite3_bind_double(st, 4, r->u.probe.latency_ms);
        bind_str(st, 5, r->text[1]);
        return step_done(st);
    case REC_STATE:
        st = s->st[ST_STATE];
        bind_str(st, 1, r->text[0]);
        sqlite3_bind_int64(st, 2, r->ts);
        bind_str(st, 3, r->text[1]);
        bind_str(st, 4, r->text[2]);
        return step_done(st);
    case REC_EVENT:
        st = s->st[ST_EVENT];
        sqlite3_bind_int64(st, 1, r->ts);
        for (int i = 0; i < 3; i++)
            bind_str(st, 2 + i, r->text[i]);
        return step_done(st);
    case REC_DELIVERY:
        st = s->st[ST_DELIVERY];
        sqlite3_bind_int64(st, 1, r->ts);
        for (int i = 0; i < 3; i++)
            bind_str(st, 2 + i, r->text[i]);
        sqlite3_bind_int64(st, 5, r->u.attempt);
        bind_str(st, 6, r->text[3]);
        return step_done(st);
    case REC_RETENTION:
        return 0;
    }
    return -EINVAL;
}

static void count_commit(store_t *s, uint64_t ns)
{
    double secs = (double)ns / 1e9;
    size_t b = 0;
    while (b < STORE_COMMIT_NBOUNDS && secs > store_commit_bounds[b])
        b++;
    atomic_fetch_add_explicit(&s->n.commit_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->n.commit_ns, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->n.commits, 1, memory_order_relaxed);
}

/* One transaction for batch[0, n). 0, or -EIO after a rollback. */
static int write_tx(store_t *s, size_t n)
{
    uint64_t t0 = store_mono_ns();
    if (step_done(s->st[ST_BEGIN]) != 0)
        return -EIO;
    for (size_t i = 0; i < n; i++) {
        if (write_rec(s, s->batch[i]) != 0)
            goto fail;
    }
    if (step_done(s->st[ST_COMMIT]) != 0)
        goto fail;
    count_commit(s, store_mono_ns() - t0);
    return 0;
fail:
    /* SQLite may have rolled back already (I/O error, disk full). */
    if (!sqlite3_get_autocommit(s->wdb))
        step_done(s->st[ST_ROLLBACK]);
    return -EIO;
}

/* After a commit: what the batch asks of retention, then the automatic pass
 * every retention_every_s of submitted time. */
static void note_times(store_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const store_rec_t *r = s->batch[i];
        if (r->kind == REC_RETENTION) {
            s->pass_active = true;
            s->pass_now = r->ts;
            s->pass_table = 0;
            s->last_pass_ts = r->ts;
        } else if (r->ts > s->max_ts) {
            s->max_ts = r->ts;
        }
    }
    int64_t every = s->o.retention_every_s;
    if (!s->pass_active && every > 0 && s->max_ts - s->last_pass_ts >= every) {
        s->pass_active = true;
        s->pass_now = s->max_ts;
        s->pass_table = 0;
        s->last_pass_ts = s->max_ts;
    }
}

/* True once closing and past the close deadline (mu not held). */
static bool past_deadline(store_t *s)
{
    pthread_mutex_lock(&s->mu);
    bool late = s->stop && store_mono_ns() >= s->close_deadline_ns;
    pthread_mutex_unlock(&s->mu);
    return late;
}

/* Writes the batch, retrying until it commits or the close deadline passes;
 * then acknowledges it (or counts it lost) and frees it. */
static void write_batch(store_t *s, size_t n)
{
    bool ok;
    while (!(ok = write_tx(s, n) == 0)) {
        atomic_fetch_add_explicit(&s->n.commit_errors, 1, memory_order_relaxed);
        if (!s->failing)
            log_warn("store %s: write failed, retrying every %d ms: %s", s->path, RETRY_MS,
                     sqlite3_errmsg(s->wdb));
        s->failing = true;
        if (past_deadline(s))
            break;
        /* Producers' and close's signals may end the wait early; a retry
         * sooner than RETRY_MS is harmless, a busy loop is not. */
        struct timespec dl;
        deadline_after(&dl, RETRY_MS);
        pthread_mutex_lock(&s->mu);
        pthread_cond_timedwait(&s->cv, &s->mu, &dl);
        pthread_mutex_unlock(&s->mu);
    }
    if (ok && s->failing) {
        log_info("store %s: writing again", s->path);
        s->failing = false;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const store_rec_t *r = s->batch[i];
        bytes += r->size;
        if (r->kind != REC_RETENTION)
            atomic_fetch_add_explicit(ok ? &s->n.rows[r->kind] : &s->n.lost, 1,
                                      memory_order_relaxed);
    }
    if (ok)
        note_times(s, n);
    pthread_mutex_lock(&s->mu);
    s->bytes -= bytes;
    if (ok)
        atomic_store_explicit(&s->acked, s->batch[n - 1]->seq, memory_order_release);
    pthread_cond_broadcast(&s->ack_cv);
    pthread_mutex_unlock(&s->mu);
    if (ok && s->o.commit_cb)
        s->o.commit_cb(s->o.commit_data, s->batch[n - 1]->seq);
    for (size_t i = 0; i < n; i++) {
        store_rec_free(s->batch[i]);
        s->batch[i] = NULL;
    }
}

/* One bounded DELETE of the current pass. */
static void retention_step(store_t *s)
{
    while (s->pass_table < STORE_NTABLES && store_table_keep(&s->o, s->pass_table) <= 0)
        s->pass_table++;
    if (s->pass_table == STORE_NTABLES) {
        s->pass_active = false;
        atomic_fetch_add_explicit(&s->n.retention_runs, 1, memory_order_relaxed);
        return;
    }
    sqlite3_stmt *st = s->del[s->pass_table];
    sqlite3_bind_int64(st, 1, s->pass_now - store_table_keep(&s->o, s->pass_table));
    sqlite3_bind_int64(st, 2, (sqlite3_int64)s->o.retention_batch);
    if (step_done(st) != 0) {
        /* Abandoned; the next pass starts over. */
        log_warn("store %s: retention of %s failed: %s", s->path, store_tables[s->pass_table],
                 sqlite3_errmsg(s->wdb));
        s->pass_active = false;
        return;
    }
    int64_t gone = sqlite3_changes64(s->wdb);
    atomic_fetch_add_explicit(&s->n.retention_deleted, (uint64_t)gone, memory_order_relaxed);
    if ((uint64_t)gone < s->o.retention_batch)
        s->pass_table++;
}

/* Waits for work and takes a batch (mu held). Returns the batch size;
 * *stop says the owner is closing. */
static size_t take_batch(store_t *s, bool *stop)
{
    while (s->count == 0 && !s->stop && !s->pass_active)
        pthread_cond_wait(&s->cv, &s->mu);
    if (s->count > 0 && s->count < s->o.batch_max && !s->stop) {
        struct timespec dl;
        deadline_after(&dl, s->o.commit_ms);
        while (s->count < s->o.batch_max && !s->stop)
            if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT)
                break;
    }
    *stop = s->stop;
    return store_queue_take(s, s->batch, s->o.batch_max);
}

void *store_thread_main(void *arg)
{
    store_t *s = arg;
    for (;;) {
        bool stop;
        pthread_mutex_lock(&s->mu);
        size_t n = take_batch(s, &stop);
        pthread_mutex_unlock(&s->mu);
        if (n > 0) {
            write_batch(s, n);
            if (stop && past_deadline(s))
                break;
        } else if (stop) {
            break;
        } else if (s->pass_active) {
            retention_step(s);
        }
    }
    /* Closing past the deadline: what is still queued is lost, counted. */
    pthread_mutex_lock(&s->mu);
    size_t n;
    while ((n = store_queue_take(s, s->batch, s->o.batch_max)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (s->batch[i]->kind != REC_RETENTION)
                atomic_fetch_add_explicit(&s->n.lost, 1, memory_order_relaxed);
            s->bytes -= s->batch[i]->size;
            store_rec_free(s->batch[i]);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
